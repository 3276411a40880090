"""run_match: scoring, determinism across worker counts, seat filling, intervals."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from agents.specs import PolicySpecError
from arena.evaluation import SeatResult, mean_ci95, wilson_interval
from arena.match import CHUNK, MatchError, episode_seed, run_match


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(51, 100)
    assert lo == pytest.approx(0.4134, abs=1e-4) and hi == pytest.approx(0.6057, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert mean_ci95([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_seat_result_counts():
    r = SeatResult.from_episodes(["win", "loss", "tie", "win"], [1, -1, 0, 1])
    assert (r.wins, r.losses, r.ties, r.win_rate) == (2, 1, 1, 0.5)
    assert r.mean_return == 0.25 and r.to_json()["win_rate_ci95"] == list(r.win_rate_ci95)


def test_trained_runner_beats_still_blocker(runner_zip):
    result, _ = run_match("toy_pass_v0", {"runner": f"sb3:{runner_zip}"}, n_episodes=12, seed=3)
    runner, blocker = result.seats["runner"], result.seats["blocker"]
    assert runner.wins == 12 and blocker.losses == 12  # blocker defaulted to "zero"
    assert result.episodes == 12 and all(0 < n <= 60 for n in result.lengths)


def _signature(result):
    return result.to_json(), [
        (o.index, o.reset_seed, o.returns, o.outcomes) for o in result.outcomes
    ]


def test_same_seed_same_result_whatever_the_worker_count():
    policies = {"runner": "random", "blocker": "random"}
    n = 2 * CHUNK + 3  # three chunks, the last one short
    one, _ = run_match(
        "toy_pass_v0", policies, n_episodes=n, seed=11, workers=1, deterministic=False
    )
    again, _ = run_match(
        "toy_pass_v0", policies, n_episodes=n, seed=11, workers=1, deterministic=False
    )
    two, _ = run_match(
        "toy_pass_v0", policies, n_episodes=n, seed=11, workers=2, deterministic=False
    )
    assert _signature(one) == _signature(again) == _signature(two)
    other, _ = run_match("toy_pass_v0", policies, n_episodes=n, seed=12, deterministic=False)
    assert _signature(other) != _signature(one)


def test_episode_seeds_are_distinct_and_stable():
    seeds = [episode_seed(0, i) for i in range(100)]
    assert len(set(seeds)) == 100 and seeds == [episode_seed(0, i) for i in range(100)]


def test_records_hold_one_more_observation_than_actions():
    result, records = run_match(
        "toy_pass_v0", {"runner": "random"}, n_episodes=3, seed=0, record=True
    )
    assert [r.index for r in records] == [0, 1, 2]
    for rec, outcome in zip(records, result.outcomes, strict=True):
        assert len(rec.observations["runner"]) == rec.length + 1 == outcome.length + 1
        assert rec.rewards["blocker"].sum() == pytest.approx(outcome.returns["blocker"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_episodes": 0}, MatchError, "positive integer"),
        ({"n_episodes": 2, "policies": {"goalie": "zero"}}, envs.EnvError, "valid seats"),
        ({"n_episodes": 2, "policies": {"blocker": "zero"}}, MatchError, "needs a policy"),
        ({"n_episodes": 2, "policies": {"runner": "sb3"}}, PolicySpecError, "needs a path"),
    ],
)
def test_bad_match_configurations(kwargs, error, message):
    kwargs = {"policies": {"runner": "zero"}, **kwargs}
    with pytest.raises(error, match=message):
        run_match("toy_pass_v0", kwargs.pop("policies"), **kwargs)


def test_one_seat_game_scores_by_outcome(catch_zip):
    result, _ = run_match("toy_catch_v0", {"player": f"sb3:{catch_zip}"}, n_episodes=4, seed=0)
    player = result.seats["player"]
    assert player.wins == 4 and player.mean_return == 10.0
    rnd, _ = run_match("toy_catch_v0", {"player": "random"}, n_episodes=4, seed=0)
    assert rnd.seats["player"].mean_return < 0
    assert np.isfinite(rnd.seats["player"].std_return)


def test_a_policy_file_that_changes_is_loaded_again(tmp_path, runner_zip):
    """Policies are cached per process by spec; a file replaced since (a run's newer
    checkpoint, a re-trained file at the same path) must not be served from the cache."""
    import os
    import shutil

    import envs
    from arena.match import _resolve_policy

    path = tmp_path / "p.zip"
    shutil.copy(runner_zip, path)
    env = envs.make("toy_pass_v0")
    first = _resolve_policy(f"sb3:{path}", env, "runner", "toy_pass_v0")
    assert _resolve_policy(f"sb3:{path}", env, "runner", "toy_pass_v0") is first
    shutil.copy(runner_zip, path)
    os.utime(path, ns=(1, 1))  # same bytes, another file as far as the cache knows
    assert _resolve_policy(f"sb3:{path}", env, "runner", "toy_pass_v0") is not first
