"""The strategically-timed attack of Lin et al. 2017: strike only at the moments that
matter, judged by how strongly the victim prefers one action over another.
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
    detached,
)
from agents.attacks.gradient import budget_from, gradient_attack, parse_target
from agents.policies import TorchPolicy


def preference(dist: D.Distribution) -> torch.Tensor:
    """Lin et al.'s ``c(s) = max_a π(a|s) − min_a π(a|s)`` per sample (categorical victims).

    For a DQN victim the distribution is ``softmax(Q)`` (SB3TorchPolicy), as in the paper.
    """
    if not isinstance(dist, D.Categorical):
        raise AttackSpecError("the timed attack needs a discrete (categorical) victim")
    p = dist.probs
    return p.max(dim=-1).values - p.min(dim=-1).values


class StrategicallyTimed(ObservationAttack):
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
        self.inner = inner
        self.steps = 1 if inner == "fgsm" else steps
        self.target = target

    def _run(self, victim: TorchPolicy, x, state, episode_start):
        x = x.detach()
        with torch.no_grad():
            dist, _ = victim.forward(x, state, episode_start)
        mask = preference(dist) >= self.beta
        clean = detached(dist)
        if not bool(mask.any()):
            return x.clone(), mask, clean
        eps = self.budget.eps
        step_size = eps if self.inner == "fgsm" else None
        if state is None and not victim.recurrent:  # attack only the chosen environments
            sub = None if episode_start is None else episode_start[mask.numpy()]
            adv, _ = gradient_attack(
                victim,
                x[mask],
                eps=eps,
                norm=self.budget.norm,
                steps=self.steps,
                step_size=step_size,
                rand_init=self.inner == "pgd",
                target=self.target,
                generator=self.generator,
                episode_start=sub,
            )
            x_adv = x.clone()
            x_adv[mask] = adv
        else:
            adv, _ = gradient_attack(
                victim,
                x,
                eps=eps,
                norm=self.budget.norm,
                steps=self.steps,
                step_size=step_size,
                rand_init=self.inner == "pgd",
                target=self.target,
                generator=self.generator,
                state=state,
                episode_start=episode_start,
            )
            x_adv = torch.where(mask.view((-1,) + (1,) * (x.dim() - 1)), adv, x)
        return x_adv, mask, clean

    def perturb(self, victim, x, state=None, episode_start=None):
        x_adv, mask, _ = self._run(victim, x, state, episode_start)
        return x_adv, mask

    def _perturb_step(self, victim, x, state, episode_start):
        return self._run(victim, x, state, episode_start)


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
        steps=check_int("steps", steps, low=1, high=MAX_STEPS),
        target=parse_target(target),
        round_to_obs=check_flag("round", round),
    )


def _register() -> None:
    from agents.attacks import register_attack

    register_attack(
        "timed",
        make_timed,
        "strategically-timed attack (Lin et al. 2017); eps, "
        "beta, norm, inner, steps, target, round",
    )


_register()

__all__ = ["StrategicallyTimed", "preference"]
