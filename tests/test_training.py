"""Adversary training on the toy game: it must work, resume, and refuse bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from arena.embedding import EmbeddedVecEnv, VictimEmbeddedEnv
from arena.match import run_match
from arena.training import (
    TrainingError,
    budget_steps,
    default_adversary_config,
    train_adversary,
)


@pytest.mark.parametrize(
    ("env_id", "seat", "frozen"),
    [
        ("toy_pass_v0", "blocker", {"runner": "random"}),
        ("toy_pass_v0", "runner", {}),
        ("toy_catch_v0", "player", {}),
    ],
)
def test_embedded_env_passes_the_checkers(env_id, seat, frozen):
    env = VictimEmbeddedEnv(env_id, seat, frozen)
    check_env(env, skip_render_check=True)
    sb3_check_env(VictimEmbeddedEnv(env_id, seat, frozen), warn=False)


@pytest.mark.mujoco
@pytest.mark.parametrize("env_id", [s.id for s in envs.list_specs() if "mujoco" in s.needs])
def test_embedded_env_passes_the_checkers_in_every_mujoco_game(env_id):
    seats = envs.spec(env_id).seats
    for learner, victim in ((seats[1], seats[0]), (seats[0], seats[1])):
        check_env(VictimEmbeddedEnv(env_id, learner, {victim: "random"}), skip_render_check=True)
    vec = EmbeddedVecEnv(env_id, seats[1], {seats[0]: "random"}, n_envs=2)
    obs = vec.reset()
    assert obs.shape == (2, *vec.observation_space.shape)
    vec.close()


def test_vec_env_batches_the_victim_and_matches_the_single_env(runner_zip):
    victim = f"sb3:{runner_zip}"
    from stable_baselines3.common.vec_env import VecMonitor

    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": victim}, n_envs=3, seed=10)
    vec = VecMonitor(game)  # episode statistics, as training has them
    single = VictimEmbeddedEnv("toy_pass_v0", "blocker", {"runner": victim})
    obs = vec.reset()
    first, _ = single.reset(seed=10)
    assert np.array_equal(obs[0], first)
    rng = np.random.default_rng(0)
    for _ in range(80):
        act = rng.uniform(-1, 1, size=(3, 2)).astype(np.float32)
        obs, rew, done, infos = vec.step(act)
        o1, r1, t1, tr1, _ = single.step(act[0])
        assert rew[0] == pytest.approx(r1)
        if t1 or tr1:
            assert done[0] and np.array_equal(infos[0]["terminal_observation"], o1)
            assert "episode" in infos[0] and "outcome" in infos[0]
            break
        assert np.array_equal(obs[0], o1)
    else:
        raise AssertionError("no episode ended")
    vec.close()


def test_the_budget_is_a_ceiling_of_whole_rollouts():
    """``--timesteps`` is the most a run steps: PPO learns from whole rollouts, so a run
    ends at the last one that fits (it used to end at the first past the budget: 5M
    with the default rollout of 32 x 512 ended at 5,013,504)."""
    rollout = 32 * 512
    assert budget_steps(5_000_000, 0, rollout) == 305 * rollout == 4_997_120
    # resumed from a checkpoint taken mid-rollout: whole rollouts from there, within 5M
    assert budget_steps(5_000_000, 1_950_624, rollout) == 186 * rollout
    assert 1_950_624 + 186 * rollout <= 5_000_000 < 1_950_624 + 187 * rollout
    # nothing fits any more: the run finishes without stepping (an older run that
    # overshot too)
    assert budget_steps(5_000_000, 4_990_000, rollout) == 0
    assert budget_steps(5_000_000, 5_013_504, rollout) == 0
    # a fresh run below one rollout still learns from one
    assert budget_steps(100, 0, 2048) == 2048
    assert budget_steps(2048, 0, 2048) == 2048 and budget_steps(4095, 0, 2048) == 2048


@pytest.mark.slow  # minutes on 2 cores: the fast tier keeps the small trainings
def test_toy_adversary_trained_on_150k_steps_beats_its_victim(tmp_path, runner_zip):
    victim = f"sb3:{runner_zip}"
    results = train_adversary(
        "toy_pass_v0",
        {"runner": victim},
        timesteps=150_000,
        out=tmp_path / "adv",
        seed=0,
        progress=False,
    )
    # the budget is a ceiling of whole rollouts (8 envs x 256 steps): 73 of them
    assert results["adversary_seat"] == "blocker" and results["timesteps"] == 149_504
    result, _ = run_match(
        "toy_pass_v0",
        {"runner": victim, "blocker": f"run:{tmp_path / 'adv'}"},
        n_episodes=100,
        seed=1,
    )
    assert result.seats["blocker"].win_rate >= 0.8, result.seats["blocker"]
    # the victim is fine against its normal opponent: the adversary made the difference
    normal, _ = run_match("toy_pass_v0", {"runner": victim}, n_episodes=50, seed=1)
    assert normal.seats["runner"].win_rate >= 0.95
    lines = (tmp_path / "adv" / "progress.csv").read_text().splitlines()
    assert lines[0].startswith("timesteps,win_rate") and len(lines) > 10
    assert list((tmp_path / "adv" / "tb").iterdir())


def test_bad_training_input(tmp_path, runner_zip):
    victim = {"runner": f"sb3:{runner_zip}"}
    with pytest.raises(TrainingError, match="positive integer"):
        train_adversary("toy_pass_v0", victim, timesteps=0, out=tmp_path / "a")
    with pytest.raises(Exception, match="valid seats: runner, blocker"):
        train_adversary("toy_pass_v0", {"goalie": "zero"}, timesteps=10, out=tmp_path / "a")
    with pytest.raises(TrainingError, match="not an adversary training run"):
        train_adversary("toy_pass_v0", victim, timesteps=10, out=tmp_path, resume=True)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="already exists"):
        train_adversary("toy_pass_v0", victim, timesteps=10, out=keep)
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    with pytest.raises(TrainingError, match="--envs"):
        default_adversary_config("toy_pass_v0", n_envs=0)
    with pytest.raises(TrainingError, match="--workers=-1 is out of range; valid: a non-negative"):
        default_adversary_config("toy_pass_v0", workers=-1)


def test_mujoco_defaults_are_the_papers_batch_over_worker_processes():
    config = default_adversary_config("you_shall_not_pass_v0")
    assert config.ppo.n_envs * config.ppo.n_steps == 16_384
    assert (config.ppo.batch_size, config.ppo.n_epochs, config.ppo.learning_rate) == (
        4096,
        4,
        3e-4,
    )
    assert config.workers == 2 and config.update_threads == 2
    assert (config.shaping, config.victim_value, config.anneal_fraction) == (100.0, 200.0, 0.5)
    solo = default_adversary_config("you_shall_not_pass_v0", workers=0, n_envs=8)
    assert solo.workers == 0 and solo.update_threads == 1
    assert solo.ppo.n_envs * solo.ppo.n_steps == 16_384


def _train_cmd(out, runner_zip, timesteps, *extra):
    return [
        sys.executable,
        "-m",
        "arena.cli",
        "train-adversary",
        "toy_pass_v0",
        "--victim",
        f"runner=sb3:{runner_zip}",
        "--timesteps",
        str(timesteps),
        "--out",
        str(out),
        *extra,
    ]


def test_resume_after_kill_loses_at_most_one_interval(tmp_path, runner_zip):
    out = tmp_path / "adv"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _train_cmd(out, runner_zip, 200_000, "--checkpoint-every", "8192"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 90
    while time.time() < deadline and not state.exists():
        time.sleep(0.2)
    assert state.exists(), "no checkpoint written"
    # a second training on the same directory is refused while the first runs
    busy = subprocess.run(
        _train_cmd(out, runner_zip, 200_000, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert busy.returncode == 2 and "in use by another training" in busy.stderr
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = json.loads(state.read_text())["timesteps"]
    assert saved >= 8192
    done = subprocess.run(
        _train_cmd(out, runner_zip, saved + 4096, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["timesteps"] >= saved + 4096
    assert results["timesteps"] - saved <= 2 * 4096 + 2048  # resumed, not restarted
    assert (out / "policy.zip").is_file() and (out / "policy_norm.npz").is_file()


@pytest.mark.slow  # minutes on 2 cores: the fast tier keeps the small trainings
def test_finetune_and_masked_victims(tmp_path, cli, runner_zip):
    victim = f"sb3:{runner_zip}"
    adv = tmp_path / "adv"
    train_adversary("toy_pass_v0", {"runner": victim}, timesteps=60_000, out=adv, progress=False)
    done = cli(
        "finetune-victim",
        "toy_pass_v0",
        "--victim",
        f"runner={victim}",
        "--adversary",
        f"run:{adv}",
        "--timesteps",
        "30000",
        "--out",
        tmp_path / "ft",
    )
    assert done.code == 0, done.err
    saved = json.loads((tmp_path / "ft" / "adversary_run.json").read_text())
    assert saved["adversary_seat"] == "runner" and saved["init"] == victim
    assert saved["config"]["norm_obs"] is False
    for spec in (f"run:{tmp_path / 'ft'}", f"masked:{victim}"):
        result, _ = run_match(
            "toy_pass_v0", {"runner": spec, "blocker": "zero"}, n_episodes=8, seed=0
        )
        assert result.episodes == 8
    bad = cli("evaluate", "toy_catch_v0", "--policy", f"player=masked:{victim}", "--episodes", "1")
    assert bad.code == 2 and "declares no opponent observation" in bad.err


_ASSETS = Path(__file__).parent.parent / "arena" / "assets"
SHIPPED_ADVERSARIES = sorted(
    p.name for p in _ASSETS.iterdir() if p.is_dir() and (p / "adversary_run.json").is_file()
)


def test_the_mujoco_games_have_shipped_adversaries():
    for name in (
        "you_shall_not_pass_v0__blocker",
        "kick_and_defend_v0__keeper",
        "sumo_humans_v0__fighter_1",
        "sumo_ants_v0__fighter_1",
    ):
        assert name in SHIPPED_ADVERSARIES


@pytest.mark.mujoco
@pytest.mark.parametrize("name", SHIPPED_ADVERSARIES)
def test_a_shipped_adversary_loads_and_plays_its_own_seat(cli, name):
    """Each ``arena/assets/<game>__<seat>``: under 2 MB, its configuration and training
    curve beside it, a ``run:DIR`` that plays its own seat against a zero opponent."""
    shipped = _ASSETS / name
    env_id, seat = name.split("__")
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 2_000_000
    run = json.loads((shipped / "adversary_run.json").read_text())
    assert run["env"] == env_id and run["adversary_seat"] == seat
    rows = (shipped / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("timesteps,") and int(rows[-1].split(",")[0]) > 1_000_000
    (other,) = [s for s in envs.spec(env_id).seats if s != seat]
    done = cli(
        "evaluate", env_id, "--policy", f"{other}=zero", "--policy", f"{seat}=run:{shipped}",
        "--episodes", "2", "--json", "--no-save",
    )  # fmt: skip
    assert done.code == 0, done.err
    seats = json.loads(done.out.strip().splitlines()[-1])["seats"]
    assert seats[seat]["wins"] + seats[seat]["losses"] + seats[seat]["ties"] == 2


def test_evaluation_curve_and_runtime_flags_across_a_resume(tmp_path):
    """Greedy evaluations land in evaluation.csv at every eval_every boundary; a resume
    may change runtime fields only, and continues the episode count of progress.csv."""
    import dataclasses

    from arena.artifacts.training_run import EVALUATION, TrainingRunFiles

    config = dataclasses.replace(
        default_adversary_config("toy_pass_v0"), checkpoint_every=4096, eval_episodes=6
    )
    out = tmp_path / "adv"
    victims = {"runner": "random"}
    # budgets that are not whole rollouts (8 envs x 256 steps) end at the last one within
    train_adversary(
        "toy_pass_v0",
        victims,
        timesteps=9000,
        out=out,
        config=config,
        progress=False,
        runtime={"eval_every": 4096},
    )
    rows = (out / "evaluation.csv").read_text().splitlines()
    assert rows[0] == ",".join(EVALUATION)
    assert [int(r.split(",")[0]) for r in rows[1:]] == [4096, 8192]
    assert all(int(r.split(",")[1]) == 6 for r in rows[1:])
    episodes = int((out / "progress.csv").read_text().splitlines()[-1].split(",")[2])
    with pytest.raises(TrainingError, match="only workers, update_threads"):
        train_adversary(
            "toy_pass_v0",
            victims,
            timesteps=12288,
            out=out,
            resume=True,
            runtime={"shaping": 1.0},
        )
    train_adversary(
        "toy_pass_v0",
        victims,
        timesteps=13000,
        out=out,
        resume=True,
        progress=False,
        runtime={"workers": 0, "eval_every": 4096},
    )
    marker = TrainingRunFiles(out).read_marker()
    assert marker.config.eval_every == 4096 and marker.config.shaping == 0.0  # recipe kept
    rows = (out / "evaluation.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [4096, 8192, 12288]
    last = (out / "progress.csv").read_text().splitlines()[-1].split(",")
    assert int(last[0]) == 12288 and int(last[2]) > episodes
    # best/: the evaluation with the highest win rate (the earliest of equals), whole
    scores = [(float(r.split(",")[2]), -int(r.split(",")[0])) for r in rows[1:]]
    win, step = max(scores)
    best = json.loads((out / "best" / "best.json").read_text())
    assert (best["win_rate"], best["timesteps"], best["episodes"]) == (win, -step, 6)
    assert sorted(p.name for p in (out / "best").iterdir()) == [
        "adversary_run.json", "best.json", "policy.zip", "policy_norm.npz"
    ]  # fmt: skip
    assert (out / "best" / "adversary_run.json").read_bytes() == (
        out / "adversary_run.json"
    ).read_bytes()
    result, _ = run_match(
        "toy_pass_v0", {"runner": "random", "blocker": f"run:{out / 'best'}"}, n_episodes=2
    )
    assert result.episodes == 2


def _run_for_best(tmp_path):
    """A training run opened for ``keep_best``, with two checkpoints' files to keep."""
    import dataclasses

    from arena.artifacts.training_run import RunMarker
    from arena.training_run import TrainingRun

    config = dataclasses.replace(default_adversary_config("toy_pass_v0"), eval_episodes=6)
    marker = RunMarker(
        env="toy_pass_v0", victims={"runner": "random"}, adversary_seat="blocker",
        seed=0, timesteps=10, config=config,
    )  # fmt: skip
    run = TrainingRun.create(tmp_path / "run", marker)
    run.__enter__()
    ckpt = {}
    for name in ("a", "b"):
        model = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(model, "w") as z:
            z.writestr("policy.pth", name)
            z.writestr("policy.optimizer.pth", "state")
        norm = tmp_path / f"{name}_norm.npz"
        norm.write_bytes(name.encode())
        ckpt[name] = (model, norm)
    return run, ckpt


