"""Policies made of other policies: normalized, masked, mixed.

``NormalizedPolicy`` puts an SB3 ``VecNormalize``'s observation statistics inside the
differentiable map; ``MaskedPolicy`` is Gleave et al.'s masked victim (the game tells
which observation entries to freeze); ``mix:W1*SPEC1|W2*SPEC2`` draws one policy per
episode (``agents.mixture``).
"""

from __future__ import annotations

from typing import Any, TypeGuard

import numpy as np
import torch
from gymnasium import spaces

from agents.policies import Policy, TorchPolicy
from agents.sb3 import SB3TorchPolicy
from agents.specs import PolicySpecError, register_kind, resolve


class NormalizedPolicy(TorchPolicy):
    """An SB3 policy trained behind ``VecNormalize``: normalization inside ``forward``.

    The network input is the raw observation, so attacks and budgets stay in the
    game's own units; normalization and clipping are part of the differentiable map.
    """

    def __init__(
        self,
        inner: SB3TorchPolicy,
        *,
        mean: np.ndarray,
        var: np.ndarray,
        epsilon: float,
        clip: float,
        enabled: bool = True,
    ):
        self.inner = inner
        self.recurrent = inner.recurrent
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.sqrt(torch.as_tensor(var, dtype=torch.float32) + float(epsilon))
        self.clip = float(clip)
        self.enabled = bool(enabled)
        space = self.observation_space
        if isinstance(space, spaces.Box):
            self.input_low = torch.as_tensor(space.low, dtype=torch.float32)
            self.input_high = torch.as_tensor(space.high, dtype=torch.float32)

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(observation), dtype=torch.float32)

    def input_scale(self) -> torch.Tensor | None:
        return self.std if self.enabled else None

    def interval_steps(self) -> list[Any] | None:
        from agents.certify import Clamp, Normalize

        inner = self.inner.interval_steps() if isinstance(self.inner, TorchPolicy) else None
        if inner is None or not self.enabled:
            return inner
        return [Normalize(self.mean, self.std), Clamp(-self.clip, self.clip), *inner]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        return torch.clamp((x - self.mean) / self.std, -self.clip, self.clip)

    def forward(self, x, state=None, episode_start=None):
        return self.inner.forward(self.normalize(x), state, episode_start)

    def value(self, x, state=None):
        return self.inner.value(self.normalize(x), state)


Relative = tuple[tuple[int, tuple[tuple[int, float], ...]], ...]
"""Observation entries that give the opponent's position relative to the seat's own,
each with the entries whose weighted sum is that own coordinate (up to a constant)."""


