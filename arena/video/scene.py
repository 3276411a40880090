"""The ``scene`` layout: the game's own ``render()`` under a caption.

For the toy games and any game without a layout of its own. The picture is scaled up
by a whole factor to at least ``SCENE_MIN_WIDTH`` so that the caption's text fits; a
game that is an ``envs.paint.TopDownScene`` with more than one seat gets each seat
labeled above its body, in the body's color.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arena.recording import EpisodeRecord, RecordManifest
from arena.video import canvas
from arena.video.writer import VideoError
from envs.paint import TopDownScene

SCENE_MIN_WIDTH = 480
"""Games rendered narrower than this are scaled up by a whole factor to reach it."""
LABEL_ABOVE = 18
"""How many pixels above its body a seat's label sits."""


def seat_pixels(env: Any, shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """Where each seat's body is in a ``shape``-d picture of ``render()``'s frame, for a
    ``TopDownScene``; else empty."""
    if not isinstance(env, TopDownScene):
        return {}
    h, w = shape[:2]
    return {seat: (int(x * w), int(y * h)) for seat, (x, y) in env.seat_positions().items()}


class ScenePainter:
    """The game's own ``render()`` under a strip: step and each seat's return."""

    layout = "scene"
    notes: tuple[str, ...] = ()

    def __init__(self, manifest: RecordManifest, record: EpisodeRecord):
        self.env_id = manifest.env
        self.caption = canvas.Caption(manifest.env, record, manifest.attacks)

    def frame(self, env: Any, t: int) -> np.ndarray:
        scene = env.render()
        if scene is None:
            raise VideoError(f"{self.env_id} rendered no frame in rgb_array mode")
        scene = np.asarray(scene, dtype=np.uint8)
        k = max(1, -(-SCENE_MIN_WIDTH // scene.shape[1]))
        scene = np.ascontiguousarray(canvas.upscale(scene, k))
        at = seat_pixels(env, scene.shape)
        if len(at) > 1:  # labels tell players apart; a lone seat needs none
            colors = env.seat_colors()
            for seat, (x, y) in at.items():
                canvas.label(scene, seat, (x, y - LABEL_ABOVE), colors[seat])
        return self.caption.above(scene, t, env.outcomes())

    def close(self) -> None:
        pass