def test_keep_best_swaps_whole_directories_and_recovers_from_a_kill(tmp_path):
    run, ckpt = _run_for_best(tmp_path)
    best = run.files.best

    def kept() -> tuple[str, float]:
        with zipfile.ZipFile(best / "policy.zip") as z:
            assert z.namelist() == ["policy.pth"]  # the optimizer state left out
            return z.read("policy.pth").decode(), run.files.best_score()["win_rate"]

    run.keep_best(*ckpt["a"], {"timesteps": 1, "episodes": 6, "win_rate": 0.5})
    assert kept() == ("a", 0.5)
    run.keep_best(*ckpt["b"], {"timesteps": 2, "episodes": 6, "win_rate": 0.5})
    assert kept() == ("a", 0.5)  # a tie keeps the earlier
    run.keep_best(*ckpt["b"], {"timesteps": 3, "episodes": 6, "win_rate": 0.4})
    assert kept() == ("a", 0.5)
    run.keep_best(*ckpt["b"], {"timesteps": 4, "episodes": 6, "win_rate": 0.6})
    assert kept() == ("b", 0.6)
    assert (best / "policy_norm.npz").read_bytes() == b"b"
    # a kill between the renames: no best/, the old one as .best.old, a half .best.new
    os.replace(best, run.files.directory / ".best.old")
    (run.files.directory / ".best.new").mkdir()
    run.keep_best(*ckpt["a"], {"timesteps": 5, "episodes": 6, "win_rate": 0.55})
    assert kept() == ("b", 0.6)  # put back, and still better
    assert sorted(p.name for p in run.files.directory.iterdir() if p.name.startswith(".best")) == []
    # a link planted as .best.old is removed, never what it leads to
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    (run.files.directory / ".best.old").symlink_to(outside)
    run.keep_best(*ckpt["a"], {"timesteps": 6, "episodes": 6, "win_rate": 0.9})
    assert kept() == ("a", 0.9) and (outside / "keep").read_text() == "mine"
    assert not (run.files.directory / ".best.old").exists()
    run.__exit__(None, None, None)


