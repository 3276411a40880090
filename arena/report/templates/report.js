(function () {
  var vids = document.querySelectorAll('video');
  function count() {
    var ok = 0, bad = 0;
    vids.forEach(function (v) {
      if (v.dataset.state === 'loaded') ok++;
      else if (v.dataset.state.indexOf('error') === 0) bad++;
    });
    document.body.dataset.videosLoaded = ok;
    document.body.dataset.videosFailed = bad;
  }
  vids.forEach(function (v) {
    function failed() { v.dataset.state = 'error ' + (v.error ? v.error.code : 'source'); count(); }
    v.addEventListener('loadeddata', function () { v.dataset.state = 'loaded'; count(); });
    v.addEventListener('error', failed);
    v.querySelectorAll('source').forEach(function (s) { s.addEventListener('error', failed); });
    if (v.readyState >= 2) v.dataset.state = 'loaded';
  });
  count();
})();
