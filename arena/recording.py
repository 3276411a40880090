"""Episode records: ``manifest.json`` plus one ``episode_NNNNN.npz`` per episode.

The npz files hold plain arrays only (loaded with ``allow_pickle=False``). Keys:
``obs.<seat>`` (T+1, ...), ``action.<seat>`` (T, ...), ``reward.<seat>`` (T,), and
for an attacked seat ``delta.<seat>`` (T, ...) float32 on the network-input scale,
``clean_action.<seat>`` (T, ...), ``attacked.<seat>`` (T,) bool. A record directory
is written atomically: it appears whole or not at all.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arena.io import atomic_directory, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class RecordError(ValueError):
    """A record that is missing, corrupted, or written by an unknown schema version."""


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
    def from_arrays(cls, index: int, arrays: dict[str, np.ndarray]) -> EpisodeRecord:
        obs, act, rew = {}, {}, {}
        attack: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in arrays.items():
            if key == "reset_seed":
                continue
            kind, _, seat = key.partition(".")
            if kind == "obs":
                obs[seat] = arr
            elif kind == "action":
                act[seat] = arr
            elif kind == "reward":
                rew[seat] = arr
            else:
                attack.setdefault(seat, {})[kind] = arr
        if "reset_seed" not in arrays:
            raise RecordError(f"episode {index}: no reset_seed in the record")
        return cls(index, int(arrays["reset_seed"]), obs, act, rew, attack)


def episode_filename(index: int) -> str:
    return f"episode_{index:05d}.npz"


def write_record(
    directory: str | Path, manifest: dict[str, Any], episodes: list[EpisodeRecord]
) -> Path:
    """Write a whole record directory atomically; refuses to overwrite a non-empty one."""
    directory = Path(directory)
    manifest = {"schema_version": SCHEMA_VERSION, **manifest}
    manifest["episodes"] = [
        {
            "index": ep.index,
            "file": episode_filename(ep.index),
            "reset_seed": ep.reset_seed,
            "length": ep.length,
            "returns": {s: float(r.sum()) for s, r in ep.rewards.items()},
        }
        for ep in episodes
    ]
    with atomic_directory(directory) as tmp:
        for ep in episodes:
            arrays: dict[str, Any] = ep.to_arrays()
            np.savez_compressed(tmp / episode_filename(ep.index), **arrays)
        write_json_atomic(tmp / MANIFEST, manifest)
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    path = directory / MANIFEST if directory.is_dir() else directory
    if not path.is_file():
        raise RecordError(f"no record at {directory}: expected a directory with {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise RecordError(
            f"{path}: schema_version {version!r} is "
            f"{'newer than this arena supports (upgrade it)' if newer else 'not supported'}; "
            f"this arena reads schema_version {SCHEMA_VERSION}"
        )
    for key in ("env", "seats", "episodes"):
        if key not in manifest:
            raise RecordError(f"{path}: manifest lacks {key!r}")
    return manifest


def read_episode(directory: str | Path, position: int) -> EpisodeRecord:
    """The ``position``-th episode listed in the manifest (0-based)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    entries = manifest["episodes"]
    if not 0 <= position < len(entries):
        raise RecordError(
            f"episode {position} is out of range; this record has episodes 0..{len(entries) - 1}"
        )
    entry = entries[position]
    path = directory / entry["file"]
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise RecordError(f"{path} is missing from the record") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise RecordError(f"{path} is corrupted or truncated: {exc}") from None
    return EpisodeRecord.from_arrays(int(entry["index"]), arrays)
