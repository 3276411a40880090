"""Experiments run through `arena run` and produce their tables and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arena.artifacts import LineChart, RunResults, Score
from arena.embedding import EmbeddedVecEnv
from arena.rewards import GameShaping, LinearAnneal, VictimValue


def _results(run: Path) -> tuple[dict, RunResults]:
    """A run's ``results.json`` as written (typed: it has a schema version) and read."""
    data = json.loads((run / "results.json").read_text())
    assert data["schema_version"] == RunResults.SCHEMA_VERSION
    return data, RunResults.from_json(data)


def test_list_names_every_experiment(cli):
    done = cli("run", "list")
    assert done.code == 0
    for name in ("defences", "gleave2020", "huang2017_pong", "zoo_fidelity"):
        assert name in done.out


def test_gleave2020_quick_structure(cli, tmp_path):
    done = cli(
        "run",
        "gleave2020",
        "--quick",
        "--timesteps",
        "8192",
        "--episodes",
        "8",
        "--workers",
        "1",
        "--runs",
        tmp_path / "runs",
    )
    assert done.code == 0, done.err
    assert "masked victim vs adversary" in done.out and "normal victim vs zero" in done.out
    run = next((tmp_path / "runs" / "gleave2020").iterdir())
    _, results = _results(run)
    rows = results.table("Victim win rates on toy_pass_v0")
    assert len(rows.rows) == 8
    labels, rates = rows.column("victim vs opponent"), rows.column("win rate [95% CI]")
    scores = dict(zip(labels, rates, strict=True))
    assert all(isinstance(s, Score) and s.ci95 is not None for s in scores.values())
    # the finding: the normal victim vs the adversary beside the baselines, masked beside
    headline = results.headline
    assert headline is not None and headline.highlight == (0,)
    assert headline.column("victim vs") == ("adversary", "normal opponent", "random", "zero")
    for kind in ("normal", "masked"):
        column = headline.column(f"{kind} victim win rate [95% CI]")
        for opponent, score in zip(headline.column("victim vs"), column, strict=True):
            assert score == scores[f"{kind} victim vs {opponent}"]
    assert (run / "toy_pass_training.png").stat().st_size > 1000
    (sample,) = results.samples
    assert sample.label == "normal victim vs adversary" and sample.env == "toy_pass_v0"
    assert sample.policies["blocker"].startswith(f"run:{run}")


def test_gleave2020_reward_study_compares_every_variant(cli, tmp_path):
    from experiments.gleave2020 import NO_DENSE_TERMS, REWARD_VARIANTS

    done = cli(
        "run",
        "gleave2020",
        "--quick",
        "--reward-study",
        "--timesteps",
        "4096",
        "--episodes",
        "4",
        "--workers",
        "1",
        "--runs",
        tmp_path / "runs",
    )
    assert done.code == 0, done.err
    run = next((tmp_path / "runs" / "gleave2020").iterdir())
    _, results = _results(run)
    finals = results.headline
    assert finals is not None and finals.title.endswith("against each final adversary")
    assert finals.column("reward variant") == tuple(REWARD_VARIANTS)
    runs = dict(results.table("toy_pass: training runs").rows)
    (curves,) = [f for f in results.figures if isinstance(f, LineChart)]
    assert [s.label for s in curves.series] == list(REWARD_VARIANTS)
    for series, row in zip(curves.series, finals.rows, strict=True):
        label = series.label
        assert series.x and series.x[-1] >= 4096, label
        config = json.loads((Path(str(runs[label])) / "adversary_run.json").read_text())["config"]
        for term, weight in {**NO_DENSE_TERMS, **REWARD_VARIANTS[label]}.items():
            if term == "action_std":
                assert config["ppo"]["log_std_init"] == pytest.approx(np.log(weight)), label
            else:
                assert config[term] == weight, (label, term)
        counts = dict(zip(finals.columns, row, strict=True))
        assert sum(counts[k] for k in ("wins", "losses", "ties")) == 4
        assert label in done.out
    assert [s.policies["blocker"] for s in results.samples] == [f"run:{runs[k]}" for k in runs]
    assert (run / "toy_pass_reward_study.png").stat().st_size > 1000


