"""``episode_video``: re-simulate one recorded episode and paint a frame per step.

The painter depends on what the record and the game hold (``painter_for``); the
frames go through ``AtomicVideoWriter``, so the file appears only when the episode
re-simulated exactly (unless ``verify=False``) and the encoder finished. Verified or
not, a record whose arrays the game cannot step or the painter cannot draw
(``arena.replay.structure.check_playable``) is refused before the first frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from arena.recording import EpisodeRecord, RecordManifest, read_episode, read_manifest
from arena.replay import EpisodeCheck, make_env, resimulate
from arena.replay.structure import check_playable
from arena.video.follow_camera import FollowCameraPainter
from arena.video.pixel_attack import PixelAttackPainter, attacked_pixel_seat
from arena.video.scene import ScenePainter
from arena.video.writer import GIF_MAX_FPS, AtomicVideoWriter, VideoError, check_video_path
from envs.paint import FilmedScene

HOLD_SECONDS = 1.5
"""How long the last frame (with the outcome) stays on screen."""


@dataclass(frozen=True)
class VideoResult:
    """What ``episode_video`` wrote."""

    path: Path
    episode: int
    """The episode's index in the match (not its position in the record)."""
    steps: int
    frames: int
    fps: float
    seconds: float
    """Wall-clock time of re-simulation, drawing and encoding together."""
    layout: str
    """``pixel-attack``, ``mujoco`` or ``scene``."""
    verified: bool
    """True if the re-simulation was checked against the record and matched."""
    notes: tuple[str, ...] = ()
    """What the video leaves out and why (e.g. no probabilities: victim not loadable)."""


class Painter(Protocol):
    """Draws the frame of step ``t`` (0: after the reset) from the env at that step."""

    layout: str
    notes: tuple[str, ...]

    def frame(self, env: Any, t: int) -> np.ndarray: ...

    def close(self) -> None: ...


class Watched:
    """Forwards to the env and keeps the last infos (the outcome is in them)."""

    def __init__(self, env: Any):
        self.env = env
        self.infos: dict[str, Any] = {}

    def reset(self, **kwargs: Any):
        obs, infos = self.env.reset(**kwargs)
        self.infos = dict(infos)
        return obs, infos

    def step(self, actions: dict[str, Any]):
        out = self.env.step(actions)
        self.infos = dict(out[4])
        return out

    def close(self) -> None:
        """Closed by ``episode_video`` once the last frame is drawn."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def outcomes(self) -> dict[str, str]:
        return {s: str(i["outcome"]) for s, i in self.infos.items() if "outcome" in i}


def play(record: EpisodeRecord, env: Any, on_step: Callable[[Any, int], None]) -> EpisodeCheck:
    """Step the record's actions without checking anything (``verify=False``)."""
    seats = list(record.actions)
    env.reset(seed=record.reset_seed)
    on_step(env, 0)
    for t in range(record.length):
        _, _, term, trunc, _ = env.step({s: record.actions[s][t] for s in seats})
        on_step(env, t + 1)
        if (any(term.values()) or any(trunc.values())) and t + 1 < record.length:
            return EpisodeCheck(record.index, t + 1, False, t + 1, "episode ended early")
    return EpisodeCheck(record.index, record.length, True)


def painter_for(manifest: RecordManifest, record: EpisodeRecord, env: Any) -> Painter:
    """Pixel attack if a seat was; else the game filmed if it can be; else its render()."""
    seat = attacked_pixel_seat(record)
    if seat is not None:
        return PixelAttackPainter(manifest, record, seat, env)
    if isinstance(env, FilmedScene):
        return FollowCameraPainter(manifest, record, env)
    return ScenePainter(manifest, record)


def episode_video(
    record_dir: str | Path,
    out: str | Path,
    *,
    episode: int = 0,
    fps: float | None = None,
    verify: bool = True,
) -> VideoResult:
    """Re-simulate episode ``episode`` (0-based position) of a record into a video.

    ``fps`` defaults to the game's ``render_fps`` (at most 50 for a gif); one frame per
    step, then the last frame held for 1.5 s. With ``verify`` (default) a re-simulation
    that differs from the record raises ``VideoError`` and nothing is written.
    """
    t0 = time.perf_counter()
    out = check_video_path(out)
    manifest = read_manifest(record_dir)
    record = read_episode(record_dir, episode)
    env = Watched(make_env(manifest, render_mode="rgb_array"))
    painter: Painter | None = None
    try:
        if fps is None:
            fps = float(env.metadata.get("render_fps", 30))
            if out.suffix.lower() == ".gif":
                fps = min(fps, float(GIF_MAX_FPS))
        bad = check_playable(record, env)  # verified or not: nothing unplayable is painted
        if bad is not None:
            raise VideoError(
                f"episode {record.index} cannot be played back: step {bad.step}: "
                f"{bad.detail}; no video written"
            )
        painter = painter_for(manifest, record, env)
        frame = painter.frame
        with AtomicVideoWriter(out, fps=fps) as writer:

            def on_step(e: Any, t: int) -> None:
                writer.append(frame(e, t))

            if verify:
                check = resimulate(manifest, record, env=env, on_step=on_step)
                if not check.match:
                    raise VideoError(
                        f"episode {record.index}: re-simulation diverged from the record at "
                        f"step {check.first_mismatch} ({check.detail}); no video written "
                        f"(--no-verify renders it anyway)"
                    )
            else:
                check = play(record, env, on_step)
            if check.steps == record.length and writer.last_frame is not None:
                for _ in range(round(HOLD_SECONDS * fps)):
                    writer.append(writer.last_frame)
    finally:
        if painter is not None:
            painter.close()
        env.env.close()
    return VideoResult(
        path=out,
        episode=record.index,
        steps=record.length,
        frames=writer.frames,
        fps=float(fps),
        seconds=time.perf_counter() - t0,
        layout=painter.layout,
        verified=verify and check.match,
        notes=painter.notes,
    )
