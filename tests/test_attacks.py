"""Property tests of the observation attacks on a tiny fixed torch network (fast tier)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import distributions as D
from torch import nn

from agents.attacks import AttackSpecError, parse_attack
from agents.attacks.base import PerturbationBudget
from agents.attacks.gradient import FGSM, PGD
from agents.attacks.timed import preference
from agents.attacks.universal import Universal
from agents.policies import RandomPolicy, TorchPolicy

SHAPE = (2, 12, 12)
N_ACTIONS = 4


class TinyPixelPolicy(TorchPolicy):
    """A fixed random conv net on (2, 12, 12) uint8 frames; input on [0, 1]."""

    input_low = 0.0
    input_high = 1.0

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, N_ACTIONS)
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.observation_space = spaces.Box(0, 255, SHAPE, np.uint8)
        self.action_space = spaces.Discrete(N_ACTIONS)

    def input_from_obs(self, observation):
        return torch.as_tensor(np.asarray(observation), dtype=torch.float32) / 255.0

    def obs_from_input(self, x):
        return np.clip(np.rint(x.detach().numpy() * 255.0), 0, 255).astype(np.uint8)

    def forward(self, x, state=None, episode_start=None):
        return D.Categorical(logits=self.net(x)), None


@pytest.fixture
def victim() -> TinyPixelPolicy:
    return TinyPixelPolicy()


@pytest.fixture
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, size=(16, *SHAPE), dtype=np.uint8)
    obs[:2, :, :3] = 0  # some pixels at the edges of the valid range
    obs[2:4, :, :3] = 255
    return obs


GRADIENT_SPECS = [
    "fgsm:eps=2/255",
    "fgsm:eps=0.05,norm=l2",
    "pgd:eps=2/255,steps=5",
    "pgd:eps=0.05,norm=l2,steps=5",
    "pgd:eps=2/255,steps=3,target=1",
    "noise:eps=2/255",
    "noise:eps=0.05,norm=l2",
    "timed:eps=2/255,beta=0.0",
    "universal:eps=2/255,fit_steps=1,iters=5",
]


def _norm(delta: np.ndarray, norm: str) -> np.ndarray:
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.linalg.norm(flat, axis=1)


def _run(attack, victim, obs, steps: int = 1):
    attack.reset(seed=3)
    x = victim.input_from_obs(obs)
    for _ in range(steps):
        result = attack.step(victim, obs, None, np.zeros(len(obs), bool), True)
    return x, result


@pytest.mark.parametrize("spec", GRADIENT_SPECS)
def test_stays_in_ball_and_valid_range(spec, victim, frames):
    attack = parse_attack(spec)
    x, result = _run(attack, victim, frames, steps=2)
    norm = attack.budget.norm
    assert (_norm(result.delta, norm) <= attack.budget.eps * (1 + 1e-5) + 1e-7).all()
    x_adv = x.numpy() + result.delta
    assert x_adv.min() >= -1e-7 and x_adv.max() <= 1 + 1e-7
    assert result.delta.shape == x.shape and result.delta.dtype == np.float32
    assert result.actions.shape == (len(frames),)


@pytest.mark.parametrize(
    "spec", ["fgsm", "pgd", "pgd:norm=l2", "noise", "timed:beta=0", "universal:fit_steps=1"]
)
def test_eps_zero_is_identity(spec, victim, frames):
    name, _, rest = spec.partition(":")
    attack = parse_attack(f"{name}:eps=0" + (f",{rest}" if rest else ""))
    _, result = _run(attack, victim, frames, steps=2)  # universal: fits δ on step 1
    assert result.attacked.all()
    assert np.array_equal(result.delta, np.zeros_like(result.delta))
    assert np.array_equal(result.actions, result.clean_actions)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_step_pgd_without_random_start_is_fgsm(norm, victim, frames):
    eps = 3 / 255 if norm == "linf" else 0.1
    x = victim.input_from_obs(frames)
    fgsm, _ = FGSM(PerturbationBudget(eps, norm)).perturb(victim, x)
    pgd, _ = PGD(PerturbationBudget(eps, norm), steps=1, random_start=False).perturb(victim, x)
    if norm == "linf":
        assert torch.equal(fgsm, pgd)
    else:
        assert torch.allclose(fgsm, pgd, atol=1e-6)


@pytest.mark.parametrize(
    "spec",
    [
        "fgsm:eps=2/255",
        "pgd:eps=2/255,steps=3",
        "patch:size=3",
        "timed:eps=2/255,beta=0",
        "universal:fit_steps=1,iters=3",
    ],
)
@pytest.mark.parametrize("train_mode", [False, True])
def test_victim_untouched(spec, train_mode, victim, frames):
    victim.net.train(train_mode)
    before = {k: v.clone() for k, v in victim.net.state_dict().items()}
    _run(parse_attack(spec), victim, frames, steps=2)
    after = victim.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in victim.net.parameters())
    assert all(m.training == train_mode for m in victim.net.modules())
    assert all(p.requires_grad for p in victim.net.parameters())


def test_fgsm_flips_actions_and_beats_noise(victim, frames):
    _, adv = _run(parse_attack("fgsm:eps=8/255"), victim, frames)
    _, noise = _run(parse_attack("noise:eps=8/255"), victim, frames)
    adv_flips = (adv.actions != adv.clean_actions).mean()
    noise_flips = (noise.actions != noise.clean_actions).mean()
    assert adv_flips > 0.5 and adv_flips > noise_flips


def test_pgd_at_least_as_strong_as_fgsm(victim, frames):
    x = victim.input_from_obs(frames)
    clean = victim.distribution(x).logits.argmax(-1)

    def clean_logp(spec):
        x_adv, _ = parse_attack(spec).perturb(victim, x)
        return victim.distribution(x_adv).log_prob(clean).detach()

    fgsm = clean_logp("fgsm:eps=2/255")
    pgd = clean_logp("pgd:eps=2/255,steps=10,random_start=false")
    assert pgd.mean() <= fgsm.mean() + 1e-6


@pytest.mark.parametrize("target", [0, 2])
def test_targeted_pgd_reaches_target(target, victim, frames):
    attack = parse_attack(f"pgd:eps=0.3,steps=20,target={target}")
    _, result = _run(attack, victim, frames)
    assert (result.actions == target).mean() >= 0.9


def test_targeted_worst(victim, frames):
    x = victim.input_from_obs(frames)
    worst = victim.distribution(x).logits.argmin(-1).detach().numpy()
    _, result = _run(parse_attack("pgd:eps=0.3,steps=20,target=worst"), victim, frames)
    assert (result.actions == worst).mean() >= 0.9


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_noise_has_the_norm(norm, victim):
    obs = np.full((4, *SHAPE), 128, np.uint8)  # interior: no clamping
    eps = 2 / 255 if norm == "linf" else 0.05
    attack = parse_attack(f"noise:eps={eps},norm={norm}")
    assert not attack.needs_gradient
    _, result = _run(attack, victim, obs)
    np.testing.assert_allclose(_norm(result.delta, norm), eps, rtol=1e-4)
    if norm == "linf":
        np.testing.assert_allclose(np.abs(result.delta), eps, rtol=1e-4)
    # two resets with the same seed: the same noise
    _, again = _run(attack, victim, obs)
    assert np.array_equal(result.delta, again.delta)


def test_timed_mask_follows_preference(victim, frames):
    x = victim.input_from_obs(frames)
    c = preference(victim.distribution(x)).detach().numpy()
    beta = float(np.median(c))
    attack = parse_attack(f"timed:eps=4/255,beta={beta}")
    _, result = _run(attack, victim, frames)
    assert np.array_equal(result.attacked, c >= beta)
    assert 0 < result.attacked.sum() < len(frames)
    assert np.all(result.delta[~result.attacked] == 0)
    assert np.all(np.abs(result.delta[result.attacked]).max(axis=(1, 2, 3)) > 0)
    beta = float(np.sort(c)[-1])  # only the most decided frame(s)
    _, few = _run(parse_attack(f"timed:eps=4/255,beta={beta}"), victim, frames)
    assert np.array_equal(few.attacked, c >= beta)
    unattacked = ~few.attacked
    assert np.array_equal(few.actions[unattacked], few.clean_actions[unattacked])


@pytest.mark.parametrize("spec", ["patch:size=3", "patch:size=4,row=2,col=5,steps=3"])
def test_patch_changes_only_a_square(spec, victim, frames):
    attack = parse_attack(spec)
    k = attack.size
    assert attack.budget.norm == "l0" and attack.budget.eps == k * k
    _, result = _run(attack, victim, frames)
    changed = (result.delta != 0).any(axis=1)  # (B, H, W): any channel
    for i, m in enumerate(changed):
        rows, cols = np.nonzero(m)
        assert len(rows) > 0, f"sample {i}: the patch changed nothing"
        assert rows.max() - rows.min() < k and cols.max() - cols.min() < k
        if "row=" in spec:
            assert rows.min() >= 2 and rows.max() < 2 + k and cols.min() >= 5
    assert (result.actions != result.clean_actions).mean() > 0


def test_round_gives_valid_pixels(victim, frames):
    _, result = _run(parse_attack("fgsm:eps=2/255,round=true"), victim, frames)
    x_adv = victim.input_from_obs(frames).numpy() + result.delta
    np.testing.assert_allclose(x_adv * 255, np.rint(x_adv * 255), atol=1e-4)
    # below one gray level, rounding erases the attack
    _, tiny = _run(parse_attack("fgsm:eps=0.001,round=true"), victim, frames)
    assert not tiny.delta.any()


def test_universal_on_the_fly(victim, frames):
    attack = parse_attack("universal:eps=4/255,fit_steps=2,iters=10")
    attack.reset(seed=0)
    masks = [attack.step(victim, frames, None, None, True).attacked for _ in range(4)]
    assert not masks[0].any() and not masks[1].any() and masks[2].all() and masks[3].all()
    delta = attack.step(victim, frames, None, None, True).delta
    assert np.allclose(delta[0], delta[1:], atol=1e-6) or np.all(  # one δ (up to clamping)
        np.abs(delta).max(axis=(1, 2, 3)) <= 4 / 255 + 1e-7
    )
    attack.reset(seed=0)
    assert attack.delta is None


def test_universal_from_record(tmp_path, victim, frames):
    from arena.attacks import build_attack  # records are the arena's: it reads the frames
    from arena.recording import EpisodeRecord, RecordManifest, write_record

    acts, rews = {"player": np.zeros(15, np.int64)}, {"player": np.zeros(15)}
    episode = EpisodeRecord(0, 0, {"player": frames}, acts, rews)
    write_record(tmp_path / "rec", RecordManifest("toy_catch_v0", ("player",)), [episode])
    attack = build_attack(f"universal:eps=4/255,frames={tmp_path / 'rec'},iters=10")
    assert isinstance(attack, Universal)
    x, result = _run(attack, victim, frames[:4])
    assert result.attacked.all()
    interior = (x.numpy() > 5 / 255) & (x.numpy() < 250 / 255)
    fitted = np.broadcast_to(attack.delta.numpy(), result.delta.shape)
    np.testing.assert_allclose(result.delta[interior], fitted[interior], atol=1e-6)
    assert np.abs(attack.delta.numpy()).max() > 0


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            "nope:eps=1",
            "valid attacks: critic, fgsm, learned, mad, noise, patch, pgd, timed, universal",
        ),
        ("fgsm:eps=-0.1", "valid: 0 <= eps <= 1"),
        ("fgsm:eps=1.5", "valid: 0 <= eps <= 1"),
        ("fgsm:eps=abc", "eps must be a number"),
        ("fgsm:bogus=1", "valid parameters: eps, norm, target, round"),
        ("fgsm:norm=l3", "valid: linf, l2"),
        ("pgd:steps=0", "steps=0 is out of range; valid: a positive integer, at most 1000"),
        ("pgd:steps=-2", "a positive integer"),
        ("timed:beta=2", "beta"),
        ("patch:size=0", "size=0 is out of range; valid: a positive integer"),
        ("universal:eps=1/255", "frames=RECORD_DIR or fit_steps=N"),
        ("pgd:target=left", "action index or 'worst'"),
    ],
)
def test_bad_specs(spec, words):
    with pytest.raises(AttackSpecError, match=None) as info:
        parse_attack(spec)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_patch_larger_than_frame(victim, frames):
    with pytest.raises(AttackSpecError, match="larger than the 12×12 frame"):
        _run(parse_attack("patch:size=13"), victim, frames)
    with pytest.raises(AttackSpecError, match="leaves the 12×12 frame"):
        _run(parse_attack("patch:size=4,row=10,col=0"), victim, frames)


def test_target_out_of_range(victim, frames):
    with pytest.raises(AttackSpecError, match="0 <= target < 4"):
        _run(parse_attack("fgsm:target=9"), victim, frames)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "timed", "patch"])
def test_gradient_attack_on_random_victim(name):
    rnd = RandomPolicy(spaces.Box(0, 255, SHAPE, np.uint8), spaces.Discrete(3), seed=0)
    with pytest.raises(AttackSpecError, match="needs a differentiable victim"):
        parse_attack(name).step(rnd, np.zeros((1, *SHAPE), np.uint8))


def test_noise_on_random_victim_says_why():
    rnd = RandomPolicy(spaces.Box(0, 255, SHAPE, np.uint8), spaces.Discrete(3), seed=0)
    with pytest.raises(AttackSpecError, match="network input defines ε's scale"):
        parse_attack("noise").step(rnd, np.zeros((1, *SHAPE), np.uint8))


def test_budget_describes_units():
    text = parse_attack("fgsm:eps=1/255").budget.describe()
    assert "1/255" in text and "L∞" in text and "network input" in text
    assert "not rounded" in parse_attack("fgsm:eps=0.001").describe()
    assert "rounded to valid pixels" in parse_attack("fgsm:eps=0.001,round=true").describe()
    assert "L2" in parse_attack("pgd:eps=0.5,norm=l2").describe()
    assert "pixels L0" in parse_attack("patch:size=4").describe()


def test_fgsm_refuses_a_continuous_victim_where_it_would_move_nothing(cli):
    """Was silent: FGSM's one step starts at a Gaussian's mode, where the untargeted
    gradient is zero, so ``evaluate`` reported an attack that never perturbed anything."""
    from conftest import assert_one_line_error

    from arena.pretrained import shipped

    runner = f"runner=sb3:{shipped('toy_pass_v0__runner.zip')}"
    for spec in ("fgsm", "fgsm:eps=0.3,norm=l2"):
        refused = cli("evaluate", "toy_pass_v0", "--policy", runner, "--policy", "blocker=zero",
                      "--attack", f"runner={spec}", "--episodes", "1", "--no-save")  # fmt: skip
        assert_one_line_error(refused, "fgsm moves nothing on a victim with continuous actions",
                              "pgd (random start), mad, critic, noise")  # fmt: skip
    done = cli("evaluate", "toy_pass_v0", "--policy", runner, "--policy", "blocker=zero",
               "--attack", "runner=pgd:eps=0.3", "--episodes", "1", "--no-save")  # fmt: skip
    assert done.code == 0, done.err
