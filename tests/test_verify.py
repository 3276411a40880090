"""`arena replay --verify`: the record is the episode.

Tampering (exit 1) names the episode, the step and the field; malformed records
(exit 2) are one line ``arena: error: ...``; file names from the manifest stay
inside the record directory.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, assert_one_line_error, edit_manifest, edit_npz

from agents.specs import reference
from arena.match import run_match
from arena.recording import (
    RecordError,
    match_manifest,
    read_episode,
    read_manifest,
    write_record,
)
from arena.replay import verify


def _make(directory: Path, env, policies, attacks=None, n=2, deterministic=True, outcomes=False):
    result, records = run_match(
        env,
        policies,
        n_episodes=n,
        seed=11,
        attacks=attacks,
        deterministic=deterministic,
        record=True,
    )
    if outcomes:
        records = [
            dataclasses.replace(r, outcome=o.outcomes)
            for r, o in zip(records, result.outcomes, strict=True)
        ]
    manifest = match_manifest(
        env, policies, seed=11, attacks=attacks, workers=1, deterministic=deterministic
    )
    return write_record(directory, manifest, records)


@pytest.fixture(scope="module")
def catch_rec(tmp_path_factory, catch_zip):
    """toy_catch_v0 under fgsm, 2 episodes of 210 steps, the victim's actions argmax."""
    root = tmp_path_factory.mktemp("catch")
    player = {"player": f"sb3:{catch_zip}"}
    return _make(root / "rec", "toy_catch_v0", player, {"player": "fgsm:eps=0.3"}, outcomes=True)


@pytest.fixture(scope="module")
def pass_rec(tmp_path_factory, runner_zip):
    """toy_pass_v0: the sb3 runner sampling its actions against a random blocker."""
    root = tmp_path_factory.mktemp("pass")
    players = {"runner": f"sb3:{runner_zip}", "blocker": "random"}
    return _make(root / "rec", "toy_pass_v0", players, deterministic=False)


def _copy(src: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def assert_mismatch(cli, rec: Path, episode: int, step: int, field: str, *fragments: str):
    """verify() and `arena replay --verify` both name the episode, the step, the field."""
    check = {c.index: c for c in verify(rec)}[episode]
    assert not check.match, check
    assert (check.first_mismatch, check.field) == (step, field), check
    for fragment in fragments:
        assert fragment in check.detail, check.detail
    assert check.message.startswith(f"episode {episode}, step {step}: ")
    result = cli("replay", rec, "--verify")
    assert result.code == 1, (result.out, result.err)
    head = f"episode {episode}: MISMATCH at step {step}: "
    lines = [ln for ln in result.out.splitlines() if ln.startswith(head)]
    assert lines and all(f in lines[0] for f in fragments), result.out
    assert "re-simulation diverged" in result.err and "Traceback" not in result.err
    return check


# ---------------------------------------------------------------- honest records


def test_honest_records_verify_exactly(cli, catch_rec, pass_rec):
    for rec in (catch_rec, pass_rec, GOLDEN):
        checks = verify(rec)
        assert all(c.match and not c.notes for c in checks), checks
        result = cli("replay", rec, "--verify")
        assert result.code == 0, (result.out, result.err)
        assert result.out.count("verified") == len(checks)


def test_universal_attack_fitted_on_a_record_verifies(tmp_path, catch_rec, catch_zip):
    # the arena reads the fitting frames (agents never read records), when it plays
    # and when it re-derives
    attack = f"universal:eps=0.1,frames={catch_rec},iters=5"
    rec = _make(
        tmp_path / "rec", "toy_catch_v0", {"player": f"sb3:{catch_zip}"}, {"player": attack}, n=1
    )
    assert read_episode(rec, 0).attack["player"]["attacked"].all()
    checks = verify(rec)
    assert checks[0].match and not checks[0].notes, checks


def test_outcome_is_written_and_checked(tmp_path, cli, catch_rec):
    entry = read_manifest(catch_rec).episodes[0]
    assert entry.outcome is not None and set(entry.outcome) == {"player"}
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["episodes"][1]["outcome"].update(player="bogus"))
    assert_mismatch(cli, rec, 1, 210, "outcome.player", "outcome of 'player'", "'bogus'")


