"""Stable-Baselines3 policy files as victims, loaded without running code from them.

SB3's own ``load`` unpickles several entries of the file with cloudpickle, which can
run arbitrary code. Here the file's JSON is read as JSON, its pickled entries go
through ``restricted_loads`` (allow-listed classes only), and the weights through
``torch.load(weights_only=True)``. Only the policy network is rebuilt; no algorithm
object, no optimiser state.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

from agents.policies import TorchPolicy
from agents.safe_pickle import UnsafePickleError, restricted_loads


class PolicyFileError(ValueError):
    """A policy file that is missing, malformed or does not fit the seat."""


_PICKLED_KEYS = ("policy_class", "policy_kwargs", "observation_space", "action_space")


def read_sb3_zip(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The SB3 file's (safely decoded) data entries and the policy's state dict."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"no such SB3 file: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "data" not in names or "policy.pth" not in names:
                raise PolicyFileError(
                    f"{path} is not an SB3 model file (needs 'data' and 'policy.pth' inside)"
                )
            raw = json.loads(archive.read("data").decode())
            state = torch.load(
                io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True
            )
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise PolicyFileError(f"{path} is not a readable SB3 model file: {exc}") from None
    except Exception as exc:  # torch's weights_only loader refusing a global
        if "weights_only" in str(exc) or "Unsupported" in str(exc):
            raise PolicyFileError(f"{path}: refusing unsafe content in policy.pth") from None
        raise
    data: dict[str, Any] = {}
    for key, item in raw.items():
        if isinstance(item, dict) and ":serialized:" in item:
            if key not in _PICKLED_KEYS:
                continue  # optimiser classes, schedules...: never needed for acting
            try:
                data[key] = restricted_loads(base64.b64decode(item[":serialized:"]))
            except UnsafePickleError as exc:
                raise PolicyFileError(f"{path}: entry {key!r}: {exc}") from None
        else:
            data[key] = item
    missing = [k for k in ("policy_class", "observation_space", "action_space") if k not in data]
    if missing:
        raise PolicyFileError(f"{path}: SB3 file lacks {', '.join(missing)}")
    return data, state


def load_sb3_policy(path: str | Path) -> Any:
    """Rebuild the SB3 ``BasePolicy`` stored in ``path`` (in eval mode, on the CPU)."""
    data, state = read_sb3_zip(path)
    policy_cls = data["policy_class"]
    kwargs = dict(data.get("policy_kwargs") or {})
    try:
        policy = policy_cls(
            data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs
        )
        policy.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise PolicyFileError(f"{path}: weights do not fit the stored network: {exc}") from None
    policy.set_training_mode(False)
    return policy


def _space_desc(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    return f"{type(space).__name__}{tuple(space.shape or ())}"


class SB3TorchPolicy(TorchPolicy):
    """An SB3 actor-critic or DQN policy seen as a differentiable ``TorchPolicy``.

    For image observations the network input is the frame on the [0, 1] scale
    (SB3 divides uint8 frames by 255); a channel-last seat is transposed to the
    channel-first layout SB3 trained on.
    """

    def __init__(self, sb3_policy: Any, observation_space: spaces.Space | None = None):
        self.policy = sb3_policy
        self.observation_space = observation_space or sb3_policy.observation_space
        self.action_space = sb3_policy.action_space
        inner = sb3_policy.observation_space
        self._image = bool(
            isinstance(inner, spaces.Box)
            and inner.dtype == np.uint8
            and getattr(sb3_policy, "normalize_images", False)
            and len(inner.shape) == 3
        )
        self._transpose = (self.observation_space.shape or ()) != (inner.shape or ())
        if self._image:
            self.input_low, self.input_high = 0.0, 1.0
        elif isinstance(inner, spaces.Box):
            self.input_low = torch.as_tensor(inner.low, dtype=torch.float32)
            self.input_high = torch.as_tensor(inner.high, dtype=torch.float32)

    @property
    def module(self) -> torch.nn.Module:
        return self.policy

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(observation), dtype=torch.float32)
        if self._transpose:
            x = x.permute(0, 3, 1, 2)
        return x / 255.0 if self._image else x

    def obs_from_input(self, x: torch.Tensor) -> np.ndarray:
        if self._image:
            x = x * 255.0
        if self._transpose:
            x = x.permute(0, 2, 3, 1)
        return super().obs_from_input(x)

    def _features_input(self, x: torch.Tensor) -> torch.Tensor:
        # SB3's preprocessing divides image inputs by 255 again: undo our scaling.
        return x * 255.0 if self._image else x

    def forward(self, x, state=None, episode_start=None):
        obs = self._features_input(x)
        if hasattr(self.policy, "q_net"):  # DQN: greedy on Q; softmax(Q) when sampled
            q = self.policy.q_net(obs)
            return D.Categorical(logits=q), None
        return self.policy.get_distribution(obs).distribution, None

    def value(self, x, state=None):
        if hasattr(self.policy, "predict_values"):
            return self.policy.predict_values(self._features_input(x)).squeeze(-1)
        return None


def sb3_victim(
    path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> SB3TorchPolicy:
    """Load ``path`` for a seat with the given spaces, or say why it does not fit."""
    policy = load_sb3_policy(path)
    obs_inner, act_inner = policy.observation_space, policy.action_space
    seat_shape, file_shape = observation_space.shape or (), obs_inner.shape or ()
    fits_obs = seat_shape == file_shape or (
        len(seat_shape) == 3 and (seat_shape[2], seat_shape[0], seat_shape[1]) == file_shape
    )
    if isinstance(action_space, spaces.Discrete):
        fits_act = isinstance(act_inner, spaces.Discrete) and act_inner.n == action_space.n
    else:
        fits_act = type(act_inner) is type(action_space) and act_inner.shape == action_space.shape
    if not (fits_obs and fits_act):
        raise PolicyFileError(
            f"{path} takes {_space_desc(obs_inner)} -> {_space_desc(act_inner)}, but the seat "
            f"has {_space_desc(observation_space)} -> {_space_desc(action_space)}"
        )
    return SB3TorchPolicy(policy, observation_space)