def test_a_run_whose_best_is_a_link_is_refused(tmp_path):
    from arena.training_run import TrainingRun

    run, _ = _run_for_best(tmp_path)
    run.__exit__(None, None, None)
    outside = tmp_path / "outside"
    outside.mkdir()
    run.files.best.symlink_to(outside)
    again = TrainingRun(run.files.directory, run.marker, resumed=True, created=False)
    with pytest.raises(TrainingError, match="best is a link"):
        again.__enter__()


def test_action_std_sets_the_initial_spread_and_is_part_of_the_recipe(cli, tmp_path, runner_zip):
    from conftest import assert_one_line_error

    from agents.sb3 import read_sb3_parameters

    out = tmp_path / "std"
    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}")
    done = cli(*base, "--timesteps", "2048", "--out", out, "--action-std", "0.2")
    assert done.code == 0, done.err
    config = json.loads((out / "adversary_run.json").read_text())["config"]
    assert config["ppo"]["log_std_init"] == pytest.approx(np.log(0.2))
    log_std = read_sb3_parameters(out / "policy.zip")["policy"]["log_std"]
    assert np.allclose(log_std.numpy(), np.log(0.2), atol=0.05)  # one update from 0.2
    bad = cli(*base, "--timesteps", "2048", "--out", tmp_path / "b", "--action-std", "0")
    assert_one_line_error(bad, "--action-std")
    again = cli(*base, "--timesteps", "4096", "--out", out, "--resume", "--action-std", "0.3")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--action-std")


