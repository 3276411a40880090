"""The attacker's suite: crafted policy files that try to run code, through every door.

Each payload, if it ever ran, would create a marker file (through ``os.system``,
``exec`` or ``open``). Every test asserts the load was refused with one line and that
the marker never appeared. The families are the known unpickler bypasses: plain
globals at every protocol, dotted names, names reached through modules the table
knows, ``__builtins__``/``__globals__``/``__code__``/``__class__`` chains, REDUCE on
the stand-ins with hostile arguments, BUILD/``__setstate__`` on every object the
machine can build, ``copyreg`` reconstructors, extension codes, persistent ids,
memo bombs, and ``torch.load`` payloads inside ``policy.pth``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ASSETS, assert_one_line_error
from gymnasium import spaces

from agents import specs
from agents.safe_pickle import UnsafePickleError, inert_loads, read_torch_weights

OBS = spaces.Box(-5.0, 5.0, (9,), np.float32)
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)
# the seat of the shipped you-shall-not-pass blocker
YSNP_OBS = spaces.Box(-np.inf, np.inf, (380,), np.float64)
YSNP_ACT = spaces.Box(-0.4, 0.4, (17,), np.float32)


def _s(text: str) -> bytes:
    """A SHORT_BINUNICODE opcode."""
    raw = text.encode()
    assert len(raw) < 256
    return b"\x8c" + bytes([len(raw)]) + raw


def _stack_global(module: str, name: str) -> bytes:
    return _s(module) + _s(name) + b"\x93"


def _call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` via MARK ... TUPLE REDUCE."""
    return func + b"(" + b"".join(args) + b"tR"


def _proto4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