def test_reward_study_curves_are_greedy_evaluations_where_the_run_made_them(tmp_path):
    from experiments.gleave2020 import _curve

    (tmp_path / "progress.csv").write_text(
        "timesteps,win_rate,episodes,steps_per_s,shaping\n100,0.1,5,9.0,0\n200,0.2,9,9.0,0\n"
    )
    rolling = _curve(tmp_path)
    assert (rolling.timesteps, rolling.win_rate, rolling.greedy) == ([100, 200], [0.1, 0.2], False)
    (tmp_path / "evaluation.csv").write_text(
        "timesteps,episodes,win_rate,win_low,win_high,loss_rate\n"
        "150,50,0.3000,0.1910,0.4375,0.6\n300,50,0.5000,0.3664,0.6336,0.4\n"
    )
    greedy = _curve(tmp_path)
    assert greedy.greedy and greedy.timesteps == [150, 300] and greedy.win_rate == [0.3, 0.5]
    assert greedy.ci95 == [(0.191, 0.4375), (0.3664, 0.6336)]


def test_gleave2020_unknown_game(cli, tmp_path):
    done = cli("run", "gleave2020", "--games", "chess", "--runs", tmp_path)
    assert done.code == 2 and "unknown game 'chess'" in done.err


QUICK = ("--quick", "--timesteps", "4096", "--episodes", "4", "--workers", "1")


def test_gleave2020_with_given_adversaries_records_no_training_budget(cli, tmp_path):
    from experiments.gleave2020 import GAMES

    done = cli("run", "gleave2020", *QUICK, "--adversary", "toy_pass=zero", "--runs", "runs")
    assert done.code == 0, done.err
    assert "--timesteps unused" in done.err
    (run,) = (tmp_path / "runs" / "gleave2020").iterdir()
    config = json.loads((run / "config.json").read_text())
    data, results = _results(run)
    assert "timesteps" not in config and "timesteps" not in data
    assert config["adversaries"] == {"toy_pass": "zero"} and config["episodes"] == 4
    assert "variant_runs" not in config and results.extra == {"episodes": 4}
    # an adversary that is not a run:DIR still gets its sample episode: the seats are named
    (sample,) = results.samples
    assert sample.policies == {"runner": GAMES["toy_pass"].victim, "blocker": "zero"}
    assert sample.deterministic == {"runner": True, "blocker": True}
    assert not (run / "adversaries").exists()


def test_gleave2020_trains_in_place_and_resumes(cli, tmp_path, monkeypatch):
    import arena.training
    import experiments.gleave2020 as gleave

    def stop(*args, **kwargs):
        raise RuntimeError("the machine went away")

    with monkeypatch.context() as m:
        m.setattr(gleave, "evaluate", stop)
        with pytest.raises(RuntimeError, match="went away"):
            cli("run", "gleave2020", *QUICK, "--runs", "runs")
    (run,) = (tmp_path / "runs" / "gleave2020").iterdir()
    adversary = run / "adversaries" / "toy_pass"
    assert (adversary / "policy.zip").is_file() and (adversary / "checkpoints").is_dir()
    assert json.loads((run / "config.json").read_text())["timesteps"] == 4096
    assert not (run / "results.json").exists()

    # stopped after the last checkpoint, before the end: the next session resumes it
    (adversary / "results.json").unlink()
    real, calls = arena.training.train_adversary, []

    def recorded(*args, **kwargs):
        calls.append(kwargs["resume"])
        return real(*args, **kwargs)

    monkeypatch.setattr(arena.training, "train_adversary", recorded)
    refused = cli("run", "gleave2020", "--resume", run, "--episodes", "9")
    assert refused.code == 2 and "give only --workers" in refused.err
    done = cli("run", "gleave2020", "--resume", run, "--workers", "1")
    assert done.code == 0, done.err
    assert calls == [True]
    data, results = _results(run)
    assert data["timesteps"] == 4096
    assert results.samples[0].policies["blocker"] == f"run:{adversary}"
    assert (run / "toy_pass_training.png").stat().st_size > 1000
    again = cli("run", "gleave2020", "--resume", run)
    assert again.code == 2 and "the run is finished" in again.err


