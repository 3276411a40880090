"""Who acts: the ``Policy`` protocol, the differentiable ``TorchPolicy`` and baselines.

``Policy`` is Stable-Baselines3's ``predict`` signature, so an SB3 model is a Policy
as it is. Observations are *batched* (leading axis = environments); recurrent
policies carry ``state`` and reset it where ``episode_start`` is true.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

LOG_STD_RANGE = (-20.0, 5.0)
"""A Gaussian policy file's log-std must lie here: below, its spread underflows to 0
(and torch refuses the distribution); above, its actions are noise."""


@runtime_checkable
class Policy(Protocol):
    """Anything with SB3's ``predict``: maps a batch of observations to actions."""

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


def _is_batched(observation: np.ndarray, space: spaces.Space) -> bool:
    shape = space.shape or ()
    return observation.ndim == len(shape) + 1


class SeededPolicy:
    """Mixin for policies with their own randomness: ``reset(seed=...)`` re-seeds them."""

    rng: np.random.Generator

    def reset(self, *, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)


class RandomPolicy(SeededPolicy):
    """Uniformly random actions from the action space (its own seeded generator)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, seed=None):
        self.observation_space = observation_space
        self.action_space = action_space
        self.reset(seed=seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        batched = _is_batched(observation, self.observation_space)
        n = observation.shape[0] if batched else 1
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            actions = space.start + self.rng.integers(0, space.n, size=n)
        elif isinstance(space, spaces.Box):
            low = np.where(np.isfinite(space.low), space.low, -1.0)
            high = np.where(np.isfinite(space.high), space.high, 1.0)
            actions = self.rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)
        elif isinstance(space, spaces.MultiDiscrete):
            actions = self.rng.integers(0, space.nvec, size=(n, *space.nvec.shape))
        else:
            raise TypeError(f"RandomPolicy does not support {type(space).__name__}")
        return (actions if batched else actions[0]), None


class ZeroPolicy:
    """Always the zero action (stands still in a MuJoCo game; action 0 = NOOP in Atari)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space):
        self.observation_space = observation_space
        self.action_space = action_space
        if isinstance(action_space, spaces.Box):
            zero = np.clip(np.zeros(action_space.shape), action_space.low, action_space.high)
            self._zero = zero.astype(action_space.dtype)
        elif isinstance(action_space, spaces.Discrete):
            self._zero = np.asarray(action_space.start, dtype=np.int64)
        elif isinstance(action_space, spaces.MultiDiscrete):
            self._zero = np.zeros(action_space.nvec.shape, dtype=np.int64)
        else:
            raise TypeError(f"ZeroPolicy does not support {type(action_space).__name__}")

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        if _is_batched(observation, self.observation_space):
            return np.repeat(self._zero[None], observation.shape[0], axis=0), None
        return self._zero.copy(), None


def distribution_mode(dist: D.Distribution) -> torch.Tensor:
    """The most likely action of a categorical or (diagonal) normal distribution."""
    if isinstance(dist, D.Categorical):
        return dist.probs.argmax(dim=-1)
    if isinstance(dist, D.Independent):
        return distribution_mode(dist.base_dist)
    if isinstance(dist, D.Normal):
        return dist.mean
    raise TypeError(f"no mode for {type(dist).__name__}")


def restarted(state: Any, episode_start: Any) -> Any:
    """``state`` (a recurrent policy's, batched on its first axis) with the rows where
    ``episode_start`` is true set to zeros: what the policy carries into the first
    observation of a new episode. ``None`` stays ``None``; a state of another shape is
    returned as it is unless every row restarts (then ``None``)."""
    if state is None or episode_start is None:
        return state
    starts = np.asarray(episode_start, dtype=bool).reshape(-1)
    if not starts.any():
        return state
    if isinstance(state, np.ndarray | torch.Tensor) and len(state) == len(starts):
        out = torch.as_tensor(state).clone()
        out[torch.as_tensor(starts)] = 0.0
        return out
    return None if starts.all() else state


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16), where a
    bfloat16 network runs about 1.6x faster than float32 on one thread."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # an older torch without the probes
        return False


