"""``arena replay --video``: layouts, verification, bad input, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, assert_one_line_error, diverged_golden_copy

from arena.match import run_match
from arena.recording import match_manifest, write_record
from arena.video import (
    HOLD_SECONDS,
    SCENE_MIN_WIDTH,
    VideoError,
    canvas,
    episode,
    episode_video,
    pixel_attack,
    scene,
    writer,
)

ASSETS = Path(__file__).resolve().parent.parent / "arena" / "assets"


def make_record(
    directory: Path,
    env_id: str,
    policies: dict[str, str],
    *,
    attacks: dict[str, str] | None = None,
    env_kwargs: dict | None = None,
    episodes: int = 1,
    seed: int = 0,
) -> Path:
    """A record as ``arena evaluate --record`` writes it (shorter games allowed)."""
    _, records = run_match(
        env_id,
        policies,
        n_episodes=episodes,
        seed=seed,
        attacks=attacks,
        env_kwargs=env_kwargs,
        record=True,
    )
    manifest = match_manifest(env_id, policies, seed=seed, attacks=attacks, env_kwargs=env_kwargs)
    return write_record(directory, manifest, records)


@pytest.fixture(scope="module")
def catch_record(tmp_path_factory) -> Path:
    """toy_catch_v0 with 2 balls (~40 steps), the shipped victim under FGSM."""
    return make_record(
        tmp_path_factory.mktemp("rec") / "catch",
        "toy_catch_v0",
        {"player": f"sb3:{ASSETS / 'toy_catch_v0__player.zip'}"},
        attacks={"player": "fgsm:eps=0.1"},
        env_kwargs={"balls": 2},
        episodes=2,
    )


def _frames(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path)  # (n, H, W, 3)


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------- layouts


def test_pixel_attack_video_shows_clean_perturbed_and_magnified_delta(catch_record, tmp_path):
    out = tmp_path / "catch.mp4"
    video = episode_video(catch_record, out, episode=1, fps=20)
    manifest = json.loads((catch_record / "manifest.json").read_text())
    steps = manifest["episodes"][1]["length"]
    assert video.layout == "pixel-attack" and video.verified and video.episode == 1
    assert video.steps == steps
    assert video.frames == steps + 1 + round(HOLD_SECONDS * 20)
    assert video.notes == ()  # the victim loads: the strip shows probabilities
    frames = _frames(out)
    assert frames.shape[0] == video.frames
    h, w = frames.shape[1:3]
    assert w > 2.5 * (h - 70)  # three panels side by side above the text strip
    # the magnified δ panel (right third) is not flat gray while attacked
    panel = frames[steps // 2, 30 : h - 70, 2 * w // 3 + 10 :].astype(int)
    assert panel.std() > 20
    # the strip (bottom) carries text on every frame
    assert (frames[:, h - 60 :, :, :] > 150).any(axis=(1, 2, 3)).all()


def test_probabilities_of_clean_and_attacked_actions(catch_record):
    from arena.recording import read_episode, read_manifest
    from arena.replay import make_env

    manifest = read_manifest(catch_record)
    record = read_episode(catch_record, 0)
    env = make_env(manifest)
    probs, why = pixel_attack.probabilities(manifest, record, "player", env)
    assert why == "" and probs is not None
    assert probs.shape == (record.length, 2)
    assert ((probs > 0) & (probs <= 1)).all()


def test_scene_video_as_gif_for_the_toy_pass_game(tmp_path):
    out = tmp_path / "pass.gif"
    video = episode_video(GOLDEN, out, episode=0)
    assert video.layout == "scene" and video.verified
    assert 0 < video.fps <= 50
    assert video.frames == 60 + 1 + round(HOLD_SECONDS * video.fps)
    from PIL import Image

    durations = []  # Pillow stores the held last frame once, with the summed delay
    with Image.open(out) as gif:
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert len(durations) == 61
    assert sum(durations) == pytest.approx(1000 * video.frames / video.fps)
    assert durations[-1] == pytest.approx(1000 * (1 + HOLD_SECONDS * video.fps) / video.fps)


def test_toy_pass_seats_are_labeled_where_their_bodies_are():
    from arena.recording import read_episode, read_manifest
    from arena.replay import make_env

    manifest = read_manifest(GOLDEN)
    record = read_episode(GOLDEN, 0)
    env = episode.Watched(make_env(manifest, render_mode="rgb_array"))
    painter = episode.painter_for(manifest, record, env)
    assert isinstance(painter, scene.ScenePainter)
    seen = []

    def check(e, t):
        frame = np.asarray(e.render())
        at = scene.seat_pixels(e, frame.shape)
        assert set(at) == {"runner", "blocker"}
        colors = {seat: tuple(int(c) for c in frame[y, x]) for seat, (x, y) in at.items()}
        assert colors == e.seat_colors()  # on each seat's body, in its declared color
        assert colors["runner"] != colors["blocker"]
        seen.append(painter.frame(e, t).shape)

    episode.play(record, env, check)
    env.env.close()
    assert len(set(seen)) == 1 and seen[0][1] >= SCENE_MIN_WIDTH


@pytest.mark.mujoco
def test_mujoco_camera_keeps_both_players_in_view(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    from arena.recording import read_episode, read_manifest
    from arena.replay import make_env
    from arena.video import follow_camera

    rec = make_record(
        tmp_path / "ysnp",
        "you_shall_not_pass_v0",
        {"runner": "random", "blocker": "zero"},
        env_kwargs={"max_steps": 25},
    )
    manifest = read_manifest(rec)
    record = read_episode(rec, 0)
    env = episode.Watched(make_env(manifest, render_mode="rgb_array"))
    painter = episode.painter_for(manifest, record, env)
    assert isinstance(painter, follow_camera.FollowCameraPainter)
    assert set(painter.colors) == {"runner", "blocker"}

    ends = []
    real_outcome_lines = canvas.outcome_lines

    def outcome_lines(outcomes, returns):
        ends.append(dict(outcomes))
        return real_outcome_lines(outcomes, returns)

    def check(e, t):
        painter.frame(e, t)
        shot = painter.shot
        h, w = shot.image.shape[:2]
        for point in e.seat_points().values():  # every torso projects inside the picture
            at = shot.project(point)
            assert at is not None
            assert 0 <= at[0] < w and 0 <= at[1] < h, (t, at)

    monkeypatch.setattr(canvas, "outcome_lines", outcome_lines)
    try:
        episode.play(record, env, check)
    finally:
        painter.close()
        env.env.close()
    # the outcome is drawn once, on the last frame, from the env's final infos
    assert len(ends) == 1 and set(ends[0]) == {"runner", "blocker"}
    assert sorted(ends[0].values()) in (["loss", "win"], ["tie", "tie"], ["loss", "loss"])
    result = episode_video(rec, tmp_path / "ysnp.mp4", fps=10)
    assert result.layout == "mujoco" and result.verified
    assert result.frames == record.length + 1 + round(HOLD_SECONDS * result.fps)


# ---------------------------------------------------------------- the command


def test_cli_replay_video(cli, catch_record, tmp_path):
    result = cli("replay", catch_record, "--video", tmp_path / "v.mp4", "--fps", "25")
    assert result.code == 0, result.err
    assert "pixel-attack layout" in result.out and "verified" in result.out
    assert (tmp_path / "v.mp4").stat().st_size > 1000


def test_divergence_is_refused_unless_no_verify(cli, tmp_path):
    bad = diverged_golden_copy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("replay", bad, "--video", out / "x.mp4")
    assert_one_line_error(result, "diverged from the record at step 4", "--no-verify")
    assert _listing(out) == []  # no video, no temporary file
    result = cli("replay", bad, "--video", out / "x.mp4", "--no-verify")
    assert result.code == 0, result.err
    assert "not verified" in result.out
    assert _listing(out) == ["x.mp4"]


def _edit_manifest(tmp_path: Path, **changes) -> Path:
    rec = tmp_path / "edited"
    shutil.copytree(GOLDEN, rec)
    manifest = json.loads((rec / "manifest.json").read_text())
    manifest.update(changes)
    (rec / "manifest.json").write_text(json.dumps(manifest))
    return rec


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("unknown env", ("record's env is not available", "nope_v0")),
        (
            "newer schema",
            ("schema_version 99 is newer than this arena supports", "schema_version 1"),
        ),
        ("missing directory", ("does not exist",)),
        ("episode out of range", ("episode 7 is out of range", "0..1")),
        ("negative episode", ("episode -1 is out of range",)),
        ("bad extension", ("unsupported video extension", ".mp4, .gif")),
        ("gif too fast", ("a gif plays at most 50 fps",)),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path, case, fragments):
    rec, out, extra = GOLDEN, tmp_path / "v.mp4", []
    if case == "unknown env":
        rec = _edit_manifest(tmp_path, env="nope_v0")
    elif case == "newer schema":
        rec = _edit_manifest(tmp_path, schema_version=99)
    elif case == "missing directory":
        out = tmp_path / "no" / "such" / "v.mp4"
    elif case == "episode out of range":
        extra = ["--episode", "7"]
    elif case == "negative episode":
        extra = ["--episode", "-1"]
    elif case == "bad extension":
        out = tmp_path / "v.avi"
    elif case == "gif too fast":
        out, extra = tmp_path / "v.gif", ["--fps", "60"]
    result = cli("replay", rec, "--video", out, *extra)
    assert_one_line_error(result, *fragments)
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, suffix):
    calls = {"n": 0}
    real = scene.ScenePainter.frame

    def failing(self, env, t):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError("disk full (simulated)")
        return real(self, env, t)

    monkeypatch.setattr(scene.ScenePainter, "frame", failing)
    out = tmp_path / f"v{suffix}"
    with pytest.raises(OSError, match="disk full"):
        episode_video(GOLDEN, out)
    assert calls["n"] == 11
    assert _listing(tmp_path) == []


def test_failed_write_keeps_an_existing_file_whole(tmp_path):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"previous video")
    (tmp_path / "x").mkdir()
    bad = diverged_golden_copy(tmp_path / "x")
    with pytest.raises(VideoError, match="diverged"):
        episode_video(bad, out)
    assert out.read_bytes() == b"previous video"
    assert _listing(tmp_path) == ["v.mp4", "x"]


def test_encoder_failure_on_open_leaves_nothing(tmp_path, monkeypatch):
    def broken(path, *, fps):
        raise RuntimeError("no encoder")

    monkeypatch.setattr(writer, "open_encoder", broken)
    with pytest.raises(RuntimeError, match="no encoder"):
        episode_video(GOLDEN, tmp_path / "v.mp4")
    assert _listing(tmp_path) == []


def test_video_file_mode_follows_umask(tmp_path):
    out = tmp_path / "v.gif"
    episode_video(GOLDEN, out, fps=20)
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def _atari_dir() -> Path | None:
    value = os.environ.get("ARENA_ATARI_DIR")
    path = Path(value) if value else None
    return path if path is not None and (path / "pong_ppo.npz").is_file() else None


@pytest.mark.atari
@pytest.mark.needs_data
@pytest.mark.skipif(
    _atari_dir() is None,
    reason="needs the pretrained Atari victims: set ARENA_ATARI_DIR (e.g. ../shared/atari)",
)
def test_attacked_pong_video_with_probabilities(tmp_path):
    pytest.importorskip("ale_py")
    victim = _atari_dir() / "pong_ppo.npz"  # type: ignore[operator]
    rec = make_record(
        tmp_path / "pong",
        "atari_pong_v0",
        {"player": f"atari:{victim}"},
        attacks={"player": "fgsm:eps=1/255"},
        env_kwargs={"max_episode_steps": 30},
    )
    video = episode_video(rec, tmp_path / "pong.mp4", fps=15)
    assert video.layout == "pixel-attack" and video.verified and video.steps == 30
    assert video.notes == ()  # the victim was loaded: probabilities are in the strip
    assert _frames(tmp_path / "pong.mp4").shape[0] == video.frames
