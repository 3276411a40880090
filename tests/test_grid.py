"""`arena grid` on this machine: grid files, cells checked before anything runs,
resuming, one driver per directory, the grid's results and report."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ASSETS, ROOT, assert_one_line_error

from arena.artifacts.grid import GridSpec

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


EVALUATE = f"""
command = "evaluate"
name = "toy"
[options]
env_id = "toy_pass_v0"
policy = {{ runner = ["{RUNNER}", "random"], blocker = "zero" }}
seed = [0, 1]
episodes = 8
"""


def spec_of(text: str) -> GridSpec:
    import tomllib

    return GridSpec.from_toml(tomllib.loads(text), "grid.toml")


def test_cells_are_every_combination_first_option_slowest():
    spec = spec_of(EVALUATE)
    cells = spec.cells()
    assert spec.n_cells == len(cells) == 4
    assert [(c["policy"]["runner"], c["seed"]) for c in cells] == [
        (RUNNER, 0),
        (RUNNER, 1),
        ("random", 0),
        ("random", 1),
    ]
    assert all(c["policy"]["blocker"] == "zero" for c in cells)
    assert spec.varied() == ["policy.runner", "seed"]


def test_listed_cells_and_lists_of_items():
    spec = spec_of(
        """
command = "evaluate"
[options]
seed = [0, 1]
sample = [["runner"], ["runner", "blocker"]]
[[cells]]
env_id = "toy_pass_v0"
[[cells]]
env_id = "toy_catch_v0"
"""
    )
    cells = spec.cells()
    assert len(cells) == spec.n_cells == 8
    assert cells[0] == {"seed": 0, "sample": ["runner"], "env_id": "toy_pass_v0"}
    assert cells[1]["env_id"] == "toy_catch_v0"
    assert spec.varied() == ["seed", "sample", "env_id"]


def test_a_cell_becomes_the_single_commands_command_line():
    from arena.grid.commands import command

    cmd = command("evaluate")
    argv = cmd.argv(
        {
            "env_id": "toy_pass_v0",
            "policy": {"runner": "random", "blocker": "zero"},
            "sample": ["runner", "blocker"],
            "stochastic": False,
            "episodes": 3,
        }
    )
    assert argv == [
        "evaluate",
        "toy_pass_v0",
        "--policy",
        "runner=random",
        "--policy",
        "blocker=zero",
        "--sample",
        "runner",
        "--sample",
        "blocker",
        "--episodes",
        "3",
    ]
    train = command("train-adversary")
    base = {"env_id": "kick_and_defend_v0", "victim": {"kicker": "zero"}, "timesteps": 10}
    for value, flag in ((True, "--flat-win"), (False, "--no-flat-win")):  # on/off switches
        argv = train.argv({**base, "flat_win": value, "white_box": value})
        switches = [a for a in argv if a.endswith(("flat-win", "white-box"))]
        assert sorted(switches) == sorted([flag, *(["--white-box"] if value else [])])
        parsed = train.parser.parse_args([*argv[1:], "--out", "x"])
        assert parsed.flat_win is value


BAD_GRIDS = {
    "not toml": ("command = evaluate [", "not a TOML grid file"),
    "unknown key": ('command = "evaluate"\nworkers = 3', "unknown key 'workers'"),
    "unknown command": ('command = "train"', "unknown command 'train'; valid: train-adversary"),
    "unknown option": (
        'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nepisode = 3',
        "no option 'episode'; valid:",
    ),
    "empty list": (
        'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nseed = []',
        "the list of values is empty",
    ),
    "reserved option": (
        'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nout = "x"',
        "cannot be set in a grid file",
    ),
    "a switch given a number": (
        'command = "train-adversary"\n[options]\nenv_id = "toy_pass_v0"\ntimesteps = 100\n'
        'victim = { runner = "random" }\nflat_win = 1',
        "option 'flat_win' of train-adversary is a switch: true or false",
    ),
    "cpus out of range": ('command = "evaluate"\ncpus = 0', "'cpus'"),
    "unknown env in one cell": (
        'command = "evaluate"\n[options]\nenv_id = ["toy_pass_v0", "pong"]\nepisodes = 2\n'
        'policy = { runner = "random" }',
        "cell 1 (env_id=pong): unknown env id 'pong'; valid ids: ",
    ),
    "missing victim file": (
        'command = "train-adversary"\n[options]\nenv_id = "toy_pass_v0"\ntimesteps = 100\n'
        'victim = { runner = ["random", "sb3:/nonexistent/runner.zip"] }',
        "cell 1",
    ),
    "victim whose spaces do not fit": (
        'command = "evaluate"\n[options]\nenv_id = "toy_catch_v0"\nepisodes = 2\n'
        f'policy = {{ player = "{RUNNER}" }}',
        "cell 0",
    ),
    "episodes out of range": (
        'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nepisodes = [1, 0]\n'
        'policy = { runner = "random" }',
        "cell 1 (episodes=0)",
    ),
    "an option that takes one value given several": (
        'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nepisodes = [[1, 2]]',
        "takes one value per cell",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_bad_grid_files_are_one_line_and_write_nothing(cli, tmp_path, case):
    text, fragment = BAD_GRIDS[case]
    grid = write(tmp_path / "grid.toml", text)
    result = cli("grid", grid, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_a_grid_that_is_not_a_file(cli, tmp_path):
    assert_one_line_error(cli("grid", tmp_path / "nope.toml", "--out", tmp_path / "o"), "no such")
    (tmp_path / "big.toml").write_bytes(b"#" * (2 * 2**20))
    assert_one_line_error(cli("grid", tmp_path / "big.toml", "--out", tmp_path / "o"), "larger")
    assert not (tmp_path / "o").exists()


def test_local_grid_results_resume_and_refusals(cli, tmp_path):
    grid = write(tmp_path / "grid.toml", EVALUATE)
    out = tmp_path / "out"
    first = cli("grid", grid, "--out", out, "--json")
    assert first.code == 0, first.err
    summary = json.loads(first.out.strip().splitlines()[-1])
    assert (summary["grid"], summary["cells"], summary["done"], summary["failed"]) == (
        "toy",
        4,
        4,
        0,
    )
    rows = summary["results"]
    assert [r["cell"]["seed"] for r in rows] == [0, 1, 0, 1]
    trained, random = rows[0]["summary"]["headline"], rows[2]["summary"]["headline"]
    assert trained["label"] == random["label"] == "runner: win rate [95% CI]"
    assert trained["value"] > random["value"]  # the shipped runner beats a random one
    for row in rows:  # every cell is the run directory `arena evaluate` writes
        run_dir = Path(row["run_dir"])
        assert (run_dir / "results.json").is_file() and (run_dir / "config.json").is_file()
        assert run_dir.is_relative_to(out / "cells" / row["name"])
    # the cell's figures are those of the single command with the same options
    single = cli(
        "evaluate",
        "toy_pass_v0",
        "--policy",
        f"runner={RUNNER}",
        "--policy",
        "blocker=zero",
        "--seed",
        "1",
        "--episodes",
        "8",
        "--json",
        "--no-save",
    )
    seats = json.loads(single.out.strip().splitlines()[-1])["seats"]
    assert rows[1]["summary"]["figures"]["runner: wins"] == seats["runner"]["wins"]
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "grid" and len(results["headline"]["rows"]) == 4

    # the directory exists: without --resume it is refused, untouched
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert_one_line_error(cli("grid", grid, "--out", out), "exists; use --resume")
    # --resume runs nothing that finished
    again = cli("grid", grid, "--out", out, "--resume", "--json")
    assert again.code == 0, again.err
    assert "4 finished before" in again.err and "running 0" in again.err
    for path, mtime in before.items():
        if path.name != "results.json" and ".grid.lock" not in path.name:
            assert path.stat().st_mtime_ns == mtime, path
    # a different grid file, or a directory that is not a grid: refused
    other = write(tmp_path / "other.toml", EVALUATE.replace("episodes = 8", "episodes = 9"))
    assert_one_line_error(cli("grid", other, "--out", out, "--resume"), "not the grid")
    (tmp_path / "plain").mkdir()
    assert_one_line_error(
        cli("grid", grid, "--out", tmp_path / "plain", "--resume"), "not a grid directory"
    )
    # the report shows the grid as one page: a table of cells
    report = cli("report", out)
    assert report.code == 0, report.err
    page = (out / "report" / "index.html").read_text()
    assert "evaluate over 4 cells" in page
    assert '">cells/c003</a>' in page  # each cell links to its run's section


def test_two_drivers_on_one_grid_directory(cli, tmp_path):
    from arena.grid.cells import GridDir
    from arena.grid.driver import GridLock

    grid = write(tmp_path / "grid.toml", EVALUATE)
    out = tmp_path / "out"
    assert cli("grid", grid, "--out", out).code == 0
    lock = GridLock(GridDir(out).lock)  # another driver holds the grid
    try:
        result = cli("grid", grid, "--out", out, "--resume")
        assert_one_line_error(result, "another `arena grid` is running")
    finally:
        lock.release()


def test_a_failing_cell_fails_alone(tmp_path):
    """A cell that fails while running (here: a command line no check saw) is reported
    with its error; the other cells finish."""
    from arena.artifacts.grid import CellPlan, GridManifest
    from arena.grid.cells import GridDir
    from arena.grid.driver import execute

    spec = spec_of(EVALUATE)
    good = ["evaluate", "toy_pass_v0", "--policy", "runner=random", "--episodes", "2"]
    bad = ["evaluate", "toy_pass_v0", "--episodes", "2"]  # the runner has no policy
    cells = tuple(CellPlan(i, {}, argv) for i, argv in enumerate([good, bad, good, good]))
    lines: list[str] = []
    summary = execute(GridManifest(spec, cells, ()), GridDir(tmp_path / "g"), say=lines.append)
    assert [r["state"] for r in summary["results"]] == ["done", "failed", "done", "done"]
    assert (summary["done"], summary["failed"]) == (3, 1)
    assert "seat 'runner' of toy_pass_v0 needs a policy" in summary["results"][1]["error"]
    assert any("c001" in line and "needs a policy" in line for line in lines)


def test_ray_flag_without_ray_installed(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from arena.cli import main\n"
        f"sys.exit(main(['grid', {str(tmp_path / 'g.toml')!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--ray']))"
    )
    write(tmp_path / "g.toml", EVALUATE)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'adversarial-arena[ray]'" in lines[0]
    assert not (tmp_path / "out").exists()


def test_unreachable_ray_address_is_one_line_fast(cli, tmp_path):
    pytest.importorskip("ray")
    grid = write(tmp_path / "grid.toml", EVALUATE)
    t0 = time.monotonic()
    result = cli("grid", grid, "--out", tmp_path / "out", "--ray", "127.0.0.1:9")
    assert time.monotonic() - t0 < 30
    assert_one_line_error(result, "--ray 127.0.0.1:9: cannot reach")
    assert not (tmp_path / "out").exists()
    bad = cli("grid", grid, "--out", tmp_path / "out", "--ray", "nohostport")
    assert_one_line_error(bad, "expected HOST:PORT")


@pytest.mark.slow
def test_driver_killed_then_resumed_continues_the_training_from_its_checkpoint(tmp_path):
    """The driver (and its pool) dies mid-training; `--resume` keeps the finished cell,
    continues the interrupted one from its last checkpoint and finishes the grid."""
    grid = write(
        tmp_path / "grid.toml",
        f"""