class _Reduce:
    """``pickle.dumps`` of this calls ``func(*args)`` on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: Path) -> dict[str, bytes]:
    """Every crafted pickle, by name. Each would create ``marker`` if it ran."""
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    out: dict[str, bytes] = {}
    for proto in range(6):
        out[f"os.system p{proto}"] = pickle.dumps(_Reduce(os.system, cmd), protocol=proto)
        out[f"exec p{proto}"] = pickle.dumps(_Reduce(exec, code), protocol=proto)
        out[f"eval p{proto}"] = pickle.dumps(_Reduce(eval, code), protocol=proto)
    out["subprocess"] = _proto4(
        _call(_stack_global("subprocess", "check_call"), _s("touch"), _s(str(marker)) + b"\x85")
    )
    # dotted names through modules that an allow-list knows
    for module, name in [
        ("agents.networks", "torch.os.system"),
        ("agents.networks", "nn.modules.module.torch.os.system"),
        ("numpy.dtypes", "np.core.os.system"),
        ("numpy", "ctypeslib.os.system"),
        ("builtins", "getattr.__self__.exec"),
        ("agents.networks", "SmallCNN.__init__.__globals__.__builtins__.exec"),
        ("gymnasium.spaces.box", "Box.__init__.__globals__.os.system"),
        ("collections", "OrderedDict.__class__.__base__.__subclasses__"),
        ("stable_baselines3.common.policies", "ActorCriticPolicy.__init__.__code__"),
        ("torch._utils", "_rebuild_tensor_v2.__globals__.__builtins__.eval"),
        ("numpy._core.numeric", "_frombuffer.__globals__.__builtins__.exec"),
    ]:
        out[f"dotted {module}:{name}"] = _proto4(_call(_stack_global(module, name), _s(code)))
    # wildcard-style names (module attributes that are not in the exact table)
    for module, name in [
        ("agents.networks", "torch"),
        ("agents.networks", "nn"),
        ("numpy.dtypes", "__builtins__"),
        ("numpy", "load"),
        ("torch", "load"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("os", "system"),
        ("posix", "system"),
        ("nt", "system"),
        ("runpy", "run_path"),
        ("pickle", "loads"),
        ("torch.serialization", "load"),
        ("numpy.core.multiarray", "__builtins__"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("functools", "partial"),
        ("operator", "attrgetter"),
        ("types", "FunctionType"),
        ("code", "interact"),
    ]:
        out[f"name {module}:{name}"] = _proto4(_call(_stack_global(module, name), _s(code)))
    # protocol-0 GLOBAL with dotted and odd names
    for text in [
        b"cos\nsystem\n",
        b"cagents.networks\ntorch.os.system\n",
        b"cbuiltins\ngetattr\n",
        b"c__builtin__\neval\n",
        b"cnumpy\n__builtins__\n",
        b"c../../os\nsystem\n",
        b"cos system\nx\n",
    ]:
        out[f"global {text!r}"] = text + b"(" + b"V" + code.encode() + b"\ntR."
    # INST / OBJ (old-style instantiation) and extension codes
    out["INST os.system"] = b"(V" + cmd.encode() + b"\nios\nsystem\n."
    out["OBJ os.system"] = b"\x80\x02(cos\nsystem\nV" + cmd.encode() + b"\no."
    import copyreg

    copyreg.add_extension("os", "system", 0x5151)
    try:
        out["EXT os.system"] = pickle.dumps(_Reduce(os.system, cmd), protocol=2)
    finally:
        copyreg.remove_extension("os", "system", 0x5151)
    out["EXT1 raw"] = b"\x80\x02\x82\x01(V" + cmd.encode() + b"\ntR."
    out["PERSID"] = b"P" + cmd.encode() + b"\n."
    out["BINPERSID"] = _proto4(_s(cmd) + b"Q")
    # REDUCE on the stand-ins with hostile arguments
    ndarray = _stack_global("numpy", "ndarray")
    dtype_o = _call(_stack_global("numpy", "dtype"), _s("O"), b"\x89\x88")
    out["object dtype"] = _proto4(dtype_o)
    out["_reconstruct(os.system)"] = _proto4(
        _call(
            _stack_global("numpy.core.multiarray", "_reconstruct"),
            _stack_global("os", "system"),
            b"K\x00\x85",
            b"C\x01b",
        )
    )
    out["_reconstruct object array"] = _proto4(
        _call(
            _stack_global("numpy._core.multiarray", "_reconstruct"),
            ndarray,
            b"K\x00\x85",
            b"C\x01b",
        )
        + b"(K\x01K\x01\x85"
        + dtype_o
        + b"\x89]"
        + _s(code)
        + b"atb"
    )
    out["_frombuffer object dtype"] = _proto4(
        _call(
            _stack_global("numpy._core.numeric", "_frombuffer"),
            b"C\x08" + b"\x00" * 8,
            dtype_o,
            b"K\x01\x85",
            _s("C"),
        )
    )
    out["OrderedDict(items with code)"] = _proto4(
        _call(_stack_global("collections", "OrderedDict"), _stack_global("os", "system"))
    )
    out["Box(args)"] = _proto4(_call(_stack_global("gymnasium.spaces.box", "Box"), _s(code)))
    out["call a policy class token"] = _proto4(
        _call(_stack_global("stable_baselines3.common.policies", "ActorCriticPolicy"), _s(code))
    )
    out["NEWOBJ on a token"] = _proto4(
        _stack_global("torch.nn.modules.activation", "ReLU") + b")\x81"
    )
    # BUILD / __setstate__ on everything the machine can build
    out["BUILD a token's __dict__"] = _proto4(
        _stack_global("torch.nn.modules.activation", "ReLU")
        + b"}"
        + _s("module")
        + _s("os")
        + b"s"
        + b"b"
    )
    out["BUILD slots on a token"] = _proto4(
        _stack_global("torch.nn.modules.activation", "ReLU")
        + b"N}"
        + _s("name")
        + _s("system")
        + b"s\x86b"
    )
    out["BUILD a Box with a reducer"] = _proto4(
        _stack_global("gymnasium.spaces.box", "Box")
        + b")\x81}"
        + _s("__reduce__")
        + _stack_global("os", "system")
        + b"sb"
    )
    out["BUILD a state dict"] = _proto4(
        _call(_stack_global("collections", "OrderedDict"))
        + b"N}"
        + _s("__class__")
        + b"N"
        + b"s\x86b"
    )
    out["BUILD twice"] = _proto4(
        _call(_stack_global("numpy", "dtype"), _s("f4"), b"\x89\x88")
        + b"(K\x03"
        + _s("<")
        + b"tb(K\x03"
        + _s(">")
        + b"tb"
    )
    out["copyreg._reconstructor(os.system)"] = _proto4(
        _call(
            _stack_global("copyreg", "_reconstructor"),
            _stack_global("os", "system"),
            _stack_global("builtins", "object"),
            _s(cmd),
        )
    )
    out["copyreg._reconstructor(token)"] = _proto4(
        _call(
            _stack_global("copyreg", "_reconstructor"),
            _stack_global("torch.nn.modules.activation", "ReLU"),
            _stack_global("builtins", "object"),
            b"N",
        )
    )
    out["_codecs.encode(other codec)"] = _proto4(
        _call(_stack_global("_codecs", "encode"), _s(code), _s("rot13"))
    )
    # resource attacks
    out["memo bomb"] = b"\x80\x04N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."
    out["deep nesting"] = b"\x80\x04" + b"]" * 5000 + b"a" * 4999 + b"."
    out["huge bytes claim"] = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"."
    out["truncated"] = pickle.dumps(_Reduce(os.system, cmd), protocol=4)[:20]
    out["empty"] = b""
    return out


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _assert_refused(call, marker: Path, error=(UnsafePickleError, ValueError)) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert "\n" not in message.strip(), message
    assert not marker.exists(), "a payload ran"


def test_every_payload_is_refused_by_the_unpickler(marker):
    for name, data in payloads(marker).items():
        try:
            inert_loads(data)
        except UnsafePickleError as exc:
            assert "\n" not in str(exc), (name, str(exc))
        else:
            pytest.fail(f"payload {name!r} loaded")
        assert not marker.exists(), f"payload {name!r} ran"


def test_honest_pickles_still_load_at_every_protocol():
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    for proto in range(6):
        for obj in (
            arr,
            np.asfortranarray(arr.astype(np.float32)),
            OBS,
            ACT,
            spaces.Discrete(3),
            spaces.MultiDiscrete([2, 3]),
            spaces.Dict({"a": spaces.Discrete(2)}),
            {"net_arch": [64, 64], "ortho_init": False},
        ):
            got = inert_loads(pickle.dumps(obj, protocol=proto))
            assert np.array_equal(got, obj) if isinstance(obj, np.ndarray) else got == obj


def _sb3_with(
    src: Path,
    dst: Path,
    *,
    key: str | None = None,
    blob: bytes | None = None,
    pth: bytes | None = None,
    data_json: bytes | None = None,
) -> Path:
    """A copy of the SB3 file ``src`` with one entry replaced."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "data":
                if data_json is not None:
                    content = data_json
                elif key is not None:
                    data = json.loads(content)
                    entry = data.get(key)
                    entry = entry if isinstance(entry, dict) else {}
                    entry[":serialized:"] = base64.b64encode(blob or b"").decode()
                    data[key] = entry
                    content = json.dumps(data).encode()
            if item.filename == "policy.pth" and pth is not None:
                content = pth
            zout.writestr(item, content)
    return dst


