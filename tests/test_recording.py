"""Episode records: format, atomic writes, replay by re-simulation, the golden record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agents.specs import reference
from arena.match import run_match
from arena.recording import (
    EpisodeRecord,
    RecordError,
    RecordManifest,
    match_manifest,
    read_episode,
    read_manifest,
    write_record,
)
from arena.replay import verify

GOLDEN = Path(__file__).parent / "data" / "golden_toy_pass"


def _record(tmp_path, n=2, env="toy_pass_v0", policies=None, attacks=None):
    policies = policies or {"runner": "random", "blocker": "random"}
    _, records = run_match(
        env, policies, n_episodes=n, seed=5, record=True, deterministic=False, attacks=attacks
    )
    manifest = match_manifest(env, policies, seed=5, attacks=attacks, deterministic=False)
    return write_record(tmp_path / "rec", manifest, records), records


def test_roundtrip_and_exact_replay(tmp_path):
    path, records = _record(tmp_path)
    manifest = read_manifest(path)
    assert manifest.SCHEMA_VERSION == 1 and len(manifest.episodes) == 2
    assert manifest.policies["runner"] == reference("random")
    on_disk = json.loads((path / "manifest.json").read_text())
    assert RecordManifest.from_json(on_disk) == manifest  # the file is the type, round trip
    back = read_episode(path, 1)
    for seat in records[1].actions:
        assert np.array_equal(back.observations[seat], records[1].observations[seat])
        assert np.array_equal(back.actions[seat], records[1].actions[seat])
    assert all(check.match for check in verify(path))


def test_tampered_record_fails_verification(tmp_path):
    path, records = _record(tmp_path, n=1)
    rec = records[0]
    actions = {s: a.copy() for s, a in rec.actions.items()}
    actions["runner"][0] = -actions["runner"][0] + 0.5
    tampered = EpisodeRecord(rec.index, rec.reset_seed, rec.observations, actions, rec.rewards)
    path2 = write_record(tmp_path / "tampered", read_manifest(path), [tampered])
    check = verify(path2)[0]
    assert not check.match and check.first_mismatch == 1 and "runner" in check.detail


def test_pixel_record_with_attack_arrays(tmp_path, catch_zip):
    path, _ = _record(
        tmp_path,
        n=1,
        env="toy_catch_v0",
        policies={"player": f"sb3:{catch_zip}"},
        attacks={"player": "noise:eps=0.2"},
    )
    episode = read_episode(path, 0)
    assert episode.observations["player"].dtype == np.uint8
    attack = episode.attack["player"]
    assert attack["delta"].shape == (episode.length, 1, 24, 24)
    assert attack["delta"].dtype == np.float32
    assert np.abs(attack["delta"]).max() <= 0.2 + 1e-6
    assert attack["attacked"].all() and attack["clean_action"].shape == (episode.length,)
    assert verify(path)[0].match


def test_golden_record_still_reads_and_replays():
    # Guards the on-disk format: made once by
    # arena evaluate toy_pass_v0 --policy runner=random --policy blocker=random --stochastic \
    #   --episodes 2 --seed 7 --record tests/data/golden_toy_pass --no-save
    manifest = read_manifest(GOLDEN)
    assert manifest.env == "toy_pass_v0" and manifest.deterministic is False
    assert manifest.policies["runner"].spec == "random" and manifest.seed == 7
    ep = read_episode(GOLDEN, 0)
    assert ep.observations["runner"].dtype == np.float32
    assert all(check.match for check in verify(GOLDEN))


def test_shape_invariant_is_checked():
    with pytest.raises(RecordError, match="need 3 observations for 2 actions"):
        EpisodeRecord(0, 0, {"a": np.zeros((2, 1))}, {"a": np.zeros((2, 1))}, {"a": np.zeros(2)})


def test_unknown_schema_truncated_npz_and_bad_index(tmp_path):
    newer = {**json.loads((GOLDEN / "manifest.json").read_text()), "schema_version": 99}
    with pytest.raises(RecordError, match="schema_version 99 is newer than this arena supports"):
        RecordManifest.from_json(newer)
    trunc = tmp_path / "trunc"
    shutil.copytree(GOLDEN, trunc)
    npz = trunc / "episode_00000.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    with pytest.raises(RecordError, match="corrupted or truncated"):
        read_episode(trunc, 0)
    with pytest.raises(RecordError, match=r"out of range; this record has episodes 0..1"):
        read_episode(GOLDEN, 5)
    with pytest.raises(RecordError, match="no record at"):
        read_manifest(tmp_path / "nothing")


def test_write_is_atomic_and_never_overwrites(tmp_path):
    path, records = _record(tmp_path, n=1)
    with pytest.raises(FileExistsError):
        write_record(path, RecordManifest("toy_pass_v0", ("runner", "blocker")), records)

    class Exploding(EpisodeRecord):
        def to_arrays(self):
            raise OSError("disk full")

    r = records[0]
    boom = Exploding(r.index, r.reset_seed, r.observations, r.actions, r.rewards)
    target = tmp_path / "half"
    with pytest.raises(OSError, match="disk full"):
        write_record(target, RecordManifest("toy_pass_v0", ("runner", "blocker")), [boom])
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rec"]


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os

    from arena.io import atomic_directory, write_json_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    with atomic_directory(tmp_path / "d") as d:
        (d / "f").write_text("x")
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask


def test_universal_attack_reads_its_frames_through_the_arena(tmp_path):
    from agents.attacks import AttackSpecError, parse_attack
    from arena.attacks import build_attack, record_frames

    first = read_episode(GOLDEN, 0).observations["runner"][:-1]  # acted on: all but the last
    frames = record_frames(GOLDEN, "runner", None)
    assert len(frames) == 120 and np.array_equal(frames[:60], first)
    assert np.array_equal(record_frames(GOLDEN, "runner", 50), first[:50])
    for seat, words in [
        (None, "has seats runner, blocker; say which with seat=NAME"),
        ("goalie", "unknown seat 'goalie'"),
    ]:
        with pytest.raises(AttackSpecError, match=words):
            record_frames(GOLDEN, seat, 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AttackSpecError, match="no record in .*make one with `arena evaluate"):
        record_frames(tmp_path / "empty", None, 10)
    spec = f"universal:eps=0.1,frames={GOLDEN},seat=runner"
    assert build_attack(spec).read_frames is record_frames
    assert parse_attack(spec).read_frames is None  # agents alone never read a record
