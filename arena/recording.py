"""Episode records: ``manifest.json`` plus one ``episode_NNNNN.npz`` per episode.

The npz files hold plain numeric arrays only, read through ``agents.npz.read_npz``:
every header is checked before anything is inflated, against the limits of an episode
(``MAX_EPISODE_STEPS`` rows, ``MAX_STEP_BYTES`` per row, ``MAX_EPISODE_BYTES`` in all). Keys:
``obs.<seat>`` (T+1, ...), ``action.<seat>`` (T, ...), ``reward.<seat>`` (T,), and
for an attacked seat ``delta.<seat>`` (T, ...) float32 on the network-input scale,
``clean_action.<seat>`` (T, ...), ``attacked.<seat>`` (T,) bool. A record directory
is written atomically: it appears whole or not at all.

The manifest is ``arena.artifacts.RecordManifest``; reading checks its every field and
refuses, with one-line ``RecordError``, any episode file name that would resolve
outside the record directory (absolute, ``..``, a symlink out, a NUL byte) before
it opens anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents import specs as policy_specs
from agents.npz import NpzError, read_npz, size_text
from arena.artifacts import (
    MANIFEST,
    EpisodeEntry,
    RecordError,
    RecordManifest,
    episode_filename,
    member_path,
    read_json,
    write_json,
)
from arena.io import atomic_directory

__all__ = [
    "MANIFEST",
    "MAX_EPISODE_BYTES",
    "MAX_EPISODE_STEPS",
    "MAX_STEP_BYTES",
    "EpisodeRecord",
    "RecordError",
    "RecordManifest",
    "load_episode",
    "match_manifest",
    "read_episode",
    "read_episode_arrays",
    "read_manifest",
    "write_record",
]

ATTACK_ARRAYS = ("delta", "clean_action", "attacked")
ARRAY_KINDS = ("obs", "action", "reward", *ATTACK_ARRAYS)

MAX_EPISODE_STEPS = 100_000
"""An episode file's arrays have at most this many rows (its observations one more)."""
MAX_STEP_BYTES = 4 << 20
"""One row (a step's observation, action or δ) holds at most 4 MiB (an Atari frame
stack under attack, δ in float32, is 110 KiB)."""
MAX_EPISODE_BYTES = 4 << 30
"""All the arrays of one episode file together, inflated: at most 4 GiB (a 27,000-step
Atari episode under attack, its observations and δ, takes 3.6 GiB). Checked from the
headers, before anything is inflated."""
MAX_EPISODE_MEMBERS = 256
"""Arrays in one episode file (1 + 6 per seat in a record the arena writes)."""


