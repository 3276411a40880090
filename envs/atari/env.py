"""``AtariEnv``: one ALE game as a one-seat PettingZoo ``ParallelEnv`` (seat ``player``).

The observation pipeline is the classic DeepMind preprocessing exactly as
stable-baselines3's ``make_atari_env`` + ``VecFrameStack(4)`` + ``VecTransposeImage``
build it on ``<Game>NoFrameskip-v4``, because that is what the pretrained victims
(../shared/atari/README.md) were trained on:

* reset: ``1..noop_max`` raw NOOP frames (drawn from the episode's seeded RNG), then,
  for games whose action 1 is FIRE, the agent steps FIRE and action 2 (fire reset);
* each agent step repeats the action ``frame_skip`` frames, sums the rewards and
  max-pools the last two RGB frames;
* RGB -> gray (``cv2.cvtColor``) -> 84×84 (``cv2.resize``, ``INTER_AREA``), uint8;
* the last ``frame_stack`` frames, oldest first, channel-first: ``(4, 84, 84)`` uint8.
  At reset the stack is zeros with the first frame in the last slot (as
  ``VecFrameStack`` does).

Differences from training, on purpose: the episode is the *full game* and the return
is the unclipped game score. The victims were trained with episodic life (a lost
life ended their episode); with ``life_loss_reset=True`` (default) a lost life here
does what their training env did at that moment (frame stack cleared, NOOP, then the
fire reset) but the game goes on. ``terminal_on_life_loss=True`` ends the episode
instead.

Sticky actions are off by default (``repeat_action_probability=0``, as in the
``NoFrameskip-v4`` envs the victims were trained on). With sticky actions on, ALE's
RNG is seeded from the reset seed, so episodes still replay bit for bit.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from ale_py import ALEInterface, LoggerMode, roms
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.registry import EnvError

PLAYER = "player"


class AtariEnv(ParallelEnv):
    """One Atari game, DeepMind-preprocessed. See the module docstring for the pipeline.

    Args:
        game: an ale-py ROM id (``"pong"``, ``"space_invaders"``...).
        frame_skip: frames per agent step (the action is repeated), >= 1.
        noop_max: at most this many random raw NOOP frames at reset (0 disables).
        frame_stack: frames per observation, >= 1.
        screen_size: side of the square gray frame.
        repeat_action_probability: ALE sticky actions (0 = off).
        full_action_space: all 18 actions instead of the game's minimal set.
        max_episode_steps: truncate after this many agent steps (None = never).
        terminal_on_life_loss: end the episode when a life is lost.
        life_loss_reset: on a lost life, clear the frame stack, NOOP, fire reset.
        fire_reset: press FIRE (and action 2) after reset, for games that need it.
    """

    metadata = {"name": "atari_v0", "render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        *,
        frame_skip: int = 4,
        noop_max: int = 30,
        frame_stack: int = 4,
        screen_size: int = 84,
        repeat_action_probability: float = 0.0,
        full_action_space: bool = False,
        max_episode_steps: int | None = 27_000,
        terminal_on_life_loss: bool = False,
        life_loss_reset: bool = True,
        fire_reset: bool = True,
        render_mode: str | None = None,
    ):
        for name, value, low in (
            ("frame_skip", frame_skip, 1),
            ("noop_max", noop_max, 0),
            ("frame_stack", frame_stack, 1),
            ("screen_size", screen_size, 8),
        ):
            if int(value) != value or value < low:
                raise EnvError(f"{name} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= repeat_action_probability <= 1.0:
            raise EnvError(
                f"repeat_action_probability must be in [0, 1], got {repeat_action_probability}"
            )
        if max_episode_steps is not None and max_episode_steps <= 0:
            raise EnvError(f"max_episode_steps must be > 0 or None, got {max_episode_steps}")
        if render_mode not in (None, "rgb_array"):
            raise EnvError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        path = roms.get_rom_path(game)
        if path is None:
            raise EnvError(f"ale-py ships no ROM named {game!r}")
        if ALEInterface.isSupportedROM(str(path)) is None:
            # ALE would print "Attempt to wrap ROM ... failed" and end the process
            raise EnvError(
                f"ale-py's ROM {game!r} has no single-player mode (a two-player-only game)"
            )
        self.game = game
        self.frame_skip, self.noop_max = int(frame_skip), int(noop_max)
        self.frame_stack, self.screen_size = int(frame_stack), int(screen_size)
        self.repeat_action_probability = float(repeat_action_probability)
        self.max_episode_steps = max_episode_steps
        self.terminal_on_life_loss = bool(terminal_on_life_loss)
        self.life_loss_reset = bool(life_loss_reset)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "name": f"atari_{game}_v0"}

        self._rom = path
        ALEInterface.setLoggerMode(LoggerMode.Error)  # no banner on stderr per game
        self.ale = ALEInterface()
        self._seed_ale(int(np.random.SeedSequence().generate_state(1)[0]))
        actions = (
            self.ale.getLegalActionSet() if full_action_space else (self.ale.getMinimalActionSet())
        )
        self._actions = list(actions)
        meanings = [str(a).rsplit(".", 1)[-1] for a in self._actions]
        self.action_meanings = meanings
        self._fire = bool(fire_reset) and len(meanings) >= 3 and meanings[1] == "FIRE"

        self.possible_agents = [PLAYER]
        self.agents: list[str] = []
        shape = (self.frame_stack, self.screen_size, self.screen_size)
        self._obs_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self._act_space = spaces.Discrete(len(self._actions))
        self._rng = np.random.default_rng()
        h, w = self.ale.getScreenDims()
        self._raw = np.zeros((2, h, w, 3), dtype=np.uint8)
        self._stack = np.zeros(shape, dtype=np.uint8)
        self._steps = 0
        self._score = 0.0
        self._lives = 0

    # ------------------------------------------------------------------ spaces

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_space

    # ------------------------------------------------------------------ internals

    def _seed_ale(self, ale_seed: int) -> None:
        self.ale.setInt("random_seed", int(np.int32(ale_seed & 0x7FFFFFFF)))
        self.ale.setFloat("repeat_action_probability", self.repeat_action_probability)
        self.ale.setInt("frame_skip", 1)
        self.ale.setInt("max_num_frames_per_episode", 0)
        self.ale.loadROM(self._rom)

    def _frame(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (self.screen_size, self.screen_size), interpolation=cv2.INTER_AREA)

    def _push(self, frame: np.ndarray) -> None:
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = frame

    def _clear_stack(self, frame: np.ndarray) -> None:
        self._stack[:] = 0
        self._stack[-1] = frame

    def _skip(self, action_index: int) -> tuple[float, np.ndarray]:
        """``frame_skip`` frames of one action: summed reward, max of the last two frames."""
        action = self._actions[action_index]
        reward = 0.0
        for i in range(self.frame_skip):
            reward += self.ale.act(action)
            if i >= self.frame_skip - 2:
                self.ale.getScreenRGB(self._raw[i - (self.frame_skip - 2)])
            if self.ale.game_over():
                break
        if self.frame_skip == 1:
            return reward, self._frame(self._raw[0])
        return reward, self._frame(np.maximum(self._raw[0], self._raw[1]))

    def _fire_sequence(self) -> tuple[float, np.ndarray | None]:
        reward, frame = 0.0, None
        if self._fire:
            for a in (1, 2):
                r, frame = self._skip(a)
                reward += r
                if self.ale.game_over():
                    break
        return reward, frame

    # ------------------------------------------------------------------ API

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            np_seed, ale_seed = np.random.SeedSequence(seed).generate_state(2)
            self._rng = np.random.default_rng(int(np_seed))
            self._seed_ale(int(ale_seed))
        self.ale.reset_game()
        noops = int(self._rng.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for _ in range(noops):
            self.ale.act(self._actions[0])
            if self.ale.game_over():
                self.ale.reset_game()
        self.ale.getScreenRGB(self._raw[0])
        self._raw[1] = self._raw[0]
        frame = self._frame(self._raw[0])
        _, fired = self._fire_sequence()
        if fired is not None:
            frame = fired
        self._clear_stack(frame)
        self._steps, self._score = 0, 0.0
        self._lives = self.ale.lives()
        self.agents = [PLAYER]
        return {PLAYER: self._stack.copy()}, {PLAYER: {"lives": self._lives}}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        action = int(np.asarray(actions[PLAYER]).reshape(()))
        if not 0 <= action < len(self._actions):
            raise EnvError(f"player: action must be in 0..{len(self._actions) - 1}, got {action}")
        reward, frame = self._skip(action)
        self._push(frame)
        self._steps += 1
        game_over = self.ale.game_over()
        lives = self.ale.lives()
        life_lost = 0 < lives < self._lives
        self._lives = lives
        terminated = game_over or (life_lost and self.terminal_on_life_loss)
        if life_lost and not terminated and self.life_loss_reset:
            r, frame = self._skip(0)
            r2, fired = self._fire_sequence()
            reward += r + r2
            self._clear_stack(fired if fired is not None else frame)
            terminated = self.ale.game_over()
        self._score += reward
        truncated = (
            not terminated
            and self.max_episode_steps is not None
            and self._steps >= self.max_episode_steps
        )
        info: dict[str, Any] = {"lives": lives, "score": self._score}
        if terminated or truncated:
            info["outcome"] = "win" if self._score > 0 else ("loss" if self._score < 0 else "tie")
            self.agents = []
        return (
            {PLAYER: self._stack.copy()},
            {PLAYER: float(reward)},
            {PLAYER: bool(terminated)},
            {PLAYER: bool(truncated)},
            {PLAYER: info},
        )

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.ale.getScreenRGB()

    def action_names(self, seat: str) -> list[str]:
        """``envs.paint.NamedActions``: ale-py's names (``NOOP``, ``FIRE``, ...)."""
        return list(self.action_meanings)

    def close(self) -> None:
        pass