def test_defences_resume_may_change_only_how_fast_it_trains(cli, tmp_path, monkeypatch):
    import arena.training

    def stop(*args, **kwargs):
        raise RuntimeError("the machine went away")

    with monkeypatch.context() as m:
        m.setattr(arena.training, "train_adversary", stop)
        with pytest.raises(RuntimeError, match="went away"):
            cli("run", "defences", "--quick", "--runs", "runs")
    (run,) = (tmp_path / "runs" / "defences").iterdir()
    refused = cli("run", "defences", "--resume", run, "--timesteps", "9")
    assert refused.code == 2
    assert refused.err.splitlines()[-1].endswith("--train-workers with it, not --timesteps")
    calls = []

    def recorded(*args, **kwargs):
        calls.append((kwargs["resume"], kwargs["runtime"]))
        raise RuntimeError("stopped again")

    monkeypatch.setattr(arena.training, "train_adversary", recorded)
    with pytest.raises(RuntimeError, match="stopped again"):
        cli("run", "defences", "--resume", run, "--train-workers", "0")
    assert calls == [(False, {"workers": 0, "update_threads": 1})]
    config = json.loads((run / "config.json").read_text())
    assert config["timesteps"] == 150_000 and "train_workers" not in config


def test_gleave2020_resume_needs_a_run(cli, tmp_path):
    done = cli("run", "gleave2020", "--resume", tmp_path)
    assert done.code == 2 and "not a gleave2020 run (no config.json)" in done.err
    (tmp_path / "config.json").write_text('{"experiment": "gleave2020", "games": ["chess"]}')
    done = cli("run", "gleave2020", "--resume", tmp_path)
    assert done.code == 2 and "missing key 'episodes'" in done.err


def test_zoo_agents_are_listed_once_in_the_games_seat_order():
    import envs
    from arena.pretrained import ZOO_FILES, PretrainedError, shipped, zoo_spec

    for env_id, files in ZOO_FILES.items():
        assert tuple(files) == envs.spec(env_id).seats, env_id
    assert zoo_spec("sumo_ants_v0", "fighter_1", "/zoo") == (
        "zoo:/zoo/sumo/ants/agent_parameters-v1.pkl"
    )
    with pytest.raises(PretrainedError, match="valid: runner, blocker"):
        zoo_spec("you_shall_not_pass_v0", "keeper")
    assert shipped("toy_pass_v0__runner.zip").is_file()
    with pytest.raises(PretrainedError, match="toy_catch_v0__player.zip"):
        shipped("../cli")


def test_victim_value_term_is_potential_based(runner_zip):
    """The value term rewards γΦ' − Φ with Φ = −V_victim: over an episode it sums to
    (up to discounting) −Φ(start), whatever the adversary does."""
    game = EmbeddedVecEnv(
        "toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2, seed=3
    )
    vec = VictimValue(game, LinearAnneal(1.0), gamma=1.0)
    vec.reset()
    start_phi = vec._phi.copy()
    assert np.all(start_phi != 0)
    total = np.zeros(2)
    finished = np.zeros(2, dtype=bool)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, rew, done, infos = vec.step(rng.uniform(-1, 1, (2, 2)).astype(np.float32))
        game = np.array(
            [1.0 if i.get("outcome") == "win" else (-1.0 if "outcome" in i else 0.0) for i in infos]
        )
        total += np.where(finished, 0.0, rew - game)
        finished |= done
        if finished.all():
            break
    assert finished.all()
    assert total == pytest.approx(-start_phi, abs=1e-4)


