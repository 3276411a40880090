"""Atari games, the ``atari:`` and ``sb3:`` pixel victims, and attacks through the arena.

Tests that need ale-py ROMs are marked ``atari``; those that need the pretrained
victims of ../shared/atari are marked ``needs_data`` and skip unless ``ARENA_ATARI_DIR``
points at a directory holding them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs
from agents import specs
from agents.atari_cnn import AtariCNNPolicy, atari_victim
from agents.attacks import parse_attack
from agents.specs import PolicySpecError
from arena.match import run_match

SEAT_OBS = spaces.Box(0, 255, (4, 84, 84), np.uint8)
SEAT_ACT = spaces.Discrete(6)


def _atari_dir() -> Path | None:
    value = os.environ.get("ARENA_ATARI_DIR")
    if not value:
        return None
    path = Path(value)
    return path if (path / "pong_ppo.npz").is_file() else None


ATARI_DIR = _atari_dir()
_skip_without_data = pytest.mark.skipif(
    ATARI_DIR is None,
    reason="needs the pretrained Atari victims: set ARENA_ATARI_DIR to a directory with "
    "pong_ppo.npz (e.g. ../shared/atari)",
)


def needs_data(test):
    """Mark ``test`` ``needs_data`` and skip it, saying why, when the victims are absent."""
    return pytest.mark.needs_data(_skip_without_data(test))


def random_weights(n_actions: int = 6, in_channels: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {
        "conv1.weight": (32, in_channels, 8, 8),
        "conv1.bias": (32,),
        "conv2.weight": (64, 32, 4, 4),
        "conv2.bias": (64,),
        "conv3.weight": (32, 64, 3, 3),
        "conv3.bias": (32,),
        "fc.weight": (512, 1568),
        "fc.bias": (512,),
        "pi.weight": (n_actions, 512),
        "pi.bias": (n_actions,),
        "v.weight": (1, 512),
        "v.bias": (1,),
    }
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in shapes.items()}


# ---------------------------------------------------------------- the family


def test_every_rom_is_a_game():
    from envs.atari import rom_names

    names = rom_names()
    assert len(names) > 100 and "pong" in names and "space_invaders" in names
    ids = envs.list_ids()
    assert all(f"atari_{n}_v0" in ids for n in names)
    s = envs.spec("atari_breakout_v0")
    assert s.seats == ("player",) and s.needs == ("atari",) and not s.nondeterministic


def test_unknown_atari_game_lists_valid():
    with pytest.raises(envs.EnvError, match="did you mean atari_pong_v0"):
        envs.spec("atari_pongg_v0")


def test_registry_import_is_light():
    code = (
        "import sys, envs; envs.list_ids(); envs.spec('atari_pong_v0'); "
        "print(sorted(m for m in ('ale_py', 'cv2', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the env


@pytest.mark.atari
@pytest.mark.parametrize("game", ["pong", "breakout"])
def test_pettingzoo_api(game):
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(envs.make(f"atari_{game}_v0", max_episode_steps=60), num_cycles=80)
    parallel_seed_test(lambda: envs.make(f"atari_{game}_v0", max_episode_steps=60), num_cycles=40)


@pytest.mark.atari
def test_observations_and_determinism():
    env = envs.make("atari_pong_v0")
    obs, _ = env.reset(seed=7)
    o = obs["player"]
    assert o.shape == (4, 84, 84) and o.dtype == np.uint8
    assert not o[:3].any() and o[3].any()  # a fresh stack: zeros, then the first frame
    assert env.action_space("player").n == 6

    def play(seed, sticky):
        e = envs.make("atari_pong_v0", repeat_action_probability=sticky)
        frames = [e.reset(seed=seed)[0]["player"]]
        rng = np.random.default_rng(1)
        for _ in range(40):
            frames.append(e.step({"player": int(rng.integers(6))})[0]["player"])
        return np.stack(frames)

    a = play(3, 0.0)
    assert np.array_equal(a, play(3, 0.0))
    assert not np.array_equal(a, play(4, 0.0))
    assert np.array_equal(play(3, 0.25), play(3, 0.25))  # sticky actions are seeded too


@pytest.mark.atari
@pytest.mark.parametrize("game", ["Pong", "Breakout"])
def test_frames_match_sb3_atari_wrapper(game):
    """Pixel for pixel what the victims were trained on: SB3's ``AtariWrapper`` (episodic
    life, fire reset, max-and-skip 4, 84×84 gray) + a 4-frame stack on NoFrameskip-v4,
    with the NOOP start off on both sides so the same actions give the same game."""
    import ale_py
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    gym.register_envs(ale_py)
    ref = AtariWrapper(gym.make(f"{game}NoFrameskip-v4"), noop_max=0, clip_reward=False)

    def fresh(frame):
        stack = np.zeros((4, 84, 84), np.uint8)
        stack[-1] = frame[..., 0]
        return stack

    stack = fresh(ref.reset(seed=0)[0])
    ours = envs.make(f"atari_{game.lower()}_v0", noop_max=0)
    obs, _ = ours.reset(seed=0)
    assert np.array_equal(obs["player"], stack)
    rng = np.random.default_rng(0)
    life_losses = 0
    for _ in range(300):
        action = int(rng.integers(ours.action_space("player").n))
        frame, _, term, trunc, _ = ref.step(action)
        if term or trunc:
            if ref.unwrapped.ale.game_over():
                break
            stack, life_losses = fresh(ref.reset()[0]), life_losses + 1  # a lost life
        else:
            stack = np.concatenate([stack[1:], frame[None, ..., 0]])
        obs, *_ = ours.step({"player": action})
        assert np.array_equal(obs["player"], stack)
    assert life_losses > 0 or game == "Pong"


@pytest.mark.atari
def test_outcome_and_truncation():
    env = envs.make("atari_pong_v0", max_episode_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, info = env.step({"player": 0})
    assert trunc["player"] and not term["player"] and env.agents == []
    assert info["player"]["outcome"] == "tie"  # nothing scored in 5 steps
    with pytest.raises(RuntimeError):
        env.step({"player": 0})


@pytest.mark.atari
def test_pong_loss_outcome():
    # NOOP loses every point of Pong: the full game ends -21 and is a loss.
    env = envs.make("atari_pong_v0", frame_skip=8)
    env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        _, rew, term, trunc, info = env.step({"player": 0})
        total += rew["player"]
        done = term["player"] or trunc["player"]
    assert total == -21 and info["player"]["outcome"] == "loss"


@pytest.mark.atari
def test_env_kwargs_validated():
    with pytest.raises(envs.EnvError, match="unexpected keyword"):
        envs.make("atari_pong_v0", sticky=0.25)
    with pytest.raises(ValueError, match="frame_skip"):
        envs.make("atari_pong_v0", frame_skip=0)


# ---------------------------------------------------------------- atari: loader


def test_atari_loader_roundtrip(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **random_weights())
    policy = specs.resolve(f"atari:{path}", SEAT_OBS, SEAT_ACT)
    assert isinstance(policy, AtariCNNPolicy)
    assert (policy.input_low, policy.input_high) == (0.0, 1.0)
    obs = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    actions, _ = policy.predict(obs, deterministic=True)
    assert actions.shape == (3,) and actions.dtype == np.int64
    single, _ = policy.predict(obs[0], deterministic=True)
    assert single == actions[0]
    x = policy.input_from_obs(obs)
    assert float(x.max()) <= 1.0 and np.array_equal(policy.obs_from_input(x), obs)
    assert policy.value(x).shape == (3,)
    ref = specs.reference(f"atari:{path}")
    assert ref.kind == "atari" and ref.sha256 is not None and len(ref.sha256) == 64


def test_atari_loader_wrong_actions(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **random_weights(n_actions=4))
    with pytest.raises(PolicySpecError, match="has 4 actions, but the seat has 6 actions"):
        atari_victim(path, SEAT_OBS, SEAT_ACT)


def test_atari_loader_wrong_input(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **random_weights(in_channels=3))
    with pytest.raises(PolicySpecError, match=r"takes frames of shape \(3, 84, 84\), but"):
        atari_victim(path, SEAT_OBS, SEAT_ACT)
    np.savez(path, **random_weights())
    with pytest.raises(PolicySpecError, match=r"Box\(1, 24, 24\)"):
        atari_victim(path, spaces.Box(0, 255, (1, 24, 24), np.uint8), SEAT_ACT)


def test_atari_loader_refuses_pickle(tmp_path):
    path = tmp_path / "evil.npz"
    weights = random_weights()
    weights["payload"] = np.array([{"code": "print('boom')"}], dtype=object)
    np.savez(path, **weights)
    with pytest.raises(PolicySpecError, match="only plain numeric arrays load"):
        specs.resolve(f"atari:{path}", SEAT_OBS, SEAT_ACT)


def test_atari_loader_bad_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(PolicySpecError, match="not a readable .npz"):
        atari_victim(junk, SEAT_OBS, SEAT_ACT)
    partial = tmp_path / "partial.npz"
    weights = random_weights()
    del weights["pi.weight"]
    np.savez(partial, **weights)
    with pytest.raises(PolicySpecError, match="missing arrays pi.weight"):
        atari_victim(partial, SEAT_OBS, SEAT_ACT)
    with pytest.raises(PolicySpecError, match="not found"):
        specs.resolve(f"atari:{tmp_path / 'absent.npz'}", SEAT_OBS, SEAT_ACT)


def test_fast_first_layer_gradient_matches_torch():
    """The frozen victim's custom conv1 input gradient equals torch's generic backward."""
    import copy

    from agents.atari_cnn import build_network

    fast = build_network(random_weights(seed=3))
    slow = copy.deepcopy(fast)
    slow.conv1.weight.requires_grad_(True)  # disables the fast path
    x = torch.rand((3, 4, 84, 84), generator=torch.Generator().manual_seed(0))
    grads = []
    for net, layout in ((fast, torch.channels_last), (fast, torch.contiguous_format), (slow, None)):
        xv = x.contiguous(memory_format=layout or torch.contiguous_format).requires_grad_(True)
        logits, value = net(xv)
        (g,) = torch.autograd.grad((logits * torch.arange(6.0)).sum() + value.sum(), xv)
        grads.append(g)
    for g in grads[:2]:
        assert torch.allclose(g, grads[-1], rtol=1e-4, atol=1e-7)
    assert grads[0].abs().max() > 0


def test_atari_victim_attack_step(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **random_weights())
    victim = specs.resolve(f"atari:{path}", SEAT_OBS, SEAT_ACT)
    obs = np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    result = parse_attack("fgsm:eps=1/255").step(victim, obs, deterministic=True)
    assert np.abs(result.delta).max() <= 1 / 255 + 1e-7 and result.attacked.all()


class _Counting(AtariCNNPolicy):
    """The Atari victim, counting the passes an attack makes through each forward."""

    def __init__(self, inner: AtariCNNPolicy):
        super().__init__(inner.net, inner.observation_space, inner.action_space)
        self.calls = {"forward": 0, "search": 0}

    def forward(self, x, state=None, episode_start=None):
        self.calls["forward"] += 1
        return super().forward(x, state, episode_start)

    def search_forward(self, x, state=None, episode_start=None):
        self.calls["search"] += 1
        return super().search_forward(x, state, episode_start)


def _counted(spec: str, obs: np.ndarray) -> tuple[dict, object]:
    from agents.atari_cnn import build_network

    net = build_network(random_weights(seed=5))
    victim = _Counting(AtariCNNPolicy(net, SEAT_OBS, SEAT_ACT))
    result = parse_attack(spec).step(victim, obs, deterministic=True)
    return victim.calls, result


@pytest.mark.parametrize(
    ("spec", "search", "forward"),
    [
        # random start: a clean pass, 10 search passes, the attacked decision
        ("pgd:eps=1/255,steps=10", 10, 2),
        ("pgd:eps=4/255,steps=3", 3, 2),
        # without a random start the first step is the clean pass itself
        ("pgd:eps=1/255,steps=10,random_start=false", 9, 2),
        # below the search resolution, and with precision=fp32: float32 throughout
        ("pgd:eps=0.001,steps=10", 0, 12),
        ("pgd:eps=1/255,steps=10,precision=fp32", 0, 12),
        # FGSM's only gradient is the clean pass
        ("fgsm:eps=1/255", 0, 2),
    ],
)
def test_pgd_searches_through_search_forward_only_where_it_resolves_eps(
    spec, search, forward, monkeypatch
):
    from agents import atari_cnn

    monkeypatch.setattr(atari_cnn, "native_bfloat16", lambda: True)  # as on any CPU
    obs = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    calls, _ = _counted(spec, obs)
    assert calls == {"forward": forward, "search": search}


def test_search_precision_never_reaches_the_victims_decisions(monkeypatch):
    """Clean actions are the float32 victim's; the attacked actions are the float32
    victim's on the returned input; the perturbation stays in the ball."""
    from agents import atari_cnn

    monkeypatch.setattr(atari_cnn, "native_bfloat16", lambda: True)
    obs = np.random.default_rng(1).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8)
    _, auto = _counted("pgd:eps=2/255,steps=5", obs)
    _, fp32 = _counted("pgd:eps=2/255,steps=5,precision=fp32", obs)
    assert np.array_equal(auto.clean_actions, fp32.clean_actions)
    from agents.atari_cnn import build_network

    victim = AtariCNNPolicy(build_network(random_weights(seed=5)), SEAT_OBS, SEAT_ACT)
    x = victim.input_from_obs(obs)
    acted, _ = victim.act_on_input(x + torch.as_tensor(auto.delta), deterministic=True)
    assert np.array_equal(acted, auto.actions)
    assert np.abs(auto.delta).max() <= 2 / 255 + 1e-6
    clean, _ = victim.act_on_input(x, deterministic=True)
    assert np.array_equal(clean, auto.clean_actions)


