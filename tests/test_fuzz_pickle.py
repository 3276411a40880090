"""Property-based fuzz of the inert unpickler: random opcode streams built from every
opcode (allowed or not), every name in the table, names an attacker would try and raw
bytes. Each stream must end in a value made only of plain data, or in one
``UnsafePickleError`` line; never another exception, never a side effect.

The fast tier runs 300 streams; the slow tier 10,000 (``-m slow``).
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.safe_pickle import _TABLE, Global, StateDict, UnsafePickleError, inert_loads

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"arena_fuzz_marker_{os.getpid()}"

_HOSTILE = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "exec"),
    ("builtins", "eval"),
    ("builtins", "getattr"),
    ("__builtin__", "eval"),
    ("copy_reg", "_reconstructor"),
    ("agents.networks", "torch"),
    ("agents.networks", "torch.os.system"),
    ("numpy.dtypes", "__builtins__"),
    ("subprocess", "Popen"),
    ("torch", "load"),
    ("numpy", "load"),
]
_NAMES = sorted(_TABLE) + _HOSTILE


def _short(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


_simple_ops = st.sampled_from(
    [
        b"N", b"\x88", b"\x89", b")", b"]", b"}", b"(", b"t", b"\x85", b"\x86", b"\x87",
        b"R", b"\x81", b"b", b"a", b"e", b"s", b"u", b"0", b"1", b"2", b"\x94", b"l",
        b"d", b"\x8f", b"\x90", b"\x91", b"Q", b"\x92", b"o", b"\x97", b"\x98", b".",
        b"\x82\x01", b"\x83\x01\x00", b"\x84\x01\x00\x00\x00",
    ]
)  # fmt: skip
_ints = st.one_of(
    st.integers(0, 255).map(lambda v: b"K" + bytes([v])),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: b"J" + struct.pack("<i", v)),
    st.integers(0, 2**16 - 1).map(lambda v: b"M" + struct.pack("<H", v)),
    st.floats(allow_nan=True).map(lambda v: b"G" + struct.pack(">d", v)),
)
_memo = st.one_of(
    st.integers(0, 255).map(lambda v: b"h" + bytes([v])),
    st.integers(0, 255).map(lambda v: b"q" + bytes([v])),
    st.integers(0, 2**32 - 1).map(lambda v: b"j" + struct.pack("<I", v)),
    st.integers(0, 2**32 - 1).map(lambda v: b"r" + struct.pack("<I", v)),
)
_texts = st.one_of(
    st.sampled_from(["f4", "f8", "u1", "O", "b1", "<", "|", "C", "F", "storage", "0", "latin1"])
    .map(str.encode)
    .map(lambda b: b"\x8c" + _short(b)),
    st.text(max_size=12).map(lambda t: b"\x8c" + _short(t.encode()[:255])),
    st.binary(max_size=24).map(lambda b: b"C" + _short(b)),
    st.binary(max_size=24).map(lambda b: b"\x96" + struct.pack("<Q", len(b)) + b),
)
_globals = st.sampled_from(_NAMES).flatmap(
    lambda mn: st.sampled_from(
        [
            b"\x8c" + _short(mn[0].encode()) + b"\x8c" + _short(mn[1].encode()) + b"\x93",
            b"c" + mn[0].encode() + b"\n" + mn[1].encode() + b"\n",
        ]
    )
)
_honest = st.sampled_from(
    [
        pickle.dumps(obj, protocol=p)[2:-1]
        for p in (2, 4)
        for obj in (np.arange(3.0), spaces.Box(-1, 1, (2,)), spaces.Discrete(3), {"a": [1]})
    ]
)
_piece = st.one_of(_simple_ops, _ints, _memo, _texts, _globals, _honest, st.binary(max_size=6))
streams = st.tuples(
    st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]),
    st.lists(_piece, max_size=40),
    st.sampled_from([b".", b""]),
).map(lambda t: t[0] + b"".join(t[1]) + t[2])


def _plain(value, depth=0) -> bool:
    if depth > 80:
        return False
    if value is None or type(value) in (bool, int, float, str, bytes, Global):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    if isinstance(value, np.generic):
        return value.dtype.kind in "biuf"
    if isinstance(value, np.dtype):  # the numeric dtypes the table admits, as they are
        return value.kind in "biuf"
    if isinstance(value, spaces.Space) or type(value) is torch.Tensor:
        return True
    if type(value) in (list, tuple, set, frozenset):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) in (dict, StateDict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _verdict(data: bytes) -> str:
    """``"refused"`` (one UnsafePickleError line), ``"plain"`` (only plain data came
    back), or what went wrong."""
    try:
        value = inert_loads(data)
    except UnsafePickleError as exc:
        return "refused" if "\n" not in str(exc) else f"multi-line refusal: {exc!s}"
    return "plain" if _plain(value) else f"not plain data: {value!r:.200}"


# pickletools decodes protocol-0 strings with a deprecated escape decoder: say nothing
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

_SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=300, **_SETTINGS)
@given(streams)
def test_random_opcode_streams_are_refused_or_plain(data):
    assert _verdict(data) in ("refused", "plain")
    assert not MARKER.exists()


@pytest.mark.slow
@settings(max_examples=10_000, **_SETTINGS)
@given(streams)
def test_ten_thousand_random_opcode_streams(data):
    assert _verdict(data) in ("refused", "plain")
    assert not MARKER.exists()


@settings(max_examples=200, **_SETTINGS)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_or_plain(data):
    assert _verdict(data) in ("refused", "plain")
    assert not MARKER.exists()
