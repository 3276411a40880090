"""White-box adversaries: a policy that also sees what its victim is about to do.

A white-box adversary keeps a copy of its victim (the same network, loaded from the
same file) and runs it on the victim's own observation every step, with the victim's
recurrent state carried exactly as the victim carries it (an LSTM's state depends on
its observations only, never on the actions it samples). The adversary's observation
is its own, followed by the *victim features*: for each victim seat, its greedy
action (the mean of a Gaussian, clipped to the action bounds; a categorical's
probabilities) and its own value estimate (0 where it has no value head).

The victim's observation is a function of the game's state, so this is the access of
an attacker who knows the victim's weights and sees the game: what Gleave et al. call
white-box. Call sites hand every seat's observation to a policy before it acts
(``show``); a white-box policy reads them, any other ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

from agents.policies import Policy, TorchPolicy, distribution_mode, restarted
from agents.specs import PolicySpecError


class WhiteBoxError(PolicySpecError):
    """A white-box adversary that cannot be built or cannot act (one line)."""


def show(policy: Any, observations: Mapping[str, np.ndarray]) -> None:
    """Give ``policy`` every seat's batch of observations before it acts, if it reads
    them (white-box policies, and wrappers that hold one)."""
    see = getattr(policy, "see", None)
    if callable(see):
        see(observations)


def feature_size(models: Mapping[str, TorchPolicy]) -> int:
    """Entries the victim features add to the adversary's observation."""
    total = 0
    for seat, model in models.items():
        space = model.action_space
        if isinstance(space, spaces.Box):
            total += int(np.prod(space.shape)) + 1
        elif isinstance(space, spaces.Discrete):
            total += int(space.n) + 1
        else:
            raise WhiteBoxError(
                f"white-box features need a Box or Discrete action space; victim {seat!r} "
                f"has {type(space).__name__}"
            )
    return total


def augmented_space(own: spaces.Space, models: Mapping[str, TorchPolicy]) -> spaces.Box:
    """The adversary's observation space: its own (a flat Box) and the victim features."""
    if not isinstance(own, spaces.Box) or len(own.shape) != 1:
        raise WhiteBoxError(
            f"a white-box adversary needs a flat Box observation, not {own}; white-box "
            f"training works in the MuJoCo games"
        )
    extra = feature_size(models)
    low = np.concatenate([own.low.astype(np.float32), np.full(extra, -np.inf, np.float32)])
    high = np.concatenate([own.high.astype(np.float32), np.full(extra, np.inf, np.float32)])
    return spaces.Box(low, high, dtype=np.float32)


def white_box_models(victims: Mapping[str, Policy]) -> dict[str, TorchPolicy]:
    """The victims as differentiable models, or a ``WhiteBoxError`` naming the seat."""
    out: dict[str, TorchPolicy] = {}
    for seat in sorted(victims):
        model = victims[seat]
        if not isinstance(model, TorchPolicy):
            raise WhiteBoxError(
                f"--white-box needs the victim's network: seat {seat!r} plays "
                f"{type(model).__name__}; give a zoo:, sb3: or run: victim"
            )
        out[seat] = model
    return out


def take_rows(state: Any, rows: np.ndarray) -> Any:
    """The recurrent state of the batch entries ``rows`` (``None`` stays ``None``)."""
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(take_rows(s, rows) for s in state)
    return state[torch.as_tensor(rows) if isinstance(state, torch.Tensor) else rows]


def victim_features(
    models: Mapping[str, TorchPolicy],
    observations: Mapping[str, np.ndarray],
    states: Mapping[str, Any],
    episode_start: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(features (n, feature_size), next states)`` for a batch of every victim's
    observations; ``episode_start`` restarts the recurrent states where true."""
    parts: list[np.ndarray] = []
    new_states: dict[str, Any] = {}
    starts = np.asarray(episode_start, dtype=bool).reshape(-1)
    with torch.no_grad():
        for seat, model in models.items():
            obs = np.asarray(observations[seat])
            x = model.input_from_obs(obs)
            state = states.get(seat)
            dist, new_states[seat] = model.forward(x, state, starts)
            space = model.action_space
            if isinstance(space, spaces.Box):
                act = distribution_mode(dist).reshape(len(obs), -1).numpy()
                act = np.clip(act, space.low.reshape(-1), space.high.reshape(-1))
            else:
                if not isinstance(dist, D.Categorical):
                    raise WhiteBoxError(f"victim {seat!r}: no probabilities in {dist!r}")
                act = dist.probs.reshape(len(obs), -1).numpy()
            value = model.value(x, restarted(state, starts))
            v = (
                np.zeros((len(obs), 1))
                if value is None
                else np.asarray(value, dtype=np.float64).reshape(len(obs), 1)
            )
            parts += [act.astype(np.float32), v.astype(np.float32)]
    return np.concatenate(parts, axis=1), new_states


class WhiteBoxPolicy:
    """An adversary trained with ``--white-box``: ``inner`` acts on its own observation
    followed by the features of ``models`` (its copies of the victims) computed from
    the observations ``see`` was given for this step."""

    def __init__(
        self,
        inner: Policy,
        models: Mapping[str, TorchPolicy],
        observation_space: spaces.Space,
        action_space: spaces.Space,
    ):
        self.inner = inner
        self.models = dict(models)
        self.observation_space = observation_space
        self.action_space = action_space
        self._seen: Mapping[str, np.ndarray] | None = None

    def see(self, observations: Mapping[str, np.ndarray]) -> None:
        self._seen = observations

    def reset(self, *, seed: int | None = None) -> None:
        reset = getattr(self.inner, "reset", None)
        if callable(reset):
            reset(seed=seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        if self._seen is None:
            raise WhiteBoxError(
                "a white-box adversary acts on the victim's observation too: show it every "
                "seat's observations first (agents.whitebox.show)"
            )
        seen, self._seen = self._seen, None
        own = np.asarray(observation, dtype=np.float32)
        single = own.ndim == 1
        if single:
            own = own[None]
            seen = {s: np.asarray(o)[None] for s, o in seen.items()}
        n = len(own)
        starts = (
            np.ones(n, dtype=bool)
            if episode_start is None
            else np.asarray(episode_start, dtype=bool).reshape(-1)
        )
        model_states, inner_state = state if state is not None else ({}, None)
        missing = sorted(set(self.models) - set(seen))
        if missing:
            raise WhiteBoxError(f"white-box adversary: no observation of seat {missing[0]!r}")
        features, model_states = victim_features(self.models, seen, model_states, starts)
        joint = np.concatenate([own, features], axis=1)
        actions, inner_state = self.inner.predict(joint, inner_state, starts, deterministic)
        return (actions[0] if single else actions), (model_states, inner_state)

    def __repr__(self) -> str:
        return f"WhiteBoxPolicy({self.inner!r}, victims={sorted(self.models)})"
