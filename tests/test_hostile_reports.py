"""``arena report`` against hostile run directories, tried as an attacker would: links
to secrets, devices and pipes, link loops, runs and records outside the directory
given, endless sample episodes, huge numbers, TeX in labels, deep nesting, charts of
thousands of bars, and an ``--out`` that would replace the runs.

Every bad input ends as one ``arena: error:`` line (exit 2) or, inside a report, as a
note on the page; nothing outside the runs directory is read, nothing hangs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import struct
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error

from arena.artifacts import (
    BarChart,
    LineChart,
    RunFileError,
    RunResults,
    SampleRecipe,
    Score,
    Series,
    Table,
)
from arena.report import MARKER, write_report

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "arena" / "assets" / "toy_pass_v0__runner.zip"
GOLDEN = Path(__file__).parent / "data" / "golden_toy_pass"
SECRET = "SECRET_TOKEN=hunter2"
BIG = 10**400
DEEP_LIST = "[" * 700 + "1" + "]" * 700
DEEP_DICT = '{"a":' * 900 + "1" + "}" * 900


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""

    def expire(*_: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _results(**changes: Any) -> dict[str, Any]:
    """A typed ``results.json`` of a toy_pass evaluate run (no record), as a dict."""
    recipe = SampleRecipe(
        env="toy_pass_v0",
        policies={"runner": "random", "blocker": "zero"},
        label="its policies",
    )
    typed = RunResults(
        kind="evaluate",
        title="scores on toy_pass_v0",
        headline=Table("Scores by seat", ("seat", "win rate [95% CI]"), (("runner", Score(0.5)),)),
        figures=(BarChart("Win rate by seat", "win rate", ("runner",), (Score(0.5),)),),
        samples=(recipe,),
    )
    data = json.loads(json.dumps(typed.to_json()))
    data.update(changes)
    return data


def _run(root: Path, name: str = "eval", **changes: Any) -> Path:
    run = root / name
    _write(run / "results.json", _results(**changes))
    _write(run / "config.json", {"env": "toy_pass_v0"})
    return run


def _notes(page: str) -> list[str]:
    if "<h2>Notes</h2>" not in page:
        return []
    block = page[page.index("<h2>Notes</h2>") :]
    return [re.sub(r"<[^>]+>", "", n) for n in re.findall(r"<li>(.*?)</li>", block, re.S)]


def _embedded(page: str) -> list[bytes]:
    return [
        base64.b64decode(b64)
        for b64 in re.findall(r'src="data:(?:image|video)/[a-z0-9]+;base64,([^"]+)"', page)
    ]


def _adversary(directory: Path, *, victim: str = "random", trained: bool = True) -> Path:
    """A training run's marker (and a stand-in policy file)."""
    from arena.artifacts.training_run import AdversaryConfig, PPOConfig, RunMarker

    marker = RunMarker(
        "toy_pass_v0", {"runner": victim}, 0, AdversaryConfig(PPOConfig()), "blocker"
    )
    _write(directory / "adversary_run.json", marker.to_json())
    if trained:
        (directory / "policy.zip").write_bytes(b"not read here")
    return directory


def _outside_secret(tmp_path: Path) -> Path:
    return _write(tmp_path / "outside" / "secret.txt", SECRET + "\n")


# ---------------------------------------------------------------- F09: media links


