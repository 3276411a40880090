"""``run_grid``: check every cell, then run the unfinished ones on the local machine
(a pool of processes, one fresh process per cell) or as Ray Tune trials, and gather
their statuses into the grid's ``results.json``.

Only one driver works on a grid directory at a time (an exclusive ``flock``); once it
holds the lock it checks the directory (``GridDir.check``): the ``grid.json`` of another
grid, a link planted in it, a special file or a status that does not read is refused
in one line before anything is written. A
driver that died is replaced by ``--resume``: finished cells are kept, the others run
again, a training from its last checkpoint. On Ray, a trial whose worker dies is
retried by Tune (``FailureConfig``), and the retry continues the same way.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arena.artifacts.grid import CellPlan, GridError, GridManifest, GridSpec
from arena.artifacts.run import RunResults
from arena.artifacts.run_tables import Cell, Score, Table
from arena.errors import USER_ERRORS
from arena.grid.cells import GridDir, cell_in_pool, execute_cell
from arena.grid.commands import command
from arena.io import try_lock, write_json_atomic
from arena.parallel import forkserver, passed_env

MAX_FAILURES = 3
"""Times Ray retries a trial whose worker died before the cell is failed."""


class GridLock:
    """An exclusive ``flock`` on ``DIR/.grid.lock``: one driver per grid directory."""

    def __init__(self, path: Path):
        try:
            fd = try_lock(path)
        except OSError as exc:
            raise GridError(f"{path}: cannot open the grid's lock ({exc.strerror})") from None
        if fd is None:
            raise GridError(f"{path.parent}: another `arena grid` is running on this directory")
        self.fd = fd

    def release(self) -> None:
        os.close(self.fd)


def plan_cells(spec: GridSpec, grid: GridDir, outs: list[str] | None = None) -> GridManifest:
    """Every cell's command line, each checked as the single command checks it;
    ``GridError`` naming the first cell it would refuse. Nothing is written. ``outs``:
    where each cell's run goes, inside the grid directory (default ``cells/cNNN``)."""
    cmd = command(spec.command)
    varied = spec.varied()
    cells = []
    for i, values in enumerate(spec.cells()):
        plan = CellPlan(i, values, [], outs[i] if outs else "")
        label = plan.label(varied) or "the only cell"
        try:
            argv = cmd.argv(values)
            cmd.check_cell(argv, grid.cell_out(plan))
        except USER_ERRORS as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GridError(f"cell {i} ({label}): {first}") from None
        cells.append(dataclasses.replace(plan, argv=argv))
    return GridManifest(spec, tuple(cells), tuple(varied))


