"""Reading the pickles inside policy files without unpickling anything real.

Threat model
------------
A policy file (an SB3 ``.zip``, its ``policy.pth``, a zoo ``.pkl``) is untrusted
input: whoever wrote it controls every byte. A pickle is a program for a stack
machine whose only dangerous instructions are the ones that fetch a global
(``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ``, the ``EXT`` codes) and then call
it (``REDUCE``, ``NEWOBJ``, ``BUILD`` through ``__setstate__``). Allow-listing
*real* globals is not enough: an allowed callable can be reached with crafted
arguments, a dotted name or a ``"*"`` entry walks attribute chains to ``exec``,
and ``BUILD`` runs the class's own ``__setstate__`` on attacker data.

So this module never hands the unpickler a real global. ``find_class`` resolves
only exact ``(module, name)`` pairs from ``_TABLE`` (no dotted names, no
wildcards), and every entry there is one of *our* inert stand-ins:

* a ``Global`` token for classes the caller may want (policy classes, activation
  functions): a frozen record of the two strings, not callable, not a type, so
  ``REDUCE``/``NEWOBJ`` on it fail; the caller maps it to a real class through its
  own explicit table, which checks ``__module__``/``__qualname__``;
* small functions and record classes written here that rebuild numpy arrays,
  dtypes, torch tensors and gymnasium spaces from plain data, validating every
  argument (numeric dtypes only, shapes and strides bounded by the bytes present);
* ``_Opaque`` for state the caller never needs (the spaces' random generators):
  it swallows its arguments and becomes ``None``.

Before the unpickler runs, the opcode stream is scanned (``pickletools``, which
parses and runs nothing): only the opcodes listed in ``_OPCODES`` are admitted
(``PERSID``/``EXT``/``INST``/``OBJ`` and out-of-band buffers are refused), memo
indices are bounded (a huge ``LONG_BINPUT`` index would make the C unpickler
allocate gigabytes) and so are the stream's length and opcode count. After it,
``materialise`` converts the records into real objects and refuses anything that
is not plain data (``None``, bools, numbers, strings, bytes, lists, tuples, dicts,
numeric arrays and tensors) or a ``Global`` token.

The only code that ever runs on the file's data is therefore this module's and
the pickle machine's own container operations: there is nothing importable to
reach. Every refusal is ``UnsafePickleError`` with one line saying why.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import pickletools
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_PICKLE_BYTES = 256 << 20
MAX_OPCODES = 1_000_000
MAX_DEPTH = 64
MAX_NDIM = 32


class UnsafePickleError(ValueError):
    """The pickle is malformed or asks for something outside the table of stand-ins."""


@dataclass(frozen=True, slots=True)
class Global:
    """An inert reference to a global named by the pickle (never imported here)."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"

    def __setstate__(self, state: Any) -> None:
        raise _fail(f"refusing to change the class reference {self} (BUILD on a token)")


NDARRAY = Global("numpy", "ndarray")
OBJECT = Global("builtins", "object")

# numpy dtype codes admitted (numeric and bool only: never object, void or structured).
_DTYPES = {
    code: np.dtype(code)
    for code in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
}
_DTYPES.update({np.dtype(c).name: np.dtype(c) for c in list(_DTYPES)})
_DTYPES["bool"] = np.dtype("b1")


def _fail(message: str) -> UnsafePickleError:
    return UnsafePickleError(message)


def _dtype_of(value: Any) -> np.dtype:
    if isinstance(value, _DType):
        return value.dtype
    if isinstance(value, np.dtype) and value.str[1:] in _DTYPES:
        return value
    raise _fail(f"expected a numeric dtype, got {type(value).__name__}")


def _int(value: Any, what: str, low: int = 0, high: int = 1 << 40) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(f"{what} must be an integer in [{low}, {high}]")
    return value


def _shape(value: Any, what: str = "shape") -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_NDIM:
        raise _fail(f"{what} must be a tuple of at most {MAX_NDIM} integers")
    return tuple(_int(v, what) for v in value)


def _buffer(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):  # protocol 0-2 pickles store bytes as latin-1 text
        return value.encode("latin1")
    raise _fail(f"expected raw bytes, got {type(value).__name__}")