def test_media_links_devices_and_huge_files_are_never_embedded(tmp_path, monkeypatch):
    from arena.report import reading

    secret = _outside_secret(tmp_path)
    run = _run(tmp_path / "runs")
    (run / "leak.png").symlink_to(secret)
    (run / "environ.gif").symlink_to("/proc/self/environ")
    (run / "zero.mp4").symlink_to("/dev/zero")
    os.mkfifo(run / "pipe.webm")
    (run / "folder.png").mkdir()
    (run / "huge.png").write_bytes(b"\x89PNG" + b"0" * 5000)
    (run / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\nfine")
    monkeypatch.setattr(reading, "MAX_MEDIA_BYTES", 4096)
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    with deadline(60):
        page = write_report(tmp_path / "runs", out=tmp_path / "page", samples=False).read_text()
    blobs = _embedded(page)
    assert not any(b"hunter2" in b or b"SECRET" in b for b in blobs)
    assert b"\x89PNG\r\n\x1a\nfine" in blobs
    notes = "\n".join(_notes(page))
    for name in ("leak.png", "environ.gif", "zero.mp4", "pipe.webm"):
        assert f"{name}: not shown (a link, or not a regular file)" in notes
    assert "huge.png: not shown" in notes
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == [MARKER, "index.html"]


def test_media_swapped_for_a_link_after_listing_is_not_copied(tmp_path):
    """The copy itself refuses a link, a pipe, a device and an oversized file (a file
    swapped between listing and copying)."""
    from arena.report.media import MediaError, copy_media

    secret = _outside_secret(tmp_path)
    (tmp_path / "link.png").symlink_to(secret)
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "big.png").write_bytes(b"0" * 100)
    with deadline(30):
        for name in ("link.png", "pipe.png", "zero.png"):
            with pytest.raises(MediaError, match="not read"):
                copy_media(tmp_path / name, tmp_path / f"copy_{name}")
        with pytest.raises(MediaError, match="not shown"):
            copy_media(tmp_path / "big.png", tmp_path / "copy_big.png", limit=10)
    assert not (tmp_path / "copy_link.png").exists()


def test_run_files_that_are_links_or_pipes_are_not_read(tmp_path):
    outside = _write(tmp_path / "outside" / "results.json", _results(title="LEAKED TITLE"))
    run = tmp_path / "runs" / "eval"
    run.mkdir(parents=True)
    (run / "results.json").symlink_to(outside)
    (run / "metadata.json").symlink_to("/dev/zero")
    os.mkfifo(run / "progress.csv")
    os.mkfifo(run / "config.json")
    with deadline(60):
        page = write_report(tmp_path / "runs", out=tmp_path / "page", samples=False).read_text()
    assert "LEAKED TITLE" not in page
    notes = "\n".join(_notes(page))
    for name in ("results.json", "metadata.json", "progress.csv", "config.json"):
        assert f"eval: {name}: not read (a link, or not a regular file)" in notes


# ---------------------------------------------------------------- F10: folder links


def test_folder_link_loops_and_links_outside_are_not_followed(tmp_path):
    runs = tmp_path / "runs"
    _run(runs)
    (runs / "x").mkdir()
    for name in "abcd":  # 4 links up per level: 4**40 paths if they were followed
        (runs / "x" / name).symlink_to("..")
    outside = _run(tmp_path / "elsewhere", "secret_run", title="OUTSIDE RUN")
    (runs / "other").symlink_to(outside)
    (runs / "rec").symlink_to(shutil.copytree(GOLDEN, tmp_path / "elsewhere" / "rec"))
    t0 = time.monotonic()
    with deadline(60):
        page = write_report(runs, out=tmp_path / "page", samples=False).read_text()
    assert time.monotonic() - t0 < 30
    assert "OUTSIDE RUN" not in page and "Recorded episodes" not in page
    notes = _notes(page)
    for name in ("x/a", "x/b", "other", "rec"):
        assert f"{name}: a link to a folder, not followed" in notes


def test_the_walk_is_bounded(tmp_path, monkeypatch):
    from arena.report import discovery

    runs = tmp_path / "runs"
    deep = runs
    for i in range(6):
        deep = deep / f"d{i}"
        _write(deep / "config.json", {"env": "toy_pass_v0"})
    monkeypatch.setattr(discovery, "MAX_DEPTH", 3)
    page = write_report(runs, out=tmp_path / "p1", samples=False).read_text()
    assert "more than 3 levels deep" in page and page.count('<section class="run" id=') == 3
    monkeypatch.setattr(discovery, "MAX_DEPTH", 32)
    monkeypatch.setattr(discovery, "MAX_DIRS", 2)
    page = write_report(runs, out=tmp_path / "p2", samples=False).read_text()
    assert "stopped looking for runs after 2 folders" in page


