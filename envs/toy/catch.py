"""``toy_catch_v0``: catch falling balls from pixels; one seat, ``player``.

A frame of ``size × size`` gray pixels (uint8, channel-first ``(1, H, W)``) shows
a 2×2 ball falling one row per step and a paddle (6×2) on the bottom rows.
Actions: 0 = stay, 1 = left, 2 = right (2 pixels a step). A ball that reaches
the paddle's rows is caught (+1) or missed (-1); then the next ball starts at a
random column. An episode is ``balls`` balls; the player wins when it caught
more than it missed. Small enough that a little CNN learns it in a minute or two,
big enough to be a real pixel victim for observation attacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.paint import Color

PLAYER = "player"
BALL, PADDLE_W, PADDLE_H, SPEED = 2, 6, 2, 2
PADDLE_GRAY = 170
ACTIONS = ("stay", "left", "right")


class CatchEnv(ParallelEnv):
    metadata = {"name": "toy_catch_v0", "render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, *, size: int = 24, balls: int = 10, render_mode: str | None = None):
        if size < 12:
            raise ValueError(f"size must be >= 12, got {size}")
        if balls <= 0:
            raise ValueError(f"balls must be > 0, got {balls}")
        self.size, self.balls = int(size), int(balls)
        self.render_mode = render_mode
        self.possible_agents = [PLAYER]
        self.agents: list[str] = []
        self._obs_space = spaces.Box(0, 255, shape=(1, size, size), dtype=np.uint8)
        self._act_space = spaces.Discrete(3)
        self._rng = np.random.default_rng()
        self.ball = np.zeros(2, dtype=np.int64)  # row, col of the ball's top-left
        self.paddle = 0  # col of the paddle's left edge
        self.caught = self.missed = 0

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_space

    def _new_ball(self) -> None:
        self.ball = np.array([0, self._rng.integers(0, self.size - BALL + 1)])

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = [PLAYER]
        self.paddle = int(self._rng.integers(0, self.size - PADDLE_W + 1))
        self.caught = self.missed = 0
        self._new_ball()
        return {PLAYER: self._frame()}, {PLAYER: {}}

    def _frame(self) -> np.ndarray:
        frame = np.zeros((1, self.size, self.size), dtype=np.uint8)
        r, c = self.ball
        frame[0, r : r + BALL, c : c + BALL] = 255
        frame[0, self.size - PADDLE_H :, self.paddle : self.paddle + PADDLE_W] = PADDLE_GRAY
        return frame

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        action = int(np.asarray(actions[PLAYER]).reshape(()))
        if action not in (0, 1, 2):
            raise ValueError(f"player: action must be 0, 1 or 2, got {action}")
        move = (0, -SPEED, SPEED)[action]
        self.paddle = int(np.clip(self.paddle + move, 0, self.size - PADDLE_W))
        self.ball[0] += 1
        reward = 0.0
        if self.ball[0] + BALL > self.size - PADDLE_H:  # the ball reached the paddle rows
            c = int(self.ball[1])
            hit = c + BALL > self.paddle and c < self.paddle + PADDLE_W
            reward = 1.0 if hit else -1.0
            self.caught += hit
            self.missed += not hit
            self._new_ball()
        done = self.caught + self.missed >= self.balls
        info: dict[str, Any] = {"caught": self.caught, "missed": self.missed}
        if done:
            diff = self.caught - self.missed
            info["outcome"] = "win" if diff > 0 else ("loss" if diff < 0 else "tie")
            self.agents = []
        obs = {PLAYER: self._frame()}
        return obs, {PLAYER: reward}, {PLAYER: done}, {PLAYER: False}, {PLAYER: info}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        gray = np.repeat(self._frame()[0][..., None], 3, axis=2)
        return np.kron(gray, np.ones((8, 8, 1), dtype=np.uint8))

    # ---- envs.paint.TopDownScene and NamedActions
    def seat_colors(self) -> dict[str, Color]:
        return {PLAYER: (PADDLE_GRAY, PADDLE_GRAY, PADDLE_GRAY)}

    def seat_positions(self) -> dict[str, tuple[float, float]]:
        """The paddle's center."""
        return {PLAYER: ((self.paddle + PADDLE_W / 2) / self.size, 1.0 - PADDLE_H / 2 / self.size)}

    def action_names(self, seat: str) -> tuple[str, ...]:
        return ACTIONS

    def close(self) -> None:
        pass
