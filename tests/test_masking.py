"""The opponent entries each game declares for the masked victim (Gleave et al. 2020)."""

from __future__ import annotations

import numpy as np
import pytest

import envs

COMPETITION = [s.id for s in envs.list_specs() if "mujoco" in s.needs]
LIVE = {"sumo_humans_v0": {393}, "sumo_ants_v0": {135}}


@pytest.mark.mujoco
@pytest.mark.parametrize("env_id", COMPETITION)
def test_opponent_obs_cover_exactly_what_moving_the_opponent_changes(env_id):
    import mujoco

    env = envs.make(env_id)
    env.reset(seed=3)
    spec = envs.spec(env_id)
    for k, seat in enumerate(env.possible_agents):
        relative = {i for i, _ in spec.opponent_relative.get(seat, ())}
        # sumo's "R - |other xy|": the scene computes it from the true opponent, so
        # Gleave et al.'s masked victim sees it move (test below)
        live = LIVE.get(env_id, set())
        declared = set(spec.opponent_obs[seat]) | relative | live
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


@pytest.mark.mujoco
@pytest.mark.parametrize("env_id", COMPETITION)
def test_the_mask_sees_the_opponent_where_it_started_as_gleaves_masker_does(env_id):
    """Gleave et al.'s masker replaces the opponent's qpos by its episode-start value and
    the game computes the observation from it. So at every step, the masked entries must
    equal the observation of the same state with only the opponent moved back to where
    it started; every other entry is the true observation."""
    import mujoco

    from agents.wrappers import OpponentMask

    env = envs.make(env_id)
    env.reset(seed=5)
    spec = envs.spec(env_id)
    rng = np.random.default_rng(0)
    for k, seat in enumerate(env.possible_agents):
        env.reset(seed=5 + k)
        mask = OpponentMask(spec.opponent_obs[seat], spec.opponent_relative.get(seat, ()))
        masked_entries = np.concatenate([mask.frozen, mask.relative]).astype(int)
        other = env._seat[1 - k].qpos
        start_qpos = env.data.qpos[other].copy()
        start = env._observe(k)[mask.kept][None].copy()
        moved = 0.0
        for _ in range(60):
            acts = {a: rng.uniform(-0.4, 0.4, env.action_space(a).shape) for a in env.agents}
            env.step(acts)
            if not env.agents:
                break
            true = env._observe(k)
            got = mask.apply(true[None], start)[0]
            saved = env.data.qpos.copy()
            env.data.qpos[other] = start_qpos
            mujoco.mj_forward(env.model, env.data)
            expected = env._observe(k)
            env.data.qpos[:] = saved
            mujoco.mj_forward(env.model, env.data)
            np.testing.assert_allclose(got[masked_entries], expected[masked_entries], atol=1e-9)
            rest = np.setdiff1d(np.arange(true.size), masked_entries)
            np.testing.assert_array_equal(got[rest], true[rest])
            moved = max(moved, float(np.abs(true[masked_entries] - got[masked_entries]).max()))
        assert moved > 0.01  # the opponent moved, and the mask hid it