def _from_bytes(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise _fail(f"array {shape} of {dtype} needs {count * dtype.itemsize} bytes")
    flat = np.frombuffer(raw, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran else "C"
    )
    return np.array(flat, dtype=dtype.newbyteorder("="))


class _Record:
    """Base of the objects the unpickler may build; ``BUILD`` goes to ``_build``."""

    __slots__ = ("_built",)

    def __setstate__(self, state: Any) -> None:
        if getattr(self, "_built", False):
            raise _fail(f"{type(self).__name__} built twice")
        self._built = True
        self._build(state)

    def _build(self, state: Any) -> None:
        raise _fail(f"{type(self).__name__} takes no state")


class _DType(_Record):
    """``numpy.dtype(code, align, copy)`` then ``BUILD`` with the byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        if not isinstance(code, str) or code not in _DTYPES:
            raise _fail(f"dtype {code!r} is not a plain numeric dtype")
        self.dtype = _DTYPES[code]

    def _build(self, state: Any) -> None:
        if type(state) is not tuple or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise _fail("malformed dtype state")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _Array(_Record):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` then ``BUILD``."""

    __slots__ = ("array",)

    def __init__(self, cls: Any, shape: Any, code: Any):
        if cls != NDARRAY:
            raise _fail("_reconstruct may only build a plain numpy.ndarray")
        self.array: np.ndarray | None = None

    def _build(self, state: Any) -> None:
        if type(state) is not tuple or len(state) != 5:
            raise _fail("malformed ndarray state")
        _, shape, dtype, fortran, raw = state
        if type(fortran) is not bool:
            raise _fail("malformed ndarray state")
        self.array = _from_bytes(_buffer(raw), _dtype_of(dtype), _shape(shape), fortran)


def _built_array(array: np.ndarray) -> _Array:
    record = _Array(NDARRAY, (0,), b"b")
    record._built, record.array = True, array
    return record


def _frombuffer(raw: Any, dtype: Any, shape: Any, order: Any) -> _Array:
    if order not in ("C", "F"):
        raise _fail("array order must be 'C' or 'F'")
    return _built_array(_from_bytes(_buffer(raw), _dtype_of(dtype), _shape(shape), order == "F"))


def _scalar(dtype: Any, raw: Any = b"") -> _Array:
    return _built_array(_from_bytes(_buffer(raw), _dtype_of(dtype), (), False))


class _Tensor(_Record):
    """A tensor rebuilt from the file's storage (wrapped: no torch object on the stack)."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any):
        self._built, self.tensor = True, tensor


class _Opaque(_Record):
    """State nobody needs (random generators, seed sequences): swallowed, becomes None."""

    __slots__ = ()

    def __init__(self, *args: Any) -> None:
        pass

    def _build(self, state: Any) -> None:
        pass


class _Space(_Record):
    """A gymnasium space: ``NEWOBJ`` with no arguments, then ``BUILD`` with its fields."""

    __slots__ = ("fields",)
    kind = ""

    def __new__(cls, *args: Any) -> _Space:
        if args:
            raise _fail(f"{cls.kind} takes no constructor arguments in a pickle")
        return super().__new__(cls)

    def _build(self, state: Any) -> None:
        if type(state) is not dict or not all(isinstance(k, str) for k in state):
            raise _fail(f"malformed {self.kind} state")
        self.fields = state


def _space_class(kind: str) -> type[_Space]:
    return type(kind, (_Space,), {"__slots__": (), "kind": kind})


def _latin1(text: Any, encoding: Any) -> bytes:
    """``_codecs.encode(text, "latin1")``: how protocols 0-2 spell bytes."""
    if not isinstance(text, str) or encoding != "latin1":
        raise _fail("_codecs.encode is only read as latin-1 bytes")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> _Space:
    """``copyreg._reconstructor(cls, object, None)``: protocols 0-1 spell NEWOBJ so."""
    space = isinstance(cls, type) and issubclass(cls, _Space)
    if not space or base != OBJECT or state is not None:
        raise _fail("copyreg._reconstructor may only start a space")
    return cls()


class StateDict(dict):
    """``collections.OrderedDict`` as torch pickles it (``_metadata`` is dropped)."""

    def __setstate__(self, state: Any) -> None:
        if type(state) is not dict:
            raise _fail("malformed OrderedDict state")


@dataclass(frozen=True, slots=True)
class _Storage:
    dtype: np.dtype
    data: bytes

    def __setstate__(self, state: Any) -> None:
        raise _fail("refusing BUILD on a storage")


def _rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    hooks: Any = None,
    metadata: Any = None,
) -> _Tensor:
    import torch

    if not isinstance(storage, _Storage):
        raise _fail("a tensor must be built from a storage of the file")
    shape, strides = _shape(size, "tensor size"), _shape(stride, "tensor stride")
    offset = _int(offset, "storage offset")
    if len(shape) != len(strides) or type(requires_grad) is not bool:
        raise _fail("malformed tensor")
    if hooks not in (None, {}) and not (isinstance(hooks, StateDict) and not hooks):
        raise _fail("tensors with backward hooks are refused")
    numel = len(storage.data) // storage.dtype.itemsize
    if math.prod(shape) > max(numel, 1):
        raise _fail(f"tensor of {math.prod(shape)} elements over a storage of {numel}")
    flat = np.frombuffer(storage.data, dtype=storage.dtype, count=numel)
    if 0 in shape:
        return _Tensor(torch.from_numpy(np.zeros(shape, dtype=storage.dtype.newbyteorder("="))))
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    if last >= numel:
        raise _fail(f"tensor reaches element {last} of a storage of {numel}")
    view = np.lib.stride_tricks.as_strided(
        flat[offset:],
        shape=shape,
        strides=tuple(s * storage.dtype.itemsize for s in strides),
        writeable=False,
    )
    return _Tensor(torch.from_numpy(np.array(view, dtype=storage.dtype.newbyteorder("="))))


def _rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise _fail("a parameter must wrap a tensor")
    return data


_TORCH_STORAGES = {
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

_SPACES = {
    ("gymnasium.spaces.box", "Box"),
    ("gymnasium.spaces.discrete", "Discrete"),
    ("gymnasium.spaces.multi_discrete", "MultiDiscrete"),
    ("gymnasium.spaces.multi_binary", "MultiBinary"),
    ("gymnasium.spaces.dict", "Dict"),
    ("gymnasium.spaces.tuple", "Tuple"),
}

# Classes the *caller* may ask for by name; they stay Global tokens here.
TOKENS = {
    ("numpy", "ndarray"),
    ("builtins", "object"),
    ("stable_baselines3.common.policies", "ActorCriticPolicy"),
    ("stable_baselines3.common.policies", "ActorCriticCnnPolicy"),
    ("stable_baselines3.common.policies", "MultiInputActorCriticPolicy"),
    ("stable_baselines3.dqn.policies", "DQNPolicy"),
    ("stable_baselines3.dqn.policies", "CnnPolicy"),
    ("stable_baselines3.dqn.policies", "MultiInputPolicy"),
    ("stable_baselines3.common.torch_layers", "NatureCNN"),
    ("stable_baselines3.common.torch_layers", "FlattenExtractor"),
    ("stable_baselines3.common.torch_layers", "CombinedExtractor"),
    ("agents.networks", "SmallCNN"),
    ("torch.optim.adam", "Adam"),
    ("torch.optim.rmsprop", "RMSprop"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    *(
        ("torch.nn.modules.activation", n)
        for n in ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU")
    ),
    *(("torch", n) for n in _TORCH_STORAGES),
}

_TABLE: dict[tuple[str, str], Any] = {
    **{key: Global for key in TOKENS},
    **{key: _space_class(key[1]) for key in _SPACES},
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "_reconstruct"): _Array,
    ("numpy._core.multiarray", "_reconstruct"): _Array,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.random._pickle", "__generator_ctor"): _Opaque,
    ("numpy.random._pickle", "__bit_generator_ctor"): _Opaque,
    ("numpy.random._pickle", "__randomstate_ctor"): _Opaque,
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): _Opaque,
    ("collections", "OrderedDict"): StateDict,
    ("_codecs", "encode"): _latin1,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}

# Opcodes admitted; everything else (PERSID, EXT*, INST, OBJ, out-of-band buffers...)
# is refused before unpickling. BINPERSID only where the caller resolves storages.
_OPCODES = frozenset(
    [
        "PROTO",
        "FRAME",
        "STOP",
        "MARK",
        "POP",
        "POP_MARK",
        "DUP",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "EMPTY_TUPLE",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "EMPTY_LIST",
        "LIST",
        "APPEND",
        "APPENDS",
        "EMPTY_DICT",
        "DICT",
        "SETITEM",
        "SETITEMS",
        "EMPTY_SET",
        "ADDITEMS",
        "FROZENSET",
        "GET",
        "BINGET",
        "LONG_BINGET",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "MEMOIZE",
        "GLOBAL",
        "STACK_GLOBAL",
        "REDUCE",
        "NEWOBJ",
        "BUILD",
    ]
)
_MEMO_OPS = {"GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def scan(data: bytes, *, persistent: bool = False) -> None:
    """Refuse a stream with an opcode outside ``_OPCODES`` or an oversized memo."""
    if len(data) > MAX_PICKLE_BYTES:
        raise _fail(f"pickle of {len(data)} bytes is over the {MAX_PICKLE_BYTES}-byte limit")
    allowed = _OPCODES | {"BINPERSID"} if persistent else _OPCODES
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(data):
            count += 1
            if count > MAX_OPCODES:
                raise _fail(f"pickle has over {MAX_OPCODES} opcodes")
            if opcode.name not in allowed:
                raise _fail(f"refusing pickle opcode {opcode.name}")
            if opcode.name in _MEMO_OPS and (type(arg) is not int or not 0 <= arg <= MAX_OPCODES):
                raise _fail(f"memo index {arg!r} out of range")
    except UnsafePickleError:
        raise
    except Exception as exc:  # pickletools' own complaints about a malformed stream
        raise _fail(f"not a well-formed pickle: {exc}") from None
    if count == 0:
        raise _fail("empty pickle")


def _lookup(module: Any, name: Any) -> Any:
    if not (
        isinstance(module, str)
        and isinstance(name, str)
        and _MODULE.match(module)
        and _NAME.match(name)
        and (module, name) in _TABLE
    ):
        raise _fail(f"refusing global {module!s:.60}.{name!s:.60} (not in the table)")
    entry = _TABLE[(module, name)]
    return Global(module, name) if entry is Global else entry  # a fresh token each time


class _InertUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, persistent: Callable[[Any], Any] | None, encoding: str):
        super().__init__(io.BytesIO(data), encoding=encoding)
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        if isinstance(module, str) and isinstance(name, str):
            # Python 2 spellings (copy_reg, __builtin__), as pickle's own find_class maps
            # them; the result still has to be in the table
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        return _lookup(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise _fail("persistent ids are refused here")
        return self._persistent(pid)


def inert_loads(
    data: bytes,
    *,
    persistent: Callable[[Any], Any] | None = None,
    encoding: str = "ASCII",
) -> Any:
    """Unpickle ``data`` into plain data, arrays, tensors, spaces and ``Global`` tokens."""
    if not isinstance(data, bytes | bytearray):
        raise _fail("pickle data must be bytes")
    data = bytes(data)
    scan(data, persistent=persistent is not None)
    try:
        return materialise(_InertUnpickler(data, persistent, encoding).load())
    except UnsafePickleError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise _fail(f"pickle too deep or too large: {type(exc).__name__}") from None
    except Exception as exc:  # the machine's own errors: bad stack, wrong arguments...
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise _fail(f"not a loadable pickle: {message}"[:300]) from None


MAX_NODES = 1_000_000


def materialise(obj: Any) -> Any:
    """Turn the stand-ins into real objects; refuse anything that is not plain data.

    Shared objects are converted once (a memo by identity), and the walk counts the
    objects it visits: a small pickle of nested shared tuples cannot make it explode.
    """
    return _Materialiser().convert(obj, 0)


class _Materialiser:
    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.keep: list[Any] = []  # keeps ids stable while the walk runs
        self.nodes = 0

    def convert(self, obj: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _fail(f"pickle nests deeper than {MAX_DEPTH}")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _fail(f"pickle holds over {MAX_NODES} objects")
        if obj is None or type(obj) in (bool, int, float, str, bytes, Global):
            return obj
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        self.keep.append(obj)
        out = self._convert(obj, depth)
        self.memo[key] = out
        return out

    def _convert(self, obj: Any, depth: int) -> Any:
        if type(obj) is bytearray:
            return bytes(obj)
        if type(obj) in (list, tuple, set, frozenset):
            return type(obj)(self.convert(v, depth + 1) for v in obj)
        if type(obj) in (dict, StateDict):
            return type(obj)(
                (self.convert(k, depth + 1), self.convert(v, depth + 1)) for k, v in obj.items()
            )
        if isinstance(obj, _Array):
            if obj.array is None:
                raise _fail("ndarray without its data")
            return obj.array[()] if obj.array.ndim == 0 else obj.array
        if isinstance(obj, _Tensor):
            return obj.tensor
        if isinstance(obj, _DType):
            return obj.dtype
        if isinstance(obj, _Opaque):
            return None
        if isinstance(obj, _Space):
            if not hasattr(obj, "fields"):
                raise _fail(f"{obj.kind} without its fields")
            return _make_space(obj.kind, self.convert(obj.fields, depth + 1))
        raise _fail(f"unexpected {type(obj).__name__} in a pickle")


def _plain_int(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _make_space(kind: str, fields: dict[str, Any]) -> Any:
    from gymnasium import spaces

    def array(key: str) -> np.ndarray:
        value = fields.get(key)
        if not isinstance(value, np.ndarray):
            raise _fail(f"{kind} field {key!r} must be an array")
        return value

    try:
        if kind == "Box":
            shape, dtype = _shape(fields.get("_shape")), _dtype_of(fields.get("dtype"))
            low, high = array("low"), array("high")
            if low.shape != shape or high.shape != shape or math.prod(shape) > 1 << 26:
                raise _fail("Box bounds do not match its shape")
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            n = _int(_plain_int(fields.get("n")), "Discrete n", 1)
            start = _int(_plain_int(fields.get("start", 0)), "Discrete start", -(1 << 40))
            return spaces.Discrete(n, start=start)
        if kind == "MultiDiscrete":
            nvec = array("nvec")
            if nvec.dtype.kind not in "iu" or nvec.size > 1 << 20 or (nvec < 1).any():
                raise _fail("malformed MultiDiscrete")
            return spaces.MultiDiscrete(nvec)
        if kind == "MultiBinary":
            raw_n = fields.get("n")
            if type(raw_n) in (tuple, list):
                return spaces.MultiBinary(_shape(raw_n))
            return spaces.MultiBinary(_int(_plain_int(raw_n), "MultiBinary n", 1))
        if kind == "Dict":
            inner = fields.get("spaces")
            if not isinstance(inner, dict) or not all(isinstance(k, str) for k in inner):
                raise _fail("malformed Dict space")
            return spaces.Dict(inner)
        if kind == "Tuple":
            items = fields.get("spaces")
            if not isinstance(items, tuple | list):
                raise _fail("malformed Tuple space")
            return spaces.Tuple(tuple(items))
    except UnsafePickleError:
        raise
    except (TypeError, ValueError, AssertionError) as exc:
        raise _fail(f"malformed {kind} space: {exc}"[:300]) from None
    raise _fail(f"unknown space {kind}")


def read_torch_file(blob: bytes, *, max_bytes: int = 1 << 30) -> Any:
    """What ``torch.save`` wrote (zip format), read without ``torch.load``.

    ``data.pkl`` goes through ``inert_loads``; its persistent ids name storages,
    which are read from the archive's ``data/KEY`` entries as plain bytes.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail("not a torch zip file (only torch.save's zip format is read)") from None
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise _fail("not a torch zip file (no single <name>/data.pkl)")
    prefix = pkls[0][: -len("data.pkl")]
    order = prefix + "byteorder"
    if order in names and archive.read(order).strip() not in (b"little", b""):
        raise _fail("big-endian torch files are not supported")
    total = sum(info.file_size for info in archive.infolist())
    if total > max_bytes:
        raise _fail(f"torch file unpacks to {total} bytes (over {max_bytes})")
    storages: dict[str, _Storage] = {}

    def persistent(pid: Any) -> _Storage:
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            raise _fail("malformed persistent id")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, Global) or kind not in {
            Global("torch", n) for n in _TORCH_STORAGES
        }:
            raise _fail("unknown storage type")
        if not isinstance(key, str) or not key.isdigit() or len(key) > 12:
            raise _fail("malformed storage key")
        dtype = np.dtype(_TORCH_STORAGES[kind.name]).newbyteorder("<")
        numel = _int(numel, "storage size")
        if key not in storages:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise _fail(f"storage {key} missing from the archive")
            raw = archive.read(name)
            if len(raw) < numel * dtype.itemsize:
                raise _fail(f"storage {key} holds fewer bytes than it claims")
            storages[key] = _Storage(dtype, raw[: numel * dtype.itemsize])
        return storages[key]

    try:
        return inert_loads(archive.read(pkls[0]), persistent=persistent)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _fail(f"corrupt torch file: {exc}") from None


