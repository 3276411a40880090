"""White-box adversaries (``--white-box``): the victim features they see in training are
the ones they see when they play, recurrent state included; they load only for their
own game and seat; they record and replay exactly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error
from gymnasium import spaces

from agents import specs
from agents.mixture import MixturePolicy
from agents.policies import ZeroPolicy
from agents.specs import PolicySpecError
from agents.whitebox import (
    WhiteBoxError,
    WhiteBoxPolicy,
    augmented_space,
    feature_size,
    take_rows,
    victim_features,
)
from agents.zoo import load_zoo_policy, lstm_size
from arena.embedding import EmbeddedVecEnv, VictimFeatures


@pytest.fixture
def tiny_lstm(tmp_path) -> Path:
    """A zoo-format LSTM policy (5 inputs, 2 actions) with random weights."""
    rng = np.random.default_rng(3)
    flat = rng.normal(0, 0.3, lstm_size(5, 2)).astype(np.float32)
    path = tmp_path / "lstm.pkl"
    path.write_bytes(pickle.dumps(flat, protocol=3))
    return path


def _lstm(path: Path):
    obs = spaces.Box(-np.inf, np.inf, (5,), np.float64)
    act = spaces.Box(-0.4, 0.4, (2,), np.float32)
    return load_zoo_policy(path, obs, act)


def test_features_carry_the_victims_recurrent_state_as_the_victim_does(tiny_lstm):
    from agents.policies import restarted

    victim = _lstm(tiny_lstm)
    models = {"kicker": victim}
    assert feature_size(models) == 3
    rng = np.random.default_rng(0)
    obs_seq = rng.normal(0, 1, (6, 4, 5))
    starts = [np.ones(4, bool)] + [np.zeros(4, bool)] * 5
    starts[3] = np.array([False, True, False, False])  # env 1 begins a new episode
    feats_state: dict = {}
    victim_state = None
    for t in range(6):
        feats, feats_state = victim_features(models, {"kicker": obs_seq[t]}, feats_state, starts[t])
        # the victim acting greedily on the same observations from the same state
        action, new_state = victim.predict(
            obs_seq[t], state=victim_state, episode_start=starts[t], deterministic=True
        )
        np.testing.assert_allclose(feats[:, :2], action, rtol=1e-5, atol=1e-6)
        x = victim.input_from_obs(obs_seq[t])
        # the value from the state carried into this observation (zeros at a new episode)
        value = victim.value(x, restarted(victim_state, starts[t])).numpy()
        np.testing.assert_allclose(feats[:, 2], value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(feats_state["kicker"], new_state, rtol=1e-6)
        victim_state = new_state
    # the state is not a constant: a fresh state gives other actions
    fresh, _ = victim_features(models, {"kicker": obs_seq[5]}, {}, np.ones(4, bool))
    assert not np.allclose(fresh[:, :2], feats[:, :2])


def test_take_rows_of_states():
    state = torch.arange(12.0).reshape(4, 3)
    assert torch.equal(take_rows(state, np.array([1, 3])), state[[1, 3]])
    assert take_rows(None, np.array([0])) is None
    pair = take_rows((state, state.numpy()), np.array([2]))
    assert torch.equal(pair[0], state[[2]]) and np.array_equal(pair[1], state.numpy()[[2]])


def test_white_box_needs_a_network_and_a_flat_observation():
    box = spaces.Box(-1, 1, (3,), np.float32)
    with pytest.raises(WhiteBoxError, match="seat 'runner' plays ZeroPolicy"):
        from agents.whitebox import white_box_models

        white_box_models({"runner": ZeroPolicy(box, box)})
    with pytest.raises(WhiteBoxError, match="flat Box"):
        augmented_space(spaces.Box(0, 255, (4, 4, 1), np.uint8), {})


def test_training_view_appends_the_features_terminal_observations_too(runner_zip):
    victim = f"sb3:{runner_zip}"
    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": victim}, n_envs=3, seed=4)
    vec = VictimFeatures(game)
    own = game.observation_space.shape[0]
    extra = feature_size(vec.models)
    assert vec.observation_space.shape == (own + extra,)
    obs = vec.reset()
    expected, _ = victim_features(vec.models, game.obs, {}, np.ones(3, bool))
    np.testing.assert_array_equal(obs[:, own:], expected)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(120):
        act = rng.uniform(-1, 1, size=(3, 2)).astype(np.float32)
        obs, _, dones, infos = vec.step(act)
        assert obs.shape == (3, own + extra)
        now, _ = victim_features(vec.models, game.obs, {}, np.ones(3, bool))
        # an MLP victim: no state
        np.testing.assert_allclose(obs[:, own:], now, rtol=1e-5, atol=1e-6)
        for i in np.flatnonzero(dones):
            terminal = infos[i]["terminal_observation"]
            last = game.infos[i]["terminal_observation"]
            assert terminal.shape == (own + extra,)
            np.testing.assert_array_equal(terminal[:own], last["blocker"])
            want, _ = victim_features(vec.models, {"runner": last["runner"][None]}, {}, [True])
            np.testing.assert_allclose(terminal[own:], want[0], rtol=1e-5, atol=1e-6)
            ended += 1
    assert ended > 0
    vec.close()


@pytest.fixture(scope="module")
def white_box_run(tmp_path_factory, runner_zip):
    from arena.training import train_adversary

    out = tmp_path_factory.mktemp("wb") / "run"
    train_adversary(
        "toy_pass_v0",
        {"runner": f"sb3:{runner_zip}"},
        timesteps=4096,
        out=out,
        config=_white_box_config(),
        progress=False,
    )
    return out


def _white_box_config():
    import dataclasses

    from arena.training import default_adversary_config

    config = default_adversary_config("toy_pass_v0")
    return dataclasses.replace(config, white_box=True, eval_every=2048, eval_episodes=4)


def _spaces(env_id: str, seat: str):
    import envs

    game = envs.make(env_id)
    return game.observation_space(seat), game.action_space(seat)


def test_a_white_box_run_loads_as_its_own_seat_only(white_box_run, runner_zip):
    marker = json.loads((white_box_run / "adversary_run.json").read_text())
    assert marker["config"]["white_box"] is True
    assert (white_box_run / "evaluation.csv").read_text().count("\n") >= 2
    obs, act = _spaces("toy_pass_v0", "blocker")
    policy = specs.resolve(f"run:{white_box_run}", obs, act, env_id="toy_pass_v0", seat="blocker")
    assert isinstance(policy, WhiteBoxPolicy) and policy.observation_space == obs
    with pytest.raises(WhiteBoxError, match="show it every seat's observations"):
        policy.predict(np.zeros((1, *obs.shape), np.float32))
    runner_obs, runner_act = _spaces("toy_pass_v0", "runner")
    with pytest.raises(PolicySpecError, match="white-box adversary of toy_pass_v0 seat 'blocker'"):
        specs.resolve(
            f"run:{white_box_run}", runner_obs, runner_act, env_id="toy_pass_v0", seat="runner"
        )
    with pytest.raises(PolicySpecError, match="cannot play"):
        specs.resolve(f"run:{white_box_run}", obs, act)  # no game named: refused, not guessed


def test_a_white_box_adversary_plays_as_it_trained(white_box_run, runner_zip):
    """The features it sees in a match are computed as in training: its greedy actions
    on the training view's observations are those it plays."""
    obs, act = _spaces("toy_pass_v0", "blocker")
    policy = specs.resolve(f"run:{white_box_run}", obs, act, env_id="toy_pass_v0", seat="blocker")
    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2)
    vec = VictimFeatures(game)
    joint = vec.reset()
    state = None
    starts = np.ones(2, bool)
    for _ in range(15):
        policy.see(game.obs)
        mine, state = policy.predict(game.obs["blocker"], state, starts, deterministic=True)
        direct, _ = policy.inner.predict(joint, None, starts, deterministic=True)
        np.testing.assert_array_equal(mine, direct)
        joint, _, dones, _ = vec.step(mine)
        starts = dones
    vec.close()


