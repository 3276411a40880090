"""What a report knows of one run, read through the typed files (``arena.artifacts``).

``config.json`` / ``adversary_run.json`` are ``RunConfig``; ``results.json`` is
``RunResults`` (an old file converted by its legacy adapter, never guessed at here);
``progress.csv`` is a training run's log. A field of the wrong type is the user's
error (one line, ``RunFileError``); a file that is not JSON at all is a note.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena.artifacts import RunConfig, RunFileError, RunResults, SampleRecipe
from arena.artifacts.base import ArtifactError, read_json
from arena.artifacts.run import RESULTS
from arena.artifacts.run_builders import training_view
from arena.artifacts.run_samples import training_sample
from arena.artifacts.training_run import TrainingResults
from arena.report.discovery import CONFIG_FILES
from arena.report.media import MAX_MEDIA_BYTES

MEDIA_SUFFIXES = (".png", ".mp4", ".gif", ".webm")
MAX_MEDIA = 20
"""Pictures and videos of one run shown at most (the rest named in a note)."""
MAX_PROGRESS_BYTES = 32 * 2**20
"""A larger ``progress.csv`` is not read."""
MAX_PROGRESS_POINTS = 20_000
"""Rows of ``progress.csv`` kept (evenly spread, the last one always)."""


@dataclass(frozen=True)
class ProgressPoint:
    """One row of a training run's ``progress.csv`` with a win rate."""

    timesteps: float
    win_rate: float
    episodes: str
    shaping: float | None


@dataclass
class RunView:
    """One run as the page shows it."""

    path: Path
    name: str
    """The run's path relative to the reported directory (``.`` for itself)."""
    config: RunConfig | None = None
    config_file: str | None = None
    results: RunResults | None = None
    metadata: dict[str, Any] | None = None
    progress: list[ProgressPoint] | None = None
    """None without ``progress.csv``; empty before the first win rate."""
    media: list[Path] = field(default_factory=list)
    """Figures and videos the run saved itself."""
    records: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_training(self) -> bool:
        return self.config_file == "adversary_run.json"

    @property
    def samples(self) -> tuple[SampleRecipe, ...]:
        """How to play an episode of it: its results say; an unfinished training run
        plays its latest checkpoint."""
        if self.results is not None:
            return self.results.samples
        sample = training_sample(self.path, self.notes) if self.is_training else None
        return (sample,) if sample is not None else ()


def _json(path: Path, notes: list[str]) -> Any:
    try:
        return read_json(path)
    except ArtifactError as exc:
        notes.append(f"{path.name}: {exc}")
        return None


def _present(path: Path, notes: list[str]) -> bool:
    """Whether ``path`` is there to be read: a regular file, not a link (a link, a
    pipe or a device is never read: a note says so)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        notes.append(f"{path.name}: not read (a link, or not a regular file)")
        return False
    return True


def read_run(path: Path, name: str, root: Path | None = None) -> RunView:
    """Everything of ``path`` that the page shows (records are added by the caller).
    Only regular files directly in ``path`` are read; another run its results name is
    read only inside ``root`` (the reported directory), if given."""
    run = RunView(path, name)
    for config_file in CONFIG_FILES:
        if os.path.lexists(path / config_file):
            config = (
                _json(path / config_file, run.notes)
                if _present(path / config_file, run.notes)
                else None
            )
            if config is not None:
                run.config = RunConfig.from_json(config, str(path / config_file))
                run.config_file = config_file
            break
    if _present(path / RESULTS, run.notes):
        data = _json(path / RESULTS, run.notes)
        if data is not None and run.is_training:
            results = TrainingResults.from_json(data, str(path / RESULTS))
            run.results = training_view(results, path, run.notes)
        elif data is not None:
            run.results = RunResults.from_json(
                data,
                str(path / RESULTS),
                config=run.config.values if run.config else None,
                run_dir=path,
                root=root,
                notes=run.notes,
            )
    if _present(path / "metadata.json", run.notes):
        meta = _json(path / "metadata.json", run.notes)
        run.metadata = meta if isinstance(meta, dict) else None
    if _present(path / "progress.csv", run.notes):
        run.progress = read_progress(path / "progress.csv", run.notes)
    run.media = _media(path, run.notes)
    return run


def _media(path: Path, notes: list[str]) -> list[Path]:
    """The pictures and videos saved in ``path``: regular files (never a link), at most
    ``MAX_MEDIA`` of them, each at most ``MAX_MEDIA_BYTES``."""
    found = []
    try:
        with os.scandir(path) as it:
            entries = sorted(
                (e for e in it if os.path.splitext(e.name)[1].lower() in MEDIA_SUFFIXES),
                key=lambda e: e.name,
            )
    except OSError:
        return []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            if not stat.S_ISDIR(info.st_mode):
                notes.append(f"{entry.name}: not shown (a link, or not a regular file)")
            continue
        if info.st_size > MAX_MEDIA_BYTES:
            notes.append(
                f"{entry.name}: not shown ({info.st_size / 2**20:.0f} MiB; at most "
                f"{MAX_MEDIA_BYTES // 2**20} MiB)"
            )
            continue
        found.append(Path(entry.path))
    if len(found) > MAX_MEDIA:
        notes.append(
            f"{len(found) - MAX_MEDIA} more pictures or videos not shown "
            f"(at most {MAX_MEDIA} a run)"
        )
    return found[:MAX_MEDIA]


def read_progress(path: Path, notes: list[str]) -> list[ProgressPoint]:
    """The rows of ``progress.csv`` that have a win rate (a regular file of at most
    ``MAX_PROGRESS_BYTES``; at most ``MAX_PROGRESS_POINTS`` rows kept, evenly spread)."""
    try:
        text = _read_text(path, MAX_PROGRESS_BYTES)
        rows = csv.DictReader(io.StringIO(text, newline=""))
        stride = max(1, -(-text.count("\n") // MAX_PROGRESS_POINTS))
        points = []
        last = None
        for i, r in enumerate(rows):
            point = _point(r)
            if point is None:
                continue
            last = point
            if i % stride == 0:
                points.append(point)
        if last is not None and (not points or points[-1] is not last):
            points.append(last)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        notes.append(f"{path.name}: unreadable ({exc})")
        return []
    return points


def _read_text(path: Path, limit: int) -> str:
    """The text of a regular file (never through a link, a pipe or a device) of at
    most ``limit`` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > limit:
            raise OSError(f"{info.st_size:,} bytes; at most {limit:,} are read")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"more than {limit:,} bytes")
    return data.decode("utf-8")


def _point(row: dict[str | Any, Any]) -> ProgressPoint | None:
    t, w = _float(row.get("timesteps")), _float(row.get("win_rate"))
    if t is None or w is None or math.isnan(w) or math.isnan(t):
        return None
    episodes = str(row.get("episodes") or "?")[:40]
    return ProgressPoint(t, w, episodes, _float(row.get("shaping")))


def _float(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if not math.isinf(value) else None


__all__ = ["ProgressPoint", "RunFileError", "RunView", "read_progress", "read_run"]
