"""``atari:PATH.npz``: pretrained Atari actor-critic CNNs as differentiable victims.

The file is a plain ``.npz`` of float32 arrays, read with ``numpy.load(...,
allow_pickle=False)``: no pickle, no code. The network (../shared/atari/README.md):

    input (B, 4, 84, 84) gray frames, 0..255 as float, divided by 255 by the network
    conv1 32×8×8 /4, ReLU -> conv2 64×4×4 /2, ReLU -> conv3 32×3×3 /1, ReLU
    flatten 32·7·7 = 1568 -> fc 512, ReLU -> pi: logits (n_actions), v: value (1)

As a ``TorchPolicy`` its input is the frame on the [0, 1] scale (``uint8 / 255``), so
an attack budget ``eps=1/255`` is one gray level. Greedy (argmax of the logits) by
default; sampled from the categorical with ``--stochastic``.

>>> from agents import specs                                  # doctest: +SKIP
>>> victim = specs.resolve("atari:pong_ppo.npz", env.observation_space("player"),
...                        env.action_space("player"))        # doctest: +SKIP
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import distributions as D
from torch import nn

from agents.npz import NpzError
from agents.npz import read_npz as _read_npz
from agents.policies import TorchPolicy, native_bfloat16
from agents.specs import PolicySpecError, register_kind

_LAYERS = ("conv1", "conv2", "conv3", "fc", "pi", "v")


class _ConvFastInputGrad(torch.autograd.Function):
    """``F.conv2d`` (stride s, kernel k·s) whose backward gives only the input gradient,
    computed as a stride-1 transposed convolution in space-to-depth layout followed by
    one copy into a channels-last ``B×C×H×W`` tensor (a depth-to-space).

    For the 8×8 stride-4 first layer on 84×84 frames that is about 4× faster on one
    CPU thread than torch's generic convolution backward, which dominates the cost of
    a gradient attack. Same forward; the gradient agrees to float rounding. Used only
    when the weights need no gradient (frozen victims) and the shapes allow it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride):
        ctx.save_for_backward(weight)
        ctx.stride = stride
        return F.conv2d(x, weight, bias, stride)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        s = ctx.stride
        o, c, kh, kw = weight.shape
        # w2[o, p·s·c + q·c + ch, a, b] = weight[o, ch, a·s + p, b·s + q]: channels ordered
        # (p, q, ch) so that, channels-last, each (p, q) row of c values is contiguous.
        w2 = weight.reshape(o, c, kh // s, s, kw // s, s).permute(0, 3, 5, 1, 2, 4)
        w2 = w2.reshape(o, s * s * c, kh // s, kw // s).contiguous(
            memory_format=torch.channels_last
        )
        y = F.conv_transpose2d(grad, w2)  # (B, s·s·c, H/s, W/s)
        b, _, h, w = y.shape
        src = y.permute(0, 2, 3, 1).reshape(b, h, w, s, s, c)  # a view when y is NHWC
        gx = torch.empty((b, c, h * s, w * s), dtype=y.dtype, memory_format=torch.channels_last)
        # gx in memory is (b, h·s + p, w·s + q, ch) = (b, h, p, w, q, ch)
        gx.permute(0, 2, 3, 1).view(b, h, s, w, s, c).copy_(src.permute(0, 1, 3, 2, 4, 5))
        return gx, None, None, None


def _fast_input_grad_ok(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    s, k = conv.stride, conv.kernel_size
    return bool(
        x.requires_grad
        and not conv.weight.requires_grad
        and (conv.bias is None or not conv.bias.requires_grad)
        and s[0] == s[1]
        and conv.padding == (0, 0)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and k[0] % s[0] == 0
        and k[1] % s[0] == 0
        and x.shape[-2] % s[0] == 0
        and x.shape[-1] % s[0] == 0
    )


class AtariCNN(nn.Module):
    """The actor-critic network of the README, on inputs already scaled to [0, 1]."""

    def __init__(self, in_channels: int, n_actions: int, conv3_out: int = 32, side: int = 84):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, conv3_out, 3, stride=1)
        out = ((side - 8) // 4 + 1 - 4) // 2 + 1 - 2
        self.fc = nn.Linear(conv3_out * out * out, 512)
        self.pi = nn.Linear(512, n_actions)
        self.v = nn.Linear(512, 1)

    def freeze(self) -> AtariCNN:
        """Eval mode, no parameter gradients, conv weights channels-last: the CPU layout
        that is fastest for a frozen victim (oneDNN then skips a reorder of every
        activation; about 7% off a PGD step on one thread). Same function; the outputs
        agree to float rounding."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1
        if _fast_input_grad_ok(c1, x):
            h = torch.relu(_ConvFastInputGrad.apply(x, c1.weight, c1.bias, c1.stride[0]))
        else:
            h = torch.relu(c1(x))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return torch.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.pi(h), self.v(h).squeeze(-1)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``path``; refuses pickled (object) arrays, lying headers and non-npz
    files (``agents.npz``)."""
    try:
        return _read_npz(path)
    except NpzError as exc:
        raise PolicySpecError(str(exc)) from None


# Bounds that keep a crafted file from building a huge network before its shapes are
# compared (ALE has at most 18 actions; frames stack a few channels).
_MAX_CHANNELS, _MAX_ACTIONS, _MAX_CONV3 = 16, 64, 512


def build_network(arrays: dict[str, np.ndarray], path: str | Path = "weights") -> AtariCNN:
    """Check the arrays' names and shapes and load them into an ``AtariCNN`` (eval mode)."""
    expected = [f"{layer}.{p}" for layer in _LAYERS for p in ("weight", "bias")]
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise PolicySpecError(
            f"{path}: missing arrays {', '.join(missing)} "
            f"(has {', '.join(sorted(arrays)) or 'none'})"
        )
    for k in expected:
        if not np.issubdtype(arrays[k].dtype, np.floating):
            raise PolicySpecError(f"{path}: array {k} has dtype {arrays[k].dtype}, not float")
        if not np.isfinite(arrays[k]).all():
            raise PolicySpecError(f"{path}: array {k} holds NaN or infinite values")
    w1, pi, w3 = arrays["conv1.weight"], arrays["pi.weight"], arrays["conv3.weight"]
    if w1.ndim != 4 or pi.ndim != 2 or w3.ndim != 4:
        raise PolicySpecError(
            f"{path}: conv1.weight, conv3.weight must be 4-d and pi.weight 2-d, got "
            f"{w1.shape}, {w3.shape}, {pi.shape}"
        )
    dims = {"input channels": (int(w1.shape[1]), _MAX_CHANNELS)}
    dims["actions"] = (int(pi.shape[0]), _MAX_ACTIONS)
    dims["conv3 channels"] = (int(w3.shape[0]), _MAX_CONV3)
    for what, (value, most) in dims.items():
        if not 1 <= value <= most:
            raise PolicySpecError(f"{path}: {value} {what}; the network takes 1 to {most}")
    net = AtariCNN(
        in_channels=dims["input channels"][0],
        n_actions=dims["actions"][0],
        conv3_out=dims["conv3 channels"][0],
    )
    state = {
        k: torch.from_numpy(np.ascontiguousarray(arrays[k], dtype=np.float32)) for k in expected
    }
    own = net.state_dict()
    bad = [
        f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad:
        raise PolicySpecError(f"{path}: arrays do not fit the README network: {'; '.join(bad)}")
    net.load_state_dict(state)
    return net.freeze()


class AtariCNNPolicy(TorchPolicy):
    """A pretrained Atari CNN as a ``TorchPolicy`` on ``(B, C, 84, 84)`` uint8 frames.

    Network input: ``frames / 255`` in [0, 1] (``input_low=0``, ``input_high=1``).
    """

    input_low = 0.0
    input_high = 1.0
    search_resolution = 2.0**-8  # bfloat16's spacing on [0.5, 1): 1/256 of a pixel's range

    def __init__(self, net: AtariCNN, observation_space: spaces.Space, action_space: spaces.Space):
        self.net = net
        self._search_net: AtariCNN | None = None  # bfloat16 copy for search_forward, lazily
        self.observation_space = observation_space
        self.action_space = action_space

    def input_from_obs(self, observation: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(observation), dtype=torch.float32) / 255.0
        # channels-last like the frozen conv weights (a layout, not a shape: still B×C×H×W)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def obs_from_input(self, x: torch.Tensor) -> np.ndarray:
        arr = np.rint(x.detach().cpu().numpy() * 255.0)
        return np.clip(arr, 0, 255).astype(np.uint8)

    def forward(self, x, state=None, episode_start=None):
        logits, _ = self.net(x)
        return D.Categorical(logits=logits), None

    def search_forward(self, x, state=None, episode_start=None):
        """``forward`` through a bfloat16 copy of the network where the CPU computes
        bfloat16 natively (``native_bfloat16``): a PGD step's gradient in about 0.6 of the
        float32 time, its sign agreeing on ~99% of the pixels. The gradient reaches ``x``
        in float32. Attacks use it for ε >= ``search_resolution`` only; elsewhere (or
        with ``precision=fp32`` on the attack) it is ``forward``."""
        if not native_bfloat16():
            return self.forward(x, state, episode_start)
        if self._search_net is None:
            self._search_net = copy.deepcopy(self.net).to(torch.bfloat16)
        logits, _ = self._search_net(x.to(torch.bfloat16))
        return D.Categorical(logits=logits.float()), None

    def value(self, x, state=None):
        return self.net(x)[1]

    def interval_steps(self) -> list[Any]:
        n = self.net
        return [n.conv1, "relu", n.conv2, "relu", n.conv3, "relu", "flatten", n.fc, "relu", n.pi]


def _describe(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        return f"{int(space.n)} actions"
    return f"{type(space).__name__}{tuple(space.shape or ())}"


def atari_victim(
    path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> AtariCNNPolicy:
    """Load ``path`` for a seat, or raise ``PolicySpecError`` saying what does not fit."""
    if Path(path).suffix in (".pt", ".pth"):  # as ikostrikov and davide97l publish them
        from agents.atari_published import read_published

        arrays = read_published(path)
    else:
        arrays = read_npz(path)
    return atari_network_victim(arrays, path, observation_space, action_space)


def atari_network_victim(
    arrays: dict[str, np.ndarray],
    path: str | Path,
    observation_space: spaces.Space,
    action_space: spaces.Space,
) -> AtariCNNPolicy:
    """The README network of ``arrays`` for a seat, or why it does not fit."""
    net = build_network(arrays, path)
    with torch.no_grad():  # a grey frame: outputs that overflow are refused here
        probe = torch.full((1, net.conv1.in_channels, 84, 84), 0.5)
        logits, value = net(probe.contiguous(memory_format=torch.channels_last))
    if not bool(torch.isfinite(logits).all() and torch.isfinite(value).all()):
        raise PolicySpecError(f"{path}: the network's outputs are not finite")
    n_actions = net.pi.out_features
    expected_obs = (net.conv1.in_channels, 84, 84)
    if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != n_actions:
        raise PolicySpecError(
            f"{path} has {n_actions} actions, but the seat has {_describe(action_space)}"
        )
    seat_shape = tuple(getattr(observation_space, "shape", None) or ())
    if not isinstance(observation_space, spaces.Box) or seat_shape != expected_obs:
        raise PolicySpecError(
            f"{path} takes frames of shape {expected_obs}, but the seat's observations are "
            f"{_describe(observation_space)}"
        )
    return AtariCNNPolicy(net, observation_space, action_space)


ATARI_DIR_ENV = "ARENA_ATARI_DIR"


def locate_atari(arg: str) -> Path:
    """``arg`` as a path if it exists, else a short name (``pong_ppo.npz``,
    ``pong_ppo.pth``) in ``$ARENA_ATARI_DIR``, else in ``arena fetch``'s cache."""
    import os

    from agents.home import cached

    path = Path(arg).expanduser()
    if path.exists() or path.is_absolute():
        if not path.is_file():
            raise PolicySpecError(f"atari file not found: {path}")
        return path
    looked = []
    root = os.environ.get(ATARI_DIR_ENV, "").strip()
    if root:
        base = Path(root).expanduser()
        full = base / path
        if full.resolve().is_relative_to(base.resolve()) and full.is_file():
            return full
        looked.append(f"{base} ({ATARI_DIR_ENV})")
    found = cached("atari", path)
    if found is not None:
        return found
    from agents.home import arena_home

    looked.append(f"{arena_home() / 'atari'} (arena fetch)")
    raise PolicySpecError(f"atari file not found: {arg} (looked in {', '.join(looked)})")


def _load(arg: str, observation_space, action_space, **context: Any) -> AtariCNNPolicy:
    return atari_victim(locate_atari(arg), observation_space, action_space)


register_kind(
    "atari",
    _load,
    takes_path=True,
    locate=locate_atari,
    help="a pretrained Atari CNN: .npz of float arrays (../shared/atari/README.md), or the "
    ".pt/.pth of pytorch-a2c-ppo-acktr-gail as published",
)

__all__ = ["AtariCNN", "AtariCNNPolicy", "atari_victim", "build_network", "read_npz"]