def test_anneal_sets_how_long_the_dense_terms_last_and_is_part_of_the_recipe(
    cli, tmp_path, runner_zip
):
    from conftest import assert_one_line_error

    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
            "--timesteps", "6144", "--shaping", "5")  # fmt: skip
    weights = {}
    for anneal in ("0", "0.5"):
        out = tmp_path / f"a{anneal}"
        done = cli(*base, "--out", out, "--anneal", anneal)
        assert done.code == 0, done.err
        config = json.loads((out / "adversary_run.json").read_text())["config"]
        assert config["anneal_fraction"] == float(anneal)
        rows = (out / "progress.csv").read_text().splitlines()
        column = rows[0].split(",").index("shaping")
        weights[anneal] = [float(r.split(",")[column]) for r in rows[1:]]
    assert len(weights["0"]) == 3 and set(weights["0"]) == {5.0}  # never annealed
    assert weights["0.5"][0] < 5.0 and weights["0.5"][-1] == 0.0  # gone by half-way
    for bad in ("-0.1", "1.5", "nan"):
        refused = cli(*base, "--out", tmp_path / "bad", "--anneal", bad)
        assert_one_line_error(refused, "--anneal")
    again = cli(*base, "--out", tmp_path / "a0", "--resume", "--anneal", "0.5")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--anneal")


