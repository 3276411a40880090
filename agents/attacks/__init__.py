"""Observation attacks: ``name:key=value,...`` specs build ``ObservationAttack`` objects.

Spec examples: ``fgsm:eps=1/255``, ``pgd:eps=2/255,steps=10,norm=l2``.
Fractions are accepted anywhere a number is (``eps=1/255``); every number goes through
``agents.numbers.parse_number`` (finite, in its range; the error names the range).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents._registry import import_plugins
from agents.attacks.base import (
    AttackSpecError,
    AttackStep,
    ObservationAttack,
    PerturbationBudget,
)

AttackFactory = Callable[..., ObservationAttack]
_ATTACKS: dict[str, tuple[AttackFactory, str]] = {}
# Modules that define attacks; each calls ``register_attack`` on import.
_ATTACK_MODULES = (
    "agents.attacks.gradient",
    "agents.attacks.noise",
    "agents.attacks.timed",
    "agents.attacks.patch",
    "agents.attacks.universal",
    "agents.attacks.state",
)
_LOADED = False


def register_attack(name: str, factory: AttackFactory, help: str = "") -> None:
    _ATTACKS[name] = (factory, help)


def available() -> dict[str, str]:
    _load()
    return {name: help for name, (_, help) in sorted(_ATTACKS.items())}


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import_plugins(_ATTACK_MODULES)


def _parse_value(text: str) -> Any:
    """``true``/``false`` (and yes/no, on/off) as booleans; anything else stays text,
    for the attack's factory to check (numbers through ``agents.numbers.parse_number``)."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    return text.strip()


def parse_attack(spec: str) -> ObservationAttack:
    """Build an attack from ``name[:key=value,...]``; errors list the valid choices."""
    _load()
    if not isinstance(spec, str):
        raise AttackSpecError(
            f"an attack spec is text (name:key=value,...), not {type(spec).__name__}"
        )
    name, _, rest = spec.partition(":")
    if name not in _ATTACKS:
        valid = ", ".join(sorted(_ATTACKS)) or "(none installed)"
        raise AttackSpecError(f"unknown attack {name!r}; valid attacks: {valid}")
    params: dict[str, Any] = {}
    factory, _ = _ATTACKS[name]
    positional = getattr(factory, "positional", None)
    for i, item in enumerate(filter(None, (p.strip() for p in rest.split(",")))):
        if positional and i == 0 and "=" not in item:  # e.g. learned:DIR
            params[positional] = item
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise AttackSpecError(f"attack parameter {item!r} is not key=value (in {spec!r})")
        if key.strip() in params:
            raise AttackSpecError(f"attack parameter {key.strip()!r} is given twice (in {spec!r})")
        params[key.strip()] = _parse_value(value)
    try:
        return factory(**params)
    except TypeError as exc:
        raise AttackSpecError(f"{name}: {_explain_type_error(exc, factory)}") from None
    except AttackSpecError as exc:  # say which attack a bad value belongs to
        if str(exc).startswith(name):
            raise
        raise AttackSpecError(f"{name}: {exc}") from None


def _explain_type_error(exc: TypeError, factory: AttackFactory) -> str:
    import inspect

    try:
        names = [
            p for p in inspect.signature(factory).parameters if p not in ("self", "args", "kwargs")
        ]
    except (TypeError, ValueError):
        names = []
    text = str(exc)
    if "unexpected keyword argument" in text:  # name the parameter, not the factory
        text = f"unknown parameter {text.rsplit(' ', 1)[-1]}"
    return f"{text}; valid parameters: {', '.join(names)}"


__all__ = [
    "AttackSpecError",
    "AttackStep",
    "ObservationAttack",
    "PerturbationBudget",
    "available",
    "parse_attack",
    "register_attack",
]