def _open(grid_file: str | Path, out: Path, resume: bool) -> tuple[GridManifest, GridDir]:
    grid = GridDir(out)
    spec = GridSpec.read(grid_file)
    if resume:
        if not grid.manifest.is_file():
            raise GridError(f"--resume {out}: not a grid directory (no {GridManifest.FILE})")
        recorded = grid.read_manifest()
        if recorded.spec.to_json() != spec.to_json():
            raise GridError(
                f"--resume {out}: {grid_file} is not the grid this directory was started "
                f"with; resume with the same file"
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GridError(f"--out {out}: exists; use --resume to continue it or choose a new --out")
    manifest = plan_cells(spec, grid)
    if resume and manifest.to_json()["cells"] != recorded.to_json()["cells"]:
        raise GridError(f"--resume {out}: the cells no longer match {GridManifest.FILE}")
    return manifest, grid


def run_grid(
    grid_file: str | Path,
    out: str | Path,
    *,
    ray: str | bool | None = None,
    resume: bool = False,
    parallel: int | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the grid of ``grid_file`` into ``out``; the grid's JSON summary
    (``{"grid", "cells", "done", "failed", "results": [...]}``)."""
    manifest, grid = _open(grid_file, Path(out).absolute(), resume)
    return execute(manifest, grid, ray=ray, parallel=parallel, say=say)


def execute(
    manifest: GridManifest,
    grid: GridDir,
    *,
    ray: str | bool | None = None,
    parallel: int | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the cells of ``manifest`` that are not done, in ``grid`` (created if need
    be, its ``grid.json`` written once); the grid's JSON summary. Experiments run their
    trainings through here too."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    backend = None
    if ray:  # joined before anything is written: an unreachable cluster writes nothing
        from arena.parallel import connect_ray

        backend = connect_ray(None if ray is True else str(ray))
    try:
        grid.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GridError(f"{grid.root}: cannot make the grid directory ({exc.strerror})") from None
    lock = GridLock(grid.lock)
    try:
        grid.check(manifest)  # under the lock: what another driver left is seen too
        if not grid.manifest.is_file():
            write_json_atomic(grid.manifest, manifest.to_json())
        todo = [c.index for c in manifest.cells if _state(grid, c.index) != "done"]
        kept = len(manifest.cells) - len(todo)
        where = "on Ray" if backend is not None else "on this machine"
        say(
            f"grid {manifest.spec.name or grid.root.name}: {len(manifest.cells)} cells"
            + (f" ({kept} finished before)" if kept else "")
            + f", running {len(todo)} {where}"
        )
        t0 = time.perf_counter()
        if todo:
            if backend is not None:
                _run_on_ray(grid, manifest, todo, say)
            else:
                _run_local(grid, manifest, todo, parallel, say)
        summary = collect(grid, manifest)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        write_json_atomic(grid.results, grid_results(grid, manifest, summary).to_json())
        return summary
    finally:
        lock.release()


def _state(grid: GridDir, index: int) -> str | None:
    try:
        status = grid.status(index)
    except GridError:
        return None  # unreadable since ``GridDir.check``: the cell runs again
    return status.state if status is not None else None


def _describe(manifest: GridManifest, status: dict[str, Any]) -> str:
    plan = manifest.cells[status["index"]]
    label = plan.label(list(manifest.varied))
    what = status["state"]
    if what == "done":
        head = status.get("summary", {}).get("headline", {})
        value = head.get("value")
        if isinstance(value, int | float):
            what += f": {head.get('label', '')} {value:.3g}"
    elif status.get("error"):
        what += f": {status['error']}"
    return f"  {plan.name} {label}: {what}".rstrip()


def _run_local(
    grid: GridDir,
    manifest: GridManifest,
    todo: list[int],
    parallel: int | None,
    say: Callable[[str], None],
) -> None:
    """The cells on this machine: ``parallel`` at a time (default: the CPUs over the
    CPUs a cell takes), each in a fresh process."""
    if parallel is None:
        parallel = max(1, math.floor((os.cpu_count() or 1) / manifest.spec.cpus))
    parallel = min(parallel, len(todo))
    with cf.ProcessPoolExecutor(parallel, forkserver(), max_tasks_per_child=1) as pool:
        job = (str(grid.root), os.getcwd(), passed_env())
        futures = {pool.submit(cell_in_pool, (job[0], i, *job[1:])): i for i in todo}
        for fut in cf.as_completed(futures):
            try:
                say(_describe(manifest, fut.result()))
            except cf.process.BrokenProcessPool:
                say(f"  c{futures[fut]:03d}: its process died; `--resume` runs it again")


def _ray_trial(config: dict[str, Any]) -> None:
    """A Tune trial: one cell, in the driver's directory and settings."""
    import ray
    from ray import tune

    os.environ.update(config["env"])
    if os.path.isdir(config["cwd"]):
        os.chdir(config["cwd"])
    import torch

    torch.set_num_threads(1)
    node = ray.get_runtime_context().get_node_id()
    status = execute_cell(config["root"], config["cell"], node=node)
    tune.report({"done": status["state"] == "done", "state": status["state"]})


def _trial_dirname(trial: Any) -> str:
    return f"c{trial.config['cell']:03d}-{trial.trial_id}"


def _run_on_ray(
    grid: GridDir, manifest: GridManifest, todo: list[int], say: Callable[[str], None]
) -> None:
    """The cells as Ray Tune trials, ``cpus`` each; a trial whose worker dies is tried
    again (up to ``MAX_FAILURES`` times), continuing the cell."""
    from ray import tune

    class Progress(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            status = grid.status(trial.config["cell"])
            if status is not None:
                say(_describe(manifest, status.to_json()))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            say(f"  c{trial.config['cell']:03d}: its worker died; not retried again")

    name = time.strftime("grid-%Y%m%d-%H%M%S")
    tuner = tune.Tuner(
        tune.with_resources(_ray_trial, {"cpu": manifest.spec.cpus}),
        param_space={
            "cell": tune.grid_search(todo),
            "root": str(grid.root),
            "cwd": os.getcwd(),
            "env": passed_env(),
        },
        tune_config=tune.TuneConfig(trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(grid.ray_storage),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            callbacks=[Progress()],
            verbose=0,
        ),
    )
    tuner.fit()


def collect(grid: GridDir, manifest: GridManifest) -> dict[str, Any]:
    """The grid's JSON summary from its cells' statuses."""
    results = []
    done = failed = 0
    for plan in manifest.cells:
        status = grid.status(plan.index)
        state = status.state if status is not None else "not run"
        if state == "running":
            state = "failed"  # its worker died and was not retried
        done += state == "done"
        failed += state != "done"
        row: dict[str, Any] = {"cell": plan.values, "name": plan.name, "state": state}
        if status is not None:
            row["run_dir"] = str(grid.root / status.run_dir) if status.run_dir else None
            row["summary"] = status.summary
            row["attempts"] = status.attempt
            if status.error:
                row["error"] = status.error
        results.append(row)
    return {
        "grid": manifest.spec.name or grid.root.name,
        "command": manifest.spec.command,
        "cells": len(manifest.cells),
        "done": done,
        "failed": failed,
        "results": results,
    }


def grid_results(grid: GridDir, manifest: GridManifest, summary: dict[str, Any]) -> RunResults:
    """The grid as a run's ``results.json``: one table, a row per cell with its varied
    values, state, headline figure and run directory (``arena report DIR`` shows it)."""
    heads = [r.get("summary", {}).get("headline", {}) for r in summary["results"]]
    labels = sorted({h.get("label") for h in heads if h.get("label")})
    figure = labels[0] if len(labels) == 1 else "headline figure"
    columns = ("cell", *manifest.varied, "state", figure, "run directory")
    rows: list[tuple[Cell, ...]] = []
    for plan, row, head in zip(manifest.cells, summary["results"], heads, strict=True):
        values: list[Cell] = []
        for path in manifest.varied:
            key, _, seat = path.partition(".")
            v = plan.values.get(key)
            v = v.get(seat) if seat and isinstance(v, dict) else v
            values.append(v if isinstance(v, str | int | float | bool) else str(v))
        value = head.get("value")
        score: Cell = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            ci = head.get("ci95")
            score = Score.of(float(value), tuple(ci) if isinstance(ci, list) else None)
        rows.append((plan.name, *values, row["state"], score, plan.output))
    table = Table(
        f"{summary['command']} over {len(rows)} cells",
        columns,
        tuple(rows),
        caption=f"{summary['done']} done, {summary['failed']} failed; each run directory "
        f"reports on its own (`arena report DIR/RUN`)",
    )
    extra = {k: v for k, v in summary.items() if k != "seconds"}
    return RunResults(
        kind="grid",
        title=f"grid {summary['grid']}: {summary['command']} over {len(rows)} cells",
        headline=table,
        extra={"grid_summary": extra},
    )
