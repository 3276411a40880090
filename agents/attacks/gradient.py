"""Gradient attacks: FGSM (Goodfellow et al. 2015; on policies Huang et al. 2017) and PGD
(Madry et al. 2018), L∞ or L2, untargeted or targeted.

The loss is the victim's log-probability of an action: untargeted attacks push the
perturbed input *away* from the victim's clean (greedy) action — Huang et al.'s
cross-entropy against the one-hot of the clean argmax — targeted attacks push it
*towards* ``target`` (an action index, or ``worst``: the clean least-likely action).
Gradients are taken with ``torch.autograd.grad`` on the input only, so the victim's
parameters, their ``.grad`` and its train/eval mode are never touched.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import distributions as D

from agents.attacks.base import (
    MAX_STEPS,
    AttackSpecError,
    ObservationAttack,
    PerturbationBudget,
    check_choice,
    check_flag,
    check_int,
    check_number,
    clamp_input,
    detached,
)
from agents.policies import TorchPolicy, distribution_mode

NORMS = ("linf", "l2")
MAX_ACTIONS = 100_000
"""An upper bound on a ``target=K`` action index (the victim's own is checked later)."""


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


def _labels(victim: TorchPolicy, dist: D.Distribution, target: int | str | None) -> torch.Tensor:
    """The actions the loss is about: clean greedy actions, or the target."""
    with torch.no_grad():
        if target is None:
            return distribution_mode(dist)
        if not isinstance(dist, D.Categorical):
            raise AttackSpecError("targeted attacks need a discrete (categorical) victim")
        n = dist.logits.shape[-1]
        if target == "worst":
            return dist.logits.argmin(dim=-1)
        assert isinstance(target, int)
        if target >= n:
            raise AttackSpecError(f"target={target} is out of range; valid: 0 <= target < {n}")
        return torch.full(dist.logits.shape[:-1], target, dtype=torch.long)


def _objective(dist: D.Distribution, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample quantity the attack *increases*."""
    logp = dist.log_prob(labels)
    return logp if targeted else -logp


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (t.dim() - 1)
    return t.flatten(1).norm(dim=1).view(shape)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent unit step for the norm: ``sign(g)`` or ``g / ||g||₂`` per sample."""
    if norm == "linf":
        return grad.sign()
    return grad / _flat_norm(grad).clamp_min(1e-12)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project each sample's δ onto the ε-ball of the norm."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    factor = (eps / _flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor


def random_start(
    x: torch.Tensor, eps: float, norm: str, generator: torch.Generator
) -> torch.Tensor:
    """A uniform point of the ε-ball around ``x`` (L∞: per element; L2: in the ball)."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        return (2 * u - 1) * eps
    g = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    d = g[0].numel()
    r = torch.rand((x.shape[0],), generator=generator, dtype=x.dtype) ** (1.0 / d)
    return g / _flat_norm(g).clamp_min(1e-12) * (eps * r).view((-1,) + (1,) * (x.dim() - 1))


def gradient_attack(
    victim: TorchPolicy,
    x: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 1,
    step_size: float | None = None,
    rand_init: bool = False,
    target: int | str | None = None,
    generator: torch.Generator | None = None,
    state: Any = None,
    episode_start: Any = None,
) -> tuple[torch.Tensor, D.Distribution | None]:
    """PGD with ``steps`` steps (FGSM is ``steps=1, step_size=eps, rand_init=False``).

    Returns ``(x_adv, clean_dist)``: ``x_adv`` inside the ε-ball and the valid range;
    the clean distribution (graph-free) when it was computed on the way.
    """
    x = x.detach()
    if eps == 0.0:
        return x.clone(), None
    alpha = (2.5 * eps / steps) if step_size is None else step_size
    clean_dist: D.Distribution | None = None
    if rand_init:
        with torch.no_grad():
            dist0, _ = victim.forward(x, state, episode_start)
        labels = _labels(victim, dist0, target)
        clean_dist = detached(dist0)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x_adv = clamp_input(victim, x + random_start(x, eps, norm, gen))
    else:
        labels = None
        x_adv = x.clone()
    targeted = target is not None
    # L∞: the ε-ball ∩ valid range as per-element bounds, computed once. A single step
    # of size <= ε from x cannot leave the ball (FGSM): only the valid range applies.
    ball = norm == "linf" and (steps > 1 or rand_init or alpha > eps)
    if ball:
        lo, hi = clamp_input(victim, x - eps), clamp_input(victim, x + eps)
    for _ in range(steps):
        xv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            dist, _ = victim.forward(xv, state, episode_start)
            if labels is None:  # first step from the clean input: the clean distribution
                labels = _labels(victim, dist, target)
                clean_dist = detached(dist)
            objective = _objective(dist, labels, targeted).sum()
            (grad,) = torch.autograd.grad(objective, xv)
        with torch.no_grad():
            if ball:
                x_adv = torch.add(xv.detach(), grad.sign_(), alpha=alpha).clamp_(lo, hi)
            elif norm == "linf":
                x_adv = clamp_input(victim, torch.add(xv.detach(), grad.sign_(), alpha=alpha))
            else:
                delta = project(xv.detach() + alpha * ascent_direction(grad, norm) - x, eps, norm)
                x_adv = clamp_input(victim, x + delta)
    return x_adv.detach(), clean_dist


class FGSM(ObservationAttack):
    """Fast gradient sign method: one step of size ε along the ascent direction.

    Paper: Goodfellow, Shlens, Szegedy 2015 (FGSM); Huang, Papernot, Goodfellow, Duan,
    Abbeel 2017, "Adversarial Attacks on Neural Network Policies" (on Atari policies).
    Norm: L∞ (``x + ε·sign(∇)``) or L2 (``x + ε·∇/‖∇‖₂``), ε on the victim's network
    input (pixels on [0, 1]: ``eps=1/255`` is one grey level), then clamped to the
    valid input range. Shapes: ``x`` is the batched network input ``(B, ...)``; the
    result has the same shape; every environment of the batch is attacked.

    Example::

        arena evaluate atari_pong_v0 --policy player=atari:pong_ppo.npz \\
            --attack player=fgsm:eps=1/255 --episodes 10
        FGSM(PerturbationBudget(1 / 255)).perturb(victim, x)   # -> (x_adv, mask)
    """

    name = "fgsm"

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        target: int | str | None = None,
        round_to_obs: bool = False,
    ):
        if budget.norm not in NORMS:
            raise AttackSpecError(f"{self.name}: unknown norm {budget.norm!r}; valid: linf, l2")
        super().__init__(budget, round_to_obs=round_to_obs)
        self.target = target

    def _run(self, victim, x, state, episode_start):
        return gradient_attack(
            victim,
            x,
            eps=self.budget.eps,
            norm=self.budget.norm,
            steps=1,
            step_size=self.budget.eps,
            target=self.target,
            state=state,
            episode_start=episode_start,
        )

    def perturb(self, victim, x, state=None, episode_start=None):
        x_adv, _ = self._run(victim, x, state, episode_start)
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool)

    def _perturb_step(self, victim, x, state, episode_start):
        x_adv, clean = self._run(victim, x, state, episode_start)
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool), clean


class PGD(ObservationAttack):
    """Projected gradient descent: ``steps`` ascent steps of ``step_size``, each projected
    back onto the ε-ball and the valid range, from a random start in the ball.

    Paper: Madry, Makelov, Schmidt, Tsipras, Vladu 2018, "Towards Deep Learning Models
    Resistant to Adversarial Attacks". Norm: L∞ or L2, ε on the network input.
    ``step_size`` defaults to ``2.5·ε/steps``. With ``steps=1`` and
    ``random_start=false`` it is exactly FGSM. Shapes: ``(B, ...)`` -> ``(B, ...)``.

    Example::

        --attack player=pgd:eps=1/255,steps=10
        --attack player=pgd:eps=0.5,norm=l2,steps=20,target=0
    """

    name = "pgd"

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        target: int | str | None = None,
        round_to_obs: bool = False,
    ):
        if budget.norm not in NORMS:
            raise AttackSpecError(f"{self.name}: unknown norm {budget.norm!r}; valid: linf, l2")
        super().__init__(budget, round_to_obs=round_to_obs)
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.target = target

    def _run(self, victim, x, state, episode_start):
        return gradient_attack(
            victim,
            x,
            eps=self.budget.eps,
            norm=self.budget.norm,
            steps=self.steps,
            step_size=self.step_size,
            rand_init=self.random_start,
            target=self.target,
            generator=self.generator,
            state=state,
            episode_start=episode_start,
        )

    def perturb(self, victim, x, state=None, episode_start=None):
        x_adv, _ = self._run(victim, x, state, episode_start)
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool)

    def _perturb_step(self, victim, x, state, episode_start):
        x_adv, clean = self._run(victim, x, state, episode_start)
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool), clean


def budget_from(eps: Any, norm: Any, allowed: tuple[str, ...] = NORMS) -> PerturbationBudget:
    """Validate spec values and build the budget (ε on the network input)."""
    norm = check_choice("norm", norm, allowed)
    eps = check_number("eps", eps, low=0.0, high=1.0)
    return PerturbationBudget(eps=eps, norm=norm)


def make_fgsm(
    eps: Any = 1 / 255, norm: Any = "linf", target: Any = None, round: Any = False
) -> FGSM:
    """``fgsm:eps=E,norm=linf|l2,target=K|worst,round=false``."""
    return FGSM(
        budget_from(eps, norm), target=parse_target(target), round_to_obs=check_flag("round", round)
    )


def make_pgd(
    eps: Any = 1 / 255,
    norm: Any = "linf",
    steps: Any = 10,
    step_size: Any = None,
    random_start: Any = True,
    target: Any = None,
    round: Any = False,
) -> PGD:
    """``pgd:eps=E,norm=linf|l2,steps=N,step_size=A,random_start=true,target=K|worst``."""
    budget = budget_from(eps, norm)
    return PGD(
        budget,
        steps=check_int("steps", steps, low=1, high=MAX_STEPS),
        step_size=None if step_size is None else check_number("step_size", step_size, low=0.0),
        random_start=check_flag("random_start", random_start),
        target=parse_target(target),
        round_to_obs=check_flag("round", round),
    )


def _register() -> None:
    from agents.attacks import register_attack

    register_attack(
        "fgsm", make_fgsm, "fast gradient sign (Huang et al. 2017); eps, norm, target, round"
    )
    register_attack(
        "pgd",
        make_pgd,
        "projected gradient descent (Madry et al. 2018); eps, "
        "norm, steps, step_size, random_start, target, round",
    )


_register()

__all__ = ["FGSM", "PGD", "ascent_direction", "gradient_attack", "project", "random_start"]
