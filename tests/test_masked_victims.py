"""The masked victim of a differentiable policy (``MaskedTorchPolicy``): it acts as
``MaskedPolicy`` does, and observation attacks reach it through the mask, which passes no
gradient to the entries it freezes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import ASSETS, seat_policy

import envs
from agents.wrappers import MaskedPolicy, MaskedTorchPolicy
from arena.match import run_match

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"
ENV = "toy_pass_v0"


def _runner(spec: str):
    return seat_policy(ENV, "runner", spec)


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


@pytest.mark.needs_data
@pytest.mark.mujoco
@pytest.mark.skipif(
    not os.environ.get("ARENA_ZOO_DIR"), reason="set ARENA_ZOO_DIR to the agent zoo (../shared/zoo)"
)
@pytest.mark.parametrize("deterministic", [True, False])
def test_the_masked_zoo_runner_acts_as_before(deterministic):
    """Sampled too: the same actions from the same random stream as ``MaskedPolicy``."""
    env = "you_shall_not_pass_v0"
    game = envs.make(env)
    obs_space = game.observation_space("runner")
    spec = "masked:zoo:you-shall-not-pass/agent2_parameters-v1.pkl"
    masked = seat_policy(env, "runner", spec)
    assert isinstance(masked, MaskedTorchPolicy)
    plain = MaskedPolicy(masked.inner, tuple(masked.indices))
    obs, _ = game.reset(seed=0)
    rng = np.random.default_rng(1)
    batch = np.stack([obs["runner"]] * 3) + rng.normal(0, 0.1, (6, 3, obs_space.shape[0]))
    starts = np.zeros((6, 3), dtype=bool)
    starts[0] = starts[3, 2] = True
    for t in range(6):
        torch.manual_seed(t)
        a, _ = masked.predict(batch[t].astype(np.float32), None, starts[t], deterministic)
        torch.manual_seed(t)
        b, _ = plain.predict(batch[t].astype(np.float32), None, starts[t], deterministic)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_relative_mask_acts_the_same_both_ways_and_passes_gradient_only_to_own_entries():
    """Entries 6, 7 declared as the opponent's position relative to entries 0, 1 (the
    seat's own): both masks give the same actions, the masked relative entries are their
    start values minus how far entries 0, 1 moved since, and the gradient reaches 0, 1
    but neither the frozen (4, 5) nor the relative entries."""
    inner = _runner(RUNNER)
    relative = ((6, ((0, 1.0),)), (7, ((1, 1.0),)))
    masked = MaskedTorchPolicy(inner, (4, 5), relative)
    plain = MaskedPolicy(inner, (4, 5), relative)
    obs, starts = _observations()
    for t in range(len(obs)):
        a, _ = masked.predict(obs[t], None, starts[t], True)
        b, _ = plain.predict(obs[t], None, starts[t], True)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # float32 in torch, 64 in numpy
    plain.reset()
    plain.mask(obs[0], starts[0])
    seen = plain.mask(obs[1], starts[1])
    first = obs[0]
    np.testing.assert_allclose(seen[:, 4:6], first[:, 4:6])
    np.testing.assert_allclose(seen[:, 6:8], first[:, 6:8] - (obs[1][:, 0:2] - first[:, 0:2]),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(seen[:, [0, 1, 2, 3]], obs[1][:, [0, 1, 2, 3]])
    masked.reset()
    masked.predict(obs[0], None, starts[0], True)
    x = masked.input_from_obs(obs[1]).requires_grad_(True)
    dist, _ = masked.forward(x, None, starts[1])
    (grad,) = torch.autograd.grad(dist.mean.sum(), x)
    assert torch.all(grad[:, 4:8] == 0)
    assert torch.all(grad[:, 0:2] != 0)
