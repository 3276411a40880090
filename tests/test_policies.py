"""Policies, the spec resolver and safe loading of SB3 files."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import specs
from agents.policies import RandomPolicy, TorchPolicy, ZeroPolicy
from agents.safe_pickle import UnsafePickleError, inert_loads
from agents.sb3 import SB3TorchPolicy

BOX = spaces.Box(-1, 1, (2,), np.float32)
OBS = spaces.Box(-5, 5, (9,), np.float32)


def test_random_and_zero_are_batched_and_seeded():
    policy = RandomPolicy(OBS, BOX, seed=1)
    a, state = policy.predict(np.zeros((4, 9), np.float32))
    assert a.shape == (4, 2) and state is None and np.all(np.abs(a) <= 1)
    policy.reset(seed=1)
    b, _ = policy.predict(np.zeros((4, 9), np.float32))
    assert np.array_equal(a, b)
    single, _ = policy.predict(np.zeros(9, np.float32))
    assert single.shape == (2,)
    zero = ZeroPolicy(OBS, BOX)
    assert np.array_equal(zero.predict(np.ones((3, 9)))[0], np.zeros((3, 2)))
    discrete = RandomPolicy(spaces.Box(0, 255, (1, 4, 4), np.uint8), spaces.Discrete(3), seed=0)
    acts, _ = discrete.predict(np.zeros((50, 1, 4, 4), np.uint8))
    assert set(acts.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty policy spec"),
        ("banana", "unknown policy kind 'banana'"),
        ("sb3", "needs a path"),
        ("random:foo", "takes no argument"),
        ("sb3:/no/such/file.zip", "policy file not found"),
    ],
)
def test_bad_specs_name_the_valid_forms(spec, message):
    with pytest.raises(specs.PolicySpecError, match=message) as info:
        specs.resolve(spec, OBS, BOX)
    assert "\n" not in str(info.value)
    if "unknown" in message or "empty" in message:
        assert "random, zero" in str(info.value) and "sb3:PATH" in str(info.value)


def test_reference_hashes_the_file(runner_zip):
    ref = specs.reference(f"sb3:{runner_zip}")
    import hashlib

    assert ref.sha256 == hashlib.sha256(runner_zip.read_bytes()).hexdigest()
    assert ref.kind == "sb3" and ref.path == str(runner_zip.resolve())
    assert specs.reference("zero").sha256 is None


def test_shipped_sb3_victims_are_differentiable_torch_policies(runner_zip, catch_zip):
    runner = specs.resolve(f"sb3:{runner_zip}", OBS, BOX)
    assert isinstance(runner, SB3TorchPolicy) and isinstance(runner, TorchPolicy)
    obs = np.zeros((3, 9), np.float32)
    a, _ = runner.predict(obs, deterministic=True)
    assert a.shape == (3, 2)
    frame_space = spaces.Box(0, 255, (1, 24, 24), np.uint8)
    player = specs.resolve(f"sb3:{catch_zip}", frame_space, spaces.Discrete(3))
    frames = np.zeros((2, 1, 24, 24), np.uint8)
    x = player.input_from_obs(frames).requires_grad_(True)
    assert float(x.detach().max()) == 0.0 and player.input_high == 1.0
    dist = player.distribution(x)
    dist.log_prob(torch.tensor([0, 1])).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    # act_on_input with the clean input equals predict
    assert np.array_equal(
        player.act_on_input(player.input_from_obs(frames), deterministic=True)[0],
        player.predict(frames, deterministic=True)[0],
    )


def test_a_victim_that_does_not_fit_the_seat_is_refused(runner_zip):
    with pytest.raises(
        specs.PolicySpecError, match=r"takes Box\[-5, 5\]\(9,\) -> Box\[-1, 1\]\(2,\).*seat has"
    ):
        specs.resolve(
            f"sb3:{runner_zip}", spaces.Box(0, 255, (1, 24, 24), np.uint8), spaces.Discrete(3)
        )


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _malicious_sb3(tmp_path, runner_zip):
    """The shipped runner with its policy_class replaced by a pickle that runs a command."""
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(runner_zip) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "data":
                payload = json.loads(data)
                payload["policy_class"][":serialized:"] = base64.b64encode(
                    pickle.dumps(_Boom())
                ).decode()
                data = json.dumps(payload).encode()
            dst.writestr(item, data)
    return bad


def test_loading_never_runs_code_from_the_file(tmp_path, runner_zip, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _malicious_sb3(tmp_path, runner_zip)
    with pytest.raises(specs.PolicySpecError, match="refusing global posix.system"):
        specs.resolve(f"sb3:{bad}", OBS, BOX)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        inert_loads(pickle.dumps(eval))
    # a name reached through a module the table knows is refused too
    with pytest.raises(UnsafePickleError, match=r"agents.networks.torch \(not in the table"):
        inert_loads(b"cagents.networks\ntorch\n.")


def test_non_sb3_files_give_one_line_errors(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(specs.PolicySpecError, match="not a readable SB3 model file"):
        specs.resolve(f"sb3:{junk}", OBS, BOX)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(specs.PolicySpecError, match="not an SB3 model file"):
        specs.resolve(f"sb3:{empty}", OBS, BOX)


def test_inert_loads_reconstructs_plain_arrays():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(inert_loads(pickle.dumps(arr)), arr)
    space = inert_loads(pickle.dumps(BOX))
    assert space == BOX
