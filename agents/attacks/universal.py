"""The universal perturbation: one δ, fitted once on the victim's own frames, then added
unchanged to every frame at test time (no per-step optimisation, no gradient at test).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.attacks.base import (
    AttackSpecError,
    ObservationAttack,
    PerturbationBudget,
    check_flag,
    check_int,
    check_number,
    clamp_input,
)
from agents.attacks.gradient import (
    _labels,
    _objective,
    ascent_direction,
    budget_from,
    parse_target,
    project,
)
from agents.numbers import SEED_MAX
from agents.policies import TorchPolicy

log = logging.getLogger(__name__)


def read_record_frames(
    directory: str | Path, seat: str | None = None, max_frames: int | None = None
) -> np.ndarray:
    """The clean observations of one seat from an episode-record directory.

    Reads ``episode_*.npz`` (written by ``arena evaluate --record DIR``) with
    ``allow_pickle=False``. ``seat`` may be left out when the record has one seat.
    """
    directory = Path(directory)
    files = sorted(directory.glob("episode_*.npz")) if directory.is_dir() else []
    if not files:
        raise AttackSpecError(
            f"universal: no episode_*.npz in {directory} (make one with "
            f"`arena evaluate ... --record DIR`)"
        )
    chunks: list[np.ndarray] = []
    total = 0
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as archive:
                keys = [k for k in archive.files if k.startswith("obs.")]
                seats = [k[4:] for k in keys]
                if seat is None and len(seats) != 1:
                    raise AttackSpecError(
                        f"universal: the record has seats {', '.join(seats)}; "
                        f"say which with seat=NAME"
                    )
                name = seat if seat is not None else seats[0]
                if f"obs.{name}" not in archive.files:
                    raise AttackSpecError(
                        f"universal: unknown seat {name!r} in {directory}; "
                        f"valid: {', '.join(seats)}"
                    )
                frames = archive[f"obs.{name}"][:-1]  # the last one was never acted on
        except (OSError, ValueError) as exc:
            if isinstance(exc, AttackSpecError):
                raise
            raise AttackSpecError(f"universal: cannot read {f}: {exc}") from None
        chunks.append(frames)
        total += len(frames)
        if max_frames is not None and total >= max_frames:
            break
    out = np.concatenate(chunks)
    return out[:max_frames] if max_frames is not None else out


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
    """One δ (shape of one input) that maximises the mean attack objective over ``inputs``.

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
                _labels(victim, victim.forward(inputs[i : i + 256])[0], target)
                for i in range(0, len(inputs), 256)
            ]
        )
    for _ in range(iters):
        idx = torch.randint(0, len(inputs), (min(batch, len(inputs)),), generator=gen)
        d = delta.detach().requires_grad_(True)
        with torch.enable_grad():
            x_adv = clamp_input(victim, inputs[idx] + d)
            dist, _ = victim.forward(x_adv)
            obj = _objective(dist, labels[idx], target is not None).mean()
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
            obs = read_record_frames(self.frames, self.seat, self.max_frames)
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
        return x_adv, torch.ones(x.shape[0], dtype=torch.bool)


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
        step_size=None if step_size is None else check_number("step_size", step_size, low=0.0),
        target=parse_target(target),
        max_frames=check_int("max_frames", max_frames, low=1, high=1_000_000),
        seed=check_int("seed", seed, low=0, high=SEED_MAX),
        round_to_obs=check_flag("round", round),
    )


def _register() -> None:
    from agents.attacks import register_attack

    register_attack(
        "universal",
        make_universal,
        "one δ for every frame, fitted on the "
        "victim's own frames (frames=RECORD_DIR or fit_steps=N); eps, norm, iters",
    )


_register()

__all__ = ["Universal", "fit_universal", "read_record_frames"]
