"""Hostile records: what an attacker who hands someone a record directory would try.

Every bad record ends as one line ``arena: error: ...`` with exit status 2 (or, for a
record that reads fine but is not the episode it claims, a named mismatch, exit 1),
never a traceback, a hang or an allocation the size a header claims:

* episode npz files: headers claiming huge shapes, zip bombs, smuggled members, too
  many members, object and string arrays: refused from their headers, before
  anything is inflated, within the limits of an episode (``arena.recording``);
* manifests: returns no float can hold, ``env_kwargs`` the game refuses;
* ``replay --video --no-verify``: actions the game cannot step;
* ``universal:frames=DIR``: frames that do not fit the victim;
* ``--verify``: policy paths the spec does not load are neither read nor hashed, and no
  check ever prints the digest of a file it found.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ASSETS, GOLDEN, assert_one_line_error, edit_manifest, edit_npz

import arena.recording as recording
from agents.attacks import AttackSpecError
from arena.attacks import RecordUniversal, build_attack, record_frames
from arena.match import run_match
from arena.recording import (
    RecordError,
    load_episode,
    match_manifest,
    read_episode,
    read_manifest,
    write_record,
)
from arena.replay import policies as replay_policies
from arena.replay import verify

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"
EPISODE = "episode_00000.npz"

# ---------------------------------------------------------------- crafting files


def _copy(tmp_path: Path, name: str = "rec") -> Path:
    dst = tmp_path / name
    shutil.copytree(GOLDEN, dst)
    return dst


def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, arr, allow_pickle=True)
    return out.getvalue()


def _rewrite(path: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> None:
    """Rewrite the zip ``path`` member by member, as anyone with the file could."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist() if i.filename not in drop}
    members.update(replace)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _bomb(path: Path, member: str, shape: tuple[int, ...], descr: str = "<f8") -> None:
    """Replace ``member`` of ``path`` by a true array of zeros of ``shape``, streamed
    through deflate: a file of a few hundred KiB that inflates to the whole array."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist() if i.filename != member}
    size = int(np.prod(shape)) * np.dtype(descr).itemsize
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        with z.open(member, "w", force_zip64=True) as fh:
            fh.write(_npy_header(shape, descr))
            left = size
            while left:
                n = min(left, len(zeros))
                fh.write(zeros[:n])
                left -= n


def _replays(rec: Path, out: Path) -> list[tuple[str, ...]]:
    """The commands that read an episode: list, verify, and paint it unverified."""
    return [
        ("replay", str(rec), "--episode", "0"),
        ("replay", str(rec), "--episode", "0", "--verify"),
        ("replay", str(rec), "--episode", "0", "--video", str(out), "--no-verify"),
    ]


# ---------------------------------------------------------------- 1. episode npz files


HOSTILE_NPZ = {
    # a 3 KB file whose header claims 10**13 float64 rows: numpy would allocate 73 TiB
    "header_claims_1e13_rows": (
        lambda p: _rewrite(p, {"obs.runner.npy": _npy_header((10**13,), "<f8")}),
        "claims more than it holds",
    ),
    "header_claims_square_terabytes": (
        lambda p: _rewrite(p, {"obs.runner.npy": _npy_header((10**6, 10**6), "<f4")}),
        "claims more than it holds",
    ),
    # a zero-size dtype: 10**15 rows of nothing, loops of 10**15 steps downstream
    "void_dtype_1e15_rows": (
        lambda p: _rewrite(p, {"action.runner.npy": _npy_header((10**15,), "|V0")}),
        "dtype |V0",
    ),
    # an empty row shape: 10**15 rows of 0 bytes, every header honest
    "zero_width_1e15_rows": (
        lambda p: _rewrite(p, {"action.runner.npy": _npy_header((10**15, 0), "<f4")}),
        "an episode has at most 100000 steps",
    ),
    # 64 MiB of zeros deflated to a few hundred KiB: more rows than any episode
    "zip_bomb_rows": (
        lambda p: _bomb(p, "obs.runner.npy", (2**23 + 1,)),
        "an episode has at most 100000 steps",
    ),
    # np.load hands back a member without the .npy suffix unchecked (as raw bytes, or
    # as an array if it starts like one)
    "smuggled_member_without_npy_suffix": (
        lambda p: _rewrite(p, {"obs.runner": _npy_header((10**13,), "<f8")}),
        "is not an .npy array",
    ),
    "too_many_members": (
        lambda p: _rewrite(p, {f"pad{i}.npy": _npy(np.zeros(1)) for i in range(300)}),
        "over the limit of 256",
    ),
    "pickled_object_array": (
        lambda p: _rewrite(p, {"action.runner.npy": _npy(np.array([{"x": 1}] * 60))}),
        "pickled objects never",
    ),
    "string_actions": (
        lambda p: _rewrite(p, {"action.runner.npy": _npy(np.array([["a", "b"]] * 60))}),
        "arrays must be numbers",
    ),
    "complex_rewards": (
        lambda p: _rewrite(p, {"reward.runner.npy": _npy(np.zeros(60, np.complex128))}),
        "arrays must be numbers",
    ),
    "npy_file_that_starts_like_a_pickle": (
        lambda p: p.write_bytes(b"\x80\x04K\x01."),
        "is not an npz archive",
    ),
    "truncated_in_the_middle": (
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "corrupted or truncated",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_NPZ))
def test_hostile_episode_file_is_one_line_in_every_command(tmp_path, cli, name):
    craft, fragment = HOSTILE_NPZ[name]
    rec = _copy(tmp_path)
    craft(rec / EPISODE)
    out = tmp_path / "x.gif"
    for args in _replays(rec, out):
        assert_one_line_error(cli(*args), fragment)
    assert not out.exists()


def _peak_loading(rec: Path, error: str) -> int:
    """Peak bytes allocated while the first episode file is read and refused (the
    manifest read before: only the episode file is measured)."""
    manifest = read_manifest(rec)
    tracemalloc.start()
    try:
        with pytest.raises(RecordError, match=error):
            load_episode(rec, manifest.episodes[0], manifest.seats)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_is_refused_before_it_inflates(tmp_path):
    rec = _copy(tmp_path)
    _bomb(rec / EPISODE, "obs.runner.npy", (2**24 + 1, 1))  # 128 MiB of zeros
    assert (rec / EPISODE).stat().st_size < 2**20
    with pytest.raises(RecordError, match="at most 100000 steps"):
        read_episode(rec, 0)
    assert _peak_loading(rec, "at most 100000 steps") < 4 * 2**20


def test_total_and_per_step_limits_are_said(tmp_path, monkeypatch, cli):
    rec = _copy(tmp_path)
    # rows within the episode limit, yet more bytes in all than an episode may hold
    _bomb(rec / EPISODE, "obs.runner.npy", (50_001, 9))
    monkeypatch.setattr(recording, "MAX_EPISODE_BYTES", 2**20)
    assert _peak_loading(rec, "over the limit of 1 MiB") < 4 * 2**20
    assert_one_line_error(cli("replay", rec, "--verify"), "episode 0", "over the limit of 1 MiB")
    monkeypatch.undo()
    rec = _copy(tmp_path, "wide")
    monkeypatch.setattr(recording, "MAX_STEP_BYTES", 16)
    assert_one_line_error(
        cli("replay", rec, "--episode", "0"), "36 bytes per step", "at most 16 bytes"
    )


def test_episode_file_that_is_a_fifo_or_a_link_out_never_blocks(tmp_path, cli):
    rec = _copy(tmp_path)
    (rec / EPISODE).unlink()
    os.mkfifo(rec / EPISODE)  # opening it would wait for a writer for ever
    assert_one_line_error(cli("replay", rec, "--episode", "0"), EPISODE)
    assert_one_line_error(cli("replay", rec, "--verify"), EPISODE)
    (rec / EPISODE).unlink()
    (rec / EPISODE).symlink_to("/dev/zero")
    assert_one_line_error(cli("replay", rec, "--episode", "0"), "outside the record")


# ---------------------------------------------------------------- 2. manifests


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 10**309, float("inf"), float("-inf"), float("nan")],
    ids=["int_400_digits", "negative_int_400_digits", "int_past_float", "inf", "-inf", "nan"],
)
def test_return_no_float_holds_is_one_line(tmp_path, cli, value):
    rec = _copy(tmp_path)
    edit_manifest(rec, lambda m: m["episodes"][0]["returns"].update(runner=value))
    for args in (("replay", rec), ("replay", rec, "--verify")):
        result = cli(*args)
        assert_one_line_error(result, "episodes[0].returns.runner must be a number")
        assert "0000000000" not in result.err  # a huge int is said by its size


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_steps": 0},
        {"max_steps": -5},
        {"max_steps": "x"},
        {"max_steps": [1, 2]},
        {"max_steps": 1e400},  # JSON Infinity: int(inf) overflows
        {"max_steps": float("nan")},
        {"shaping": "lots"},
        {"no_such_keyword": 1},
    ],
    ids=lambda k: json.dumps(k),
)
def test_env_kwargs_the_game_refuses_are_one_line(tmp_path, cli, kwargs):
    rec = _copy(tmp_path)
    edit_manifest(rec, lambda m: m.update(env_kwargs=kwargs))
    out = tmp_path / "x.gif"
    for args in (
        ("replay", rec, "--verify"),
        ("replay", rec, "--video", out),
        ("replay", rec, "--video", out, "--no-verify"),
    ):
        assert_one_line_error(cli(*args), "toy_pass_v0 cannot be made with its env_kwargs")
    assert not out.exists()


def test_env_kwargs_are_named_and_clipped(tmp_path, cli):
    rec = _copy(tmp_path)
    edit_manifest(rec, lambda m: m.update(env_kwargs={"max_steps": "x" * 100_000}))
    result = cli("replay", rec, "--verify")
    assert_one_line_error(result, 'env_kwargs {"max_steps": "xxx', "TypeError")
    assert len(result.err) < 1000


# ---------------------------------------------------------------- 3. --video --no-verify


NOT_PLAYABLE = {
    "actions_of_another_shape": (
        lambda a: a.update({"action.runner": np.zeros((60, 2, 2), np.float32)}),
        "shape (2, 2) per step",
    ),
    "actions_flattened": (
        lambda a: a.update({"action.runner": np.zeros((60, 4), np.float32)}),
        "shape (4,) per step",
    ),
    "actions_of_another_dtype": (
        lambda a: a.update({"action.runner": np.zeros((60, 2), np.int64)}),
        "dtype int64",
    ),
    "nan_actions": (
        lambda a: a["action.runner"].__setitem__(5, np.nan),
        "is outside Box",
    ),
    "actions_past_the_bounds": (
        lambda a: a["action.runner"].__setitem__(7, 1e30),
        "is outside Box",
    ),
    "observations_of_another_shape": (
        lambda a: a.update({"obs.runner": np.zeros((61, 5), np.float32)}),
        "observations of 'runner' have shape (5,)",
    ),
    "float32_rewards": (
        lambda a: a.update({"reward.runner": a["reward.runner"].astype(np.float32)}),
        "reward of 'runner' is float32",
    ),
    "nan_delta": (
        lambda a: a.update(
            {
                "delta.runner": np.full((60, 9), np.nan, np.float32),
                "clean_action.runner": a["action.runner"].copy(),
                "attacked.runner": np.ones(60, bool),
            }
        ),
        "delta of 'runner' is not finite",
    ),
    "attacked_flags_as_floats": (
        lambda a: a.update(
            {
                "delta.runner": np.zeros((60, 9), np.float32),
                "clean_action.runner": a["action.runner"].copy(),
                "attacked.runner": np.ones(60, np.float64),
            }
        ),
        "attacked flags of 'runner' are float64",
    ),
}


@pytest.mark.parametrize("name", list(NOT_PLAYABLE))
def test_video_of_unplayable_actions_is_one_line_verified_or_not(tmp_path, cli, name):
    edit, fragment = NOT_PLAYABLE[name]
    rec = _copy(tmp_path)
    edit_npz(rec, 0, edit)
    out = tmp_path / "x.gif"
    for extra in (("--no-verify",), ()):
        result = cli("replay", rec, "--episode", "0", "--video", out, *extra)
        assert_one_line_error(result, "episode 0 cannot be played back", fragment)
        assert not out.exists()


# ---------------------------------------------------------------- 4. universal:frames=DIR


def _frames_of_another_game(rec: Path) -> None:
    """Every episode's runner observations made toy_catch_v0-like frames."""
    for position in (0, 1):
        edit_npz(rec, position, lambda a: a.update({"obs.runner": np.zeros((61, 1, 24, 24))}))


