"""``arena demo`` and ``arena run``: whole experiments.

Experiments are plug-ins: each is an entry point of the group ``arena.experiments``
whose object is ``main(argv: list[str]) -> int`` and whose module docstring's first
line is its summary (``arena run list``). The arena's own are declared in its
``pyproject.toml``; a package of yours adds one the same way, and once installed
``arena run NAME`` runs it::

    [project.entry-points."arena.experiments"]
    my_study = "my_package.my_study:main"

The library only reads the entry points; it never imports ``experiments``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from arena.errors import UsageError, check_output_dir

GROUP = "arena.experiments"


def cmd_demo(args: argparse.Namespace) -> int:
    from arena.demo import run_demo

    check_output_dir(args.out, "--out")
    return run_demo(
        out=Path(args.out),
        retrain=not args.shipped,
        workers=args.workers,
        episodes=args.episodes,
        seed=args.seed,
    )


def experiments() -> dict[str, EntryPoint]:
    """The installed experiments by name (the entry points of ``arena.experiments``)."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def summary(entry: EntryPoint) -> str:
    """The first line of the experiment's module docstring (else of its ``main``)."""
    try:
        main = entry.load()
    except Exception as exc:  # a broken plug-in is listed, not fatal to the list
        return f"(cannot be loaded: {type(exc).__name__}: {exc})"
    module = sys.modules.get(getattr(main, "__module__", ""))
    doc = (module.__doc__ if module is not None else None) or main.__doc__ or ""
    lines = doc.strip().splitlines()
    return lines[0] if lines else ""


def load(name: str) -> Callable[[list[str]], int | None]:
    """The ``main`` of experiment ``name``; ``UsageError`` naming the valid ones."""
    found = experiments()
    if name not in found:
        valid = ", ".join(found) if found else f"none installed (no entry points in {GROUP})"
        raise UsageError(f"unknown experiment {name!r}; valid: {valid}")
    main: Callable[[list[str]], int | None] = found[name].load()
    return main


def cmd_run(args: argparse.Namespace) -> int:
    if args.name == "list":
        found = experiments()
        width = max((len(n) for n in found), default=0)
        for name, entry in found.items():
            print(f"{name:<{max(width, 20)}} {summary(entry)}")
        return 0
    return int(load(args.name)(list(args.rest)) or 0)
