"""One cell, in the process that runs it (a local pool's or a Ray trial's): mark it
running, run the single command's own code on its command line (continuing an
interrupted run), write its status. The same function runs a cell wherever it runs,
so a cell's run directory and summary do not depend on where it ran."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.artifacts.base import read_json
from arena.artifacts.grid import CellPlan, CellStatus, GridError, GridManifest
from arena.io import try_lock, write_json_atomic


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
        if not _lexists(path):
            return None
        if path.is_symlink():
            raise GridError(f"{path}: a link, not a status of the grid")
        status = CellStatus.from_json(read_json(path, GridError), str(path))
        if status.index != index:
            raise GridError(f"{path}: the status of cell {status.index}, not of cell {index}")
        return status

    def check(self, manifest: GridManifest) -> None:
        """Refuse, before anything is written, a directory a write of the grid could
        leave or lose work in: the ``grid.json`` of another grid; a link anywhere in it
        (symbolic, or a file with other hard links: a write would go through it), a
        FIFO or a device; one of the grid's files or folders that is the other kind; a
        status that does not read. ``GridError``, one line."""
        if _lexists(self.manifest):
            recorded = self.read_manifest()
            if recorded.to_json()["cells"] != manifest.to_json()["cells"]:
                raise GridError(
                    f"{self.root}: holds another grid (its {GridManifest.FILE} lists other "
                    f"cells); choose a new --out"
                )
        for top, dirs, files in os.walk(self.root, onerror=_walk_error):
            for name in [*dirs, *files]:
                _plain(Path(top) / name)
            if Path(top) == self.root and self.ray_storage.name in dirs:
                dirs.remove(self.ray_storage.name)  # Ray Tune's own storage
        for plan in manifest.cells:
            self.check_cell(plan)
            for path in (self.status_file(plan.index), self.log(plan.index)):
                if _lexists(path) and not path.is_file():
                    raise GridError(f"{path}: not a file")
            self.status(plan.index)
        for path in (self.manifest, self.results):
            if _lexists(path) and not path.is_file():
                raise GridError(f"{path}: not a file")

    def check_cell(self, plan: CellPlan) -> None:
        """Each folder a cell writes in (``status``, ``logs``, its run's) is a folder
        of the grid's own, not a link out of it (``GridError``)."""
        for rel in ("status", "logs", self.ray_storage.name, plan.output):
            path = self.root
            for part in Path(rel).parts:
                path = path / part
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    raise GridError(f"{path}: not a folder of the grid (a link, or a file)")

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
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:  # not through a link, never waiting on a FIFO
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise GridError(f"{path}: cannot open the cell's log ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise GridError(f"{path}: not a plain file (a FIFO, a device, or one with other links)")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _lexists(path: Path) -> bool:
    """Whether ``path`` exists (a link counts, wherever it leads)."""
    return path.is_symlink() or path.exists()


def _plain(path: Path) -> None:
    """``path``, inside a grid directory, is a folder or a file with no other link."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise GridError(f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise GridError(f"{path}: a link in the grid directory; a write would leave it")
    if stat.S_ISREG(info.st_mode) and info.st_nlink != 1:
        raise GridError(f"{path}: a file with other hard links; a write would leave the grid")
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise GridError(f"{path}: neither a file nor a folder (a FIFO, a socket, a device)")


def _walk_error(exc: OSError) -> None:
    raise GridError(f"{exc.filename}: cannot read it ({exc.strerror})")


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
    from its last checkpoint where its command has one. A cell still running in
    another process (a driver died, its worker did not) is left to it."""
    grid = GridDir(Path(root))
    manifest = grid.read_manifest()
    grid.check_cell(manifest.cells[index])  # no folder of it is a link out of the grid
    grid.status_file(index).parent.mkdir(parents=True, exist_ok=True)
    lock = grid.root / "status" / f"c{index:03d}.lock"
    try:
        fd = try_lock(lock)
    except OSError as exc:
        raise GridError(f"{lock}: cannot open the cell's lock ({exc.strerror})") from None
    if fd is None:
        error = f"c{index:03d} is still running in another process; not started again"
        return {"index": index, "state": "failed", "error": error}
    try:
        return _execute_cell(grid, manifest, index, node)
    finally:
        os.close(fd)  # the lock goes with it (and with the process, however it ends)


def _execute_cell(
    grid: GridDir, manifest: GridManifest, index: int, node: str | None
) -> dict[str, Any]:
    from arena.cli import main
    from arena.grid.commands import command, resume_argv, run_dir_of, summary

    plan = manifest.cells[index]
    before = grid.status(index)
    if before is not None and before.state == "done":
        return before.to_json()
    cmd = command(manifest.spec.command)
    out = grid.cell_out(plan)
    attempt = before.attempt + 1 if before is not None else 1
    argv = plan.argv
    if before is not None or cmd.kind == "training" or out.exists():  # a training goes on
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
