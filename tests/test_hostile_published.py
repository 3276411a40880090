"""Hostile published policies and hostile download servers (issue 14, red team).

What an attacker who hands someone a ``.pt``/``.pth`` file, or who runs the mirror
``arena fetch`` downloads from, would try against

* the records mode of the inert unpickler (``inert_loads(..., records=True)``, the
  torch zip reader and the legacy-format reader): gadget chains, opcodes outside the
  scan, BUILD tricks, persistent ids naming record classes, confused deputies, cycles,
  deep nesting, and the resource limits (declared sizes, views, globals, storage keys);
* ``agents.atari_published.read_published`` and ``atari:FILE.pt`` through the CLI
  (one line ``arena: error: ...``, exit status 2, never a traceback);
* ``arena.victims.fetch`` (``arena fetch``): redirects, endless and dripping bodies,
  names that climb out of the cache, ``.part`` files that are links or folders, a home
  that is a file.

A canary file stands for "code ran"; every gadget would create it.
Tests whose docstrings begin "Was a bug" pin what the first red-team pass found.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import os
import pickle
import pickletools
import struct
import sys
import threading
import time
import tracemalloc
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error
from torch import nn

from agents import specs
from agents.atari_published import read_published
from agents.safe_pickle import UnsafePickleError, inert_loads, read_torch_file, read_torch_weights
from agents.safe_pickle.standins import ObjectRecord
from agents.safe_pickle.tokens import Global
from agents.safe_pickle.torchfile import read_legacy_torch_file
from agents.specs import PolicySpecError

pytestmark = pytest.mark.filterwarnings("ignore:Couldn.t retrieve source code")

# ---------------------------------------------------------------- crafting pickles by hand

PROTO, STOP, MARK, TUPLE, REDUCE, BUILD, NEWOBJ = b"\x80\x02", b".", b"(", b"t", b"R", b"b", b"\x81"
EMPTY_DICT, SETITEM, SETITEMS, EMPTY_LIST, APPEND, APPENDS = b"}", b"s", b"u", b"]", b"a", b"e"
BINPERSID, EMPTY_TUPLE, TUPLE1, POP = b"Q", b")", b"\x85", b"0"


def G(module: str, name: str) -> bytes:
    """GLOBAL module name."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def SG(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two strings on the stack."""
    return P(module) + P(name) + b"\x93"


def P(obj) -> bytes:
    """Plain data as a pickle fragment (no PROTO, no STOP)."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def T(*frags: bytes) -> bytes:
    return MARK + b"".join(frags) + TUPLE


def whole(body: bytes) -> bytes:
    return PROTO + body + STOP


def storage_pid(kind: str, key: str, numel: int, *, legacy: bool = True, module="torch") -> bytes:
    parts = [P("storage"), G(module, kind), P(key), P("cpu"), P(numel)]
    if legacy:
        parts.append(P(None))
    return T(*parts) + BINPERSID


def rebuild(storage: bytes, size: tuple[int, ...], stride: tuple[int, ...] | None = None) -> bytes:
    if stride is None:
        out, acc = [], 1
        for s in reversed(size):
            out.insert(0, acc)
            acc *= s
        stride = tuple(out)
    hooks = G("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    args = T(storage, P(0), P(tuple(size)), P(tuple(stride)), P(False), hooks)
    return G("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}


def legacy_file(
    main_body: bytes, keys: list[str], storages: bytes = b"", keys_pickle=None
) -> bytes:
    """The legacy torch format: magic, protocol, info, the object, its keys, storages."""
    return (
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps(INFO, protocol=2)
        + whole(main_body)
        + (keys_pickle if keys_pickle is not None else pickle.dumps(keys, protocol=2))
        + storages
    )


def raw_storage(numel: int, data: bytes) -> bytes:
    return struct.pack("<q", numel) + data


def zip_file(main_body: bytes, storages: dict[str, bytes], compress=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        z.writestr("archive/data.pkl", whole(main_body))
        z.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw)
    return buf.getvalue()


def _plain(obj, depth=0) -> None:
    """Everything read is plain data, tensors, records of names, or tokens."""
    assert depth < 80
    if obj is None or type(obj) in (bool, int, float, str, bytes, Global):
        return
    if isinstance(obj, torch.Tensor | np.ndarray | np.generic):
        return
    if isinstance(obj, ObjectRecord):
        assert type(obj.cls) is Global
        _plain(obj.args, depth + 1)
        _plain(obj.state, depth + 1)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _plain(k, depth + 1)
            _plain(v, depth + 1)
        return
    assert type(obj) in (list, tuple, set, frozenset), type(obj)
    for v in obj:
        _plain(v, depth + 1)


# ---------------------------------------------------------------- a real-looking policy

_mod = types.ModuleType("hostile_model")
sys.modules["hostile_model"] = _mod


class Net(nn.Module):
    """The CNNPolicy layout (conv1..3, linear1, critic_linear, a 6-action head)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, 32, 3, stride=1)
        self.linear1 = nn.Linear(32 * 7 * 7, 512)
        self.critic_linear = nn.Linear(512, 1)
        self.actor = nn.Linear(512, 6)


class Bag:
    """A plain object: pickled as its class's name and its ``__dict__``."""


class Gadget:
    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return (self.call, self.args)


