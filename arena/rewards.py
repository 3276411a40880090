"""Reward terms for an adversary, one ``VecEnvWrapper`` each, each with its schedule.

They wrap ``arena.embedding.EmbeddedVecEnv`` (after SB3's ``VecMonitor``, so episode
statistics stay the game's own reward) and add ``weight(t) * term`` to the reward:

- ``GameShaping`` (c): the game's dense shaping from ``info[key]``, per step or as a
  potential Φ rewarded γΦ' − Φ.
- ``VictimValue`` (a): Φ = −V_victim(o_victim), lowering the frozen victims' own value
  estimate (potential-based, so it cannot change what is optimal).
- ``VictimDivergence`` (b): per step, how far the adversary pushes the victim's action
  distribution from what the victim does with the opponent's part of its observation
  frozen at the episode's start (``action_distance``).
- ``VictimReward`` (d): minus the victims' own dense reward (the one they were trained
  on, e.g. ``reward_move``): the adversary gains what the victim loses, the zero-sum
  reading of Guo et al. 2021 (raise the adversary's return, lower the victim's).
- ``VictimNovelty`` (e): how new the victims' observations are (random network
  distillation, Burda et al. 2019): an intrinsic reward for driving the victim into
  states it has not seen, in the spirit of IMAP's state-coverage terms (Zheng et al.
  2024).
- ``VictimFall`` (f): Φ = −(the victim's torso height), potential-based: lowering the
  victim's body, which is how adversaries win these games (it falls, or sinks until it
  counts as down).
- ``FlatWin``: not a dense term and never annealed: every win pays the same goal
  reward, whatever bonus or shortfall the game attaches to how it was won.

A ``LinearAnneal`` schedule takes a weight from its start value to 0 over a number of
environment steps; every term counts its own steps (``num_timesteps``, set on resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from arena.embedding import EmbeddedVecEnv


@dataclass(frozen=True)
class LinearAnneal:
    """``start`` falling linearly to 0 at step ``steps`` (``steps`` 0: constant)."""

    start: float
    steps: int = 0

    def __call__(self, t: int) -> float:
        if self.steps <= 0:
            return self.start
        return self.start * (1.0 - min(1.0, t / self.steps))


class RewardTerm(VecEnvWrapper):
    """Adds ``schedule(num_timesteps) * term`` to the reward; subclasses give ``term``."""

    name = "term"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal):
        super().__init__(venv)
        self.schedule = schedule
        self.num_timesteps = 0
        embedded = venv.unwrapped
        if not isinstance(embedded, EmbeddedVecEnv):
            raise TypeError(f"{type(self).__name__} wraps an EmbeddedVecEnv")
        self.game: EmbeddedVecEnv = embedded

    @property
    def weight(self) -> float:
        return self.schedule(self.num_timesteps)

    def reset(self) -> Any:
        obs = self.venv.reset()
        if self.weight:
            self.start()
        return obs

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        weight = self.weight
        self.num_timesteps += self.num_envs
        if weight:  # annealed to 0: the term is done for good
            rewards = rewards + weight * self.term(dones, infos)
        return obs, rewards, dones, infos

    def start(self) -> None:
        """A fresh batch of episodes began (``reset``)."""

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        raise NotImplementedError


class GameShaping(RewardTerm):
    """(c) The game's own shaping term ``info[key]``; with ``potential``, a level Φ
    rewarded γΦ' − Φ (Φ of a finished episode's last state counts; the next starts at 0)."""

    name = "shaping"

    def __init__(
        self,
        venv: VecEnv,
        schedule: LinearAnneal,
        *,
        key: str = "shaping",
        potential: bool = False,
        gamma: float = 0.99,
    ):
        super().__init__(venv, schedule)
        self.key, self.potential, self.gamma = key, potential, float(gamma)
        self._phi = np.zeros(self.num_envs)

    def start(self) -> None:
        self._phi[:] = 0.0

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        level = np.array([float(info.get(self.key, 0.0)) for info in infos])
        if not self.potential:
            return level
        out = self.gamma * level - self._phi
        self._phi = np.where(dones, 0.0, level)
        return out


class VictimValue(RewardTerm):
    """(a) Φ = −(mean over victims of V_victim(o_victim)), rewarded γΦ' − Φ."""

    name = "victim_value"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal, *, gamma: float = 0.99):
        super().__init__(venv, schedule)
        self.gamma = float(gamma)
        self._phi = np.zeros(self.num_envs)

    def start(self) -> None:
        self._phi = self.potential()

    def potential(self) -> np.ndarray:
        """−(mean victim value) per env, 0 where no victim has a value head."""
        import torch

        values = []
        with torch.no_grad():
            for seat, policy in self.game.frozen.items():
                value = getattr(policy, "value", None)
                if not callable(value) or not hasattr(policy, "input_from_obs"):
                    continue
                x = policy.input_from_obs(self.game.obs[seat])
                v = value(x, self.game.victim_state(seat))
                if v is not None:
                    values.append(np.asarray(v, dtype=np.float64).reshape(-1))
        return -np.mean(values, axis=0) if values else np.zeros(self.num_envs)

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        phi = self.potential()
        # the observation of a finished env is already the next episode's first:
        # the terminal potential is 0
        out = self.gamma * np.where(dones, 0.0, phi) - self._phi
        self._phi = phi
        return out


