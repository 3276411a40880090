"""Drawing on frames: colors, text, text strips, seat labels, captions, layout.

Frames are ``(H, W, 3)`` uint8 arrays; text is drawn with OpenCV's Hershey font, which
has ASCII only (``ascii_text`` spells the few Greek letters and arrows out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from arena.recording import EpisodeRecord
from envs.paint import Color

BACKGROUND: Color = (24, 24, 28)
FOREGROUND: Color = (235, 235, 235)
DIM: Color = (160, 160, 160)
RED: Color = (235, 90, 70)
GREEN: Color = (110, 210, 110)
WHITE: Color = (255, 255, 255)

Line = tuple[str, Color]
"""One line of a strip and its color."""

LINE_HEIGHT = 20


def ascii_text(text: str) -> str:
    """Hershey fonts draw ASCII only."""
    for a, b in (("δ", "delta"), ("ε", "eps"), ("±", "+/-"), ("∞", "inf"), ("→", "->")):
        text = text.replace(a, b)
    return text.encode("ascii", "replace").decode()


def text(
    img: np.ndarray,
    line: str,
    xy: tuple[int, int],
    *,
    color: Color = FOREGROUND,
    scale: float = 0.45,
) -> None:
    import cv2

    cv2.putText(img, ascii_text(line), xy, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def text_width(line: str, scale: float = 0.45) -> int:
    import cv2

    (w, _), _ = cv2.getTextSize(ascii_text(line), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return int(w)


def blank(height: int, width: int) -> np.ndarray:
    """A frame of the background color."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    return out


def strip(width: int, lines: list[Line], n_lines: int) -> np.ndarray:
    """A text strip of ``n_lines`` lines (a fixed height, so every frame has one size)."""
    out = blank(8 + LINE_HEIGHT * n_lines, width)
    for i, (line, color) in enumerate(lines[:n_lines]):
        text(out, line, (8, 4 + LINE_HEIGHT * (i + 1) - 6), color=color)
    return out


def label(img: np.ndarray, seat: str, at: tuple[int, int], color: Color) -> None:
    """The seat's name in white on a box of ``color``, its baseline at ``at`` (kept
    inside the frame)."""
    import cv2

    h, w = img.shape[:2]
    tw = text_width(seat, 0.5)
    x = int(np.clip(at[0] - tw // 2, 4, w - tw - 8))
    y = int(np.clip(at[1], 20, h - 4))
    cv2.rectangle(img, (x - 4, y - 16), (x + tw + 4, y + 5), color, -1)
    text(img, seat, (x, y), color=WHITE, scale=0.5)


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Each pixel as a ``k`` x ``k`` block."""
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1) if k > 1 else img


def fit(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pad (with the background color) or crop ``frame`` to ``shape``."""
    if frame.shape[:2] == shape:
        return frame
    out = blank(*shape)
    fh, fw = min(shape[0], frame.shape[0]), min(shape[1], frame.shape[1])
    out[:fh, :fw] = frame[:fh, :fw]
    return out


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Rows one under the other, padded on the right to the widest."""
    width = max(r.shape[1] for r in rows)
    return np.concatenate([fit(r, (r.shape[0], width)) for r in rows], axis=0)


def returns_until(record: EpisodeRecord, t: int) -> dict[str, float]:
    """Each seat's return over the first ``t`` steps."""
    return {s: float(r[:t].sum()) for s, r in record.rewards.items()}


def outcome_lines(outcomes: Mapping[str, str], returns: Mapping[str, float]) -> list[Line]:
    """Two lines: who won (from the env's final infos) and each seat's return."""
    color = {"win": GREEN, "loss": RED}
    parts = "   ".join(f"{s} {outcomes.get(s, '?')} ({r:+.2f})" for s, r in returns.items())
    if not outcomes:
        return [("episode over", FOREGROUND), (parts, FOREGROUND)]
    if len(outcomes) == 1:
        ((seat, result),) = outcomes.items()
        return [(f"outcome: {seat} {result}", color.get(result, FOREGROUND)), (parts, FOREGROUND)]
    winners = [s for s, o in outcomes.items() if o == "win"]
    head = f"outcome: {' and '.join(winners)} won" if winners else "outcome: tie (no winner)"
    return [(head, GREEN if winners else FOREGROUND), (parts, FOREGROUND)]


@dataclass(frozen=True)
class Caption:
    """The strip over a game's picture: step, each seat's return (``digits``
    decimals), the attacked seats and, on the last frame, the outcome."""

    env_id: str
    record: EpisodeRecord
    attacks: Mapping[str, str]
    digits: int = 2

    def above(self, picture: np.ndarray, t: int, outcomes: Mapping[str, str]) -> np.ndarray:
        """``picture`` under the caption of step ``t``."""
        rec = self.record
        returns = returns_until(rec, t)
        lines: list[Line] = [
            (f"{self.env_id}   step {t}/{rec.length}   episode {rec.index}", FOREGROUND),
            ("   ".join(f"{s}: return {r:+.{self.digits}f}" for s, r in returns.items()), DIM),
        ]
        lines += [(f"{s}'s observations attacked by {a}", RED) for s, a in self.attacks.items()]
        if t == rec.length:
            lines += outcome_lines(outcomes, returns)
        head = strip(picture.shape[1], lines, 4 + len(self.attacks))
        return stack_rows([head, picture])
