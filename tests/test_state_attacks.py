"""MAD and the critic attack on a small Gaussian actor-critic (fast tier), and on the
zoo runner where the zoo is present."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import seat_policy
from gymnasium import spaces
from torch import distributions as D
from torch import nn

from agents.attacks import AttackSpecError, parse_attack
from agents.attacks.base import PerturbationBudget
from agents.attacks.state import MAD, Critic
from agents.policies import TorchPolicy

DIM, ACT = 6, 2


class TinyGaussian(TorchPolicy):
    """A fixed random MLP actor-critic on 6 unbounded inputs, 2 Gaussian actions."""

    input_low = -np.inf
    input_high = np.inf

    def __init__(self, seed: int = 0, value_head: bool = True):
        gen = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh())
        self.mean, self.v = nn.Linear(16, ACT), nn.Linear(16, 1)
        with torch.no_grad():
            for p in [*self.body.parameters(), *self.mean.parameters(), *self.v.parameters()]:
                p.copy_(torch.randn(p.shape, generator=gen))
        self.log_std = torch.full((ACT,), -1.0)
        self.value_head = value_head
        self.observation_space = spaces.Box(-np.inf, np.inf, (DIM,), np.float64)
        self.action_space = spaces.Box(-1, 1, (ACT,), np.float32)

    def input_from_obs(self, observation):
        return torch.as_tensor(np.asarray(observation), dtype=torch.float32)

    def forward(self, x, state=None, episode_start=None):
        h = self.body(x)
        return D.Normal(self.mean(h), self.log_std.exp().expand(x.shape[0], ACT)), None

    def value(self, x, state=None):
        return self.v(self.body(x)).squeeze(-1) if self.value_head else None


@pytest.fixture
def victim() -> TinyGaussian:
    return TinyGaussian()


@pytest.fixture
def obs() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(32, DIM))


def kl(victim, x, x_adv) -> torch.Tensor:
    with torch.no_grad():
        clean, _ = victim.forward(x)
        adv, _ = victim.forward(x_adv)
        k = D.kl_divergence(clean, adv)
        return k.flatten(1).sum(dim=1) if k.dim() > 1 else k


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", ["mad", "critic"])
def test_stays_in_the_ball_and_leaves_the_victim_untouched(victim, obs, name, norm):
    attack = parse_attack(f"{name}:eps=0.2,norm={norm},steps=5")
    before = [p.clone() for p in victim.body.parameters()]
    result = attack.step(victim, obs, None, np.zeros(len(obs), bool), True)
    size = (
        np.abs(result.delta).max(axis=1) if norm == "linf" else np.linalg.norm(result.delta, axis=1)
    )
    assert (size <= 0.2 * (1 + 1e-5)).all() and size.max() > 0.1
    assert result.attacked.all() and result.actions.shape == (32, ACT)
    assert all(torch.equal(a, b) for a, b in zip(before, victim.body.parameters(), strict=True))
    assert all(p.grad is None for p in victim.body.parameters())


def test_mad_moves_the_action_distribution_more_than_noise_of_the_same_size(victim, obs):
    x = victim.input_from_obs(obs)
    attack = MAD(PerturbationBudget(0.2), steps=10)
    attack.reset(seed=0)
    x_adv, _, _ = attack._perturb_step(victim, x, None, None)
    sign = torch.from_numpy(np.random.default_rng(2).choice([-1.0, 1.0], size=x.shape))
    noise = x + 0.2 * sign.float()
    assert kl(victim, x, x_adv).mean() > 3 * kl(victim, x, noise).mean()
    more = MAD(PerturbationBudget(0.2), steps=40)
    more.reset(seed=0)
    x_more, _, _ = more._perturb_step(victim, x, None, None)
    assert kl(victim, x, x_more).mean() >= 0.95 * kl(victim, x, x_adv).mean()


def test_critic_lowers_the_victims_own_value(victim, obs):
    x = victim.input_from_obs(obs)
    attack = Critic(PerturbationBudget(0.2), steps=10)
    x_adv, _, _ = attack._perturb_step(victim, x, None, None)
    with torch.no_grad():
        clean, adv = victim.value(x), victim.value(x_adv)
        sign = torch.from_numpy(np.random.default_rng(2).choice([-1.0, 1.0], size=x.shape))
        noisy = victim.value(x + 0.2 * sign.float())
    assert (adv <= clean + 1e-6).all()
    assert (clean - adv).mean() > 1.5 * (clean - noisy).abs().mean()


def test_critic_needs_a_value_head(obs):
    blind = TinyGaussian(value_head=False)
    with pytest.raises(AttackSpecError, match="needs a victim with a value head"):
        parse_attack("critic:eps=0.1").step(blind, obs, None, np.zeros(len(obs), bool), True)


def test_eps_zero_is_identity(victim, obs):
    for name in ("mad", "critic"):
        result = parse_attack(f"{name}:eps=0").step(victim, obs, None, None, True)
        assert not result.delta.any() and not result.attacked.any()


@pytest.mark.parametrize(
    "spec,fragment",
    [("mad:eps=2", "out of range"), ("critic:steps=0", "steps"), ("mad:norm=l0", "norm")],
)
def test_bad_specs(spec, fragment):
    with pytest.raises(AttackSpecError, match=fragment):
        parse_attack(spec)


@pytest.mark.needs_data
@pytest.mark.mujoco
@pytest.mark.skipif(
    not os.environ.get("ARENA_ZOO_DIR"), reason="set ARENA_ZOO_DIR to the agent zoo (../shared/zoo)"
)
def test_on_the_zoo_runner():
    """The zoo runner's value and action distribution, moved within ε = 0.05 of its raw
    observation, more than a random sign perturbation of the same size moves them."""
    import envs
    from arena.pretrained import zoo_spec

    env = envs.make("you_shall_not_pass_v0")
    runner = seat_policy(
        "you_shall_not_pass_v0", "runner", zoo_spec("you_shall_not_pass_v0", "runner")
    )
    frames = []
    obs, _ = env.reset(seed=0)
    for _ in range(16):
        frames.append(obs["runner"])
        obs, *_ = env.step({s: env.action_space(s).sample() * 0 for s in env.possible_agents})
    x = runner.input_from_obs(np.asarray(frames))
    sign = torch.from_numpy(np.random.default_rng(0).choice([-1.0, 1.0], size=x.shape)).float()
    mad_x, _, _ = MAD(PerturbationBudget(0.05), steps=10)._perturb_step(runner, x, None, None)
    assert kl(runner, x, mad_x).mean() > 2 * kl(runner, x, x + 0.05 * sign).mean()
    critic_x, _, _ = Critic(PerturbationBudget(0.05), steps=10)._perturb_step(runner, x, None, None)
    with torch.no_grad():
        assert runner.value(critic_x).mean() < runner.value(x + 0.05 * sign).mean()


class Normalising(TinyGaussian):
    """The same network behind an observation normalisation of known spread."""

    SCALE = torch.tensor([0.1, 1.0, 10.0, 0.5, 2.0, 100.0])

    def input_scale(self):
        return self.SCALE

    def forward(self, x, state=None, episode_start=None):
        return super().forward(x / self.SCALE, state, episode_start)

    def value(self, x, state=None):
        return super().value(x / self.SCALE, state)


@pytest.mark.parametrize("spec", ["mad:eps=0.2", "critic:eps=0.2", "pgd:eps=0.2", "noise:eps=0.2"])
def test_a_normalising_victim_is_attacked_in_its_standard_deviations(obs, spec):
    victim = Normalising()
    attack = parse_attack(spec)
    raw = obs * Normalising.SCALE.numpy()
    result = attack.step(victim, raw, None, np.zeros(len(obs), bool), True)
    per_dim = np.abs(result.delta).max(axis=0)  # δ is recorded on the raw input
    bound = 0.2 * Normalising.SCALE.numpy()
    assert (per_dim <= bound * (1 + 1e-5)).all() and (per_dim > 0.5 * bound).all()
    assert "standard deviations of each observation dimension" in attack.describe(victim)
    assert "/255" in attack.describe(TinyGaussian())  # no normalisation: the input's units


def test_a_flip_is_a_changed_decision_not_sampling_noise(victim, obs):
    """Sampled actions always differ from the clean mean; a flip needs the attack to move
    the victim's mean action by more than its own noise σ."""
    start = np.zeros(len(obs), bool)
    tiny = parse_attack("mad:eps=0.0001").step(victim, obs, None, start, deterministic=False)
    assert not np.array_equal(tiny.actions, tiny.clean_actions)  # sampled
    assert not tiny.flipped.any()
    big = parse_attack("mad:eps=1,steps=20").step(victim, obs, None, start, deterministic=False)
    assert big.flipped.mean() > 0.5