class Normalisation:
    """baselines' RunningMeanStd as ikostrikov pickles it: numpy arrays."""

    def __init__(self):
        self.mean, self.var, self.count = np.zeros(3), np.ones(3), 1e-4


for _cls in (Net, Bag, Normalisation):
    _cls.__module__ = "hostile_model"
    setattr(_mod, _cls.__name__, _cls)


def _save(obj, path: Path, legacy: bool) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    path.write_bytes(buf.getvalue())
    return path


def _cli_safe(cli, *args):
    """``cli``, with an exception escaping ``main`` reported as the traceback it is."""
    try:
        return cli(*args)
    except Exception as exc:
        from conftest import CliResult

        return CliResult(1, "", f"Traceback (most recent call last):\n{type(exc).__name__}: {exc}")


def _evaluate(cli, path: Path):
    return _cli_safe(
        cli, "evaluate", "atari_pong_v0", "--policy", f"player=atari:{path}",
        "--episodes", "1", "--no-save",
    )  # fmt: skip


def _peak(fn) -> int:
    """Peak traced bytes while ``fn`` runs (its exception, if any, swallowed)."""
    tracemalloc.start()
    try:
        fn()
    except (UnsafePickleError, PolicySpecError):
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


MiB = 1 << 20

# ================================================================ gadgets: nothing runs


def _gadgets(canary: Path) -> dict[str, bytes]:
    touch = f"touch {canary}"
    opener = f"open({str(canary)!r}, 'w').close()"
    return {
        "os.system": G("os", "system") + T(P(touch)) + REDUCE,
        "posix.system": G("posix", "system") + T(P(touch)) + REDUCE,
        "builtins.eval": G("builtins", "eval") + T(P(opener)) + REDUCE,
        "__builtin__.eval (py2 name)": G("__builtin__", "eval") + T(P(opener)) + REDUCE,
        "builtins.exec": G("builtins", "exec") + T(P(opener)) + REDUCE,
        "subprocess.Popen NEWOBJ": G("subprocess", "Popen") + T(P(["touch", str(canary)])) + NEWOBJ,
        "STACK_GLOBAL os.system": SG("os", "system") + T(P(touch)) + REDUCE,
        "getattr(__import__('os'), 'system')(...)": (
            G("builtins", "getattr")
            + T(G("builtins", "__import__") + T(P("os")) + REDUCE, P("system"))
            + REDUCE
            + T(P(touch))
            + REDUCE
        ),
        "copyreg._reconstructor(os.system record)": (
            G("copyreg", "_reconstructor")
            + T(G("os", "system"), G("builtins", "object"), P(None))
            + REDUCE
        ),
        "BUILD with a __setstate__ in the state": (
            G("hostile_model", "Bag")
            + EMPTY_TUPLE
            + NEWOBJ
            + T(P(None), EMPTY_DICT + P("__setstate__") + G("os", "system") + SETITEM)
            + BUILD
        ),
        "BUILD twice on a record": (
            G("hostile_model", "Bag")
            + EMPTY_TUPLE
            + NEWOBJ
            + EMPTY_DICT
            + BUILD
            + EMPTY_DICT
            + BUILD
        ),
        "BUILD on a record class": G("hostile_model", "Bag") + EMPTY_DICT + BUILD,
        "REDUCE on a record": (
            G("hostile_model", "Bag") + EMPTY_TUPLE + NEWOBJ + T(P(touch)) + REDUCE
        ),
        "REDUCE on a storage token": G("torch", "FloatStorage") + T(P(4)) + REDUCE,
        "NEWOBJ on a storage token": G("torch", "FloatStorage") + EMPTY_TUPLE + NEWOBJ,
        "BUILD on a storage token": G("torch", "FloatStorage") + EMPTY_DICT + BUILD,
        "_rebuild_tensor_v2 on a record": rebuild(
            G("hostile_model", "Bag") + EMPTY_TUPLE + NEWOBJ, (2,)
        ),
        "_rebuild_parameter on a record": (
            G("torch._utils", "_rebuild_parameter")
            + T(G("hostile_model", "Bag") + EMPTY_TUPLE + NEWOBJ, P(False), EMPTY_DICT)
            + REDUCE
        ),
        "_rebuild_tensor_v3 (not in the table)": (
            G("torch._utils", "_rebuild_tensor_v3") + T(G("os", "system"), P(touch)) + REDUCE
        ),
        "a record named like _rebuild_tensor_v2, via NEWOBJ": (
            G("torch._utils", "_rebuild_tensor_v2") + T(P(touch)) + NEWOBJ
        ),
        "Array of a record class": (
            G("numpy.core.multiarray", "_reconstruct")
            + T(G("os", "system"), T(P(0)), P(b"b"))
            + REDUCE
        ),
    }


GADGET_NAMES = list(_gadgets(Path("x")))


@pytest.mark.parametrize("name", GADGET_NAMES)
def test_gadgets_in_records_mode_run_nothing(tmp_path, name):
    canary = tmp_path / "pwned"
    data = whole(_gadgets(canary)[name])
    for records in (True, False):
        try:
            _plain(inert_loads(data, records=records))
        except UnsafePickleError as exc:
            assert "\n" not in str(exc)
    assert not canary.exists()