def _pth_with(data_pkl: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
    return buf.getvalue()


SB3_KEYS = ("policy_class", "observation_space", "action_space", "policy_kwargs")


def test_sb3_files_with_a_payload_in_any_entry_are_refused(tmp_path, marker):
    evil = payloads(marker)
    chosen = [n for n in evil if n.startswith(("os.system", "dotted", "name ", "BUILD", "copyreg"))]
    for key in SB3_KEYS:
        for name in chosen:
            bad = _sb3_with(
                ASSETS / "toy_pass_v0__runner.zip", tmp_path / "bad.zip", key=key, blob=evil[name]
            )
            _assert_refused(lambda b=bad: specs.resolve(f"sb3:{b}", OBS, ACT), marker)


def test_torch_payloads_in_policy_pth_are_refused(tmp_path, marker):
    evil = payloads(marker)
    cases = {name: _pth_with(evil[name]) for name in evil}
    # storages that point outside the archive or lie about their size
    tensor = _call(
        _stack_global("torch._utils", "_rebuild_tensor_v2"),
        b"("
        + _s("storage")
        + _stack_global("torch", "FloatStorage")
        + _s("{key}")
        + _s("cpu")
        + b"K\x04tQ",
        b"K\x00",
        b"K\x02K\x02\x86",
        b"K\x02K\x01\x86",
        b"\x89",
        _call(_stack_global("collections", "OrderedDict")),
    )
    state = _call(_stack_global("collections", "OrderedDict")) + _s("w") + tensor + b"s"
    for key in ("../../etc/passwd", "/etc/passwd", "0/../1", "-1"):
        cases[f"storage key {key}"] = _pth_with(
            _proto4(state.replace(_s("{key}"), _s(key))), {"0": b"\x00" * 16}
        )
    cases["storage too small"] = _pth_with(
        _proto4(state.replace(_s("{key}"), _s("0"))), {"0": b"\x00" * 4}
    )
    big_stride = state.replace(_s("{key}"), _s("0")).replace(b"K\x02K\x01\x86", b"K\x40K\x01\x86")
    cases["strides beyond the storage"] = _pth_with(_proto4(big_stride), {"0": b"\x00" * 16})
    cases["pickle made by torch.save of a reducer"] = _torch_saved_reducer(marker)
    cases["not a zip"] = pickle.dumps(_Reduce(os.system, f"touch {marker}"))
    for _name, pth in cases.items():
        _assert_refused(lambda p=pth: read_torch_weights(p), marker)
        bad = _sb3_with(ASSETS / "toy_pass_v0__runner.zip", tmp_path / "bad.zip", pth=pth)
        _assert_refused(lambda b=bad: specs.resolve(f"sb3:{b}", OBS, ACT), marker)


def _torch_saved_reducer(marker: Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2), "x": _Reduce(os.system, f"touch {marker}")}, buf)
    return buf.getvalue()


