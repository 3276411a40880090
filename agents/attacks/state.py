"""Attacks that need no action labels, for continuous-action (and any) victims: MAD, the
maximal action difference (Zhang et al. 2020, "Robust Deep Reinforcement Learning
against Adversarial Perturbations on State Observations"), and the critic attack,
which lowers the victim's own value estimate (Pattanaik et al. 2018; here through the
value head that zoo and SB3 files carry).

Both are PGD on a per-sample objective, from a random start in the ε-ball (the KL of
MAD has zero gradient at δ = 0), projected on the ball and the valid input range after
every step; gradients are taken on the input only (``torch.autograd.grad``): the
victim's parameters, their ``.grad`` and its mode are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import distributions as D

from agents.attacks import register_attack
from agents.attacks.base import AttackSpecError, CleanPassAttack, PerturbationBudget, clamp_input
from agents.attacks.gradient import ascent_direction, project, random_start
from agents.attacks.params import NORMS, budget_from, parse_step_size, parse_steps
from agents.policies import TorchPolicy, restarted

Objective = Callable[[TorchPolicy, torch.Tensor], torch.Tensor]
"""Per-sample quantity the attack increases, at the perturbed input."""


def _kl(clean: D.Distribution, adv: D.Distribution) -> torch.Tensor:
    """Per-sample KL(clean ‖ adv), summed over independent action dimensions."""
    kl = D.kl_divergence(clean, adv)
    return kl.flatten(1).sum(dim=1) if kl.dim() > 1 else kl


def ascend(
    victim: TorchPolicy,
    x: torch.Tensor,
    objective: Objective,
    *,
    eps: float,
    norm: str,
    steps: int,
    step_size: float | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD ascent of ``objective`` in the ε-ball around ``x``, from a random start;
    ``(x_adv, objective at x_adv)``, the best iterate per sample."""
    x = x.detach()
    alpha = (2.5 * eps / steps) if step_size is None else step_size
    x_adv = clamp_input(victim, x + random_start(x, eps, norm, generator))
    best, best_value = x_adv.clone(), torch.full((x.shape[0],), -torch.inf)
    for _ in range(steps + 1):
        xv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            value = objective(victim, xv)
            (grad,) = torch.autograd.grad(value.sum(), xv)
        with torch.no_grad():
            better = value.detach() > best_value
            best[better], best_value[better] = x_adv[better], value.detach()[better]
            step = x_adv + alpha * ascent_direction(grad, norm)
            x_adv = clamp_input(victim, x + project(step - x, eps, norm))
    return best.detach(), best_value


class _StateAttack(CleanPassAttack):
    def __init__(self, budget: PerturbationBudget, *, steps: int, step_size: float | None):
        if budget.norm not in NORMS:
            raise AttackSpecError(f"{self.name}: unknown norm {budget.norm!r}; valid: linf, l2")
        super().__init__(budget)
        self.steps, self.step_size = steps, step_size

    def objective(
        self, victim: TorchPolicy, x: torch.Tensor, state: Any, episode_start: Any
    ) -> tuple[Objective, D.Distribution | None]:
        raise NotImplementedError

    def _perturb_step(self, victim, x, state, episode_start):
        if self.budget.eps == 0.0:
            return x.clone(), torch.zeros(x.shape[0], dtype=torch.bool), None
        objective, clean = self.objective(victim, x, state, episode_start)
        x_adv, _ = ascend(
            victim,
            x,
            objective,
            eps=self.budget.eps,
            norm=self.budget.norm,
            steps=self.steps,
            step_size=self.step_size,
            generator=self.generator,
        )
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool), clean


class MAD(_StateAttack):
    """Maximal action difference: δ in the ε-ball that maximises KL(π(·|x) ‖ π(·|x+δ)),
    the victim's action distribution pushed as far as the budget allows (Zhang et al.
    2020). Any victim with an action distribution (Gaussian or categorical).

    Example::

        --attack runner=mad:eps=0.1,steps=10
    """

    name = "mad"

    def __init__(self, budget: PerturbationBudget, *, steps: int = 10, step_size=None):
        super().__init__(budget, steps=steps, step_size=step_size)

    def objective(self, victim, x, state, episode_start):
        with torch.no_grad():
            clean, _ = victim.forward(x, state, episode_start)

        def kl(v: TorchPolicy, xv: torch.Tensor) -> torch.Tensor:
            adv, _ = v.forward(xv, state, episode_start)
            return _kl(clean, adv)

        return kl, None


class Critic(_StateAttack):
    """The critic attack: δ in the ε-ball that minimises the victim's own value
    estimate V(x+δ), so the victim believes it is losing (needs a value head: zoo
    policies and SB3 actor-critics have one).

    Example::

        --attack runner=critic:eps=0.1,steps=10
    """

    name = "critic"

    def __init__(self, budget: PerturbationBudget, *, steps: int = 10, step_size=None):
        super().__init__(budget, steps=steps, step_size=step_size)

    def objective(self, victim, x, state, episode_start):
        state = restarted(state, episode_start)  # the value LSTM's, as the policy's restarts
        with torch.no_grad():
            if victim.value(x, state) is None:
                raise AttackSpecError(
                    f"the critic attack needs a victim with a value head; "
                    f"{type(victim).__name__} has none"
                )

        def minus_value(v: TorchPolicy, xv: torch.Tensor) -> torch.Tensor:
            value = v.value(xv, state)
            assert value is not None
            return -value.reshape(xv.shape[0], -1).sum(dim=1)

        return minus_value, None


def make_mad(eps: Any = 0.1, norm: Any = "linf", steps: Any = 10, step_size: Any = None) -> MAD:
    """``mad:eps=E,norm=linf|l2,steps=N,step_size=A``."""
    return MAD(
        budget_from(eps, norm), steps=parse_steps(steps), step_size=parse_step_size(step_size)
    )


def make_critic(
    eps: Any = 0.1, norm: Any = "linf", steps: Any = 10, step_size: Any = None
) -> Critic:
    """``critic:eps=E,norm=linf|l2,steps=N,step_size=A``."""
    return Critic(
        budget_from(eps, norm), steps=parse_steps(steps), step_size=parse_step_size(step_size)
    )


register_attack(
    "mad", make_mad, "maximal action difference (Zhang et al. 2020); eps, norm, steps, step_size"
)
register_attack(
    "critic", make_critic, "lowers the victim's own value estimate; eps, norm, steps, step_size"
)

__all__ = ["MAD", "Critic", "ascend"]