@pytest.mark.parametrize(
    "opcode",
    [
        b"(cos\nsystem\nS'true'\no.",  # OBJ
        b"(S'true'\nios\nsystem\n.",  # INST
        b"\x80\x04cos\nsystem\n(S'true'\nt}\x92.",  # NEWOBJ_EX
        b"\x80\x02\x82\x01.",  # EXT1
        b"Pfoo\n.",  # PERSID (text)
        b"\x80\x02X\x01\x00\x00\x00aQ.",  # BINPERSID with no resolver
        b"\x80\x05\x97.",  # NEXT_BUFFER
    ],
)
def test_opcodes_outside_the_scan_stay_refused_in_records_mode(opcode):
    with pytest.raises(UnsafePickleError):
        inert_loads(opcode, records=True)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reduce_gadgets_inside_a_module_file_run_nothing(tmp_path, legacy):
    canary = tmp_path / "pwned"
    net = Net()
    net.a = Gadget(os.system, f"touch {canary}")
    net.b = Gadget(eval, f"open({str(canary)!r}, 'w')")
    net.c = Gadget(exec, f"open({str(canary)!r}, 'w')")
    net.d = Gadget(getattr, Gadget(__import__, "os"), "system")
    net.bag = Bag()
    net.bag.__dict__["__class__"] = Gadget(os.system, f"touch {canary}")
    path = _save([net, None], tmp_path / "evil.pt", legacy)
    arrays = read_published(path)
    assert set(arrays) >= {"conv1.weight", "pi.weight", "v.bias"}
    assert not canary.exists()


def test_records_mode_does_not_leak_into_the_strict_loaders(tmp_path):
    """sb3 and zoo files go through the strict unpickler: an unknown global is still
    refused after (and whatever) a records-mode read did."""
    from agents.zoo import UnsafeZooFileError, read_zoo_array

    canary = tmp_path / "pwned"
    _save([Net(), None], tmp_path / "ok.pt", legacy=False)
    read_published(tmp_path / "ok.pt")
    gadget = whole(G("os", "system") + T(P(f"touch {canary}")) + REDUCE)
    record = whole(G("hostile_model", "Bag") + EMPTY_TUPLE + NEWOBJ)
    for data in (gadget, record):
        with pytest.raises(UnsafePickleError, match="not in the table"):
            inert_loads(data)
        (tmp_path / "zoo.pkl").write_bytes(data)
        with pytest.raises(UnsafeZooFileError):
            read_zoo_array(tmp_path / "zoo.pkl")
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2), "m": Bag()}, buf)
    with pytest.raises(UnsafePickleError, match="not in the table"):
        read_torch_weights(buf.getvalue())
    with pytest.raises(UnsafePickleError, match="not in the table"):
        read_torch_file(buf.getvalue())
    assert not canary.exists()


def test_cycles_and_deep_nesting_of_records_are_refused_not_crashed():
    bag = G("hostile_model", "Bag")
    # a record whose state holds itself (through the memo)
    cycle = (
        bag + EMPTY_TUPLE + NEWOBJ + b"q\x01" + EMPTY_DICT + P("me") + b"h\x01" + SETITEM + BUILD
    )
    with pytest.raises(UnsafePickleError):
        inert_loads(whole(cycle), records=True)
    # a record whose args hold itself
    deep = 200_000
    nested = bag + b"q\x00" + b"h\x00" * (deep - 1) + b"N" + (TUPLE1 + NEWOBJ) * deep
    with pytest.raises(UnsafePickleError, match="deeper"):
        inert_loads(whole(nested), records=True)


# ================================================================ legacy persistent ids


def _storage_t(kind="FloatStorage", key="0", numel=4, view=None, module="torch", extra=()):
    return T(P("storage"), G(module, kind), P(key), P("cpu"), P(numel), *extra)


BAD_PIDS = {
    "module: a storage token": T(P("module"), G("torch", "FloatStorage"), P("m.py"), P("")),
    "module: a record, not its class": T(
        P("module"), G("hostile_model", "Bag") + EMPTY_TUPLE + NEWOBJ, P("m.py"), P("")
    ),
    "module: a stand-in class": T(P("module"), G("collections", "OrderedDict"), P("m"), P("")),
    "module: a stand-in function": T(
        P("module"), G("torch._utils", "_rebuild_tensor_v2"), P("m.py"), P("")
    ),
    "module: three fields": T(P("module"), G("hostile_model", "Bag"), P("m.py")),
    "storage: a record class for its type": _storage_t(module="torch.cuda", extra=(P(None),)),
    "storage: os.system for its type": _storage_t("system", module="os", extra=(P(None),)),
    "storage: negative size": _storage_t(numel=-1, extra=(P(None),)),
    "storage: float size": _storage_t(numel=4.0, extra=(P(None),)),
    "storage: size over the limit": _storage_t(numel=1 << 40, extra=(P(None),)),
    "storage: key not listed": _storage_t(key="9", extra=(P(None),)),
    "storage: key not a string": T(
        P("storage"), G("torch", "FloatStorage"), P(0), P("cpu"), P(4), P(None)
    ),
    "storage: a view": _storage_t(extra=(P(("0", 0, 4)),)),
    "storage: the zip format's five fields": _storage_t(),
    "storage: read as two types": None,  # below
}


