"""The opcode scan run before unpickling: admitted opcodes, memo indices and sizes.

``pickletools.genops`` parses the stream and runs nothing. ``PERSID``, ``EXT*``,
``INST``, ``OBJ`` and out-of-band buffers are refused; a huge memo index (which
would make the C unpickler allocate gigabytes) and an oversized stream too.
"""

from __future__ import annotations

import pickletools

from agents.safe_pickle.tokens import UnsafePickleError

MAX_PICKLE_BYTES = 256 << 20
MAX_OPCODES = 1_000_000

# Opcodes admitted; everything else is refused before unpickling. BINPERSID only where
# the caller resolves storages.
OPCODES = frozenset(
    [
        "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
        "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2",
        "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
        "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
        "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS", "FROZENSET",
        "GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE",
        "GLOBAL", "STACK_GLOBAL", "REDUCE", "NEWOBJ", "BUILD",
    ]
)  # fmt: skip
_MEMO_OPS = {"GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT"}


def scan(data: bytes, *, persistent: bool = False) -> None:
    """Refuse a stream with an opcode outside ``OPCODES`` or an oversized memo."""
    if len(data) > MAX_PICKLE_BYTES:
        raise UnsafePickleError(
            f"pickle of {len(data)} bytes is over the {MAX_PICKLE_BYTES}-byte limit"
        )
    allowed = OPCODES | {"BINPERSID"} if persistent else OPCODES
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(data):
            count += 1
            if count > MAX_OPCODES:
                raise UnsafePickleError(f"pickle has over {MAX_OPCODES} opcodes")
            if opcode.name not in allowed:
                raise UnsafePickleError(f"refusing pickle opcode {opcode.name}")
            if opcode.name in _MEMO_OPS and (type(arg) is not int or not 0 <= arg <= MAX_OPCODES):
                raise UnsafePickleError(f"memo index {arg!r} out of range")
    except UnsafePickleError:
        raise
    except Exception as exc:  # pickletools' own complaints about a malformed stream
        raise UnsafePickleError(f"not a well-formed pickle: {exc}") from None
    if count == 0:
        raise UnsafePickleError("empty pickle")