def read_torch_weights(blob: bytes, *, max_bytes: int = 1 << 30) -> dict[str, Any]:
    """A state dict (names to tensors) saved by ``torch.save``, read inertly."""
    state = read_torch_file(blob, max_bytes=max_bytes)
    if type(state) not in (dict, StateDict) or not all(isinstance(k, str) for k in state):
        raise _fail("a policy's weights must be a dict of named tensors")
    import torch

    if not all(type(v) is torch.Tensor for v in state.values()):
        raise _fail("a policy's weights must be a dict of named tensors")
    return dict(state)


def resolve_token(token: Any, table: dict[tuple[str, str], Any], what: str) -> Any:
    """The real class for a ``Global`` token, from the caller's explicit table.

    The class found must really be defined where the token says (``__module__`` and
    ``__qualname__``), so a re-exported alias cannot stand in for another object.
    """
    if not isinstance(token, Global) or (token.module, token.name) not in table:
        names = ", ".join(sorted(f"{m}.{n}" for m, n in table))
        raise _fail(f"{what} {token!s:.80} is not one of: {names}")
    obj = table[(token.module, token.name)]
    if getattr(obj, "__module__", None) != token.module or obj.__qualname__ != token.name:
        raise _fail(f"{what} {token} is not defined where it claims")
    return obj
