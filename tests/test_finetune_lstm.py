"""LSTM victims (the zoo's kick-and-defend and sumo agents) fine-tuned as they are: the
zoo network exported to sb3-contrib's RecurrentPPO acts exactly as the zoo, loads without
running code, trains, resumes and plays; the loader bounds what a file may build."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import specs
from agents.sb3 import PolicyFileError, sb3_victim
from agents.wrappers import NormalizedPolicy
from agents.zoo import load_zoo_policy, lstm_size, sb3_lstm_kwargs, to_sb3


def _zoo_lstm(path: Path, d: int, a: int, seed: int = 5) -> Path:
    """A zoo-format LSTM policy with random weights and a sane normalization (mean 0,
    spread 1)."""
    rng = np.random.default_rng(seed)
    flat = rng.normal(0, 0.3, lstm_size(d, a)).astype(np.float32)
    flat[3 : 3 + d] = 0.0  # sum
    flat[3 + d : 3 + 2 * d] = 100.0  # sum of squares
    flat[3 + 2 * d] = 100.0  # count
    path.write_bytes(pickle.dumps(flat, protocol=3))
    return path


def test_exported_lstm_acts_as_the_zoo_through_episode_restarts(tmp_path):
    obs_space = spaces.Box(-np.inf, np.inf, (7,), np.float64)
    act_space = spaces.Box(-0.4, 0.4, (3,), np.float32)
    zoo = load_zoo_policy(_zoo_lstm(tmp_path / "z.pkl", 7, 3), obs_space, act_space)
    model, stats = to_sb3(zoo)
    model.save(tmp_path / "lstm.zip")
    inner = sb3_victim(tmp_path / "lstm.zip", obs_space, act_space)  # the safe loader
    policy = NormalizedPolicy(
        inner,
        mean=stats["obs_mean"],
        var=stats["obs_var"],
        epsilon=stats["epsilon"],
        clip=stats["clip_obs"],
    )
    assert policy.recurrent
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (8, 4, 7))  # some beyond the ±5 clip after normalization
    zs = ps = None
    for t in range(8):
        starts = np.array([t == 0 or (t == 4 and i in (1, 2)) for i in range(4)])
        a, zs = zoo.predict(x[t], zs, starts, deterministic=True)
        b, ps = policy.predict(x[t], ps, starts, deterministic=True)
        np.testing.assert_allclose(a, b, atol=2e-6)
        np.testing.assert_allclose(zs[:, 1].numpy(), ps[:, 0, 0].numpy(), atol=2e-6)  # hidden
        np.testing.assert_allclose(zs[:, 0].numpy(), ps[:, 1, 0].numpy(), atol=2e-6)  # cell
    first = policy.input_from_obs(x[0])
    with torch.no_grad():
        np.testing.assert_allclose(zoo.value(first), policy.value(first), atol=2e-6)
    # the restart matters: env 1 restarted at t=4, env 0 did not
    fresh, _ = zoo.predict(x[7], None, np.ones(4, bool), deterministic=True)
    assert not np.allclose(fresh[0], a[0]) and not np.allclose(fresh[3], a[3])


def _recurrent_ppo(obs_space: spaces.Box, act_space: spaces.Box, hidden: int, seed: int = 0):
    """A fresh sb3-contrib RecurrentPPO shaped as the zoo's LSTMs (``hidden`` units)."""
    import gymnasium
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    class _Env(gymnasium.Env):
        observation_space = obs_space
        action_space = act_space

    kwargs = {**sb3_lstm_kwargs(), "lstm_hidden_size": hidden, "n_lstm_layers": 1}
    return RecurrentPPO("MlpLstmPolicy", DummyVecEnv([_Env]), policy_kwargs=kwargs, seed=seed)


@pytest.mark.parametrize(
    ("key", "value"), [("lstm_hidden_size", 2048), ("n_lstm_layers", 3), ("lstm_hidden_size", 0)]
)
def test_the_loader_refuses_recurrent_networks_past_its_bounds(tmp_path, key, value):
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    kwargs = {**sb3_lstm_kwargs(), "lstm_hidden_size": 4, "n_lstm_layers": 1}
    model = _recurrent_ppo(obs_space, act_space, kwargs["lstm_hidden_size"])
    model.save(tmp_path / "ok.zip")
    assert sb3_victim(tmp_path / "ok.zip", obs_space, act_space).recurrent
    # the same file claiming a bigger network: refused before anything is built
    import base64
    import zipfile

    with zipfile.ZipFile(tmp_path / "ok.zip") as src:
        members = {n: src.read(n) for n in src.namelist()}
    raw = json.loads(members["data"])
    blob = base64.b64decode(raw["policy_kwargs"][":serialized:"])
    # rewrite the small integer (BININT1) that follows the key in the pickle stream
    at = blob.index(key.encode()) + len(key)
    old_op = b"K" + bytes([kwargs[key]])
    j = at + blob[at:].index(old_op)
    new_op = b"J" + int(value).to_bytes(4, "little", signed=True)
    blob = blob[:j] + new_op + blob[j + len(old_op) :]
    raw["policy_kwargs"][":serialized:"] = base64.b64encode(blob).decode()
    members["data"] = json.dumps(raw).encode()
    with zipfile.ZipFile(tmp_path / "big.zip", "w") as dst:
        for name, content in members.items():
            dst.writestr(name, content)
    with pytest.raises(PolicyFileError, match=f"policy_kwargs {key} must be in"):
        sb3_victim(tmp_path / "big.zip", obs_space, act_space)


