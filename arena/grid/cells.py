"""One cell, in the process that runs it (a local pool's or a Ray trial's): mark it
running, run the single command's own code on its command line (continuing an
interrupted run), write its status. The same function runs a cell wherever it runs,
so a cell's run directory and summary do not depend on where it ran."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.artifacts.base import read_json
from arena.artifacts.grid import CellPlan, CellStatus, GridError, GridManifest
from arena.io import write_json_atomic


@dataclass(frozen=True)
class GridDir:
    """The files of a grid directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / GridManifest.FILE

    @property
    def lock(self) -> Path:
        return self.root / ".grid.lock"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def ray_storage(self) -> Path:
        return self.root / "ray"

    def cell_out(self, plan: CellPlan) -> Path:
        return self.root / plan.output

    def status_file(self, index: int) -> Path:
        return self.root / "status" / f"c{index:03d}.json"

    def log(self, index: int) -> Path:
        return self.root / "logs" / f"c{index:03d}.log"

    def read_manifest(self) -> GridManifest:
        return GridManifest.from_json(read_json(self.manifest, GridError), str(self.manifest))

    def status(self, index: int) -> CellStatus | None:
        path = self.status_file(index)
        if not path.is_file():
            return None
        return CellStatus.from_json(read_json(path, GridError), str(path))

    def write_status(self, status: CellStatus) -> None:
        path = self.status_file(status.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, status.to_json())


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Everything the cell writes to stdout and stderr (Python or not) goes to
    ``path``, appended: one log per cell across its attempts."""
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "failed (no log)"
    errors = [line for line in lines if line.startswith("arena: ")]
    tail = [line for line in lines if line.strip()]
    return (errors or tail or ["failed"])[-1][:500]


def execute_cell(root: str, index: int, node: str | None = None) -> dict[str, Any]:
    """Run cell ``index`` of the grid in ``root`` in this process; its status as JSON.
    A cell found done is not run again; one found running (its worker died) goes on
    from its last checkpoint where its command has one."""
    from arena.cli import main
    from arena.grid.commands import command, resume_argv, run_dir_of, summary

    grid = GridDir(Path(root))
    manifest = grid.read_manifest()
    plan = manifest.cells[index]
    before = grid.status(index)
    if before is not None and before.state == "done":
        return before.to_json()
    cmd = command(manifest.spec.command)
    out = grid.cell_out(plan)
    attempt = before.attempt + 1 if before is not None else 1
    argv = plan.argv
    if before is not None or cmd.kind == "training":  # a training found there goes on
        argv = resume_argv(cmd, plan.argv, plan.values, out)
        if argv == plan.argv and out.exists() and cmd.kind != "training":
            import shutil

            shutil.rmtree(out)  # an interrupted run that cannot continue starts again
    running = CellStatus(
        index, "running", attempt, host=socket.gethostname(), pid=os.getpid(), node=node
    )
    grid.write_status(running)
    t0 = time.perf_counter()
    out_flag = (
        []
        if "--resume" in argv[len(cmd.prefix) :] and cmd.kind != "training"
        else [
            cmd.output,
            str(out),
        ]
    )
    log = grid.log(index)
    with _output_to(log):
        print(f"# attempt {attempt}: arena {' '.join([*argv, *out_flag])}", flush=True)
        try:
            rc = main([*argv, *out_flag])
        except Exception as exc:  # a bug in the command: the cell fails, the grid goes on
            import traceback

            traceback.print_exc()
            print(f"arena: error: {type(exc).__name__}: {exc}", flush=True)
            rc = 1
    seconds = round(time.perf_counter() - t0, 2)
    run_dir = run_dir_of(cmd, out)
    rel = str(run_dir.relative_to(grid.root)) if run_dir is not None else None
    if rc == 0:
        try:
            found = summary(cmd, out)
        except Exception as exc:
            rc, error = 1, f"{type(exc).__name__}: {exc}"
        else:
            done = CellStatus(
                index, "done", attempt, rel, found, None, running.host, running.pid, node, seconds
            )
            grid.write_status(done)
            return done.to_json()
    else:
        error = _last_error(log)
    failed = CellStatus(
        index, "failed", attempt, rel, {}, error, running.host, running.pid, node, seconds
    )
    grid.write_status(failed)
    return failed.to_json()


def cell_in_pool(job: tuple[str, int, str, dict[str, str]]) -> dict[str, Any]:
    """``execute_cell`` as a local pool runs it (one fresh process per cell), in the
    driver's directory and settings (a forkserver's child has the server's)."""
    import torch

    root, index, cwd, env = job
    os.environ.update(env)
    os.chdir(cwd)
    torch.set_num_threads(1)
    return execute_cell(root, index)
