"""Atari policies as published (pytorch-a2c-ppo-acktr-gail ``.pt``, davide97l ``policy.pth``):
read without running code, recognised in each class layout the repositories used, and
acting exactly as the same weights converted to our ``.npz``."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error
from gymnasium import spaces
from torch import nn

from agents import specs
from agents.atari_published import read_published
from agents.specs import PolicySpecError

pytestmark = pytest.mark.filterwarnings("ignore:Couldn.t retrieve source code")
OBS = spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACT = spaces.Discrete(6)


def _module(name: str, **classes) -> types.ModuleType:
    mod = types.ModuleType(name)
    for cls_name, cls in classes.items():
        cls.__module__, cls.__qualname__ = name, cls_name
        setattr(mod, cls_name, cls)
    sys.modules[name] = mod
    return mod


class _Categorical(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)


class _AddBias(nn.Module):
    def __init__(self, bias):
        super().__init__()
        self._bias = nn.Parameter(bias.unsqueeze(1))


class _SplitBias(nn.Module):
    """K-FAC's split of a layer: the layer without its bias, and the bias apart."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.add_bias = _AddBias(module.bias.data)
        self.module.bias = None


class _CNNBase(nn.Module):
    def __init__(self, num_inputs=4, hidden=512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(num_inputs, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 32, 3, stride=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(32 * 7 * 7, hidden), nn.ReLU(),
        )  # fmt: skip
        self.critic_linear = nn.Linear(hidden, 1)


class _Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = _CNNBase()
        self.dist = _Categorical(512, 6)


class _CNNPolicy(nn.Module):
    def __init__(self, split=False):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, 32, 3, stride=1)
        self.linear1 = nn.Linear(32 * 7 * 7, 512)
        self.critic_linear = nn.Linear(512, 1)
        self.dist = _Categorical(512, 6)
        if split:
            for name in ("conv1", "conv2", "conv3", "linear1", "critic_linear"):
                setattr(self, name, _SplitBias(getattr(self, name)))
            self.dist.linear = _SplitBias(self.dist.linear)


_module("distributions", Categorical=_Categorical)
_module("utils", AddBias=_AddBias)
_module("kfac", SplitBias=_SplitBias)
_module("model", CNNBase=_CNNBase, Policy=_Policy, CNNPolicy=_CNNPolicy)


