"""The learned perturbation adversary (PA-AD, Sun et al. 2022; in the line of ATLA,
Zhang et al. 2021): an RL *director* that decides where the victim should go wrong, and
a gradient *actor* that makes it go there within ε.

Each step the director (a PPO policy trained by ``arena train-perturber`` to minimise
the victim's return) looks at the victim's observation and outputs a direction
``a ∈ [-1, 1]^k``: for a Gaussian victim a target action (``a`` mapped onto the action
box), for a categorical victim its preferences over the actions (the target is their
argmax). The actor is PGD in the ε-ball (``agents.attacks.state.ascend``) on the
victim's own input: it pulls the victim's mean action towards the target (squared
distance in units of the action range) or raises the target action's log-probability.
Learning *which* wrong action hurts most is what the director adds to PGD and MAD, which
only push the victim away from what it would do.

As an attack spec: ``learned:DIR`` or ``learned:DIR,eps=...,steps=...`` (ε and steps
default to those the director was trained with).
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

from agents.attacks.base import AttackSpecError, CleanPassAttack, PerturbationBudget, detached
from agents.attacks.state import Objective, ascend
from agents.policies import Policy, TorchPolicy, distribution_mode


def director_space(action_space: spaces.Space) -> spaces.Box:
    """The director's actions for a victim with ``action_space``."""
    if isinstance(action_space, spaces.Box):
        k = int(np.prod(action_space.shape))
    elif isinstance(action_space, spaces.Discrete):
        k = int(action_space.n)
    else:
        raise AttackSpecError(
            f"the learned attack needs a Box or Discrete victim, not {type(action_space).__name__}"
        )
    return spaces.Box(-1.0, 1.0, (k,), dtype=np.float32)


def towards(victim: TorchPolicy, direction: torch.Tensor) -> Objective:
    """The actor's objective (per sample, to increase) for the director's ``direction``
    (one row per environment)."""
    space = victim.action_space
    if isinstance(space, spaces.Discrete):
        target = direction.argmax(dim=1)

        def log_prob(v: TorchPolicy, xv: torch.Tensor) -> torch.Tensor:
            dist, _ = v.forward(xv)
            return dist.log_prob(target)

        return log_prob
    assert isinstance(space, spaces.Box)
    low = torch.as_tensor(space.low, dtype=torch.float32).reshape(-1)
    high = torch.as_tensor(space.high, dtype=torch.float32).reshape(-1)
    low, high = (
        torch.where(torch.isfinite(low), low, -1.0),
        torch.where(torch.isfinite(high), high, 1.0),
    )
    span = (high - low).clamp_min(1e-6)
    target = low + (direction.clamp(-1, 1) + 1) / 2 * span

    def closeness(v: TorchPolicy, xv: torch.Tensor) -> torch.Tensor:
        dist, _ = v.forward(xv)
        mean = distribution_mode(dist).reshape(len(xv), -1)
        return -(((mean - target) / span) ** 2).sum(dim=1)

    return closeness


def perturb_towards(
    victim: TorchPolicy,
    x: torch.Tensor,
    direction: np.ndarray,
    *,
    budget: PerturbationBudget,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """The actor: ``x + δ`` (δ in the ε-ball, the input in its valid range) moving the
    victim towards the director's ``direction``."""
    if budget.eps == 0.0:
        return x.clone()
    d = torch.as_tensor(np.asarray(direction, dtype=np.float32)).reshape(len(x), -1)
    if victim.recurrent:  # the objective runs the victim from a fresh state per step
        raise AttackSpecError("the learned attack needs a feed-forward victim")
    x_adv, _ = ascend(
        victim,
        x,
        towards(victim, d),
        eps=budget.eps,
        norm=budget.norm,
        steps=steps,
        step_size=None,
        generator=generator,
    )
    return x_adv


class Learned(CleanPassAttack):
    """``learned:DIR``: the director of a ``train-perturber`` run, with PGD as its actor."""

    name = "learned"

    def __init__(
        self,
        budget: PerturbationBudget,
        director: Policy,
        *,
        steps: int,
        source: str,
        game: tuple[str, str] | None = None,
    ):
        super().__init__(budget)
        self.director, self.steps, self.source = director, steps, source
        self.game = game
        """The game and seat the director was trained on (``None``: any that fits)."""

    def check_game(self, env_id: str, seat: str) -> None:
        if self.game is not None and self.game != (env_id, seat):
            raise AttackSpecError(
                f"{self.source} was trained against {self.game[0]} seat {self.game[1]!r}; "
                f"it cannot attack {env_id} seat {seat!r}"
            )

    def check_victim(self, victim: Policy) -> TorchPolicy:
        tv = super().check_victim(victim)
        sees = getattr(self.director, "observation_space", None)
        does = getattr(self.director, "action_space", None)
        if getattr(tv.observation_space, "shape", None) != getattr(sees, "shape", None) or (
            director_space(tv.action_space) != does
        ):
            raise AttackSpecError(
                f"{self.source}: the director takes {sees} -> {does}; this victim has "
                f"{tv.observation_space} -> {tv.action_space}"
            )
        return tv

    def _perturb_step(self, victim, x, state, episode_start):
        with torch.no_grad():
            clean, _ = victim.forward(x, state, episode_start)
        obs = victim.obs_from_input(x)
        direction, _ = self.director.predict(obs, deterministic=True)
        x_adv = perturb_towards(
            victim, x, direction, budget=self.budget, steps=self.steps, generator=self.generator
        )
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool), _graph_free(clean)

    def describe(self, victim: Policy | None = None) -> str:
        return f"{super().describe(victim)}; director {self.source}"


def _graph_free(dist: D.Distribution) -> D.Distribution | None:
    return detached(dist)
