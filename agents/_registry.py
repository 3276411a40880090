"""Importing the modules that fill a registry (attack kinds, policy kinds) on import."""

from __future__ import annotations

import importlib
from collections.abc import Iterable


def import_plugins(modules: Iterable[str]) -> None:
    """Import each module; one that is not installed is skipped, but a module that is
    there and lacks a dependency of its own still raises."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith(module):
                continue
            raise