def test_ppo_settings_are_checked_and_part_of_the_recipe(cli, tmp_path, runner_zip):
    from conftest import assert_one_line_error

    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
            "--timesteps", "2048")  # fmt: skip
    out = tmp_path / "ppo"
    done = cli(*base, "--out", out, "--ppo", "n_epochs=3", "--ppo", "batch_size=256",
               "--ppo", "clip_range=0.1")  # fmt: skip
    assert done.code == 0, done.err
    ppo = json.loads((out / "adversary_run.json").read_text())["config"]["ppo"]
    assert (ppo["n_epochs"], ppo["batch_size"], ppo["extra"]) == (3, 256, {"clip_range": 0.1})
    for bad, words in (
        ("n_epochs=0", "out of range"),
        ("lr=1", "valid: n_epochs, batch_size"),
        ("batch_size=999999", "larger than a rollout"),
        ("gamma", "KEY=VALUE"),
    ):
        assert_one_line_error(cli(*base, "--out", tmp_path / "bad", "--ppo", bad), words)
    assert not (tmp_path / "bad").exists()
    again = cli(*base, "--out", out, "--resume", "--ppo", "n_epochs=4")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--ppo")


def test_flat_win_is_part_of_the_recipe_and_needs_a_goal_reward(cli, tmp_path, runner_zip):
    import dataclasses

    from conftest import assert_one_line_error

    from arena.rewards import FlatWin, reward_terms
    from arena.training import adversary_env

    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}")
    out = tmp_path / "toy"
    refused = cli(*base, "--timesteps", "2048", "--out", out, "--flat-win")
    assert_one_line_error(refused, "--flat-win needs a game with a goal reward", "toy_pass_v0")
    assert not out.exists()
    done = cli(*base, "--timesteps", "2048", "--out", out)
    assert done.code == 0, done.err
    again = cli(*base, "--timesteps", "4096", "--out", out, "--resume", "--flat-win")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--flat-win")
    config = default_adversary_config("you_shall_not_pass_v0")
    assert config.flat_win  # the default in the MuJoCo games
    assert not default_adversary_config("toy_pass_v0").flat_win
    config = dataclasses.replace(config, workers=0)
    config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, n_envs=2))
    venv = adversary_env("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, config,
                         seed=0, timesteps=1000)  # fmt: skip
    terms = reward_terms(venv.venv)
    assert [type(t) for t in terms if isinstance(t, FlatWin)] == [FlatWin]
    assert terms[0].goal == 1000.0 and terms[0].weight == 1.0
    venv.close()


