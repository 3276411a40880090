"""Experiments run through `arena run` and produce their tables and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arena.embedding import EmbeddedVecEnv


def test_list_names_every_experiment(cli):
    done = cli("run", "list")
    assert done.code == 0
    for name in ("gleave2020", "huang2017_pong", "zoo_fidelity"):
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
    results = json.loads((run / "results.json").read_text())
    rows = results["games"]["toy_pass"]["victim_win_rates"]
    assert len(rows) == 8 and all(len(r["win_rate_ci95"]) == 2 for r in rows.values())
    assert (run / "toy_pass_training.png").stat().st_size > 1000
    assert results["games"]["toy_pass"]["adversary"].startswith(f"run:{run}")


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
    study = json.loads((run / "results.json").read_text())["games"]["toy_pass"]
    assert set(study) == set(REWARD_VARIANTS)
    for label, row in study.items():
        assert row["timesteps"] and row["timesteps"][-1] >= 4096, label
        config = json.loads((Path(row["run"]) / "adversary_run.json").read_text())["config"]
        for term, weight in {**NO_DENSE_TERMS, **REWARD_VARIANTS[label]}.items():
            assert config[term] == weight, (label, term)
        r = row["victim_vs_final_adversary"]
        assert r["wins"] + r["losses"] + r["ties"] == 4
        assert label in done.out
    assert (run / "toy_pass_reward_study.png").stat().st_size > 1000


def test_gleave2020_unknown_game(cli, tmp_path):
    done = cli("run", "gleave2020", "--games", "chess", "--runs", tmp_path)
    assert done.code == 2 and "unknown game 'chess'" in done.err


def test_victim_value_term_is_potential_based(runner_zip):
    """The value term rewards γΦ' − Φ with Φ = −V_victim: over an episode it sums to
    (up to discounting) −Φ(start), whatever the adversary does."""
    vec = EmbeddedVecEnv(
        "toy_pass_v0",
        "blocker",
        {"runner": f"sb3:{runner_zip}"},
        n_envs=2,
        victim_value=1.0,
        gamma=1.0,
        seed=3,
    )
    vec.reset()
    start_phi = vec._phi_value.copy()
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
    vec = EmbeddedVecEnv(
        "toy_pass_v0", "blocker", {"runner": f"sb3:{runner_zip}"}, n_envs=2, shaping=0.0
    )
    vec.reset()
    _, rew0, _, infos = vec.step(np.zeros((2, 2), np.float32))
    assert np.all(np.abs(rew0) < 1e-6)
    vec.set_attr("shaping", 10.0)
    _, rew1, _, infos = vec.step(np.zeros((2, 2), np.float32))
    assert rew1 == pytest.approx([10.0 * i["shaping"] for i in infos], abs=1e-5)
