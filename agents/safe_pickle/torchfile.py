"""Files written by ``torch.save`` (zip format), read without ``torch.load``.

``data.pkl`` goes through ``inert_loads``; its persistent ids name storages, which
are read from the archive's ``data/KEY`` entries as plain bytes.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from agents.safe_pickle.standins import (
    TENSOR_BYTES,
    TORCH_STORAGES,
    Instance,
    StateDict,
    Storage,
    check_int,
)
from agents.safe_pickle.tokens import Global, UnsafePickleError
from agents.safe_pickle.unpickler import inert_loads

_STORAGE_TOKENS = frozenset(Global("torch", n) for n in TORCH_STORAGES)


def read_torch_file(blob: bytes, *, max_bytes: int = 1 << 30, records: bool = False) -> Any:
    """What ``torch.save`` wrote (zip format), read inertly; with ``records``, objects
    of unknown classes (a pickled ``nn.Module``) become ``ObjectRecord``s."""
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
    if order in names and _member(archive, order).strip() not in (b"little", b""):
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
            raw = _member(archive, name)
            if len(raw) < numel * dtype.itemsize:
                raise UnsafePickleError(f"storage {key} holds fewer bytes than it claims")
            storages[key] = Storage(dtype, raw[: numel * dtype.itemsize])
        return storages[key]

    token = TENSOR_BYTES.set([max_bytes])
    try:
        return inert_loads(_member(archive, pkls[0]), persistent=persistent, records=records)
    finally:
        TENSOR_BYTES.reset(token)


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes; a broken, encrypted or oddly compressed member is refused."""
    try:
        return archive.read(name)
    except Exception as exc:  # zlib.error, NotImplementedError, RuntimeError, BadZipFile...
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise UnsafePickleError(f"corrupt torch file: {message}"[:200]) from None


def read_torch_weights(blob: bytes, *, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """A state dict (names to tensors) saved by ``torch.save``, read inertly."""
    state = read_torch_file(blob, max_bytes=max_bytes)
    if type(state) not in (dict, StateDict) or not all(isinstance(k, str) for k in state):
        raise UnsafePickleError("a policy's weights must be a dict of named tensors")
    import torch

    if not all(type(v) is torch.Tensor for v in state.values()):
        raise UnsafePickleError("a policy's weights must be a dict of named tensors")
    return dict(state)


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def _pickle_end(blob: bytes, start: int) -> int:
    """Where the pickle beginning at ``start`` ends (after its STOP), parsed, not run."""
    import pickletools

    from agents.safe_pickle.scan import MAX_OPCODES

    try:
        for count, (opcode, _, pos) in enumerate(pickletools.genops(io.BytesIO(blob[start:]))):
            if count > MAX_OPCODES:
                raise UnsafePickleError(f"pickle has over {MAX_OPCODES} opcodes")
            if opcode.name == "STOP" and pos is not None:
                return start + pos + 1
    except UnsafePickleError:
        raise
    except Exception as exc:  # pickletools' complaints about a malformed stream
        raise UnsafePickleError(f"not a torch file: {exc}"[:200]) from None
    raise UnsafePickleError("not a torch file: a pickle without its end")


def read_legacy_torch_file(blob: bytes, *, max_bytes: int = 1 << 30, records: bool = False) -> Any:
    """What ``torch.save`` wrote in its legacy format (torch < 1.6, or
    ``_use_new_zipfile_serialization=False``), read inertly: five pickles (magic
    number, protocol, system info, the object, its storage keys) and the raw storages,
    each an int64 element count then its bytes, in key order."""
    if len(blob) > max_bytes:
        raise UnsafePickleError(f"torch file of {len(blob)} bytes is over {max_bytes}")
    bounds, pos = [], 0
    for _ in range(5):
        end = _pickle_end(blob, pos)
        bounds.append((pos, end))
        pos = end
    header = [inert_loads(blob[a:b]) for a, b in (bounds[0], bounds[1], bounds[2])]
    if type(header[0]) is not int or type(header[1]) is not int:
        raise UnsafePickleError("not a torch file (no legacy magic number)")
    if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise UnsafePickleError("not a torch file (no legacy magic number)")
    info = header[2]
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise UnsafePickleError("big-endian torch files are not supported")
    keys = inert_loads(blob[bounds[4][0] : bounds[4][1]])
    if not isinstance(keys, list) or not all(isinstance(k, str) and len(k) <= 40 for k in keys):
        raise UnsafePickleError("malformed storage keys")
    known = set(keys)
    declared: dict[str, np.dtype] = {}

    def storage_of(pid: Any, data: dict[str, bytes] | None) -> Any:
        if type(pid) is tuple and len(pid) == 4 and pid[0] == "module":
            # a pickled module's class, with its source code (torch only warns on a
            # change): the class as the unpickler resolved it, a record class or a token
            if not (isinstance(pid[1], type) and issubclass(pid[1], Instance)):
                raise UnsafePickleError("a pickled module's class must be read as a record")
            return pid[1]
        if type(pid) is not tuple or len(pid) != 6 or pid[0] != "storage":
            raise UnsafePickleError("malformed persistent id")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, Global) or kind not in _STORAGE_TOKENS:
            raise UnsafePickleError("unknown storage type")
        if not isinstance(key, str) or key not in known or view is not None:
            raise UnsafePickleError("malformed storage reference")
        dtype = np.dtype(TORCH_STORAGES[kind.name]).newbyteorder("<")
        if declared.setdefault(key, dtype) != dtype:
            raise UnsafePickleError(f"storage {key} read with two element types")
        numel = check_int(numel, "storage size", high=max_bytes)
        if data is None:  # the first pass: element types only, nothing allocated
            return Storage(dtype, b"", declared=True)
        return Storage(dtype, data[key])

    main = blob[bounds[3][0] : bounds[3][1]]
    inert_loads(main, persistent=lambda pid: storage_of(pid, None), records=records)
    data: dict[str, bytes] = {}
    for key in sorted(keys):
        if pos + 8 > len(blob):
            raise UnsafePickleError(f"storage {key} missing from the file")
        numel = int.from_bytes(blob[pos : pos + 8], "little", signed=True)
        size = declared.get(key, np.dtype("u1")).itemsize
        if numel < 0 or pos + 8 + numel * size > len(blob):
            raise UnsafePickleError(f"storage {key} holds fewer bytes than it claims")
        data[key] = blob[pos + 8 : pos + 8 + numel * size]
        pos += 8 + numel * size
    token = TENSOR_BYTES.set([max_bytes])
    try:
        return inert_loads(main, persistent=lambda pid: storage_of(pid, data), records=records)
    finally:
        TENSOR_BYTES.reset(token)
