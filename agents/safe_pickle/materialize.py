"""Turning the unpickler's stand-ins into real objects, refusing anything else.

What comes out is plain data (``None``, bools, numbers, strings, bytes, lists,
tuples, sets, dicts), numeric arrays and numeric dtypes, tensors, gymnasium spaces
and ``Global`` tokens. Shared objects are converted once (a memo by identity) and the walk counts
the objects it visits, so a small pickle of nested shared tuples cannot explode.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.safe_pickle.standins import (
    Array,
    DType,
    Instance,
    ObjectRecord,
    Opaque,
    Space,
    StateDict,
    Tensor,
    check_int,
    check_shape,
    dtype_of,
)
from agents.safe_pickle.tokens import Global, UnsafePickleError

MAX_DEPTH = 64
MAX_NODES = 1_000_000


def materialize(obj: Any) -> Any:
    """Turn the stand-ins into real objects; refuse anything that is not plain data."""
    return _Materializer().convert(obj, 0)


class _Materializer:
    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.keep: list[Any] = []  # keeps ids stable while the walk runs
        self.nodes = 0

    def convert(self, obj: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise UnsafePickleError(f"pickle nests deeper than {MAX_DEPTH}")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise UnsafePickleError(f"pickle holds over {MAX_NODES} objects")
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
        if isinstance(obj, type) and issubclass(obj, Instance):  # a class named, not built
            return obj.token
        if type(obj) is bytearray:
            return bytes(obj)
        if type(obj) in (list, tuple, set, frozenset):
            return type(obj)(self.convert(v, depth + 1) for v in obj)
        if type(obj) in (dict, StateDict):
            return type(obj)(
                (self.convert(k, depth + 1), self.convert(v, depth + 1)) for k, v in obj.items()
            )
        if isinstance(obj, Array):
            if obj.array is None:
                raise UnsafePickleError("ndarray without its data")
            return obj.array[()] if obj.array.ndim == 0 else obj.array
        if isinstance(obj, Tensor):
            return obj.tensor
        if isinstance(obj, DType):
            return obj.dtype
        if isinstance(obj, Opaque):
            return None
        if isinstance(obj, Instance):
            return ObjectRecord(
                type(obj).token,
                tuple(self.convert(a, depth + 1) for a in obj.args),
                self.convert(obj.state, depth + 1),
            )
        if isinstance(obj, Space):
            if not hasattr(obj, "fields"):
                raise UnsafePickleError(f"{obj.kind} without its fields")
            return _make_space(obj.kind, self.convert(obj.fields, depth + 1))
        raise UnsafePickleError(f"unexpected {type(obj).__name__} in a pickle")


def _plain_int(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _make_space(kind: str, fields: dict[str, Any]) -> Any:
    from gymnasium import spaces

    def array(key: str) -> np.ndarray:
        value = fields.get(key)
        if not isinstance(value, np.ndarray):
            raise UnsafePickleError(f"{kind} field {key!r} must be an array")
        return value

    try:
        if kind == "Box":
            shape, dtype = check_shape(fields.get("_shape")), dtype_of(fields.get("dtype"))
            low, high = array("low"), array("high")
            if low.shape != shape or high.shape != shape or math.prod(shape) > 1 << 26:
                raise UnsafePickleError("Box bounds do not match its shape")
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            n = check_int(_plain_int(fields.get("n")), "Discrete n", 1)
            start = check_int(_plain_int(fields.get("start", 0)), "Discrete start", -(1 << 40))
            return spaces.Discrete(n, start=start)
        if kind == "MultiDiscrete":
            nvec = array("nvec")
            if nvec.dtype.kind not in "iu" or nvec.size > 1 << 20 or (nvec < 1).any():
                raise UnsafePickleError("malformed MultiDiscrete")
            return spaces.MultiDiscrete(nvec)
        if kind == "MultiBinary":
            raw_n = fields.get("n")
            if type(raw_n) in (tuple, list):
                return spaces.MultiBinary(check_shape(raw_n))
            return spaces.MultiBinary(check_int(_plain_int(raw_n), "MultiBinary n", 1))
        if kind == "Dict":
            inner = fields.get("spaces")
            if not isinstance(inner, dict) or not all(isinstance(k, str) for k in inner):
                raise UnsafePickleError("malformed Dict space")
            return spaces.Dict(inner)
        if kind == "Tuple":
            items = fields.get("spaces")
            if not isinstance(items, tuple | list):
                raise UnsafePickleError("malformed Tuple space")
            return spaces.Tuple(tuple(items))
    except UnsafePickleError:
        raise
    except (TypeError, ValueError, AssertionError) as exc:
        raise UnsafePickleError(f"malformed {kind} space: {exc}"[:300]) from None
    raise UnsafePickleError(f"unknown space {kind}")