def test_honest_torch_weights_match_torch_load():
    import torch

    with zipfile.ZipFile(ASSETS / "toy_catch_v0__player.zip") as z:
        blob = z.read("policy.pth")
    ours = read_torch_weights(blob)
    theirs = torch.load(io.BytesIO(blob), weights_only=True)
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # non-contiguous and offset views come back as the same values
    buf = io.BytesIO()
    base = torch.arange(24.0).reshape(4, 6)
    torch.save({"t": base.t(), "s": base[1:, 2:4]}, buf)
    got = read_torch_weights(buf.getvalue())
    assert torch.equal(got["t"], base.t()) and torch.equal(got["s"], base[1:, 2:4])


def test_zoo_atari_and_wrapped_specs_refuse_payloads(tmp_path, marker, monkeypatch):
    evil = payloads(marker)
    pkl = tmp_path / "evil.pkl"
    box = spaces.Box(-np.inf, np.inf, (380,), np.float64)
    act = spaces.Box(-1.0, 1.0, (17,), np.float32)
    for name in (
        "os.system p2",
        "exec p4",
        "dotted numpy:ctypeslib.os.system",
        "object dtype",
        "_reconstruct object array",
    ):
        pkl.write_bytes(evil[name])
        _assert_refused(lambda: specs.resolve(f"zoo:{pkl}", box, act), marker)
    npz = tmp_path / "evil.npz"
    np.savez(npz, w=np.array([_Reduce(os.system, f"touch {marker}")], dtype=object))
    _assert_refused(
        lambda: specs.resolve(
            f"atari:{npz}", spaces.Box(0, 255, (84, 84, 4), np.uint8), spaces.Discrete(6)
        ),
        marker,
    )
    bad = _sb3_with(
        ASSETS / "toy_pass_v0__runner.zip",
        tmp_path / "bad.zip",
        key="policy_kwargs",
        blob=evil["os.system p4"],
    )
    for spec in (f"mix:1*sb3:{bad}|1*zero", f"mix:0.5*zero|0.5*sb3:{bad}"):
        _assert_refused(lambda s=spec: specs.resolve(s, OBS, ACT), marker)
    _assert_refused(
        lambda: specs.resolve(f"masked:sb3:{bad}", OBS, ACT, env_id="toy_pass_v0", seat="runner"),
        marker,
    )


def _crafted_run(tmp_path: Path, payload: bytes) -> Path:
    run = tmp_path / "run"
    shutil.copytree(ASSETS / "you_shall_not_pass_v0__blocker", run)
    _sb3_with(
        ASSETS / "you_shall_not_pass_v0__blocker" / "policy.zip",
        run / "policy.zip",
        key="observation_space",
        blob=payload,
    )
    return run


