"""Re-simulation of one episode: the game made as the manifest describes it, reset from
the recorded seed and stepped with the recorded actions; every observation and reward
is compared exactly, and the game must end the episode exactly at its last step."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

import envs
from arena.artifacts import RecordManifest
from arena.recording import EpisodeRecord, RecordError
from arena.replay.check import Mismatch, differs, first_line, same

Simulated = tuple[Mismatch | None, dict[str, float], dict[str, str]]
"""The first difference (or None), then the simulated returns and outcomes per seat."""


def make_env(manifest: RecordManifest, **overrides: Any) -> Any:
    """A fresh env exactly as the record's manifest describes it."""
    try:
        envs.spec(manifest.env)
    except envs.EnvError as exc:
        raise RecordError(f"record's env is not available: {exc}") from None
    if not manifest.env_kwargs:
        return envs.make(manifest.env, **overrides)
    try:
        return envs.make(manifest.env, **{**manifest.env_kwargs, **overrides})
    except Exception as exc:  # the record's own kwargs: whatever the game says of them
        raise RecordError(
            f"the record's env {manifest.env} cannot be made with its env_kwargs "
            f"{_clip(_kwargs_text(manifest.env_kwargs), 200)}: "
            f"{type(exc).__name__}: {_clip(first_line(exc), 300)}"
        ) from None


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    try:
        return json.dumps(kwargs, sort_keys=True, default=repr)
    except (ValueError, TypeError, RecursionError):
        return "(not printable)"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _obs_detail(seat: str, simulated: Any, recorded: np.ndarray) -> str:
    sim = np.asarray(simulated)
    if sim.shape != recorded.shape or sim.dtype != recorded.dtype:
        return differs("observation", seat, recorded, sim, "simulated")
    diff = np.max(np.abs(sim.astype(np.float64) - recorded.astype(np.float64)))
    return f"observation of {seat!r} differs (max |Δ| = {diff:.3g})"


def _compare_obs(seat: str, obs: Any, record: EpisodeRecord, step: int) -> Mismatch | None:
    recorded = record.observations[seat][step]
    if same(np.asarray(obs), recorded):
        return None
    return Mismatch(step, f"obs.{seat}", _obs_detail(seat, obs, recorded))


def _compare_reward(seat: str, simulated: float, record: EpisodeRecord, t: int) -> Mismatch | None:
    recorded = record.rewards[seat][t]
    if same(np.asarray(simulated, dtype=np.float64), np.asarray(recorded)):
        return None
    detail = f"reward of {seat!r} differs (recorded {float(recorded)!r}, simulated {simulated!r})"
    return Mismatch(t + 1, f"reward.{seat}", detail)


def simulate(
    env: Any,
    record: EpisodeRecord,
    seats: list[str],
    on_step: Callable[[Any, int], None] | None,
) -> Simulated:
    """Step the recorded actions from the reset seed; compare every observation and reward."""
    from arena.match import outcome_of

    obs, _ = env.reset(seed=record.reset_seed)
    if on_step:
        on_step(env, 0)
    for s in seats:
        bad = _compare_obs(s, obs[s], record, 0)
        if bad:
            return bad, {}, {}
    running = dict.fromkeys(seats, 0.0)
    rewards: dict[str, list[float]] = {s: [] for s in seats}
    info: dict[str, Any] = {}
    done = False
    for t in range(record.length):
        obs, rew, term, trunc, info = env.step({s: record.actions[s][t] for s in seats})
        if on_step:
            on_step(env, t + 1)
        for s in seats:
            sim = float(rew[s])
            bad = _compare_obs(s, obs[s], record, t + 1) or _compare_reward(s, sim, record, t)
            if bad:
                return bad, {}, {}
            running[s] += sim
            rewards[s].append(sim)
        done = any(term.values()) or any(trunc.values())
        how = "terminated" if any(term.values()) else "truncated"
        if done and t + 1 < record.length:
            detail = (
                f"the game ended the episode here ({how}), but the record goes on to "
                f"step {record.length}"
            )
            return Mismatch(t + 1, "length", detail), {}, {}
    if not done:
        detail = (
            f"the record ends at step {record.length}, but the game did not end the "
            f"episode there (neither terminated nor truncated): the record is cut short"
        )
        return Mismatch(record.length, "length", detail), {}, {}
    returns = {s: float(np.asarray(rewards[s], dtype=np.float64).sum()) for s in seats}
    infos = info if isinstance(info, dict) else {}
    outcome = {s: outcome_of(infos.get(s, {}) or {}, s, running) for s in seats}
    return None, returns, outcome