command = "train-adversary"
cpus = 2
[options]
env_id = "toy_pass_v0"
victim = {{ runner = "{RUNNER}" }}
timesteps = [2048, 40960]
workers = 0
checkpoint_every = 4096
""",
    )
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "arena.cli", "grid", str(grid), "--out", str(out)]
    driver = subprocess.Popen(argv, cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE)
    state = out / "cells" / "c001" / "checkpoints" / "state.json"
    deadline = time.monotonic() + 240
    while not state.is_file() and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    assert state.is_file(), "the long cell never checkpointed"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and every cell process
    driver.wait()
    checkpoint = json.loads(state.read_text())["timesteps"]
    assert checkpoint < 40960
    done = subprocess.run(
        [*argv, "--resume", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["done"] == 2
    long_cell = summary["results"][1]
    assert long_cell["attempts"] == 2 and long_cell["summary"]["figures"]["timesteps"] == 40960
    log = (out / "logs" / "c001.log").read_text()
    assert "--resume" in log
    resumed = int(log.split("from its checkpoint at ")[1].split()[0].replace(",", ""))
    assert resumed >= checkpoint  # lost at most one checkpoint interval


def test_a_cell_still_running_elsewhere_is_not_started_again(cli, tmp_path):
    """A driver died but its cell's process did not: a resumed driver leaves the cell to
    that process (the cell's own lock) instead of running it twice into one folder."""
    import fcntl

    grid = write(tmp_path / "grid.toml", EVALUATE)
    out = tmp_path / "out"
    assert cli("grid", grid, "--out", out).code == 0
    status = out / "status" / "c002.json"
    data = json.loads(status.read_text())
    status.write_text(json.dumps({**data, "state": "running"}))  # as a dead driver left it
    fd = os.open(out / "status" / "c002.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the cell's process, still alive
    try:
        result = cli("grid", grid, "--out", out, "--resume", "--json")
    finally:
        os.close(fd)
    summary = json.loads(result.out.strip().splitlines()[-1])
    assert result.code == 1 and summary["failed"] == 1
    assert "c002 is still running in another process" in result.err
    assert json.loads(status.read_text())["state"] == "running"  # its status untouched
    again = cli("grid", grid, "--out", out, "--resume", "--json")  # once it is gone
    assert again.code == 0 and json.loads(again.out.strip().splitlines()[-1])["done"] == 4


def test_a_resumed_cell_drops_exactly_the_options_train_adversary_refuses_on_resume(cli, tmp_path):
    """Every ``train-adversary`` option is tried with ``--resume`` on a finished run: those
    refused as the run's recipe are the ones a grid drops when it resumes a cell (a grid
    that kept one would fail every resumed cell; one that dropped a runtime option would
    lose it)."""
    from arena.cli.parser import build_parser
    from arena.grid.commands import RECIPE

    out = tmp_path / "run"
    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--timesteps", "2048")
    done = cli(*base, "--out", out, "--checkpoint-every", "1024")
    assert done.code == 0, done.err
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train-adversary"]
    values = {"ppo": "n_epochs=4", "anneal": "0.5", "action_std": "0.5", "envs": "2"}
    skip = {"help", "env_id", "victim", "timesteps", "out", "resume"}
    tried = set()
    for action in train._actions:
        if action.dest in skip:
            continue
        flag = action.option_strings[-1]
        given = [flag] if action.nargs == 0 else [flag, values.get(action.dest, "1")]
        result = cli(*base, "--out", out, "--resume", *given)
        refused = result.code != 0 and "its own recipe" in result.err
        assert refused == (action.dest in RECIPE), (flag, result.code, result.err)
        tried.add(action.dest)
    assert tried >= RECIPE
