"""Where the arena keeps what it fetches: ``$ARENA_HOME``, else ``~/.cache/arena``.

``arena fetch`` puts the agent zoo in ``HOME/zoo/`` (the layout of the published
``agent-zoo`` folder) and the Atari policies in ``HOME/atari/``; ``zoo:`` and ``atari:``
short names look there after ``$ARENA_ZOO_DIR`` / ``$ARENA_ATARI_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "ARENA_HOME"


def arena_home() -> Path:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "arena"


def cached(kind: str, relative: str | Path) -> Path | None:
    """``HOME/kind/relative`` if that file is there (never outside ``HOME/kind``)."""
    root = arena_home() / kind
    full = root / relative
    try:
        inside = full.resolve().is_relative_to(root.resolve())
    except OSError:
        return None
    return full if inside and full.is_file() else None
