"""Competitive MuJoCo games: API, observation layout, 1.31 inertials, rules, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import envs

mujoco = pytest.importorskip("mujoco")
pytestmark = pytest.mark.mujoco

GAMES = {
    "you_shall_not_pass_v0": (("runner", "blocker"), (380, 380), (17, 17)),
    "kick_and_defend_v0": (("kicker", "keeper"), (384, 384), (17, 17)),
    "sumo_humans_v0": (("fighter_0", "fighter_1"), (395, 395), (17, 17)),
    "sumo_ants_v0": (("fighter_0", "fighter_1"), (137, 137), (8, 8)),
    "run_to_goal_humans_v0": (("runner_0", "runner_1"), (380, 380), (17, 17)),
    "run_to_goal_ants_v0": (("runner_0", "runner_1"), (122, 122), (8, 8)),
}


@pytest.mark.parametrize("env_id", list(GAMES))
def test_spaces_and_reset_observations_have_the_zoo_sizes(env_id):
    seats, obs_sizes, act_sizes = GAMES[env_id]
    spec = envs.spec(env_id)
    assert spec.seats == seats and "mujoco" in spec.needs
    env = envs.make(env_id)
    obs, _ = env.reset(seed=3)
    for seat, d, a in zip(seats, obs_sizes, act_sizes, strict=True):
        assert obs[seat].shape == (d,) and obs[seat].dtype == np.float64
        assert env.observation_space(seat).contains(obs[seat])
        assert env.action_space(seat).shape == (a,)
    env.close()


@pytest.mark.parametrize("env_id", ["you_shall_not_pass_v0", "sumo_ants_v0"])
def test_pettingzoo_conformance_short(env_id):
    # The full conformance run over every game is in test_registry (slow tier).
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(envs.make(env_id), num_cycles=60)
    parallel_seed_test(lambda: envs.make(env_id), num_cycles=30)


def _rollout(env_id, seed, steps, **kwargs):
    env = envs.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = [np.concatenate([obs[s] for s in env.possible_agents])]
    for _ in range(steps):
        if not env.agents:
            break
        acts = {s: rng.uniform(-1, 1, env.action_space(s).shape) for s in env.agents}
        obs, *_ = env.step(acts)
        trace.append(np.concatenate([obs[s] for s in env.possible_agents]))
    return np.stack(trace)


def test_same_seed_and_actions_give_identical_observations():
    a = _rollout("kick_and_defend_v0", 11, 40)
    b = _rollout("kick_and_defend_v0", 11, 40)
    c = _rollout("kick_and_defend_v0", 12, 40)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_bodies_carry_mujoco_131_capsule_inertials():
    env = envs.make("sumo_humans_v0")
    m = env.model
    torso = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "agent0/torso")
    assert m.body_mass[torso] == pytest.approx(8.32208, abs=1e-5)
    assert m.body_subtreemass[torso] == pytest.approx(39.646, abs=1e-3)
    assert m.body_inertia[torso] == pytest.approx([0.15914, 0.14763, 0.03313], abs=1e-5)
    assert m.body_ipos[torso] == pytest.approx([-0.00245, 0.0, 0.04036], abs=1e-5)
    ants = envs.make("sumo_ants_v0").model
    torso = mujoco.mj_name2id(ants, mujoco.mjtObj.mjOBJ_BODY, "agent1/torso")
    assert ants.body_subtreemass[torso] == pytest.approx(0.87871, abs=1e-5)
    assert ants.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    assert ants.opt.iterations == 1000 and ants.opt.timestep == pytest.approx(0.003)


def test_observation_layout_of_sumo_ants():
    env = envs.make("sumo_ants_v0")
    obs, _ = env.reset(seed=5)
    d = env.data
    me, other = obs["fighter_0"], obs["fighter_1"]
    assert np.array_equal(me[0:15], d.qpos[0:15]) and np.array_equal(me[107:122], d.qpos[15:30])
    assert np.array_equal(me[15:29], d.qvel[0:14])
    assert np.allclose(me[122:124], d.qpos[15:17] - d.qpos[0:2])
    assert np.allclose(other[122:124], -me[122:124])
    assert np.linalg.norm(me[3:7]) == pytest.approx(1.0)  # quaternions normalized at reset
    assert me[133] == env.radius and me[136] == 500.0
    assert me[134] == pytest.approx(env.radius - np.linalg.norm(d.qpos[0:2]))


def test_every_seat_gets_an_outcome_at_the_end_and_shaping_terms_each_step():
    env = envs.make("you_shall_not_pass_v0")
    env.reset(seed=0)
    while env.agents:
        zero = {s: np.zeros(17, dtype=np.float32) for s in env.agents}
        *_, infos = env.step(zero)
        for s in env.possible_agents:
            assert {"reward_move", "reward_shaping", "reward_remaining", "winner"} <= set(infos[s])
    assert {infos[s]["outcome"] for s in env.possible_agents} == {"win", "loss"}
    assert infos["blocker"]["outcome"] == "win"  # a motionless runner falls: the blocker wins


def test_sumo_scoring_default_is_gleave_and_contact_rule_is_an_option():
    def finish(**kwargs):
        env = envs.make("sumo_humans_v0", **kwargs)
        env.reset(seed=1)
        while env.agents:
            *_, infos = env.step({s: np.zeros(17) for s in env.agents})
        return {s: infos[s]["outcome"] for s in env.possible_agents}

    gleave = finish()
    assert sorted(gleave.values()) == ["loss", "win"]  # motionless: one falls first
    assert set(finish(contact_required=True).values()) == {"tie"}  # they never touched


def _end_after(env_id: str, arrange=None, seed: int = 0, **kwargs) -> tuple[str, dict]:
    """Play zero controls (after ``arrange(env)`` moves the state) to the end: how it
    ended, and each seat's outcome."""
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    if arrange is not None:
        arrange(env)
        mujoco.mj_forward(env.model, env.data)
    steps = 0
    while env.agents:
        *_, infos = env.step({s: np.zeros(env.action_space(s).shape) for s in env.agents})
        steps += 1
        if env.agents:
            assert all("end" not in infos[s] for s in env.possible_agents)
    ends = {infos[s]["end"] for s in env.possible_agents}
    assert len(ends) == 1, ends  # every seat is told the same
    return ends.pop(), {s: infos[s]["outcome"] for s in env.possible_agents}