# ---------------------------------------------------------------- the episode must end


def _cut_to_100(arrays):
    """The first 100 steps of the episode (101 observations)."""
    for key in list(arrays):
        if key != "reset_seed":
            arrays[key] = arrays[key][: 101 if key.startswith("obs.") else 100]


def test_episode_cut_short_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_npz(rec, 1, _cut_to_100)
    cut_returns = float(read_episode(rec, 1).rewards["player"].sum())

    def consistent(doc):  # the manifest rewritten to agree: only the game can tell
        entry = doc["episodes"][1]
        entry.update(length=100, returns={"player": cut_returns})
        entry.pop("outcome")

    edit_manifest(rec, consistent)
    assert_mismatch(cli, rec, 1, 100, "length", "did not end the episode", "cut short")


def test_episode_going_on_after_the_end_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)

    def extend(arrays):
        for key in list(arrays):
            if key != "reset_seed":
                arrays[key] = np.concatenate([arrays[key], arrays[key][-1:]])

    edit_npz(rec, 0, extend)
    edit_manifest(rec, lambda m: m["episodes"][0].update(length=211))
    assert_mismatch(cli, rec, 0, 210, "length", "ended the episode here (terminated)")


# ---------------------------------------------------------------- tampered episode files


def _flip_delta_5(arrays):
    arrays["delta.player"][5] = -arrays["delta.player"][5]


def _unattack_3(arrays):
    arrays["attacked.player"][3] = False
    arrays["delta.player"][3] = 0.0


def _as(key, dtype):
    return lambda a: a.update({key: a[key].astype(dtype)})


TAMPERED_FILES = [  # record, episode, edit; then the mismatch: step, field, fragments
    ("catch", 0, _cut_to_100, 100, "length", ["manifest 210 steps, episode file 100"]),
    (
        "catch",
        0,
        _as("action.player", np.float64),
        1,
        "action.player",
        ["dtype float64", "takes int64"],
    ),
    (
        "catch",
        1,
        lambda a: a.update({"action.player": a["action.player"][:, None]}),
        1,
        "action.player",
        ["shape (1,) per step", "takes ()"],
    ),
    (
        "pass",
        0,
        _as("action.runner", np.float64),
        1,
        "action.runner",
        ["dtype float64", "takes float32"],
    ),
    (
        "catch",
        0,
        lambda a: a["action.player"].__setitem__(40, 7),
        41,
        "action.player",
        ["(7) is outside Discrete(3)"],
    ),
    ("catch", 0, _flip_delta_5, 6, "delta.player", ["delta of 'player' differs"]),
    (
        "catch",
        0,
        _as("clean_action.player", np.float64),
        1,
        "clean_action.player",
        ["dtype float64"],
    ),
    (
        "catch",
        0,
        lambda a: a["attacked.player"].__setitem__(3, False),
        4,
        "attacked.player",
        ["attacked flag of 'player' is False"],
    ),
    ("catch", 0, _unattack_3, 4, "delta.player", ["delta of 'player' differs"]),
]


@pytest.mark.parametrize(
    "which, episode, edit, step, field, fragments",
    TAMPERED_FILES,
    ids=[
        "cut_in_the_file_only",
        "float_actions_of_a_discrete_game",
        "reshaped_actions",
        "float64_actions_of_a_float32_game",
        "action_outside_the_space",
        "edited_delta_within_budget",
        "float_clean_actions",
        "edited_attacked_flag",
        "attacked_flag_with_zero_delta",
    ],
)
def test_tampered_episode_file_fails(
    request, tmp_path, cli, which, episode, edit, step, field, fragments
):
    rec = _copy(request.getfixturevalue(f"{which}_rec"), tmp_path)
    edit_npz(rec, episode, edit)
    assert_mismatch(cli, rec, episode, step, field, *fragments)


# ---------------------------------------------------------------- actions: exact dtype, shape