def test_a_record_whose_manifest_is_a_link_is_not_read(tmp_path):
    runs = tmp_path / "runs"
    rec = shutil.copytree(GOLDEN, runs / "rec")
    (rec / "manifest.json").unlink()
    (rec / "manifest.json").symlink_to(
        shutil.copytree(GOLDEN, tmp_path / "out_rec") / "manifest.json"
    )
    _run(runs)
    page = write_report(runs, out=tmp_path / "page", samples=False).read_text()
    assert "rec/manifest.json: not read (a link, or not a regular file)" in _notes(page)
    assert "Recorded episodes" not in page


# ---------------------------------------------------------------- F08: endless samples


def test_an_endless_sample_episode_is_dropped_with_a_note(tmp_path, monkeypatch):
    from arena.report import episodes

    monkeypatch.setattr(episodes, "MAX_SAMPLE_STEPS", 200)
    data = _results()
    data["samples"][0].update(env_kwargs={"max_steps": 10**9}, policies={"runner": "zero"})
    run = _run(tmp_path / "runs")
    _write(run / "results.json", data)
    with deadline(120):
        page = write_report(run, out=tmp_path / "page").read_text()
    assert (
        'eval: no sample episode: the episode ran past 200 steps (env_kwargs {"max_steps": '
        "1000000000}); dropped" in " ".join(_notes(page)).replace("&#34;", '"')
    )
    assert "<video" not in page
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == [MARKER, "index.html"]


def test_an_endless_attacked_sample_is_dropped_too(tmp_path, monkeypatch):
    """An attacked seat counts the steps through its attack (its policy stays as it is)."""
    from arena.report import episodes
    from arena.report.media import PageFiles

    monkeypatch.setattr(episodes, "step_cap", lambda env: 5)
    recipe = SampleRecipe(
        "toy_pass_v0",
        {"runner": f"sb3:{RUNNER}", "blocker": "zero"},
        attacks={"runner": "noise:eps=0.1"},
        env_kwargs={"max_steps": 10**6},
    )
    files = PageFiles(tmp_path, root=tmp_path)
    with deadline(120), pytest.raises(episodes.SampleError, match="ran past 5 steps"):
        episodes.play_sample(recipe, files, "s", "eval")


@pytest.mark.parametrize(
    "value",
    [[1], {"a": 1}, json.loads(DEEP_LIST), BIG, float("inf")],
    ids=["list", "object", "deep", "bigint", "inf"],
)
def test_sample_env_kwargs_must_be_plain_values(cli, tmp_path, value):
    run = _run(tmp_path / "runs")
    data = _results()
    data["samples"][0]["env_kwargs"] = {"max_steps": value}
    (run / "results.json").write_text(json.dumps(data))
    assert_one_line_error(
        cli("report", run, "--out", tmp_path / "page"), "samples[0].env_kwargs.max_steps"
    )
    assert not (tmp_path / "page").exists()


def test_legacy_env_kwargs_that_are_not_plain_values_are_a_note(tmp_path):
    run = tmp_path / "runs" / "eval"
    _write(
        run / "config.json",
        {
            "env": "toy_pass_v0",
            "policies": {"runner": "random", "blocker": "zero"},
            "env_kwargs": {"max_steps": json.loads(DEEP_LIST)},
        },
    )
    _write(run / "results.json", {"seats": {"runner": {"win_rate": 0.5}}})
    with deadline(60):
        page = write_report(run, out=tmp_path / "page").read_text()
    assert any(
        "no sample episode: env_kwargs.max_steps must be a plain value" in n for n in _notes(page)
    )


# ---------------------------------------------------------------- F04: marker devices


@pytest.mark.parametrize("kind", ["devzero", "fifo", "link_outside", "directory"])
def test_a_training_marker_that_is_not_a_regular_file_is_a_note(tmp_path, kind):
    from arena.artifacts.run_samples import training_sample

    runs = tmp_path / "runs"
    run = _adversary(runs / "adv")
    _write(
        run / "results.json",
        {
            "env": "toy_pass_v0",
            "adversary_seat": "blocker",
            "victims": {"runner": "random"},
            "timesteps": 1,
            "rolling_win_rate": 0.5,
        },
    )
    marker = run / "adversary_run.json"
    real = marker.read_text()
    marker.unlink()
    if kind == "devzero":
        marker.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(marker)
    elif kind == "link_outside":
        marker.symlink_to(_write(tmp_path / "outside" / "adversary_run.json", real))
    else:
        marker.mkdir()
    notes: list[str] = []
    with deadline(60):
        assert training_sample(run, notes) is None
        page = write_report(runs, out=tmp_path / "page").read_text()
    assert notes == ["adversary_run.json: not read (a link, or not a regular file)"]
    assert "adv: adversary_run.json: not read (a link, or not a regular file)" in _notes(page)


