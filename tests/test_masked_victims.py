"""The masked victim of a differentiable policy (``MaskedTorchPolicy``): it acts as
``MaskedPolicy`` does, and observation attacks reach it through the mask, which passes no
gradient to the entries it freezes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ASSETS

import envs
from agents import specs
from agents.wrappers import MaskedPolicy, MaskedTorchPolicy
from arena.match import run_match

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"
ENV = "toy_pass_v0"


def _runner(spec: str):
    game = envs.make(ENV)
    return specs.resolve(
        spec, game.observation_space("runner"), game.action_space("runner"), env_id=ENV,
        seat="runner",
    )  # fmt: skip


def _observations(n_envs: int = 3, steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    game = envs.make(ENV)
    shape = game.observation_space("runner").shape
    obs = rng.normal(size=(steps, n_envs, *shape)).astype(np.float32)
    starts = np.zeros((steps, n_envs), dtype=bool)
    starts[0] = True
    starts[5, 1] = True  # one environment starts a new episode mid-way
    return obs, starts


def test_a_masked_sb3_victim_is_differentiable_and_acts_as_the_numpy_mask():
    masked = _runner(f"masked:{RUNNER}")
    assert isinstance(masked, MaskedTorchPolicy)
    plain = MaskedPolicy(masked.inner, tuple(masked.indices))
    obs, starts = _observations()
    for t in range(len(obs)):
        a, _ = masked.predict(obs[t], None, starts[t], True)
        b, _ = plain.predict(obs[t], None, starts[t], True)
        np.testing.assert_array_equal(a, b)


def test_no_gradient_reaches_the_frozen_entries():
    masked = _runner(f"masked:{RUNNER}")
    obs, starts = _observations()
    masked.predict(obs[0], None, starts[0], True)  # the first step freezes its entries
    x = masked.input_from_obs(obs[1]).requires_grad_(True)
    dist, _ = masked.forward(x, None, starts[1])
    (grad,) = torch.autograd.grad(dist.mean.sum(), x)
    idx = masked.indices
    assert torch.all(grad[:, idx] == 0)
    others = np.setdiff1d(np.arange(x.shape[1]), idx)
    assert torch.any(grad[:, others] != 0)


def test_perturbing_only_the_frozen_entries_changes_nothing():
    masked = _runner(f"masked:{RUNNER}")
    obs, starts = _observations()
    masked.predict(obs[0], None, starts[0], True)
    moved = obs[1].copy()
    moved[:, masked.indices] += 5.0
    before = masked.distribution(masked.input_from_obs(obs[1])).mean
    after = masked.distribution(masked.input_from_obs(moved)).mean
    torch.testing.assert_close(before, after)


@pytest.mark.parametrize("attack", ["pgd:eps=1,steps=10", "mad:eps=1,steps=10"])
def test_gradient_attacks_apply_to_a_masked_victim(attack):
    result, _ = run_match(
        ENV, {"runner": f"masked:{RUNNER}"}, n_episodes=2, attacks={"runner": attack}
    )
    seat = result.seats["runner"]
    assert seat.flip_rate is not None and seat.flip_rate > 0  # the attack moved decisions
