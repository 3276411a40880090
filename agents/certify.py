"""Interval bound propagation (IBP; Gowal et al. 2018): for a box of inputs around each
state, sound bounds on the network's outputs, so that a decision can be *certified* not
to change under any perturbation in the box.

A policy that can be certified lists the steps from its input to the outputs that decide
its action (``TorchPolicy.interval_steps``): affine maps (``nn.Linear``, ``nn.Conv2d``,
or ``Affine(weight, bias)`` for ``x @ W + b``), monotone activations (ReLU, tanh) and
reshapes. A decision is certified when

* discrete: the lower bound of the clean greedy action's logit exceeds the upper bound of
  every other logit;
* Gaussian: every dimension of the mean action stays within the victim's own σ of the
  clean mean (the flip rule of ``agents.attacks.base.decision_changed``).

Sound but loose: the certified fraction can only be at most the fraction no attack
flips (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Affine:
    """``x @ weight + bias`` (the zoo's layout)."""

    weight: torch.Tensor
    bias: torch.Tensor


@dataclass(frozen=True)
class Clamp:
    low: float
    high: float


@dataclass(frozen=True)
class Normalize:
    """``(x - mean) / std``."""

    mean: torch.Tensor
    std: torch.Tensor


Step = nn.Module | Affine | Clamp | Normalize | str
"""A step: a module, an ``Affine``/``Clamp``/``Normalize``, or ``"relu"``, ``"tanh"``,
``"flatten"``."""


def _through(step: Any, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's interval rule: affine maps through the box's centre and radius,
    monotone maps at both ends."""
    if isinstance(step, nn.Linear | nn.Conv2d | Affine):
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        if isinstance(step, nn.Linear):
            centre = mid @ step.weight.T + step.bias
            spread = rad @ step.weight.abs().T
        elif isinstance(step, nn.Conv2d):
            centre = step._conv_forward(mid, step.weight, step.bias)
            spread = step._conv_forward(rad, step.weight.abs(), None)
        else:
            centre, spread = mid @ step.weight + step.bias, rad @ step.weight.abs()
        return centre - spread, centre + spread
    if isinstance(step, Normalize):
        return (lo - step.mean) / step.std, (hi - step.mean) / step.std
    if isinstance(step, Clamp):
        return lo.clamp(step.low, step.high), hi.clamp(step.low, step.high)
    if step == "relu":
        return lo.relu(), hi.relu()
    if step == "tanh":
        return lo.tanh(), hi.tanh()
    if step == "flatten":
        return lo.flatten(1), hi.flatten(1)
    raise TypeError(f"no interval rule for {step!r}")


def propagate(
    steps: Sequence[Step], lo: torch.Tensor, hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on the output of ``steps`` for every input in ``[lo, hi]`` (batched)."""
    with torch.no_grad():
        for step in steps:
            lo, hi = _through(step, lo, hi)
    return lo, hi


def module_steps(modules: Sequence[nn.Module]) -> list[Any] | None:
    """``modules`` (containers flattened in order) as steps; None if one has no rule."""
    from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN

    from agents.networks import SmallCNN

    steps: list[Any] = []
    for module in modules:
        if isinstance(module, FlattenExtractor):
            steps.append("flatten")
        elif isinstance(module, NatureCNN | SmallCNN):  # both: linear(cnn(x))
            more = module_steps([module.cnn, module.linear])
            if more is None:
                return None
            steps += more
        elif isinstance(module, nn.Sequential):
            more = module_steps(list(module))
            if more is None:
                return None
            steps += more
        elif isinstance(module, nn.Linear | nn.Conv2d):
            steps.append(module)
        elif isinstance(module, nn.ReLU | nn.Tanh | nn.Flatten):
            steps.append({nn.ReLU: "relu", nn.Tanh: "tanh", nn.Flatten: "flatten"}[type(module)])
        else:
            return None
    return steps


def certified(
    victim: Any, x: torch.Tensor, eps: float, scale: torch.Tensor | None = None
) -> torch.Tensor | None:
    """bool per state of ``x``: the victim's decision cannot change for any input within
    ``eps`` (L∞; times ``scale`` per element where given) inside its valid range; None
    for a victim that lists no interval steps."""
    from agents.attacks.base import clamp_input
    from agents.policies import distribution_mode

    steps = victim.interval_steps()
    if steps is None:
        return None
    radius = eps * (scale if scale is not None else 1.0)
    lo, hi = clamp_input(victim, x - radius), clamp_input(victim, x + radius)
    out_lo, out_hi = propagate(steps, lo, hi)
    with torch.no_grad():
        dist, _ = victim.forward(x)
        clean = distribution_mode(dist)
        if isinstance(dist, torch.distributions.Categorical):
            own = out_lo.gather(1, clean.long().view(-1, 1))
            others = out_hi.scatter(1, clean.long().view(-1, 1), -torch.inf)
            return (own > others).all(dim=1)
        base = dist.base_dist if isinstance(dist, torch.distributions.Independent) else dist
        sigma = base.stddev
        ok = (out_hi - clean <= sigma) & (clean - out_lo <= sigma)
        return ok.reshape(ok.shape[0], -1).all(dim=1)