class OpponentMask:
    """What Gleave et al.'s masked victim sees of its opponent (their masker replaces the
    opponent's position by its value at the episode's start, ``get_other_qpos``): the
    ``frozen`` entries keep their start values; each ``relative`` entry (the opponent's
    position minus the seat's own) becomes the opponent's start position minus where
    the seat is now: its start value minus how far the seat has moved since.

    A mask keeps, per environment, the start values of the entries it needs
    (``kept``: frozen, relative, then the seat's own coordinates)."""

    def __init__(self, frozen: tuple[int, ...], relative: Relative = ()):
        self.frozen = np.asarray(frozen, dtype=np.int64)
        self.relative = np.asarray([i for i, _ in relative], dtype=np.int64)
        own = sorted({j for _, terms in relative for j, _ in terms})
        self.own = np.asarray(own, dtype=np.int64)
        self.weights = np.zeros((len(relative), len(own)))
        for r, (_, terms) in enumerate(relative):
            for j, w in terms:
                self.weights[r, own.index(j)] += float(w)
        self.kept = np.concatenate([self.frozen, self.relative, self.own])
        self._torch: tuple[torch.Tensor, ...] | None = None

    def _parts(self, start: Any) -> tuple[Any, Any, Any]:
        nf, nr = len(self.frozen), len(self.relative)
        return start[:, :nf], start[:, nf : nf + nr], start[:, nf + nr :]

    def apply(self, flat: np.ndarray, start: np.ndarray) -> np.ndarray:
        """``flat`` (N, D) as the masked victim sees it, given ``start`` (N, len(kept)):
        the kept entries at each episode's start."""
        out = np.array(flat, copy=True)
        frozen, relative, own = self._parts(start)
        out[:, self.frozen] = frozen
        if len(self.relative):
            moved = np.asarray(flat[:, self.own], dtype=np.float64) - own
            out[:, self.relative] = relative - moved @ self.weights.T
        return out

    def apply_torch(self, flat: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """``apply`` on tensors; the frozen and relative entries pass no gradient, the
        seat's own coordinates pass theirs (through the relative entries too)."""
        if self._torch is None:
            self._torch = (
                torch.as_tensor(self.frozen),
                torch.as_tensor(self.relative),
                torch.as_tensor(self.own),
                torch.as_tensor(self.weights, dtype=torch.float32),
            )
        f_idx, r_idx, o_idx, weights = self._torch
        frozen, relative, own = self._parts(start)
        out = flat.index_copy(1, f_idx, frozen.to(flat.dtype))
        if len(self.relative):
            moved = flat[:, o_idx] - own.to(flat.dtype)
            out = out.index_copy(1, r_idx, relative.to(flat.dtype) - moved @ weights.T)
        return out


class _Masking:
    """What both masked victims share: the inner policy, the mask, the start values it
    keeps (forgotten on ``reset``) and the observations every seat shows it."""

    frozen: Any = None
    """Per environment, the kept entries (``OpponentMask.kept``) at the episode's start."""

    def __init__(self, inner: Any, indices: tuple[int, ...], relative: Relative = ()):
        self.inner = inner
        self.opponent = OpponentMask(indices, relative)
        self.indices = self.opponent.frozen
        self.frozen = None

    def reset(self, *, seed: int | None = None) -> None:
        self.frozen = None
        reset = getattr(self.inner, "reset", None)
        if callable(reset):
            reset(seed=seed)

    def see(self, observations: Any) -> None:
        from agents.whitebox import show

        show(self.inner, observations)


class MaskedPolicy(_Masking):
    """Gleave et al.'s masked victim: the opponent's part of the observation is frozen
    at its value at the start of the episode, so the victim cannot react to it.

    ``indices`` are the observation entries describing the opponent (declared by the
    game's ``EnvSpec.opponent_obs``), ``relative`` those giving its position relative to
    the seat's own (``EnvSpec.opponent_relative``; see ``OpponentMask``). Works on any
    Policy; recurrent state passes through.
    """

    def __init__(self, inner: Policy, indices: tuple[int, ...], relative: Relative = ()):
        super().__init__(inner, indices, relative)
        self.observation_space = getattr(inner, "observation_space", None)
        self.action_space = getattr(inner, "action_space", None)

    def mask(self, observation: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        obs = np.asarray(observation)
        flat = obs.reshape(obs.shape[0], -1)
        current = flat[:, self.opponent.kept]
        if self.frozen is None or len(self.frozen) != len(flat):
            self.frozen = current.copy()
        elif episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool)
            self.frozen[starts] = current[starts]
        return self.opponent.apply(flat, self.frozen).reshape(obs.shape)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        single = (
            self.observation_space is not None and observation.shape == self.observation_space.shape
        )
        batch = observation[None] if single else observation
        start = None if episode_start is None else np.asarray(episode_start).reshape(-1)
        action, state = self.inner.predict(self.mask(batch, start), state, start, deterministic)
        return (action[0] if single else action), state


class MaskedTorchPolicy(_Masking, TorchPolicy):
    """The masked victim of a differentiable policy whose input is its observation (state
    vectors: zoo agents, SB3 ``MlpPolicy``s): the mask is applied to the network's input
    inside ``forward``, so observation attacks reach it like any victim, and the entries
    it freezes pass no gradient (perturbing them is in vain, as it should be).

    The frozen entries are those of each environment's first step as the victim saw it
    (perturbed, where an attack perturbed it). Acting gives the actions of
    ``MaskedPolicy`` on the same observations."""

    def __init__(self, inner: TorchPolicy, indices: tuple[int, ...], relative: Relative = ()):
        super().__init__(inner, indices, relative)
        self._index = torch.as_tensor(self.opponent.kept)
        self.observation_space = inner.observation_space
        self.action_space = inner.action_space
        self.recurrent = inner.recurrent
        self.input_low, self.input_high = inner.input_low, inner.input_high

    @staticmethod
    def fits(inner: Policy, observation_space: spaces.Space) -> TypeGuard[TorchPolicy]:
        """Whether ``inner`` is differentiable on an input of its observation's shape."""
        if not isinstance(inner, TorchPolicy) or not isinstance(observation_space, spaces.Box):
            return False
        probe = np.zeros((1, *observation_space.shape), dtype=observation_space.dtype)
        return tuple(inner.input_from_obs(probe).shape[1:]) == observation_space.shape

    def _masked_input(self, x: torch.Tensor, episode_start: Any, update: bool) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        current = flat[:, self._index].detach()
        frozen = self.frozen
        if frozen is None or len(frozen) != len(flat):
            frozen = current.clone()
        elif episode_start is not None:
            starts = torch.as_tensor(np.asarray(episode_start, dtype=bool).reshape(-1))
            frozen = torch.where(starts[:, None], current, frozen)
        if update:
            self.frozen = frozen
        return self.opponent.apply_torch(flat, frozen).reshape(x.shape)

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        return self.inner.input_from_obs(observation)

    def obs_from_input(self, x: torch.Tensor) -> np.ndarray:
        return self.inner.obs_from_input(x)

    def input_scale(self) -> torch.Tensor | None:
        return self.inner.input_scale()

    def forward(self, x, state=None, episode_start=None):
        return self.inner.forward(self._masked_input(x, episode_start, True), state, episode_start)

    def value(self, x, state=None):
        return self.inner.value(self._masked_input(x, None, False), state)


def _mix(arg: str, observation_space, action_space, **context: Any) -> Policy:
    from agents.mixture import MixturePolicy
    from agents.specs import components

    parts = components(arg)
    policies = [resolve(s, observation_space, action_space, **context) for _, s in parts]
    try:
        return MixturePolicy(policies, [w for w, _ in parts])
    except ValueError as exc:
        raise PolicySpecError(f"mix:{arg}: {exc}") from None


register_kind(
    "mix",
    _mix,
    takes_path=False,
    takes_spec=True,
    help="mix:W1*SPEC1|W2*SPEC2, one of them drawn per episode",
)
