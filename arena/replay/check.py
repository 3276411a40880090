"""What a check of one episode says: ``EpisodeCheck``, and how a difference is worded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class EpisodeCheck:
    index: int
    steps: int
    match: bool
    first_mismatch: int | None = None
    """The first step that differs (0 = the reset or the manifest, k = the k-th step)."""
    detail: str = ""
    field: str = ""
    """What differs: ``obs.SEAT``, ``reward.SEAT``, ``action.SEAT``, ``delta.SEAT``,
    ``clean_action.SEAT``, ``attacked.SEAT``, ``length``, ``reset_seed``,
    ``returns.SEAT``, ``outcome.SEAT``, ``attacks``, ``policies.SEAT.sha256``..."""
    notes: tuple[str, ...] = ()
    """What could not be checked (e.g. a policy file that is gone), said, not skipped."""

    @property
    def message(self) -> str:
        """One line, e.g. ``episode 3, step 101: reward of 'player' differs (...)``."""
        if self.match:
            return f"episode {self.index}: {self.steps} steps; verified"
        return f"episode {self.index}, step {self.first_mismatch}: {self.detail}"


class Mismatch(NamedTuple):
    """The first difference one check found: its step, its field, one line about it."""

    step: int
    field: str
    detail: str


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: the same shape, dtype and values (NaN equal to NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def show(a: Any) -> str:
    """A small array's values as numpy writes them; a large one's dtype and shape."""
    a = np.asarray(a)
    if a.size <= 6:
        items = [str(x) for x in a.ravel()]  # numpy's shortest repr for the dtype
        return items[0] if a.ndim == 0 else "[" + ", ".join(items) + "]"
    return f"{a.dtype} array {a.shape}"


def differs(name: str, seat: str, recorded: Any, derived: Any, how: str) -> str:
    """``NAME of 'SEAT' differs (recorded ..., HOW ...)``, sized to what differs."""
    recorded, derived = np.asarray(recorded), np.asarray(derived)
    if recorded.shape != derived.shape or recorded.dtype != derived.dtype:
        return (
            f"{name} of {seat!r} differs (recorded {recorded.dtype} {recorded.shape}, "
            f"{how} {derived.dtype} {derived.shape})"
        )
    if recorded.size > 6 and recorded.dtype.kind in "fiu":
        gap = np.max(np.abs(recorded.astype(np.float64) - derived.astype(np.float64)))
        return f"{name} of {seat!r} differs (max |recorded - {how}| = {gap:.3g})"
    return f"{name} of {seat!r} differs (recorded {show(recorded)}, {how} {show(derived)})"


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""
