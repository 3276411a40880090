"""Attacks as the arena builds them: ``agents.attacks.parse_attack``, plus what only the
arena can give an attack: the frames of an episode record (``universal:frames=DIR``),
read with ``arena.recording`` (agents never read the arena's files themselves) within
its limits on an episode, and checked against the victim's observation space (shape,
numeric dtype, finite values) before anything is fitted on them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from agents.attacks import AttackSpecError, ObservationAttack, parse_attack
from agents.attacks.universal import Universal
from arena.recording import MANIFEST, RecordError, load_episode, read_manifest


def _check_frames(
    frames: np.ndarray, shape: tuple[int, ...] | None, where: str, *, victim: bool
) -> None:
    """One episode's frames: numbers, finite, each of ``shape`` (the victim's
    observations, or else the first episode's)."""
    if frames.dtype.kind not in "biuf":
        raise AttackSpecError(f"universal: {where} are {frames.dtype}, not numbers")
    if shape is not None and tuple(frames.shape[1:]) != shape:
        whose = "the victim's observations are" if victim else "the record's first are"
        raise AttackSpecError(
            f"universal: {where} have shape {tuple(frames.shape[1:])}; {whose} {shape}"
        )
    if frames.dtype.kind == "f":
        for row in range(len(frames)):
            if not np.all(np.isfinite(frames[row])):
                raise AttackSpecError(f"universal: {where}: frame {row} is not finite")


def record_frames(
    directory: str | Path,
    seat: str | None,
    max_frames: int | None,
    *,
    space: Any = None,
) -> np.ndarray:
    """The clean observations one seat acted on in a record, episode after episode (the
    last observation of each was never acted on), at most ``max_frames`` of them.
    ``seat`` may be left out when the record has one seat. With ``space`` (the victim's
    observation space) every frame must have its shape; always they are finite numbers
    of one shape."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise AttackSpecError(
            f"universal: no record in {directory} (no {MANIFEST}; make one with "
            f"`arena evaluate ... --record DIR`)"
        )
    space_shape = getattr(space, "shape", None)
    shape = tuple(space_shape) if space_shape is not None else None
    try:
        manifest = read_manifest(directory)
        seats = list(manifest.seats)
        if seat is None and len(seats) != 1:
            raise AttackSpecError(
                f"universal: the record has seats {', '.join(seats)}; say which with seat=NAME"
            )
        name = seat if seat is not None else seats[0]
        if name not in seats:
            raise AttackSpecError(
                f"universal: unknown seat {name!r} in {directory}; valid: {', '.join(seats)}"
            )
        chunks: list[np.ndarray] = []
        total = 0
        for entry in manifest.episodes:
            frames = load_episode(directory, entry, seats).observations[name][:-1]
            where = f"the observations of {name!r} in episode {entry.index} of {directory}"
            if shape is not None:
                _check_frames(frames, shape, where, victim=True)
            else:
                _check_frames(frames, chunks[0].shape[1:] if chunks else None, where, victim=False)
            if max_frames is not None and total + len(frames) > max_frames:
                frames = frames[: max_frames - total].copy()  # not the whole episode kept
            chunks.append(frames)
            total += len(frames)
            if max_frames is not None and total >= max_frames:
                break
    except RecordError as exc:
        raise AttackSpecError(f"universal: cannot read the record {directory}: {exc}") from None
    return np.concatenate(chunks)


class RecordUniversal(Universal):
    """``universal:frames=DIR`` as the arena builds it: the record's frames are read
    when it first fits, checked against the observation space of the victim it fits on."""

    def perturb(self, victim: Any, *args: Any, **kwargs: Any) -> Any:
        if self.delta is None and self.frames is not None:
            space = getattr(victim, "observation_space", None)
            self.read_frames = functools.partial(record_frames, space=space)
        return super().perturb(victim, *args, **kwargs)


def build_attack(attack: str | ObservationAttack) -> ObservationAttack:
    """The attack a spec names (or the one given), with what it reads from the arena."""
    built = parse_attack(attack) if isinstance(attack, str) else attack
    if isinstance(built, Universal) and built.frames is not None and built.read_frames is None:
        built.read_frames = record_frames
        if type(built) is Universal:
            built.__class__ = RecordUniversal  # the same object, reading checked frames
    return built
