"""The stand-ins the unpickler may build: records that rebuild numpy arrays, dtypes,
torch tensors and gymnasium spaces from plain data, checking every argument.

None of them is callable with attacker-chosen code behind it: each validates its
arguments (numeric dtypes only, shapes and strides bounded by the bytes present) and
``BUILD`` on a record goes to its own ``build``, never to a real ``__setstate__``.
"""

from __future__ import annotations

import contextvars
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.safe_pickle.tokens import NDARRAY, OBJECT, Global, UnsafePickleError

MAX_NDIM = 32

# numpy dtype codes admitted (numeric and bool only: never object, void or structured).
DTYPES = {
    code: np.dtype(code)
    for code in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
}
DTYPES.update({np.dtype(c).name: np.dtype(c) for c in list(DTYPES)})
DTYPES["bool"] = np.dtype("b1")

# torch's storage classes, by the dtype code of their elements.
TORCH_STORAGES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
}


# ---------------------------------------------------------------- checks of plain values


def dtype_of(value: Any) -> np.dtype:
    if isinstance(value, DType):
        return value.dtype
    if isinstance(value, np.dtype) and value.str[1:] in DTYPES:
        return value
    raise UnsafePickleError(f"expected a numeric dtype, got {type(value).__name__}")


def check_int(value: Any, what: str, low: int = 0, high: int = 1 << 40) -> int:
    if type(value) is not int or not low <= value <= high:
        raise UnsafePickleError(f"{what} must be an integer in [{low}, {high}]")
    return value


def check_shape(value: Any, what: str = "shape") -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_NDIM:
        raise UnsafePickleError(f"{what} must be a tuple of at most {MAX_NDIM} integers")
    return tuple(check_int(v, what) for v in value)


def _buffer(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):  # protocol 0-2 pickles store bytes as latin-1 text
        return value.encode("latin1")
    raise UnsafePickleError(f"expected raw bytes, got {type(value).__name__}")


