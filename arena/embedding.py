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
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import envs
from agents import specs
from agents.policies import Policy
from agents.whitebox import show
from arena.match import check_seats


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
        frozen = check_seats(env_id, frozen or {}, learner=learner_seat)
        kwargs = dict(env_kwargs or {})
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        self.game = envs.make(env_id, **kwargs)
        self.env_id = env_id
        self.learner_seat = learner_seat
        self.render_mode = render_mode
        self.frozen: dict[str, Policy] = {
            seat: _resolve(
                p, self.game.observation_space(seat), self.game.action_space(seat), env_id, seat
            )
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
        seen = {s: np.asarray(o)[None] for s, o in self._obs.items()}
        for seat, policy in self.frozen.items():
            obs = seen[seat]
            show(policy, seen)
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


class EmbeddedVecEnv(VecEnv):
    """``n_envs`` copies of the game as one SB3 ``VecEnv`` for ``learner_seat``.

    The frozen policies run once per step on the whole batch (their recurrent state
    restarts per env at each episode start, ``deterministic=False`` samples their
    actions); the copies are simulated in this process (``workers=0``) or spread over
    worker processes. The reward is the learner's game reward; its ``info`` is the
    game's info for the learner seat. Reward terms (``arena.rewards``) and episode
    statistics (SB3's ``VecMonitor``) wrap it; they read ``frozen``, ``obs`` (every
    seat's current observations), ``infos`` (every seat's info of the last step) and
    ``states`` (the frozen seats' recurrent states).
    """

    def __init__(
        self,
        env_id: str,
        learner_seat: str,
        frozen: Mapping[str, Policy | str] | None = None,
        *,
        n_envs: int = 8,
        workers: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        deterministic: bool = True,
        seed: int = 0,
    ):
        from arena.vector import GameVector

        spec = envs.spec(env_id)
        frozen = check_seats(env_id, frozen or {}, learner=learner_seat)
        self.games = GameVector(env_id, n_envs, env_kwargs=env_kwargs, workers=workers)
        self.env_id, self.learner_seat = env_id, learner_seat
        self.opponent_obs = dict(spec.opponent_obs)
        self.opponent_relative = dict(spec.opponent_relative)
        self.frozen: dict[str, Policy] = {
            seat: _resolve(
                p, self.games.observation_spaces[seat], self.games.action_spaces[seat], env_id, seat
            )
            for seat, p in frozen.items()
        }
        self.deterministic = deterministic
        self.base_seed = seed
        for i, policy in enumerate(self.frozen.values()):
            reset = getattr(policy, "reset", None)
            if callable(reset):
                reset(seed=seed + 7919 * (i + 1))
        super().__init__(
            n_envs,
            self.games.observation_spaces[learner_seat],
            self.games.action_spaces[learner_seat],
        )
        self.obs: dict[str, np.ndarray] = {}
        self.infos: list[dict[str, dict[str, Any]]] = []
        """Every seat's info of the last step, per env (the victims' too)."""
        self.states: dict[str, Any] = dict.fromkeys(self.frozen)
        self._starts = np.ones(n_envs, dtype=bool)
        self._actions: np.ndarray | None = None

    def victim_state(self, seat: str) -> Any:
        """The state the frozen victim of ``seat`` carries into its observation
        ``obs[seat]`` (zeros where an episode just began)."""
        from agents.policies import restarted

        return restarted(self.states[seat], self._starts)

    def reset(self) -> np.ndarray:
        seeds = [s if s is not None else self.base_seed + i for i, s in enumerate(self._seeds)]
        self._reset_seeds()
        self.obs = self.games.reset(seeds)
        self.states = dict.fromkeys(self.frozen)
        self._starts[:] = True
        return self.obs[self.learner_seat]

    def frozen_actions(self) -> dict[str, np.ndarray]:
        out = {}
        for seat, policy in self.frozen.items():
            show(policy, self.obs)
            out[seat], self.states[seat] = policy.predict(
                self.obs[seat],
                state=self.states[seat],
                episode_start=self._starts,
                deterministic=self.deterministic,
            )
        return out

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> Any:
        assert self._actions is not None
        actions = self.frozen_actions()
        actions[self.learner_seat] = np.asarray(self._actions)
        step = self.games.step(actions)
        seat = self.learner_seat
        self.obs, self.infos = step.obs, step.infos
        dones = step.terminated | step.truncated
        infos = []
        for i, info in enumerate(step.infos):
            mine = dict(info[seat])
            if dones[i]:
                mine["terminal_observation"] = info["terminal_observation"][seat]
                mine["TimeLimit.truncated"] = bool(step.truncated[i] and not step.terminated[i])
            infos.append(mine)
        self._starts = dones.copy()
        return step.obs[seat], np.asarray(step.rewards[seat], dtype=np.float64), dones, infos

    def close(self) -> None:
        self.games.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name, None)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError("EmbeddedVecEnv has no per-env methods")

    def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def _resolve(
    policy: Policy | str, obs_space: Any, act_space: Any, env_id: str, seat: str
) -> Policy:
    if not isinstance(policy, str):
        return policy
    return specs.resolve(policy, obs_space, act_space, env_id=env_id, seat=seat)


class VictimFeatures(VecEnvWrapper):
    """The learner's observation followed by its victims' features (``--white-box``,
    ``agents.whitebox``): each frozen victim's greedy action and value, computed by a
    copy of its network from its own observation, with its recurrent state carried as
    the victim carries it. The same features a ``WhiteBoxPolicy`` computes when the
    trained adversary plays; finished episodes' ``terminal_observation`` gets them
    too (from the last state of the episode)."""

    def __init__(self, venv: VecEnv):
        from agents.whitebox import augmented_space, white_box_models

        game = venv.unwrapped
        if not isinstance(game, EmbeddedVecEnv):
            raise TypeError("VictimFeatures wraps an EmbeddedVecEnv")
        self.game = game
        self.models = white_box_models(game.frozen)
        space = augmented_space(venv.observation_space, self.models)
        super().__init__(venv, observation_space=space)
        self.states: dict[str, Any] = {}

    def _features(self, obs: Mapping[str, np.ndarray], starts: np.ndarray) -> np.ndarray:
        from agents.whitebox import victim_features

        features, self.states = victim_features(self.models, obs, self.states, starts)
        return features

    def reset(self) -> np.ndarray:
        own = self.venv.reset()
        self.states = {}
        starts = np.ones(self.num_envs, dtype=bool)
        return np.concatenate([own, self._features(self.game.obs, starts)], axis=1)

    def step_wait(self) -> Any:
        from agents.whitebox import take_rows, victim_features

        own, rewards, dones, infos = self.venv.step_wait()
        done = np.flatnonzero(dones)
        if done.size:  # the finished episodes' last observations, from their last state
            last = {
                s: np.stack([self.game.infos[i]["terminal_observation"][s] for i in done])
                for s in self.models
            }
            states = {s: take_rows(st, done) for s, st in self.states.items()}
            feats, _ = victim_features(self.models, last, states, np.zeros(done.size, bool))
            for k, i in enumerate(done):
                terminal = infos[i]["terminal_observation"]
                infos[i]["terminal_observation"] = np.concatenate([terminal, feats[k]])
        features = self._features(self.game.obs, dones)
        return np.concatenate([own, features], axis=1), rewards, dones, infos
