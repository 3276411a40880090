"""Many copies of one game stepped together, in this process or in worker processes.

``GameVector.step`` takes every seat's actions as a batch and returns every seat's
observations as a batch, resetting finished games automatically (the last
observation of a finished game is in ``infos[i]["terminal_observation"]``). Policies
then run batched over all copies in the main process while the workers only
simulate: the victim is inferred once per step for all environments, and the
physics of the copies runs on all cores.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.spaces import Box

import envs


@dataclass
class VectorStep:
    obs: dict[str, np.ndarray]
    """seat -> (n, *obs_shape): observations after the step (after auto-reset)."""
    rewards: dict[str, np.ndarray]
    """seat -> (n,)."""
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any]]
    """per env: ``{seat: info}``, plus ``terminal_observation`` ({seat: obs}) when done."""


class _Games:
    """A block of game copies: the part a worker owns."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], n: int):
        self.games = [envs.make(env_id, **dict(env_kwargs)) for _ in range(n)]
        self.seats = list(self.games[0].possible_agents)
        self.seeds: list[int | None] = [None] * n

    def reset(self, seeds: Sequence[int | None]) -> list[dict[str, Any]]:
        self.seeds = list(seeds)
        return [g.reset(seed=s)[0] for g, s in zip(self.games, seeds, strict=True)]

    def step(self, actions: list[dict[str, Any]]) -> list[tuple]:
        out = []
        for g, act in zip(self.games, actions, strict=True):
            obs, rew, term, trunc, info = g.step(act)
            t, tr = any(term.values()), any(trunc.values())
            info = {s: info.get(s, {}) for s in self.seats}
            if t or tr:
                info["terminal_observation"] = obs
                obs, _ = g.reset()
            out.append((obs, rew, t, tr, info))
        return out

    def close(self) -> None:
        for g in self.games:
            g.close()


def _worker(conn, env_id: str, env_kwargs: dict, n: int) -> None:
    import torch

    torch.set_num_threads(1)
    games = _Games(env_id, env_kwargs, n)
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "step":
                conn.send(games.step(arg))
            elif cmd == "reset":
                conn.send(games.reset(arg))
            elif cmd == "close":
                games.close()
                conn.send(None)
                return
    except (EOFError, KeyboardInterrupt):
        games.close()


class GameVector:
    """``n`` copies of ``env_id``; ``workers > 0`` spreads them over processes."""

    def __init__(
        self,
        env_id: str,
        n: int,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        workers: int = 0,
    ):
        if n <= 0:
            raise ValueError(f"n must be > 0, got {n}")
        self.env_id, self.n = env_id, n
        kwargs = dict(env_kwargs or {})
        probe = envs.make(env_id, **kwargs)
        self.seats = list(probe.possible_agents)
        self.observation_spaces = {s: probe.observation_space(s) for s in self.seats}
        self.action_spaces = {s: probe.action_space(s) for s in self.seats}
        self._continuous = {
            s
            for s, space in self.action_spaces.items()
            if isinstance(space, Box) and np.issubdtype(space.dtype, np.floating)
        }
        probe.close()
        self.workers = min(workers, n)
        if self.workers == 0:
            self._local: _Games | None = _Games(env_id, kwargs, n)
            self._blocks = [n]
        else:
            self._local = None
            sizes = [n // self.workers + (i < n % self.workers) for i in range(self.workers)]
            self._blocks = sizes
            ctx = mp.get_context("forkserver")
            self._conns = []
            self._procs = []
            for size in sizes:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, env_id, kwargs, size), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)

    def _split(self, items: list) -> list[list]:
        out, i = [], 0
        for size in self._blocks:
            out.append(items[i : i + size])
            i += size
        return out

    def _call(self, cmd: str, items: list) -> list:
        if self._local is not None:
            return getattr(self._local, cmd)(items)
        parts = self._split(items)
        for conn, part in zip(self._conns, parts, strict=True):
            conn.send((cmd, part))
        return [x for conn in self._conns for x in conn.recv()]

    def reset(self, seeds: Sequence[int | None]) -> dict[str, np.ndarray]:
        obs = self._call("reset", list(seeds))
        return {s: np.stack([o[s] for o in obs]) for s in self.seats}

    def step(self, actions: Mapping[str, np.ndarray]) -> VectorStep:
        # continuous controls as float64 rows (what the MuJoCo games step in), converted
        # once for all copies; other actions as given
        batch = {
            s: np.asarray(actions[s], dtype=np.float64) if s in self._continuous else actions[s]
            for s in self.seats
        }
        per_env = [{s: batch[s][i] for s in self.seats} for i in range(self.n)]
        results = self._call("step", per_env)
        return VectorStep(
            obs={s: np.stack([r[0][s] for r in results]) for s in self.seats},
            rewards={s: np.array([float(r[1][s]) for r in results]) for s in self.seats},
            terminated=np.array([r[2] for r in results]),
            truncated=np.array([r[3] for r in results]),
            infos=[r[4] for r in results],
        )

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            return
        for conn in self._conns:
            try:
                conn.send(("close", None))
                conn.recv()
            except (BrokenPipeError, EOFError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
