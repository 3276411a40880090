"""An attack spec's parameters (text or numbers) checked into typed values.

Numbers go through ``agents.numbers.parse_number`` (finite, in range); every refusal
is an ``AttackSpecError`` that names the valid values. The parameters several attacks
share (``eps`` and ``norm``, ``steps``, ``step_size``, ``target``, ``round``) are
checked here once.
"""

from __future__ import annotations

from typing import Any

from agents.attacks.base import AttackSpecError, PerturbationBudget
from agents.numbers import parse_number

NORMS = ("linf", "l2")
MAX_L2 = 1000.0
"""The largest L2 radius (an 84×84×4 frame changed by 1.0 everywhere is ~168)."""
MAX_STEPS = 1000
"""The most optimization steps one attack may take per victim step."""
MAX_ACTIONS = 100_000
"""An upper bound on a ``target=K`` action index (the victim's own is checked later)."""


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None
) -> float:
    """A finite float in ``[low, high]``."""
    return parse_number(value, name, low=low, high=high, error=AttackSpecError)


def check_int(name: str, value: Any, *, low: int = 1, high: int | None = None) -> int:
    """An integer in ``[low, high]``."""
    return parse_number(value, name, low=low, high=high, integer=True, error=AttackSpecError)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AttackSpecError(f"{name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise AttackSpecError(f"unknown {name} {value!r:.60}; valid: {', '.join(choices)}")
    return value.lower()


def budget_from(eps: Any, norm: Any, allowed: tuple[str, ...] = NORMS) -> PerturbationBudget:
    """``eps`` and ``norm`` as the budget (ε on the network input; an L2 radius may reach
    ``MAX_L2``: a whole frame's worth of small changes)."""
    norm = check_choice("norm", norm, allowed)
    eps = check_number("eps", eps, low=0.0, high=MAX_L2 if norm == "l2" else 1.0)
    return PerturbationBudget(eps=eps, norm=norm)


def parse_steps(value: Any) -> int:
    """``steps``: optimization steps per victim step, ``1..MAX_STEPS``."""
    return check_int("steps", value, low=1, high=MAX_STEPS)


def parse_step_size(value: Any) -> float | None:
    """``step_size``: ``None`` (the attack's default) or a number ``>= 0``."""
    return None if value is None else check_number("step_size", value, low=0.0)


def parse_round(value: Any) -> bool:
    """``round``: round the perturbed frame to valid pixels (true/false)."""
    return check_flag("round", value)


def parse_target(target: Any) -> int | str | None:
    """``None`` (untargeted), an action index, or ``"worst"``."""
    if target is None:
        return None
    if isinstance(target, str):
        if target.lower() in ("none", ""):
            return None
        if target.lower() == "worst":
            return "worst"
        try:
            float(target)
        except ValueError:
            raise AttackSpecError(
                f"target must be an action index or 'worst', got {target!r}"
            ) from None
    return check_int("target", target, low=0, high=MAX_ACTIONS)