class VictimDivergence(RewardTerm):
    """(b) Mean over victims of ``action_distance`` between π(·|o) and π(·|o_masked),
    o_masked what the masked victim sees (``agents.wrappers.OpponentMask``: the
    opponent's entries at their episode-start values); 0 on the first step of an
    episode. The same recurrent state for both."""

    name = "victim_divergence"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal):
        super().__init__(venv, schedule)
        game = self.game
        from agents.wrappers import OpponentMask

        self.seats = {
            seat: OpponentMask(game.opponent_obs[seat], game.opponent_relative.get(seat, ()))
            for seat, policy in game.frozen.items()
            if game.opponent_obs.get(seat)
            and hasattr(policy, "forward")
            and hasattr(policy, "input_from_obs")
        }
        if not self.seats:
            frozen = ", ".join(f"{s}={type(p).__name__}" for s, p in game.frozen.items())
            raise ValueError(
                f"victim_divergence needs a differentiable victim (zoo:, sb3:, run:) in a "
                f"game that declares the opponent's observation entries; {game.env_id} with "
                f"{frozen} has none"
            )
        self._opponent_start: dict[str, np.ndarray] = {}

    def start(self) -> None:
        obs = self.game.obs
        self._opponent_start = {
            seat: obs[seat][:, mask.kept].copy() for seat, mask in self.seats.items()
        }

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        import torch

        obs = self.game.obs
        if not self._opponent_start:
            self.start()
        total = np.zeros(self.num_envs)
        for seat, mask in self.seats.items():
            start = self._opponent_start[seat]
            start[dones] = obs[seat][dones][:, mask.kept]
            masked = mask.apply(obs[seat], start)
            policy: Any = self.game.frozen[seat]
            with torch.no_grad():
                x = policy.input_from_obs(np.concatenate([obs[seat], masked]))
                dist, _ = policy.forward(x, _twice(self.game.states[seat]))
            total += action_distance(dist, self.num_envs)
        total /= len(self.seats)
        return np.where(dones, 0.0, total)


class VictimReward(RewardTerm):
    """(d) Minus the mean over victims of their dense reward ``info[victim][key]``."""

    name = "victim_reward"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal, *, key: str = "reward_move"):
        super().__init__(venv, schedule)
        self.key = key

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        victims = list(self.game.frozen)
        return -np.array(
            [np.mean([float(i[v].get(self.key, 0.0)) for v in victims]) for i in self.game.infos]
        )


