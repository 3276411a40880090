"""The observation-attack contract.

An attack sits on the victim's observation channel. Each step it receives the
victim's clean network input ``x`` (see ``TorchPolicy.input_from_obs``) and returns
``x + δ`` with ``δ`` inside the budget and ``x + δ`` inside the valid input range.
The victim then acts on the perturbed input. Attacks never change the victim (its
parameters, gradients or train/eval mode). Also here: the small tensor helpers every
attack uses (``clamp_input``, ``detached``, ``every_env``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from agents.policies import Policy, TorchPolicy, distribution_mode

Norm = Literal["linf", "l2", "l0"]


class AttackSpecError(ValueError):
    """Unknown attack, unknown parameter or a budget out of range."""


class AttackNotApplicable(AttackSpecError):
    """An attack that does nothing on this victim (FGSM on continuous actions)."""


@dataclass(frozen=True)
class PerturbationBudget:
    """How large δ may be, with its units.

    ``eps`` is measured on the victim's network input: for pixel victims that is the
    [0, 1] pixel scale, so ``eps=1/255`` is one gray level. ``norm`` is ``linf``,
    ``l2`` or ``l0`` (for ``l0``, ``eps`` counts pixels: a patch of k×k has ``k*k``).
    """

    eps: float
    norm: Norm = "linf"
    units: str = "network input"

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2", "l0"):
            raise AttackSpecError(f"unknown norm {self.norm!r}; valid norms: linf, l2, l0")
        most = 1000.0 if self.norm == "l2" else 1.0
        if self.norm != "l0" and not 0.0 <= self.eps <= most:
            raise AttackSpecError(f"eps={self.eps} is out of range; valid: 0 <= eps <= {most:g}")
        if self.norm == "l0" and self.eps < 0:
            raise AttackSpecError(f"eps={self.eps} is out of range; valid: eps >= 0")

    def describe(self, std_units: bool = False) -> str:
        """E.g. ``ε=0.00392 (1.00/255) L∞ on the network input``; for a victim that
        normalises its state vector, ``ε=0.1 L∞ in standard deviations of each
        observation dimension (as the victim normalises it)``."""
        if self.norm == "l0":
            return f"ε={self.eps:g} pixels L0"
        norm = {"linf": "L∞", "l2": "L2"}[self.norm]
        if std_units:
            return (
                f"ε={self.eps:.5g} {norm} in standard deviations of each observation "
                f"dimension (as the victim normalises it)"
            )
        levels = self.eps * 255.0
        return f"ε={self.eps:.5g} ({levels:.3g}/255) {norm} on the {self.units}"


@dataclass
class AttackStep:
    """What one attacked step produced, batched over environments."""

    actions: np.ndarray
    """The victim's actions on the perturbed input (what the env receives)."""
    clean_actions: np.ndarray
    """The victim's actions on the clean input (for the action-flip rate)."""
    delta: np.ndarray
    """δ on the network-input scale, float32, same shape as the batch input."""
    attacked: np.ndarray
    """bool per environment: was δ applied at this step (timed attacks skip steps)."""
    state: Any = None
    """The victim's next recurrent state (``None`` for feed-forward victims)."""
    flipped: np.ndarray | None = None
    """bool per environment: the attack changed the victim's decision: its most likely
    action (discrete), or its mean action by more than its own action noise σ in some
    dimension (Gaussian; 10% of the action range where it has no σ). Sampling noise is
    no flip: both sides are the victim's greedy choice."""