@dataclass(frozen=True)
class EpisodeRecord:
    """One recorded episode. One more observation than actions, per seat."""

    index: int
    reset_seed: int
    observations: dict[str, np.ndarray]
    """seat -> (T+1, *obs_shape): the clean observations from reset to the end."""
    actions: dict[str, np.ndarray]
    """seat -> (T, *action_shape): the actions the env received."""
    rewards: dict[str, np.ndarray]
    """seat -> (T,) float64."""
    attack: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """seat -> {"delta": (T, *input_shape), "clean_action": (T, ...), "attacked": (T,)}."""
    outcome: dict[str, str] = field(default_factory=dict, compare=False)
    """seat -> "win" | "loss" | "tie" where the writer knows it (goes in the manifest)."""
    source: Path | None = field(default=None, compare=False, repr=False)
    """The record directory it was read from (``read_episode``), else None."""

    def __post_init__(self) -> None:
        for seat, acts in self.actions.items():
            t = len(acts)
            obs = self.observations.get(seat)
            if obs is None or len(obs) != t + 1:
                raise RecordError(
                    f"episode {self.index}, seat {seat!r}: need {t + 1} observations for "
                    f"{t} actions, got {None if obs is None else len(obs)}"
                )
            if len(self.rewards.get(seat, ())) != t:
                raise RecordError(f"episode {self.index}, seat {seat!r}: {t} rewards expected")
            for key, arr in self.attack.get(seat, {}).items():
                if len(arr) != t:
                    raise RecordError(
                        f"episode {self.index}, seat {seat!r}: {key} has "
                        f"{len(arr)} rows, expected {t}"
                    )

    @property
    def length(self) -> int:
        return len(next(iter(self.actions.values())))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"reset_seed": np.asarray(self.reset_seed, dtype=np.int64)}
        for seat in self.actions:
            out[f"obs.{seat}"] = self.observations[seat]
            out[f"action.{seat}"] = self.actions[seat]
            out[f"reward.{seat}"] = self.rewards[seat]
            for key, arr in self.attack.get(seat, {}).items():
                out[f"{key}.{seat}"] = arr
        return out

    @classmethod
    def from_arrays(
        cls,
        index: int,
        arrays: dict[str, np.ndarray],
        *,
        seats: list[str] | None = None,
        source: Path | None = None,
    ) -> EpisodeRecord:
        """The episode from its npz arrays; with ``seats``, every seat must be there."""
        where = f"episode {index}"
        obs, act, rew = {}, {}, {}
        attack: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in arrays.items():
            if key == "reset_seed":
                continue
            kind, dot, seat = key.partition(".")
            if not dot or not seat or kind not in ARRAY_KINDS:
                raise RecordError(
                    f"{where}: unknown array {key!r}; valid: reset_seed and "
                    f"{', '.join(k + '.SEAT' for k in ARRAY_KINDS)}"
                )
            if seats is not None and seat not in seats:
                raise RecordError(
                    f"{where}: array {key!r} is for seat {seat!r}, which the manifest "
                    f"does not list (seats: {', '.join(seats)})"
                )
            if arr.ndim < 1:
                raise RecordError(f"{where}: array {key!r} has no step axis (a scalar)")
            if kind == "obs":
                obs[seat] = arr
            elif kind == "action":
                act[seat] = arr
            elif kind == "reward":
                rew[seat] = arr
            else:
                attack.setdefault(seat, {})[kind] = arr
        if "reset_seed" not in arrays:
            raise RecordError(f"{where}: no reset_seed in the record")
        seed = arrays["reset_seed"]
        if seed.shape != () or seed.dtype.kind not in "iu" or int(seed) < 0:
            raise RecordError(
                f"{where}: reset_seed must be a non-negative integer scalar, got "
                f"{seed.dtype} {seed.shape} {seed.tolist()!r}"
            )
        for seat in seats if seats is not None else sorted({*obs, *act, *rew}):
            for kind, table in (("obs", obs), ("action", act), ("reward", rew)):
                if seat not in table:
                    raise RecordError(f"{where}: seat {seat!r} has no {kind}.{seat} array")
        for seat, arrs in attack.items():
            missing = [k for k in ATTACK_ARRAYS if k not in arrs]
            if missing:
                raise RecordError(
                    f"{where}, seat {seat!r}: attack arrays need {', '.join(ATTACK_ARRAYS)}; "
                    f"missing {', '.join(missing)}"
                )
        for seat, r in rew.items():
            if r.ndim != 1:
                raise RecordError(f"{where}: reward.{seat} must be 1-D, got shape {r.shape}")
            if r.dtype.kind not in "fiu":
                raise RecordError(f"{where}: reward.{seat} must be numbers, got {r.dtype}")
        for seat, a in act.items():
            if a.ndim < 1 or len(a) == 0:
                raise RecordError(f"{where}: action.{seat} must hold at least one step")
        return cls(index, int(seed), obs, act, rew, attack, source=source)


def match_manifest(
    env_id: str,
    policies: dict[str, str],
    *,
    seed: int,
    attacks: dict[str, str] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    workers: int | None = None,
    deterministic: bool | dict[str, bool] = True,
) -> RecordManifest:
    """The manifest of a match's record: who sat where (each policy file with its
    sha256), the attacks and the seeds; ``write_record`` adds the episodes."""
    return RecordManifest(
        env=env_id,
        seats=tuple(policies),
        env_kwargs=dict(env_kwargs or {}),
        policies={seat: policy_specs.reference(str(spec)) for seat, spec in policies.items()},
        attacks=dict(attacks or {}),
        seed=seed,
        workers=workers,
        deterministic=deterministic,
    )


def write_record(
    directory: str | Path, manifest: RecordManifest, episodes: list[EpisodeRecord]
) -> Path:
    """Write a whole record directory atomically; refuses to overwrite a non-empty one.
    ``manifest``'s own ``episodes`` are replaced by entries for ``episodes``."""
    directory = Path(directory)
    entries = tuple(
        EpisodeEntry(
            index=ep.index,
            file=episode_filename(ep.index),
            reset_seed=ep.reset_seed,
            length=ep.length,
            returns={s: float(r.sum()) for s, r in ep.rewards.items()},
            outcome=dict(ep.outcome) if ep.outcome else None,
        )
        for ep in episodes
    )
    with atomic_directory(directory) as tmp:
        for ep in episodes:
            arrays: dict[str, Any] = ep.to_arrays()
            np.savez_compressed(tmp / episode_filename(ep.index), **arrays)
        write_json(tmp / MANIFEST, manifest.with_episodes(entries).to_json())
    return directory


