"""Experiments: one module each, runnable as ``python -m experiments.NAME`` and
``arena run NAME``. Each module defines ``main(argv: list[str] | None) -> int`` and a
docstring whose first line is its summary.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from arena.errors import ArenaError


class ExperimentError(ArenaError):
    """Unknown experiment name."""


def names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def summary(name: str) -> str:
    module = importlib.import_module(f"experiments.{name}")
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def run_experiment(name: str, argv: list[str]) -> int:
    if name == "list":
        for n in names():
            print(f"{n:<20} {summary(n)}")
        return 0
    if name not in names():
        raise ExperimentError(f"unknown experiment {name!r}; valid: {', '.join(names())}")
    module = importlib.import_module(f"experiments.{name}")
    return int(module.main(argv) or 0)