def test_shaping_potential_and_annealing_weight(runner_zip):
    game = EmbeddedVecEnv("toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2)
    vec = GameShaping(game, LinearAnneal(10.0, steps=4), key="shaping")
    vec.reset()
    for weight in (10.0, 5.0, 0.0):  # 2 env steps per call: 10 at t=0, 5 at t=2, 0 at t=4
        _, rew, _, infos = vec.step(np.zeros((2, 2), np.float32))
        assert rew == pytest.approx([weight * i["shaping"] for i in infos], abs=1e-5)
    assert any(i["shaping"] for i in infos)


def test_reward_study_cells_on_ray_carry_every_variants_recipe(tmp_path):
    """On Ray the study's trainings are cells of ``arena train-adversary``: each cell's
    command line must give the variant's recipe (switches and the action spread too)."""
    import dataclasses
    import math

    from arena.cli import train
    from arena.cli.parser import build_parser
    from arena.grid.commands import options_argv
    from arena.training import default_adversary_config
    from experiments.gleave2020 import REWARD_VARIANTS, Plan, grid_cells, trainings

    plan = Plan(("toy_pass",), episodes=4, seed=0, timesteps=4096, reward_study=True)
    todo = trainings(plan, tmp_path)
    assert len(todo) == len(REWARD_VARIANTS)
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train-adversary"]
    for (_, _, config), cell in zip(todo, grid_cells(plan, todo), strict=True):
        argv = options_argv(sub, cell, "train-adversary")
        args = sub.parse_args([*argv, "--out", str(tmp_path / "x")])
        base = default_adversary_config("toy_pass_v0")
        got = dataclasses.replace(base, **{t: getattr(args, t) or 0.0 for t in train.REWARD_TERMS})
        assert got.victim_value == config.victim_value and got.shaping == config.shaping
        assert bool(args.white_box) == config.white_box
        if config.ppo.log_std_init:
            assert math.log(args.action_std) == pytest.approx(config.ppo.log_std_init)
        else:
            assert args.action_std is None


@pytest.mark.slow
def test_defences_fine_tunes_reattacks_and_scores_the_matrix(cli, tmp_path):
    from conftest import assert_one_line_error

    runs = tmp_path / "runs"
    done = cli("run", "defences", "--quick", "--timesteps", "4096", "--finetune-timesteps",
               "2048", "--episodes", "6", "--workers", "1", "--train-workers", "0",
               "--runs", runs)  # fmt: skip
    assert done.code == 0, done.err
    run = next((runs / "defences").iterdir())
    _, results = _results(run)
    table = results.headline
    assert table is not None and table.highlight == (2,)
    assert table.column("victim") == ("zoo victim", "masked victim", "fine-tuned victim")
    assert table.columns[1:] == tuple(
        f"vs {o}" for o in ("zoo opponent", "old adversary", "new adversary", "random", "zero")
    )
    assert all(isinstance(c, Score) and c.ci95 is not None for row in table.rows for c in row[1:])
    trainings = run / "trainings"
    old, tuned, new = (
        trainings / f"toy_pass__{k}" for k in ("adversary", "finetuned", "new_adversary")
    )
    marker = json.loads((tuned / "adversary_run.json").read_text())
    assert marker["adversary_seat"] == "runner" and marker["init"].startswith("sb3:")
    for training in (old, tuned, new):  # --train-workers 0: each training in-process
        config = json.loads((training / "adversary_run.json").read_text())["config"]
        assert (config["workers"], config["update_threads"]) == (0, 1)
    assert marker["victims"]["blocker"].startswith(f"mix:0.5*run:{old}|0.5*")
    again = json.loads((new / "adversary_run.json").read_text())
    assert again["victims"] == {"runner": f"run:{tuned}"}
    assert again["config"]["victim_sampled"] is False  # as the fine-tuned victim is scored
    (sample,) = results.samples
    assert sample.policies == {"runner": f"run:{tuned}", "blocker": f"run:{new}"}
    assert cli("report", run).code == 0
    finished = cli("run", "defences", "--resume", run)
    assert_one_line_error(finished, "the run is finished")
    given = cli("run", "defences", "--quick", "--adversary", "kick_and_defend=zero",
                "--runs", tmp_path / "other")  # fmt: skip
    assert_one_line_error(given, "--adversary kick_and_defend=...", "not among the games run")
    assert not (tmp_path / "other").exists()


def _eval_run(path, points):
    """A run directory with only an ``evaluation.csv`` of (timesteps, win_rate)."""
    path.mkdir(parents=True)
    rows = "".join(
        f"{t},50,{w:.4f},{max(w - 0.1, 0):.4f},{min(w + 0.1, 1):.4f},0\n" for t, w in points
    )
    (path / "evaluation.csv").write_text(
        "timesteps,episodes,win_rate,win_low,win_high,loss_rate\n" + rows
    )
    return path


def test_curves_compares_runs_at_an_equal_budget(cli, tmp_path):
    a0 = _eval_run(tmp_path / "a0", [(250, 0.1), (500, 0.3), (750, 0.9)])
    a1 = _eval_run(tmp_path / "a1", [(250, 0.3), (500, 0.5), (750, 0.9)])
    b0 = _eval_run(tmp_path / "b0", [(250, 0.2), (500, 0.7)])
    out = tmp_path / "plots" / "study.png"
    done = cli(
        "run", "curves", "--run", f"a/s0={a0}", "--run", f"a/s1={a1}", "--run", f"b/s0={b0}",
        "--until", "600", "--out", out,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert out.stat().st_size > 1000
    lines = done.out.splitlines()
    assert lines[0] == "| run | 250 | 500 |"  # 750 is past --until
    assert "| a/s0 | 0.10 | 0.30 |" in lines
    assert "| a, mean of 2 | 0.20 | 0.40 |" in lines
    assert "| b/s0 | 0.20 | 0.70 |" in lines
    assert not any(line.startswith("| b, mean") for line in lines)  # one seed: no mean row


def test_curves_marks_rolling_curves_and_means_only_like_with_like(cli, tmp_path):
    greedy = _eval_run(tmp_path / "g", [(100, 0.5), (200, 0.6)])
    rolling = tmp_path / "r"
    rolling.mkdir()
    (rolling / "progress.csv").write_text(
        "timesteps,win_rate,episodes,steps_per_s,shaping\n100,0.25,5,9.0,0\n"
    )
    done = cli("run", "curves", "--run", f"x/s0={greedy}", "--run", f"x/s1={rolling}",
               "--out", tmp_path / "c.png")  # fmt: skip
    assert done.code == 0, done.err
    assert "| x/s1 (rolling) | 0.25 | – |" in done.out
    assert "mean of" not in done.out  # a greedy and a rolling curve are not averaged
    more = _eval_run(tmp_path / "g2", [(100, 0.25), (300, 0.5)])
    done = cli("run", "curves", "--run", f"x/s0={greedy}", "--run", f"x/s1={more}",
               "--out", tmp_path / "c.png")  # fmt: skip
    assert done.code == 0, done.err
    assert "| x, mean of 2 | 0.38 | – | – |" in done.out  # only where both have the point


def test_curves_bad_input_is_one_line(cli, tmp_path):
    run = _eval_run(tmp_path / "run", [(100, 0.5)])
    (tmp_path / "notrun").mkdir()
    bad = _eval_run(tmp_path / "bad", [(100, 0.5)])
    (bad / "evaluation.csv").write_text("timesteps,episodes,win_rate\nlots,50,0.5\n")
    empty = _eval_run(tmp_path / "empty", [])  # evaluations without a row, no progress.csv
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "evaluation.csv").write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "c.png"
    cases = {
        (): "give at least one run",
        ("--run", "nolabel"): "expects LABEL=DIR",
        ("--run", f"a={tmp_path / 'missing'}"): "no such directory",
        ("--run", f"a={tmp_path / 'notrun'}"): "no evaluation.csv or progress.csv",
        ("--run", f"a={bad}"): "unreadable curve",
        ("--run", f"a={junk}"): "unreadable curve",
        ("--run", f"a={empty}"): "no curve to read",
        ("--run", f"a={run}", "--until", "50"): "no point up to 50 steps",
        ("--run", f"a={run}", "--run", f"a={run}"): "given twice",
        ("--run", f"a={run}", "--until", "-1"): "--until",
    }
    for argv, message in cases.items():
        done = cli("run", "curves", *argv, "--out", out)
        assert done.code == 2 and message in done.err, (argv, done.err)
        assert len(done.err.strip().splitlines()) == 1, done.err
    done = cli("run", "curves", "--run", f"a={run}", "--out", tmp_path / "c.txt")
    assert done.code == 2 and "is a PNG" in done.err
    (tmp_path / "d.png").mkdir()
    done = cli("run", "curves", "--run", f"a={run}", "--out", tmp_path / "d.png")
    assert done.code == 2 and "is a directory" in done.err
    assert not out.exists()
