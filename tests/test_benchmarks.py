"""The benchmarks' own measuring sticks: a ceiling that computed something else than the
training would make every ratio against it meaningless."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco")


def _benchmark(name: str):
    """A script of ``benchmarks/`` (not a package: scripts run by path) as a module."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_benchmark_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trace(env_id: str, steps: int) -> dict[str, np.ndarray]:
    """Random controls for every seat, episodes restarted where they end: the trace
    format of ``benchmarks.adversary_throughput.record``, without a zoo victim."""
    import envs

    game = envs.make(env_id, max_steps=40)
    rng = np.random.default_rng(0)
    game.reset(seed=0)
    ctrl, starts, after = [], [], []
    qpos, qvel = [game.data.qpos.copy()], [game.data.qvel.copy()]
    for t in range(steps):
        acts = {seat: rng.uniform(-1, 1, game.action_space(seat).shape) for seat in game.agents}
        _, _, term, trunc, _ = game.step(acts)
        ctrl.append(game.data.ctrl.copy())
        after.append(game.data.qpos.copy())
        if any(term.values()) or any(trunc.values()):
            game.reset()
            starts.append(t + 1)
            qpos.append(game.data.qpos.copy())
            qvel.append(game.data.qvel.copy())
    return {
        "ctrl": np.asarray(ctrl),
        "starts": np.asarray(starts, dtype=np.int64),
        "qpos": np.asarray(qpos),
        "qvel": np.asarray(qvel),
        "after": np.asarray(after),  # the game's own qpos after each step
    }


def test_the_replays_follow_the_games_states_and_the_layout_changes_nothing():
    import mujoco

    import envs

    bench = _benchmark("adversary_throughput")
    trace = _trace("sumo_ants_v0", 250)
    assert len(trace["starts"]) >= 5  # the runs cross episode starts
    model, begins = envs.make("sumo_ants_v0").model, bench._episode_begins(trace)
    data = mujoco.MjData(model)
    bench._begin(model, data, trace, 0)
    one = []  # the one-state replay, step by step
    for t in range(250):
        bench._step(model, data, trace, begins, t)
        one.append(data.qpos.copy())
    # the game's own states, to rounding (the game's Python adds nothing to its physics)
    np.testing.assert_allclose(one, trace["after"], rtol=0, atol=1e-12)
    _, (alone,) = bench.replay("sumo_ants_v0", trace, 1)
    np.testing.assert_array_equal(alone, one[-1])
    # 250 steps in 7 runs of 36 (the last one shorter), each in its own MjData, in turn:
    # each ends, bit for bit, where the one-state replay is after the run's last step
    _, turns = bench.replay("sumo_ants_v0", trace, 7)
    ends = [min(250, 36 * (k + 1)) - 1 for k in range(7)]
    for k, (got, t) in enumerate(zip(turns, ends, strict=True)):
        np.testing.assert_array_equal(got, one[t], err_msg=f"run {k}")
