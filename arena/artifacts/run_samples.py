"""How to play one episode of what a run measured: ``SampleRecipe``, the arguments of
``run_match`` that a run's ``results.json`` names for the report's sample episode."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.numbers import parse_seed
from arena.artifacts.base import is_int
from arena.artifacts.run_fields import (
    RunFileError,
    as_text,
    fail,
    json_object,
    no_huge_int,
    seat_specs,
    text,
)
from arena.errors import ArenaError

MAX_KWARG_INT = 2**53
"""The largest integer an ``env_kwargs`` value may be (in size): a float holds it."""


@dataclass(frozen=True)
class SampleRecipe:
    """How to play one episode of what a run measured: the arguments of ``run_match``."""

    env: str
    policies: dict[str, str]
    """Seat -> policy spec (``zoo:PATH``, ``run:DIR``, ``random`` ...)."""
    seed: int = 0
    attacks: dict[str, str] = field(default_factory=dict)
    """Seat -> attack spec, for the seats whose observations are perturbed."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    deterministic: bool | dict[str, bool] = True
    """One flag for every seat, or seat -> flag (the run's own choice, not a default)."""
    label: str = ""
    """What the episode shows, in words: ``"normal victim vs adversary"``."""

    def to_json(self) -> dict[str, Any]:
        det = self.deterministic
        return {
            "env": self.env,
            "policies": dict(self.policies),
            "seed": self.seed,
            "attacks": dict(self.attacks),
            "env_kwargs": dict(self.env_kwargs),
            "deterministic": det if isinstance(det, bool) else dict(det),
            "label": self.label,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> SampleRecipe:
        data = json_object(data, where)
        policies = seat_specs(data.get("policies"), f"{where}.policies", empty=False)
        attacks = seat_specs(data.get("attacks", {}), f"{where}.attacks")
        stray = [s for s in attacks if s not in policies]
        if stray:
            raise RunFileError(f"{where}.attacks: seat {stray[0]!r} has no policy")
        det = data.get("deterministic", True)
        if isinstance(det, dict):
            if not all(s in policies and isinstance(v, bool) for s, v in det.items()):
                raise fail(f"{where}.deterministic", "an object seat -> true/false", det)
        elif not isinstance(det, bool):
            raise fail(f"{where}.deterministic", "true, false or an object seat -> flag", det)
        return cls(
            env=text(data.get("env"), f"{where}.env"),
            policies=policies,
            seed=parse_seed(
                no_huge_int(data.get("seed", 0), f"{where}.seed"),
                f"{where}.seed",
                error=RunFileError,
            ),
            attacks=attacks,
            env_kwargs=check_env_kwargs(data.get("env_kwargs", {}), f"{where}.env_kwargs"),
            deterministic=det if isinstance(det, bool) else dict(det),
            label=text(data.get("label", ""), f"{where}.label", empty=True),
        )


def check_env_kwargs(value: Any, where: str) -> dict[str, Any]:
    """``env_kwargs`` of a sample: an object of plain JSON scalars (text, a finite
    number, an integer of at most 2**53, true/false, null), else ``RunFileError``."""
    kwargs = json_object(value, where)
    for key, v in kwargs.items():
        text(key, f"{where} key")
        plain = v is None or isinstance(v, str | bool)
        plain = plain or (is_int(v) and abs(v) <= MAX_KWARG_INT)
        plain = plain or (isinstance(v, float) and math.isfinite(v))
        if not plain:
            raise fail(f"{where}.{key}", "a plain value (text, a finite number, true/false)", v)
    return dict(kwargs)


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None and text not in notes:
        notes.append(text)


def training_sample(directory: Path, notes: list[str] | None = None) -> SampleRecipe | None:
    """An adversary training run's adversary (trained, or at its latest checkpoint)
    against its frozen victims, as it trained: None without a policy or a readable
    ``adversary_run.json`` (a regular file, not a link) naming the adversary's seat;
    why goes to ``notes`` where it is the marker's fault."""
    from arena.artifacts.training_run import TrainingRunFiles

    files = TrainingRunFiles(directory)
    try:
        regular = stat.S_ISREG(os.lstat(files.marker).st_mode)
    except OSError:  # no marker: not a training run
        return None
    if not regular or not files.is_run():
        _note(notes, f"{files.marker.name}: not read (a link, or not a regular file)")
        return None
    finished = files.policy.is_file()
    if not (finished or files.has_checkpoint()):
        return None
    try:
        marker = files.read_marker()
    except (ArenaError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        _note(notes, f"no sample episode: {as_text(str(exc), 300)}")
        return None
    seat = marker.adversary_seat
    if seat is None or seat in marker.victims:
        return None
    sampled = marker.config.victim_sampled
    return SampleRecipe(
        env=marker.env,
        policies={**marker.victims, seat: f"run:{directory.resolve()}"},
        seed=marker.seed,
        env_kwargs=dict(marker.config.env_kwargs),
        deterministic={**{s: not sampled for s in marker.victims}, seat: True},
        label=f"the {'trained' if finished else 'latest checkpoint of the'} {seat} "
        f"against its victims",
    )