def test_action_nudged_by_one_ulp_fails(tmp_path, pass_rec):
    rec = _copy(pass_rec, tmp_path)

    def nudge(arrays):
        a = arrays["action.blocker"]
        a[5, 0] = np.nextafter(a[5, 0], np.float32(2))

    edit_npz(rec, 1, nudge)
    check = {c.index: c for c in verify(rec)}[1]
    assert not check.match and check.first_mismatch == 6, check
    assert check.field in ("action.blocker", "obs.runner", "obs.blocker"), check


def test_edited_victim_action_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    episode = read_episode(catch_rec, 0)
    # a step where the ball is far from landing: another action changes nothing visible
    # for a while, yet it is not the victim's action on clean + δ
    t = 3
    other = (int(episode.actions["player"][t]) + 1) % 3
    edit_npz(rec, 0, lambda a: a["action.player"].__setitem__(t, other))
    check = {c.index: c for c in verify(rec)}[0]
    assert not check.match and check.first_mismatch == t + 1
    assert check.field in ("action.player", "obs.player")


# ---------------------------------------------------------------- derived quantities


def test_edited_reward_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    episode = read_episode(catch_rec, 1)
    recorded = float(episode.rewards["player"][100])
    edit_npz(rec, 1, lambda a: a["reward.player"].__setitem__(100, recorded - 1.0))
    detail = f"reward of 'player' differs (recorded {recorded - 1.0!r}, simulated {recorded!r})"
    assert_mismatch(cli, rec, 1, 101, "reward.player", detail)


def test_delta_over_budget_fails_even_without_the_victim(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["policies"]["player"].update(path="/nonexistent/v.zip"))
    edit_npz(rec, 0, lambda a: a["delta.player"].__setitem__(8, a["delta.player"][8] * 2))
    assert_mismatch(cli, rec, 0, 9, "delta.player", "outside the attack's budget", "ε=0.3")


def test_edited_clean_action_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    recorded = int(read_episode(catch_rec, 1).attack["player"]["clean_action"][10])
    other = (recorded + 1) % 3
    edit_npz(rec, 1, lambda a: a["clean_action.player"].__setitem__(10, other))
    detail = f"clean action of 'player' differs (recorded {other}, re-derived {recorded})"
    assert_mismatch(cli, rec, 1, 11, "clean_action.player", detail)


def test_edited_manifest_returns_fail(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    recorded = read_manifest(catch_rec).entry(1).returns["player"]
    edit_manifest(rec, lambda m: m["episodes"][1]["returns"].update(player=recorded + 2.0))
    detail = f"(recorded {recorded + 2.0!r}, simulated {recorded!r})"
    assert_mismatch(cli, rec, 1, 210, "returns.player", detail)


def test_edited_reset_seed_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["episodes"][0].update(reset_seed=12345))
    assert_mismatch(cli, rec, 0, 0, "reset_seed", "manifest 12345")
    edit_npz(rec, 0, lambda a: a.update(reset_seed=np.asarray(12345, dtype=np.int64)))
    assert_mismatch(cli, rec, 0, 0, "reset_seed", "derived from seed 11 and index 0")


# ---------------------------------------------------------------- the manifest's policies, attacks


def _set_policy(seat, spec):
    return lambda m: m["policies"].update({seat: reference(spec).to_json()})


TAMPERED_MANIFESTS = [  # record, edit of its JSON; then the mismatch: step, field, fragments
    (
        "catch",
        lambda m: m["policies"]["player"].update(sha256="0" * 64),
        0,
        "policies.player.sha256",
        ["the manifest records 0000"],
    ),
    ("catch", _set_policy("player", "random"), 1, "policies.player", ["fgsm attack needs"]),
    (
        "pass",
        lambda m: m["policies"]["blocker"].update(kind="zero"),
        0,
        "policies.blocker.kind",
        ["of kind 'random'"],
    ),
    ("pass", _set_policy("blocker", "zero"), 1, "action.blocker", ["re-derived [0.0, 0.0]"]),
    (
        "pass",
        lambda m: m.update(deterministic=True),
        1,
        "action.runner",
        ["action of 'runner' differs"],
    ),
]