def _pid_file(name: str) -> bytes:
    raw = raw_storage(4, np.float32([1, 2, 3, 4]).tobytes())
    if name == "valid":
        return legacy_file(
            EMPTY_LIST + rebuild(_storage_t(extra=(P(None),)) + BINPERSID, (4,)) + APPEND,
            ["0"],
            raw,
        )
    if name == "storage: read as two types":
        body = EMPTY_LIST + rebuild(_storage_t(extra=(P(None),)) + BINPERSID, (4,)) + APPEND
        body += rebuild(_storage_t("IntStorage", extra=(P(None),)) + BINPERSID, (4,)) + APPEND
        return legacy_file(body, ["0"], raw)
    pid = BAD_PIDS[name]
    if name.startswith("module"):
        return legacy_file(EMPTY_LIST + pid + BINPERSID + EMPTY_TUPLE + NEWOBJ + APPEND, [], b"")
    return legacy_file(EMPTY_LIST + rebuild(pid + BINPERSID, (4,)) + APPEND, ["0"], raw)


def test_a_valid_legacy_storage_reads():
    (tensor,) = read_legacy_torch_file(_pid_file("valid"), records=True)
    assert tensor.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("name", list(BAD_PIDS))
def test_legacy_persistent_ids_that_are_not_storages_or_record_classes(tmp_path, name):
    blob = _pid_file(name)
    with pytest.raises(UnsafePickleError, match="persistent id|storage|record|module") as info:
        read_legacy_torch_file(blob, records=True)
    assert "unexpected" not in str(info.value)
    (tmp_path / "f.pt").write_bytes(blob)
    with pytest.raises(PolicySpecError, match="not a readable PyTorch policy file"):
        read_published(tmp_path / "f.pt")


def test_a_record_class_as_a_module_pid_stays_a_record(tmp_path):
    canary = tmp_path / "pwned"
    pid = T(P("module"), G("os", "system"), P("os.py"), P("import os")) + BINPERSID
    body = EMPTY_LIST + pid + T(P(f"touch {canary}")) + NEWOBJ + APPEND
    body += pid + T(P(f"touch {canary}")) + REDUCE + APPEND
    out = read_legacy_torch_file(legacy_file(body, []), records=True)
    assert [r.cls for r in out] == [Global("os", "system")] * 2
    assert not canary.exists()


def _storages_file(numels: list[int], datas: list[bytes], declared: int = 4) -> bytes:
    keys = [str(i) for i in range(len(numels))]
    body = EMPTY_LIST
    for key in keys:
        body += rebuild(storage_pid("FloatStorage", key, declared), (declared,)) + APPEND
    raw = b"".join(raw_storage(n, d) for n, d in zip(numels, datas, strict=True))
    return legacy_file(body, keys, raw)


@pytest.mark.parametrize(
    ("numels", "datas", "what"),
    [
        ([-1], [bytes(16)], "fewer bytes"),
        ([1 << 62], [bytes(16)], "fewer bytes"),
        ([4], [bytes(15)], "fewer bytes"),  # truncated
        ([4, 4], [bytes(16), bytes(8)], "fewer bytes"),  # the second truncated
        ([4], [b""], "fewer bytes"),
        ([2], [bytes(8)], "tensor"),  # the storage is smaller than the tensor on it
    ],
)
def test_legacy_raw_storages_that_lie_are_one_line(tmp_path, numels, datas, what):
    path = tmp_path / "f.pt"
    path.write_bytes(_storages_file(numels, datas))
    with pytest.raises(PolicySpecError, match=what) as info:
        read_published(path)
    assert "\n" not in str(info.value)


def test_legacy_storages_overlapping_the_next_read_as_their_own_bytes():
    # storage "0" claims 2 floats, so the 8 bytes after them are storage "1"'s count
    blob = _storages_file([2, 2], [np.float32([1, 2]).tobytes(), np.float32([3, 4]).tobytes()], 2)
    a, b = read_legacy_torch_file(blob, records=True)
    assert a.tolist() == [1, 2] and b.tolist() == [3, 4]


# ================================================================ resource exhaustion


def test_legacy_declared_storage_size_is_not_allocated():
    """Was a bug: the legacy reader's first pass (``storage_of(pid, None)`` in
    ``torchfile.read_legacy_torch_file``) allocates ``bytes(numel * itemsize)`` for the
    size a persistent id *declares*, up to ``max_bytes`` (1 GiB), and the tensor built
    on it is then copied: a file of a few hundred bytes holding no storage at all makes
    the reader allocate twice what it claims (2 GiB at the cap; every further tensor on
    that storage another GiB) before it finds the bytes missing."""
    n = 1 << 22  # 16 MiB of float32 claimed; the file holds none of it
    body = EMPTY_DICT + P("w") + rebuild(storage_pid("FloatStorage", "0", n), (n,)) + SETITEM
    blob = legacy_file(body, ["0"])
    assert len(blob) < 1024
    peak = _peak(lambda: read_legacy_torch_file(blob, records=True))
    assert peak < 4 * MiB, f"{len(blob)}-byte file made the reader allocate {peak / MiB:.0f} MiB"


