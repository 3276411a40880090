"""Experiments: one module each, registered as an entry point of the group
``arena.experiments`` in ``pyproject.toml``, and run as ``arena run NAME`` or by
itself as ``python -m experiments.NAME``. Each module defines
``main(argv: list[str] | None) -> int`` and a docstring whose first line is its
summary (``arena run list``). The library never imports this package.
"""

from __future__ import annotations

from arena.errors import ArenaError


class ExperimentError(ArenaError):
    """Bad input to an experiment: printed as one line ``arena: error: ...``, exit 2."""