def test_run_dirs_refuse_payloads_and_paths_that_leave_the_run(tmp_path, marker):
    box, act = YSNP_OBS, YSNP_ACT
    run = _crafted_run(tmp_path, payloads(marker)["os.system p4"])
    _assert_refused(lambda: specs.resolve(f"run:{run}", box, act), marker)
    # a checkpointed run whose state.json points outside the run directory
    ckpt_run = tmp_path / "ckpt_run"
    (ckpt_run / "checkpoints").mkdir(parents=True)
    outside = tmp_path / "evil.zip"
    shutil.copy(run / "policy.zip", outside)
    for model in (
        "../../evil.zip",
        str(outside),
        "../checkpoints/../../evil.zip",
        "a/../../x",
        "",
        7,
        None,
        ["x"],
        "x\0y",
    ):
        (ckpt_run / "checkpoints" / "state.json").write_text(
            json.dumps({"model": model, "norm": "n.npz"})
        )
        _assert_refused(
            lambda: specs.resolve(f"run:{ckpt_run}", box, act), marker, specs.PolicySpecError
        )
    # a symlink inside checkpoints/ that leads out
    (ckpt_run / "checkpoints" / "link.zip").symlink_to(outside)
    shutil.copy(run / "policy_norm.npz", ckpt_run / "checkpoints" / "n.npz")
    (ckpt_run / "checkpoints" / "state.json").write_text(
        json.dumps({"model": "link.zip", "norm": "n.npz"})
    )
    with pytest.raises(specs.PolicySpecError, match="leads outside"):
        specs.resolve(f"run:{ckpt_run}", box, act)
    for bad in ("{", "[]", "{}", '"x"'):
        (ckpt_run / "checkpoints" / "state.json").write_text(bad)
        with pytest.raises(specs.PolicySpecError):
            specs.resolve(f"run:{ckpt_run}", box, act)


def test_corrupt_normalization_is_one_line(tmp_path):
    box, act = YSNP_OBS, YSNP_ACT
    run = tmp_path / "run"
    shutil.copytree(ASSETS / "you_shall_not_pass_v0__blocker", run)
    norm = run / "policy_norm.npz"
    good = dict(np.load(norm))
    variants = {
        "truncated": norm.read_bytes()[:100],
        "text": b"hello",
    }
    for _name, raw in variants.items():
        norm.write_bytes(raw)
        with pytest.raises(specs.PolicySpecError, match="unreadable normalization"):
            specs.resolve(f"run:{run}", box, act)
    for key, value in {
        "obs_mean": np.zeros(3),
        "obs_var": np.full(380, np.nan),
        "clip_obs": np.array("x"),
        "epsilon": np.array(-1.0),
    }.items():
        np.savez(norm, **{**good, key: value})
        with pytest.raises(specs.PolicySpecError, match=key if key != "epsilon" else "positive"):
            specs.resolve(f"run:{run}", box, act)
    np.savez(norm, **{k: v for k, v in good.items() if k != "obs_var"})
    with pytest.raises(specs.PolicySpecError, match="lacks obs_var"):
        specs.resolve(f"run:{run}", box, act)


def test_manifest_records_the_files_a_run_loads():
    ref = specs.reference(f"run:{ASSETS / 'you_shall_not_pass_v0__blocker'}")
    assert ref.files is not None and set(ref.files) == {"policy", "norm"}
    assert ref.files["policy"]["sha256"] == specs.sha256_of(
        ASSETS / "you_shall_not_pass_v0__blocker" / "policy.zip"
    )


def test_cli_entry_points_refuse_a_crafted_file(cli, tmp_path, marker):
    evil = payloads(marker)
    bad = _sb3_with(
        ASSETS / "toy_pass_v0__runner.zip",
        tmp_path / "bad.zip",
        key="policy_kwargs",
        blob=evil["os.system p4"],
    )
    for spec in (f"sb3:{bad}", f"masked:sb3:{bad}", f"mix:1*sb3:{bad}|1*zero"):
        result = cli("evaluate", "toy_pass_v0", "--policy", f"runner={spec}", "--episodes", "2")
        assert_one_line_error(result, "refusing global")
        assert not marker.exists()
    # arena report on a run whose config names the crafted file
    run = tmp_path / "runs" / "evaluate" / "toy_pass_v0__s0__x"
    run.mkdir(parents=True)
    bad = Path(shutil.copy(bad, run / "bad.zip"))  # inside the run: the report may load it
    (run / "config.json").write_text(
        json.dumps(
            {
                "env": "toy_pass_v0",
                "seed": 0,
                "episodes": 2,
                "policies": {"runner": {"spec": f"sb3:{bad}"}, "blocker": {"spec": "zero"}},
            }
        )
    )
    (run / "results.json").write_text(json.dumps({"seats": {}}))
    result = cli("report", str(run))
    assert "Traceback" not in result.err
    if result.code == 0:  # the page is written, saying why it has no sample episode
        page = (run / "report" / "index.html").read_text()
        assert "refusing global" in page
    else:
        assert_one_line_error(result, "refusing global")
    assert not marker.exists()