class ObservationAttack(ABC):
    """Base class: subclasses implement ``perturb`` (batch input -> perturbed input)."""

    name: str = "attack"
    needs_gradient: bool = True
    """False for black-box attacks that never differentiate the victim."""

    def __init__(self, budget: PerturbationBudget, *, round_to_obs: bool = False):
        self.budget = budget
        self.round_to_obs = round_to_obs
        self.generator = torch.Generator().manual_seed(0)

    def describe(self, victim: Policy | None = None) -> str:
        """The budget with its unit and whether frames are rounded, e.g.
        ``ε=0.001 (0.255/255) L∞ on the network input; float input, not rounded``; for a
        ``victim`` that normalises its observation, ε in its standard deviations."""
        std_units = isinstance(victim, TorchPolicy) and victim.input_scale() is not None
        text = self.budget.describe(std_units)
        if std_units:
            return text
        if self.budget.norm == "l0":
            return text + ("; rounded to valid pixels" if self.round_to_obs else "")
        if self.round_to_obs:
            return text + "; perturbed frame rounded to valid pixels"
        return text + "; float input, not rounded"

    def reset(self, *, seed: int | None = None) -> None:
        """Re-seed the attack's own randomness (random starts, noise)."""
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    def check_game(self, env_id: str, seat: str) -> None:
        """Refuse a game and seat the attack was not made for (``learned:DIR``: its
        director's own); any here."""
        return None

    def check_victim(self, victim: Policy) -> TorchPolicy:
        if not isinstance(victim, TorchPolicy):
            need = (
                "a differentiable victim"
                if self.needs_gradient
                else "a victim whose network input defines ε's scale"
            )
            raise AttackSpecError(
                f"the {self.name} attack needs {need} (a TorchPolicy: "
                f"sb3:, atari:, zoo:, run:), not {type(victim).__name__}"
            )
        return victim

    @abstractmethod
    def perturb(
        self, victim: TorchPolicy, x: torch.Tensor, state: Any = None, episode_start=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x_adv, attacked)``: the perturbed batch and a bool mask per env."""

    def _perturb_step(
        self, victim: TorchPolicy, x: torch.Tensor, state: Any, episode_start: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.distributions.Distribution | None]:
        """``perturb`` plus, when the attack computed it anyway, the clean distribution
        (``CleanPassAttack``), saving ``step`` a forward pass; ``None`` here."""
        x_adv, attacked = self.perturb(victim, x, state, episode_start)
        return x_adv, attacked, None

    def step(
        self,
        victim: Policy,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> AttackStep:
        """Attack one batched step and let the victim act on the result. A victim that
        normalises its observation is attacked in units of its standard deviation
        (``InStdUnits``); ``delta`` is always on the victim's own input."""
        tv = self.check_victim(victim)
        scale = tv.input_scale()
        if scale is not None:
            tv = InStdUnits(tv, scale)
        x = tv.input_from_obs(observation)
        x_adv, attacked, clean_dist = self._perturb_step(tv, x, state, episode_start)
        x_adv = x_adv.detach()
        if self.round_to_obs:
            x_adv = tv.input_from_obs(tv.obs_from_input(x_adv))
        with torch.no_grad():
            if clean_dist is None or tv.recurrent:
                clean_dist, clean_state = tv.forward(x, state, episode_start)
            else:
                clean_state = None
            clean = tv.sample(clean_dist, True)
            if bool(attacked.any()) or tv.recurrent:
                adv_dist, new_state = tv.forward(x_adv, state, episode_start)
            else:  # nothing perturbed this step: the clean pass is the victim's pass
                adv_dist, new_state = clean_dist, clean_state
            adv = tv.sample(adv_dist, deterministic)
        return AttackStep(
            flipped=decision_changed(clean_dist, adv_dist, tv).numpy(),
            actions=tv.to_actions(adv),
            clean_actions=tv.to_actions(clean),
            delta=((x_adv - x) * (scale if scale is not None else 1.0))
            .numpy()
            .astype(np.float32, copy=False),
            attacked=attacked.numpy().astype(bool),
            state=new_state,
        )


