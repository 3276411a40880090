"""Stable-Baselines3 policy files as victims, loaded without running code from them.

SB3's own ``load`` unpickles several entries of the file with cloudpickle, which can
run arbitrary code. Here the file's ``data`` is read as JSON; of its pickled entries
only the four a policy needs (its class, keyword arguments and spaces) are decoded,
by ``agents.safe_pickle.inert_loads``, which builds nothing but plain data, arrays,
spaces and inert class tokens; the class tokens are mapped to real classes through
the explicit tables below, and the keyword arguments are checked key by key. The
weights in ``policy.pth`` are read by ``read_torch_weights`` (no ``torch.load``).
Only the policy network is rebuilt; no algorithm object, no optimizer state.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import typing
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import distributions as D

from agents.policies import LOG_STD_RANGE, TorchPolicy
from agents.safe_pickle import (
    Global,
    UnsafePickleError,
    inert_loads,
    read_torch_file,
    read_torch_weights,
)
from agents.safe_pickle import resolve_token as _resolve_token


class PolicyFileError(ValueError):
    """A policy file that is missing, malformed or does not fit the seat."""


_PICKLED_KEYS = ("policy_class", "policy_kwargs", "observation_space", "action_space")
MAX_DATA_BYTES = 64 << 20
MAX_WEIGHT_BYTES = 1 << 30
MAX_WIDTH = 4096
MAX_LAYERS = 8


def _policy_classes() -> dict[tuple[str, str], Any]:
    from sb3_contrib.common.recurrent import policies as recurrent
    from stable_baselines3.common import policies
    from stable_baselines3.dqn import policies as dqn

    return {
        (c.__module__, c.__qualname__): c
        for c in (
            policies.ActorCriticPolicy,
            policies.ActorCriticCnnPolicy,
            policies.MultiInputActorCriticPolicy,
            dqn.DQNPolicy,
            dqn.CnnPolicy,
            dqn.MultiInputPolicy,
            recurrent.RecurrentActorCriticPolicy,
        )
    }


def _kwarg_classes() -> dict[str, dict[tuple[str, str], Any]]:
    from stable_baselines3.common import torch_layers

    from agents import networks

    def table(*classes: Any) -> dict[tuple[str, str], Any]:
        return {(c.__module__, c.__qualname__): c for c in classes}

    nn = torch.nn
    return {
        "activation_fn": table(nn.ReLU, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU),
        "features_extractor_class": table(
            torch_layers.NatureCNN,
            torch_layers.FlattenExtractor,
            torch_layers.CombinedExtractor,
            networks.SmallCNN,
            networks.DenseReLU,
        ),
        "optimizer_class": table(torch.optim.Adam, torch.optim.RMSprop),
    }


# policy_kwargs keys a policy may be rebuilt with, and what their values may be.
_PLAIN_KWARGS: dict[str, type] = {
    "ortho_init": bool,
    "log_std_init": float,
    "full_std": bool,
    "use_expln": bool,
    "squash_output": bool,
    "share_features_extractor": bool,
    "normalize_images": bool,
    "use_sde": bool,
    "n_critics": int,
    "optimizer_kwargs": dict,
    "features_extractor_kwargs": dict,
    "net_arch": object,
    "lstm_hidden_size": int,
    "n_lstm_layers": int,
    "shared_lstm": bool,
    "enable_critic_lstm": bool,
}
MAX_LSTM_UNITS = 1024
MAX_LSTM_LAYERS = 2


def _width_list(value: Any, path: Path, key: str) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_LAYERS
        or not all(type(v) is int and 1 <= v <= MAX_WIDTH for v in value)
    ):
        raise PolicyFileError(
            f"{path}: policy_kwargs {key} must be a list of at most {MAX_LAYERS} layer "
            f"widths in [1, {MAX_WIDTH}]"
        )
    return value


def _small_number(value: Any) -> bool:
    """A bool, or a finite number of magnitude at most 1e9 (no overflow on the way)."""
    if type(value) is bool:
        return True
    if type(value) is int:
        return abs(value) <= 10**9
    return type(value) is float and math.isfinite(value) and abs(value) <= 1e9


def _check_kwargs(kwargs: Any, path: Path) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise PolicyFileError(f"{path}: policy_kwargs must be a dict of named options")
    classes = _kwarg_classes()
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in classes:
            try:
                out[key] = _resolve_token(value, classes[key], key)
            except UnsafePickleError as exc:
                raise PolicyFileError(f"{path}: policy_kwargs: {exc}") from None
        elif key == "net_arch":
            if isinstance(value, dict) and set(value) <= {"pi", "vf", "qf"}:
                out[key] = {k: _width_list(v, path, f"net_arch[{k!r}]") for k, v in value.items()}
            else:
                out[key] = _width_list(value, path, key)
        elif key in ("optimizer_kwargs", "features_extractor_kwargs"):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and _small_number(v) for k, v in value.items()
            ):
                raise PolicyFileError(f"{path}: policy_kwargs {key} must map names to numbers")
            dim = value.get("features_dim", 1)
            if key == "features_extractor_kwargs" and not (
                type(dim) is int and 1 <= dim <= MAX_WIDTH
            ):
                raise PolicyFileError(f"{path}: features_dim must be in [1, {MAX_WIDTH}]")
            out[key] = dict(value)
        elif key in _PLAIN_KWARGS:
            want = _PLAIN_KWARGS[key]
            if want is float and type(value) is int and _small_number(value):
                value = float(value)
            if type(value) is not want or (want in (int, float) and not _small_number(value)):
                raise PolicyFileError(f"{path}: policy_kwargs {key} must be a {want.__name__}")
            most = {"lstm_hidden_size": MAX_LSTM_UNITS, "n_lstm_layers": MAX_LSTM_LAYERS}
            if key in most and not 1 <= typing.cast(int, value) <= most[key]:
                raise PolicyFileError(f"{path}: policy_kwargs {key} must be in [1, {most[key]}]")
            out[key] = value
        else:
            valid = ", ".join(sorted([*_PLAIN_KWARGS, *classes]))
            raise PolicyFileError(f"{path}: unknown policy_kwargs key {key!r}; valid: {valid}")
    return out


def _member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """One member's bytes, inflated a chunk at a time and refused past ``limit`` (the size
    the archive declares is the file's own claim, so it is not trusted)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise PolicyFileError(
            f"{path} is not an SB3 model file (needs 'data' and 'policy.pth' inside)"
        ) from None
    if info.file_size > limit:
        raise PolicyFileError(f"{path}: {name} unpacks to {info.file_size} bytes (over {limit})")
    chunks, total = [], 0
    with archive.open(info) as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise PolicyFileError(f"{path}: {name} unpacks to over {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def read_sb3_zip(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The SB3 file's policy entries (decoded inertly) and the policy's state dict."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"no such SB3 file: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            raw = json.loads(_member(archive, "data", MAX_DATA_BYTES, path).decode())
            state = read_torch_weights(
                _member(archive, "policy.pth", MAX_WEIGHT_BYTES, path),
                max_bytes=MAX_WEIGHT_BYTES,
            )
    except PolicyFileError:
        raise
    except UnsafePickleError as exc:
        raise PolicyFileError(f"{path}: policy.pth: {exc}") from None
    except (zipfile.BadZipFile, ValueError, RecursionError, OSError, EOFError) as exc:
        # a corrupt zip or member, JSON that does not parse (or nests too deep)
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise PolicyFileError(f"{path} is not a readable SB3 model file: {message}") from None
    if not isinstance(raw, dict):
        raise PolicyFileError(f"{path}: 'data' must be a JSON object, not {type(raw).__name__}")
    data: dict[str, Any] = {}
    for key in _PICKLED_KEYS:
        if key not in raw:
            continue
        item = raw[key]
        if isinstance(item, dict) and ":serialized:" in item:
            blob = item[":serialized:"]
            try:
                if not isinstance(blob, str):
                    raise UnsafePickleError("the serialized entry must be a base64 string")
                data[key] = inert_loads(base64.b64decode(blob, validate=True))
            except (UnsafePickleError, binascii.Error) as exc:
                raise PolicyFileError(f"{path}: entry {key!r}: {exc}") from None
        else:
            data[key] = item
    missing = [k for k in ("policy_class", "observation_space", "action_space") if k not in data]
    if missing:
        raise PolicyFileError(f"{path}: SB3 file lacks {', '.join(missing)}")
    for key in ("observation_space", "action_space"):
        if not isinstance(data[key], spaces.Space):
            raise PolicyFileError(f"{path}: {key} is not a gymnasium space")
    return data, state


def read_sb3_parameters(path: str | Path) -> dict[str, Any]:
    """The torch state of every module in an SB3 file (``policy``, ``policy.optimizer``),
    read inertly, for ``model.set_parameters(params)`` when resuming or fine-tuning."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"no such SB3 file: {path}")
    params: dict[str, Any] = {}
    budget = MAX_WEIGHT_BYTES
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".pth") or name == "pytorch_variables.pth":
                    continue
                blob = _member(archive, name, budget, path)
                budget -= len(blob)
                params[name[: -len(".pth")]] = read_torch_file(blob, max_bytes=MAX_WEIGHT_BYTES)
    except UnsafePickleError as exc:
        raise PolicyFileError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise PolicyFileError(f"{path} is not a readable SB3 model file: {message}") from None
    if not isinstance(params.get("policy"), dict):
        raise PolicyFileError(f"{path} is not an SB3 model file (no policy.pth)")
    return params


MAX_ACTIONS = 1 << 16
MAX_OBS = 1 << 24


def _space_size(space: spaces.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, spaces.Dict | spaces.Tuple):
        inner = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        return sum(_space_size(s) for s in inner)
    return int(np.prod(space.shape or ()))


def load_sb3_policy(path: str | Path, _read: Any = None) -> Any:
    """Rebuild the SB3 ``BasePolicy`` stored in ``path`` (in eval mode, on the CPU)."""
    path = Path(path)
    data, state = _read or read_sb3_zip(path)
    token = data["policy_class"]
    if not isinstance(token, Global):
        raise PolicyFileError(f"{path}: policy_class is not a class reference")
    try:
        policy_cls = _resolve_token(token, _policy_classes(), "policy class")
    except UnsafePickleError as exc:
        raise PolicyFileError(f"{path}: {exc}") from None
    kwargs = _check_kwargs(data.get("policy_kwargs"), path)
    for key, most in (("action_space", MAX_ACTIONS), ("observation_space", MAX_OBS)):
        if _space_size(data[key]) > most:  # before a huge layer is built and initialized
            raise PolicyFileError(f"{path}: {key} {_space_desc(data[key])} is too large")
    _check_values(state, path)
    try:
        policy = policy_cls(
            data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs
        )
        policy.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, ValueError, AssertionError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise PolicyFileError(f"{path}: weights do not fit the stored network: {first}") from None
    policy.set_training_mode(False)
    _probe(policy, path)
    return policy


def _check_values(state: dict[str, torch.Tensor], path: Path) -> None:
    """Weights that are numbers: finite, and a log-std in ``LOG_STD_RANGE``."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PolicyFileError(f"{path}: weights {name!r} hold NaN or infinite values")
    log_std = state.get("log_std")
    low, high = LOG_STD_RANGE
    if log_std is not None and not bool(((log_std >= low) & (log_std <= high)).all()):
        raise PolicyFileError(f"{path}: log_std must lie in [{low:g}, {high:g}]")


def _probe(policy: Any, path: Path) -> None:
    """One greedy action for a neutral observation (zeros, within the space's bounds):
    a network whose outputs overflow is refused here, not at its first step in a game."""
    space = policy.observation_space
    if not isinstance(space, spaces.Box):
        return
    obs = np.clip(np.zeros(space.shape, dtype=space.dtype), space.low, space.high)
    try:
        with torch.no_grad():
            action, _ = policy.predict(obs[None], deterministic=True)
    except (ValueError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise PolicyFileError(f"{path}: the network gives no valid action: {first}") from None
    if np.issubdtype(np.asarray(action).dtype, np.floating) and not np.isfinite(action).all():
        raise PolicyFileError(f"{path}: the network's actions are not finite")


def _same_space(file: spaces.Space, seat: spaces.Space, *, bounds: bool) -> bool:
    """The file's space serves the seat: same kind and size (a channel-first image may
    serve a channel-last seat); with ``bounds``, a Box's bounds must match too."""
    if type(file) is not type(seat):
        return False
    if isinstance(seat, spaces.Discrete):
        return int(file.n) == int(seat.n) and int(file.start) == int(seat.start)  # type: ignore[attr-defined]
    if isinstance(seat, spaces.MultiDiscrete):
        return np.array_equal(file.nvec, seat.nvec)  # type: ignore[attr-defined]
    a, b = tuple(seat.shape or ()), tuple(file.shape or ())
    if a != b:
        return len(a) == 3 and (a[2], a[0], a[1]) == b and not bounds
    if bounds and isinstance(seat, spaces.Box):
        return np.array_equal(file.low, seat.low) and np.array_equal(file.high, seat.high)  # type: ignore[attr-defined]
    return True


def _space_desc(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        return (
            f"Discrete({space.n})"
            if not space.start
            else f"Discrete({space.n}, start={space.start})"
        )
    if isinstance(space, spaces.Box) and space.dtype.kind == "f":
        low, high = np.unique(space.low), np.unique(space.high)
        if len(low) == 1 and len(high) == 1:
            return f"Box[{low[0]:g}, {high[0]:g}]{tuple(space.shape or ())}"
    return f"{type(space).__name__}{tuple(space.shape or ())}"


class SB3TorchPolicy(TorchPolicy):
    """An SB3 actor-critic or DQN policy seen as a differentiable ``TorchPolicy``.

    For image observations the network input is the frame on the [0, 1] scale
    (SB3 divides uint8 frames by 255); a channel-last seat is transposed to the
    channel-first layout SB3 trained on. A recurrent (sb3-contrib) policy's state is
    its actor LSTM's, batch first: ``(N, 2, layers, units)`` (hidden, cell).
    """

    def __init__(self, sb3_policy: Any, observation_space: spaces.Space | None = None):
        self.policy = sb3_policy
        self.recurrent = getattr(sb3_policy, "lstm_actor", None) is not None
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

    def _lstm_state(self, n: int, state: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor LSTM's (hidden, cell): rows 0 and 1 of the state."""
        return self._rows(self.policy.lstm_actor, n, state, 0)

    def _critic_state(self, n: int, state: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic LSTM's (hidden, cell): rows 2 and 3 of the state."""
        assert self.policy.lstm_critic is not None
        return self._rows(self.policy.lstm_critic, n, state, 2)

    @staticmethod
    def _rows(lstm: Any, n: int, state: Any, first: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``first`` and ``first + 1`` of a ``(N, rows, layers, hidden)`` state as
        torch's ``(layers, N, hidden)`` pair; zeros where the state has no such rows."""
        if state is None or torch.as_tensor(state).shape[1] < first + 2:
            zeros = torch.zeros(lstm.num_layers, n, lstm.hidden_size)
            return zeros, zeros.clone()
        state = torch.as_tensor(state, dtype=torch.float32)
        return (
            state[:, first].transpose(0, 1).contiguous(),
            state[:, first + 1].transpose(0, 1).contiguous(),
        )

    @staticmethod
    def _starts(n: int, episode_start: Any) -> torch.Tensor:
        if episode_start is None:
            return torch.zeros(n)
        return torch.as_tensor(np.asarray(episode_start, dtype=np.float32).reshape(-1))

    def forward(self, x, state=None, episode_start=None):
        obs = self._features_input(x)
        if hasattr(self.policy, "q_net"):  # DQN: greedy on Q; softmax(Q) when sampled
            q = self.policy.q_net(obs)
            return D.Categorical(logits=q), None
        if self.recurrent:
            n = obs.shape[0]
            hidden = self._lstm_state(n, state)
            starts = self._starts(n, episode_start)
            dist, (h, c) = self.policy.get_distribution(obs, hidden, starts)
            rows = [h.transpose(0, 1), c.transpose(0, 1)]
            critic = self.policy.lstm_critic
            if critic is not None:  # the critic's own LSTM takes the step too, as in training
                from stable_baselines3.common.policies import BaseModel

                with torch.no_grad():
                    p = self.policy
                    features = BaseModel.extract_features(  # as sb3-contrib's critic does
                        p, obs.detach(), p.vf_features_extractor
                    )
                    _, (hc, cc) = p._process_sequence(
                        features, self._critic_state(n, state), starts, critic
                    )
                rows += [hc.transpose(0, 1), cc.transpose(0, 1)]
            return dist.distribution, torch.stack(rows, dim=1)
        return self.policy.get_distribution(obs).distribution, None

    def interval_steps(self) -> list[Any] | None:
        """SB3's networks as interval steps: the features extractor, the policy MLP and
        the action head (DQN: its Q network); None where a layer has no rule here (an
        image input is already on [0, 1]: SB3's own /255 undoes ``_features_input``)."""
        from agents.certify import module_steps

        p = self.policy
        if hasattr(p, "q_net"):
            return module_steps([p.q_net.features_extractor, p.q_net.q_net])
        parts = [p.pi_features_extractor, p.mlp_extractor.policy_net, p.action_net]
        return module_steps(parts)

    def value(self, x, state=None):
        if not hasattr(self.policy, "predict_values"):
            return None
        obs = self._features_input(x)
        if self.recurrent:  # the critic's LSTM state as carried (its own, or the actor's)
            n = obs.shape[0]
            if self.policy.lstm_critic is not None:
                hidden = self._critic_state(n, state)
            else:
                hidden = self._lstm_state(n, state)
            return self.policy.predict_values(obs, hidden, torch.zeros(n)).squeeze(-1)
        return self.policy.predict_values(obs).squeeze(-1)


def sb3_victim(
    path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> SB3TorchPolicy:
    """Load ``path`` for a seat with the given spaces, or say why it does not fit (the
    spaces are compared before any network is built)."""
    data, state = read_sb3_zip(path)
    obs_inner, act_inner = data["observation_space"], data["action_space"]
    if not (
        _same_space(obs_inner, observation_space, bounds=False)
        and _same_space(act_inner, action_space, bounds=True)
    ):
        raise PolicyFileError(
            f"{path} takes {_space_desc(obs_inner)} -> {_space_desc(act_inner)}, but the seat "
            f"has {_space_desc(observation_space)} -> {_space_desc(action_space)}"
        )
    return SB3TorchPolicy(load_sb3_policy(path, (data, state)), observation_space)
