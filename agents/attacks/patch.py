"""The adversarial patch ("sticker"): an L0 attack that changes only a k×k square.

Physical attacks (Eykholt et al. 2018, stickers on a stop sign; Brown et al. 2017,
"Adversarial Patch") change few pixels by any amount, instead of every pixel by a
little. Here the square covers the same ``k×k`` pixels in every channel of the input
(for a stack of 4 frames: a sticker that stays on the screen).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.attacks import register_attack
from agents.attacks.base import (
    AttackSpecError,
    CleanPassAttack,
    PerturbationBudget,
    clamp_input,
    every_env,
)
from agents.attacks.gradient import objective_gradient
from agents.attacks.params import check_int, check_number, parse_round, parse_steps, parse_target
from agents.policies import Policy, TorchPolicy

MAX_FRAME = 10_000
"""An upper bound on a patch's size and corner (the frame's own is checked later)."""


class Patch(CleanPassAttack):
    """Optimize the content of a ``size×size`` square, by signed gradient ascent, anywhere in
    the valid input range (no ε-bound on the amount: the budget is the L0 count k·k).

    Paper: Brown, Mané, Roy, Abadi, Gilmer 2017, "Adversarial Patch"; Eykholt et al. 2018,
    "Robust Physical-World Attacks on Deep Learning Visual Classification". Norm: L0
    (``PerturbationBudget(eps=k*k, norm="l0")``, in pixels of one frame; every channel
    of those pixels may change). Shapes: ``x`` is ``(B, C, H, W)``; the same square is
    used for every channel of a sample.

    Location: fixed with ``row=R,col=C`` (top-left corner), or searched (default): the
    square with the largest input-gradient saliency ``Σ|∇|`` of the clean input, per
    sample and per step. ``steps`` ascent steps of ``step_size`` (on the [0, 1] pixel
    scale); untargeted (away from the clean action) or ``target=K|worst``.

    Example::

        --attack player=patch:size=8,steps=10          # an 8×8 sticker, placed by saliency
        --attack player=patch:size=6,row=0,col=0       # fixed in the top-left corner
    """

    name = "patch"

    def __init__(
        self,
        size: int,
        *,
        row: int | None = None,
        col: int | None = None,
        steps: int = 10,
        step_size: float = 0.25,
        target: int | str | None = None,
        round_to_obs: bool = False,
    ):
        super().__init__(
            PerturbationBudget(eps=float(size * size), norm="l0", units="pixels of one frame"),
            round_to_obs=round_to_obs,
        )
        if (row is None) != (col is None):
            raise AttackSpecError("patch: give both row and col for a fixed location, or neither")
        self.size, self.row, self.col = size, row, col
        self.steps, self.step_size, self.target = steps, step_size, target

    def check_victim(self, victim: Policy) -> TorchPolicy:
        tv = super().check_victim(victim)
        space = tv.observation_space
        shape = tuple(getattr(space, "shape", None) or ())
        x = tv.input_from_obs(np.zeros((1, *shape), dtype=space.dtype))
        self._check_frame(tuple(x.shape))
        return tv

    def _check_frame(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 4:
            raise AttackSpecError(f"patch needs image input (B, C, H, W), got shape {shape}")
        h, w = shape[-2:]
        if self.size > min(h, w):
            raise AttackSpecError(
                f"patch size {self.size} is larger than the {h}×{w} frame; "
                f"valid: 1 <= size <= {min(h, w)}"
            )
        if (
            self.row is not None
            and self.col is not None
            and (self.row + self.size > h or self.col + self.size > w)
        ):
            raise AttackSpecError(
                f"patch at row={self.row}, col={self.col} of size {self.size} leaves the "
                f"{h}×{w} frame; valid: row <= {h - self.size}, col <= {w - self.size}"
            )

    def _mask(self, grad: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
        b, _, h, w = shape
        k = self.size
        mask = torch.zeros((b, 1, h, w))
        if self.row is not None and self.col is not None:
            mask[:, :, self.row : self.row + k, self.col : self.col + k] = 1.0
            return mask
        assert grad is not None
        saliency = F.avg_pool2d(grad.abs().sum(dim=1, keepdim=True), k, stride=1)
        flat = saliency.flatten(1).argmax(dim=1)
        cols = saliency.shape[-1]
        for i, idx in enumerate(flat.tolist()):
            r, c = divmod(idx, cols)
            mask[i, :, r : r + k, c : c + k] = 1.0
        return mask

    def _perturb_step(self, victim: TorchPolicy, x: torch.Tensor, state, episode_start):
        self._check_frame(tuple(x.shape))
        x = x.detach()
        grad, clean, labels = objective_gradient(victim, x, None, self.target, state, episode_start)
        mask = self._mask(grad, x.shape)
        inside = mask.bool().expand_as(x)
        x_adv = x.clone()
        for i in range(self.steps):
            with torch.no_grad():
                x_adv = clamp_input(victim, x_adv + self.step_size * grad.sign() * mask)
                x_adv = torch.where(inside, x_adv, x)  # only the square ever changes
            if i < self.steps - 1:
                grad, _, _ = objective_gradient(
                    victim, x_adv, labels, self.target, state, episode_start
                )
        return x_adv.detach(), every_env(x), clean


def make_patch(
    size: Any = 8,
    row: Any = None,
    col: Any = None,
    steps: Any = 10,
    step_size: Any = 0.25,
    target: Any = None,
    round: Any = False,
) -> Patch:
    """``patch:size=K,row=R,col=C,steps=N,step_size=A,target=K|worst,round=false``."""
    return Patch(
        check_int("size", size, low=1, high=MAX_FRAME),
        row=None if row is None else check_int("row", row, low=0, high=MAX_FRAME),
        col=None if col is None else check_int("col", col, low=0, high=MAX_FRAME),
        steps=parse_steps(steps),
        step_size=check_number("step_size", step_size, low=0.0, high=1.0),
        target=parse_target(target),
        round_to_obs=parse_round(round),
    )


register_attack(
    "patch",
    make_patch,
    "L0 sticker: a k×k square changed by any amount "
    "(Brown et al. 2017); size, row, col, steps, step_size, target, round",
)

__all__ = ["Patch"]