def _manifest_path(directory: Path) -> Path:
    return directory / MANIFEST if directory.is_dir() else directory


def _parse_manifest(directory: Path) -> tuple[Path, RecordManifest]:
    path = _manifest_path(directory)
    if not path.is_file():
        raise RecordError(f"no record at {directory}: expected a directory with {MANIFEST}")

    def check_game(env_id: str, seats: list[str]) -> None:
        import envs

        try:
            spec = envs.spec(env_id)
        except envs.EnvError as exc:
            raise RecordError(f"record's env is not available: {exc}") from None
        if sorted(seats) != sorted(spec.seats):
            missing = [s for s in spec.seats if s not in seats]
            extra = [s for s in seats if s not in spec.seats]
            what = f"lacks seat {missing[0]!r}" if missing else f"has unknown seat {extra[0]!r}"
            raise RecordError(f"{path}: 'seats' {what}; {env_id} has seats {', '.join(spec.seats)}")

    data = read_json(path, RecordError)
    return path, RecordManifest.from_json(data, str(path), check_game)


def read_manifest(directory: str | Path) -> RecordManifest:
    """The checked manifest; every episode file must be inside the record and present."""
    directory = Path(directory)
    path, manifest = _parse_manifest(directory)
    for position, entry in enumerate(manifest.episodes):
        file = member_path(path.parent, entry.file, f"{path}: episodes[{position}].file")
        if not file.is_file():
            raise RecordError(f"{file} is missing from the record")
    return manifest


def _check_episode_header(name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse, from its header alone, an array no episode of the arena holds."""
    if not shape:
        return
    if shape[0] > MAX_EPISODE_STEPS + 1:
        raise NpzError(
            f"array {name} has {shape[0]} rows; an episode has at most {MAX_EPISODE_STEPS} "
            f"steps ({MAX_EPISODE_STEPS + 1} observations)"
        )
    row = math.prod(shape[1:]) * dtype.itemsize
    if row > MAX_STEP_BYTES:
        raise NpzError(
            f"array {name} holds {size_text(row)} per step; one step of an episode holds at "
            f"most {size_text(MAX_STEP_BYTES)}"
        )


def read_episode_arrays(path: Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of an episode file, read through ``agents.npz.read_npz`` within the
    limits above: checked from its headers before anything is inflated."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise RecordError(f"{path} is missing from the record") from None
    except OSError as exc:
        raise RecordError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise RecordError(f"{what} {path} is not a regular file")
    if st.st_size > MAX_EPISODE_BYTES + (1 << 20):
        raise RecordError(
            f"{what} {path} takes {size_text(st.st_size)}; an episode file holds at most "
            f"{size_text(MAX_EPISODE_BYTES)} of arrays"
        )
    try:
        return read_npz(
            path,
            max_bytes=MAX_EPISODE_BYTES,
            max_members=MAX_EPISODE_MEMBERS,
            check=_check_episode_header,
        )
    except NpzError as exc:
        text = str(exc)
        if not text.startswith(str(path)):
            text = f"{path}: {text}"
        raise RecordError(f"{what}: {text}") from None


def load_episode(
    directory: str | Path, entry: EpisodeEntry, seats: tuple[str, ...] | list[str]
) -> EpisodeRecord:
    """The episode a (validated) manifest entry names, from record ``directory``."""
    directory = Path(directory)
    base = _manifest_path(directory).parent
    path = member_path(base, entry.file, f"episode {entry.index}: file")
    arrays = read_episode_arrays(path, f"episode {entry.index}")
    return EpisodeRecord.from_arrays(entry.index, arrays, seats=list(seats), source=base)


def read_episode(directory: str | Path, position: int) -> EpisodeRecord:
    """The ``position``-th episode listed in the manifest (0-based)."""
    directory = Path(directory)
    _, manifest = _parse_manifest(directory)  # its own file is checked by load_episode
    entries = manifest.episodes
    if not 0 <= position < len(entries):
        raise RecordError(
            f"episode {position} is out of range; this record has episodes 0..{len(entries) - 1}"
        )
    return load_episode(directory, entries[position], manifest.seats)
