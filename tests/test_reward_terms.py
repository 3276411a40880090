"""The adversary's optional victim-aware reward terms (issue 5, point 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from agents import specs
from arena.embedding import EmbeddedVecEnv


def _victim(runner_zip):
    spec = envs.spec("toy_pass_v0")
    env = envs.make("toy_pass_v0")
    return specs.resolve(
        f"sb3:{runner_zip}",
        env.observation_space("runner"),
        env.action_space("runner"),
        env_id=spec.id,
        seat="runner",
    )


def test_action_divergence_is_the_w2_distance_to_the_masked_view(runner_zip):
    victim = _victim(runner_zip)
    kwargs = {"n_envs": 2, "seed": 1}
    vec = EmbeddedVecEnv(
        "toy_pass_v0", "blocker", {"runner": victim}, victim_divergence=2.0, **kwargs
    )
    plain = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": victim}, **kwargs)
    vec.reset()
    plain.reset()
    start = vec._obs["runner"][:, 4:8].copy()  # toy_pass: the opponent's entries
    rng = np.random.default_rng(0)
    terms = []
    for _ in range(300):
        act = rng.uniform(-1, 1, size=(2, 2)).astype(np.float32)
        _, rew, done, _ = vec.step(act)
        _, base, _, _ = plain.step(act)
        obs = vec._obs["runner"]
        masked = obs.copy()
        masked[:, 4:8] = start
        with torch.no_grad():
            p = victim.distribution(victim.input_from_obs(obs))
            q = victim.distribution(victim.input_from_obs(masked))
        # toy runner: a diagonal Gaussian with state-independent σ: W2² = mean (Δμ)²
        w2 = ((p.mean - q.mean) ** 2).reshape(2, -1).mean(1).numpy()
        expected = np.where(done, 0.0, 2.0 * w2)
        np.testing.assert_allclose(rew - base, expected, rtol=1e-4, atol=1e-5)
        terms.append(expected[0])
        start[done] = obs[done][:, 4:8]
        if done[0]:
            break
    assert max(terms) > 1e-4  # the opponent moved, the victim noticed


def test_action_distance_of_categorical_policies_is_total_variation():
    from arena.embedding import action_distance

    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [10.0, -10.0]])
    d = action_distance(torch.distributions.Categorical(logits=logits), 2)
    np.testing.assert_allclose(d, [0.0, 0.5], atol=1e-6)


def test_action_divergence_needs_a_differentiable_victim():
    with pytest.raises(envs.EnvError, match="differentiable victim"):
        EmbeddedVecEnv(
            "toy_pass_v0", "blocker", {"runner": "random"}, n_envs=1, victim_divergence=1.0
        )
