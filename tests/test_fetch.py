"""``arena fetch`` and ``arena victims`` against a loopback HTTP server the test starts:
checksums, truncated and interrupted downloads (resumed with a range request, or
restarted where the server has none), no network; nothing half-written in the cache."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading

import pytest
from conftest import assert_one_line_error

from arena import victims
from arena.victims import Victim

BODY = bytes(range(256)) * 400  # 102,400 bytes


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    ranges = True
    truncate_to: int | None = None  # sends fewer bytes, honestly announced
    break_after: int | None = None  # announces all, sends part, closes
    requests: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.headers.get("Range") or "")
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if srv.truncate_to is not None:
            body = body[: srv.truncate_to]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.break_after is not None:
            self.wfile.write(body[: srv.break_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ARENA_FETCH_MIRROR", f"http://127.0.0.1:{srv.server_address[1]}")
    monkeypatch.setenv("ARENA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ARENA_ZOO_DIR", raising=False)
    yield srv
    srv.shutdown()


def _victim(monkeypatch, srv, name="toy/agent.pkl", body=BODY, sha=None) -> Victim:
    v = Victim(
        name=name,
        kind="zoo",
        repo="someone/zoo",
        commit="c0ffee",
        path=f"agent-zoo/{name}",
        sha256=sha or hashlib.sha256(body).hexdigest(),
        size=len(BODY),
        licence="MIT",
        what="a test file",
    )
    srv.files[f"/someone/zoo/c0ffee/agent-zoo/{name}"] = body
    monkeypatch.setitem(victims.CATALOG, name, v)
    return v


def test_fetch_checks_and_places_the_file_and_zoo_names_resolve_there(cli, server, monkeypatch):
    v = _victim(monkeypatch, server)
    done = cli("fetch", v.name, "--json")
    assert done.code == 0, done.err
    target = v.target()
    assert target.read_bytes() == BODY and not target.with_name("agent.pkl.part").exists()
    assert json.loads(done.out.splitlines()[-1])["fetched"][0]["path"] == str(target)
    from agents.zoo import resolve_zoo_path

    assert resolve_zoo_path(v.name) == target  # zoo: short names find the cache
    listed = cli("victims", "--json")
    rows = {r["name"]: r for r in json.loads(listed.out)["victims"]}
    assert rows[v.name]["present"] == str(target)
    again = cli("fetch", v.name)  # already there and right: no request
    assert again.code == 0 and len(server.requests) == 1


def test_a_wrong_checksum_keeps_nothing(cli, server, monkeypatch):
    v = _victim(monkeypatch, server, sha="0" * 64)
    bad = cli("fetch", v.name)
    assert_one_line_error(bad, "is not the published", "nothing was kept")
    assert not v.target().exists() and not list(v.target().parent.glob("*.part"))


def test_a_truncated_download_is_continued_with_a_range_request(cli, server, monkeypatch):
    v = _victim(monkeypatch, server)
    server.truncate_to = 40_000
    first = cli("fetch", v.name)
    assert_one_line_error(first, "stopped at 40,000 of 102,400 bytes", "continues it")
    assert not v.target().exists()
    server.truncate_to = None
    second = cli("fetch", v.name)
    assert second.code == 0, second.err
    assert server.requests[-1] == "bytes=40000-"
    assert v.target().read_bytes() == BODY


def test_without_ranges_an_interrupted_download_starts_over(cli, server, monkeypatch):
    v = _victim(monkeypatch, server)
    server.break_after = 30_000
    first = cli("fetch", v.name)
    assert_one_line_error(first, "stopped at 30,000", "continues it")
    assert not v.target().exists()
    server.break_after, server.ranges = None, False
    second = cli("fetch", v.name)
    assert second.code == 0, second.err
    assert v.target().read_bytes() == BODY


def test_a_server_sending_too_much_keeps_nothing(cli, server, monkeypatch):
    v = _victim(monkeypatch, server, body=BODY + b"extra")
    bad = cli("fetch", v.name)
    assert_one_line_error(bad, "more than the published")
    assert not v.target().exists() and not list(v.target().parent.glob("*.part"))


def test_no_network_says_where_to_put_the_file(cli, monkeypatch, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    monkeypatch.setenv("ARENA_FETCH_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ARENA_HOME", str(tmp_path / "home"))
    name = "sumo/ants/agent_parameters-v1.pkl"
    bad = cli("fetch", name)
    assert_one_line_error(bad, "cannot download", "put the file by hand at", str(tmp_path / "home"))
    assert not (tmp_path / "home" / "zoo" / name).exists()


def test_unknown_names_list_the_valid_ones(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_HOME", str(tmp_path / "home"))
    bad = cli("fetch", "zoo", "nope")
    assert_one_line_error(bad, "unknown victim 'nope'", "valid: all, zoo, atari", "pong_ppo.pth")
    assert not (tmp_path / "home").exists()


def test_the_catalog_pins_every_published_file():
    assert len([v for v in victims.CATALOG.values() if v.kind == "zoo"]) == 19
    for v in victims.CATALOG.values():
        assert len(v.sha256) == 64 and v.size > 0 and v.url.startswith("https://")
    ysnp = victims.CATALOG["you-shall-not-pass/agent1_parameters-v1.pkl"]
    assert ysnp.path.endswith("agent1_parameters-v1pkl")  # as published, no dot
