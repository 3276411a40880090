"""The toy games' rules: who wins, what the observations say, rendering."""

from __future__ import annotations

import numpy as np
import pytest

import envs


def _play(env, actions, seed=0, limit=1000):
    obs, _ = env.reset(seed=seed)
    for _ in range(limit):
        obs, rew, term, trunc, info = env.step(actions(obs))
        if any(term.values()) or any(trunc.values()):
            return rew, info
    raise AssertionError("episode did not end")


def test_runner_that_runs_straight_past_a_still_blocker_wins():
    env = envs.make("toy_pass_v0")

    # runner goes right while hugging the wall away from the blocker's y
    def act(obs):
        y_rel = obs["runner"][5]
        return {
            "runner": np.array([1.0, -np.sign(y_rel) or 1.0], np.float32),
            "blocker": np.zeros(2, np.float32),
        }

    rew, info = _play(env, act)
    assert info["runner"]["outcome"] == "win" and info["blocker"]["outcome"] == "loss"
    assert rew["runner"] == 1.0 and rew["blocker"] == -1.0


def test_blocker_wins_on_timeout_and_blocks_physically():
    env = envs.make("toy_pass_v0", max_steps=40)
    still = {"runner": np.zeros(2, np.float32), "blocker": np.zeros(2, np.float32)}
    rew, info = _play(env, lambda obs: still)
    assert info["blocker"]["outcome"] == "win" and rew["runner"] == -1.0
    # A runner pushing straight into a blocker in its path cannot pass through it.
    env.reset(seed=1)
    env.pos = np.array([[-0.5, 0.0], [0.0, 0.0]])
    for _ in range(30):
        env.step({"runner": np.array([1.0, 0.0]), "blocker": np.array([-1.0, 0.0])})
        if not env.agents:
            break
    assert np.hypot(*(env.pos[1] - env.pos[0])) >= 2 * 0.12 - 1e-9
    assert env.pos[0, 0] < env.pos[1, 0]


def test_shaping_is_reported_and_weighted():
    env = envs.make("toy_pass_v0", shaping=2.0)
    env.reset(seed=0)
    _, rew, _, _, info = env.step({"runner": np.array([1.0, 0.0]), "blocker": np.zeros(2)})
    assert info["runner"]["shaping"] > 0
    assert rew["runner"] == pytest.approx(2.0 * info["runner"]["shaping"])
    assert rew["blocker"] == pytest.approx(-rew["runner"])


def test_catch_rewards_catches_and_misses():
    env = envs.make("toy_catch_v0", balls=4)

    def follow(obs):  # move the paddle under the ball: a perfect player
        frame = obs["player"][0]
        ball_col = np.flatnonzero(frame[:-2].max(axis=0) == 255)
        paddle = np.flatnonzero(frame[-1] == 170)
        center = paddle.mean()
        target = ball_col.mean() if len(ball_col) else center
        return {"player": 0 if abs(target - center) < 2 else (1 if target < center else 2)}

    total = 0.0
    obs, _ = env.reset(seed=3)
    while env.agents:
        obs, rew, _term, _, info = env.step(follow(obs))
        total += rew["player"]
    assert total == 4.0 and info["player"]["outcome"] == "win"
    rew, info = _play(env, lambda obs: {"player": 1}, seed=3)
    assert info["player"]["caught"] + info["player"]["missed"] == 4
    assert info["player"]["outcome"] in {"loss", "tie", "win"}


def test_bad_actions_and_sizes_are_rejected():
    env = envs.make("toy_catch_v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0, 1 or 2"):
        env.step({"player": 7})
    with pytest.raises(ValueError, match="size"):
        envs.make("toy_catch_v0", size=4)
    pass_env = envs.make("toy_pass_v0")
    pass_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        pass_env.step({"runner": np.zeros(3), "blocker": np.zeros(2)})


@pytest.mark.parametrize("env_id", ["toy_pass_v0", "toy_catch_v0"])
def test_rgb_render(env_id):
    env = envs.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.std() > 0


@pytest.mark.parametrize("env_id", ["toy_pass_v0", "toy_catch_v0"])
def test_toy_games_tell_a_painter_where_each_seat_is(env_id):
    from envs.paint import TopDownScene

    env = envs.make(env_id, render_mode="rgb_array")
    assert isinstance(env, TopDownScene)
    env.reset(seed=0)
    frame = env.render()
    h, w = frame.shape[:2]
    positions, colors = env.seat_positions(), env.seat_colors()
    assert set(positions) == set(colors) == set(env.possible_agents)
    for seat, (x, y) in positions.items():
        assert 0 <= x < 1 and 0 <= y < 1
        assert tuple(int(c) for c in frame[int(y * h), int(x * w)]) == colors[seat]


def test_catch_names_its_actions():
    from envs.paint import NamedActions

    env = envs.make("toy_catch_v0")
    assert isinstance(env, NamedActions)
    assert len(env.action_names("player")) == env.action_space("player").n
    assert not isinstance(envs.make("toy_pass_v0"), NamedActions)  # continuous actions
