"""Interval bound propagation: sound bounds, and a certified decision is one no attack
changes (the certified fraction never exceeds the fraction PGD leaves unflipped)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import seat_policy
from gymnasium import spaces

from agents.atari_cnn import AtariCNN, AtariCNNPolicy
from agents.attacks import parse_attack
from agents.certify import certified, propagate


@pytest.fixture(scope="module")
def pixel_victim() -> AtariCNNPolicy:
    torch.manual_seed(0)
    net = AtariCNN(in_channels=4, n_actions=6).freeze()
    return AtariCNNPolicy(net, spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(6))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (24, 4, 84, 84), dtype=np.uint8)


def test_bounds_hold_for_points_inside_the_box(pixel_victim, frames):
    x = pixel_victim.input_from_obs(frames[:4])
    eps = 2 / 255
    lo, hi = propagate(pixel_victim.interval_steps(), (x - eps).clamp(0, 1), (x + eps).clamp(0, 1))
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        inside = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps).clamp(0, 1)
        logits = pixel_victim.net(inside)[0]
        assert (logits >= lo - 1e-4).all() and (logits <= hi + 1e-4).all()


@pytest.mark.parametrize("eps", [0.0002, 0.001, 1 / 255])
def test_certified_never_exceeds_what_pgd_leaves_unflipped(pixel_victim, frames, eps):
    x = pixel_victim.input_from_obs(frames)
    sure = certified(pixel_victim, x, eps)
    attack = parse_attack(f"pgd:eps={eps},steps=20")
    step = attack.step(pixel_victim, frames, None, np.zeros(len(frames), bool), True)
    unflipped = ~step.flipped
    assert sure is not None
    assert not (sure.numpy() & ~unflipped).any()  # certified ⇒ PGD could not flip it
    assert sure.float().mean() <= unflipped.mean()


def test_zero_radius_certifies_every_strict_decision(pixel_victim, frames):
    sure = certified(pixel_victim, pixel_victim.input_from_obs(frames), 0.0)
    assert sure is not None and sure.all()


@pytest.mark.needs_data
@pytest.mark.mujoco
@pytest.mark.skipif(
    not __import__("os").environ.get("ARENA_ZOO_DIR"),
    reason="set ARENA_ZOO_DIR to the agent zoo (../shared/zoo)",
)
@pytest.mark.parametrize("eps", [0.01, 0.05, 0.2])
def test_zoo_runner_certified_within_its_own_sigma(eps):
    import envs
    from arena.pretrained import zoo_spec

    env = envs.make("you_shall_not_pass_v0")
    runner = seat_policy(
        "you_shall_not_pass_v0", "runner", zoo_spec("you_shall_not_pass_v0", "runner")
    )
    obs, _ = env.reset(seed=0)
    frames = []
    for _ in range(24):
        frames.append(obs["runner"])
        obs, *_ = env.step({s: np.zeros(env.action_space(s).shape) for s in env.possible_agents})
    frames = np.asarray(frames)
    sure = certified(runner, runner.input_from_obs(frames), eps, runner.input_scale())
    step = parse_attack(f"mad:eps={eps},steps=20").step(runner, frames, None, None, True)
    assert sure is not None
    assert not (sure.numpy() & step.flipped).any()


@pytest.mark.parametrize(
    "env_id,seat,name,eps,attack",
    [
        ("toy_catch_v0", "player", "toy_catch_v0__player.zip", 0.05, "pgd:eps={eps},steps=20"),
        ("toy_pass_v0", "runner", "toy_pass_v0__runner.zip", 0.3, "mad:eps={eps},steps=20"),
    ],
)
def test_sb3_victims_are_certified_soundly(env_id, seat, name, eps, attack):
    import envs
    from arena.pretrained import shipped

    env = envs.make(env_id)
    victim = seat_policy(env_id, seat, f"sb3:{shipped(name)}")
    assert victim.interval_steps() is not None
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    frames = []
    for _ in range(40):
        frames.append(obs[seat])
        obs, _, term, trunc, _ = env.step(
            {s: env.action_space(s).sample() for s in env.possible_agents}
        )
        if any(term.values()) or any(trunc.values()):
            obs, _ = env.reset(seed=int(rng.integers(1000)))
    frames = np.asarray(frames)
    sure = certified(victim, victim.input_from_obs(frames), eps, victim.input_scale())
    step = parse_attack(attack.format(eps=eps)).step(victim, frames, None, None, True)
    assert sure is not None and not (sure.numpy() & step.flipped).any()
    assert certified(victim, victim.input_from_obs(frames), 0.0, victim.input_scale()).all()