class VictimNovelty(RewardTerm):
    """(e) Random network distillation on the victims' observations: a fixed random
    network ``target`` and a ``predictor`` trained online on every step's batch; the
    term is the predictor's error on each env's observation, divided by the running
    standard deviation of errors (so its scale does not drift). Observations are
    standardized with running statistics first, as RND needs."""

    name = "victim_novelty"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal, *, seed: int = 0, lr: float = 1e-3):
        import torch

        super().__init__(venv, schedule)
        self.seats = list(self.game.frozen)
        spaces = self.game.games.observation_spaces
        size = sum(int(np.prod(spaces[s].shape or (1,))) for s in self.seats)
        gen = torch.Generator().manual_seed(seed)

        def net() -> Any:
            layers = [torch.nn.Linear(size, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32)]
            for layer in layers:
                if isinstance(layer, torch.nn.Linear):
                    bound = 1.0 / np.sqrt(layer.in_features)
                    with torch.no_grad():
                        layer.weight.uniform_(-bound, bound, generator=gen)
                        layer.bias.uniform_(-bound, bound, generator=gen)
            return torch.nn.Sequential(*layers)

        self.target, self.predictor = net(), net()
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        from stable_baselines3.common.running_mean_std import RunningMeanStd

        self.obs_stats = RunningMeanStd(shape=(size,))
        self.error_stats = RunningMeanStd(shape=())

    def _features(self) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(self.game.obs[s], dtype=np.float64).reshape(self.num_envs, -1)
                for s in self.seats
            ],
            axis=1,
        )

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        import torch

        x = self._features()
        self.obs_stats.update(x)
        z = np.clip((x - self.obs_stats.mean) / np.sqrt(self.obs_stats.var + 1e-8), -5, 5)
        inputs = torch.as_tensor(z, dtype=torch.float32)
        error = ((self.predictor(inputs) - self.target(inputs)) ** 2).mean(1)
        self.optimizer.zero_grad()
        error.mean().backward()
        self.optimizer.step()
        err = error.detach().double().numpy()
        self.error_stats.update(err)
        return err / np.sqrt(self.error_stats.var + 1e-8)


class VictimFall(RewardTerm):
    """(f) Φ = −(the victim's torso height, ``info["opponent_height"]``), rewarded
    γΦ' − Φ. An episode's Φ starts at its first step's level (the reset carries no
    height), so a standing victim is worth nothing and only a change in height pays."""

    name = "victim_fall"

    def __init__(self, venv: VecEnv, schedule: LinearAnneal, *, gamma: float = 0.99):
        super().__init__(venv, schedule)
        self.gamma = float(gamma)
        self._phi = np.full(self.num_envs, np.nan)

    def start(self) -> None:
        self._phi[:] = np.nan

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        level = -np.array([float(info["opponent_height"]) for info in infos])
        before = np.where(np.isnan(self._phi), level, self._phi)
        out = self.gamma * level - before
        self._phi = np.where(dones, np.nan, level)
        return out


class FlatWin(RewardTerm):
    """Every win pays ``goal``: at a won episode's end, ``goal`` minus the game's own
    goal reward (``info["reward_remaining"]``) is added. The games pay some wins more
    or less than others (the keeper +500 for having touched the ball and +500 for
    standing at the end; the blocker 0, not 1000, for a win on time or for falling as
    the runner falls), while a win is a win when the victim is scored. Losses and ties
    keep the game's reward (a keeper's foul, a tie, still costs what a loss costs)."""

    name = "flat_win"

    def __init__(self, venv: VecEnv, goal: float):
        super().__init__(venv, LinearAnneal(1.0))
        self.goal = float(goal)

    def term(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        return np.array(
            [
                self.goal - float(info["reward_remaining"]) if info.get("outcome") == "win" else 0.0
                for info in infos
            ]
        )


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


def reward_terms(venv: VecEnv) -> list[RewardTerm]:
    """The reward terms wrapped around ``venv``'s embedded game, outermost first."""
    out = []
    while isinstance(venv, VecEnvWrapper):
        if isinstance(venv, RewardTerm):
            out.append(venv)
        venv = venv.venv
    return out