def test_views_of_one_storage_do_not_multiply_memory():
    """Was a bug: ``standins.rebuild_tensor`` copies every view of a storage, so K tensors
    over one storage hold K times its bytes; ``max_bytes`` bounds only the storages.
    A deflated zip of ~1 KiB with a 1 GiB storage of zeros and 100 views of it makes
    ``read_published`` (default 1 GiB limit) allocate 100 GiB. Here: a 1 MiB storage
    under a 2 MiB limit, 32 views."""
    s = 1 << 18  # floats: 1 MiB
    first = storage_pid("FloatStorage", "0", s, legacy=False) + b"q\x01"
    body = EMPTY_LIST + MARK + rebuild(first, (s,))
    body += b"".join(rebuild(b"h\x01", (s,)) for _ in range(31)) + APPENDS
    blob = zip_file(body, {"0": bytes(4 * s)})
    assert len(blob) < 8 * 1024
    peak = _peak(lambda: read_torch_file(blob, max_bytes=2 * MiB, records=True))
    assert peak < 8 * MiB, f"a file under a 2 MiB limit made the reader hold {peak / MiB:.0f} MiB"


def test_many_globals_in_records_mode_do_not_make_a_class_each():
    """Was a bug: in records mode ``_InertUnpickler.find_class`` calls
    ``standins.instance_class``, which makes a new ``type`` on *every* GLOBAL (no
    cache, no count): about 1.6 KB and 40 us each, so a 5 MB pickle of a million
    GLOBALs (under ``MAX_OPCODES``) costs ~1.6 GB and ~40 s (twice for a legacy file,
    whose main pickle is read twice). Here 25,000 GLOBALs of distinct names."""
    n = 25_000
    body = EMPTY_LIST + MARK + b"".join(G("m", f"C{i}") for i in range(n)) + APPENDS
    data = whole(body)
    peak = _peak(lambda: inert_loads(data, records=True))
    assert peak < 12 * MiB, f"{len(data)} bytes of GLOBALs took {peak / MiB:.0f} MiB"


def _keys_pickle(n: int) -> bytes:
    return whole(EMPTY_LIST + MARK + P("a") + b"q\x00" + b"h\x00" * (n - 1) + P("0") + APPENDS)


def _refs_file(nkeys: int, nrefs: int) -> bytes:
    pid = storage_pid("FloatStorage", "0", 0)[:-1]  # the pid tuple, memoized, resolved again
    body = EMPTY_LIST + MARK + pid + b"q\x05" + BINPERSID + (b"h\x05" + BINPERSID) * (nrefs - 1)
    return legacy_file(body + APPENDS, [], keys_pickle=_keys_pickle(nkeys))


def test_legacy_storage_lookup_is_not_quadratic():
    """Was a bug: ``storage_of`` checks ``key not in keys`` on the *list* of storage keys the
    file gives, once per persistent id: a file with a million keys and 300,000 memoized
    references does 3e11 string comparisons (hours) before anything is refused. Same
    100,000 keys, 1,000 references against 10: the time should not grow with both."""

    def run(nrefs: int) -> float:
        blob = _refs_file(100_000, nrefs)
        t0 = time.perf_counter()
        with pytest.raises(UnsafePickleError):
            read_legacy_torch_file(blob, records=True)
        return time.perf_counter() - t0

    few = run(10)
    many = run(1000)
    assert many < 3 * few + 0.3, f"10 references: {few:.2f} s, 1,000: {many:.2f} s"


def test_legacy_pickle_boundaries_respect_the_opcode_limit(monkeypatch):
    """Was a bug: ``torchfile._pickle_end`` walks ``pickletools.genops`` to find each pickle's
    STOP with no opcode limit, before ``scan`` applies ``MAX_OPCODES``: a 256 MB legacy
    file (``MAX_FILE_BYTES``) of one-byte opcodes costs ~90 s of parsing to refuse."""
    from agents.safe_pickle import MAX_OPCODES

    seen = [0]
    real = pickletools.genops

    def counting(pickle_data):
        for item in real(pickle_data):
            seen[0] += 1
            yield item

    monkeypatch.setattr(pickletools, "genops", counting)
    blob = PROTO + b"N" * (3 * MAX_OPCODES) + STOP
    with pytest.raises(UnsafePickleError):
        read_legacy_torch_file(blob, records=True)
    assert seen[0] <= MAX_OPCODES + 16, f"{seen[0]:,} opcodes parsed"


def test_an_oversized_file_is_not_read_whole(tmp_path, monkeypatch):
    """Was a bug: ``read_published`` does ``path.read_bytes()`` and only then compares the
    length with ``MAX_FILE_BYTES``: a 50 GB sparse file is read into memory whole."""
    import agents.atari_published as published

    monkeypatch.setattr(published, "MAX_FILE_BYTES", 1 * MiB)
    path = tmp_path / "huge.pt"
    with open(path, "wb") as fh:
        fh.truncate(24 * MiB)  # sparse: no disk used
    peak = _peak(lambda: read_published(path))
    with pytest.raises(PolicySpecError, match="over"):
        read_published(path)
    assert peak < 4 * MiB, f"read {peak / MiB:.0f} MiB of a file over a 1 MiB limit"


# ================================================================ read_published, one line


def _bag_with(**state) -> Bag:
    bag = Bag()
    bag.__dict__.update(state)
    return bag


