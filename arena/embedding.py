"""``VictimEmbeddedEnv``: a multi-agent game with frozen policies inside, as a gymnasium.Env.

The idea of Gleave et al. ("curry" the victim into the environment): every seat but
one is played by a fixed policy, so a stock single-agent learner (SB3 PPO) trains
the remaining seat. Used to train adversaries against a frozen victim, and victims
against a fixed opponent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from agents import specs
from agents.policies import Policy


class VictimEmbeddedEnv(gym.Env):
    """The game seen from ``learner_seat``; the other seats act with frozen policies.

    ``frozen`` maps every other seat to a Policy or a policy spec string. The frozen
    policies act deterministically unless ``deterministic=False``; recurrent ones
    carry their state through the episode and restart it at every reset.
    Reward is the learner's game reward; ``info`` carries the game's info for the
    learner seat (``outcome`` at the end, shaping terms).
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        env_id: str,
        learner_seat: str,
        frozen: Mapping[str, Policy | str] | None = None,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        deterministic: bool = True,
        render_mode: str | None = None,
    ):
        super().__init__()
        spec = envs.spec(env_id)
        spec.check_seat(learner_seat)
        frozen = dict(frozen or {})
        for seat in frozen:
            spec.check_seat(seat)
        if learner_seat in frozen:
            raise envs.EnvError(f"seat {learner_seat!r} cannot be both learner and frozen")
        kwargs = dict(env_kwargs or {})
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        self.game = envs.make(env_id, **kwargs)
        self.env_id = env_id
        self.learner_seat = learner_seat
        self.render_mode = render_mode
        missing = [s for s in spec.seats if s != learner_seat and s not in frozen]
        for seat in missing:
            if seat not in spec.default_policies:
                raise envs.EnvError(
                    f"seat {seat!r} of {env_id} needs a frozen policy; seats: "
                    f"{', '.join(spec.seats)}"
                )
            frozen[seat] = spec.default_policies[seat]
        self.frozen: dict[str, Policy] = {
            seat: specs.resolve(
                p,
                self.game.observation_space(seat),
                self.game.action_space(seat),
                env_id=env_id,
                seat=seat,
            )
            if isinstance(p, str)
            else p
            for seat, p in frozen.items()
        }
        self.deterministic = deterministic
        self.observation_space = self.game.observation_space(learner_seat)
        self.action_space = self.game.action_space(learner_seat)
        self._obs: dict[str, Any] = {}
        self._states: dict[str, Any] = {}
        self._start = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            for i, policy in enumerate(self.frozen.values()):
                reset = getattr(policy, "reset", None)
                if callable(reset):
                    reset(seed=seed + 7919 * (i + 1))
        self._obs, infos = self.game.reset(seed=seed, options=options)
        self._states = dict.fromkeys(self.frozen)
        self._start = True
        return self._obs[self.learner_seat], infos.get(self.learner_seat, {})

    def frozen_actions(self) -> dict[str, np.ndarray]:
        actions = {}
        start = np.array([self._start])
        for seat, policy in self.frozen.items():
            obs = np.asarray(self._obs[seat])[None]
            act, self._states[seat] = policy.predict(
                obs,
                state=self._states[seat],
                episode_start=start,
                deterministic=self.deterministic,
            )
            actions[seat] = np.asarray(act)[0]
        self._start = False
        return actions

    def step(self, action):
        actions = self.frozen_actions()
        actions[self.learner_seat] = action
        obs, rewards, terms, truncs, infos = self.game.step(actions)
        self._obs = obs
        seat = self.learner_seat
        return (
            obs[seat],
            float(rewards[seat]),
            bool(terms[seat]),
            bool(truncs[seat]),
            infos.get(seat, {}),
        )

    def render(self):
        return self.game.render()

    def close(self):
        self.game.close()
