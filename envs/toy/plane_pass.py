"""``toy_pass_v0``: a runner must get past a blocker on a plane (numpy, no MuJoCo).

In the spirit of *you-shall-not-pass* (Bansal et al. 2018), small enough to train
an agent in seconds. Two discs on a field ``x ∈ [-1.5, 1.5], y ∈ [-1, 1]``:

* ``runner`` starts near ``x = -1`` and wins by reaching the goal line ``x ≥ 1``;
* ``blocker`` starts near ``x = 0`` and wins if the runner has not arrived when
  the time limit (``max_steps``) runs out.

Actions are accelerations in ``[-1, 1]²``; velocity decays (``v ← 0.75 v + 0.025 a``,
top speed 0.1 per step). Discs that overlap are pushed apart and lose the
velocity component along the contact normal, so a blocker in the way physically
blocks. Observation of each seat (float32, 9): own position (2), own velocity (2),
opponent position relative to own (2), opponent velocity (2), fraction of time left.

Rewards are sparse: +1 to the winner and -1 to the loser at the end. The dense
shaping term (the runner's progress along x; its negative for the blocker) is in
``info[seat]["shaping"]`` and is added to the reward with weight ``shaping``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.paint import Color

RUNNER, BLOCKER = "runner", "blocker"
RADIUS = 0.12
GOAL_X = 1.0
X_LIM, Y_LIM = 1.5, 1.0
DECAY, GAIN = 0.75, 0.025
COLORS: tuple[Color, Color] = ((30, 90, 220), (220, 60, 40))
"""The runner's and the blocker's disc in ``render()``."""
RENDER_SCALE = 40
"""Pixels per unit of length in ``render()``."""


class PlanePassEnv(ParallelEnv):
    metadata = {"name": "toy_pass_v0", "render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self, *, max_steps: int = 60, shaping: float = 0.0, render_mode: str | None = None
    ):
        if max_steps <= 0:
            raise ValueError(f"max_steps must be > 0, got {max_steps}")
        self.max_steps = int(max_steps)
        self.shaping = float(shaping)
        self.render_mode = render_mode
        self.possible_agents = [RUNNER, BLOCKER]
        self.agents: list[str] = []
        high = np.full(9, 5.0, dtype=np.float32)
        self._obs_space = spaces.Box(-high, high, dtype=np.float32)
        self._act_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._rng = np.random.default_rng()
        self.pos = np.zeros((2, 2))
        self.vel = np.zeros((2, 2))
        self.t = 0

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        y = self._rng.uniform(-0.5, 0.5, size=2)
        self.pos = np.array([[-1.0, y[0]], [0.0 + self._rng.uniform(-0.1, 0.1), y[1]]])
        self.vel = np.zeros((2, 2))
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        return self._observations(), infos

    def _observations(self) -> dict[str, np.ndarray]:
        left = 1.0 - self.t / self.max_steps
        out = {}
        for i, agent in enumerate(self.possible_agents):
            j = 1 - i
            obs = np.concatenate(
                [
                    self.pos[i],
                    self.vel[i] * 10.0,
                    self.pos[j] - self.pos[i],
                    self.vel[j] * 10.0,
                    [left],
                ]
            )
            out[agent] = obs.astype(np.float32)
        return out

    def step(self, actions: dict[str, np.ndarray]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        acc = np.zeros((2, 2))
        for i, agent in enumerate(self.possible_agents):
            a = np.asarray(actions[agent], dtype=np.float64).reshape(-1)
            if a.shape != (2,):
                raise ValueError(f"{agent}: action must have shape (2,), got {a.shape}")
            acc[i] = np.clip(a, -1.0, 1.0)
        x_before = self.pos[0, 0]
        self.vel = DECAY * self.vel + GAIN * acc
        self.pos = self.pos + self.vel
        self._collide()
        self._walls()
        self.t += 1
        progress = float(self.pos[0, 0] - x_before)
        arrived = bool(self.pos[0, 0] >= GOAL_X)
        timeout = self.t >= self.max_steps
        done = arrived or timeout
        rewards = {RUNNER: self.shaping * progress, BLOCKER: -self.shaping * progress}
        infos: dict[str, dict[str, Any]] = {
            RUNNER: {"shaping": progress},
            BLOCKER: {"shaping": -progress},
        }
        if done:
            winner = RUNNER if arrived else BLOCKER
            for agent in self.possible_agents:
                won = agent == winner
                rewards[agent] += 1.0 if won else -1.0
                infos[agent]["outcome"] = "win" if won else "loss"
        terminations = {a: arrived for a in self.agents}
        truncations = {a: (timeout and not arrived) for a in self.agents}
        obs = self._observations()
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def _collide(self) -> None:
        d = self.pos[1] - self.pos[0]
        dist = float(np.hypot(*d))
        overlap = 2 * RADIUS - dist
        if overlap <= 0:
            return
        n = d / dist if dist > 1e-9 else np.array([1.0, 0.0])
        self.pos[0] -= 0.5 * overlap * n
        self.pos[1] += 0.5 * overlap * n
        for i, sign in ((0, 1.0), (1, -1.0)):
            towards = sign * float(self.vel[i] @ n)
            if towards > 0:  # moving into the other disc: drop that component
                self.vel[i] -= sign * towards * n

    def _walls(self) -> None:
        lim = np.array([X_LIM, Y_LIM])
        hit = np.abs(self.pos) > lim
        self.pos = np.clip(self.pos, -lim, lim)
        self.vel[hit] = 0.0

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        scale = RENDER_SCALE
        h, w = int(2 * Y_LIM * scale), int(2 * X_LIM * scale)
        frame = np.full((h, w, 3), 235, dtype=np.uint8)
        gx = int((GOAL_X + X_LIM) * scale)
        frame[:, gx : gx + 2] = (40, 160, 40)
        yy, xx = np.mgrid[0:h, 0:w]
        for i, color in enumerate(COLORS):
            cx = (self.pos[i, 0] + X_LIM) * scale
            cy = (Y_LIM - self.pos[i, 1]) * scale
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= (RADIUS * scale) ** 2] = color
        return frame

    # ---- envs.paint.TopDownScene: render() shows the whole field
    def seat_colors(self) -> dict[str, Color]:
        return dict(zip(self.possible_agents, COLORS, strict=True))

    def seat_positions(self) -> dict[str, tuple[float, float]]:
        return {
            seat: (float((x + X_LIM) / (2 * X_LIM)), float((Y_LIM - y) / (2 * Y_LIM)))
            for seat, (x, y) in zip(self.possible_agents, self.pos, strict=True)
        }

    def close(self) -> None:
        pass
