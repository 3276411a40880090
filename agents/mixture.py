"""``MixturePolicy``: one of several policies, drawn anew for each episode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.policies import Policy


class MixturePolicy:
    """Plays component ``k`` for a whole episode, ``k`` drawn with ``weights`` at each
    episode start (per environment of the batch). Used to fine-tune a victim against
    a mix of the adversary and its normal opponent.
    """

    def __init__(self, components: Sequence[Policy], weights: Sequence[float], seed=None):
        if len(components) != len(weights) or not components:
            raise ValueError("one weight per component, at least one component")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)}")
        self.components = list(components)
        self.weights = w / w.sum()
        self.choice: np.ndarray | None = None
        self.observation_space = getattr(components[0], "observation_space", None)
        self.action_space = getattr(components[0], "action_space", None)
        self.reset(seed=seed)

    def reset(self, *, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.choice = None
        for i, c in enumerate(self.components):
            reset = getattr(c, "reset", None)
            if callable(reset):
                reset(seed=None if seed is None else seed + 31 * (i + 1))

    def see(self, observations: Any) -> None:
        """Every seat's observations, for the components that read them (white-box)."""
        from agents.whitebox import show

        for c in self.components:
            show(c, observations)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        n = observation.shape[0]
        starts = np.ones(n, bool) if episode_start is None else np.asarray(episode_start, bool)
        if self.choice is None or len(self.choice) != n:
            self.choice = self.rng.choice(len(self.components), size=n, p=self.weights)
        else:
            k = int(starts.sum())
            if k:
                self.choice[starts] = self.rng.choice(len(self.components), size=k, p=self.weights)
        states: list[Any] = list(state) if state is not None else [None] * len(self.components)
        actions = None
        for i, c in enumerate(self.components):
            a, states[i] = c.predict(observation, states[i], starts, deterministic)
            a = np.asarray(a)
            if actions is None:
                actions = np.empty_like(a)
            mask = self.choice == i
            actions[mask] = a[mask]
        return actions, tuple(states)
