"""``inert_loads``: the scan, an unpickler that resolves globals only through the
table of stand-ins, then ``materialize``."""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from collections.abc import Callable
from typing import Any

from agents.safe_pickle.materialize import materialize
from agents.safe_pickle.scan import scan
from agents.safe_pickle.standins import instance_class
from agents.safe_pickle.table import lookup, well_formed
from agents.safe_pickle.tokens import Global, UnsafePickleError

MAX_RECORD_CLASSES = 4096
"""The most distinct classes one pickle may name in records mode (a policy file names
a few dozen)."""
KEPT_TOKENS = frozenset({"torch", "numpy"})
"""Modules whose table tokens stay tokens in records mode (storages, ``ndarray``)."""


class _InertUnpickler(pickle.Unpickler):
    def __init__(
        self,
        data: bytes,
        persistent: Callable[[Any], Any] | None,
        encoding: str,
        records: bool = False,
    ):
        super().__init__(io.BytesIO(data), encoding=encoding)
        self._persistent = persistent
        self._records = records
        self._classes: dict[tuple[str, str], Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        if isinstance(module, str) and isinstance(name, str):
            # Python 2 spellings (copy_reg, __builtin__), as pickle's own find_class maps
            # them; the result still has to be in the table
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            entry = lookup(module, name)
        except UnsafePickleError:
            if not self._records or not well_formed(module, name):
                raise
            return self._record_class(module, name)
        if self._records and isinstance(entry, Global) and entry.module not in KEPT_TOKENS:
            # a class the caller may name is, in a pickled object, one more record
            # (torch's storage types and numpy's array stay tokens: their readers use them)
            return self._record_class(module, name)
        return entry

    def _record_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key not in self._classes:
            if len(self._classes) >= MAX_RECORD_CLASSES:
                raise UnsafePickleError(
                    f"pickle names over {MAX_RECORD_CLASSES} classes (records mode)"
                )
            self._classes[key] = instance_class(module, name)
        return self._classes[key]

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafePickleError("persistent ids are refused here")
        return self._persistent(pid)


def inert_loads(
    data: bytes,
    *,
    persistent: Callable[[Any], Any] | None = None,
    encoding: str = "ASCII",
    records: bool = False,
) -> Any:
    """Unpickle ``data`` into plain data, arrays, tensors, spaces and ``Global`` tokens;
    with ``records``, an object of a class outside the table becomes an
    ``ObjectRecord`` (its class's name and its state as data) instead of a refusal."""
    if not isinstance(data, bytes | bytearray):
        raise UnsafePickleError("pickle data must be bytes")
    data = bytes(data)
    scan(data, persistent=persistent is not None)
    try:
        return materialize(_InertUnpickler(data, persistent, encoding, records).load())
    except UnsafePickleError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise UnsafePickleError(f"pickle too deep or too large: {type(exc).__name__}") from None
    except Exception as exc:  # the machine's own errors: bad stack, wrong arguments...
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise UnsafePickleError(f"not a loadable pickle: {message}"[:300]) from None
