"""Fine-tuning a zoo victim: its MLP exported as an SB3 policy that acts the same."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from agents import specs

ZOO = os.environ.get("ARENA_ZOO_DIR")
pytestmark = [
    pytest.mark.mujoco,
    pytest.mark.needs_data,
    pytest.mark.skipif(
        ZOO is None or not Path(ZOO).is_dir(),
        reason="set ARENA_ZOO_DIR to the agent zoo (../shared/zoo)",
    ),
]
RUNNER = "you-shall-not-pass/agent2_parameters-v1.pkl"


def test_mlp_zoo_policy_exports_to_an_sb3_run_that_acts_the_same(tmp_path):
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.zoo import load_zoo_policy
    from arena.artifacts.training_run import NormStats
    from arena.embedding import EmbeddedVecEnv
    from arena.players import export_zoo
    from arena.training import _init_files

    env = envs.make("you_shall_not_pass_v0")
    obs_space, act_space = env.observation_space("runner"), env.action_space("runner")
    zoo = load_zoo_policy(RUNNER, obs_space, act_space)
    _, norm = export_zoo(RUNNER, "you_shall_not_pass_v0", "runner", tmp_path / "run")
    policy = specs.resolve(
        f"run:{tmp_path / 'run'}", obs_space, act_space, env_id=env.metadata["name"], seat="runner"
    )
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    batch = obs["runner"][None] + rng.normal(0, 3, (16, obs["runner"].size))  # clipping too
    x = torch.as_tensor(batch, dtype=torch.float32)
    with torch.no_grad():
        a, b = zoo.forward(x)[0], policy.forward(policy.input_from_obs(batch))[0]
        np.testing.assert_allclose(a.mean, b.mean, atol=1e-4)
        np.testing.assert_allclose(a.stddev, b.stddev, rtol=1e-6)
        np.testing.assert_allclose(zoo.value(x), policy.value(x).reshape(-1), atol=1e-4)
    # the fine-tuning path: the same files, and VecNormalize takes the zoo's clip
    assert _init_files(f"zoo:{RUNNER}", "you_shall_not_pass_v0", "runner", tmp_path / "ft") == (
        tmp_path / "ft" / "init" / "policy.zip",
        tmp_path / "ft" / "init" / "policy_norm.npz",
    )
    venv = VecNormalize(
        EmbeddedVecEnv("you_shall_not_pass_v0", "runner", {"blocker": "zero"}, n_envs=1)
    )
    NormStats.read(norm).apply(venv)
    assert venv.clip_obs == 5.0
    venv.close()


def test_the_lstm_kicker_exports_to_a_recurrent_sb3_run_that_acts_the_same(tmp_path):
    from agents.zoo import load_zoo_policy
    from arena.players import export_zoo

    kicker = "kick-and-defend/kicker/agent1_parameters-v1.pkl"
    env = envs.make("kick_and_defend_v0")
    obs_space, act_space = env.observation_space("kicker"), env.action_space("kicker")
    zoo = load_zoo_policy(kicker, obs_space, act_space)
    export_zoo(kicker, "kick_and_defend_v0", "kicker", tmp_path / "run")
    policy = specs.resolve(
        f"run:{tmp_path / 'run'}", obs_space, act_space, env_id="kick_and_defend_v0", seat="kicker"
    )
    assert policy.recurrent
    obs, _ = env.reset(seed=0)
    zs = ps = None
    start = np.array([True])
    for _ in range(60):  # the zoo kicker's own episode, both copies carrying their state
        a, zs = zoo.predict(obs["kicker"][None], zs, start, deterministic=True)
        b, ps = policy.predict(obs["kicker"][None], ps, start, deterministic=True)
        np.testing.assert_allclose(a, b, atol=1e-4)
        start = np.array([False])
        obs, _, term, trunc, _ = env.step({"kicker": a[0], "keeper": np.zeros(17, np.float32)})
        if any(term.values()) or any(trunc.values()):
            obs, _ = env.reset()
            start = np.array([True])
