"""Encoding frames to a video file that appears whole or not at all.

mp4 is H.264 through imageio-ffmpeg's ffmpeg, gif is Pillow's, both through imageio.
Frames go to a temporary file beside the target (``arena.io.atomic_path``), which
becomes the target only when the writer closes without an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from arena.errors import ArenaError
from arena.io import atomic_path
from arena.video.canvas import fit

VIDEO_SUFFIXES = (".mp4", ".gif")
GIF_MAX_FPS = 50
"""GIF frame delays are in 1/100 s and browsers slow down delays under 2/100 s."""


class VideoError(ArenaError):
    """A video that cannot be made: bad path or extension, or a diverging re-simulation."""


def check_video_path(path: str | Path) -> Path:
    """``path`` if a video can be written there, else ``VideoError`` saying why."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(
            f"unsupported video extension {path.suffix or '(none)'!r} in {path}; "
            f"valid: {', '.join(VIDEO_SUFFIXES)}"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VideoError(f"the directory of {path} does not exist: {parent}")
    if path.is_dir():
        raise VideoError(f"{path} is a directory; give a file name ending in {suffix}")
    return path


def open_encoder(path: Path, *, fps: float) -> Any:
    """imageio's writer for ``path``, by its suffix (``.mp4`` or ``.gif``)."""
    import imageio.v2 as iio

    if path.suffix.lower() == ".mp4":
        return iio.get_writer(
            str(path),
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            quality=8,
            macro_block_size=2,
            ffmpeg_log_level="error",
            # veryfast: 2.3x less encoder CPU than x264's default, about the same size
            output_params=["-movflags", "+faststart", "-preset", "veryfast"],
        )
    return iio.get_writer(str(path), format="GIF", mode="I", duration=1000.0 / fps, loop=0)


class AtomicVideoWriter:
    """Append frames; on success the file is renamed into place, on error removed.

    All frames take the size of the first one (padded to even sides for H.264).
    """

    def __init__(self, path: str | Path, *, fps: float):
        self.path = check_video_path(path)
        self.fps = float(fps)
        if not self.fps > 0:
            raise VideoError(f"fps must be > 0, got {fps}")
        if self.path.suffix.lower() == ".gif" and self.fps > GIF_MAX_FPS:
            raise VideoError(f"a gif plays at most {GIF_MAX_FPS} fps, got {fps:g}; use .mp4")
        self.frames = 0
        self.last_frame: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self._encoder: Any = None
        self._writing: contextlib.AbstractContextManager[AtomicVideoWriter] | None = None

    def __enter__(self) -> AtomicVideoWriter:
        self._writing = self._write()
        return self._writing.__enter__()

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        assert self._writing is not None
        return self._writing.__exit__(exc_type, exc, tb)

    @contextlib.contextmanager
    def _write(self) -> Iterator[AtomicVideoWriter]:
        with atomic_path(self.path) as tmp:
            self._encoder = open_encoder(tmp, fps=self.fps)
            try:
                yield self
            finally:
                self._encoder.close()
            if self.frames == 0:
                raise VideoError(f"no frames to write to {self.path}")

    def append(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self._shape is None:
            h, w = frame.shape[:2]
            self._shape = (h + h % 2, w + w % 2)
        frame = fit(frame, self._shape)
        self._encoder.append_data(frame)
        self.last_frame = frame
        self.frames += 1
