"""Policy spec strings: ``random``, ``zero``, ``sb3:PATH`` and the kinds later modules add.

A spec names an artifact; ``resolve`` loads it for a seat's spaces and ``reference``
describes it for a run's manifest (the file's sha256, so a result always says which
weights produced it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gymnasium import spaces

from agents._registry import import_plugins
from agents.numbers import parse_number
from agents.policies import Policy, RandomPolicy, ZeroPolicy


class PolicySpecError(ValueError):
    """A malformed or unknown policy spec, or a file that cannot serve the seat."""


Loader = Callable[..., Policy]
"""``loader(arg, observation_space, action_space, **context) -> Policy``."""


@dataclass(frozen=True)
class PolicyKind:
    name: str
    loader: Loader
    takes_path: bool
    """True if the argument is a file or directory (hashed into the manifest)."""
    help: str
    takes_spec: bool = False
    """True if the argument is another policy spec (a wrapper such as ``masked:``)."""
    locate: Callable[[str], Path] | None = None
    """Maps the argument to its file (e.g. relative to a data directory); the default
    takes it as a path from the working directory."""
    files: Callable[[str], dict[str, Path]] | None = None
    """For a directory argument: the files actually loaded from it, by role (their
    sha256 go into the manifest beside the directory's)."""


_KINDS: dict[str, PolicyKind] = {}


def register_kind(
    name: str,
    loader: Loader,
    *,
    takes_path: bool,
    help: str,
    takes_spec: bool = False,
    locate: Callable[[str], Path] | None = None,
    files: Callable[[str], dict[str, Path]] | None = None,
    overwrite: bool = False,
) -> None:
    if name in _KINDS and not overwrite:
        raise PolicySpecError(f"policy kind {name!r} is already registered")
    _KINDS[name] = PolicyKind(name, loader, takes_path, help, takes_spec, locate, files)


def _locate(kind: PolicyKind, arg: str, spec: str) -> Path:
    if kind.locate is not None:
        try:
            return kind.locate(arg)
        except ValueError as exc:  # the kind's own error says where it looked
            raise PolicySpecError(str(exc)) from None
    path = Path(arg).expanduser()
    if not path.exists():
        raise PolicySpecError(f"policy file not found: {arg} (from {spec!r})")
    return path


def kinds() -> dict[str, PolicyKind]:
    _load_builtin_kinds()
    return dict(_KINDS)


def _valid_forms() -> str:
    return ", ".join(
        k.name + (":SPEC" if k.takes_spec else ":PATH" if k.takes_path else "")
        for k in sorted(kinds().values(), key=_order)
    )


def _order(kind: PolicyKind) -> tuple[bool, bool, str]:
    return (kind.takes_spec, kind.takes_path, kind.name)


def parse(spec: str) -> tuple[PolicyKind, str]:
    """Split ``kind:arg`` and check the kind exists and the argument is present."""
    if not isinstance(spec, str) or not spec.strip():
        raise PolicySpecError(f"empty policy spec; valid forms: {_valid_forms()}")
    name, sep, arg = spec.partition(":")
    table = kinds()
    if name not in table:
        raise PolicySpecError(
            f"unknown policy kind {name!r} in {spec!r}; valid forms: {_valid_forms()}"
        )
    kind = table[name]
    if kind.takes_spec:
        if not arg:
            raise PolicySpecError(f"policy spec {spec!r} needs a policy: {name}:SPEC")
        for _, inner in components(arg):
            parse(inner)
        return kind, arg
    if kind.takes_path and not arg:
        raise PolicySpecError(f"policy spec {spec!r} needs a path: {name}:PATH")
    if not kind.takes_path and sep:
        raise PolicySpecError(f"policy spec {spec!r}: {name!r} takes no argument")
    return kind, arg


MAX_WEIGHT = 1e6


def components(arg: str) -> list[tuple[float, str]]:
    """``"0.5*run:DIR|0.5*zero"`` -> ``[(0.5, "run:DIR"), (0.5, "zero")]`` (weight 1 if none).

    Weights are finite numbers in ``[0, MAX_WEIGHT]``, not all 0 (fractions allowed)."""
    out = []
    for part in arg.split("|"):
        weight, star, inner = part.partition("*")
        if star:
            try:
                value = parse_number(weight, "weight", low=0.0, high=MAX_WEIGHT)
            except ValueError as exc:
                raise PolicySpecError(f"{exc} (in {arg!r}; use W*SPEC|W*SPEC)") from None
            out.append((value, inner))
        else:
            out.append((1.0, part))
    if not any(w > 0 for w, _ in out):
        raise PolicySpecError(f"weights in {arg!r} are all 0; give at least one a weight > 0")
    return out


def resolve(
    spec: str, observation_space: spaces.Space, action_space: spaces.Space, **context: Any
) -> Policy:
    """Load the policy ``spec`` for a seat with these spaces."""
    kind, arg = parse(spec)
    if kind.takes_path and not kind.takes_spec:
        _locate(kind, arg, spec)
    return kind.loader(arg, observation_space, action_space, **context)


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PolicyRef:
    """What a manifest records of a policy: the spec, the resolved path and its sha256."""

    spec: str
    kind: str
    path: str | None = None
    sha256: str | None = None
    files: dict[str, dict[str, str]] | None = None
    """For a directory: each file actually loaded, ``{role: {"path", "sha256"}}``."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reference(spec: str) -> PolicyRef:
    kind, arg = parse(spec)
    if kind.takes_spec:
        inner = [reference(s) for _, s in components(arg)]
        paths = [r.path for r in inner if r.path]
        hashes = [r.sha256 for r in inner if r.sha256]
        return PolicyRef(
            spec=spec, kind=kind.name, path="|".join(paths) or None, sha256="|".join(hashes) or None
        )
    if not kind.takes_path:
        return PolicyRef(spec=spec, kind=kind.name)
    path = _locate(kind, arg, spec)
    loaded = None
    if kind.files is not None:
        loaded = {
            role: {"path": str(f.resolve()), "sha256": sha256_of(f)}
            for role, f in kind.files(arg).items()
        }
    return PolicyRef(
        spec=spec,
        kind=kind.name,
        path=str(path.resolve()),
        sha256=sha256_of(path),
        files=loaded,
    )


def fingerprint(spec: str) -> tuple[Any, ...]:
    """What a loaded policy depends on, cheaply: each file it reads with its size and
    modification time, so that a cache keyed by it never serves a changed file (a run
    still training has a new checkpoint). ``()`` where nothing is read, or where the
    spec does not load (the load itself says why)."""
    try:
        kind, arg = parse(spec)
        if kind.takes_spec:
            return tuple(fingerprint(s) for _, s in components(arg))
        if not kind.takes_path:
            return ()
        if kind.files is not None:
            files = list(kind.files(arg).values())
        else:
            files = [_locate(kind, arg, spec)]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except (PolicySpecError, OSError, ValueError):
        return ()


def _random(arg, observation_space, action_space, **context):
    return RandomPolicy(observation_space, action_space)


def _zero(arg, observation_space, action_space, **context):
    return ZeroPolicy(observation_space, action_space)


def _sb3(arg, observation_space, action_space, **context):
    from agents.sb3 import PolicyFileError, sb3_victim

    try:
        return sb3_victim(arg, observation_space, action_space)
    except PolicyFileError as exc:
        raise PolicySpecError(str(exc)) from None


_BUILTINS_DONE = False
# Modules that add policy kinds when imported (zoo:, atari:, run:, masked:).
_KIND_MODULES = ("agents.zoo", "agents.atari_cnn", "agents.atari_published", "agents.wrappers")
"""Where the other kinds register themselves; ``arena`` adds ``run:`` and ``masked:``
(``arena.players``), which need its files and games."""


def _load_builtin_kinds() -> None:
    global _BUILTINS_DONE
    if _BUILTINS_DONE:
        return
    _BUILTINS_DONE = True
    register_kind("random", _random, takes_path=False, help="uniformly random actions")
    register_kind("zero", _zero, takes_path=False, help="always the zero / NOOP action")
    register_kind("sb3", _sb3, takes_path=True, help="a Stable-Baselines3 .zip (PPO, A2C, DQN)")
    import_plugins(_KIND_MODULES)
