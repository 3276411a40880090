"""What a sample episode may load: files inside the reported directory, or in the
shared data directories (``$ARENA_ZOO_DIR``, ``$ARENA_ATARI_DIR``) and the arena's own
bundled assets, never another file a ``results.json`` happens to name.

``problem(recipe, root)`` says, in one line, why a recipe may not be played (a policy
or an attack naming a file outside those places, ``env_kwargs`` that are not plain
values), or None.
"""

from __future__ import annotations

import os
from pathlib import Path

from arena.artifacts import SampleRecipe
from arena.artifacts.run_fields import RunFileError, as_text
from arena.artifacts.run_samples import check_env_kwargs
from arena.report.discovery import inside

DATA_DIRS = ("ARENA_ZOO_DIR", "ARENA_ATARI_DIR")
"""Environment variables naming shared data directories a sample may load from."""
ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The arena's bundled policies (``arena/assets``)."""
MAX_SPEC_DEPTH = 8
"""Wrapped policy specs (``mix:``, ``masked:``) looked into at most this deep."""


def allowed_dirs(root: Path) -> list[Path]:
    """Where a sample's files may lie: ``root``, the shared data directories that are
    set, and the bundled assets."""
    dirs = [root]
    for name in DATA_DIRS:
        value = os.environ.get(name, "").strip()
        if value:
            dirs.append(Path(value).expanduser())
    return [*dirs, ASSETS]


def _allowed(path: Path, dirs: list[Path]) -> bool:
    return any(inside(path, d) for d in dirs)


def policy_problem(spec: str, dirs: list[Path], depth: int = 0) -> str | None:
    """Why the policy ``spec`` may not be loaded for a sample, or None."""
    from agents import specs

    try:
        kind, arg = specs.parse(spec)
        if kind.takes_spec:
            if depth >= MAX_SPEC_DEPTH:
                return f"policy {as_text(spec, 100)} wraps other policies too deeply"
            for _, inner in specs.components(arg):
                why = policy_problem(inner, dirs, depth + 1)
                if why is not None:
                    return why
            return None
        if not kind.takes_path:
            return None
        path = kind.locate(arg) if kind.locate is not None else Path(arg).expanduser()
    except (ValueError, OSError) as exc:  # a bad spec, a zoo file not there
        return f"policy {as_text(spec, 100)}: {as_text(str(exc), 200)}"
    if not _allowed(path, dirs):
        return (
            f"policy {as_text(spec, 100)} lies outside the runs directory and the data "
            f"directories ({', '.join(DATA_DIRS)})"
        )
    return None


def attack_problem(spec: str, dirs: list[Path]) -> str | None:
    """Why the attack ``spec`` may not be built for a sample (it reads frames outside
    the allowed directories), or None."""
    from agents.attacks import parse_attack

    try:
        attack = parse_attack(spec)
    except (ValueError, OSError) as exc:
        return f"attack {as_text(spec, 100)}: {as_text(str(exc), 200)}"
    frames = getattr(attack, "frames", None)
    if isinstance(frames, str | Path) and not _allowed(Path(frames), dirs):
        return (
            f"attack {as_text(spec, 100)} reads frames outside the runs directory and the "
            f"data directories"
        )
    return None


def problem(recipe: SampleRecipe, root: Path | None) -> str | None:
    """Why ``recipe`` may not be played for a report of ``root``, or None."""
    try:
        check_env_kwargs(recipe.env_kwargs, "env_kwargs")
    except RunFileError as exc:
        return str(exc)
    if root is None:
        return None
    dirs = allowed_dirs(root)
    for seat, spec in recipe.policies.items():
        why = policy_problem(spec, dirs)
        if why is not None:
            return f"{as_text(seat, 60)}: {why}"
    for seat, spec in recipe.attacks.items():
        why = attack_problem(spec, dirs)
        if why is not None:
            return f"{as_text(seat, 60)}: {why}"
    return None