def test_a_broken_training_marker_is_a_note_not_a_traceback(tmp_path):
    from arena.artifacts.run_samples import training_sample

    run = _adversary(tmp_path / "adv")
    data = json.loads((run / "adversary_run.json").read_text())
    data["config"] = "not an object"
    _write(run / "adversary_run.json", data)
    notes: list[str] = []
    assert training_sample(run, notes) is None
    (note,) = notes
    assert note.startswith("no sample episode: ") and "config" in note and "\n" not in note


# ---------------------------------------------------------------- F12: huge charts


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_a_bar_chart_of_thousands_of_labels_is_capped():
    from arena.report import plots

    n = 5000
    chart = BarChart(
        "t", "v", tuple(f"l{i}" for i in range(n)), tuple(Score(0.5) for _ in range(n))
    )
    t0 = time.monotonic()
    png, note = plots.figure(chart)
    assert time.monotonic() - t0 < 30
    assert note == f"the first {plots.MAX_BARS} of {n} bars"
    _, height = _png_size(png)
    assert height <= 100 * (0.9 + 0.38 * plots.MAX_BARS) + 1
    long = BarChart("t", "v" * 10**5, ("x" * 10**5,), (Score(0.5),))
    assert _png_size(plots.figure(long)[0])[1] < 500  # a label is cut, not drawn whole


def test_line_charts_cap_series_and_points():
    from arena.report import plots

    many = tuple(Series(f"s{i}", (0.0, 1.0), (0.0, 1.0)) for i in range(50))
    long = (Series("long", tuple(float(i) for i in range(100_000)), (0.5,) * 100_000),)
    png, note = plots.figure(LineChart("t", "x", "y", many + long))
    assert _png_size(png)[0] > 0
    assert f"the first {plots.MAX_SERIES} of 51 lines" in note
    png, note = plots.figure(LineChart("t", "x", "y", long))
    assert note == f"at most {plots.MAX_POINTS:,} points a line, of 100,000"


def test_a_huge_progress_log_is_thinned(tmp_path):
    from arena.report import reading

    path = tmp_path / "progress.csv"
    rows = "".join(f"{i},{(i % 100) / 100}\n" for i in range(200_000))
    path.write_text("timesteps,win_rate\n" + rows)
    points = reading.read_progress(path, [])
    assert len(points) <= reading.MAX_PROGRESS_POINTS + 1
    assert points[-1].timesteps == 199_999


# ---------------------------------------------------------------- F07/F11: tracebacks


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["headline"]["rows"][0].__setitem__(1, {"value": BIG}), "must be a finite"),
        (
            lambda d: d["figures"].append(
                {
                    "kind": "lines",
                    "title": "t",
                    "x_label": "x",
                    "y_label": "y",
                    "series": [{"label": "s", "x": [BIG], "y": [1]}],
                }
            ),
            "figures[1].series[0].x[0] must be a finite number, got int 1.000e+400",
        ),
        (lambda d: d["samples"][0].update(seed=BIG), "samples[0].seed=1.000e+400 is out of range"),
        (lambda d: d.update(title=json.loads(DEEP_LIST)), "title must be non-empty text"),
    ],
    ids=["score", "series", "seed", "deep_title"],
)
def test_huge_numbers_in_typed_results_are_one_line(cli, tmp_path, change, fragment):
    run = _run(tmp_path / "runs")
    data = _results()
    change(data)
    (run / "results.json").write_text(json.dumps(data))
    result = cli("report", run, "--out", tmp_path / "page")
    assert_one_line_error(result, "results.json", fragment)
    assert len(result.err) < 500