def _small_rollouts(monkeypatch):
    """``train-adversary``'s default recipe as it is, with rollouts of 64 steps."""
    import dataclasses

    import arena.training

    real = arena.training.default_adversary_config

    def small(env_id, **kwargs):
        config = real(env_id, **kwargs)
        ppo = dataclasses.replace(config.ppo, n_envs=2, n_steps=32, batch_size=64)
        return dataclasses.replace(config, ppo=ppo, workers=0, update_threads=1)

    monkeypatch.setattr(arena.training, "default_adversary_config", small)


def test_victim_fall_is_part_of_the_recipe_and_needs_bodies(cli, tmp_path, runner_zip, monkeypatch):
    """``--victim-fall W`` weighs the term (f) in a MuJoCo game (the run file holds it, the
    trained env has the term, a resume may not change it); in a game without bodies it
    is refused in one line, nothing written."""
    import dataclasses

    from conftest import assert_one_line_error

    from arena.artifacts.training_config import AdversaryConfig, TrainingRunError
    from arena.rewards import VictimFall, reward_terms
    from arena.training import adversary_env

    toy = tmp_path / "toy"
    refused = cli("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
                  "--timesteps", "2048", "--out", toy, "--victim-fall", "100")  # fmt: skip
    assert_one_line_error(refused, "--victim-fall needs a game with bodies", "toy_pass_v0")
    assert not toy.exists()
    _small_rollouts(monkeypatch)
    out = tmp_path / "ysnp"
    base = ("train-adversary", "you_shall_not_pass_v0", "--victim", "runner=zero")
    done = cli(*base, "--timesteps", "64", "--out", out, "--victim-fall", "150")
    assert done.code == 0, done.err
    marker = json.loads((out / "adversary_run.json").read_text())
    assert marker["config"]["victim_fall"] == 150.0
    again = cli(*base, "--timesteps", "128", "--out", out, "--resume", "--victim-fall", "10")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--victim-fall")
    config = AdversaryConfig.from_json(marker["config"])
    config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, n_envs=2))
    venv = adversary_env("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, config,
                         seed=0, timesteps=1000)  # fmt: skip
    [term] = [t for t in reward_terms(venv.venv) if isinstance(t, VictimFall)]
    assert term.weight == 150.0
    venv.close()
    old = dict(marker["config"])
    del old["victim_fall"]  # a run file from before the term: none
    assert AdversaryConfig.from_json(old).victim_fall == 0.0
    bad = {**marker["config"], "victim_fall": -1.0}
    with pytest.raises(TrainingRunError, match="victim_fall"):
        AdversaryConfig.from_json(bad)


