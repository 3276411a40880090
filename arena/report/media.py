"""The page's pictures and videos: embedded as ``data:`` URIs, or beside the page.

A report is one ``index.html`` that needs nothing else: media are inside it as
``data:`` URIs; only a file larger than ``INLINE_MAX_BYTES`` stays next to the page
(linked by a relative path, and a note says to keep the two together).
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

INLINE_MAX_BYTES = 48 * 2**20
"""Larger media files go next to the page (relative link) instead of inside it."""
MAX_MEDIA_BYTES = 512 * 2**20
"""A picture or video a run saved is not shown above this size."""
MIME = {".png": "image/png", ".gif": "image/gif", ".mp4": "video/mp4", ".webm": "video/webm"}


class MediaError(OSError):
    """A run's media file that cannot be copied onto the page (a link, too large...)."""


def copy_media(src: Path, dst: Path, limit: int | None = None) -> None:
    """Copy ``src`` to ``dst`` if it is a regular file (never through a link, never a
    device or a pipe) of at most ``limit`` bytes (default ``MAX_MEDIA_BYTES``)."""
    limit = MAX_MEDIA_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(src, flags)
    except OSError as exc:
        raise MediaError(f"{src.name}: not read (a link, or {exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise MediaError(f"{src.name}: not read (not a regular file)")
        if info.st_size > limit:
            raise MediaError(f"{src.name}: not shown ({info.st_size:,} bytes; at most {limit:,})")
        copied = 0
        with open(dst, "xb") as out:
            while chunk := fh.read(1 << 20):
                copied += len(chunk)
                if copied > limit:
                    raise MediaError(f"{src.name}: not shown (it grew past {limit:,} bytes)")
                out.write(chunk)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class Picture:
    src: str
    caption: str


@dataclass(frozen=True)
class Clip:
    src: str
    caption: str
    mime: str = "video/mp4"


@dataclass
class PageFiles:
    """The directory the page is written in, with the names given out in it."""

    out: Path
    notes: list[str] = field(default_factory=list)
    root: Path | None = None
    """The reported directory: what a sample episode may load lies inside it (or in
    the shared data directories, see ``arena.report.confine``)."""
    count: int = 0
    videos: int = 0
    """Episode videos made so far (at most ``episodes.MAX_VIDEOS`` a page)."""

    def name(self, stem: str, suffix: str) -> Path:
        """A fresh path in the page's directory."""
        self.count += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60]
        return self.out / f"{self.count:03d}_{safe}{suffix}"

    def embed(self, path: Path) -> str:
        """The ``src`` of a media file in the page's directory: a ``data:`` URI (and the
        file removed) or, above ``INLINE_MAX_BYTES``, its name (the file stays)."""
        size = path.stat().st_size
        if size > INLINE_MAX_BYTES:
            self.notes.append(
                f"{path.name} ({size / 2**20:.0f} MiB) is not embedded: it lies next to "
                f"index.html; keep the two together"
            )
            return path.name
        src = data_uri(path.read_bytes(), MIME[path.suffix.lower()])
        path.unlink()
        return src

    def picture(self, png: bytes, caption: str) -> Picture:
        return Picture(data_uri(png, MIME[".png"]), caption)