class InStdUnits(TorchPolicy):
    """``inner`` seen on the input ``u = x / scale``: one unit of ``u`` is one standard
    deviation of the observation as the victim normalises it, so every attack's ε is
    in those units (the SA-PPO convention) without knowing it."""

    def __init__(self, inner: TorchPolicy, scale: torch.Tensor):
        self.inner, self.scale = inner, scale.detach().to(torch.float32)
        self.observation_space, self.action_space = inner.observation_space, inner.action_space
        self.recurrent = inner.recurrent
        self.input_low = self._scaled(inner.input_low)
        self.input_high = self._scaled(inner.input_high)

    def _scaled(self, bound: float | torch.Tensor) -> float | torch.Tensor:
        if isinstance(bound, torch.Tensor):
            return bound / self.scale
        return bound if np.isinf(bound) else torch.full_like(self.scale, bound) / self.scale

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        return self.inner.input_from_obs(observation) / self.scale

    def obs_from_input(self, x: torch.Tensor) -> np.ndarray:
        return self.inner.obs_from_input(x * self.scale)

    def forward(self, x, state=None, episode_start=None):
        return self.inner.forward(x * self.scale, state, episode_start)

    def value(self, x, state=None):
        return self.inner.value(x * self.scale, state)

    def interval_steps(self):
        from agents.certify import Normalize

        steps = self.inner.interval_steps()
        return (
            None
            if steps is None
            else [Normalize(torch.zeros_like(self.scale), 1 / self.scale), *steps]
        )

    def sample(self, dist, deterministic):
        return self.inner.sample(dist, deterministic)

    def to_actions(self, actions):
        return self.inner.to_actions(actions)


class CleanPassAttack(ObservationAttack):
    """An attack that runs the victim on the clean input anyway (gradient attacks, the
    timed attack, the patch): it implements ``_perturb_step``, which hands that clean
    distribution to ``step``, and ``perturb`` is derived from it."""

    @abstractmethod
    def _perturb_step(
        self, victim: TorchPolicy, x: torch.Tensor, state: Any, episode_start: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.distributions.Distribution | None]: ...

    def perturb(self, victim, x, state=None, episode_start=None):
        x_adv, attacked, _ = self._perturb_step(victim, x, state, episode_start)
        return x_adv, attacked


# ---------------------------------------------------------------- helpers for attacks


def decision_changed(
    clean: torch.distributions.Distribution,
    adv: torch.distributions.Distribution,
    victim: TorchPolicy,
) -> torch.Tensor:
    """bool per sample: ``AttackStep.flipped``."""
    with torch.no_grad():
        a, b = distribution_mode(clean), distribution_mode(adv)
        if isinstance(clean, torch.distributions.Categorical):
            return a != b
        base = clean.base_dist if isinstance(clean, torch.distributions.Independent) else clean
        if isinstance(base, torch.distributions.Normal):
            tolerance = base.stddev
        else:
            low = np.asarray(getattr(victim.action_space, "low", -1.0))
            high = np.asarray(getattr(victim.action_space, "high", 1.0))
            span = torch.as_tensor(high - low, dtype=a.dtype)
            tolerance = 0.1 * span
        moved = (b - a).abs() > tolerance
        return moved.reshape(moved.shape[0], -1).any(dim=1)


def every_env(x: torch.Tensor) -> torch.Tensor:
    """The attacked mask of an attack that perturbs every environment of the batch."""
    return torch.ones(x.shape[0], dtype=torch.bool)


def detached(dist: torch.distributions.Distribution) -> torch.distributions.Distribution | None:
    """A graph-free copy of a categorical distribution (``None`` for other kinds)."""
    if isinstance(dist, torch.distributions.Categorical):
        return torch.distributions.Categorical(logits=dist.logits.detach())
    return None


def clamp_input(victim: TorchPolicy, x: torch.Tensor) -> torch.Tensor:
    """``x`` clamped to the victim's valid input range (scalar or per-element bounds)."""
    low, high = victim.input_low, victim.input_high
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        lo = torch.as_tensor(low, dtype=x.dtype).expand_as(x)
        hi = torch.as_tensor(high, dtype=x.dtype).expand_as(x)
        return torch.maximum(torch.minimum(x, hi), lo)
    if np.isinf(low) and np.isinf(high):
        return x
    return x.clamp(None if np.isinf(low) else float(low), None if np.isinf(high) else float(high))
