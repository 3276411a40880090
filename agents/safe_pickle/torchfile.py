"""Files written by ``torch.save`` (zip format), read without ``torch.load``.

``data.pkl`` goes through ``inert_loads``; its persistent ids name storages, which
are read from the archive's ``data/KEY`` entries as plain bytes.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from agents.safe_pickle.standins import TORCH_STORAGES, StateDict, Storage, check_int
from agents.safe_pickle.tokens import Global, UnsafePickleError
from agents.safe_pickle.unpickler import inert_loads

_STORAGE_TOKENS = frozenset(Global("torch", n) for n in TORCH_STORAGES)


def read_torch_file(blob: bytes, *, max_bytes: int = 1 << 30) -> Any:
    """What ``torch.save`` wrote (zip format), read inertly."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UnsafePickleError(
            "not a torch zip file (only torch.save's zip format is read)"
        ) from None
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise UnsafePickleError("not a torch zip file (no single <name>/data.pkl)")
    prefix = pkls[0][: -len("data.pkl")]
    order = prefix + "byteorder"
    if order in names and archive.read(order).strip() not in (b"little", b""):
        raise UnsafePickleError("big-endian torch files are not supported")
    total = sum(info.file_size for info in archive.infolist())
    if total > max_bytes:
        raise UnsafePickleError(f"torch file unpacks to {total} bytes (over {max_bytes})")
    storages: dict[str, Storage] = {}

    def persistent(pid: Any) -> Storage:
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            raise UnsafePickleError("malformed persistent id")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, Global) or kind not in _STORAGE_TOKENS:
            raise UnsafePickleError("unknown storage type")
        if not isinstance(key, str) or not key.isdigit() or len(key) > 12:
            raise UnsafePickleError("malformed storage key")
        dtype = np.dtype(TORCH_STORAGES[kind.name]).newbyteorder("<")
        numel = check_int(numel, "storage size")
        if key not in storages:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise UnsafePickleError(f"storage {key} missing from the archive")
            raw = archive.read(name)
            if len(raw) < numel * dtype.itemsize:
                raise UnsafePickleError(f"storage {key} holds fewer bytes than it claims")
            storages[key] = Storage(dtype, raw[: numel * dtype.itemsize])
        return storages[key]

    try:
        return inert_loads(archive.read(pkls[0]), persistent=persistent)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsafePickleError(f"corrupt torch file: {exc}") from None


def read_torch_weights(blob: bytes, *, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """A state dict (names to tensors) saved by ``torch.save``, read inertly."""
    state = read_torch_file(blob, max_bytes=max_bytes)
    if type(state) not in (dict, StateDict) or not all(isinstance(k, str) for k in state):
        raise UnsafePickleError("a policy's weights must be a dict of named tensors")
    import torch

    if not all(type(v) is torch.Tensor for v in state.values()):
        raise UnsafePickleError("a policy's weights must be a dict of named tensors")
    return dict(state)
