"""Where the runs and records of a directory are: the folders a report shows.

A run is a folder with any of ``RUN_FILES``; a record is a folder with a
``manifest.json`` (its episodes are not runs). Hidden folders, checkpoints,
TensorBoard logs and reports (ours, or any folder with ``MARKER``) are skipped.

The walk stays inside the directory given: a link to a folder is never followed (a
note says so), and it stops, with a note, after ``MAX_DIRS`` folders, ``MAX_ENTRIES``
entries or ``MAX_DEPTH`` levels, so a loop or a huge tree cannot stall a report.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from arena.errors import ArenaError

MARKER = ".arena-report"
"""A file in every report directory: lets a new report replace an old one."""
SKIP_DIRS = frozenset({"checkpoints", "tb", "report", "__pycache__"})
"""Folders under a run that hold no runs of their own."""
CONFIG_FILES = ("config.json", "adversary_run.json")
RUN_FILES = ("results.json", "progress.csv", "metadata.json", *CONFIG_FILES)
MANIFEST = "manifest.json"
MAX_DIRS = 10_000
"""Folders looked into at most; the walk stops there (a note says so)."""
MAX_ENTRIES = 1_000_000
"""Directory entries looked at, at most."""
MAX_DEPTH = 32
"""Levels below the reported directory looked into."""
MAX_LINK_NOTES = 5


class ReportError(ArenaError):
    """A run directory that cannot be reported (missing, or nothing in it to show)."""


@dataclass
class Found:
    """The runs (parents before their children) and records under a directory."""

    runs: list[Path] = field(default_factory=list)
    records: list[Path] = field(default_factory=list)
    """In the order found; the directory itself last, if it is a record."""
    notes: list[str] = field(default_factory=list)


def resolved(path: Path) -> Path:
    """``path`` with its links resolved, as far as they go (a loop stays unresolved)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name
        return Path(os.path.abspath(path))


def inside(path: Path, root: Path) -> bool:
    """Whether ``path``, links resolved, is ``root`` or lies under it."""
    return resolved(path).is_relative_to(resolved(root))


def _is_file(entry: os.DirEntry[str]) -> bool:
    """A regular file, not a link (whatever it points to)."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def discover(root: Path, final: Path) -> Found:
    """Every run and record at or under ``root``, ``final`` (the report's directory)
    and other reports left out, no folder link followed, the walk bounded."""
    found = Found()
    skip = resolved(final)
    stack: list[tuple[Path, int]] = [(root, 0)]
    dirs = entries = links = 0
    while stack:
        path, depth = stack.pop()
        dirs += 1
        if dirs > MAX_DIRS or entries > MAX_ENTRIES:
            found.notes.append(
                f"stopped looking for runs after {MAX_DIRS:,} folders or {MAX_ENTRIES:,} "
                f"entries; {relative(path, root)} and what follows are not shown"
            )
            break
        try:
            with os.scandir(path) as it:
                listing = []
                for entry in it:
                    entries += 1
                    listing.append(entry)
                    if entries > MAX_ENTRIES:
                        break
        except OSError as exc:
            found.notes.append(f"{relative(path, root)}: not read ({exc.strerror or exc})")
            continue
        listing.sort(key=lambda e: e.name)
        if any(e.name in RUN_FILES for e in listing):
            found.runs.append(path)
        children = []
        for entry in listing:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_link:
                if os.path.isdir(child):
                    links += 1
                    if links <= MAX_LINK_NOTES:
                        found.notes.append(
                            f"{relative(child, root)}: a link to a folder, not followed"
                        )
                continue
            if not is_dir or resolved(child) == skip:
                continue
            manifest = child / MANIFEST
            if os.path.lexists(manifest):
                if regular_file(manifest):
                    found.records.append(child)
                else:
                    found.notes.append(
                        f"{relative(manifest, root)}: not read (a link, or not a regular file)"
                    )
            elif entry.name not in SKIP_DIRS and not _is_report(child):
                children.append(child)
        if depth >= MAX_DEPTH and children:
            found.notes.append(
                f"{relative(path, root)}: more than {MAX_DEPTH} levels deep; "
                f"its folders are not shown"
            )
            continue
        stack += [(c, depth + 1) for c in reversed(children)]
    if links > MAX_LINK_NOTES:
        found.notes.append(f"{links - MAX_LINK_NOTES} more links to folders, not followed")
    if regular_file(root / MANIFEST):
        found.records.append(root)
    return found


def regular_file(path: Path) -> bool:
    """A regular file, not a link."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def _is_report(path: Path) -> bool:
    return os.path.lexists(path / MARKER)


def check_out(final: Path, root: Path, found: Found, records: list[Path]) -> None:
    """Refuse an output path that is a file, the reported directory or a folder
    holding it, one that holds any run or record, or a folder of something else than
    a report: a report replaces its directory whole."""
    if final.exists() and not final.is_dir():
        raise ReportError(f"--out {final} exists and is not a directory")
    if inside(root, final):
        what = "is" if resolved(root) == resolved(final) else "holds"
        raise ReportError(
            f"--out {final} {what} the run directory {root}, which the report would "
            f"replace; give a new directory"
        )
    for path in [*found.runs, *found.records, *records]:
        if inside(path, final):
            raise ReportError(
                f"--out {final} holds {path}, which the report shows; give a new directory"
            )
    if not final.is_dir():
        return
    if any(final.iterdir()) and not regular_file(final / MARKER):
        raise ReportError(f"--out {final} exists, is not empty and is not an arena report")
    held = _run_or_record_in(final)
    if held is not None:
        raise ReportError(f"--out {final} is marked as a report but holds {held}; not replaced")


def _run_or_record_in(final: Path) -> str | None:
    """A run's or a record's file in ``final`` (a report holds none), or None."""
    stack, seen = [final], 0
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    seen += 1
                    if seen > 10_000:
                        return "more than 10,000 entries"
                    if entry.name in RUN_FILES or entry.name == MANIFEST:
                        return entry.path
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError as exc:
            return f"{path}, which cannot be read ({exc.strerror or exc})"
    return None


def owner(record: Path, runs: list[Path]) -> Path | None:
    """The innermost run that holds ``record``, or None."""
    holders = [r for r in runs if record != r and record.is_relative_to(r)]
    return max(holders, key=lambda r: len(r.parts)) if holders else None


def relative(path: Path, root: Path) -> str:
    """``path`` as the page names it: relative to ``root`` where it lies inside."""
    if path == root:
        return "."
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
