"""The universal perturbation: one δ, fitted once on the victim's own frames, then added
unchanged to every frame at test time (no per-step optimization, no gradient at test).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.attacks import register_attack
from agents.attacks.base import (
    AttackSpecError,
    ObservationAttack,
    PerturbationBudget,
    clamp_input,
    every_env,
)
from agents.attacks.gradient import ascent_direction, objective, project, target_labels
from agents.attacks.params import budget_from, check_int, parse_round, parse_step_size, parse_target
from agents.numbers import SEED_MAX
from agents.policies import TorchPolicy

log = logging.getLogger(__name__)


FramesReader = Callable[[str, str | None, int], np.ndarray]
"""``(record directory, seat or None, max_frames) -> frames``: the clean observations
one seat acted on in a record. Records are the arena's files: it gives the reader
(``arena.attacks.build_attack``); agents never read them."""


def fit_universal(
    victim: TorchPolicy,
    inputs: torch.Tensor,
    budget: PerturbationBudget,
    *,
    iters: int = 100,
    batch: int = 64,
    step_size: float | None = None,
    target: int | str | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """One δ (shape of one input) that maximizes the mean attack objective over ``inputs``.

    Projected signed-gradient ascent on minibatches (a fast variant of the universal
    perturbations of Moosavi-Dezfooli et al. 2017, as used on policies by Hussenot et al.
    2019), labels = the victim's clean greedy actions (or the target).
    """
    gen = torch.Generator().manual_seed(seed)
    eps, norm = budget.eps, budget.norm
    delta = torch.zeros(inputs.shape[1:], dtype=inputs.dtype)
    if eps == 0.0 or len(inputs) == 0:
        return delta
    alpha = step_size if step_size is not None else 2.5 * eps / min(iters, 20)
    with torch.no_grad():
        labels = torch.cat(
            [
                target_labels(victim, victim.forward(inputs[i : i + 256])[0], target)
                for i in range(0, len(inputs), 256)
            ]
        )
    for _ in range(iters):
        idx = torch.randint(0, len(inputs), (min(batch, len(inputs)),), generator=gen)
        d = delta.detach().requires_grad_(True)
        with torch.enable_grad():
            x_adv = clamp_input(victim, inputs[idx] + d)
            dist, _ = victim.forward(x_adv)
            obj = objective(dist, labels[idx], target is not None).mean()
            (grad,) = torch.autograd.grad(obj, d)
        with torch.no_grad():
            delta = project((d + alpha * ascent_direction(grad[None], norm)[0])[None], eps, norm)[0]
    return delta.detach()


class Universal(ObservationAttack):
    """One input-agnostic δ for every frame (Moosavi-Dezfooli et al. 2017, "Universal
    adversarial perturbations"; on Atari policies: Hussenot, Geist, Pietquin 2019,
    "CopyCAT"). Norm: L∞ or L2, ε on the network input. δ has the shape of one input
    (e.g. ``(4, 84, 84)``) and is added to every sample ``(B, ...)`` of every step, then
    clamped to the valid range.

    Where the fitting frames come from (pick one):

    * ``frames=DIR``: a record directory of the victim's own clean play, written
      beforehand by ``arena evaluate ENV --policy seat=VICTIM --record DIR``. δ is fitted
      once (deterministically, from ``seed``) on the first call and kept for the whole
      evaluation. Use other seeds for the recording than for the test, so the test
      frames are unseen.
    * ``fit_steps=N``: fit on the fly. The first ``N`` steps of each chunk of episodes
      the arena plays in lockstep are left *clean* (reported as not attacked) while
      their frames are collected; δ is then fitted on them and applied unchanged to
      every later step. ``reset`` (a new chunk) starts over, so no frame of one chunk
      informs another.

    Example::

        arena evaluate atari_pong_v0 --policy player=atari:pong_ppo.npz --episodes 2 \\
            --seed 100 --record rec/
        arena evaluate atari_pong_v0 --policy player=atari:pong_ppo.npz --episodes 10 \\
            --attack player=universal:eps=2/255,frames=rec/
    """

    name = "universal"
    needs_gradient = True

    def __init__(
        self,
        budget: PerturbationBudget,
        *,
        frames: str | None = None,
        fit_steps: int | None = None,
        seat: str | None = None,
        iters: int = 100,
        batch: int = 64,
        step_size: float | None = None,
        target: int | str | None = None,
        max_frames: int = 5000,
        seed: int = 0,
        round_to_obs: bool = False,
    ):
        if (frames is None) == (fit_steps is None):
            raise AttackSpecError(
                "universal needs exactly one source of frames: frames=RECORD_DIR or fit_steps=N"
            )
        if frames is not None and not Path(frames).is_dir():
            raise AttackSpecError(f"universal: frames={frames} is not a record directory")
        super().__init__(budget, round_to_obs=round_to_obs)
        self.frames, self.fit_steps, self.seat = frames, fit_steps, seat
        self.iters, self.batch, self.step_size = iters, batch, step_size
        self.target, self.max_frames, self.seed = target, max_frames, seed
        self.read_frames: FramesReader | None = None
        """Reads ``frames``; the arena sets it when it builds the attack."""
        self.delta: torch.Tensor | None = None
        self._seen: list[torch.Tensor] = []
        self._steps = 0

    def reset(self, *, seed: int | None = None) -> None:
        super().reset(seed=seed)
        if self.fit_steps is not None:  # on-the-fly: each chunk fits its own δ
            self.delta, self._seen, self._steps = None, [], 0

    def fit(self, victim: TorchPolicy, inputs: torch.Tensor) -> torch.Tensor:
        self.delta = fit_universal(
            victim,
            inputs,
            self.budget,
            iters=self.iters,
            batch=self.batch,
            step_size=self.step_size,
            target=self.target,
            seed=self.seed,
        )
        log.info("universal: fitted δ on %d frames (%s)", len(inputs), self.budget.describe())
        return self.delta

    def perturb(self, victim, x, state=None, episode_start=None):
        x = x.detach()
        if self.delta is None and self.frames is not None:
            if self.read_frames is None:
                raise AttackSpecError(
                    "universal: frames=DIR is a record the arena reads; build the attack "
                    "with arena.attacks.build_attack"
                )
            obs = self.read_frames(self.frames, self.seat, self.max_frames)
            self.fit(victim, victim.input_from_obs(obs))
        elif self.delta is None:
            assert self.fit_steps is not None
            if self._steps < self.fit_steps:
                self._steps += 1
                self._seen.append(x.clone())
                return x.clone(), torch.zeros(x.shape[0], dtype=torch.bool)
            self.fit(victim, torch.cat(self._seen)[: self.max_frames])
            self._seen = []
        assert self.delta is not None
        if tuple(self.delta.shape) != tuple(x.shape[1:]):
            raise AttackSpecError(
                f"universal: δ has shape {tuple(self.delta.shape)} but the "
                f"victim's input is {tuple(x.shape[1:])}"
            )
        x_adv = clamp_input(victim, x + self.delta)
        return x_adv, every_env(x)


def make_universal(
    eps: Any = 1 / 255,
    norm: Any = "linf",
    frames: Any = None,
    fit_steps: Any = None,
    seat: Any = None,
    iters: Any = 100,
    batch: Any = 64,
    step_size: Any = None,
    target: Any = None,
    max_frames: Any = 5000,
    seed: Any = 0,
    round: Any = False,
) -> Universal:
    """``universal:eps=E,norm=linf|l2,frames=DIR|fit_steps=N,iters=100,batch=64,...``."""
    if frames is not None and not isinstance(frames, str):
        frames = str(frames)
    return Universal(
        budget_from(eps, norm),
        frames=frames,
        fit_steps=None
        if fit_steps is None
        else check_int("fit_steps", fit_steps, low=1, high=1_000_000),
        seat=None if seat is None else str(seat),
        iters=check_int("iters", iters, low=1, high=100_000),
        batch=check_int("batch", batch, low=1, high=100_000),
        step_size=parse_step_size(step_size),
        target=parse_target(target),
        max_frames=check_int("max_frames", max_frames, low=1, high=1_000_000),
        seed=check_int("seed", seed, low=0, high=SEED_MAX),
        round_to_obs=parse_round(round),
    )


register_attack(
    "universal",
    make_universal,
    "one δ for every frame, fitted on the "
    "victim's own frames (frames=RECORD_DIR or fit_steps=N); eps, norm, iters",
)

__all__ = ["FramesReader", "Universal", "fit_universal"]