@pytest.mark.parametrize(
    "which, edit, step, field, fragments",
    TAMPERED_MANIFESTS,
    ids=[
        "policy_file_with_another_sha256",
        "policy_edited_to_random",
        "policy_kind_edited",
        "opponent_edited_to_zero",
        "deterministic_flag_edited",
    ],
)
def test_tampered_manifest_fails(request, tmp_path, cli, which, edit, step, field, fragments):
    rec = _copy(request.getfixturevalue(f"{which}_rec"), tmp_path)
    edit_manifest(rec, edit)
    assert_mismatch(cli, rec, 0, step, field, *fragments)


def test_policy_path_that_is_no_file_is_not_read(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    os.mkfifo(tmp_path / "fifo")  # opening it would block for ever
    for path in ("/dev/zero", str(tmp_path / "fifo")):
        edit_manifest(rec, lambda m, path=path: m["policies"]["player"].update(path=path))
        assert_mismatch(cli, rec, 0, 0, "policies.player.path", "is not a policy file")


def test_policy_swapped_for_another_file_fails(tmp_path, cli, catch_rec, runner_zip):
    rec = _copy(catch_rec, tmp_path)
    other = reference(f"sb3:{runner_zip}").to_json()  # a real file, its real sha256
    edit_manifest(rec, lambda m: m["policies"].update(player=other))
    assert_mismatch(cli, rec, 0, 1, "policies.player", "cannot have played this record")


def test_edited_attack_fails(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["attacks"].update(player="pgd:eps=0.3,steps=2"))
    assert_mismatch(cli, rec, 0, 1, "delta.player", "delta of 'player' differs")
    edit_manifest(rec, lambda m: m["attacks"].update(player="fgsm:eps=0.1"))
    assert_mismatch(cli, rec, 0, 1, "delta.player", "outside the attack's budget")
    edit_manifest(rec, lambda m: m.update(attacks={}))
    assert_mismatch(cli, rec, 0, 0, "attacks", "δ recorded for ['player']")


def test_missing_policy_file_is_said_not_passed_silently(tmp_path, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["policies"]["player"].update(path="/nonexistent/v.zip"))
    checks = verify(rec)
    assert all(c.match for c in checks)
    for c in checks:
        assert len(c.notes) == 1
        assert "policy file of 'player' (/nonexistent/v.zip) is unavailable" in c.notes[0]
        assert "not re-derived" in c.notes[0]
    # the command says so, under each episode
    result = subprocess.run(
        [sys.executable, "-m", "arena.cli", "replay", str(rec), "--verify"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("verified") == 2
    warned = [ln for ln in result.stdout.splitlines() if "note:" in ln and "is unavailable" in ln]
    assert len(warned) == 2 and "episode 0:" in warned[0] and "episode 1:" in warned[1]


def test_unknown_determinism_is_said(tmp_path, pass_rec):
    rec = _copy(pass_rec, tmp_path)
    edit_manifest(rec, lambda m: m.pop("deterministic"))
    checks = verify(rec)
    assert all(c.match for c in checks)
    assert any("does not say whether they were sampled" in n for c in checks for n in c.notes)


# ---------------------------------------------------------------- paths stay inside


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("../x/episode_00000.npz", "leaves the record directory"),
        ("sub/../../x/episode_00000.npz", "leaves the record directory"),
        ("/etc/passwd", "is an absolute path"),
        ("episode_00000.npz\x00.txt", "contains a NUL byte"),
        ("", "must be a non-empty file name"),
        ("..\\x\\episode_00000.npz", "leaves the record directory"),
    ],
)
def test_episode_file_names_stay_inside(tmp_path, cli, monkeypatch, name, fragment):
    rec = _copy(GOLDEN, tmp_path, "rec")
    outside = tmp_path / "x"
    outside.mkdir()
    shutil.copy(GOLDEN / "episode_00000.npz", outside / "episode_00000.npz")
    edit_manifest(rec, lambda m: m["episodes"][0].update(file=name))
    opened = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: opened.append(a) or real_load(*a, **k))
    with pytest.raises(RecordError, match="episodes\\[0\\].file"):
        read_manifest(rec)
    for args in (("replay", rec, "--verify"), ("replay", rec)):
        assert_one_line_error(cli(*args), "episodes[0].file", fragment)
    assert opened == []