def test_search_forward_is_bfloat16_only_where_the_cpu_has_it(monkeypatch):
    from agents import atari_cnn
    from agents.atari_cnn import build_network

    victim = AtariCNNPolicy(build_network(random_weights(seed=6)), SEAT_OBS, SEAT_ACT)
    x = torch.rand((2, 4, 84, 84)).contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(atari_cnn, "native_bfloat16", lambda: False)
    plain, _ = victim.search_forward(x)
    exact, _ = victim.forward(x)
    assert torch.equal(plain.logits, exact.logits) and victim._search_net is None
    monkeypatch.setattr(atari_cnn, "native_bfloat16", lambda: True)
    low, _ = victim.search_forward(x.requires_grad_(True))
    assert victim._search_net is not None
    assert next(victim._search_net.parameters()).dtype == torch.bfloat16
    assert next(victim.net.parameters()).dtype == torch.float32  # the victim is untouched
    (grad,) = torch.autograd.grad(low.logits[:, 0].sum(), x)
    assert grad.dtype == torch.float32 and grad.abs().max() > 0
    assert torch.allclose(low.probs, exact.probs, atol=0.05)


def test_unknown_precision_names_the_valid_ones():
    with pytest.raises(ValueError, match="precision 'fp16'; valid: auto, fp32"):
        parse_attack("pgd:eps=1/255,precision=fp16")