def _corrupt_zips() -> dict[str, bytes]:
    good = zip_file(EMPTY_DICT, {}, compress=zipfile.ZIP_STORED)
    enc = bytearray(good)
    enc[enc.find(b"PK\x03\x04") + 6] |= 1  # "encrypted" in the local and central headers
    enc[enc.find(b"PK\x01\x02") + 8] |= 1
    method = bytearray(good)
    i, j = method.find(b"PK\x03\x04"), method.find(b"PK\x01\x02")
    method[i + 8 : i + 10] = method[j + 10 : j + 12] = struct.pack("<H", 99)
    deflated = bytearray(zip_file(EMPTY_DICT, {}, compress=zipfile.ZIP_DEFLATED))
    k = deflated.find(b"archive/byteorder") + len("archive/byteorder")
    deflated[k : k + 3] = b"\xff\xff\xff"  # the byteorder member's deflate stream
    d = bytearray(zip_file(EMPTY_DICT, {}, compress=zipfile.ZIP_DEFLATED))
    k = d.find(b"archive/data.pkl") + len("archive/data.pkl")
    d[k : k + 3] = b"\xff\xff\xff"  # data.pkl's deflate stream
    return {
        "encrypted data.pkl": bytes(enc),
        "unknown compression method": bytes(method),
        "corrupt deflate in byteorder": bytes(deflated),
        "corrupt deflate in data.pkl": bytes(d),
    }


@pytest.mark.parametrize("name", list(_corrupt_zips()))
def test_corrupt_or_encrypted_zip_members_are_one_line(tmp_path, name):
    """Was a bug: ``torchfile.read_torch_file`` reads ``byteorder`` outside any ``try`` and
    ``data.pkl`` under ``except (BadZipFile, OSError, EOFError)``: an encrypted member
    (``RuntimeError``), an unknown compression method (``NotImplementedError``) or a
    broken deflate stream (``zlib.error``) escapes ``read_published`` as a traceback."""
    path = tmp_path / "bad.pt"
    path.write_bytes(_corrupt_zips()[name])
    with pytest.raises(PolicySpecError) as info:
        read_published(path)
    assert "\n" not in str(info.value)


def _header_files() -> dict[str, bytes]:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    proto = pickle.dumps(1001, protocol=2)
    info = pickle.dumps(INFO, protocol=2)
    rest = whole(EMPTY_DICT) + pickle.dumps([], protocol=2)
    array = pickle.dumps(np.array([1001, 1001]), protocol=2)
    return {"magic": array + proto + info + rest, "protocol": magic + array + info + rest}


@pytest.mark.parametrize("where", list(_header_files()))
def test_a_legacy_header_that_is_an_array_is_one_line(tmp_path, where):
    """Was a bug: ``read_legacy_torch_file`` tests ``header[0] != LEGACY_MAGIC or header[1] !=
    LEGACY_PROTOCOL`` on whatever the header pickles hold: a numpy array there makes
    the comparison an array and ``or`` raises ``ValueError: The truth value of an array
    ... is ambiguous`` out of ``read_published`` (a traceback in the CLI)."""
    path = tmp_path / "h.pt"
    path.write_bytes(_header_files()[where])
    with pytest.raises(PolicySpecError, match="not a readable PyTorch policy file"):
        read_published(path)


@pytest.mark.parametrize("where", ["_parameters", "_buffers", "_modules"])
def test_a_tensor_where_a_modules_dict_belongs_is_one_line(tmp_path, where):
    """Was a bug: ``atari_published._flatten`` does ``state.get(group) or {}``: a tensor of
    more than one element there raises ``RuntimeError: Boolean value of Tensor with
    more than one value is ambiguous`` (a traceback in the CLI)."""
    path = _save([_bag_with(**{where: torch.ones(3)}), None], tmp_path / "t.pt", legacy=False)
    with pytest.raises(PolicySpecError):
        read_published(path)


def test_tokens_and_classes_where_modules_belong_and_deep_modules_are_one_line(tmp_path):
    token, cls = G("torch", "FloatStorage"), G("hostile_model", "Bag")
    state = EMPTY_DICT + MARK
    state += P("_modules") + EMPTY_DICT + MARK + P("a") + token + P("b") + cls + SETITEMS
    state += P("_parameters") + EMPTY_DICT + P("w") + token + SETITEM
    state += SETITEMS
    record = cls + EMPTY_TUPLE + NEWOBJ + state + BUILD
    bodies = {
        "record": EMPTY_LIST + record + APPEND + P(None) + APPEND,
        "token": token,
        "class": EMPTY_LIST + cls + APPEND,
        "token first": EMPTY_LIST + token + APPEND + P(None) + APPEND,
    }
    for what, body in bodies.items():
        path = tmp_path / f"{what}.pt"
        path.write_bytes(zip_file(body, {}))
        with pytest.raises(PolicySpecError) as info:
            read_published(path)
        assert "\n" not in str(info.value), what
    deep: nn.Module = Net()
    for _ in range(18):
        deep = nn.Sequential(deep)
    for legacy in (False, True):
        path = _save([deep, None], tmp_path / "deep.pt", legacy)
        with pytest.raises(PolicySpecError, match="deeper"):
            read_published(path)