def test_absolute_path_to_the_records_own_file_is_refused(tmp_path, cli):
    rec = _copy(GOLDEN, tmp_path)
    edit_manifest(rec, lambda m: m["episodes"][0].update(file=str(rec / "episode_00000.npz")))
    assert_one_line_error(cli("replay", rec, "--verify"), "is an absolute path")


def test_symlink_out_of_the_record_is_refused(tmp_path, cli, monkeypatch):
    rec = _copy(GOLDEN, tmp_path)
    outside = tmp_path / "elsewhere.npz"
    shutil.copy(rec / "episode_00001.npz", outside)
    (rec / "episode_00001.npz").unlink()
    os.symlink(outside, rec / "episode_00001.npz")
    opened = []
    monkeypatch.setattr(np, "load", lambda *a, **k: opened.append(a))
    assert_one_line_error(
        cli("replay", rec, "--verify"), "episodes[1].file", "resolves outside the record"
    )
    assert opened == []


def test_symlink_inside_the_record_is_fine(tmp_path):
    rec = _copy(GOLDEN, tmp_path)
    (rec / "data").mkdir()
    (rec / "episode_00001.npz").rename(rec / "data" / "one.npz")
    os.symlink("data/one.npz", rec / "episode_00001.npz")
    assert all(c.match for c in verify(rec))


# ---------------------------------------------------------------- malformed records: exit 2


def _set(path: str, value):
    def edit(manifest):
        target = manifest
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if isinstance(target, list) else last] = value

    return edit


_DELETE = object()

MALFORMED = [
    ("episodes", [1, 2], "episodes[0] must be an object"),
    ("episodes", ["episode_00000.npz"], "episodes[0] must be an object"),
    ("episodes", 3, "'episodes' must be a non-empty list"),
    ("episodes", [], "'episodes' must be a non-empty list"),
    ("episodes.0.file", _DELETE, "episodes[0] lacks 'file'"),
    ("episodes.0.comment", "hi", "unknown key 'comment'"),
    ("episodes.0.index", True, "episodes[0].index must be an integer >= 0"),
    ("episodes.1.index", 0, "repeats index 0"),
    ("episodes.1.file", "episode_00000.npz", "is also episodes[0]'s"),
    ("episodes.0.index", "0", "episodes[0].index must be an integer"),
    ("episodes.0.reset_seed", -5, "episodes[0].reset_seed must be an integer >= 0"),
    ("episodes.0.reset_seed", 1.5, "episodes[0].reset_seed must be an integer"),
    ("episodes.0.length", 0, "episodes[0].length must be an integer >= 1"),
    ("episodes.0.returns", {"runner": 1.0}, "episodes[0].returns must give a number"),
    ("episodes.0.returns.runner", "1", "episodes[0].returns.runner must be a number"),
    ("episodes.0.outcome", {"runner": 1, "blocker": 2}, "outcome values must be strings"),
    ("seed", -1, "'seed' must be an integer >= 0"),
    ("seed", "7", "'seed' must be an integer >= 0"),
    ("workers", 0, "'workers' must be an integer >= 1"),
    ("seats", ["runner"], "'seats' lacks seat 'blocker'; toy_pass_v0 has seats runner, blocker"),
    ("seats", ["runner", "blocker", "ref"], "'seats' has unknown seat 'ref'"),
    ("seats", "runner", "'seats' must be a non-empty list"),
    ("seats", ["runner", "runner"], "lists a seat twice"),
    ("env", 5, "'env' must be an env id string"),
    ("env", "toy_gone_v9", "unknown env id 'toy_gone_v9'"),
    ("env_kwargs", [], "'env_kwargs' must be an object"),
    ("deterministic", "yes", "'deterministic' must be true, false"),
    ("policies", ["random"], "'policies' must be an object"),
    ("policies.referee", "random", "'policies' names unknown seat 'referee'"),
    ("policies.runner.spec", 3, "policies.runner.spec must be a non-empty string"),
    ("policies.runner.sha256", "abc", "a path without a sha256 or vice versa"),
    ("attacks.runner", 0.1, "attacks.runner must be an attack spec string"),
    ("attacks.referee", "fgsm", "'attacks' names unknown seat 'referee'"),
    ("schema_version", "1", "schema_version '1' is not supported"),
    ("schema_version", 3, "schema_version 3 is newer than this arena supports"),
    ("schema_version", _DELETE, "schema_version None is not supported"),
]