def test_run_results_errors_never_recurse_or_overflow():
    data = _results(title=json.loads(DEEP_DICT))
    with pytest.raises(RunFileError) as err:
        RunResults.from_json(data, "results.json")
    assert len(str(err.value)) < 300 and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("file", "change", "fragment"),
    [
        ("config.json", {"seed": BIG}, "seed=1.000e+400 is out of range"),
        ("config.json", {"timesteps": BIG}, "timesteps=1.000e+400 is out of range"),
        ("config.json", {"policies": json.loads(DEEP_LIST)}, "'policies' must be"),
        ("adversary_run.json", {"seed": BIG}, "seed=1.000e+400 is out of range"),
    ],
    ids=["seed", "timesteps", "deep_policies", "marker_seed"],
)
def test_huge_or_deep_config_values_are_one_line(cli, tmp_path, file, change, fragment):
    run = tmp_path / "runs" / "r"
    if file == "adversary_run.json":
        _adversary(run)
    else:
        _write(run / file, {"env": "toy_pass_v0"})
    data = json.loads((run / file).read_text())
    data.update(change)
    (run / file).write_text(json.dumps(data))
    result = cli("report", run, "--out", tmp_path / "page")
    assert_one_line_error(result, file, fragment)
    assert len(result.err) < 500


def test_huge_numbers_deep_lists_and_tex_render_as_text(tmp_path):
    data = _results(
        deep=json.loads(DEEP_LIST),
        deeper=json.loads(DEEP_DICT),
        big=BIG,
        numbers=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, BIG],
        wide={f"k{i}": i for i in range(2000)},
        long="x" * 100_000,
    )
    data["headline"]["rows"][0][0] = BIG
    bars = data["figures"][0]
    bars["value_label"] = r"$\undefinedmacro{x}$"
    bars["labels"] = [r"$\frac{1}{$"]
    data["figures"].append(
        {
            "kind": "lines",
            "title": "tex",
            "x_label": r"$\sqrt{$",
            "y_label": r"\textbf{y} $x^$",
            "x_scale": "symlog",
            "series": [{"label": r"$\alpha$ $", "x": [0, 1e300], "y": [-1e300, 1e300]}],
        }
    )
    run = _run(tmp_path / "runs")
    _write(run / "results.json", data)
    _write(run / "config.json", {"env": "toy_pass_v0", "deep": json.loads(DEEP_LIST)})
    _write(run / "metadata.json", {"deep": json.loads(DEEP_LIST), "n": BIG})
    with deadline(120):
        page = write_report(run, out=tmp_path / "page", samples=False).read_text()
    assert "<td>1.000e+400</td>" in page
    assert len(re.findall(r'<img src="data:image/png', page)) == 2  # TeX drawn as text
    assert not any("not drawn" in n for n in _notes(page))
    assert "1000 more keys not shown" not in page and "more keys not shown" in page
    assert len(page) < 2_000_000


# the shapes of results.json before schema version 1, each with a crafted value
LEGACY = {
    "evaluate_seat_bigint": {"seats": {"runner": {"win_rate": BIG}}},
    "evaluate_count_bigint": {"seats": {"runner": {"win_rate": 0.5, "wins": BIG}}},
    "evaluate_flip_bigint": {"seats": {"runner": {"win_rate": 0.5, "flip_rate": BIG}}},
    "evaluate_env_deep": {"seats": {"runner": {"win_rate": 0.5}}, "env": json.loads(DEEP_LIST)},
    "generic_list_bigint": {"numbers": [1, BIG]},
    "generic_row_list_bigint": {"rows_x": [{"a": [1, BIG]}]},
    "generic_row_ci_bigint": {"rows_x": [{"win_rate": 0.5, "win_rate_ci95": [0, BIG]}]},
    "generic_row_value_bigint": {"rows_x": [{"win_rate": BIG, "win_rate_ci95": [0, 1]}]},
    "generic_deep": {"rows_x": [{"a": json.loads(DEEP_LIST)}], "b": json.loads(DEEP_DICT)},
    "huang_eps_bigint": {"rows": [{"eps": BIG, "victim": "v", "attack": "a"}]},
    "huang_eps_inf": {
        "rows": [
            {"eps": float("inf"), "mean_return": 1.0, "victim": "v", "attack": "a"},
            {"eps": 0.1, "mean_return": 1.0, "victim": "v", "attack": "a", "flip_rate": BIG},
        ]
    },
    "gleave_curve_bigint": {"games": {"g": {"v": {"timesteps": [BIG], "win_rate": [0.5]}}}},
    "gleave_env_deep": {
        "games": {"g": {"env": json.loads(DEEP_LIST), "victim_win_rates": {"a": {"win_rate": 1}}}}
    },
    "zoo_deep": {"matchups": [{"env": json.loads(DEEP_LIST), "seats": {"r": {"win_rate": 1}}}]},
    "list_top": [1, 2, {"a": 1}],
    "toplevel_string": "just text",
}


