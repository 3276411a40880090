"""The one parser of numbers from user input: command-line flags, attack specs
(``fgsm:eps=1/255``), mixture weights (``mix:0.5*SPEC|0.5*SPEC``), run files.

A number is finite (NaN and ±inf are refused) and inside its valid range, and every
refusal names that range. Text may be a decimal (``0.004``, ``2e-3``) or a fraction
(``1/255``); integers must be whole. This module imports nothing of the project, so
every package may use it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal, TypedDict, Unpack, overload

SEED_MAX = 2**32 - 1
"""Seeds are 32-bit: every derived seed (``numpy.random.SeedSequence``) accepts them."""


def _show(x: float) -> str:
    if isinstance(x, int) and abs(x) >= 10**18:
        return f"an integer of {x.bit_length()} bits"
    if float(x).is_integer() and abs(x) >= 10_000:
        return f"{int(x):,}"
    return f"{x:.15g}"  # the value given, not rounded into the range (1.0000001, not 1)


def valid_range(
    name: str, *, low: float | None, high: float | None, integer: bool, low_open: bool = False
) -> str:
    """The valid values in words: ``a positive integer, at most 1,000``, ``0 <= eps <= 1``."""
    if integer:
        if low == 1 or (low == 0 and low_open):
            text = "a positive integer"
        elif low == 0:
            text = "a non-negative integer"
        elif low is not None:
            text = f"an integer >= {_show(low)}"
        else:
            text = "an integer"
        return text + (f", at most {_show(high)}" if high is not None else "")
    lower = "<" if low_open else "<="
    if low is not None and high is not None:
        return f"{_show(low)} {lower} {name} <= {_show(high)}"
    if low is not None:
        return f"{name} {'>' if low_open else '>='} {_show(low)}"
    if high is not None:
        return f"{name} <= {_show(high)}"
    return "a finite number"


class _Range(TypedDict, total=False):
    """``parse_number``'s keyword arguments other than ``integer``."""

    low: float | None
    high: float | None
    low_open: bool
    error: type[Exception]


@overload
def parse_number(value: Any, name: str, *, integer: Literal[True], **kw: Unpack[_Range]) -> int: ...
@overload
def parse_number(
    value: Any, name: str, *, integer: Literal[False] = ..., **kw: Unpack[_Range]
) -> float: ...
@overload
def parse_number(value: Any, name: str, *, integer: bool, **kw: Unpack[_Range]) -> int | float: ...


def parse_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_open: bool = False,
    error: type[Exception] = ValueError,
) -> int | float:
    """``value`` (text, ``int`` or ``float``) as a finite number in ``[low, high]``
    (``(low, high]`` with ``low_open``): an ``int`` with ``integer``, else a ``float``.

    Anything else raises ``error`` (the caller's error type) with one line that names
    ``name`` and the valid range.
    """
    valid = valid_range(name, low=low, high=high, integer=integer, low_open=low_open)
    need = valid if integer else f"a number ({valid})"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise error(f"{name} must be {need}, got {value!r:.60}")
    number: int | float | Fraction
    if isinstance(value, str):
        text = value.strip()
        try:
            if "_" in text:  # Python's digit separators: 0.0_1 is no number a user means
                raise ValueError(text)
            if "/" in text:
                number = Fraction(text)
            elif integer and text.lstrip("+-").isdigit():
                number = int(text)
            else:
                number = float(text)
        except (ValueError, ZeroDivisionError):
            raise error(f"{name} must be {need}, got {value!r:.60}") from None
    else:
        number = value
    if (
        isinstance(value, str)
        and number == 0
        and any(c in "123456789" for c in value.lower().partition("e")[0])
    ):
        raise error(f"{name}={value.strip()[:40]} is too small to tell from 0; valid: {valid}")
    if isinstance(number, float) and not math.isfinite(number):
        raise error(f"{name}={str(value)[:40]} is not a finite number; valid: {valid}")
    if integer and number != int(number):
        raise error(f"{name} must be {need}, got {value!r:.60}")
    try:
        number = int(number) if integer else float(number)
    except OverflowError:  # a huge fraction or integer as a float
        raise error(f"{name}={str(value)[:40]} is out of range; valid: {valid}") from None
    below = low is not None and (number <= low if low_open else number < low)
    if below or (high is not None and number > high):
        raise error(f"{name}={_show(number)} is out of range; valid: {valid}")
    return number


def parse_seed(value: Any, name: str = "seed", *, error: type[Exception] = ValueError) -> int:
    """A seed: an integer in ``0..SEED_MAX``."""
    return parse_number(value, name, low=0, high=SEED_MAX, integer=True, error=error)