@pytest.mark.parametrize("path, value, fragment", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_manifest_is_one_line_exit_2(tmp_path, cli, path, value, fragment):
    rec = _copy(GOLDEN, tmp_path)
    edit_manifest(rec, _set(path, value))
    for args in (("replay", rec, "--verify"), ("replay", rec)):
        assert_one_line_error(cli(*args), fragment)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2, 3]", "the manifest must be a JSON object"),
        ("null", "the manifest must be a JSON object"),
        ("\xff\xfe", "is not valid JSON"),
        ("[" * 100_000, "is not valid JSON"),
    ],
)
def test_unparseable_manifest_is_one_line_exit_2(tmp_path, cli, text, fragment):
    rec = _copy(GOLDEN, tmp_path)
    (rec / "manifest.json").write_bytes(text.encode("latin-1"))
    assert_one_line_error(cli("replay", rec, "--verify"), fragment)


def test_missing_episode_file_is_one_line_exit_2(tmp_path, cli):
    rec = _copy(GOLDEN, tmp_path)
    (rec / "episode_00001.npz").unlink()
    assert_one_line_error(cli("replay", rec, "--verify"), "episode_00001.npz is missing")
    assert_one_line_error(cli("replay", rec, "--episode", "0"), "episode_00001.npz is missing")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda a: a.update(reset_seed=np.asarray(-3)), "reset_seed must be a non-negative"),
        (lambda a: a.update(reset_seed=np.asarray([1, 2])), "reset_seed must be a non-negative"),
        (lambda a: a.update(reset_seed=np.asarray(1.5)), "reset_seed must be a non-negative"),
        (lambda a: a.pop("obs.blocker"), "seat 'blocker' has no obs.blocker array"),
        (
            lambda a: [a.pop(k) for k in list(a) if k.endswith(".blocker")],
            "seat 'blocker' has no obs.blocker array",
        ),
        (lambda a: a.update({"extra.runner": np.zeros(3)}), "unknown array 'extra.runner'"),
        (lambda a: a.update({"obs.referee": np.zeros(3)}), "seat 'referee'"),
        (
            lambda a: a.update({"delta.runner": np.zeros((60, 9), np.float32)}),
            "attack arrays need delta, clean_action, attacked; missing clean_action, attacked",
        ),
        (lambda a: a.update({"reward.runner": np.zeros((60, 1))}), "reward.runner must be 1-D"),
        (lambda a: a.update({"reward.runner": np.zeros(59)}), "60 rewards expected"),
        (lambda a: a.update({"reward.runner": np.asarray(["x"] * 60)}), "must be numbers"),
        (lambda a: a.update({"obs.runner": np.asarray(3.0)}), "has no step axis"),
        (lambda a: a.update({"action.runner": np.zeros((0, 2))}), "at least one step"),
    ],
)
def test_malformed_episode_file_is_one_line_exit_2(tmp_path, cli, edit, fragment):
    rec = _copy(GOLDEN, tmp_path)
    edit_npz(rec, 0, edit)
    assert_one_line_error(cli("replay", rec, "--verify"), "episode 0", fragment)


def test_npy_instead_of_npz_is_one_line_exit_2(tmp_path, cli):
    rec = _copy(GOLDEN, tmp_path)
    with open(rec / "episode_00000.npz", "wb") as fh:
        np.save(fh, np.zeros(3))
    assert_one_line_error(cli("replay", rec, "--verify"), "is not an npz archive")


def test_unparseable_attack_in_manifest_is_one_line_exit_2(tmp_path, cli, catch_rec):
    rec = _copy(catch_rec, tmp_path)
    edit_manifest(rec, lambda m: m["attacks"].update(player="warp:eps=1"))
    assert_one_line_error(cli("replay", rec, "--verify"), "attacks.player", "unknown attack")
