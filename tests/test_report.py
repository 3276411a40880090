"""``arena report``: one self-contained page per run; checked in headless Chromium (slow)."""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error

from arena import report as report_mod
from arena.report import MARKER, write_report

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "arena" / "assets"
RUNNER = ASSETS / "toy_pass_v0__runner.zip"
SCREENSHOTS = ROOT / "runs" / "screenshots"
"""Where the slow tier leaves its screenshots of the reports (git-ignored)."""


def _run_dir(root: Path) -> Path:
    (found,) = [p for p in root.rglob("config.json") if "report" not in p.parts]
    return found.parent


def _evaluate(cli, tmp_path: Path, *extra: str) -> Path:
    """An attacked toy_pass evaluate run (4 short episodes); returns its run directory."""
    result = cli(
        "evaluate",
        "toy_pass_v0",
        "--policy",
        f"runner=sb3:{RUNNER}",
        "--policy",
        "blocker=random",
        "--attack",
        "runner=fgsm:eps=0.1",
        "--episodes",
        "4",
        "--runs",
        tmp_path / "runs",
        *extra,
    )
    assert result.code == 0, result.err
    return _run_dir(tmp_path / "runs")


def _offline(page: str) -> None:
    """Nothing on the page is fetched: every image and video is a data: URI."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    for src in re.findall(r'<(?:img|source|video)[^>]*\ssrc="([^"]*)"', page):
        assert src.startswith("data:"), src[:80]


def _embedded_videos(page: str) -> list[bytes]:
    return [
        base64.b64decode(b64)
        for b64 in re.findall(r'<source src="data:video/mp4;base64,([^"]+)"', page)
    ]


def test_evaluate_run_with_record(cli, tmp_path):
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    config = json.loads((run / "config.json").read_text())
    assert config["record"] == str((tmp_path / "rec").resolve())
    result = cli("report", run)
    assert result.code == 0, result.err
    page_path = run / "report" / "index.html"
    assert result.out.strip() == f"report written to {page_path}"
    assert sorted(p.name for p in page_path.parent.iterdir()) == [MARKER, "index.html"]
    page = page_path.read_text()
    _offline(page)
    # the configuration and the results with their intervals
    assert "Configuration <code>config.json</code>" in page and "fgsm:eps=0.1" in page
    table = page[page.index('<table class="results">') :]
    table = table[: table.index("</table>")]
    for column in ("win rate [95% CI]", "mean return [95% CI]", "action-flip rate"):
        assert column in table
    assert re.search(r"<td>[0-9.]+ \[[0-9.]+, [0-9.]+\]</td>", table)
    # plots: win rate with intervals and the action-flip rate, as embedded PNGs
    pngs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 2 and all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "win rate, 95% CI" in page and "action-flip rate" in page
    # the recorded episode, re-simulated into an mp4 inside the page
    (mp4,) = _embedded_videos(page)
    assert mp4[4:8] == b"ftyp"
    assert re.search(r"rec: scene video of episode 0, \d+ steps, re-simulated and verified", page)
    assert 'data-videos="1"' in page


def test_evaluate_run_without_record_gets_a_sample_episode(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    out = tmp_path / "page"
    result = cli("report", run, "--out", out)
    assert result.code == 0, result.err
    page = (out / "index.html").read_text()
    assert len(_embedded_videos(page)) == 1
    assert "sample episode played for this report (seed 0): its policies and attacks" in page
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html"]  # record removed


def test_extra_records_are_shown(cli, tmp_path):
    run = _evaluate(cli, tmp_path)
    golden = Path(__file__).parent / "data" / "golden_toy_pass"
    result = cli("report", run, "--out", tmp_path / "page", "--record", golden)
    assert result.code == 0, result.err
    page = (tmp_path / "page" / "index.html").read_text()
    assert len(_embedded_videos(page)) == 1 and f"{golden}: scene video" in page
    assert "sample episode" not in page


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _progress(path: Path, n: int = 12) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timesteps", "win_rate", "episodes", "steps_per_s", "shaping"])
        w.writerow([2048, "nan", 0, 1000.0, 1.0])
        for k in range(1, n):
            w.writerow([2048 * (k + 1), k / n, 50 * k, 1000.0, 1 - k / n])


def _score(wins: int, n: int = 20) -> dict[str, Any]:
    rate = wins / n
    return {
        "wins": wins,
        "losses": n - wins,
        "ties": 0,
        "win_rate": rate,
        "win_rate_ci95": [max(0.0, rate - 0.2), min(1.0, rate + 0.2)],
        "mean_return": 2 * rate - 1,
        "std_return": 0.5,
        "return_ci95": [2 * rate - 1.3, 2 * rate - 0.7],
    }


def _huang_run(root: Path) -> Path:
    """A run directory shaped as ``arena run huang2017_pong`` writes it."""
    run = root / "huang2017_pong" / "atari_pong_v0__s0__x"
    rows = []
    for attack in ("fgsm", "noise"):
        for eps, text in ((0.0, "0"), (0.0005, "0.0005"), (1 / 255, "1/255"), (2 / 255, "2/255")):
            score = 3.0 if attack == "noise" or eps == 0 else 3.0 - 4000 * eps
            rows.append(
                {
                    "victim": "pong_ppo",
                    "attack": attack,
                    "eps": eps,
                    "eps_text": text,
                    "attack_spec": None if eps == 0 else f"{attack}:eps={text}",
                    "episodes": 2,
                    "mean_return": score,
                    "return_ci95": [score - 2, score + 2],
                    "win_rate": 1.0 if score > 0 else 0.0,
                    "win_rate_ci95": [0.34, 1.0],
                    "flip_rate": None if eps == 0 else min(1.0, 200 * eps),
                    "attacked_fraction": None if eps == 0 else 1.0,
                }
            )
    _write(
        run / "config.json",
        {
            "experiment": "huang2017_pong",
            "env": "atari_pong_v0",
            "victims": {"pong_ppo": {"spec": "atari:/nowhere/pong_ppo.npz", "kind": "atari"}},
            "attacks": {"fgsm": "fgsm:eps={eps}", "noise": "noise:eps={eps}"},
            "eps": ["0", "0.0005", "1/255", "2/255"],
            "episodes": 2,
            "env_kwargs": {"max_episode_steps": 100},
            "seed": 0,
        },
    )
    _write(run / "metadata.json", {"git_sha": "abc", "versions": {"numpy": "2"}})
    _write(run / "results.json", {"rows": rows})
    return run


def test_huang_run_score_and_flip_rate_vs_eps(tmp_path):
    run = _huang_run(tmp_path)
    page_path = write_report(run, samples=False)
    page = page_path.read_text()
    _offline(page)
    assert "mean_return [95% CI]" in page and "win_rate [95% CI]" in page
    assert "<td>-12.69 [-14.7, -10.7]</td>" in page  # fgsm at 1/255
    assert "rows: mean score vs ε with 95% intervals" in page
    assert "rows: action-flip rate vs ε" in page
    assert len(re.findall(r'<img src="data:image/png', page)) == 2
    assert "<video" not in page


def test_huang_run_sample_episode_failure_is_a_note(tmp_path):
    run = _huang_run(tmp_path)
    page = write_report(run, out=tmp_path / "page").read_text()
    assert "no sample episode" in page and "<video" not in page


def _gleave_run(root: Path) -> Path:
    """A run directory shaped as ``arena run gleave2020 --quick`` writes it."""
    run = root / "gleave2020" / "toy_pass__s0__x"
    adv = run / "adversaries" / "toy_pass"
    _write(run / "config.json", {"quick": True, "games": "toy_pass", "timesteps": 24576})
    _write(run / "metadata.json", {"git_sha": None})
    labels = [
        f"{v} victim vs {o}"
        for v in ("normal", "masked")
        for o in ("adversary", "normal opponent", "random", "zero")
    ]
    rows = {
        label: _score(wins)
        for label, wins in zip(labels, (3, 20, 20, 20, 9, 20, 20, 19), strict=True)
    }
    _write(
        run / "results.json",
        {
            "games": {
                "toy_pass": {
                    "env": "toy_pass_v0",
                    "victim": f"sb3:{RUNNER}",
                    "adversary": f"run:{adv}",
                    "victim_win_rates": rows,
                }
            },
            "timesteps": 24576,
            "episodes": 20,
        },
    )
    _write(adv / "adversary_run.json", {"env": "toy_pass_v0", "adversary_seat": "blocker"})
    _write(adv / "results.json", {"env": "toy_pass_v0", "rolling_win_rate": 0.8})
    _progress(adv / "progress.csv")
    (adv / "checkpoints").mkdir()
    _write(adv / "checkpoints" / "state.json", {"ignored": True})
    # a figure the experiment saved itself
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(run / "toy_pass_training.png")
    return run


def test_gleave_run_tables_training_curve_and_saved_figure(tmp_path):
    run = _gleave_run(tmp_path)
    page = write_report(run, out=tmp_path / "page").read_text()
    _offline(page)
    sections = re.findall(r'<section class="run"><h2>([^<]*)</h2>', page)
    assert sections == ["toy_pass__s0__x", "adversaries/toy_pass", "Notes"]
    assert "adversaries/toy_pass: no sample episode: no policy.zip" in page
    assert "normal victim vs adversary" in page and "masked victim vs zero" in page
    assert "<td>0.15 [0, 0.35]</td>" in page  # win rate with its interval
    assert "win rate over training (last: 0.92 at 24,576 steps" in page
    assert "toy_pass_training.png" in page
    assert "state.json" not in page  # checkpoints are not runs
    assert len(re.findall(r'<img src="data:image/png', page)) == 3  # bars, curve, saved


def test_gleave_reward_study_curves_and_final_scores(tmp_path):
    run = tmp_path / "gleave2020" / "study"
    _write(run / "config.json", {"reward_study": True})
    variants = {}
    for k, label in enumerate(("sparse", "game shaping (c)")):
        variants[label] = {
            "run": f"/runs/{k}",
            "timesteps": [2048, 4096, 6144],
            "win_rate": [0.0, 0.1 * k, 0.2 * k],
            "victim_vs_final_adversary": _score(10 - 5 * k),
        }
    _write(run / "results.json", {"games": {"toy_pass": variants}, "timesteps": 6144})
    adv = run / "adversaries" / "toy_pass__sparse"
    _write(adv / "adversary_run.json", {"env": "toy_pass_v0", "adversary_seat": "blocker"})
    page = write_report(run).read_text()
    assert "toy_pass: over training" in page  # the learning curves of both variants
    assert "<td>/runs/1</td>" in page and "victim_vs_final_adversary" in page
    assert "<th>game shaping (c)</th>" in page and "<td>0.25 [0.05, 0.45]</td>" in page
    assert "adversaries/toy_pass__sparse: no sample episode: no policy.zip" in page


def test_report_is_replaced_whole_and_atomically(tmp_path, monkeypatch):
    run = _gleave_run(tmp_path)
    out = tmp_path / "page"
    write_report(run, out=out, samples=False)
    first = (out / "index.html").read_text()

    def broken(page, run_dir):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(report_mod, "_document", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_report(run, out=out, samples=False)
    assert (out / "index.html").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gleave2020", "page"]
    monkeypatch.undo()
    write_report(run, out=out, samples=False)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html"]


def test_large_videos_go_next_to_the_page(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(report_mod, "INLINE_MAX_BYTES", 100)
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    page_path = write_report(run, out=tmp_path / "page")
    files = sorted(p.name for p in page_path.parent.iterdir())
    assert files[0] == MARKER and files[2] == "index.html" and files[1].endswith("_ep0.mp4")
    page = page_path.read_text()
    assert f'<source src="{files[1]}"' in page and "keep the two together" in page


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing run", ("no run directory at",)),
        ("nothing to report", ("nothing to report in",)),
        ("foreign out", ("is not empty and is not an arena report",)),
        ("bad record", ("no record at",)),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path, case, fragments):
    run, extra = _gleave_run(tmp_path), []
    if case == "missing run":
        run = tmp_path / "nope"
    elif case == "nothing to report":
        run = tmp_path / "empty"
        run.mkdir()
    elif case == "foreign out":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep")
        extra = ["--out", tmp_path / "mine"]
    elif case == "bad record":
        extra = ["--record", tmp_path / "nope"]
    assert_one_line_error(cli("report", run, *extra), *fragments)
    if case == "foreign out":
        assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert not (run / "report").exists()


# ---------------------------------------------------------------- headless Chromium


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    No extra package: messages are JSON objects terminated by a NUL byte.
    """

    def __init__(self, exe: str, *, width: int = 1400, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="arena-chromium-")
        to_r, self._w = os.pipe()
        self._r, from_w = os.pipe()

        def child() -> None:  # chromium reads fd 3 and writes fd 4
            r, w = os.dup(to_r), os.dup(from_w)  # fresh numbers: dup2 then clears CLOEXEC
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            preexec_fn=child,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, timeout: float = 60.0) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"chromium did not answer {method}")
                if select.select([self._r], [], [], left)[0]:
                    chunk = os.read(self._r, 1 << 20)
                    if not chunk:
                        raise RuntimeError("chromium closed the pipe")
                    self._buf += chunk
            raw, _, self._buf = self._buf.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str, *, timeout: float = 60.0) -> Any:
        res = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(str(res["exceptionDetails"]))
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        res = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(res["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)


_INSPECT = """new Promise(function (resolve) {
  function settled() {
    return document.readyState === 'complete' &&
      [...document.images].every(function (i) { return i.complete; }) &&
      [...document.querySelectorAll('video')].every(function (v) {
        return v.readyState >= 2 || v.dataset.state.indexOf('error') === 0; });
  }
  function report() {
    resolve({
      tables: [...document.querySelectorAll('table.results')].map(function (t) {
        return {rows: t.rows.length, text: t.innerText}; }),
      images: [...document.images].map(function (i) {
        return {w: i.naturalWidth, h: i.naturalHeight, alt: i.alt}; }),
      videos: [...document.querySelectorAll('video')].map(function (v) {
        return {readyState: v.readyState, duration: v.duration, width: v.videoWidth,
                height: v.videoHeight, state: v.dataset.state,
                error: v.error ? v.error.code : null}; }),
      declared: Number(document.body.dataset.videos),
    });
  }
  var timer = setInterval(function () {
    if (settled()) { clearInterval(timer); report(); } }, 100);
  setTimeout(function () { clearInterval(timer); report(); }, 30000);
})"""


def open_in_chromium(page: Path, screenshot: Path) -> dict[str, Any]:
    """Load ``page`` in headless Chromium; what it shows (tables, images, videos);
    a full-page screenshot saved at ``screenshot``."""
    exe = find_chromium()
    assert exe is not None
    browser = Chromium(exe)
    try:
        browser.open(page.resolve().as_uri())
        state = browser.evaluate(_INSPECT, timeout=60)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(screenshot)
    finally:
        browser.close()
    return state


def _check_in_browser(page: Path, name: str, *, tables: int, images: int, videos: int) -> None:
    shot = SCREENSHOTS / f"{name}.png"
    state = open_in_chromium(page, shot)
    print(f"screenshot of {page}: {shot}")
    assert len(state["tables"]) >= tables, state["tables"]
    for table in state["tables"]:
        assert table["rows"] >= 2
    assert any("[95% CI]" in t["text"] for t in state["tables"])
    assert len(state["images"]) >= images
    assert all(i["w"] > 100 and i["h"] > 100 for i in state["images"]), state["images"]
    assert state["declared"] == len(state["videos"]) >= videos
    for v in state["videos"]:  # each video decoded: metadata, a frame, a duration
        assert v["error"] is None and v["state"] == "loaded", v
        assert v["readyState"] >= 2 and v["duration"] > 0 and v["width"] > 0, v
    assert shot.stat().st_size > 10_000


needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium on PATH: `make browser` installs Debian's chromium",
)


@pytest.mark.slow
@needs_chromium
def test_reports_in_headless_chromium(cli, tmp_path):
    run = _evaluate(cli, tmp_path, "--record", tmp_path / "rec")
    assert cli("report", run).code == 0
    _check_in_browser(run / "report" / "index.html", "evaluate", tables=1, images=2, videos=1)
    gleave = _gleave_run(tmp_path)
    page = write_report(gleave, records=[tmp_path / "rec"])
    _check_in_browser(page, "gleave_shape", tables=1, images=3, videos=1)


def _atari_dir() -> Path | None:
    value = os.environ.get("ARENA_ATARI_DIR")
    path = Path(value) if value else None
    return path if path is not None and (path / "pong_ppo.npz").is_file() else None


@pytest.mark.slow
@needs_chromium
def test_gleave_quick_run_report_in_chromium(cli, tmp_path):
    result = cli(
        "run",
        "gleave2020",
        "--quick",
        "--timesteps",
        "4096",
        "--episodes",
        "10",
        "--workers",
        "1",
        "--runs",
        tmp_path / "runs",
    )
    assert result.code == 0, result.err
    (run,) = (tmp_path / "runs" / "gleave2020").iterdir()
    assert cli("report", run).code == 0
    # the trained adversary gets a sample episode against its victim
    _check_in_browser(run / "report" / "index.html", "gleave2020", tables=1, images=3, videos=1)


@pytest.mark.slow
@pytest.mark.atari
@pytest.mark.needs_data
@needs_chromium
@pytest.mark.skipif(
    _atari_dir() is None,
    reason="needs the pretrained Atari victims: set ARENA_ATARI_DIR (e.g. ../shared/atari)",
)
def test_huang_run_report_in_chromium(cli, tmp_path):
    result = cli(
        "run",
        "huang2017_pong",
        "--quick",
        "--max-steps",
        "100",
        "--eps",
        "0",
        "0.0005",
        "1/255",
        "--runs",
        tmp_path / "runs",
    )
    assert result.code == 0, result.err
    (run,) = (tmp_path / "runs" / "huang2017_pong").iterdir()
    assert cli("report", run).code == 0
    page = run / "report" / "index.html"
    assert "victim pong_ppo under fgsm:eps=1/255: pixel-attack video" in page.read_text()
    _check_in_browser(page, "huang2017_pong", tables=1, images=3, videos=1)