class TorchPolicy(ABC):
    """A policy whose action distribution is a differentiable torch function of its input.

    White-box attacks need three things from a victim, all defined here:

    * ``input_from_obs``: the network's float input for a batch of observations
      (for pixels: ``uint8 / 255``, so ε is on the [0, 1] pixel scale);
    * ``input_low`` / ``input_high``: the valid range of that input (attacks clamp to it);
    * ``forward(x, state, episode_start) -> (distribution, new_state)``: differentiable
      in ``x``. Recurrent policies return their next state; others return ``None``.

    Subclasses must not keep gradients or change mode as a side effect.
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    recurrent: bool = False
    input_low: float | torch.Tensor = -np.inf
    input_high: float | torch.Tensor = np.inf
    search_resolution: float = 0.0
    """The smallest perturbation per input element that ``search_forward`` resolves
    (0 where it is ``forward``); attacks with smaller ε search through ``forward``."""

    @abstractmethod
    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        """Batched observations -> the network's float input tensor."""

    def interval_steps(self) -> list[Any] | None:
        """The steps from the input to the outputs that decide the action, for interval
        bound propagation (``agents.certify``); None where the network is not listed."""
        return None

    def input_scale(self) -> torch.Tensor | None:
        """What one unit of ε is, per element of the input: the standard deviation by
        which the policy normalises its observation (state vectors: the SA-PPO
        convention), or None where ε is on the input itself (pixels on [0, 1])."""
        return None

    def obs_from_input(self, x: torch.Tensor) -> np.ndarray:
        """Inverse of ``input_from_obs`` (rounded to the observation dtype)."""
        arr = x.detach().cpu().numpy()
        dtype = self.observation_space.dtype
        if dtype is not None and np.issubdtype(dtype, np.integer):
            arr = np.rint(arr)
        return arr.astype(dtype)

    @abstractmethod
    def forward(
        self, x: torch.Tensor, state: Any = None, episode_start: np.ndarray | None = None
    ) -> tuple[D.Distribution, Any]:
        """Action distribution for the batch input ``x`` (and the next recurrent state)."""

    def search_forward(
        self, x: torch.Tensor, state: Any = None, episode_start: np.ndarray | None = None
    ) -> tuple[D.Distribution, Any]:
        """The distribution an attack differentiates to choose its next step (PGD's steps
        from its random start): ``forward`` here. A victim may compute it at lower precision
        where that is much faster (the Atari CNN in bfloat16 on CPUs that have it natively).
        Its decisions, clean and attacked, always come from ``forward``."""
        return self.forward(x, state, episode_start)

    def distribution(self, x: torch.Tensor, state: Any = None, episode_start=None):
        return self.forward(x, state, episode_start)[0]

    def value(self, x: torch.Tensor, state: Any = None) -> torch.Tensor | None:
        """The policy's own value estimate, where it has a value head."""
        return None

    def sample(self, dist: D.Distribution, deterministic: bool) -> torch.Tensor:
        return distribution_mode(dist) if deterministic else dist.sample()

    def to_actions(self, actions: torch.Tensor) -> np.ndarray:
        out = actions.detach().cpu().numpy()
        if isinstance(self.action_space, spaces.Box):
            out = np.clip(out, self.action_space.low, self.action_space.high)
            return out.astype(self.action_space.dtype)
        return out.astype(np.int64)

    def act_on_input(self, x, state=None, episode_start=None, deterministic=False):
        """Actions for a (possibly perturbed) network input: the attack's entry point."""
        with torch.no_grad():
            dist, new_state = self.forward(x, state, episode_start)
            return self.to_actions(self.sample(dist, deterministic)), new_state

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        batched = _is_batched(observation, self.observation_space)
        if not batched:
            observation = observation[None]
            if episode_start is not None:
                episode_start = np.asarray(episode_start).reshape(1)
        x = self.input_from_obs(observation)
        actions, state = self.act_on_input(x, state, episode_start, deterministic)
        return (actions if batched else actions[0]), state
