"""Values of ``results.json`` before schema version 1, read for the legacy adapter
(``run_legacy``, ``run_legacy_experiments``): a score as ``SeatResult.to_json`` wrote
it, policy specs as a config named them, a seed, a cell of an old table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from arena.artifacts.base import is_int, is_number
from arena.artifacts.run_fields import RunFileError, brief, finite, int_text
from arena.artifacts.run_tables import Cell, Score
from arena.evaluation import SeatResult

SCORE_KEYS = ("win_rate", "mean_return")


def is_score_map(obj: Any) -> bool:
    """An object label -> score (as ``SeatResult.to_json`` wrote it)."""
    return isinstance(obj, dict) and all(
        isinstance(v, dict) and any(is_number(v.get(k)) for k in SCORE_KEYS) for v in obj.values()
    )


def pair(value: Any) -> bool:
    """A finite ``[low, high]``."""
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(finite(x) is not None for x in value)
        and value[0] <= value[1]
    )


MAX_LIST = 50
"""Numbers of a list shown in one cell of an old table; the rest counted."""


def cell(value: Any) -> Cell:
    if value is None or isinstance(value, Score | str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list) and all(is_number(x) for x in value):
        shown = [_short(x) for x in value[:MAX_LIST]]
        more = f", ... ({len(value)} values)" if len(value) > MAX_LIST else ""
        return "[" + ", ".join(shown) + more + "]"
    return brief(value, 2000, as_json=True)


def _short(x: float) -> str:
    f = finite(x)
    return f"{f:.4g}" if f is not None else int_text(x) if isinstance(x, int) else str(x)


def seat(data: Mapping[str, Any], where: str) -> SeatResult:
    """A score as ``SeatResult.to_json`` wrote it (missing counts read as 0, missing
    numbers and intervals as NaN)."""
    for key in ("wins", "losses", "ties"):
        value = data.get(key, 0)
        if not is_int(value) or not 0 <= value < 2**63:
            raise RunFileError(
                f"{where}.{key} must be a count (an integer from 0 to 2**63 - 1), "
                f"got {brief(value)}"
            )
    for key in ("win_rate_ci95", "return_ci95"):
        value = data.get(key)
        if value is not None and not pair(value):
            raise RunFileError(f"{where}.{key} must be a pair [low, high], got {brief(value)}")

    def number(key: str) -> float:
        value = finite(data.get(key))
        return math.nan if value is None else value

    def interval(key: str) -> tuple[float, float]:
        value: Any = data.get(key)
        return (math.nan, math.nan) if value is None else (float(value[0]), float(value[1]))

    def optional(key: str) -> Any:
        value = data.get(key)
        return value if isinstance(value, str) else finite(value)

    return SeatResult(
        wins=data.get("wins", 0),
        losses=data.get("losses", 0),
        ties=data.get("ties", 0),
        win_rate=number("win_rate"),
        win_rate_ci95=interval("win_rate_ci95"),
        mean_return=number("mean_return"),
        std_return=number("std_return"),
        return_ci95=interval("return_ci95"),
        flip_rate=optional("flip_rate"),
        attacked_fraction=optional("attacked_fraction"),
        attack=optional("attack"),
        budget=optional("budget"),
    )


def _spec(ref: Any) -> str | None:
    """A policy as a config names it: the spec string, or a reference with ``spec``."""
    spec = ref.get("spec") if isinstance(ref, dict) else ref
    return spec if isinstance(spec, str) and spec else None


def specs(refs: Any) -> dict[str, str]:
    """Seat -> policy spec of a config's policies; empty unless every one names a spec."""
    if not isinstance(refs, dict):
        return {}
    out = {s: _spec(ref) for s, ref in refs.items()}
    return {s: v for s, v in out.items() if v} if all(out.values()) else {}


def seed_of(config: Mapping[str, Any]) -> int:
    seed = config.get("seed", 0)
    return seed if is_int(seed) and 0 <= seed < 2**32 else 0