def test_white_box_in_matches_mixtures_and_records(white_box_run, runner_zip, tmp_path, cli):
    spec = f"run:{white_box_run}"
    runner = f"runner=sb3:{runner_zip}"
    one = cli("evaluate", "toy_pass_v0", "--policy", runner, "--policy", f"blocker={spec}",
              "--episodes", "6", "--json", "--no-save")  # fmt: skip
    two = cli("evaluate", "toy_pass_v0", "--policy", runner, "--policy", f"blocker={spec}",
              "--episodes", "6", "--json", "--no-save", "--workers", "2")  # fmt: skip
    assert one.code == two.code == 0, one.err + two.err
    assert (
        json.loads(one.out.splitlines()[-1])["seats"]
        == json.loads(two.out.splitlines()[-1])["seats"]
    )
    mixed = cli("evaluate", "toy_pass_v0", "--policy", runner, "--policy",
                f"blocker=mix:0.5*{spec}|0.5*zero", "--episodes", "6", "--no-save",
                "--record", tmp_path / "rec")  # fmt: skip
    assert mixed.code == 0, mixed.err
    verified = cli("replay", tmp_path / "rec", "--verify")
    assert verified.code == 0 and "verified" in verified.out, verified.out + verified.err
    wrong = cli("evaluate", "toy_pass_v0", "--policy", f"runner={spec}", "--policy",
                "blocker=zero", "--episodes", "2", "--no-save")  # fmt: skip
    assert_one_line_error(wrong, "white-box adversary of toy_pass_v0 seat 'blocker'")


def test_mixture_shows_its_components():
    box = spaces.Box(-1, 1, (2,), np.float32)
    seen = []

    class Reader(ZeroPolicy):
        def see(self, observations):
            seen.append(observations)

    mix = MixturePolicy([Reader(box, box), ZeroPolicy(box, box)], [0.5, 0.5], seed=0)
    mix.see({"a": 1})
    assert seen == [{"a": 1}]


def test_white_box_flag_refusals(cli, runner_zip, tmp_path):
    bad = cli("train-adversary", "toy_pass_v0", "--victim", "runner=random", "--timesteps",
              "100", "--out", tmp_path / "r", "--white-box")  # fmt: skip
    assert_one_line_error(bad, "--white-box needs the victim's network", "seat 'runner'")
    assert not (tmp_path / "r").exists()
    first = cli("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
                "--timesteps", "2048", "--out", tmp_path / "ok")  # fmt: skip
    assert first.code == 0, first.err
    again = cli("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
                "--timesteps", "4096", "--out", tmp_path / "ok", "--resume",
                "--white-box")  # fmt: skip
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--white-box")
