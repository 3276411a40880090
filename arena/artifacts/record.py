"""The record manifest: ``manifest.json`` beside the ``episode_NNNNN.npz`` files.

``RecordManifest.from_json`` checks the type and range of every field and refuses any
episode file name that would leave the record directory (absolute, ``..``, a
backslash, a NUL byte) before anything is opened; ``member_path`` then refuses one
that resolves outside it through a symlink. The seats are checked against the game
by the reader (``arena.recording``), which knows the games; this module does not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from agents.specs import PolicyRef
from arena.artifacts.base import ArtifactError, check_version, integer, is_number, kind

MANIFEST = "manifest.json"
EPISODE_KEYS = ("index", "file", "reset_seed", "length", "returns")
"""The keys every ``episodes`` entry has; ``outcome`` (seat -> str) is optional."""
OPTIONAL_EPISODE_KEYS = ("outcome",)
POLICY_REF_KEYS = ("spec", "kind", "path", "sha256", "files")
HEADER_KEYS = ("env", "env_kwargs", "seats", "policies", "attacks", "seed", "workers")
"""The manifest's own keys besides ``schema_version``, ``deterministic`` and ``episodes``;
any other key a writer added is kept, untouched, in ``RecordManifest.extra``."""


class RecordError(ArtifactError):
    """A record that is missing, corrupted, or written by an unknown schema version."""


def episode_filename(index: int) -> str:
    return f"episode_{index:05d}.npz"


def check_member_name(name: Any, what: str) -> str:
    """``name`` as a relative file name that stays inside its directory (no fs access)."""
    if not isinstance(name, str) or not name:
        raise RecordError(f"{what} must be a non-empty file name, got {kind(name)} {name!r}")
    if "\x00" in name:
        raise RecordError(f"{what} {name!r} contains a NUL byte")
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise RecordError(f"{what} {name!r} is an absolute path; records name files inside them")
    if ".." in pure.parts or "\\" in name:
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


def _finite(value: Any) -> bool:
    """``float(value)`` is a finite float (an int of 400 digits is not)."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError, TypeError):
        return False