def _from_bytes(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise UnsafePickleError(f"array {shape} of {dtype} needs {count * dtype.itemsize} bytes")
    flat = np.frombuffer(raw, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran else "C"
    )
    return np.array(flat, dtype=dtype.newbyteorder("="))


# ---------------------------------------------------------------- records


class Record:
    """Base of the objects the unpickler may build; ``BUILD`` goes to ``build``."""

    __slots__ = ("_built",)

    def __setstate__(self, state: Any) -> None:
        if getattr(self, "_built", False):
            raise UnsafePickleError(f"{type(self).__name__} built twice")
        self._built = True
        self.build(state)

    def build(self, state: Any) -> None:
        raise UnsafePickleError(f"{type(self).__name__} takes no state")


class DType(Record):
    """``numpy.dtype(code, align, copy)`` then ``BUILD`` with the byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        if not isinstance(code, str) or code not in DTYPES:
            raise UnsafePickleError(f"dtype {code!r} is not a plain numeric dtype")
        self.dtype = DTYPES[code]

    def build(self, state: Any) -> None:
        if type(state) is not tuple or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise UnsafePickleError("malformed dtype state")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class Array(Record):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` then ``BUILD``."""

    __slots__ = ("array",)

    def __init__(self, cls: Any, shape: Any, code: Any):
        if cls != NDARRAY:
            raise UnsafePickleError("_reconstruct may only build a plain numpy.ndarray")
        self.array: np.ndarray | None = None

    def build(self, state: Any) -> None:
        if type(state) is not tuple or len(state) != 5:
            raise UnsafePickleError("malformed ndarray state")
        _, shape, dtype, fortran, raw = state
        if type(fortran) is not bool:
            raise UnsafePickleError("malformed ndarray state")
        self.array = _from_bytes(_buffer(raw), dtype_of(dtype), check_shape(shape), fortran)


def _built_array(array: np.ndarray) -> Array:
    record = Array(NDARRAY, (0,), b"b")
    record._built, record.array = True, array
    return record


def frombuffer(raw: Any, dtype: Any, shape: Any, order: Any) -> Array:
    """``numpy.core.numeric._frombuffer``: how protocol 5 spells an array."""
    if order not in ("C", "F"):
        raise UnsafePickleError("array order must be 'C' or 'F'")
    array = _from_bytes(_buffer(raw), dtype_of(dtype), check_shape(shape), order == "F")
    return _built_array(array)


def scalar(dtype: Any, raw: Any = b"") -> Array:
    """``numpy.core.multiarray.scalar``: a numpy scalar (a 0-d array until materialized)."""
    return _built_array(_from_bytes(_buffer(raw), dtype_of(dtype), (), False))


class Tensor(Record):
    """A tensor rebuilt from the file's storage (wrapped: no torch object on the stack)."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any):
        self._built, self.tensor = True, tensor


class Opaque(Record):
    """State nobody needs (random generators, seed sequences): swallowed, becomes None."""

    __slots__ = ()

    def __init__(self, *args: Any) -> None:
        pass

    def build(self, state: Any) -> None:
        pass


class Space(Record):
    """A gymnasium space: ``NEWOBJ`` with no arguments, then ``BUILD`` with its fields."""

    __slots__ = ("fields",)
    kind = ""

    def __new__(cls, *args: Any) -> Space:
        if args:
            raise UnsafePickleError(f"{cls.kind} takes no constructor arguments in a pickle")
        return super().__new__(cls)

    def build(self, state: Any) -> None:
        if type(state) is not dict or not all(isinstance(k, str) for k in state):
            raise UnsafePickleError(f"malformed {self.kind} state")
        self.fields = state


def space_class(kind: str) -> type[Space]:
    return type(kind, (Space,), {"__slots__": (), "kind": kind})


def latin1(text: Any, encoding: Any) -> bytes:
    """``_codecs.encode(text, "latin1")``: how protocols 0-2 spell bytes."""
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError("_codecs.encode is only read as latin-1 bytes")
    return text.encode("latin1")


def reconstructor(cls: Any, base: Any, state: Any) -> Space | Instance:
    """``copyreg._reconstructor(cls, object, None)``: protocols 0-1 spell NEWOBJ so."""
    ours = isinstance(cls, type) and issubclass(cls, Space | Instance)
    if not ours or base != OBJECT or state is not None:
        raise UnsafePickleError("copyreg._reconstructor may only start a space or a record")
    return cls()


class Instance(Record):
    """An object of a class the table does not know, read as a record (only where the
    caller asks for records: ``inert_loads(..., records=True)``): the class's name, the
    constructor arguments the pickle gave and the state it ``BUILD``s, all kept as
    data. The class is never imported; nothing of it runs."""

    __slots__ = ("args", "state")
    token: Global = Global("builtins", "object")
    args: tuple[Any, ...]
    state: Any

    def __new__(cls, *args: Any) -> Instance:
        self = super().__new__(cls)
        self.args, self.state = args, None
        return self

    def __init__(self, *args: Any) -> None:
        pass

    def build(self, state: Any) -> None:
        self.state = state


def instance_class(module: str, name: str) -> type[Instance]:
    """The record class standing for ``module.name``."""
    return type(name, (Instance,), {"__slots__": (), "token": Global(module, name)})


@dataclass(frozen=True)
class ObjectRecord:
    """What an ``Instance`` becomes: ``cls`` (the class named), its constructor
    ``args`` and its ``state`` (usually the object's ``__dict__``), as plain data."""

    cls: Global
    args: tuple[Any, ...]
    state: Any


class StateDict(dict):
    """``collections.OrderedDict`` as torch pickles it (``_metadata`` is dropped)."""

    def __setstate__(self, state: Any) -> None:
        if type(state) is not dict:
            raise UnsafePickleError("malformed OrderedDict state")


# ---------------------------------------------------------------- torch tensors


TENSOR_BYTES: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "TENSOR_BYTES", default=None
)
"""Bytes the tensors of the file being read may still take (``torchfile`` sets it)."""


@dataclass(frozen=True, slots=True)
class Storage:
    """The bytes of one storage of a torch file, with their element type."""

    dtype: np.dtype
    data: bytes
    declared: bool = False
    """Only declared (a first pass over a legacy file learning the element types): the
    tensors built on it are placeholders, nothing is allocated."""

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError("refusing BUILD on a storage")


def rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    hooks: Any = None,
    metadata: Any = None,
) -> Tensor:
    """``torch._utils._rebuild_tensor_v2``: a strided view of a storage, copied."""
    import torch

    if not isinstance(storage, Storage):
        raise UnsafePickleError("a tensor must be built from a storage of the file")
    shape, strides = check_shape(size, "tensor size"), check_shape(stride, "tensor stride")
    offset = check_int(offset, "storage offset")
    if len(shape) != len(strides) or type(requires_grad) is not bool:
        raise UnsafePickleError("malformed tensor")
    if hooks not in (None, {}) and not (isinstance(hooks, StateDict) and not hooks):
        raise UnsafePickleError("tensors with backward hooks are refused")
    if storage.declared:
        return Tensor(torch.zeros(0))
    budget = TENSOR_BYTES.get()
    if budget is not None:  # views copy: the file's storages bound them all together
        need = math.prod(shape) * storage.dtype.itemsize
        if need > budget[0]:
            raise UnsafePickleError("the file's tensors add up to more bytes than it may hold")
        budget[0] -= need
    numel = len(storage.data) // storage.dtype.itemsize
    if math.prod(shape) > max(numel, 1):
        raise UnsafePickleError(f"tensor of {math.prod(shape)} elements over a storage of {numel}")
    native = storage.dtype.newbyteorder("=")
    if 0 in shape:
        return Tensor(torch.from_numpy(np.zeros(shape, dtype=native)))
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    if last >= numel:
        raise UnsafePickleError(f"tensor reaches element {last} of a storage of {numel}")
    flat = np.frombuffer(storage.data, dtype=storage.dtype, count=numel)
    view = np.lib.stride_tricks.as_strided(
        flat[offset:],
        shape=shape,
        strides=tuple(s * storage.dtype.itemsize for s in strides),
        writeable=False,
    )
    return Tensor(torch.from_numpy(np.array(view, dtype=native)))


def rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None) -> Tensor:
    """``torch._utils._rebuild_parameter``: read as the plain tensor it wraps."""
    if not isinstance(data, Tensor):
        raise UnsafePickleError("a parameter must wrap a tensor")
    return data
