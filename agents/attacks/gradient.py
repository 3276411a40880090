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
from gymnasium import spaces
from torch import distributions as D

from agents.attacks import register_attack
from agents.attacks.base import (
    AttackNotApplicable,
    AttackSpecError,
    CleanPassAttack,
    PerturbationBudget,
    clamp_input,
    detached,
    every_env,
)
from agents.attacks.params import (
    NORMS,
    budget_from,
    check_choice,
    check_flag,
    parse_round,
    parse_step_size,
    parse_steps,
    parse_target,
)
from agents.policies import TorchPolicy, distribution_mode

PRECISIONS = ("auto", "fp32")


def target_labels(
    victim: TorchPolicy, dist: D.Distribution, target: int | str | None
) -> torch.Tensor:
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


def objective(dist: D.Distribution, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample quantity the attack *increases*."""
    logp = dist.log_prob(labels)
    return logp if targeted else -logp


def objective_gradient(
    victim: TorchPolicy,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    target: int | str | None,
    state: Any = None,
    episode_start: Any = None,
    search: bool = False,
) -> tuple[torch.Tensor, D.Distribution | None, torch.Tensor]:
    """``(∇ₓ objective, distribution at x, labels)``, the objective summed over the batch
    and the distribution graph-free (``detached``); ``labels=None`` takes them from this
    pass (the clean greedy actions, or the target). ``search``: through the victim's
    ``search_forward`` (a direction only; possibly at lower precision)."""
    xv = x.detach().requires_grad_(True)
    with torch.enable_grad():
        run = victim.search_forward if search else victim.forward
        dist, _ = run(xv, state, episode_start)
        if labels is None:
            labels = target_labels(victim, dist, target)
        (grad,) = torch.autograd.grad(objective(dist, labels, target is not None).sum(), xv)
    return grad, detached(dist), labels


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
    precision: str = "auto",
) -> tuple[torch.Tensor, D.Distribution | None]:
    """PGD with ``steps`` steps (FGSM is ``steps=1, step_size=eps, rand_init=False``).

    Returns ``(x_adv, clean_dist)``: ``x_adv`` inside the ε-ball and the valid range;
    the clean distribution (graph-free) when it was computed on the way. ``precision``:
    ``auto`` takes the gradients of the steps that start away from the clean input
    through the victim's ``search_forward`` (bfloat16 for the Atari CNN where the CPU
    has it natively) when ε is at least the victim's ``search_resolution`` (smaller
    perturbations would vanish in the rounding); ``fp32`` takes every gradient through
    ``forward``. The step from the clean input, whose pass also gives the clean
    distribution, is always ``forward``.
    """
    x = x.detach()
    if eps == 0.0:
        return x.clone(), None
    alpha = (2.5 * eps / steps) if step_size is None else step_size
    clean_dist: D.Distribution | None = None
    if rand_init:
        with torch.no_grad():
            dist0, _ = victim.forward(x, state, episode_start)
        labels: torch.Tensor | None = target_labels(victim, dist0, target)
        clean_dist = detached(dist0)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x_adv = clamp_input(victim, x + random_start(x, eps, norm, gen))
    else:
        labels = None
        x_adv = x.clone()
    # L∞: the ε-ball ∩ valid range as per-element bounds, computed once. A single step
    # of size <= ε from x cannot leave the ball (FGSM): only the valid range applies.
    ball = norm == "linf" and (steps > 1 or rand_init or alpha > eps)
    if ball:
        lo, hi = clamp_input(victim, x - eps), clamp_input(victim, x + eps)
    # Lower precision only where it resolves the perturbation: the ball's width per
    # element (L2: its root-mean-square) at least the victim's search resolution.
    width = eps if norm == "linf" else eps / max(x[0].numel(), 1) ** 0.5
    searching = precision == "auto" and width >= victim.search_resolution
    for _ in range(steps):
        first = labels is None  # the first step from the clean input: the clean distribution
        search = searching and not first
        grad, dist, labels = objective_gradient(
            victim, x_adv, labels, target, state, episode_start, search=search
        )
        if first:
            clean_dist = dist
        with torch.no_grad():
            if ball:
                x_adv = torch.add(x_adv, grad.sign_(), alpha=alpha).clamp_(lo, hi)
            elif norm == "linf":
                x_adv = clamp_input(victim, torch.add(x_adv, grad.sign_(), alpha=alpha))
            else:
                delta = project(x_adv + alpha * ascent_direction(grad, norm) - x, eps, norm)
                x_adv = clamp_input(victim, x + delta)
    return x_adv.detach(), clean_dist


class GradientAttack(CleanPassAttack):
    """Base of FGSM and PGD: ``gradient_attack`` with the attack's settings; every
    environment of the batch is attacked."""

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        steps: int,
        step_size: float | None,
        random_start: bool,
        target: int | str | None,
        round_to_obs: bool,
        precision: str = "auto",
    ):
        if budget.norm not in NORMS:
            raise AttackSpecError(f"{self.name}: unknown norm {budget.norm!r}; valid: linf, l2")
        super().__init__(budget, round_to_obs=round_to_obs)
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.target = target
        self.precision = precision

    def run(
        self, victim: TorchPolicy, x: torch.Tensor, state: Any = None, episode_start: Any = None
    ) -> tuple[torch.Tensor, D.Distribution | None]:
        """``(x_adv, clean distribution or None)``, as ``gradient_attack`` returns them."""
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
            precision=self.precision,
        )

    def _perturb_step(self, victim, x, state, episode_start):
        x_adv, clean = self.run(victim, x, state, episode_start)
        return x_adv, every_env(x), clean


class FGSM(GradientAttack):
    """Fast gradient sign method: one step of size ε along the ascent direction.

    Paper: Goodfellow, Shlens, Szegedy 2015 (FGSM); Huang, Papernot, Goodfellow, Duan,
    Abbeel 2017, "Adversarial Attacks on Neural Network Policies" (on Atari policies).
    Norm: L∞ (``x + ε·sign(∇)``) or L2 (``x + ε·∇/‖∇‖₂``), ε on the victim's network
    input (pixels on [0, 1]: ``eps=1/255`` is one gray level), then clamped to the
    valid input range. Shapes: ``x`` is the batched network input ``(B, ...)``; the
    result has the same shape; every environment of the batch is attacked. For a
    Gaussian victim the untargeted gradient is zero at the clean input (the clean action
    is the mode), so FGSM moves nothing there: use PGD (random start) or MAD.

    Example::

        arena evaluate atari_pong_v0 --policy player=atari:pong_ppo.npz \\
            --attack player=fgsm:eps=1/255 --episodes 10
        FGSM(PerturbationBudget(1 / 255)).perturb(victim, x)   # -> (x_adv, mask)
    """

    name = "fgsm"

    def check_victim(self, victim: Any) -> TorchPolicy:
        """Refuse a victim with continuous actions, where FGSM would silently move
        nothing (its one step starts where the gradient is zero)."""
        tv = super().check_victim(victim)
        if not isinstance(tv.action_space, spaces.Discrete):
            raise AttackNotApplicable(
                "fgsm moves nothing on a victim with continuous actions: its gradient is "
                "zero at the clean input (the clean action is the Gaussian's mode); "
                "attacks that apply: pgd (random start), mad, critic, noise"
            )
        return tv

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        target: int | str | None = None,
        round_to_obs: bool = False,
    ):
        super().__init__(
            budget,
            steps=1,
            step_size=budget.eps,
            random_start=False,
            target=target,
            round_to_obs=round_to_obs,
        )


class PGD(GradientAttack):
    """Projected gradient descent: ``steps`` ascent steps of ``step_size``, each projected
    back onto the ε-ball and the valid range, from a random start in the ball.

    Paper: Madry, Makelov, Schmidt, Tsipras, Vladu 2018, "Towards Deep Learning Models
    Resistant to Adversarial Attacks". Norm: L∞ or L2, ε on the network input.
    ``step_size`` defaults to ``2.5·ε/steps``. With ``steps=1`` and
    ``random_start=false`` it is exactly FGSM. Shapes: ``(B, ...)`` -> ``(B, ...)``.
    ``precision=auto`` (default) finds the steps' directions through the victim's
    ``search_forward`` (bfloat16 for the Atari CNN on CPUs that have it natively: about
    0.6 of the time, for ε >= 1/256); ``precision=fp32`` through ``forward``. Either way
    the victim's clean and attacked decisions are computed in float32.

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
        precision: str = "auto",
    ):
        super().__init__(
            budget,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            target=target,
            round_to_obs=round_to_obs,
            precision=precision,
        )