def test_poisoned_weights_are_refused_on_loading(tmp_path):
    """Was a bug: neither ``read_published`` nor ``atari_cnn.build_network`` checks the
    weights are finite (sb3 and zoo files do): a file whose action head is NaN loads,
    and ``arena evaluate`` then dies in ``torch.distributions`` with a ``ValueError``
    traceback, exit status 1."""
    net = Net()
    with torch.no_grad():
        net.actor.weight.fill_(float("nan"))
    path = _save([net, None], tmp_path / "nan.pt", legacy=True)
    from gymnasium import spaces

    obs = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with pytest.raises(PolicySpecError, match="NaN|finite"):
        specs.resolve(f"atari:{path}", obs, spaces.Discrete(6))


def test_a_normalisation_of_numpy_arrays_is_named(tmp_path):
    """Was a bug (minor): in records mode ``numpy.ndarray`` becomes a record class, so
    ``standins.Array`` (``cls != NDARRAY``) refuses every pickled numpy array: the
    ikostrikov ``[policy, ob_rms]`` file of a normalising run is refused as "not a
    readable PyTorch policy file: _reconstruct may only build a plain numpy.ndarray"
    instead of naming the normalisation, and no module holding an array reads."""
    path = _save([Net(), Normalisation()], tmp_path / "norm.pt", legacy=False)
    with pytest.raises(PolicySpecError, match="observation normalisation"):
        read_published(path)


def test_the_cli_says_one_line_for_hostile_files(tmp_path, cli):
    """Each must be one line, exit 2. Was a bug for the tensor-in-state, encrypted and NaN
    files (a traceback, exit status 1)."""
    files = {}
    files["tensor"] = _save([_bag_with(_parameters=torch.ones(3)), None], tmp_path / "a.pt", False)
    files["encrypted"] = tmp_path / "b.pt"
    files["encrypted"].write_bytes(_corrupt_zips()["encrypted data.pkl"])
    nan = Net()
    with torch.no_grad():
        nan.actor.weight.fill_(float("nan"))
    files["nan"] = _save([nan, None], tmp_path / "c.pt", legacy=True)
    files["legacy-truncated"] = tmp_path / "d.pt"
    files["legacy-truncated"].write_bytes(_storages_file([4], [bytes(15)]))
    failures = []
    for what, path in files.items():
        result = _evaluate(cli, path)
        try:
            assert_one_line_error(result)
        except AssertionError:
            failures.append(f"{what}: exit {result.code}: {result.err.strip()[-160:]}")
    assert not failures, "\n".join(failures)


# ================================================================ hostile download servers

BODY = bytes(range(256)) * 400  # 102,400 bytes


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    mode = "plain"
    location = ""
    stop: threading.Event
    ranges_seen: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range") or ""
        srv.ranges_seen.append(rng)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(srv, rng)

    def _answer(self, srv, rng):
        if srv.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", srv.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        if srv.mode == "416" and rng and start >= len(BODY):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(BODY)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if srv.mode == "endless":
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            while not srv.stop.is_set():
                self.wfile.write(BODY)
            return
        if srv.mode == "huge-length":
            self.send_response(200)
            self.send_header("Content-Length", str(10**15))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.close_connection = True
            return
        if srv.mode == "drip":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            for i in range(len(BODY)):
                if srv.stop.wait(0.05):
                    break
                self.wfile.write(BODY[i : i + 1])
                self.wfile.flush()
            self.close_connection = True
            return
        if rng:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        body = BODY[start:] if srv.mode != "wrong" else b"x" * len(BODY)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _start_server() -> _Server:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.stop, srv.ranges_seen = threading.Event(), []
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = _start_server()
    monkeypatch.setenv("ARENA_FETCH_MIRROR", f"http://127.0.0.1:{srv.server_address[1]}")
    monkeypatch.setenv("ARENA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ARENA_ZOO_DIR", raising=False)
    monkeypatch.delenv("ARENA_ATARI_DIR", raising=False)
    yield srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


def _victim(monkeypatch, name="toy/agent.pkl", kind="zoo"):
    from arena import victims

    v = victims.Victim(
        name=name, kind=kind, repo="someone/zoo", commit="c0ffee", path="agent-zoo/x.pkl",
        sha256=hashlib.sha256(BODY).hexdigest(), size=len(BODY), licence="MIT", what="test",
    )  # fmt: skip
    monkeypatch.setitem(victims.CATALOG, name, v)
    return v


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_redirect_to_a_local_file_is_refused(cli, server, monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(BODY)  # even the right bytes must not be taken from the disk
    server.mode, server.location = "redirect", f"file://{secret}"
    v = _victim(monkeypatch)
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad, "cannot download")
    assert not v.target().exists() and not list(v.target().parent.glob("*.part"))


def test_a_redirect_to_another_host_keeps_only_the_published_bytes(cli, server, monkeypatch):
    other = _start_server()
    try:
        other.mode = "wrong"
        server.mode = "redirect"
        server.location = f"http://localhost:{other.server_address[1]}/elsewhere"
        v = _victim(monkeypatch)
        bad = _cli_safe(cli, "fetch", v.name)
        assert_one_line_error(bad, "is not the published", "nothing was kept")
        assert not v.target().exists() and not list(v.target().parent.glob("*.part"))
    finally:
        other.shutdown()
        other.server_close()


