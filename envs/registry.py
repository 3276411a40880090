"""The registry of games: ``make(id, **kwargs)``, ``register``, ``spec``, ``list_ids``.

Every game is a PettingZoo ``ParallelEnv``. Ids are versioned (``toy_pass_v0``): bump
the version whenever dynamics, rewards or observations change, so that records made
with an old version are never replayed against new physics.

Families of games whose members are not known up front (``atari_<game>_v0`` for
every ROM that ale-py ships) register a *family*: a prefix/suffix pattern, a lister
and a factory.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class EnvError(ValueError):
    """Bad input about environments: unknown id, unknown seat, bad keyword."""


@dataclass(frozen=True)
class EnvSpec:
    """Declared properties of a game (data, never inferred from names)."""

    id: str
    """Versioned id, ``<name>_v<N>``."""
    entry_point: Callable[..., Any]
    """Factory returning a fresh ``ParallelEnv``; called with the kwargs of ``make``."""
    seats: tuple[str, ...]
    """The agents' names, in ``possible_agents`` order."""
    needs: tuple[str, ...] = ()
    """Optional capabilities the game needs: ``"mujoco"``, ``"atari"``."""
    nondeterministic: bool = False
    """True if the same seed and actions may give different observations."""
    max_episode_steps: int | None = None
    """Truncation limit built into the game, if any."""
    default_policies: Mapping[str, str] = field(default_factory=dict)
    """Policy spec string used for a seat the user leaves empty (e.g. ``"zero"``)."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Default keyword arguments passed to ``entry_point``."""
    opponent_obs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Per seat, the (flattened) observation entries that describe the opponent;
    a masked victim sees them frozen at their initial values."""
    opponent_relative: Mapping[str, tuple[tuple[int, tuple[tuple[int, float], ...]], ...]] = field(
        default_factory=dict
    )
    """Per seat, the entries giving the opponent's position relative to the seat's own
    (opponent minus own), each with the ``(entry, weight)`` pairs whose sum is the
    seat's own coordinate up to a constant: a masked victim sees the opponent's frozen
    position relative to where it is now (``agents.wrappers.OpponentMask``)."""
    description: str = ""

    def __post_init__(self) -> None:
        if "_v" not in self.id or not self.id.rsplit("_v", 1)[1].isdigit():
            raise EnvError(f"env id {self.id!r} is not versioned like 'name_v0'")
        unknown = set(self.default_policies) - set(self.seats)
        if unknown:
            raise EnvError(f"{self.id}: default policies for unknown seats {sorted(unknown)}")

    def check_seat(self, seat: str) -> None:
        if seat not in self.seats:
            raise EnvError(
                f"unknown seat {seat!r} for {self.id}; valid seats: {', '.join(self.seats)}"
            )


@dataclass(frozen=True)
class EnvFamily:
    """Many ids made by one factory: ``prefix + name + suffix``."""

    prefix: str
    suffix: str
    names: Callable[[], Iterable[str]]
    """Lists the member names (e.g. every ROM ale-py ships)."""
    make_spec: Callable[[str], EnvSpec]
    """Builds the spec of one member from its name."""

    def match(self, env_id: str) -> str | None:
        if env_id.startswith(self.prefix) and env_id.endswith(self.suffix):
            name = env_id[len(self.prefix) : len(env_id) - len(self.suffix)]
            return name or None
        return None


_SPECS: dict[str, EnvSpec] = {}
_FAMILIES: list[EnvFamily] = []
_BUILTINS_LOADED = False
# Modules that register games when imported. Optional ones (needing mujoco or ale-py)
# register cheaply: their heavy imports happen only inside the env factory.
_BUILTIN_MODULES = ("envs.toy", "envs.atari", "envs.competition")


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith(module):
                continue  # that package is not part of this build
            raise


def register(spec: EnvSpec, *, overwrite: bool = False) -> EnvSpec:
    """Add a game to the registry. Re-registering an id needs ``overwrite=True``."""
    if spec.id in _SPECS and not overwrite:
        raise EnvError(f"env id {spec.id!r} is already registered")
    _SPECS[spec.id] = spec
    return spec


def register_family(family: EnvFamily) -> None:
    _FAMILIES.append(family)


def spec(env_id: str) -> EnvSpec:
    """The spec of ``env_id``; an unknown id raises ``EnvError`` listing the valid ones."""
    _load_builtins()
    if env_id in _SPECS:
        return _SPECS[env_id]
    for family in _FAMILIES:
        name = family.match(env_id)
        if name is not None and name in set(family.names()):
            return register(family.make_spec(name))
    valid = list_ids()
    close = difflib.get_close_matches(env_id, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise EnvError(f"unknown env id {env_id!r}{hint}; valid ids: {_summarise(valid)}")


def _summarise(ids: list[str], limit: int = 12) -> str:
    fixed = [i for i in ids if not any(f.match(i) for f in _FAMILIES)]
    families = [f"{f.prefix}<game>{f.suffix}" for f in _FAMILIES]
    shown = fixed + families
    if len(shown) > limit:
        shown = [*shown[:limit], f"... ({len(ids)} in all: `arena envs`)"]
    return ", ".join(shown)


def list_ids(*, families: bool = True) -> list[str]:
    """All registered ids, sorted; with ``families`` every member of every family."""
    _load_builtins()
    ids = set(_SPECS)
    if families:
        for family in _FAMILIES:
            ids.update(f"{family.prefix}{n}{family.suffix}" for n in family.names())
    return sorted(ids)


def list_specs() -> list[EnvSpec]:
    return [spec(i) for i in list_ids()]


def make(env_id: str, **kwargs: Any) -> Any:
    """Build a fresh game. Keyword arguments override the spec's defaults."""
    s = spec(env_id)
    merged = {**s.kwargs, **kwargs}
    try:
        return s.entry_point(**merged)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise EnvError(f"{env_id}: {exc}") from None
        raise