def make_fgsm(
    eps: Any = 1 / 255, norm: Any = "linf", target: Any = None, round: Any = False
) -> FGSM:
    """``fgsm:eps=E,norm=linf|l2,target=K|worst,round=false``."""
    return FGSM(
        budget_from(eps, norm), target=parse_target(target), round_to_obs=parse_round(round)
    )


def make_pgd(
    eps: Any = 1 / 255,
    norm: Any = "linf",
    steps: Any = 10,
    step_size: Any = None,
    random_start: Any = True,
    target: Any = None,
    round: Any = False,
    precision: Any = "auto",
) -> PGD:
    """``pgd:eps=E,norm=linf|l2,steps=N,step_size=A,random_start=true,target=K|worst,
    precision=auto|fp32``."""
    return PGD(
        budget_from(eps, norm),
        steps=parse_steps(steps),
        step_size=parse_step_size(step_size),
        random_start=check_flag("random_start", random_start),
        target=parse_target(target),
        round_to_obs=parse_round(round),
        precision=check_choice("precision", precision, PRECISIONS),
    )


register_attack(
    "fgsm", make_fgsm, "fast gradient sign (Huang et al. 2017); eps, norm, target, round"
)
register_attack(
    "pgd",
    make_pgd,
    "projected gradient descent (Madry et al. 2018); eps, "
    "norm, steps, step_size, random_start, target, round, precision",
)

__all__ = [
    "FGSM",
    "PGD",
    "GradientAttack",
    "ascent_direction",
    "gradient_attack",
    "objective_gradient",
    "project",
    "random_start",
]
