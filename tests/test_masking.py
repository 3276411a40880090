"""The opponent entries each game declares for the masked victim (Gleave et al. 2020)."""

from __future__ import annotations

import numpy as np
import pytest

import envs

COMPETITION = [s.id for s in envs.list_specs() if "mujoco" in s.needs]


@pytest.mark.mujoco
@pytest.mark.parametrize("env_id", COMPETITION)
def test_opponent_obs_cover_exactly_what_moving_the_opponent_changes(env_id):
    import mujoco

    env = envs.make(env_id)
    env.reset(seed=3)
    spec = envs.spec(env_id)
    for k, seat in enumerate(env.possible_agents):
        declared = set(spec.opponent_obs[seat])
        before = env._observe(k).copy()
        other = env._seat[1 - k].qpos
        saved = env.data.qpos.copy()
        env.data.qpos[other] += np.linspace(0.05, 0.3, other.stop - other.start)
        mujoco.mj_forward(env.model, env.data)
        changed = set(np.flatnonzero(env._observe(k) != before).tolist())
        env.data.qpos[:] = saved
        mujoco.mj_forward(env.model, env.data)
        assert changed <= declared, f"{seat}: undeclared opponent entries {changed - declared}"
        n_qpos = other.stop - other.start
        # every opponent coordinate is seen (the free joint's quaternion moves too)
        assert len(changed) >= n_qpos - 1, f"{seat}: only {len(changed)} entries changed"
        assert max(declared) < env.observation_space(seat).shape[0]


def test_toy_pass_declares_its_opponent_entries():
    assert envs.spec("toy_pass_v0").opponent_obs["runner"] == (4, 5, 6, 7)
