"""The error of a run directory's files and the checks their fields share.

Each check returns the value as its type, or raises ``RunFileError`` in one line that
names where the field is, what it must be and what it was.
"""

from __future__ import annotations

import json
import math
from typing import Any

from arena.artifacts.base import ArtifactError, is_number, kind


class RunFileError(ArtifactError):
    """A run's ``results.json`` or ``config.json`` with a field of the wrong type or range."""


BRIEF_DEPTH = 4
"""How deep ``brief`` shows nested lists and objects (deeper ones as ``[...]``)."""


def fail(where: str, what: str, value: Any) -> RunFileError:
    """The error for ``value`` at ``where``, which must be ``what``."""
    return RunFileError(f"{where} must be {what}, got {kind(value)} {brief(value)}")


def int_text(value: int) -> str:
    """An integer as text: its digits up to 20 of them, else ``1.234e+399``."""
    if -(10**20) < value < 10**20:
        return str(value)
    sign = "-" if value < 0 else ""
    try:
        digits = str(abs(value))
    except ValueError:  # more digits than Python converts
        return f"{sign}an integer of {value.bit_length()} bits"
    return f"{sign}{digits[0]}.{digits[1:4]}e+{len(digits) - 1}"


def brief(value: Any, limit: int = 60, *, as_json: bool = False) -> str:
    """A JSON value as short text for a message or a cell: nested at most
    ``BRIEF_DEPTH`` deep, at most ``limit`` characters (never a recursion, never the
    whole of a large value); Python's notation, or with ``as_json`` JSON's."""
    text = _brief(value, BRIEF_DEPTH, limit, as_json)
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def _brief(value: Any, depth: int, room: int, as_json: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return int_text(value)
    if isinstance(value, str):
        value = value[: room + 1]
    if value is None or isinstance(value, bool | float | str):
        return json.dumps(value, ensure_ascii=False) if as_json else repr(value)
    if isinstance(value, list | tuple | dict):
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not value:
            return opening + closing
        if depth <= 0:
            return f"{opening}...{closing}"
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        parts: list[str] = []
        used = 0
        for key, item in items:
            if used > room:
                parts.append("...")
                break
            head = "" if key is None else _brief(str(key), 0, room - used, as_json) + ": "
            parts.append(head + _brief(item, depth - 1, room - used, as_json))
            used += len(parts[-1]) + 2
        return opening + ", ".join(parts) + closing
    return type(value).__name__


def as_text(value: Any, limit: int = 200) -> str:
    """A value read from a file as text for a title or a label: text as it is (cut at
    ``limit`` characters), anything else briefly (``brief``)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    return brief(value, limit)


def no_huge_int(value: Any, where: str) -> Any:
    """``value`` unless it is an integer too large for a float (``RunFileError``): a
    check before code that would convert it and overflow."""
    if isinstance(value, int) and not isinstance(value, bool) and finite(value) is None:
        raise RunFileError(f"{where}={int_text(value)} is out of range")
    return value


def finite(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (not a number, NaN, an
    infinity, or an integer too large for a float)."""
    if not is_number(value):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def text(value: Any, where: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or "\x00" in value:
        raise fail(where, "text" if empty else "non-empty text", value)
    return value


def number(value: Any, where: str, *, nan: bool = False) -> float:
    if isinstance(value, float) and math.isnan(value) and nan:
        return value
    x = finite(value)
    if x is None:
        raise fail(where, "a finite number", value)
    return x


def json_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(where, "a list", value)
    return value


def json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, "an object", value)
    return value


def numbers(value: Any, where: str) -> tuple[float, ...]:
    """A list of finite numbers."""
    return tuple(number(v, f"{where}[{i}]") for i, v in enumerate(json_list(value, where)))


def seat_specs(value: Any, where: str, *, empty: bool = True) -> dict[str, str]:
    """An object seat -> spec (policy or attack), every key and value text."""
    value = json_object(value, where)
    if not value and not empty:
        raise fail(where, "an object seat -> spec with at least one seat", value)
    return {text(s, f"{where} key"): text(v, f"{where}.{s}") for s, v in value.items()}


def interval(value: Any, where: str) -> tuple[float, float]:
    """A pair ``[low, high]`` of finite numbers, low <= high."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise fail(where, "a pair [low, high]", value)
    low, high = number(value[0], f"{where}[0]"), number(value[1], f"{where}[1]")
    if low > high:
        raise RunFileError(f"{where}: low {low} is above high {high}")
    return (low, high)


def optional_interval(value: Any, where: str) -> tuple[float, float] | None:
    return interval(value, where) if value is not None else None