def _short(value: Any) -> str:
    """``value`` as the error shows it: a huge int by its size, never its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_policy_ref(data: Any, where: str) -> PolicyRef:
    """A manifest's ``policies.SEAT``: the object ``PolicyRef.to_json`` writes, or the
    spec string alone (the first records)."""
    if isinstance(data, str):
        if not data:
            raise RecordError(f"{where} is an empty spec")
        return PolicyRef(spec=data, kind=data.partition(":")[0])
    if not isinstance(data, dict):
        raise RecordError(
            f"{where} must be a spec string or an object with "
            f"{', '.join(POLICY_REF_KEYS)}, got {kind(data)}"
        )
    for key in ("spec", "kind"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise RecordError(
                f"{where}.{key} must be a non-empty string, got {kind(data.get(key))}"
            )
    for key in ("path", "sha256"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
            raise RecordError(
                f"{where}.{key} must be null or a non-empty string, got {kind(value)} {value!r}"
            )
    if (data.get("path") is None) != (data.get("sha256") is None):
        raise RecordError(f"{where} has a path without a sha256 or vice versa")
    files = data.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise RecordError(f"{where}.files must be null or an object")
        for role, item in files.items():
            if (
                not isinstance(item, dict)
                or not all(isinstance(item.get(k), str) and item[k] for k in ("path", "sha256"))
                or "\x00" in item["path"]
            ):
                raise RecordError(
                    f"{where}.files.{role} must be an object with a path and a sha256 (strings)"
                )
        files = {role: {"path": i["path"], "sha256": i["sha256"]} for role, i in files.items()}
    return PolicyRef(data["spec"], data["kind"], data.get("path"), data.get("sha256"), files)


@dataclass(frozen=True)
class EpisodeEntry:
    """One episode as the manifest lists it: its file, seed, length, returns, outcome."""

    index: int
    file: str
    reset_seed: int
    length: int
    returns: dict[str, float]
    outcome: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "file": self.file,
            "reset_seed": self.reset_seed,
            "length": self.length,
            "returns": dict(self.returns),
        }
        if self.outcome is not None:
            out["outcome"] = dict(self.outcome)
        return out

    @classmethod
    def from_json(cls, data: Any, seats: list[str], at: str) -> EpisodeEntry:
        if not isinstance(data, dict):
            raise RecordError(
                f"{at} must be an object with {', '.join(EPISODE_KEYS)}, got {kind(data)} {data!r}"
            )
        missing = [k for k in EPISODE_KEYS if k not in data]
        if missing:
            raise RecordError(f"{at} lacks {missing[0]!r}; entries need {', '.join(EPISODE_KEYS)}")
        unknown = [k for k in data if k not in EPISODE_KEYS + OPTIONAL_EPISODE_KEYS]
        if unknown:
            raise RecordError(
                f"{at} has unknown key {unknown[0]!r}; valid: "
                f"{', '.join(EPISODE_KEYS + OPTIONAL_EPISODE_KEYS)}"
            )
        index, reset_seed, length = (
            integer(data, key, at, RecordError, low, name=f"{at}.{key}")
            for key, low in (("index", 0), ("reset_seed", 0), ("length", 1))
        )
        check_member_name(data["file"], f"{at}.file")
        returns = data["returns"]
        if not isinstance(returns, dict) or sorted(returns) != sorted(seats):
            got = sorted(returns) if isinstance(returns, dict) else kind(returns)
            raise RecordError(f"{at}.returns must give a number for each seat {seats}, got {got}")
        for seat, value in returns.items():
            if not is_number(value) or not _finite(value):
                raise RecordError(
                    f"{at}.returns.{seat} must be a number (a finite one), got {_short(value)}"
                )
        outcome = data.get("outcome")
        if outcome is not None:
            if not isinstance(outcome, dict) or sorted(outcome) != sorted(seats):
                raise RecordError(f"{at}.outcome must give a string for each seat {seats}")
            if not all(isinstance(v, str) for v in outcome.values()):
                raise RecordError(f"{at}.outcome values must be strings, got {outcome!r}")
        return cls(
            index,
            data["file"],
            reset_seed,
            length,
            {s: float(v) for s, v in returns.items()},
            dict(outcome) if outcome is not None else None,
        )


@dataclass(frozen=True)
class RecordManifest:
    """What a record holds and how it was played: enough to re-simulate every episode."""

    SCHEMA_VERSION: ClassVar[int] = 1

    env: str
    seats: tuple[str, ...]
    episodes: tuple[EpisodeEntry, ...] = ()
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policies: dict[str, PolicyRef] = field(default_factory=dict)
    attacks: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    """The match seed that episode seeds derive from; absent in hand-made records."""
    workers: int | None = None
    deterministic: bool | dict[str, bool] | None = True
    """One flag for every seat, or seat -> flag; None where the manifest does not say
    (a hand-made record): read as True, but replay cannot re-derive sampled actions."""
    extra: dict[str, Any] = field(default_factory=dict)

    def is_deterministic(self, seat: str) -> bool:
        det = self.deterministic
        if det is None:
            return True
        return det if isinstance(det, bool) else det.get(seat, True)

    def entry(self, index: int) -> EpisodeEntry:
        for e in self.episodes:
            if e.index == index:
                return e
        raise RecordError(
            f"episode index {index} is not in this record; it has "
            f"{', '.join(str(e.index) for e in self.episodes)}"
        )

    def with_episodes(self, episodes: tuple[EpisodeEntry, ...]) -> RecordManifest:
        return dataclasses.replace(self, episodes=episodes)

    def to_json(self) -> dict[str, Any]:
        det = self.deterministic
        out: dict[str, Any] = {
            **self.extra,
            "schema_version": self.SCHEMA_VERSION,
            "env": self.env,
            "env_kwargs": dict(self.env_kwargs),
            "seats": list(self.seats),
            "policies": {seat: ref.to_json() for seat, ref in self.policies.items()},
            "attacks": dict(self.attacks),
            "episodes": [e.to_json() for e in self.episodes],
        }
        if det is not None:
            out["deterministic"] = det if isinstance(det, bool) else dict(det)
        if self.seed is not None:
            out["seed"] = self.seed
        if self.workers is not None:
            out["workers"] = self.workers
        return out

    @classmethod
    def from_json(
        cls,
        data: Any,
        where: str = MANIFEST,
        check_game: Callable[[str, list[str]], None] | None = None,
    ) -> RecordManifest:
        """The manifest, every field checked; one-line ``RecordError`` otherwise.
        ``check_game(env, seats)`` (the reader's, who knows the games) runs as soon as
        both are read, so a wrong seat list is said as such, not as its consequences."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: the manifest must be a JSON object, got {kind(data)}")
        check_version(data, (cls.SCHEMA_VERSION,), where, RecordError)
        for key in ("env", "seats", "episodes"):
            if key not in data:
                raise RecordError(f"{where}: manifest lacks {key!r}")
        env = data["env"]
        if not isinstance(env, str) or not env:
            raise RecordError(f"{where}: 'env' must be an env id string, got {kind(env)}")
        seats = _seats(data["seats"], where)
        if check_game is not None:
            check_game(env, seats)
        env_kwargs = data.get("env_kwargs", {})
        if not isinstance(env_kwargs, dict):
            raise RecordError(f"{where}: 'env_kwargs' must be an object, got {kind(env_kwargs)}")
        seed = integer(data, "seed", where, RecordError) if "seed" in data else None
        workers = integer(data, "workers", where, RecordError, 1) if "workers" in data else None
        det = data.get("deterministic", True)
        if isinstance(det, dict):
            _seat_map(det, "deterministic", seats, where)
            if not all(isinstance(v, bool) for v in det.values()):
                raise RecordError(f"{where}: 'deterministic' values must be true or false")
        elif not isinstance(det, bool):
            raise RecordError(
                f"{where}: 'deterministic' must be true, false or an object seat -> bool, "
                f"got {det!r}"
            )
        policies = {
            seat: read_policy_ref(ref, f"{where}: policies.{seat}")
            for seat, ref in _seat_map(data.get("policies") or {}, "policies", seats, where).items()
        }
        attacks = _seat_map(data.get("attacks") or {}, "attacks", seats, where)
        for seat, spec in attacks.items():
            if not isinstance(spec, str) or not spec:
                raise RecordError(f"{where}: attacks.{seat} must be an attack spec string")
        return cls(
            env=env,
            seats=tuple(seats),
            episodes=_episodes(data["episodes"], seats, where),
            env_kwargs=dict(env_kwargs),
            policies=policies,
            attacks=dict(attacks),
            seed=seed,
            workers=workers,
            deterministic=(det if isinstance(det, bool) else dict(det))
            if "deterministic" in data
            else None,
            extra={
                k: v
                for k, v in data.items()
                if k not in (*HEADER_KEYS, "schema_version", "deterministic", "episodes")
            },
        )


