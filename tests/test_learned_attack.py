"""The learned perturbation adversary: the actor moves the victim towards the director's
target within ε; train-perturber trains, resumes and loads back as learned:DIR."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error
from gymnasium import spaces

from agents.attacks import parse_attack
from agents.attacks.base import PerturbationBudget
from agents.attacks.learned import director_space, perturb_towards
from agents.sb3 import sb3_victim


@pytest.fixture(scope="module")
def runner(runner_zip):
    import envs

    game = envs.make("toy_pass_v0")
    return sb3_victim(runner_zip, game.observation_space("runner"), game.action_space("runner"))


def test_the_actor_pulls_the_victim_towards_the_target_within_eps(runner):
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (16, *runner.observation_space.shape)).astype(np.float32)
    x = runner.input_from_obs(obs)
    space = director_space(runner.action_space)
    assert space.shape == runner.action_space.shape
    target = np.tile(np.array([[1.0, -1.0]], np.float32), (16, 1))  # a corner of the box
    budget = PerturbationBudget(eps=0.5)
    x_adv = perturb_towards(runner, x, target, budget=budget, steps=20, generator=torch.Generator())
    assert float((x_adv - x).abs().max()) <= 0.5 + 1e-6
    with torch.no_grad():
        before = runner.forward(x)[0].mean
        after = runner.forward(x_adv)[0].mean
    goal = torch.tensor([1.0, -1.0])  # the box is [-1, 1]^2
    assert float(((after - goal) ** 2).sum(1).mean()) < float(((before - goal) ** 2).sum(1).mean())
    same = perturb_towards(runner, x, target, budget=PerturbationBudget(eps=0.0), steps=5,
                           generator=torch.Generator())  # fmt: skip
    assert torch.equal(same, x)


def test_discrete_directions_target_the_preferred_action():
    assert director_space(spaces.Discrete(6)).shape == (6,)


def test_train_perturber_trains_resumes_and_attacks(cli, tmp_path, runner_zip):
    out = tmp_path / "pert"
    args = ("train-perturber", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
            "--opponent", "blocker=zero", "--eps", "0.3", "--steps", "3", "--envs", "4",
            "--out", out)  # fmt: skip
    out.mkdir()
    (out / ".lock").touch()  # what a run that failed to start leaves: it may start again
    first = cli(*args, "--timesteps", "1024")
    assert first.code == 0, first.err
    marker = json.loads((out / "perturber_run.json").read_text())
    assert (marker["eps"], marker["steps"], marker["opponents"]) == (0.3, 3, {"blocker": "zero"})
    more = cli(*args, "--timesteps", "2048", "--resume")
    assert more.code == 0, more.err
    assert json.loads((out / "results.json").read_text())["timesteps"] >= 2048
    # a run of 4096 stopped at 2048 (as a kill leaves it): --resume alone trains on to 4096
    (out / "perturber_run.json").write_text(json.dumps({**marker, "timesteps": 4096}))
    rest = cli(*args, "--resume")
    assert rest.code == 0, rest.err
    assert json.loads((out / "results.json").read_text())["timesteps"] >= 4096
    attack = parse_attack(f"learned:{out}")
    assert attack.budget.eps == 0.3 and attack.steps == 3
    assert parse_attack(f"learned:{out},eps=0.1,steps=2").budget.eps == 0.1
    played = cli("evaluate", "toy_pass_v0", "--policy", f"runner=sb3:{runner_zip}", "--policy",
                 "blocker=zero", "--attack", f"runner=learned:{out}", "--episodes", "4",
                 "--json", "--no-save")  # fmt: skip
    assert played.code == 0, played.err
    again = cli(*args, "--timesteps", "1024")
    assert_one_line_error(again, "--out")
    fresh = cli(*args[:-1], tmp_path / "fresh")  # a new run has no budget on record
    assert_one_line_error(fresh, "give the budget: --timesteps N")
    assert fresh.code == 2 and not (tmp_path / "fresh").exists()


def test_perturber_refusals(cli, tmp_path, runner_zip):
    base = ("train-perturber", "toy_pass_v0", "--eps", "0.1", "--timesteps", "64")
    assert_one_line_error(
        cli(
            *base,
            "--victim",
            "runner=random",
            "--opponent",
            "blocker=zero",
            "--out",
            tmp_path / "a",
        ),
        "no network to perturb",
    )
    assert not (tmp_path / "a").exists()
    assert_one_line_error(
        cli(*base, "--victim", f"nobody=sb3:{runner_zip}", "--out", tmp_path / "b"), "nobody"
    )
    assert_one_line_error(
        cli(*base, "--victim", f"runner=sb3:{runner_zip}", "--eps", "2", "--out", tmp_path / "c"),
        "eps",
    )
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "perturber_run.json").write_text('{"env": 1}')
    with pytest.raises(Exception, match="must hold exactly the keys"):
        parse_attack(f"learned:{tmp_path / 'fake'}")
    with pytest.raises(Exception, match="not a train-perturber run"):
        parse_attack(f"learned:{tmp_path}")
    with pytest.raises(Exception, match="unknown parameter 'x'"):
        parse_attack(f"learned:{tmp_path},x=1")


def test_scorecard_families_l2_radius_and_the_learned_family(cli, tmp_path, runner_zip):
    from agents.attacks import parse_attack
    from arena.scorecard import FAMILIES, family_attack

    l2 = next(f for f in FAMILIES if f.name == "pgd-l2")
    spec = family_attack(l2, "1/255", 84 * 84 * 4)
    assert spec == "pgd:eps=0.658824,steps=10,norm=l2"  # 168 / 255
    assert parse_attack(spec).budget.norm == "l2"
    with pytest.raises(Exception, match="0 <= eps <= 1"):
        parse_attack("pgd:eps=1.5")  # L∞ stays on [0, 1]
    out = tmp_path / "pert"
    trained = cli("train-perturber", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
                  "--opponent", "blocker=zero", "--eps", "0.2", "--timesteps", "256",
                  "--steps", "2", "--envs", "16", "--out", out)  # fmt: skip
    assert trained.code == 0, trained.err
    wrong = cli("scorecard", "toy_catch_v0", "--victim", "player=zero", "--learned", out,
                "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(wrong, "attacks toy_pass_v0 seat 'runner'")
    assert not (tmp_path / "sc").exists()
    missing = cli("scorecard", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
                  "--learned", tmp_path, "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(missing, "--learned", "not a train-perturber run")


def test_a_director_for_small_frames(cli, tmp_path):
    """A pixel victim of 24×24 frames (too small for NatureCNN): the director gets the
    small CNN, trains, and plays as ``learned:DIR``."""
    from conftest import ASSETS

    out = tmp_path / "catch"
    victim = f"player=sb3:{ASSETS / 'toy_catch_v0__player.zip'}"
    done = cli("train-perturber", "toy_catch_v0", "--victim", victim, "--eps", "0.05",
               "--steps", "2", "--envs", "16", "--timesteps", "256", "--out", out)  # fmt: skip
    assert done.code == 0, done.err
    played = cli("evaluate", "toy_catch_v0", "--policy", victim, "--attack",
                 f"player=learned:{out}", "--episodes", "1", "--no-save")  # fmt: skip
    assert played.code == 0, played.err


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_the_batched_actor_plays_the_same_game(runner_zip, monkeypatch, eps):
    """``batched_perturbers`` runs the actor once per step on every environment's row;
    with no budget the games are those of SB3's own ``DummyVecEnv`` step for step,
    resets, rewards and outcomes included (to float rounding: the victim runs on a batch)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from arena.perturber import PerturberEnv, batched_perturbers

    budget = PerturbationBudget(eps=eps)

    def thunk():
        return PerturberEnv("toy_pass_v0", "runner", f"sb3:{runner_zip}", {"blocker": "random"},
                            budget, 3, deterministic=True)  # fmt: skip

    calls: list[int] = []
    actions = PerturberEnv.victim_actions

    def spy(self, observations, directions):
        calls.append(len(observations))
        return actions(self, observations, directions)

    monkeypatch.setattr(PerturberEnv, "victim_actions", spy)
    batched, plain = batched_perturbers([thunk] * 3), DummyVecEnv([thunk] * 3)
    for venv in (batched, plain):
        venv.seed(5)
    a, b = batched.reset(), plain.reset()
    rng = np.random.default_rng(0)
    dones = 0
    for _ in range(60):
        directions = rng.uniform(-1, 1, (3, *batched.action_space.shape)).astype(np.float32)
        calls.clear()
        a, ra, da, ia = batched.step(directions)
        assert calls == [3]  # one actor call for the three games
        b, rb, db, ib = plain.step(directions)
        if eps == 0.0:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # a batch of 3 vs 1 row
            np.testing.assert_allclose(ra, rb, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(da, db)
            assert [i.get("outcome") for i in ia] == [i.get("outcome") for i in ib]
        dones += int(da.sum())
    assert dones > 0  # resets were crossed


@pytest.mark.slow
def test_the_shipped_director_is_stronger_than_pgd_and_mad_on_the_catcher():
    """The learned adversary shipped for the toy catcher (ε = 0.05, 150k steps) against
    PGD-10 and MAD-10 at the same ε, same games: the catcher scores least under it."""
    from conftest import ASSETS

    from arena.match import run_match

    victim = {"player": f"sb3:{ASSETS / 'toy_catch_v0__player.zip'}"}
    director = ASSETS / "perturbers" / "toy_catch_v0__player"
    scores = {
        name: run_match("toy_catch_v0", victim, n_episodes=20, attacks={"player": spec})[0]
        .seats["player"]
        .mean_return
        for name, spec in {
            "learned": f"learned:{director}",
            "pgd": "pgd:eps=0.05,steps=10",
            "mad": "mad:eps=0.05,steps=10",
        }.items()
    }
    assert scores["learned"] < scores["pgd"] - 1 and scores["learned"] < scores["mad"] - 1, scores
