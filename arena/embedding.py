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


class EmbeddedVecEnv:
    """``n`` copies of the game as one SB3 ``VecEnv`` for ``learner_seat``.

    The frozen policies run once per step on the whole batch (their recurrent state
    restarts per env at each episode start); the copies are simulated in this
    process (``workers=0``) or spread over worker processes. Each env's ``info`` is
    the game's info for the learner seat plus ``episode`` (return, length) at the end
    of an episode, as SB3's Monitor would give.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _embedded_vec_env_class()(*args, **kwargs)


def _embedded_vec_env_class() -> type:
    global _EMBEDDED_CLS
    if _EMBEDDED_CLS is not None:
        return _EMBEDDED_CLS
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    from arena.vector import GameVector

    class _EmbeddedVecEnv(VecEnv):
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
            shaping: float = 0.0,
            shaping_key: str = "shaping",
            shaping_potential: bool = False,
            victim_value: float = 0.0,
            victim_divergence: float = 0.0,
            gamma: float = 0.99,
        ):
            spec = envs.spec(env_id)
            spec.check_seat(learner_seat)
            frozen = dict(frozen or {})
            for seat in frozen:
                spec.check_seat(seat)
            for seat in spec.seats:
                if seat != learner_seat and seat not in frozen:
                    if seat not in spec.default_policies:
                        raise envs.EnvError(
                            f"seat {seat!r} of {env_id} needs a frozen policy; seats: "
                            f"{', '.join(spec.seats)}"
                        )
                    frozen[seat] = spec.default_policies[seat]
            self.games = GameVector(env_id, n_envs, env_kwargs=env_kwargs, workers=workers)
            self.env_id, self.learner_seat = env_id, learner_seat
            self.frozen: dict[str, Policy] = {
                seat: specs.resolve(
                    p,
                    self.games.observation_spaces[seat],
                    self.games.action_spaces[seat],
                    env_id=env_id,
                    seat=seat,
                )
                if isinstance(p, str)
                else p
                for seat, p in frozen.items()
            }
            self.deterministic = deterministic
            self.base_seed = seed
            # Optional reward terms for the learner, each with a weight that trainers
            # may anneal via set_attr. (c) the game's own shaping: info[seat][shaping_key],
            # a per-step term, or with shaping_potential a level Φ rewarded as γΦ' − Φ;
            # (a) victim_value: Φ = −V_victim(o_victim), lowering the frozen victims'
            # own value estimate (potential-based, so it cannot change what is optimal);
            # (b) victim_divergence: per step, a distance (``action_distance``) between
            # π_v(·|o) and π_v(·|o_masked): how far the adversary pushes the victim's
            # action distribution from what the victim does when the opponent's part of
            # its observation is frozen at the episode's start (its behaviour when the
            # opponent does nothing it could react to; in the spirit of Guo et al.
            # 2021). The same recurrent state for both.
            self.shaping = float(shaping)
            self.shaping_key = shaping_key
            self.shaping_potential = shaping_potential
            self.victim_value = float(victim_value)
            self.victim_divergence = float(victim_divergence)
            self.gamma = float(gamma)
            self._phi_shaping = np.zeros(n_envs)
            self._phi_value = np.zeros(n_envs)
            for i, policy in enumerate(self.frozen.values()):
                reset = getattr(policy, "reset", None)
                if callable(reset):
                    reset(seed=seed + 7919 * (i + 1))
            super().__init__(
                n_envs,
                self.games.observation_spaces[learner_seat],
                self.games.action_spaces[learner_seat],
            )
            self._divergence_seats = {
                seat: np.asarray(spec.opponent_obs[seat], dtype=np.int64)
                for seat, policy in self.frozen.items()
                if spec.opponent_obs.get(seat)
                and hasattr(policy, "forward")
                and hasattr(policy, "input_from_obs")
            }
            if victim_divergence and not self._divergence_seats:
                raise envs.EnvError(
                    f"victim_divergence needs a differentiable victim (zoo:, sb3:, run:) in a "
                    f"game that declares the opponent's observation entries; {env_id} with "
                    f"{', '.join(f'{s}={type(p).__name__}' for s, p in self.frozen.items())} "
                    f"has none"
                )
            self._opponent_start: dict[str, np.ndarray] = {}
            self._obs: dict[str, np.ndarray] = {}
            self._states: dict[str, Any] = dict.fromkeys(self.frozen)
            self._starts = np.ones(n_envs, dtype=bool)
            self._returns = np.zeros(n_envs)
            self._lengths = np.zeros(n_envs, dtype=np.int64)
            self._actions: np.ndarray | None = None

        def reset(self):
            seeds = [s if s is not None else self.base_seed + i for i, s in enumerate(self._seeds)]
            self._reset_seeds()
            self._obs = self.games.reset(seeds)
            self._states = dict.fromkeys(self.frozen)
            self._starts[:] = True
            self._returns[:] = 0
            self._lengths[:] = 0
            self._phi_shaping[:] = 0.0
            self._phi_value = self._victim_potential(self._obs)
            self._opponent_start = {
                seat: self._obs[seat][:, idx].copy() for seat, idx in self._divergence_seats.items()
            }
            return self._obs[self.learner_seat]

        def _victim_divergence(self, obs: dict[str, np.ndarray], dones: np.ndarray) -> np.ndarray:
            """Mean over victims of the distance between π(·|o) and π(·|o_masked); 0 for
            new episodes (see ``action_distance``)."""
            import torch

            total = np.zeros(self.num_envs)
            for seat, idx in self._divergence_seats.items():
                start = self._opponent_start[seat]
                start[dones] = obs[seat][dones][:, idx]
                masked = np.array(obs[seat], copy=True)
                masked[:, idx] = start
                policy: Any = self.frozen[seat]
                with torch.no_grad():
                    x = policy.input_from_obs(np.concatenate([obs[seat], masked]))
                    dist, _ = policy.forward(x, _twice(self._states[seat]))
                total += action_distance(dist, self.num_envs)
            total /= len(self._divergence_seats)
            return np.where(dones, 0.0, total)

        def _victim_potential(self, obs: dict[str, np.ndarray]) -> np.ndarray:
            """−(mean victim value) per env, 0 where no victim has a value head."""
            if not self.victim_value:
                return np.zeros(self.num_envs)
            import torch

            values = []
            with torch.no_grad():
                for seat, policy in self.frozen.items():
                    value = getattr(policy, "value", None)
                    if not callable(value) or not hasattr(policy, "input_from_obs"):
                        continue
                    v = value(policy.input_from_obs(obs[seat]), self._states[seat])
                    if v is not None:
                        values.append(np.asarray(v, dtype=np.float64).reshape(-1))
            return -np.mean(values, axis=0) if values else np.zeros(self.num_envs)

        def _extra_rewards(self, step: Any, dones: np.ndarray) -> np.ndarray:
            seat = self.learner_seat
            extra = np.zeros(self.num_envs)
            if self.shaping:
                term = np.array([float(i[seat].get(self.shaping_key, 0.0)) for i in step.infos])
                if self.shaping_potential:
                    # Φ of a finished episode's last state counts; the next episode starts at 0
                    extra += self.shaping * (self.gamma * term - self._phi_shaping)
                    self._phi_shaping = np.where(dones, 0.0, term)
                else:
                    extra += self.shaping * term
            if self.victim_value:
                phi = self._victim_potential(step.obs)
                # step.obs of a finished env is already the next episode's first state:
                # the terminal potential is 0.
                nxt = np.where(dones, 0.0, phi)
                extra += self.victim_value * (self.gamma * nxt - self._phi_value)
                self._phi_value = phi
            if self.victim_divergence:
                extra += self.victim_divergence * self._victim_divergence(step.obs, dones)
            return extra

        def frozen_actions(self) -> dict[str, np.ndarray]:
            out = {}
            for seat, policy in self.frozen.items():
                out[seat], self._states[seat] = policy.predict(
                    self._obs[seat],
                    state=self._states[seat],
                    episode_start=self._starts,
                    deterministic=self.deterministic,
                )
            return out

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self):
            assert self._actions is not None
            actions = self.frozen_actions()
            actions[self.learner_seat] = np.asarray(self._actions)
            step = self.games.step(actions)
            seat = self.learner_seat
            self._obs = step.obs
            game_rewards = step.rewards[seat]
            dones = step.terminated | step.truncated
            rewards = (game_rewards + self._extra_rewards(step, dones)).astype(np.float32)
            self._returns += game_rewards
            self._lengths += 1
            infos = []
            for i, info in enumerate(step.infos):
                mine = dict(info[seat])
                if dones[i]:
                    mine["terminal_observation"] = info["terminal_observation"][seat]
                    mine["TimeLimit.truncated"] = bool(step.truncated[i] and not step.terminated[i])
                    mine["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i])}
                    self._returns[i] = 0
                    self._lengths[i] = 0
                infos.append(mine)
            self._starts = dones.copy()
            return step.obs[seat], rewards, dones, infos

        def close(self) -> None:
            self.games.close()

        def get_attr(self, attr_name, indices=None):
            return [getattr(self, attr_name, None)] * len(list(self._get_indices(indices)))

        def set_attr(self, attr_name, value, indices=None) -> None:
            setattr(self, attr_name, value)

        def env_method(self, method_name, *args, indices=None, **kwargs):
            raise NotImplementedError("EmbeddedVecEnv has no per-env methods")

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(list(self._get_indices(indices)))

    _EMBEDDED_CLS = _EmbeddedVecEnv
    return _EMBEDDED_CLS


_EMBEDDED_CLS: type | None = None


def action_distance(dist: Any, n: int) -> np.ndarray:
    """Distance between rows ``:n`` and ``n:2n`` of a batched action distribution.

    Normal (diagonal) policies: the squared 2-Wasserstein distance per action dimension,
    mean over dimensions of (Δμ)² + (Δσ)²: in squared action units, so it does not blow
    up for a nearly deterministic victim as the KL does (the zoo runner's KL between
    its real and masked views exceeds 10 nats on most steps). Categorical policies: the
    total variation distance, in [0, 1].
    """
    from torch import distributions as D

    base = dist.base_dist if isinstance(dist, D.Independent) else dist
    if isinstance(base, D.Normal):
        mu, sigma = base.loc, base.scale.expand_as(base.loc)
        d = (mu[:n] - mu[n:]) ** 2 + (sigma[:n] - sigma[n:]) ** 2
        return d.reshape(n, -1).mean(1).double().numpy()
    if isinstance(base, D.Categorical):
        p = base.probs
        return 0.5 * (p[:n] - p[n:]).abs().sum(-1).double().numpy()
    raise TypeError(f"no action distance for {type(dist).__name__} distributions")


def _twice(state: Any) -> Any:
    """A batch-first recurrent state (tensor, array or tuple of them) stacked on itself."""
    import torch

    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_twice(s) for s in state)
    t = torch.as_tensor(state)
    return torch.cat([t, t], dim=0)
