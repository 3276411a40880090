"""Episode records: ``manifest.json`` plus one ``episode_NNNNN.npz`` per episode.

The npz files hold plain arrays only (loaded with ``allow_pickle=False``). Keys:
``obs.<seat>`` (T+1, ...), ``action.<seat>`` (T, ...), ``reward.<seat>`` (T,), and
for an attacked seat ``delta.<seat>`` (T, ...) float32 on the network-input scale,
``clean_action.<seat>`` (T, ...), ``attacked.<seat>`` (T,) bool. A record directory
is written atomically: it appears whole or not at all.

Reading validates the manifest's every field (types, ranges, the env's seats) and
refuses, with one-line ``RecordError``, any episode file name that would resolve
outside the record directory (absolute, ``..``, a symlink out, a NUL byte) before
it opens anything.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from arena.errors import ArenaError
from arena.io import atomic_directory, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"

EPISODE_KEYS = ("index", "file", "reset_seed", "length", "returns")
"""The keys every manifest ``episodes`` entry has; ``outcome`` (seat -> str) is optional."""
OPTIONAL_EPISODE_KEYS = ("outcome",)
ATTACK_ARRAYS = ("delta", "clean_action", "attacked")
ARRAY_KINDS = ("obs", "action", "reward", *ATTACK_ARRAYS)
POLICY_REF_KEYS = ("spec", "kind", "path", "sha256", "files")


class RecordError(ArenaError):
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


def episode_filename(index: int) -> str:
    return f"episode_{index:05d}.npz"


def write_record(
    directory: str | Path, manifest: dict[str, Any], episodes: list[EpisodeRecord]
) -> Path:
    """Write a whole record directory atomically; refuses to overwrite a non-empty one."""
    directory = Path(directory)
    manifest = {"schema_version": SCHEMA_VERSION, **manifest}
    entries = []
    for ep in episodes:
        entry: dict[str, Any] = {
            "index": ep.index,
            "file": episode_filename(ep.index),
            "reset_seed": ep.reset_seed,
            "length": ep.length,
            "returns": {s: float(r.sum()) for s, r in ep.rewards.items()},
        }
        if ep.outcome:
            entry["outcome"] = dict(ep.outcome)
        entries.append(entry)
    manifest["episodes"] = entries
    with atomic_directory(directory) as tmp:
        for ep in episodes:
            arrays: dict[str, Any] = ep.to_arrays()
            np.savez_compressed(tmp / episode_filename(ep.index), **arrays)
        write_json_atomic(tmp / MANIFEST, manifest)
    return directory


# ---------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_member_name(name: Any, what: str) -> str:
    """``name`` as a relative file name that stays inside its directory (no fs access)."""
    if not isinstance(name, str) or not name:
        raise RecordError(f"{what} must be a non-empty file name, got {_kind(name)} {name!r}")
    if "\x00" in name:
        raise RecordError(f"{what} {name!r} contains a NUL byte")
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise RecordError(f"{what} {name!r} is an absolute path; records name files inside them")
    if any(part in ("..",) for part in pure.parts) or "\\" in name:
        raise RecordError(f"{what} {name!r} leaves the record directory")
    return name


def member_path(directory: Path, name: Any, what: str) -> Path:
    """``directory / name``, refused unless it resolves inside ``directory`` (symlinks
    followed); nothing is opened."""
    check_member_name(name, what)
    base = directory.resolve()
    path = directory / name
    try:
        inside = path.resolve().is_relative_to(base)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise RecordError(f"{what} {name!r} cannot be resolved: {exc}") from None
    if not inside:
        raise RecordError(f"{what} {name!r} resolves outside the record directory {directory}")
    return path


def _seat_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RecordError(f"{where}: 'seats' must be a non-empty list of seat names")
    if not all(isinstance(s, str) and s for s in value):
        raise RecordError(f"{where}: 'seats' must hold seat names (strings), got {value!r}")
    if len(set(value)) != len(value):
        raise RecordError(f"{where}: 'seats' lists a seat twice: {value!r}")
    return value


def _seat_dict(value: Any, name: str, seats: list[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"{where}: {name!r} must be an object (seat -> ...), got {_kind(value)}")
    unknown = [s for s in value if s not in seats]
    if unknown:
        raise RecordError(
            f"{where}: {name!r} names unknown seat {unknown[0]!r}; seats: {', '.join(seats)}"
        )
    return value


def _check_policy_ref(seat: str, ref: Any, where: str) -> None:
    if isinstance(ref, str):
        if not ref:
            raise RecordError(f"{where}: policies.{seat} is an empty spec")
        return
    if not isinstance(ref, dict):
        raise RecordError(
            f"{where}: policies.{seat} must be a spec string or an object with "
            f"{', '.join(POLICY_REF_KEYS)}, got {_kind(ref)}"
        )
    for key in ("spec", "kind"):
        if not isinstance(ref.get(key), str) or not ref[key]:
            raise RecordError(
                f"{where}: policies.{seat}.{key} must be a non-empty string, "
                f"got {_kind(ref.get(key))}"
            )
    for key in ("path", "sha256"):
        value = ref.get(key)
        if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
            raise RecordError(
                f"{where}: policies.{seat}.{key} must be null or a non-empty string, "
                f"got {_kind(value)} {value!r}"
            )
    if (ref.get("path") is None) != (ref.get("sha256") is None):
        raise RecordError(f"{where}: policies.{seat} has a path without a sha256 or vice versa")
    files = ref.get("files")
    if files is None:
        return
    if not isinstance(files, dict):
        raise RecordError(f"{where}: policies.{seat}.files must be null or an object")
    for role, item in files.items():
        if (
            not isinstance(item, dict)
            or not all(isinstance(item.get(k), str) and item[k] for k in ("path", "sha256"))
            or "\x00" in item["path"]
        ):
            raise RecordError(
                f"{where}: policies.{seat}.files.{role} must be an object with a path "
                f"and a sha256 (strings)"
            )


def _check_entry(position: int, entry: Any, seats: list[str], where: str) -> None:
    at = f"{where}: episodes[{position}]"
    if not isinstance(entry, dict):
        raise RecordError(
            f"{at} must be an object with {', '.join(EPISODE_KEYS)}, got {_kind(entry)} {entry!r}"
        )
    missing = [k for k in EPISODE_KEYS if k not in entry]
    if missing:
        raise RecordError(f"{at} lacks {missing[0]!r}; entries need {', '.join(EPISODE_KEYS)}")
    unknown = [k for k in entry if k not in EPISODE_KEYS + OPTIONAL_EPISODE_KEYS]
    if unknown:
        raise RecordError(
            f"{at} has unknown key {unknown[0]!r}; valid: "
            f"{', '.join(EPISODE_KEYS + OPTIONAL_EPISODE_KEYS)}"
        )
    for key, low in (("index", 0), ("reset_seed", 0), ("length", 1)):
        value = entry[key]
        if not _is_int(value) or value < low:
            raise RecordError(f"{at}.{key} must be an integer >= {low}, got {value!r}")
    if entry["reset_seed"] >= 2**63:
        raise RecordError(f"{at}.reset_seed {entry['reset_seed']} is out of range (< 2**63)")
    check_member_name(entry["file"], f"{at}.file")
    returns = entry["returns"]
    if not isinstance(returns, dict) or sorted(returns) != sorted(seats):
        got = sorted(returns) if isinstance(returns, dict) else _kind(returns)
        raise RecordError(f"{at}.returns must give a number for each seat {seats}, got {got}")
    for seat, value in returns.items():
        if not _is_number(value):
            raise RecordError(f"{at}.returns.{seat} must be a number, got {value!r}")
    if "outcome" in entry:
        outcome = entry["outcome"]
        if not isinstance(outcome, dict) or sorted(outcome) != sorted(seats):
            raise RecordError(f"{at}.outcome must give a string for each seat {seats}")
        if not all(isinstance(v, str) for v in outcome.values()):
            raise RecordError(f"{at}.outcome values must be strings, got {outcome!r}")


def validate_manifest(manifest: Any, where: str = MANIFEST) -> dict[str, Any]:
    """Check the type and range of every field; raise a one-line ``RecordError``."""
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict):
        raise RecordError(f"{where}: the manifest must be a JSON object, got {_kind(manifest)}")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        newer = _is_int(version) and int(version or 0) > SCHEMA_VERSION
        raise RecordError(
            f"{where}: schema_version {version!r} is "
            f"{'newer than this arena supports (upgrade it)' if newer else 'not supported'}; "
            f"this arena reads schema_version {SCHEMA_VERSION}"
        )
    for key in ("env", "seats", "episodes"):
        if key not in manifest:
            raise RecordError(f"{where}: manifest lacks {key!r}")
    env_id = manifest["env"]
    if not isinstance(env_id, str) or not env_id:
        raise RecordError(f"{where}: 'env' must be an env id string, got {_kind(env_id)}")
    seats = _seat_list(manifest["seats"], where)
    import envs

    try:
        spec = envs.spec(env_id)
    except envs.EnvError as exc:
        raise RecordError(f"record's env is not available: {exc}") from None
    if sorted(seats) != sorted(spec.seats):
        missing = [s for s in spec.seats if s not in seats]
        extra = [s for s in seats if s not in spec.seats]
        what = f"lacks seat {missing[0]!r}" if missing else f"has unknown seat {extra[0]!r}"
        raise RecordError(f"{where}: 'seats' {what}; {env_id} has seats {', '.join(spec.seats)}")
    kwargs = manifest.get("env_kwargs", {})
    if not isinstance(kwargs, dict):
        raise RecordError(f"{where}: 'env_kwargs' must be an object, got {_kind(kwargs)}")
    if "seed" in manifest and (not _is_int(manifest["seed"]) or manifest["seed"] < 0):
        raise RecordError(f"{where}: 'seed' must be an integer >= 0, got {manifest['seed']!r}")
    if "workers" in manifest and (not _is_int(manifest["workers"]) or manifest["workers"] < 1):
        raise RecordError(
            f"{where}: 'workers' must be an integer >= 1, got {manifest['workers']!r}"
        )
    if "deterministic" in manifest:
        det = manifest["deterministic"]
        if isinstance(det, dict):
            _seat_dict(det, "deterministic", seats, where)
            if not all(isinstance(v, bool) for v in det.values()):
                raise RecordError(f"{where}: 'deterministic' values must be true or false")
        elif not isinstance(det, bool):
            raise RecordError(
                f"{where}: 'deterministic' must be true, false or an object seat -> bool, "
                f"got {det!r}"
            )
    if manifest.get("policies") is not None:
        for seat, ref in _seat_dict(manifest["policies"], "policies", seats, where).items():
            _check_policy_ref(seat, ref, where)
    if manifest.get("attacks") is not None:
        for seat, spec_ in _seat_dict(manifest["attacks"], "attacks", seats, where).items():
            if not isinstance(spec_, str) or not spec_:
                raise RecordError(f"{where}: attacks.{seat} must be an attack spec string")
    entries = manifest["episodes"]
    if not isinstance(entries, list) or not entries:
        raise RecordError(
            f"{where}: 'episodes' must be a non-empty list of episode objects, got {_kind(entries)}"
        )
    indices: dict[int, int] = {}
    files: dict[str, int] = {}
    for position, entry in enumerate(entries):
        _check_entry(position, entry, seats, where)
        if entry["index"] in indices:
            raise RecordError(
                f"{where}: episodes[{position}] repeats index {entry['index']} "
                f"(of episodes[{indices[entry['index']]}])"
            )
        indices[entry["index"]] = position
        name = str(PurePosixPath(entry["file"]))
        if name in files:
            raise RecordError(
                f"{where}: episodes[{position}].file {entry['file']!r} is also "
                f"episodes[{files[name]}]'s"
            )
        files[name] = position
    return manifest


def _manifest_path(directory: Path) -> Path:
    return directory / MANIFEST if directory.is_dir() else directory


def _parse_manifest(directory: Path) -> tuple[Path, dict[str, Any]]:
    path = _manifest_path(directory)
    if not path.is_file():
        raise RecordError(f"no record at {directory}: expected a directory with {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RecordError(f"{path} is not valid JSON: nested too deeply") from None
    return path, validate_manifest(manifest, str(path))


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The validated manifest; every episode file must be inside the record and present."""
    directory = Path(directory)
    path, manifest = _parse_manifest(directory)
    for position, entry in enumerate(manifest["episodes"]):
        file = member_path(path.parent, entry["file"], f"{path}: episodes[{position}].file")
        if not file.is_file():
            raise RecordError(f"{file} is missing from the record")
    return manifest


def load_episode(directory: str | Path, entry: dict[str, Any], seats: list[str]) -> EpisodeRecord:
    """The episode a (validated) manifest entry names, from record ``directory``."""
    directory = Path(directory)
    base = _manifest_path(directory).parent
    path = member_path(base, entry["file"], f"episode {entry['index']}: file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise RecordError(f"{path} is not an npz archive of episode arrays")
        with data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise RecordError(f"{path} is missing from the record") from None
    except RecordError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error) as exc:
        raise RecordError(f"{path} is corrupted or truncated: {exc}") from None
    return EpisodeRecord.from_arrays(int(entry["index"]), arrays, seats=seats, source=base)


def read_episode(directory: str | Path, position: int) -> EpisodeRecord:
    """The ``position``-th episode listed in the manifest (0-based)."""
    directory = Path(directory)
    _, manifest = _parse_manifest(directory)  # its own file is checked by load_episode
    entries = manifest["episodes"]
    if not 0 <= position < len(entries):
        raise RecordError(
            f"episode {position} is out of range; this record has episodes 0..{len(entries) - 1}"
        )
    return load_episode(directory, entries[position], list(manifest["seats"]))