def _layers(net: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each role's (weight, bias) in the module, for the ``.npz`` conversion by hand."""

    def wb(layer):
        if isinstance(layer, _SplitBias):
            return layer.module.weight, layer.add_bias._bias.reshape(-1)
        return layer.weight, layer.bias

    if isinstance(net, _Policy):
        m = net.base.main
        order = (m[0], m[2], m[4], m[7], net.dist.linear, net.base.critic_linear)
    else:
        order = (net.conv1, net.conv2, net.conv3, net.linear1, net.dist.linear, net.critic_linear)
    return {
        r: wb(x) for r, x in zip(("conv1", "conv2", "conv3", "fc", "pi", "v"), order, strict=True)
    }


LAYOUTS = {
    "Policy(CNNBase)": lambda: _Policy(),
    "CNNPolicy": lambda: _CNNPolicy(),
    "CNNPolicy+AddBias": lambda: _CNNPolicy(split=True),
}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_published_layouts_act_as_their_npz(tmp_path, layout, legacy):
    torch.manual_seed(0)
    net = LAYOUTS[layout]()
    published = tmp_path / "policy.pt"
    buf = io.BytesIO()
    torch.save([net, None], buf, _use_new_zipfile_serialization=not legacy)
    published.write_bytes(buf.getvalue())
    arrays = {}
    for role, (w, b) in _layers(net).items():
        arrays[f"{role}.weight"] = w.detach().numpy()
        arrays[f"{role}.bias"] = b.detach().numpy()
    np.savez(tmp_path / "policy.npz", **arrays)
    for key, value in read_published(published).items():
        np.testing.assert_array_equal(value, arrays[key])
    a = specs.resolve(f"atari:{published}", OBS, ACT)
    b = specs.resolve(f"atari:{tmp_path / 'policy.npz'}", OBS, ACT)
    frames = np.random.default_rng(1).integers(0, 256, (16, 4, 84, 84), dtype=np.uint8)
    np.testing.assert_array_equal(a.predict(frames, deterministic=True)[0],
                                  b.predict(frames, deterministic=True)[0])  # fmt: skip


def test_a_state_dict_file_and_a_bare_module_load_too(tmp_path):
    net = _Policy()
    torch.save(net.state_dict(), tmp_path / "sd.pth")
    torch.save(net, tmp_path / "module.pth")
    assert set(read_published(tmp_path / "sd.pth")) == set(read_published(tmp_path / "module.pth"))


def test_unrecognised_layouts_name_what_they_found(tmp_path, cli):
    torch.save([nn.Sequential(nn.Linear(3, 4)), None], tmp_path / "odd.pt")
    with pytest.raises(
        PolicySpecError, match=r"not a recognised Atari policy layout.*found: 0.weight \(4, 3\)"
    ):
        read_published(tmp_path / "odd.pt")
    bad = cli("evaluate", "atari_pong_v0", "--policy", f"player=atari:{tmp_path / 'odd.pt'}",
              "--episodes", "1", "--no-save")  # fmt: skip
    assert_one_line_error(bad, "not a recognised Atari policy layout")
    net = _Policy()
    torch.save([net, {"mean": torch.zeros(3)}], tmp_path / "norm.pt")
    with pytest.raises(PolicySpecError, match="observation normalisation"):
        read_published(tmp_path / "norm.pt")
    seven = _Policy()
    seven.dist = _Categorical(512, 7)
    torch.save([seven, None], tmp_path / "seven.pt")
    with pytest.raises(PolicySpecError, match="7 actions, but the seat has 6 actions"):
        specs.resolve(f"atari:{tmp_path / 'seven.pt'}", OBS, ACT)


class _Gadget:
    def __reduce__(self):
        return (os.system, (f"touch {self.canary}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_gadget_inside_a_published_file_runs_nothing(tmp_path, legacy):
    canary = tmp_path / "pwned"
    gadget = _Gadget()
    gadget.canary = canary
    net = _Policy()
    net.evil = gadget  # an attribute of the module: pickled with its state
    buf = io.BytesIO()
    torch.save([net, None], buf, _use_new_zipfile_serialization=not legacy)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    arrays = read_published(tmp_path / "evil.pt")  # the gadget is a record, never called
    assert "pi.weight" in arrays and not canary.exists()
    raw = pickle.dumps(gadget)
    (tmp_path / "raw.pt").write_bytes(raw)
    with pytest.raises(PolicySpecError):
        read_published(tmp_path / "raw.pt")
    assert not canary.exists()


class _CleanRLAgent(nn.Module):
    def __init__(self, n=6):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
        )  # fmt: skip
        self.actor = nn.Linear(512, n)
        self.critic = nn.Linear(512, 1)

    def forward(self, x):  # CleanRL's get_action_and_value, greedy
        return self.actor(self.network(x / 255.0)).argmax(dim=1)


def test_a_cleanrl_checkpoint_acts_as_cleanrl_computes_it(tmp_path):
    torch.manual_seed(3)
    agent = _CleanRLAgent()
    torch.save(agent.state_dict(), tmp_path / "agent.cleanrl_model")
    state = torch.load(tmp_path / "agent.cleanrl_model", weights_only=True)  # as CleanRL reads it
    assert set(state) == set(agent.state_dict())
    policy = specs.resolve(f"cleanrl:{tmp_path / 'agent.cleanrl_model'}", OBS, ACT)
    frames = np.random.default_rng(2).integers(0, 256, (16, 4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        expected = agent(torch.as_tensor(frames, dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(policy.predict(frames, deterministic=True)[0], expected)
    torch.save(agent, tmp_path / "whole.pt")  # a pickled module, not a state dict: refused
    with pytest.raises(PolicySpecError, match="not a CleanRL checkpoint"):
        specs.resolve(f"cleanrl:{tmp_path / 'whole.pt'}", OBS, ACT)


def test_an_rl_zoo_atari_cnn_policy_acts_as_sb3_on_the_same_frames(tmp_path):
    """rl-baselines3-zoo's Atari pipeline: AtariWrapper + VecFrameStack(4), channel-last
    frames that SB3 transposes for its CnnPolicy; our Pong frames are SB3's AtariWrapper's
    (tests/test_atari.py) stacked channel-first, so the file plays on them as SB3 would."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    class _Frames(gym.Env):
        observation_space = spaces.Box(0, 255, (84, 84, 4), np.uint8)  # VecFrameStack's
        action_space = ACT

    model = PPO("CnnPolicy", DummyVecEnv([_Frames]), seed=0, device="cpu")
    model.save(tmp_path / "zoo_pong.zip")
    ours = specs.resolve(f"sb3:{tmp_path / 'zoo_pong.zip'}", OBS, ACT)
    frames = np.random.default_rng(4).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8)
    theirs, _ = model.predict(frames.transpose(0, 2, 3, 1), deterministic=True)
    np.testing.assert_array_equal(ours.predict(frames, deterministic=True)[0], theirs)


@pytest.mark.atari
@pytest.mark.needs_data
@pytest.mark.slow
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_published_pong_file_scores_as_its_npz(tmp_path, legacy):
    """The pretrained Pong PPO weights put back into the repository's ``Policy(CNNBase)``
    module and saved as the user would have them: one game each under the same seed gives
    the same score as the ``.npz``, step for step, and the score the README measures."""
    from arena.match import run_match

    folder = os.environ.get("ARENA_ATARI_DIR")
    npz = Path(folder or ".") / "pong_ppo.npz"
    if not folder or not npz.is_file():
        pytest.skip("needs the pretrained Atari victims: set ARENA_ATARI_DIR (../shared/atari)")
    arrays = dict(np.load(npz))
    net = _Policy()
    m = net.base.main
    for role, layer in zip(
        ("conv1", "conv2", "conv3", "fc", "pi", "v"),
        (m[0], m[2], m[4], m[7], net.dist.linear, net.base.critic_linear),
        strict=True,
    ):
        layer.weight.data = torch.as_tensor(arrays[f"{role}.weight"])
        layer.bias.data = torch.as_tensor(arrays[f"{role}.bias"])
    published = tmp_path / "pong_ppo.pth"
    buf = io.BytesIO()
    torch.save([net, None], buf, _use_new_zipfile_serialization=not legacy)
    published.write_bytes(buf.getvalue())
    theirs, their_eps = run_match(
        "atari_pong_v0", {"player": f"atari:{published}"}, n_episodes=1, record=True
    )
    ours, our_eps = run_match(
        "atari_pong_v0", {"player": f"atari:{npz}"}, n_episodes=1, record=True
    )
    assert theirs.seats["player"].mean_return == ours.seats["player"].mean_return >= 19
    np.testing.assert_array_equal(their_eps[0].actions["player"], our_eps[0].actions["player"])
