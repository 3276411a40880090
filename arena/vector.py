"""Many copies of one game stepped together, in this process or in worker processes.

``GameVector.step`` takes every seat's actions as a batch and returns every seat's
observations as a batch, resetting finished games automatically (the last
observation of a finished game is in ``infos[i]["terminal_observation"]``). Policies
then run batched over all copies in the main process while the workers only
simulate: the victim is inferred once per step for all environments, and the
physics of the copies runs on all cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.spaces import Box

import envs
from arena.parallel import forkserver


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


_Block = tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray, list]
"""One step of a block of copies: seat -> observation rows, seat -> reward rows,
terminated, truncated, per copy ``{seat: info}`` (+ ``terminal_observation``)."""


class _Games:
    """A block of game copies: the part a worker owns. Games that can step their copies
    together (``batch``: the MuJoCo games, whose rewards and observations are computed
    over all copies at once) do; the others step one by one."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], n: int):
        self.games = [envs.make(env_id, **dict(env_kwargs)) for _ in range(n)]
        self.seats = list(self.games[0].possible_agents)
        batch = getattr(self.games[0], "batch", None)
        self.together = batch(self.games) if callable(batch) else None

    def reset(self, seeds: Sequence[int | None]) -> list[dict[str, Any]]:
        out = []
        for i, (g, s) in enumerate(zip(self.games, seeds, strict=True)):
            out.append(g.reset(seed=s)[0])
            if self.together is not None:
                self.together.restart(i)
        return out

    def step(self, actions: Mapping[str, np.ndarray]) -> _Block:
        if self.together is None:
            return self._one_by_one(actions)
        obs, rewards, terminated, truncated, infos = self.together.step(actions)
        for i in np.flatnonzero(terminated | truncated):
            infos[i]["terminal_observation"] = {s: obs[s][i].copy() for s in self.seats}
            first, _ = self.games[i].reset()
            self.together.restart(i)
            for s in self.seats:
                obs[s][i] = first[s]
        return obs, rewards, terminated, truncated, infos

    def _one_by_one(self, actions: Mapping[str, np.ndarray]) -> _Block:
        out = []
        for i, g in enumerate(self.games):
            obs, rew, term, trunc, info = g.step({s: actions[s][i] for s in self.seats})
            t, tr = any(term.values()), any(trunc.values())
            info = {s: info.get(s, {}) for s in self.seats}
            if t or tr:
                info["terminal_observation"] = obs
                obs, _ = g.reset()
            out.append((obs, rew, t, tr, info))
        return (
            {s: np.stack([r[0][s] for r in out]) for s in self.seats},
            {s: np.array([float(r[1][s]) for r in out]) for s in self.seats},
            np.array([r[2] for r in out], dtype=bool),
            np.array([r[3] for r in out], dtype=bool),
            [r[4] for r in out],
        )

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
    except (EOFError, ConnectionResetError, BrokenPipeError, KeyboardInterrupt):
        # The parent went away (killed, or stopped by a signal after saving its
        # checkpoint): leave quietly, not with a traceback in the run's log.
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
            ctx = forkserver()
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
        if self._local is not None:
            parts = [self._local.step(batch)]
        else:
            at = 0
            for conn, size in zip(self._conns, self._blocks, strict=True):
                conn.send(("step", {s: batch[s][at : at + size] for s in self.seats}))
                at += size
            parts = [conn.recv() for conn in self._conns]
        if len(parts) == 1:
            obs, rewards, terminated, truncated, infos = parts[0]
        else:
            obs = {s: np.concatenate([p[0][s] for p in parts]) for s in self.seats}
            rewards = {s: np.concatenate([p[1][s] for p in parts]) for s in self.seats}
            terminated = np.concatenate([p[2] for p in parts])
            truncated = np.concatenate([p[3] for p in parts])
            infos = [info for p in parts for info in p[4]]
        return VectorStep(obs, rewards, terminated, truncated, infos)

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