def _ball(x, y, vx=0.0):
    def arrange(env):
        env.data.qpos[0:3] = [x, y, 0.35]
        env.data.qvel[0:6] = [vx, 0, 0, 0, 0, 0]

    return arrange


def _keeper_at(x):
    def arrange(env):
        env.data.qpos[env._seat[1].qpos.start] = x

    return arrange


@pytest.mark.parametrize(
    ("arrange", "end", "kicker"),
    [
        (_ball(4.3, 0.0, vx=2.0), "goal", "win"),
        (_ball(4.3, 3.8, vx=2.0), "ball wide of the goal", "loss"),
        (_ball(0.0, 0.0, vx=-3.0), "ball sent back", "loss"),
        (_keeper_at(1.2), "keeper foul", "tie"),
    ],
)
def test_kick_and_defend_says_how_each_episode_ended(arrange, end, kicker):
    said, outcomes = _end_after("kick_and_defend_v0", arrange)
    assert (said, outcomes["kicker"]) == (end, kicker)


def test_games_say_how_their_episodes_end():
    # motionless humanoids fall: both down ends kick-and-defend for the keeper
    said, outcomes = _end_after("kick_and_defend_v0", seed=2)
    assert said in ("both down", "keeper foul") and outcomes["kicker"] != "win"
    said, outcomes = _end_after("you_shall_not_pass_v0")
    assert (said, outcomes["blocker"]) == ("runner fell", "win")
    said, outcomes = _end_after("sumo_humans_v0", seed=1)
    loser = [s for s, o in outcomes.items() if o == "loss"]
    assert said == f"{loser[0]} fell"
    said, _ = _end_after("run_to_goal_humans_v0")
    assert said == "both fell"
    said, _ = _end_after("sumo_ants_v0", max_steps=5)
    assert said == "step limit"


def test_evaluate_counts_how_the_episodes_ended(cli):
    import json

    done = cli("evaluate", "you_shall_not_pass_v0", "--policy", "runner=zero",
               "--policy", "blocker=zero", "--episodes", "3", "--no-save")  # fmt: skip
    assert done.code == 0, done.err
    assert "ended: runner fell 3" in done.out
    done = cli("evaluate", "you_shall_not_pass_v0", "--policy", "runner=zero",
               "--policy", "blocker=zero", "--episodes", "3", "--no-save", "--json")  # fmt: skip
    assert json.loads(done.out.strip().splitlines()[-1])["ends"] == {"runner fell": 3}
    toy = cli("evaluate", "toy_catch_v0", "--policy", "player=random", "--episodes", "2",
              "--no-save", "--json")  # fmt: skip
    assert toy.code == 0, toy.err
    assert "ends" not in json.loads(toy.out.strip().splitlines()[-1])  # the toy does not say