@pytest.mark.parametrize("case", list(LEGACY))
def test_legacy_results_with_crafted_values_render(cli, tmp_path, case):
    run = tmp_path / "runs" / "eval"
    _write(run / "results.json", json.dumps(LEGACY[case]))
    result = cli("report", run, "--out", tmp_path / "page")
    assert "Traceback" not in result.err
    if result.code:
        assert_one_line_error(result, "results.json")
    else:
        assert (tmp_path / "page" / "index.html").is_file()


def test_a_log_axis_without_positive_x_falls_back_to_linear(capfd):
    from arena.report import plots

    chart = LineChart("t", "x", "y", (Series("s", (-1.0, 0.0), (1.0, 2.0)),), x_scale="log")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png, note = plots.figure(chart)
    assert note == "no positive x: drawn on a linear axis" and _png_size(png)[0] > 0
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------- F16: --out


def _runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    _run(runs)
    shutil.copytree(GOLDEN, runs / "rec")
    return runs


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    "where", ["runs_marked", "parent", "run_marked", "record_marked", "link_to_runs", "holds_run"]
)
def test_an_out_that_would_replace_runs_is_refused(cli, tmp_path, where):
    runs = _runs(tmp_path)
    before = _listing(tmp_path)
    args: list[Any] = [runs]
    if where == "runs_marked":
        (runs / MARKER).write_text("planted")
        out = runs
    elif where == "parent":
        out = tmp_path
    elif where == "run_marked":
        (runs / "eval" / MARKER).write_text("planted")
        out = runs / "eval"
    elif where == "record_marked":
        (runs / "rec" / MARKER).write_text("planted")
        out = runs / "rec"
    elif where == "link_to_runs":
        (tmp_path / "link").symlink_to(runs)
        out = tmp_path / "link"
    else:  # a report dir elsewhere that was made to hold a run
        out = tmp_path / "page"
        _write(out / MARKER, "planted")
        _run(out, "hidden")
        args = [runs / "eval"]
    before = _listing(tmp_path)
    result = cli("report", *args, "--out", out)
    assert_one_line_error(result, f"--out {out}")
    assert _listing(tmp_path) == before  # nothing replaced, nothing written


def test_a_report_still_replaces_its_own_previous_report(cli, tmp_path):
    runs = _runs(tmp_path)
    out = tmp_path / "page"
    for _ in range(2):
        result = cli("report", runs / "eval", "--out", out)
        assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "index.html"]


# ---------------------------------------------------------------- 12: confinement


def test_records_named_outside_the_runs_are_not_shown_unless_given(cli, tmp_path):
    outside = shutil.copytree(GOLDEN, tmp_path / "elsewhere" / "rec")
    runs = tmp_path / "runs"
    run = _run(runs, records=[str(outside)])
    (run / "linked").symlink_to(outside)  # a relative name that leads out
    data = json.loads((run / "results.json").read_text())
    data["records"].append("linked")
    _write(run / "results.json", data)
    with deadline(120):
        page = write_report(runs, out=tmp_path / "page", samples=False).read_text()
    notes = _notes(page)
    assert f"eval: the record it names, {outside}, lies outside {runs}: not shown" in " ".join(
        notes
    )
    assert any("the record it names, linked, lies outside" in n for n in notes)
    assert "<video" not in page
    # given with --record, the user has chosen it: shown as the run's episode
    result = cli("report", runs, "--out", tmp_path / "page2", "--record", outside)
    assert result.code == 0, result.err
    page = (tmp_path / "page2" / "index.html").read_text()
    assert "record rec: scene video of episode 0" in page
    assert "Recorded episodes" not in page


