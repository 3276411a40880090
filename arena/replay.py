"""Re-simulate recorded episodes from their seed and actions and compare observations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import envs
from arena.recording import EpisodeRecord, RecordError, read_episode, read_manifest


@dataclass(frozen=True)
class EpisodeCheck:
    index: int
    steps: int
    match: bool
    first_mismatch: int | None = None
    """The first step whose observation or reward differs (0 = the reset)."""
    detail: str = ""


def make_env(manifest: dict[str, Any], **overrides: Any) -> Any:
    """A fresh env exactly as the record's manifest describes it."""
    try:
        envs.spec(manifest["env"])
    except envs.EnvError as exc:
        raise RecordError(f"record's env is not available: {exc}") from None
    return envs.make(manifest["env"], **{**manifest.get("env_kwargs", {}), **overrides})


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def resimulate(
    manifest: dict[str, Any], record: EpisodeRecord, env: Any = None, on_step=None
) -> EpisodeCheck:
    """Replay ``record``'s actions from its reset seed; check every observation and reward.

    ``on_step(env, t)`` is called after the reset (t = 0) and after every step (for
    rendering a video of the re-simulation).
    """
    env = env if env is not None else make_env(manifest)
    seats = list(record.actions)
    obs, _ = env.reset(seed=record.reset_seed)
    if on_step:
        on_step(env, 0)
    for s in seats:
        if not _same(np.asarray(obs[s]), record.observations[s][0]):
            return EpisodeCheck(record.index, 0, False, 0, f"reset observation of {s!r} differs")
    for t in range(record.length):
        obs, rew, term, trunc, _ = env.step({s: record.actions[s][t] for s in seats})
        if on_step:
            on_step(env, t + 1)
        for s in seats:
            if not _same(np.asarray(obs[s]), record.observations[s][t + 1]):
                diff = np.max(
                    np.abs(
                        np.asarray(obs[s], np.float64)
                        - record.observations[s][t + 1].astype(np.float64)
                    )
                )
                return EpisodeCheck(
                    record.index,
                    t + 1,
                    False,
                    t + 1,
                    f"observation of {s!r} differs (max |Δ| = {diff:.3g})",
                )
            if float(rew[s]) != float(record.rewards[s][t]):
                return EpisodeCheck(record.index, t + 1, False, t + 1, f"reward of {s!r} differs")
        done = any(term.values()) or any(trunc.values())
        if done and t + 1 < record.length:
            return EpisodeCheck(record.index, t + 1, False, t + 1, "episode ended early")
    env.close()
    return EpisodeCheck(record.index, record.length, True)


def verify(directory: str | Path, episodes: list[int] | None = None) -> list[EpisodeCheck]:
    """Re-simulate the listed episode positions (all by default) of a record directory."""
    manifest = read_manifest(directory)
    positions = range(len(manifest["episodes"])) if episodes is None else episodes
    return [resimulate(manifest, read_episode(directory, p)) for p in positions]