def test_bad_actions_and_agents_give_one_line_errors():
    env = envs.make("sumo_ants_v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"fighter_0: action must have shape \(8,\)"):
        env.step({"fighter_0": np.zeros(3), "fighter_1": np.zeros(8)})
    with pytest.raises(ValueError, match="valid: fighter_0, fighter_1"):
        env.action_space("goalie")


def test_render_rgb_array_offscreen():
    env = envs.make("sumo_ants_v0", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    try:
        frame = env.render()
    except Exception as exc:  # no EGL/OSMesa on this machine
        pytest.skip(f"offscreen rendering unavailable: {exc}")
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_vectorised_contact_check_agrees_with_the_generic_one():
    env = envs.make("sumo_ants_v0")
    env.reset(seed=2)
    # Drop the ants onto each other: some steps have agent-agent contacts, some not.
    q0, q1 = env._seat[0].qpos, env._seat[1].qpos
    above = env.data.qpos[q0.start : q0.start + 3] + np.array([0.0, 0.0, 0.6])
    env.data.qpos[q1.start : q1.start + 3] = above
    seen = set()
    for _ in range(60):
        if not env.agents:
            break
        env.step({s: np.zeros(8) for s in env.agents})
        fast = env._agents_touching()
        assert fast == env._touching(env._seat[0].geoms, env._seat[1].geoms)
        seen.add(fast)
    assert seen == {True, False}


def _play(vector, steps: int, seed: int) -> list:
    """Every output of ``steps`` random steps, as comparable values."""
    rng = np.random.default_rng(seed)
    out = [{s: o.tobytes() for s, o in vector.reset(list(range(seed, seed + vector.n))).items()}]
    for _ in range(steps):
        acts = {
            s: rng.uniform(-0.6, 0.6, size=(vector.n, *vector.action_spaces[s].shape))
            for s in vector.seats
        }
        step = vector.step(acts)
        infos = [
            {
                key: {s: o.tobytes() for s, o in value.items()}
                if key == "terminal_observation"
                else value
                for key, value in info.items()
            }
            for info in step.infos
        ]
        out.append(
            (
                {s: o.tobytes() for s, o in step.obs.items()},
                {s: r.tobytes() for s, r in step.rewards.items()},
                step.terminated.tolist(),
                step.truncated.tolist(),
                infos,
            )
        )
    return out


@pytest.mark.parametrize("env_id", list(GAMES))
def test_copies_stepped_together_match_each_stepped_alone(env_id):
    """The vector steps its copies together (rewards and observations over rows of all
    copies); each copy alone, stepped and reset one by one, gives the same bits."""
    from arena.vector import GameVector

    kwargs = {"max_steps": 25}  # episodes end by rules, falls and the step limit
    together = GameVector(env_id, 4, env_kwargs=kwargs)
    alone = GameVector(env_id, 4, env_kwargs=kwargs)
    assert together._local is not None and together._local.together is not None
    alone._local.together = None  # each game's own step and reset
    try:
        played = _play(together, 70, seed=5)
        assert played == _play(alone, 70, seed=5)
        ends = [info for step in played[1:] for info in step[4] if "terminal_observation" in info]
        assert len(ends) >= 8  # copies finished and restarted mid-vector
    finally:
        together.close()
        alone.close()


def test_lengths_alone_and_in_rows_agree_bit_for_bit():
    """The sumo radii and the kicker's distance to the ball: a copy stepped alone and in
    a batch compute them with the same roundings, whether or not the CPU fuses
    multiply-adds (numpy's ``dot`` does on AVX-512 and broke this in CI)."""
    from envs.competition.games import _norm2, _norm2_rows

    rng = np.random.default_rng(0)
    v = rng.normal(scale=3.0, size=(20_000, 2))
    rows = _norm2_rows(v)
    alone = np.array([_norm2(x, y) for x, y in v.tolist()])
    assert rows.tobytes() == alone.tobytes()
    assert _norm2(3.0, 4.0) == 5.0


def test_copies_in_worker_processes_match_copies_in_this_one():
    from arena.vector import GameVector

    kwargs = {"max_steps": 20}
    local = GameVector("sumo_ants_v0", 5, env_kwargs=kwargs)
    workers = GameVector("sumo_ants_v0", 5, env_kwargs=kwargs, workers=2)
    try:
        assert _play(local, 45, seed=1) == _play(workers, 45, seed=1)
    finally:
        local.close()
        workers.close()


@pytest.mark.parametrize("gone", [EOFError(), ConnectionResetError(104, "reset by peer")])
def test_a_worker_whose_parent_went_away_closes_its_games_and_leaves_quietly(monkeypatch, gone):
    """A training stopped by a signal saves its checkpoint and exits; its workers then
    read EOF or a reset connection. They close their games and return, so the run's
    log ends with the stop, not with a traceback per worker."""
    import torch

    from arena import vector

    closed: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(vector._Games, "close", lambda self: closed.append(len(self.games)))

    class Parent:
        def recv(self):
            raise gone

    vector._worker(Parent(), "toy_pass_v0", {}, 3)
    assert closed == [3]