FRAMES = {
    "mixed_shapes": (
        lambda rec: edit_npz(
            rec, 1, lambda a: a.update({"obs.runner": np.zeros((61, 5), np.float32)})
        ),
        "episode 1",
        "have shape (5,); the victim's observations are (9,)",
    ),
    "another_games_frames": (
        lambda rec: _frames_of_another_game(rec),
        "episode 0",
        "have shape (1, 24, 24)",
    ),
    "nan_frames": (
        lambda rec: edit_npz(rec, 0, lambda a: a["obs.runner"].__setitem__(30, np.nan)),
        "episode 0",
        "frame 30 is not finite",
    ),
    "inf_frames": (
        lambda rec: edit_npz(rec, 1, lambda a: a["obs.runner"].__setitem__(3, -np.inf)),
        "episode 1",
        "frame 3 is not finite",
    ),
    "string_frames": (
        lambda rec: _rewrite(rec / EPISODE, {"obs.runner.npy": _npy(np.array([["a"] * 9] * 61))}),
        "cannot read the record",
        "arrays must be numbers",
    ),
    "bomb_frames": (
        lambda rec: _bomb(rec / EPISODE, "obs.runner.npy", (2**23 + 1,)),
        "cannot read the record",
        "at most 100000 steps",
    ),
}