@pytest.mark.parametrize(
    "policy",
    [
        "run:{outside}/adv",
        "sb3:{outside}/secret.txt",
        "sb3:../outside/secret.txt",
        "zoo:{outside}/secret.txt",
        "atari:{outside}/secret.txt",
        "mix:0.5*zero|0.5*sb3:{outside}/secret.txt",
        "masked:run:{outside}/adv",
    ],
)
def test_sample_policies_outside_the_runs_are_refused(tmp_path, monkeypatch, policy):
    outside = tmp_path / "outside"
    _outside_secret(tmp_path)
    adv = _adversary(outside / "adv")
    os.mkfifo(outside / "adv" / "policy_norm.npz")  # read, it would hang
    monkeypatch.chdir(tmp_path / "outside")  # relative paths: from here
    runs = tmp_path / "runs"
    data = _results()
    data["samples"][0]["policies"]["blocker"] = policy.format(outside=outside)
    _write(_run(runs) / "results.json", data)
    with deadline(60):
        page = write_report(runs, out=tmp_path / "page").read_text()
    (note,) = [n for n in _notes(page) if "no sample episode" in n]
    assert "blocker: policy" in note and "lies outside the runs directory" in note
    assert "<video" not in page
    assert adv.is_dir()


def test_sample_attacks_reading_frames_outside_are_refused(tmp_path):
    outside = shutil.copytree(GOLDEN, tmp_path / "outside" / "rec")
    data = _results()
    data["samples"][0]["policies"]["runner"] = f"sb3:{RUNNER}"
    data["samples"][0]["attacks"] = {"runner": f"universal:eps=0.1,frames={outside}"}
    runs = tmp_path / "runs"
    _write(_run(runs) / "results.json", data)
    with deadline(60):
        page = write_report(runs, out=tmp_path / "page").read_text()
    assert any("reads frames outside the runs directory" in n for n in _notes(page))


def test_shared_data_dirs_and_the_runs_are_allowed(tmp_path, monkeypatch):
    from arena.report import confine

    zoo = tmp_path / "zoo"
    _write(zoo / "kick" / "agent.pkl", "x")
    _write(tmp_path / "runs" / "p.zip", "x")
    monkeypatch.setenv("ARENA_ZOO_DIR", str(zoo))
    monkeypatch.delenv("ARENA_ATARI_DIR", raising=False)

    def why(policy: str) -> str | None:
        recipe = SampleRecipe("toy_pass_v0", {"runner": policy})
        return confine.problem(recipe, tmp_path / "runs")

    assert why("zoo:kick/agent.pkl") is None  # relative: in $ARENA_ZOO_DIR
    assert why(f"zoo:{zoo}/kick/agent.pkl") is None
    assert why(f"sb3:{tmp_path}/runs/p.zip") is None
    assert why(f"sb3:{RUNNER}") is None  # the arena's own assets
    assert why("random") is None
    assert "lies outside" in (why(f"sb3:{tmp_path}/p.zip") or "")
    assert "leads outside the zoo directory" in (why("zoo:../runs/p.zip") or "")
    monkeypatch.setenv("ARENA_ATARI_DIR", str(tmp_path / "atari"))
    _write(tmp_path / "atari" / "pong.npz", "x")
    assert why(f"atari:{tmp_path}/atari/pong.npz") is None


def test_legacy_gleave_adversary_outside_is_not_read(tmp_path):
    outside = tmp_path / "outside" / "adv"
    outside.mkdir(parents=True)
    os.mkfifo(outside / "adversary_run.json")  # read, it would hang
    (outside / "policy.zip").write_bytes(b"x")
    run = tmp_path / "runs" / "gleave"
    _write(
        run / "results.json",
        {
            "games": {
                "g": {
                    "env": "toy_pass_v0",
                    "adversary": f"run:{outside}",
                    "victim_win_rates": {"normal victim vs adversary": {"win_rate": 0.1}},
                },
                "h": {"variant": {"run": str(outside), "timesteps": [1], "win_rate": [0.5]}},
            }
        },
    )
    with deadline(60):
        page = write_report(tmp_path / "runs", out=tmp_path / "page").read_text()
    assert f"gleave: no sample of run:{outside}: it lies outside the runs directory" in _notes(page)