def test_an_endless_body_keeps_nothing(cli, server, monkeypatch):
    server.mode = "endless"
    v = _victim(monkeypatch)
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad, "more than the published")
    assert not v.target().exists() and not list(v.target().parent.glob("*.part"))


def test_a_huge_content_length_is_an_interrupted_download(cli, server, monkeypatch):
    server.mode = "huge-length"
    v = _victim(monkeypatch)
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad)
    assert not v.target().exists()
    part = v.target().with_name("agent.pkl.part")
    assert not part.exists() or part.stat().st_size <= 1000


def test_a_part_that_is_a_folder_is_one_line(cli, server, monkeypatch):
    v = _victim(monkeypatch)
    part = v.target().with_name("agent.pkl.part")
    part.mkdir(parents=True)
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad)
    assert part.is_dir() and not v.target().exists()


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_part_that_is_a_link_writes_nothing_outside(cli, server, monkeypatch, tmp_path, dangling):
    """Was a bug: ``victims.fetch`` follows a ``.part`` symlink: ``part.is_file()`` and
    ``part.stat()`` read through it, ``open(part, "ab"|"wb")`` appends to (or truncates,
    or creates) the file it points at, wherever that is; the sha256 check then only
    unlinks the link. A link to ``~/.bashrc`` gets the download appended to it."""
    v = _victim(monkeypatch)
    outside = tmp_path / "precious"
    if not dangling:
        outside.write_bytes(b"precious data")
    part = v.target().with_name("agent.pkl.part")
    part.parent.mkdir(parents=True)
    part.symlink_to(outside)
    _cli_safe(cli, "fetch", v.name)
    if dangling:
        assert not outside.exists(), "the fetch created a file through a dangling link"
    else:
        assert outside.read_bytes() == b"precious data", "the fetch wrote through the link"


def test_a_catalog_name_climbing_out_of_the_cache_writes_nothing_outside(
    cli, server, monkeypatch, tmp_path
):
    """Was a bug (defence in depth): ``Victim.target`` is ``HOME/KIND/NAME`` unchecked, so a
    catalog entry named ``../../x`` (or an absolute path) is written outside
    ``ARENA_HOME``; ``agents.home.cached`` checks containment on reading, fetch does
    not on writing."""
    v = _victim(monkeypatch, name="../../escaped.pkl")
    before = _files_under(tmp_path)
    _cli_safe(cli, "fetch", v.name)
    new = _files_under(tmp_path) - before
    outside = [p for p in new if not p.startswith("home")]
    assert not outside, f"fetch wrote {outside} outside ARENA_HOME"


def test_a_home_that_is_a_file_is_one_line(cli, server, monkeypatch, tmp_path):
    """Was a bug: ``victims.fetch`` calls ``target.parent.mkdir(...)`` outside its ``try``: an
    ``ARENA_HOME`` (or ``--dir``) that is a file raises ``NotADirectoryError`` out of
    the CLI, a traceback. (``arena victims`` copes.)"""
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("ARENA_HOME", str(home))
    v = _victim(monkeypatch)
    listed = _cli_safe(cli, "victims", "--json")
    assert listed.code == 0, listed.err
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad)
    assert home.read_text() == "not a folder"


def test_a_target_that_is_a_folder_is_one_line(cli, server, monkeypatch):
    """Was a bug: with the right bytes downloaded, ``os.replace(part, target)`` (outside any
    ``try``) raises ``IsADirectoryError`` when the target is a folder: a traceback."""
    v = _victim(monkeypatch)
    v.target().mkdir(parents=True)
    bad = _cli_safe(cli, "fetch", v.name)
    assert_one_line_error(bad)


def test_a_dripping_server_is_given_up_on(server, monkeypatch, tmp_path):
    """Was a bug: ``fetch`` has a timeout per socket read only, no deadline and no minimum
    rate: a server that sends one byte every 29 s keeps ``arena fetch`` for a month
    (3.4 MB). With a 0.25 s timeout and a byte every 0.05 s, it must give up in 6 s."""
    from arena import victims

    server.mode = "drip"
    v = _victim(monkeypatch)
    errors: list[BaseException] = []

    def run():
        try:
            victims.fetch(v, progress=False, timeout=0.25)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(6.0)
    gave_up = not thread.is_alive()
    server.stop.set()  # release the fetch either way
    thread.join(10.0)
    assert gave_up, "fetch was still reading a byte every 0.05 s after 6 s"
    assert errors and isinstance(errors[0], victims.FetchError)


def test_a_complete_part_is_finished_where_the_server_says_416(cli, server, monkeypatch):
    """Was a bug (robustness): a ``.part`` that already holds every byte (the process stopped
    before the rename) is resumed with ``Range: bytes=SIZE-``, which real servers
    (raw.githubusercontent.com included) answer 416: every later ``arena fetch`` fails
    the same way until the user deletes the file by hand."""
    server.mode = "416"
    v = _victim(monkeypatch)
    part = v.target().with_name("agent.pkl.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(BODY)
    done = _cli_safe(cli, "fetch", v.name)
    assert done.code == 0, done.err
    assert v.target().read_bytes() == BODY
