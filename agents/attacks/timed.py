"""The strategically-timed attack of Lin et al. 2017: strike only at the moments that
matter, judged by how strongly the victim prefers one action over another.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import distributions as D

from agents.attacks import register_attack
from agents.attacks.base import AttackSpecError, CleanPassAttack, PerturbationBudget, detached
from agents.attacks.gradient import FGSM, PGD, GradientAttack
from agents.attacks.params import (
    budget_from,
    check_choice,
    check_number,
    parse_round,
    parse_steps,
    parse_target,
)
from agents.policies import TorchPolicy


def preference(dist: D.Distribution) -> torch.Tensor:
    """Lin et al.'s ``c(s) = max_a π(a|s) − min_a π(a|s)`` per sample (categorical victims).

    For a DQN victim the distribution is ``softmax(Q)`` (SB3TorchPolicy), as in the paper.
    """
    if not isinstance(dist, D.Categorical):
        raise AttackSpecError("the timed attack needs a discrete (categorical) victim")
    p = dist.probs
    return p.max(dim=-1).values - p.min(dim=-1).values


class StrategicallyTimed(CleanPassAttack):
    """Attack a step only when the victim's preference ``c(s) ≥ β``; leave it clean otherwise.

    Paper: Lin, Hong, Liao, Shih, Liu, Sun 2017, "Tactics of Adversarial Attack on Deep
    Reinforcement Learning Agents" (the strategically-timed attack). On the chosen steps
    the perturbation is FGSM (``inner=fgsm``, default) or PGD (``inner=pgd``), untargeted
    or targeted (``target=worst`` pushes towards the clean least-preferred action, as in
    the paper's construction). Norm: L∞ or L2, ε on the network input. Shapes:
    ``(B, ...)``; the attacked mask (B,) reports which environments were perturbed, and
    the arena reports its mean as the attacked fraction.

    ``beta`` defaults to 0.9: on Pong with ../shared/atari/pong_ppo.npz that attacks
    about a quarter of the steps (the paper tunes β per game; lower β attacks more).

    Example::

        --attack player=timed:eps=1/255,beta=0.9
    """

    name = "timed"

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        beta: float = 0.9,
        inner: str = "fgsm",
        steps: int = 10,
        target: int | str | None = None,
        round_to_obs: bool = False,
    ):
        super().__init__(budget, round_to_obs=round_to_obs)
        self.beta = beta
        self.inner: GradientAttack = (
            FGSM(budget, target=target)
            if inner == "fgsm"
            else PGD(budget, steps=steps, target=target)
        )
        self.inner.generator = self.generator  # one random stream, re-seeded by ``reset``

    def reset(self, *, seed: int | None = None) -> None:
        super().reset(seed=seed)
        self.inner.generator = self.generator

    def _perturb_step(self, victim: TorchPolicy, x, state, episode_start):
        x = x.detach()
        with torch.no_grad():
            dist, _ = victim.forward(x, state, episode_start)
        mask = preference(dist) >= self.beta
        clean = detached(dist)
        if not bool(mask.any()):
            return x.clone(), mask, clean
        if state is None and not victim.recurrent:  # attack only the chosen environments
            sub = None if episode_start is None else episode_start[mask.numpy()]
            x_adv = x.clone()
            x_adv[mask] = self.inner.run(victim, x[mask], None, sub)[0]
        else:
            adv, _ = self.inner.run(victim, x, state, episode_start)
            x_adv = torch.where(mask.view((-1,) + (1,) * (x.dim() - 1)), adv, x)
        return x_adv, mask, clean


def make_timed(
    eps: Any = 1 / 255,
    beta: Any = 0.9,
    norm: Any = "linf",
    inner: Any = "fgsm",
    steps: Any = 10,
    target: Any = None,
    round: Any = False,
) -> StrategicallyTimed:
    """``timed:eps=E,beta=B,norm=linf|l2,inner=fgsm|pgd,steps=N,target=K|worst``."""
    return StrategicallyTimed(
        budget_from(eps, norm),
        beta=check_number("beta", beta, low=0.0, high=1.0),
        inner=check_choice("inner", inner, ("fgsm", "pgd")),
        steps=parse_steps(steps),
        target=parse_target(target),
        round_to_obs=parse_round(round),
    )


register_attack(
    "timed",
    make_timed,
    "strategically-timed attack (Lin et al. 2017); eps, beta, norm, inner, steps, target, round",
)

__all__ = ["StrategicallyTimed", "preference"]
