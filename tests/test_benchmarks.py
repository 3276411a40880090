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
    ctrl, starts = [], []
    qpos, qvel = [game.data.qpos.copy()], [game.data.qvel.copy()]
    for t in range(steps):
        acts = {seat: rng.uniform(-1, 1, game.action_space(seat).shape) for seat in game.agents}
        _, _, term, trunc, _ = game.step(acts)
        ctrl.append(game.data.ctrl.copy())
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
    }


def test_the_vectorised_replay_is_the_one_state_replay_bit_for_bit():
    replay = _benchmark("adversary_throughput").replay

    trace = _trace("sumo_ants_v0", 250)
    assert len(trace["starts"]) >= 5  # the runs cross episode starts
    _, (alone,) = replay("sumo_ants_v0", trace, 1)
    _, turns = replay("sumo_ants_v0", trace, 7)  # 250 steps in 7 runs: the last one shorter
    assert len(turns) == 7
    np.testing.assert_array_equal(turns[-1], alone)
    # each run ends where the next one starts, in the one-state replay
    _, (half,) = replay("sumo_ants_v0", {**trace, "ctrl": trace["ctrl"][:36]}, 1)
    np.testing.assert_array_equal(turns[0], half)