# ---------------------------------------------------------------- sb3: CNN victims


class _FrameEnv(gym.Env):
    def __init__(self, shape):
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(6)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.mark.parametrize(
    ("algo", "shape"),
    [("PPO", (4, 84, 84)), ("PPO", (84, 84, 4)), ("A2C", (4, 84, 84)), ("DQN", (4, 84, 84))],
)
def test_sb3_cnn_victim_on_atari_seat(tmp_path, algo, shape):
    import stable_baselines3 as sb3

    from agents.networks import SmallCNN

    kwargs = {
        "features_extractor_class": SmallCNN,
        "features_extractor_kwargs": {"features_dim": 16},
    }
    if algo == "A2C":  # SB3's default Atari network (NatureCNN), as rl-zoo saves it
        model = sb3.A2C("CnnPolicy", _FrameEnv(shape), n_steps=4, seed=0, device="cpu")
    elif algo == "PPO":
        kwargs["net_arch"] = []
        model = sb3.PPO(
            "CnnPolicy",
            _FrameEnv(shape),
            n_steps=8,
            batch_size=8,
            policy_kwargs=kwargs,
            seed=0,
            device="cpu",
        )
    else:
        kwargs["net_arch"] = []
        model = sb3.DQN(
            "CnnPolicy",
            _FrameEnv(shape),
            buffer_size=10,
            learning_starts=0,
            policy_kwargs=kwargs,
            seed=0,
            device="cpu",
        )
    path = tmp_path / "cnn.zip"
    model.save(path)
    victim = specs.resolve(f"sb3:{path}", SEAT_OBS, SEAT_ACT)
    obs = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    ours, _ = victim.predict(obs, deterministic=True)
    theirs, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(ours, theirs)
    x = victim.input_from_obs(obs)
    assert x.shape == (3, 4, 84, 84) and float(x.max()) <= 1.0
    result = parse_attack("pgd:eps=2/255,steps=2").step(victim, obs, deterministic=True)
    assert np.abs(result.delta).max() <= 2 / 255 + 1e-7
    with pytest.raises(PolicySpecError, match="Discrete"):
        specs.resolve(f"sb3:{path}", SEAT_OBS, spaces.Discrete(4))


