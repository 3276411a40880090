"""`arena grid` attacked: hostile grid files (deep nesting, NaN, values that smuggle
flags, odd seats, absurd sizes, special files), and grid directories an attacker or
a careless user left behind for ``--resume`` (a tampered ``grid.json`` or status,
links planted where the grid writes, special files where its files belong).

Every attack ends in one line ``arena: error: ...`` with exit status 2, never a
traceback or a hang, and writes or removes nothing outside the grid directory (nor
anything in it); or it is harmless. The grid directories are made without running a
cell (each would take seconds), the way a finished grid leaves them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from arena.artifacts.grid import CellStatus, GridError, GridSpec
from arena.grid.cells import GridDir
from arena.grid.driver import plan_cells
from arena.io import write_json_atomic

TOY = """
command = "evaluate"
name = "toy"
[options]
env_id = "toy_pass_v0"
policy = { runner = "random" }
episodes = 2
seed = [0, 1]
"""
HEAD = {"label": "runner: win rate [95% CI]", "value": 0.5, "ci95": [0.1, 0.9]}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def finished_grid(tmp_path: Path, text: str = TOY) -> tuple[Path, Path]:
    """A grid file and its grid directory as a finished run leaves it (every cell done),
    made without running a cell."""
    grid_file = write(tmp_path / "grid.toml", text)
    out = tmp_path / "out"
    grid = GridDir(out)
    manifest = plan_cells(GridSpec.read(grid_file), grid)
    out.mkdir()
    write_json_atomic(grid.manifest, manifest.to_json())
    for plan in manifest.cells:
        run = out / plan.output / "evaluate" / "run"
        run.mkdir(parents=True)
        write(run / "config.json", "{}")
        grid.log(plan.index).parent.mkdir(exist_ok=True)
        write(grid.log(plan.index), "# attempt 1\n")
        summary = {"headline": HEAD, "figures": {}}
        rel = f"{plan.output}/evaluate/run"
        grid.write_status(CellStatus(plan.index, "done", 1, rel, summary))
    return grid_file, out


def snapshot(root: Path) -> dict[str, object]:
    """Everything under ``root`` (links not followed): path -> bytes, 'dir' or link."""
    found: dict[str, object] = {}
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(top) / name
            rel = str(path.relative_to(root))
            if name == ".grid.lock" and not path.is_symlink():
                continue  # the lock a refusing driver takes: empty, written by no one
            if path.is_symlink():
                found[rel] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = "special"
    return found


def edit_status(out: Path, cell: int, **fields: object) -> None:
    path = GridDir(out).status_file(cell)
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


def edit_manifest(out: Path, edit) -> None:
    path = GridDir(out).manifest
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory beside the grid, with a file to keep: no write may reach it."""
    place = tmp_path / "outside"
    (place / "c000").mkdir(parents=True)
    write(place / "precious.txt", "keep me")
    write(place / "c000" / "precious.txt", "keep me too")
    return place