@pytest.mark.parametrize("name", list(FRAMES))
def test_universal_frames_that_do_not_fit_the_victim(tmp_path, name):
    from gymnasium import spaces

    craft, *fragments = FRAMES[name]
    rec = _copy(tmp_path)
    craft(rec)
    victim_space = spaces.Box(-5.0, 5.0, (9,), np.float32)
    with pytest.raises(AttackSpecError) as info:
        record_frames(rec, "runner", 500, space=victim_space)
    message = str(info.value)
    assert message.startswith("universal: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_universal_frames_are_checked_against_the_victim_it_fits(tmp_path):
    rec = _copy(tmp_path)
    attack = build_attack(f"universal:eps=0.1,frames={rec},seat=runner")
    assert isinstance(attack, RecordUniversal)
    frames = record_frames(rec, "runner", 100)
    assert frames.shape == (100, 9) and frames.dtype == np.float32


@pytest.mark.parametrize("name", ["mixed_shapes", "nan_frames"])
def test_universal_frames_through_the_cli(tmp_path, cli, name):
    craft, *fragments = FRAMES[name]
    rec = _copy(tmp_path)
    craft(rec)
    result = cli(
        "evaluate",
        "toy_pass_v0",
        "--policy",
        f"runner={RUNNER}",
        "--episodes",
        "1",
        "--runs",
        tmp_path / "runs",
        "--attack",
        f"runner=universal:eps=0.1,frames={rec},seat=runner",
    )
    assert_one_line_error(result, "universal:", *fragments)


# ---------------------------------------------------------------- 5. --verify and policy paths


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("the user's private key\n")
    return path


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """Every file the verifier opens to hash."""
    seen: list[Path] = []
    original = replay_policies._hash_into

    def spy(digest, file, budget):
        seen.append(Path(file))
        return original(digest, file, budget)

    monkeypatch.setattr(replay_policies, "_hash_into", spy)
    replay_policies._SHA_CACHE.clear()
    return seen


def _digests(path: Path) -> list[str]:
    import hashlib

    full = hashlib.sha256(path.read_bytes()).hexdigest()
    return [full[:8], full[:16], full]


def _set_runner(rec: Path, **ref) -> None:
    edit_manifest(rec, lambda m: m["policies"].update(runner=ref))


def _mismatch_line(result) -> str:
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err
    assert result.err.strip().splitlines() == [
        "arena: error: re-simulation diverged from the record"
    ]
    lines = [ln for ln in result.out.splitlines() if "MISMATCH" in ln]
    assert lines, result.out
    return lines[0]


def test_path_the_spec_does_not_load_is_not_read(tmp_path, cli, secret, hashed):
    rec = _copy(tmp_path)
    _set_runner(rec, spec=RUNNER, kind="sb3", path=str(secret), sha256="0" * 64)
    line = _mismatch_line(cli("replay", rec, "--verify", "--episode", "0"))
    assert "is not the file its spec" in line and "it is not read" in line
    assert secret not in hashed


def test_no_digest_of_a_file_found_is_ever_printed(tmp_path, cli, secret, hashed):
    # the spec itself names the secret, so it is hashed: the digest is not said
    rec = _copy(tmp_path)
    _set_runner(rec, spec=f"sb3:{secret}", kind="sb3", path=str(secret), sha256="0" * 64)
    result = cli("replay", rec, "--verify", "--episode", "0")
    line = _mismatch_line(result)
    assert "the manifest records 0000000000000000..." in line
    for digest in _digests(secret):
        assert digest not in result.out + result.err
    assert hashed == [secret]


def test_what_is_not_a_sha256_is_refused_before_reading(tmp_path, cli, secret, hashed):
    rec = _copy(tmp_path)
    _set_runner(rec, spec=f"sb3:{secret}", kind="sb3", path=str(secret), sha256="00")
    line = _mismatch_line(cli("replay", rec, "--verify", "--episode", "0"))
    assert "where a sha256 (64 hex digits) belongs" in line
    assert hashed == []


def test_loaded_files_of_no_directory_are_not_read(tmp_path, cli, secret, hashed):
    rec = _copy(tmp_path)
    files = {"policy": {"path": str(secret), "sha256": "0" * 64}}
    _set_runner(rec, spec="random", kind="random", files=files)
    assert "loads no files" in _mismatch_line(cli("replay", rec, "--verify"))
    gone = str(tmp_path / "gone")
    _set_runner(rec, spec=f"run:{gone}", kind="run", path=gone, sha256="0" * 64, files=files)
    line = _mismatch_line(cli("replay", rec, "--verify"))
    assert "its directory" in line and "is gone" in line
    assert hashed == []


def test_proc_paths_are_neither_followed_nor_read_past_their_size(tmp_path, cli, hashed):
    rec = _copy(tmp_path)
    _set_runner(rec, spec="run:/proc/self", kind="run", path="/proc/self", sha256="0" * 64)
    line = _mismatch_line(cli("replay", rec, "--verify", "--episode", "0"))
    assert "is not the file its spec 'run:/proc/self' loads" in line
    # a /proc file the spec does name: its size says 0, it holds more: not a policy file
    status = f"/proc/{os.getpid()}/status"
    _set_runner(rec, spec=f"sb3:{status}", kind="sb3", path=status, sha256="0" * 64)
    line = _mismatch_line(cli("replay", rec, "--verify", "--episode", "0"))
    assert f"({status}) is not a policy file" in line


def test_policy_larger_than_the_limit_is_not_read(tmp_path, cli, monkeypatch, hashed):
    big = tmp_path / "big.zip"
    with open(big, "wb") as fh:
        fh.truncate(2 * 2**20)  # sparse: nothing to write, much to read
    monkeypatch.setattr(replay_policies, "MAX_POLICY_BYTES", 2**20)
    rec = _copy(tmp_path)
    _set_runner(rec, spec=f"sb3:{big}", kind="sb3", path=str(big), sha256="0" * 64)
    assert "is not a policy file" in _mismatch_line(cli("replay", rec, "--verify"))


def test_unreadable_policy_file_is_one_line(tmp_path, cli, monkeypatch, secret):
    def unreadable(digest, file, budget):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(replay_policies, "_hash_into", unreadable)
    replay_policies._SHA_CACHE.clear()
    rec = _copy(tmp_path)
    _set_runner(rec, spec=f"sb3:{secret}", kind="sb3", path=str(secret), sha256="0" * 64)
    assert_one_line_error(
        cli("replay", rec, "--verify"), "policy file of 'runner'", "cannot be read"
    )


def test_spec_nested_past_the_recursion_limit_is_one_line(tmp_path, cli):
    rec = _copy(tmp_path)
    _set_runner(rec, spec="masked:" * 3000 + "zero", kind="masked")
    assert_one_line_error(cli("replay", rec, "--verify"), "policies.runner.spec")


def test_relative_spec_verifies_from_anywhere_and_only_with_its_own_file(
    tmp_path, cli, monkeypatch
):
    # a record made where the runner's file is `toy_pass_v0__runner.zip`
    monkeypatch.chdir(ASSETS)
    players = {"runner": "sb3:toy_pass_v0__runner.zip", "blocker": "zero"}
    _, records = run_match("toy_pass_v0", players, n_episodes=1, seed=5, record=True)
    manifest = match_manifest("toy_pass_v0", players, seed=5, workers=1)
    rec = write_record(tmp_path / "rec", manifest, records)
    monkeypatch.chdir(tmp_path)
    checks = verify(rec)
    assert all(c.match and not c.notes for c in checks), checks
    # the same relative spec, but the manifest points at another (real) policy file
    other = ASSETS / "toy_catch_v0__player.zip"
    edit_manifest(rec, lambda m: m["policies"]["runner"].update(path=str(other)))
    line = _mismatch_line(cli("replay", rec, "--verify"))
    assert "is not the file its spec 'sb3:toy_pass_v0__runner.zip' loads" in line