def test_no_flat_win_keeps_the_games_own_win_rewards(cli, tmp_path, monkeypatch):
    """``--no-flat-win`` turns the default off in a MuJoCo game; the run file says so and
    the trained env has no ``FlatWin`` term; ``--resume`` refuses it like any recipe flag."""
    import dataclasses

    from conftest import assert_one_line_error

    from arena.artifacts.training_config import AdversaryConfig
    from arena.rewards import FlatWin, reward_terms
    from arena.training import adversary_env

    _small_rollouts(monkeypatch)
    out = tmp_path / "ysnp"
    base = ("train-adversary", "you_shall_not_pass_v0", "--victim", "runner=zero")
    done = cli(*base, "--timesteps", "64", "--out", out, "--no-flat-win")
    assert done.code == 0, done.err
    marker = json.loads((out / "adversary_run.json").read_text())
    assert marker["config"]["flat_win"] is False
    config = AdversaryConfig.from_json(marker["config"])
    again = cli(*base, "--timesteps", "128", "--out", out, "--resume", "--flat-win")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--flat-win")
    again = cli(*base, "--timesteps", "128", "--out", out, "--resume", "--no-flat-win")
    assert_one_line_error(again, "--resume continues the run with its own recipe", "--flat-win")
    config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, n_envs=2))
    venv = adversary_env("you_shall_not_pass_v0", "blocker", {"runner": "zero"}, config,
                         seed=0, timesteps=1000)  # fmt: skip
    assert not [t for t in reward_terms(venv.venv) if isinstance(t, FlatWin)]
    venv.close()


def test_resume_refuses_a_seed_other_than_the_runs(cli, tmp_path, runner_zip):
    """``--seed`` on a resume was silently dropped (the run goes on with its own seed); a
    different one is refused in one line, the run untouched; the run's own is accepted."""
    from conftest import assert_one_line_error

    out = tmp_path / "run"
    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}")
    done = cli(*base, "--timesteps", "2048", "--out", out, "--seed", "3")
    assert done.code == 0, done.err
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for seed in ("0", "4"):
        refused = cli(*base, "--timesteps", "4096", "--out", out, "--resume", "--seed", seed)
        assert_one_line_error(refused, "trains with seed 3, not " + seed, "drop --seed")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    again = cli(*base, "--timesteps", "4096", "--out", out, "--resume", "--seed", "3")
    assert again.code == 0, again.err
    plain = cli(*base, "--timesteps", "6144", "--out", out, "--resume")
    assert plain.code == 0, plain.err
    assert json.loads((out / "adversary_run.json").read_text())["seed"] == 3


def test_resume_without_timesteps_goes_on_to_the_runs_own_budget(cli, tmp_path, runner_zip):
    """``--resume`` needs only what says where the run is: without ``--timesteps`` it
    trains on to the budget on record. A new run without a budget, or a resume of a run
    file that has none (made before runs kept one), is refused in one line, nothing
    written."""
    from conftest import assert_one_line_error

    out = tmp_path / "run"
    base = ("train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}")
    refused = cli(*base, "--out", out)
    assert_one_line_error(refused, "give the budget: --timesteps N")
    assert not out.exists()
    done = cli(*base, "--timesteps", "2048", "--out", out, "--checkpoint-every", "2048")
    assert done.code == 0, done.err
    # as if the run had been given 6,144 steps and stopped at its checkpoint of 2,048
    marker = out / "adversary_run.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "timesteps": 6144}))
    again = cli(*base, "--out", out, "--resume", "--workers", "0")
    assert again.code == 0, again.err
    assert json.loads(again.out.strip().splitlines()[-1])["timesteps"] == 6144
    assert "resuming" in again.err and "2,048 steps" in again.err
    del data["timesteps"]
    marker.write_text(json.dumps(data))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    old = cli(*base, "--out", out, "--resume")
    assert_one_line_error(old, "the run has no budget on record", "give --timesteps N")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