def test_a_finished_grid_made_here_resumes_cleanly(cli, tmp_path):
    """The grid directories below are sound until tampered with: resumed, nothing runs."""
    grid_file, out = finished_grid(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume", "--json")
    assert result.code == 0, result.err
    assert "2 finished before" in result.err and "running 0" in result.err
    assert json.loads(result.out.strip().splitlines()[-1])["done"] == 2


# ---- hostile grid files ----------------------------------------------------------------

BASE = 'command = "evaluate"\n[options]\nenv_id = "toy_pass_v0"\nepisodes = 2\n'
RANDOM = 'policy = { runner = "random" }\n'
HOSTILE_GRIDS = {
    "arrays nested 50,000 deep": ('command = "evaluate"\nx = ' + "[" * 50_000, "nested too deeply"),
    "tables nested 50,000 deep": ('command = "evaluate"\nx = ' + "{a=" * 50_000, "nested"),
    "cpus so small the pool size overflows": ("cpus = 5e-324\n" + BASE + RANDOM, "'cpus'"),
    "cpus NaN": ("cpus = nan\n" + BASE + RANDOM, "'cpus'"),
    "cpus infinite": ("cpus = inf\n" + BASE + RANDOM, "'cpus'"),
    "a NaN value": (BASE + RANDOM + "seed = nan", "NaN is not a value"),
    "an infinite value": (BASE + RANDOM + "seed = inf", "not a finite number"),
    "a value past 64 bits": (BASE + RANDOM + "seed = 9223372036854775807", "out of range"),
    "a positional that asks for help": (
        'command = "evaluate"\n[options]\nenv_id = "--help"\n',
        "'--help' begins with '-'",
    ),
    "a positional that smuggles the output flag": (
        'command = "evaluate"\n[options]\nenv_id = "--runs=/tmp"\n' + RANDOM,
        "would be read as a flag",
    ),
    "a value that smuggles the output flag": (
        BASE + RANDOM + 'seed = "--runs=/tmp"',
        "argument --seed",
    ),
    "an item that smuggles a reserved flag": (
        BASE + RANDOM + 'sample = ["--record=/tmp/rec"]',
        "no such seat",
    ),
    "a seat name with '='": (
        BASE + 'policy = { "runner=sb3:/etc/passwd" = "random" }\n',
        "cannot be a seat",
    ),
    "an empty seat name": (BASE + 'policy = { "" = "random" }\n', "cannot be a seat"),
    "a NUL in a seat name": (BASE + 'policy = { "run\\u0000ner" = "random" }\n', "seat"),
    "a listed cell's seat with '='": (
        BASE + '[[cells]]\npolicy = { "a=b" = "random" }\n',
        "cannot be a seat",
    ),
    "an option given twice in a listed cell": (
        'command = "evaluate"\n[[cells]]\nenv-id = "a"\nenv_id = "b"\n',
        "given twice",
    ),
    "a NUL in an option name": (BASE + '"epi\\u0000sodes" = 2\n', "option names are lowercase"),
    "a unicode option name": (BASE + '"épisodes" = 2\n', "option names are lowercase"),
    "a name across lines": ('name = "a\\nb"\n' + BASE + RANDOM, "'name'"),
    "10**20 cells": (
        BASE + RANDOM + "\n".join(f"o{i} = [{', '.join(map(str, range(100)))}]" for i in range(10)),
        "at most 10,000",
    ),
    "an experiment name that is a path": (
        'command = "run ../../etc/passwd"\n',
        "unknown experiment",
    ),
    "a NUL in the command": ('command = "evaluate\\u0000"\n', "unknown command"),
    "bytes that are not UTF-8": ('command = "evaluate\udcff"\n', "not a TOML grid file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_GRIDS))
def test_hostile_grid_files_are_one_line_and_write_nothing(cli, tmp_path, case):
    text, fragment = HOSTILE_GRIDS[case]
    grid = tmp_path / "grid.toml"
    grid.write_bytes(text.encode("utf-8", "surrogateescape"))
    result = cli("grid", grid, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


def test_values_cannot_smuggle_flags_into_a_cells_command_line():
    """A value that begins with '-' stays the value of its flag (``--flag=VALUE``); one
    that would stand alone as a flag (a positional, an item of ``--attacks A B``) is
    refused: a grid file cannot add ``--ray``, ``--runs`` or ``--help`` to a cell."""
    from arena.grid.commands import command

    evaluate = command("evaluate")
    argv = evaluate.argv({"env_id": "toy_pass_v0", "seed": "--runs=/etc", "episodes": -1})
    assert argv == ["evaluate", "toy_pass_v0", "--seed=--runs=/etc", "--episodes", "-1"]
    assert evaluate.argv({"env_id": "toy_pass_v0", "sample": ["-h"]})[-1] == "--sample=-h"
    with pytest.raises(GridError, match="would be read as a flag"):
        evaluate.argv({"env_id": "-h"})
    pong = command("run huang2017_pong")  # --victims PATH [PATH ...]
    with pytest.raises(GridError, match="'--ray' begins with '-'"):
        pong.argv({"victims": ["pong.npz", "--ray"]})
    with pytest.raises(GridError, match="would be read as a flag"):
        pong.argv({"victims": ["pong.npz", "--runs=/etc"]})


def test_a_negative_value_that_argparse_took_for_a_flag_is_its_value(cli, tmp_path):
    grid = write(tmp_path / "grid.toml", BASE + RANDOM + "seed = -1e-05")
    result = cli("grid", grid, "--out", tmp_path / "out")
    assert_one_line_error(result, "seed must be a non-negative integer")
    assert not (tmp_path / "out").exists()


def test_grid_files_that_are_not_plain_files(cli, tmp_path):
    out = tmp_path / "out"
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    assert_one_line_error(cli("grid", fifo, "--out", out), "no such grid file")
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    assert_one_line_error(cli("grid", zero, "--out", out), "no such grid file")
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as fh:  # 256 MiB, sparse: it must not be read whole
        fh.truncate(256 * 2**20)
    assert_one_line_error(cli("grid", huge, "--out", out), "larger than")
    assert not out.exists()


# ---- --out --------------------------------------------------------------------------


def test_out_that_is_a_file_or_a_dangling_link(cli, tmp_path):
    grid = write(tmp_path / "grid.toml", TOY)
    a_file = write(tmp_path / "file", "keep me")
    assert_one_line_error(cli("grid", grid, "--out", a_file), "not a directory")
    assert_one_line_error(cli("grid", grid, "--out", a_file / "sub"), "not a directory")
    assert a_file.read_text() == "keep me"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert_one_line_error(cli("grid", grid, "--out", dangling), "cannot make the grid directory")
    assert not (tmp_path / "nowhere").exists()


# ---- a tampered grid.json ----------------------------------------------------------

MANIFEST_EDITS = {
    "argv with an extra flag": (
        lambda d: d["cells"][0]["argv"].extend(["--record", "/tmp/rec"]),
        "the cells no longer match",
    ),
    "out with ..": (lambda d: d["cells"][0].update(out="../escaped"), "'out' must be"),
    "out absolute": (lambda d: d["cells"][0].update(out="/tmp"), "'out' must be"),
    "out the grid directory itself": (lambda d: d["cells"][0].update(out="."), "'out' must be"),
    "out the grid's status folder": (lambda d: d["cells"][0].update(out="status"), "'out'"),
    "out with a NUL": (lambda d: d["cells"][0].update(out="cells/\x00"), "'out' must be"),
    "argv of numbers": (lambda d: d["cells"][0].update(argv=[1, 2]), "list of strings"),
    "cells not a list": (lambda d: d.update(cells="all"), "'cells' must list"),
    "a cell missing": (lambda d: d["cells"].pop(), "'cells' must list"),
    "an index that is true": (lambda d: d["cells"][1].update(index=True), "with index 1"),
    "a newer schema_version": (lambda d: d.update(schema_version=2), "newer than this arena"),
    "an older schema_version": (lambda d: d.update(schema_version=0), "not supported"),
    "varied not a list": (lambda d: d.update(varied=7), "'varied'"),
    "cpus infinite": (lambda d: d["grid"].update(cpus=float("inf")), "'cpus'"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_EDITS))
def test_a_tampered_grid_json_is_refused_untouched(cli, tmp_path, case):
    edit, fragment = MANIFEST_EDITS[case]
    grid_file, out = finished_grid(tmp_path)
    edit_status(out, 0, state="failed")  # a cell that would run again
    edit_manifest(out, edit)
    before = snapshot(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, fragment)
    assert snapshot(tmp_path) == before


def test_grid_json_that_is_a_special_file_or_nested_too_deeply(cli, tmp_path):
    grid_file, out = finished_grid(tmp_path)
    manifest = GridDir(out).manifest
    write(manifest, "[" * 100_000)
    assert_one_line_error(cli("grid", grid_file, "--out", out, "--resume"), "nested too deeply")
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    assert_one_line_error(cli("grid", grid_file, "--out", out, "--resume"), "not a grid directory")


def test_a_driver_that_finds_another_grid_in_its_directory(tmp_path):
    """Two drivers started on one new --out: the second finds the first's grid once it
    holds the lock (the directory was empty when it looked) and refuses to mix them."""
    from arena.grid.driver import execute

    _, out = finished_grid(tmp_path)
    other = plan_cells(
        GridSpec.read(write(tmp_path / "o.toml", TOY + "stochastic = true\n")), GridDir(out)
    )
    before = snapshot(tmp_path)
    with pytest.raises(GridError, match="holds another grid"):
        execute(other, GridDir(out), say=lambda line: None)
    assert snapshot(tmp_path) == before


# ---- a tampered status ---------------------------------------------------------------

STATUS_EDITS = {
    "run_dir with ..": ({"run_dir": "../../etc"}, "'run_dir'"),
    "run_dir absolute": ({"run_dir": "/etc"}, "'run_dir'"),
    "run_dir a number": ({"run_dir": 7}, "'run_dir'"),
    "an unknown state": ({"state": "hacked"}, "'state'"),
    "the status of another cell": ({"index": 7}, "the status of cell 7"),
    "a negative attempt": ({"attempt": -1}, "'attempt'"),
    "a summary that is a list": ({"summary": [1]}, "'summary'"),
    "a headline that is text": ({"summary": {"headline": "x"}}, "'summary'"),
    "a figure past what a float holds": (
        {"summary": {"headline": {"value": 10**400}}},
        "'summary.headline.value'",
    ),
    "a label that is a list": ({"summary": {"headline": {"label": ["a"]}}}, "label"),
    "an interval of words": (
        {"summary": {"headline": {"value": 0.5, "ci95": ["a", "b"]}}},
        "'summary.headline.ci95'",
    ),
    "a newer schema_version": ({"schema_version": 9}, "newer than this arena"),
}


@pytest.mark.parametrize("case", sorted(STATUS_EDITS))
def test_a_tampered_status_is_refused_untouched(cli, tmp_path, case):
    fields, fragment = STATUS_EDITS[case]
    grid_file, out = finished_grid(tmp_path)
    edit_status(out, 0, **fields)
    before = snapshot(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, "status/c000.json", fragment)
    assert snapshot(tmp_path) == before


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with path.open("wb") as fh:
        fh.truncate(65 * 2**20)


SPECIAL_STATUS = {
    "a FIFO": (_fifo, "neither a file nor a folder"),
    "a link to /dev/zero": (lambda p: p.symlink_to("/dev/zero"), "a link"),
    "a folder": (lambda p: p.mkdir(), "not a file"),
    "65 MiB": (_huge, "bytes"),
    "not JSON": (lambda p: write(p, "{"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(SPECIAL_STATUS))
def test_a_status_that_is_a_special_file(cli, tmp_path, case):
    make, fragment = SPECIAL_STATUS[case]
    grid_file, out = finished_grid(tmp_path)
    path = GridDir(out).status_file(0)
    path.unlink()
    make(path)
    before = snapshot(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, "c000.json", fragment)
    assert snapshot(tmp_path) == before


# ---- links planted in the grid directory --------------------------------------------


def _relink(path: Path, target: Path) -> None:
    """Replace ``path`` (a file or a folder of the grid) by a link to ``target``."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


LINKS = {
    # where the link goes in the grid directory -> what it points at, outside
    "cells": "",  # the cells' runs, and the removal of an interrupted one, go outside
    "cells/c000": "c000",
    "status": "",
    "logs": "",
    "logs/c000.log": "precious.txt",
    "status/c000.json": "precious.txt",
    "results.json": "precious.txt",
    "ray": "",
    ".grid.lock": "precious.txt",
}


@pytest.mark.parametrize("where", sorted(LINKS))
def test_planted_links_carry_no_write_or_removal_outside(cli, tmp_path, outside, where):
    grid_file, out = finished_grid(tmp_path)
    edit_status(out, 0, state="failed")  # cell 0 runs again: its old run is removed first
    _relink(out / where, outside / LINKS[where])
    before = snapshot(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, where.split("/")[0])
    assert snapshot(tmp_path) == before
    assert (outside / "c000" / "precious.txt").read_text() == "keep me too"


def test_a_hard_linked_log_is_not_appended_to(cli, tmp_path, outside):
    grid_file, out = finished_grid(tmp_path)
    edit_status(out, 0, state="failed")
    log = GridDir(out).log(0)
    log.unlink()
    os.link(outside / "precious.txt", log)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, "c000.log", "other hard links")
    assert (outside / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("kind", ["status", "logs"])
def test_a_file_where_a_grid_folder_belongs(cli, tmp_path, kind):
    import shutil

    grid_file, out = finished_grid(tmp_path)
    shutil.rmtree(out / kind)
    write(out / kind, "x")
    before = snapshot(tmp_path)
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, kind, "not a folder")
    assert snapshot(tmp_path) == before


def test_a_folder_where_results_json_belongs(cli, tmp_path):
    grid_file, out = finished_grid(tmp_path)
    (out / "results.json").mkdir()
    result = cli("grid", grid_file, "--out", out, "--resume")
    assert_one_line_error(result, "results.json", "not a file")


# ---- the cell's own process: links planted after the driver looked ------------------


def _cell_log_link(out: Path, outside: Path) -> None:
    _relink(GridDir(out).log(0), outside / "precious.txt")


def _cell_log_hard_link(out: Path, outside: Path) -> None:
    GridDir(out).log(0).unlink()
    os.link(outside / "precious.txt", GridDir(out).log(0))


def _cell_log_fifo(out: Path, outside: Path) -> None:
    GridDir(out).log(0).unlink()
    os.mkfifo(GridDir(out).log(0))  # opening it to write would wait for a reader


def _cell_cells_link(out: Path, outside: Path) -> None:
    _relink(out / "cells", outside)


def _cell_status_link(out: Path, outside: Path) -> None:
    _relink(out / "status", outside)


CELL_ATTACKS = {
    "log a link": (_cell_log_link, "c000.log"),
    "log a hard link": (_cell_log_hard_link, "other links"),
    "log a FIFO": (_cell_log_fifo, "c000.log"),
    "cells a link": (_cell_cells_link, "cells"),
    "status a link": (_cell_status_link, "status"),
}


@pytest.mark.parametrize("case", sorted(CELL_ATTACKS))
def test_a_cell_writes_nothing_through_links_planted_after_the_check(tmp_path, outside, case):
    """``execute_cell`` runs in a worker after the driver checked the directory; a link
    planted in between is still refused, before the cell's command runs."""
    from arena.grid.cells import execute_cell

    plant, fragment = CELL_ATTACKS[case]
    _, out = finished_grid(tmp_path)
    edit_status(out, 0, state="failed")
    plant(out, outside)
    before = snapshot(outside)
    with pytest.raises(GridError, match=fragment):
        execute_cell(str(out), 0)
    assert snapshot(outside) == before
