"""Atari policies as their authors published them: the PyTorch files of
ikostrikov/pytorch-a2c-ppo-acktr-gail (``.pt``) and davide97l/rl-policies-attacks-defenses
(``policy.pth``), read without running code.

Those files are ``torch.save`` of a whole policy module (often in a list with its
observation-normalisation object): a pickle that names the authors' classes
(``model.Policy``, ``model.CNNBase``, ``distributions.Categorical``, ``utils.AddBias``...)
and would import and run them under ``torch.load``. Here the pickle is read by the
inert unpickler in *records* mode (``agents.safe_pickle``): every object of a class
outside its table becomes a record of the class's name and its state, never imported;
only tensors are rebuilt. The network is then recognised from its parameters' names
and shapes, whatever the layout the repository used over time:

- ``Policy(CNNBase)``: ``base.main.{0,2,4,7}``, ``base.critic_linear``, ``dist.linear``;
- ``CNNPolicy``: ``conv1..3``, ``linear1``, ``critic_linear``, ``dist.linear``;
- ``CNNPolicy`` as ACKTR's K-FAC leaves it: each layer split into ``X.module`` (no bias)
  and ``X.add_bias._bias`` (an ``AddBias`` column);

and mapped onto the README network's arrays (``conv1..3``, ``fc``, ``pi``, ``v``), so
``atari:FILE.pt`` acts exactly as the same weights converted to ``.npz``. A file whose
layout is not recognised is refused in one line naming the parameters found.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from agents.specs import PolicySpecError

MAX_FILE_BYTES = 256 << 20


def read_published(path: str | Path) -> dict[str, np.ndarray]:
    """The README network's arrays from a published ``.pt``/``.pth`` file."""
    from agents.safe_pickle import UnsafePickleError, read_torch_file
    from agents.safe_pickle.torchfile import read_legacy_torch_file

    path = Path(path)
    blob = _read_bounded(path)
    try:
        if zipfile.is_zipfile(io.BytesIO(blob)):
            obj = read_torch_file(blob, records=True)
        else:
            obj = read_legacy_torch_file(blob, records=True)
    except UnsafePickleError as exc:
        raise PolicySpecError(f"{path} is not a readable PyTorch policy file: {exc}") from None
    params = _parameters(obj, path)
    return recognise(params, path)


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, its size checked before it is read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicySpecError(f"{path}: {size:,} bytes is over {MAX_FILE_BYTES:,}")
        with open(path, "rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    except OSError as exc:
        raise PolicySpecError(f"cannot read {path}: {exc.strerror or exc}") from None


def _parameters(obj: Any, path: Path) -> dict[str, Any]:
    """Named tensors of the policy in ``obj``: a module record (alone, or first in a
    list with its normalisation), or a state dict."""
    import torch

    from agents.safe_pickle.standins import ObjectRecord

    if isinstance(obj, list | tuple) and obj:
        if len(obj) > 1 and obj[1] is not None:
            raise PolicySpecError(
                f"{path}: the policy comes with an observation normalisation "
                f"({_name(obj[1])}); pixel victims here take raw frames"
            )
        obj = obj[0]
    if isinstance(obj, ObjectRecord):
        out: dict[str, Any] = {}
        _flatten(obj, "", out, 0)
        return out
    if isinstance(obj, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        return dict(obj)
    raise PolicySpecError(
        f"{path}: holds {_name(obj)}, not a policy module or a state dict of tensors"
    )


def _name(obj: Any) -> str:
    cls = getattr(obj, "cls", None)
    return str(cls) if cls is not None else type(obj).__name__


def _flatten(record: Any, prefix: str, out: dict[str, Any], depth: int) -> None:
    import torch

    from agents.safe_pickle.standins import ObjectRecord

    if depth > 16:
        raise PolicySpecError("modules nest deeper than 16")
    state = record.state
    if not isinstance(state, dict):
        return
    for group in ("_parameters", "_buffers"):
        items = state.get(group)
        if not isinstance(items, dict):
            continue
        for name, value in items.items():
            if isinstance(name, str) and isinstance(value, torch.Tensor):
                out[prefix + name] = value
    children = state.get("_modules")
    if isinstance(children, dict):
        for name, child in children.items():
            if isinstance(name, str) and isinstance(child, ObjectRecord):
                _flatten(child, f"{prefix}{name}.", out, depth + 1)


def _bias(params: dict[str, Any], weight_name: str, out_features: int) -> Any:
    """The bias of the layer whose weight is ``weight_name``: ``X.bias``, or, for a
    layer K-FAC split (``X.module.weight``), ``X.add_bias._bias``."""
    base = weight_name.removesuffix(".weight")
    candidates = [f"{base}.bias"]
    if base.endswith(".module"):
        outer = base.removesuffix(".module")
        candidates += [f"{outer}.add_bias._bias", f"{outer}.bias"]
    for name in candidates:
        value = params.get(name)
        if value is not None and value.numel() == out_features:
            return value.reshape(out_features)
    return None


def recognise(params: dict[str, Any], path: str | Path = "file") -> dict[str, np.ndarray]:
    """Map named tensors onto ``conv1..3``, ``fc``, ``pi``, ``v`` (weight and bias each),
    by shape: three 4-d kernels in order, the linear layer reading conv3's 7×7 output,
    a one-output head (the value) and a many-output head (the action logits)."""
    weights = [(n, t) for n, t in params.items() if n.endswith(".weight") and t.dim() in (2, 4)]
    convs = [(n, t) for n, t in weights if t.dim() == 4]
    linears = [(n, t) for n, t in weights if t.dim() == 2]
    found = ", ".join(f"{n} {tuple(t.shape)}" for n, t in list(params.items())[:24])
    out: dict[str, np.ndarray] = {}
    try:
        if len(convs) != 3 or len(linears) != 3:
            raise KeyError(f"{len(convs)} conv and {len(linears)} linear layers, not 3 and 3")
        flat = int(convs[2][1].shape[0]) * 49
        roles = {
            "conv1": convs[0],
            "conv2": convs[1],
            "conv3": convs[2],
            "fc": _one(linears, lambda t: t.shape[1] == flat, "the layer after conv3"),
            "v": _one(linears, lambda t: t.shape[0] == 1 and t.shape[1] == 512, "the value head"),
            "pi": _one(linears, lambda t: t.shape[0] > 1 and t.shape[1] == 512, "the action head"),
        }
        for role, (name, weight) in roles.items():
            bias = _bias(params, name, int(weight.shape[0]))
            if bias is None:
                raise KeyError(f"no bias for {name}")
            out[f"{role}.weight"] = weight.detach().numpy().astype(np.float32)
            out[f"{role}.bias"] = bias.detach().numpy().astype(np.float32)
    except KeyError as exc:
        reason = exc.args[0] if exc.args else "unrecognised"
        raise PolicySpecError(
            f"{path}: not a recognised Atari policy layout ({reason}); found: {found}"
        ) from None
    return out


def _one(linears: list[tuple[str, Any]], test: Any, what: str) -> tuple[str, Any]:
    hits = [(n, t) for n, t in linears if test(t)]
    if len(hits) != 1:
        raise KeyError(f"{len(hits)} candidates for {what}")
    return hits[0]


def cleanrl_victim(path: str | Path, observation_space: Any, action_space: Any) -> Any:
    """``cleanrl:PATH``: a CleanRL Atari PPO checkpoint (the state dict of its ``Agent``:
    ``network`` (3 convs, the 512-unit layer), ``actor``, ``critic``), read as a plain
    state dict of tensors without unpickling anything else (stricter than
    ``torch.load(weights_only=True)``), then recognised as the README network."""
    from agents.atari_cnn import atari_network_victim
    from agents.safe_pickle import UnsafePickleError, read_torch_weights

    path = Path(path)
    blob = _read_bounded(path)
    try:
        state = read_torch_weights(blob, max_bytes=MAX_FILE_BYTES)
    except UnsafePickleError as exc:
        raise PolicySpecError(f"{path} is not a CleanRL checkpoint (a state dict): {exc}") from None
    return atari_network_victim(recognise(state, path), path, observation_space, action_space)


def _cleanrl(arg: str, observation_space: Any, action_space: Any, **context: Any) -> Any:
    return cleanrl_victim(arg, observation_space, action_space)


def register() -> None:
    from agents.specs import register_kind

    register_kind(
        "cleanrl",
        _cleanrl,
        takes_path=True,
        help="a CleanRL Atari PPO checkpoint (the state dict of its Agent)",
    )


register()
