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


def test_lstm_zoo_policies_cannot_be_fine_tuned(tmp_path):
    from arena.training import TrainingError, _init_files

    with pytest.raises(TrainingError, match="LSTM"):
        _init_files(
            "zoo:sumo/humans/agent_parameters-v1.pkl", "sumo_humans_v0", "fighter_0", tmp_path
        )