def test_resume_refuses_a_crafted_checkpoint(cli, tmp_path, marker):
    out = tmp_path / "adv"
    victim = f"runner=sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"

    def train(*extra: str):
        return cli("train-adversary", "toy_pass_v0", "--victim", victim, "--out", str(out), *extra)

    assert train("--timesteps", "4096", "--seed", "0").code == 0
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    model = out / "checkpoints" / state["model"]
    evil = payloads(marker)
    cases = {
        "torch.save of a reducer": _sb3_with(
            model, tmp_path / "a.zip", pth=_torch_saved_reducer(marker)
        ),
        "exec in policy.pth": _sb3_with(model, tmp_path / "b.zip", pth=_pth_with(evil["exec p4"])),
    }
    original = model.read_bytes()
    for name, crafted in cases.items():
        shutil.copy(crafted, model)
        assert_one_line_error(train("--timesteps", "8192", "--resume"), "refusing")
        assert not marker.exists(), name
    model.write_bytes(original)
    (out / "checkpoints" / "state.json").write_text(
        json.dumps({**state, "model": "../../../evil.zip"})
    )
    assert_one_line_error(train("--timesteps", "8192", "--resume"), "not a plain file name")


# ---------------------------------------------------------------- resource attacks
# Found by attacking the loaders (none ran code; each hung, blew up memory or gave a
# traceback before it was fixed): every one now ends in one line, at little cost.


def test_shared_structures_do_not_explode():
    """60 nested tuples, each ``(x, x)`` sharing ``x`` through the memo: 2**60 paths."""
    import subprocess
    import sys

    dag = b"\x80\x02N" + b"".join(
        b"q" + bytes([i]) + b"h" + bytes([i]) + b"\x86" for i in range(60)
    )
    code = "import sys, agents.safe_pickle as p; p.inert_loads(sys.stdin.buffer.read())"
    done = subprocess.run([sys.executable, "-c", code], input=dag + b".", timeout=120, check=False)
    assert done.returncode == 0


def _zip_with_data(dst: Path, data: bytes, src: Path = ASSETS / "toy_pass_v0__runner.zip") -> Path:
    return _sb3_with(src, dst, data_json=data)


def test_crafted_sb3_files_are_refused_before_anything_big_is_built(tmp_path):
    runner = ASSETS / "toy_pass_v0__runner.zip"
    data = json.loads(zipfile.ZipFile(runner).read("data"))
    cases = {
        "huge int kwarg": {**data, "policy_kwargs": {"log_std_init": 10**400}},
        "huge int optimizer kwarg": {
            **data,
            "policy_kwargs": {"optimizer_kwargs": {"lr": 10**400}},
        },
        "huge net_arch": {**data, "policy_kwargs": {"net_arch": [10**6]}},
        "unknown kwarg": {**data, "policy_kwargs": {"features_extractor_class": "os.system"}},
        "data is a list": [1, 2],
    }
    for name, content in cases.items():
        bad = _zip_with_data(tmp_path / f"{len(name)}.zip", json.dumps(content).encode())
        with pytest.raises(specs.PolicySpecError) as info:
            specs.resolve(f"sb3:{bad}", OBS, ACT)
        assert "\n" not in str(info.value), name
    deep = _zip_with_data(tmp_path / "deep.zip", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(specs.PolicySpecError, match="not a readable SB3"):
        specs.resolve(f"sb3:{deep}", OBS, ACT)
    # spaces that do not fit the seat are refused before the network is built
    for space in (spaces.Discrete(2**23), spaces.MultiBinary(9), spaces.MultiDiscrete([2] * 9)):
        key = "action_space" if isinstance(space, spaces.Discrete) else "observation_space"
        bad = _sb3_with(runner, tmp_path / "s.zip", key=key, blob=pickle.dumps(space))
        with pytest.raises(specs.PolicySpecError, match="but the seat has"):
            specs.resolve(f"sb3:{bad}", OBS, ACT)
    bad = _sb3_with(
        ASSETS / "toy_catch_v0__player.zip",
        tmp_path / "d.zip",
        key="action_space",
        blob=pickle.dumps(spaces.Discrete(3, start=5)),
    )
    with pytest.raises(specs.PolicySpecError, match="start=5"):
        specs.resolve(f"sb3:{bad}", spaces.Box(0, 255, (1, 24, 24), np.uint8), spaces.Discrete(3))


def test_a_zip_member_that_lies_about_its_size_is_refused(tmp_path):
    out = tmp_path / "lying.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data", b"\0" * (8 << 20))
        z.writestr("policy.pth", b"x")
    raw = bytearray(out.read_bytes())
    raw[22:26] = struct.pack("<I", 100)
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = struct.pack("<I", 100)
    out.write_bytes(bytes(raw))
    with pytest.raises(specs.PolicySpecError, match="not a readable SB3"):
        specs.resolve(f"sb3:{out}", OBS, ACT)