@pytest.mark.atari
def test_sb3_victim_through_the_arena(tmp_path):
    import stable_baselines3 as sb3

    from agents.networks import SmallCNN

    model = sb3.PPO(
        "CnnPolicy",
        _FrameEnv((4, 84, 84)),
        n_steps=8,
        batch_size=8,
        device="cpu",
        policy_kwargs={"features_extractor_class": SmallCNN, "net_arch": []},
    )
    path = tmp_path / "cnn.zip"
    model.save(path)
    result, records = run_match(
        "atari_pong_v0",
        {"player": f"sb3:{path}"},
        n_episodes=2,
        attacks={"player": "fgsm:eps=1/255"},
        record=True,
        env_kwargs={"max_episode_steps": 15},
    )
    seat = result.seats["player"]
    assert seat.flip_rate is not None and seat.attacked_fraction == 1.0
    assert seat.budget is not None and "(1/255) L∞ on the network input" in seat.budget
    rec = records[0]
    assert rec.observations["player"].dtype == np.uint8  # the clean frames
    assert rec.attack["player"]["clean_action"].shape == rec.actions["player"].shape
    assert records[0].attack["player"]["delta"].shape == (15, 4, 84, 84)


# ---------------------------------------------------------------- bad input at the CLI


@pytest.fixture
def pong_like_npz(tmp_path) -> dict[str, Path]:
    """Random-weight victims: one that fits Pong, one with 4 actions, one with 3 frames."""
    paths = {
        "fits": random_weights(),
        "actions": random_weights(n_actions=4),
        "frames": random_weights(in_channels=3),
    }
    out = {}
    for name, arrays in paths.items():
        out[name] = tmp_path / f"{name}.npz"
        np.savez(out[name], **arrays)
    return out