def _seats(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RecordError(f"{where}: 'seats' must be a non-empty list of seat names")
    if not all(isinstance(s, str) and s for s in value):
        raise RecordError(f"{where}: 'seats' must hold seat names (strings), got {value!r}")
    if len(set(value)) != len(value):
        raise RecordError(f"{where}: 'seats' lists a seat twice: {value!r}")
    return value


def _seat_map(value: Any, name: str, seats: list[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"{where}: {name!r} must be an object (seat -> ...), got {kind(value)}")
    unknown = [s for s in value if s not in seats]
    if unknown:
        raise RecordError(
            f"{where}: {name!r} names unknown seat {unknown[0]!r}; seats: {', '.join(seats)}"
        )
    return value


def _episodes(value: Any, seats: list[str], where: str) -> tuple[EpisodeEntry, ...]:
    if not isinstance(value, list) or not value:
        raise RecordError(
            f"{where}: 'episodes' must be a non-empty list of episode objects, got {kind(value)}"
        )
    entries: list[EpisodeEntry] = []
    indices: dict[int, int] = {}
    files: dict[str, int] = {}
    for position, item in enumerate(value):
        entry = EpisodeEntry.from_json(item, seats, f"{where}: episodes[{position}]")
        if entry.index in indices:
            raise RecordError(
                f"{where}: episodes[{position}] repeats index {entry.index} "
                f"(of episodes[{indices[entry.index]}])"
            )
        indices[entry.index] = position
        name = str(PurePosixPath(entry.file))
        if name in files:
            raise RecordError(
                f"{where}: episodes[{position}].file {entry.file!r} is also "
                f"episodes[{files[name]}]'s"
            )
        files[name] = position
        entries.append(entry)
    return tuple(entries)