@pytest.mark.slow
def test_finetuning_an_lstm_victim_trains_resumes_and_plays(cli, tmp_path):
    import envs

    game = envs.make("toy_pass_v0")
    d = int(np.prod(game.observation_space("runner").shape))
    a = int(np.prod(game.action_space("runner").shape))
    victim = _zoo_lstm(tmp_path / "runner.pkl", d, a)
    out = tmp_path / "ft"
    args = ("finetune-victim", "toy_pass_v0", "--victim", f"runner=zoo:{victim}",
            "--adversary", "zero", "--opponent", "random", "--out", out)  # fmt: skip
    first = cli(*args, "--timesteps", "2048", "--checkpoint-every", "1024")
    assert first.code == 0, first.err
    config = json.loads((out / "adversary_run.json").read_text())["config"]
    assert config["ppo"]["lstm"] is True and config["ppo"]["net_arch"] == []
    more = cli(*args, "--timesteps", "4096", "--resume")
    assert more.code == 0, more.err
    assert "resuming" in more.err
    assert json.loads((out / "results.json").read_text())["timesteps"] == 4096
    obs_space, act_space = game.observation_space("runner"), game.action_space("runner")
    policy = specs.resolve(f"run:{out}", obs_space, act_space, env_id="toy_pass_v0", seat="runner")
    assert policy.recurrent
    played = cli("evaluate", "toy_pass_v0", "--policy", f"runner=run:{out}", "--policy",
                 "blocker=zero", "--episodes", "4", "--no-save",
                 "--record", tmp_path / "rec")  # fmt: skip
    assert played.code == 0, played.err
    verified = cli("replay", tmp_path / "rec", "--verify")
    assert verified.code == 0 and "verified" in verified.out, verified.out + verified.err


def test_a_recurrent_sb3_victims_value_carries_its_critic_lstm(tmp_path):
    """Was a bug: the value of a RecurrentPPO victim (a fine-tuned kicker) came from a
    zero critic state at every step. It now equals sb3-contrib's own value with the
    critic's LSTM carried through the episode, restarts included; actions unchanged."""
    from sb3_contrib.common.recurrent.type_aliases import RNNStates

    from agents.policies import restarted

    obs_space = spaces.Box(-5, 5, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    model = _recurrent_ppo(obs_space, act_space, 8)
    with torch.no_grad():  # a critic that is not a constant
        for p in model.policy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.save(tmp_path / "rec.zip")
    victim = sb3_victim(tmp_path / "rec.zip", obs_space, act_space)
    policy = victim.policy
    rng = np.random.default_rng(0)
    zeros = torch.zeros(1, 2, 8)
    theirs = RNNStates((zeros, zeros.clone()), (zeros.clone(), zeros.clone()))
    state, values, fresh = None, [], []
    for t in range(8):
        start = np.array([t in (0, 5), False])  # env 0 restarts at t = 5
        obs = torch.as_tensor(rng.normal(size=(2, 3)), dtype=torch.float32)
        x = victim.input_from_obs(obs.numpy())
        ours = victim.value(x, restarted(state, start))
        with torch.no_grad():
            actions, value, _, theirs = policy.forward(
                obs, theirs, torch.as_tensor(start, dtype=torch.float32), deterministic=True
            )
        assert torch.allclose(ours, value.squeeze(-1), atol=1e-5)
        dist, state = victim.forward(x, state, start)
        assert torch.allclose(dist.mean, actions, atol=1e-5)  # acting is unchanged
        zero = torch.zeros(1, 2, 8)
        fresh.append(policy.predict_values(obs, (zero, zero.clone()), torch.ones(2)).squeeze(-1))
        values.append(ours)
    assert state.shape == (2, 4, 1, 8)  # actor (hidden, cell), then critic (hidden, cell)
    assert not torch.allclose(torch.stack(values[1:5]), torch.stack(fresh[1:5]), atol=1e-4)