def test_tensors_cannot_claim_more_elements_than_their_storage():
    tensor = _call(
        _stack_global("torch._utils", "_rebuild_tensor_v2"),
        b"("
        + _s("storage")
        + _stack_global("torch", "FloatStorage")
        + _s("0")
        + _s("cpu")
        + b"K\x01tQ",
        b"K\x00",
        b"J\x00\x00\x00\x10\x85",  # size (2**28,)
        b"K\x00\x85",  # stride (0,)
        b"\x89",
        _call(_stack_global("collections", "OrderedDict")),
    )
    state = _proto4(_call(_stack_global("collections", "OrderedDict")) + _s("w") + tensor + b"s")
    with pytest.raises(UnsafePickleError, match="over a storage of 1"):
        read_torch_weights(_pth_with(state, {"0": b"\0" * 4}))


def test_crafted_state_json_and_npz_headers_are_one_line(tmp_path):
    box, act = YSNP_OBS, YSNP_ACT
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for text in ("[" * 100_000 + "]" * 100_000, '{"model": ' + "9" * 5000 + "}", "\xff"):
        (run / "checkpoints" / "state.json").write_text(text, encoding="latin1")
        with pytest.raises(specs.PolicySpecError, match="state.json is not valid JSON"):
            specs.resolve(f"run:{run}", box, act)
    atari = (spaces.Box(0, 255, (84, 84, 4), np.uint8), spaces.Discrete(6))
    npz = tmp_path / "a.npz"
    names = ("conv1", "conv2", "conv3", "fc", "pi", "v")
    arrays = {f"{n}.{p}": np.zeros(1, np.float32) for n in names for p in ("weight", "bias")}
    arrays["conv3.weight"] = np.zeros((64, 64, 3, 3), np.float32)
    arrays["pi.weight"] = np.zeros((6, 512), np.float32)
    np.savez(npz, **{**arrays, "conv1.weight": np.zeros((0, 2**30, 8, 8), np.float32)})
    with pytest.raises(specs.PolicySpecError, match="input channels"):
        specs.resolve(f"atari:{npz}", *atari)
    np.savez(npz, **arrays)
    raw = bytearray(npz.read_bytes())
    at = raw.find(b"'shape': (1,)")
    raw[at : at + 13] = b"'shape': (9**13,)"[:13]
    npz.write_bytes(bytes(raw))
    with pytest.raises(specs.PolicySpecError):
        specs.resolve(f"atari:{npz}", *atari)


def test_symlinks_cannot_lead_a_run_out_of_its_directory(tmp_path):
    box, act = YSNP_OBS, YSNP_ACT
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(ASSETS / "you_shall_not_pass_v0__blocker", elsewhere)
    run = tmp_path / "run"
    run.mkdir()
    (run / "policy.zip").symlink_to(elsewhere / "policy.zip")
    with pytest.raises(specs.PolicySpecError, match="leads outside"):
        specs.resolve(f"run:{run}", box, act)
    (run / "policy.zip").unlink()
    (elsewhere / "checkpoints").mkdir()
    (elsewhere / "checkpoints" / "state.json").write_text('{"model": "m.zip", "norm": "n.npz"}')
    (run / "checkpoints").symlink_to(elsewhere / "checkpoints")
    with pytest.raises(specs.PolicySpecError, match="leads outside"):
        specs.resolve(f"run:{run}", box, act)
