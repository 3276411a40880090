"""The random-noise control: δ of the same size as the attack's, in a random direction.

Huang et al. 2017 compare their attacks with random noise of the same norm; the gap
shows that it is the *direction* of an adversarial δ, not its size, that hurts.
"""

from __future__ import annotations

from typing import Any

import torch

from agents.attacks import register_attack
from agents.attacks.base import ObservationAttack, PerturbationBudget, clamp_input, every_env
from agents.attacks.params import budget_from, parse_round


class RandomNoise(ObservationAttack):
    """Uniform random sign noise: every element ``±ε`` (L∞), or a random sign vector scaled
    to L2 norm ε (``±ε/√d`` per element), drawn fresh each step from the attack's seeded
    generator; then clamped to the valid input range (so at the range's edges |δ| can be
    smaller). Never differentiates the victim (``needs_gradient = False``).

    Paper: the random-noise baseline of Huang et al. 2017, "Adversarial Attacks on Neural
    Network Policies". Norm: L∞ or L2, ε on the network input. Shapes: ``(B, ...)``.

    Example::

        --attack player=noise:eps=1/255          # the control for fgsm:eps=1/255
    """

    name = "noise"
    needs_gradient = False

    def perturb(self, victim, x, state=None, episode_start=None):
        x = x.detach()
        eps = self.budget.eps
        sign = torch.randint(0, 2, x.shape, generator=self.generator).to(x.dtype) * 2 - 1
        if self.budget.norm == "l2":
            eps = eps / float(x[0].numel()) ** 0.5
        x_adv = clamp_input(victim, x + eps * sign)
        return x_adv, every_env(x)


def make_noise(eps: Any = 1 / 255, norm: Any = "linf", round: Any = False) -> RandomNoise:
    """``noise:eps=E,norm=linf|l2,round=false``."""
    budget: PerturbationBudget = budget_from(eps, norm)
    return RandomNoise(budget, round_to_obs=parse_round(round))


register_attack(
    "noise",
    make_noise,
    "random ±ε sign noise, the control (Huang et al. 2017); eps, norm, round",
)

__all__ = ["RandomNoise"]