@pytest.mark.atari
@pytest.mark.parametrize(
    ("victim", "attack", "fragments"),
    [
        (
            "fits",
            "warp:eps=1",
            ["unknown attack 'warp'", "valid attacks: critic, fgsm, learned, mad, noise"],
        ),
        ("fits", "fgsm:bogus=1", ["unknown parameter 'bogus'", "valid parameters: eps"]),
        ("fits", "fgsm:eps=-1/255", ["eps=", "valid: 0 <= eps <= 1"]),
        ("fits", "pgd:eps=1.5", ["eps=1.5", "valid: 0 <= eps <= 1"]),
        ("fits", "pgd:steps=0", ["steps=0", "a positive integer, at most 1000"]),
        ("fits", "timed:steps=-1", ["steps=-1", "a positive integer"]),
        ("fits", "patch:size=85", ["larger than the 84×84 frame", "size <= 84"]),
        ("fits", "patch:size=8,row=80,col=0", ["leaves the 84×84 frame"]),
        ("random", "fgsm:eps=1/255", ["needs a differentiable victim", "RandomPolicy"]),
        ("random", "pgd:eps=1/255", ["needs a differentiable victim"]),
        ("actions", None, ["has 4 actions", "seat has 6 actions"]),
        ("frames", "fgsm:eps=1/255", ["frames of shape (3, 84, 84)", "Box(4, 84, 84)"]),
    ],
)
def test_bad_attack_input_is_one_line_exit_2(
    cli, tmp_path, pong_like_npz, victim, attack, fragments
):
    policy = "random" if victim == "random" else f"atari:{pong_like_npz[victim]}"
    args = ["evaluate", "atari_pong_v0", "--policy", f"player={policy}", "--episodes", "1"]
    if attack is not None:
        args += ["--attack", f"player={attack}"]
    result = cli(*args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arena: error: "), result.err
    assert all(f in lines[0] for f in fragments), lines[0]
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the real victims


@needs_data
@pytest.mark.atari
def test_pretrained_pong_loads_and_attack_flips():
    assert ATARI_DIR is not None
    env = envs.make("atari_pong_v0")
    victim = specs.resolve(
        f"atari:{ATARI_DIR / 'pong_ppo.npz'}",
        env.observation_space("player"),
        env.action_space("player"),
    )
    obs, _ = env.reset(seed=0)
    frames = []
    for _ in range(80):
        obs, *_ = env.step({"player": int(victim.predict(obs["player"], deterministic=True)[0])})
        frames.append(obs["player"])
    batch = np.stack(frames[-16:])
    torch.manual_seed(0)
    result = parse_attack("fgsm:eps=1/255").step(victim, batch, deterministic=True)
    assert (result.actions != result.clean_actions).mean() > 0.5


@needs_data
@pytest.mark.atari
@pytest.mark.slow
def test_pretrained_pong_scores():
    assert ATARI_DIR is not None
    spec = f"atari:{ATARI_DIR / 'pong_ppo.npz'}"
    clean, _ = run_match("atari_pong_v0", {"player": spec}, n_episodes=2)
    assert clean.seats["player"].mean_return >= 19
    attacked, _ = run_match(
        "atari_pong_v0", {"player": spec}, n_episodes=2, attacks={"player": "fgsm:eps=1/255"}
    )
    assert attacked.seats["player"].mean_return <= -19


# ---------------------------------------------------------------- the experiment


def test_huang2017_needs_victims(monkeypatch):
    from experiments import ExperimentError
    from experiments.huang2017_pong import main

    monkeypatch.delenv("ARENA_ATARI_DIR", raising=False)
    with pytest.raises(ExperimentError, match="ARENA_ATARI_DIR=../shared/atari"):
        main([])


@pytest.mark.atari
def test_huang2017_smoke(tmp_path):
    from experiments.huang2017_pong import main

    path = tmp_path / "victim.npz"
    np.savez(path, **random_weights())
    argv = [
        "--victims",
        str(path),
        "--eps",
        "0",
        "1/255",
        "--episodes",
        "1",
        "--max-steps",
        "10",
        "--runs",
        str(tmp_path / "runs"),
    ]
    assert main(argv) == 0
    (run,) = (tmp_path / "runs" / "huang2017_pong").iterdir()
    assert {
        "config.json",
        "metadata.json",
        "results.json",
        "results.csv",
        "table.txt",
        "score_vs_eps.png",
    } <= {p.name for p in run.iterdir()}
    assert (run / "score_vs_eps.png").stat().st_size > 1000


@pytest.mark.atari
def test_every_registered_rom_has_a_single_player_mode():
    import json
    from pathlib import Path

    import ale_py

    from envs.atari import TWO_PLAYER_ONLY, rom_names

    folder = Path(ale_py.__file__).parent / "roms"
    shipped = {n.rsplit(".", 1)[0] for n in json.loads((folder / "md5.json").read_text())}
    refused = {
        n for n in shipped if ale_py.ALEInterface.isSupportedROM(str(folder / f"{n}.bin")) is None
    }
    assert refused == TWO_PLAYER_ONLY
    assert set(rom_names()) == shipped - refused and len(rom_names()) > 100


@pytest.mark.atari
def test_a_two_player_only_rom_is_a_clean_error():
    from envs.atari.env import AtariEnv

    with pytest.raises(envs.EnvError, match="no single-player mode"):
        AtariEnv("combat")
    with pytest.raises(envs.EnvError, match="unknown env id"):
        envs.spec("atari_combat_v0")
