"""The ``mujoco`` layout: a 3-D game filmed by a camera that follows the players.

The camera looks at the midpoint of the seats' bodies and backs off to keep them all
in view, smoothed so that the picture does not shake with every stride; the game's
own ``render()`` uses a fixed camera, which loses players who leave the middle of the
field. Uses only the game's ``envs.paint.FilmedScene`` methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arena.recording import EpisodeRecord, RecordManifest
from arena.video import canvas
from envs.paint import Camera, FilmedScene, Shot

FILM_SIZE = (480, 640)
"""(height, width) of the picture (the game may film a smaller one)."""
AZIMUTH, ELEVATION = 90.0, -20.0
"""The camera looks along +y, from a little above."""
LOOK_HEIGHT = 0.6
"""Height of the point the camera looks at."""
LABEL_HEIGHT = 0.7
"""How far above a seat's body point its label sits (world units)."""
MIN_DISTANCE, MARGIN = 8.0, 2.0
"""The camera stays at least this far away, and keeps this much room around the players."""
SMOOTHING = 0.85
"""Weight of the previous frame's aim in the camera's aim."""


class FollowCameraPainter:
    """The scene from a following camera, players labeled by seat, outcome at the end."""

    layout = "mujoco"
    notes: tuple[str, ...] = ()

    def __init__(self, manifest: RecordManifest, record: EpisodeRecord, env: FilmedScene):
        self.caption = canvas.Caption(manifest.env, record, manifest.attacks, digits=1)
        self.colors = env.seat_colors()
        h, w = FILM_SIZE
        self.half_width = np.tan(np.radians(env.film_fovy() / 2)) * w / h
        """Half the view's width at distance 1 (the view may come out narrower: then
        the players are only further inside it)."""
        self.shot: Shot | None = None
        """The last frame filmed."""
        self._lookat: np.ndarray | None = None
        self._distance = 0.0

    def aim(self, points: dict[str, np.ndarray]) -> Camera:
        """A camera at the players' midpoint, far enough to see them all."""
        pts = np.clip(np.nan_to_num(np.array(list(points.values()))), -50.0, 50.0)
        center = pts.mean(axis=0)
        center[2] = LOOK_HEIGHT
        spread = float(np.max(np.abs(pts[:, :2] - center[:2]).max(axis=0), initial=0.0))
        distance = max(MIN_DISTANCE, (spread + MARGIN) / self.half_width)
        if self._lookat is None:
            self._lookat, self._distance = center, distance
        else:
            self._lookat = SMOOTHING * self._lookat + (1 - SMOOTHING) * center
            self._distance = SMOOTHING * self._distance + (1 - SMOOTHING) * distance
            self._distance = max(self._distance, distance * 0.9)
        lookat = (float(self._lookat[0]), float(self._lookat[1]), float(self._lookat[2]))
        return Camera(lookat, self._distance, azimuth=AZIMUTH, elevation=ELEVATION)

    def frame(self, env: Any, t: int) -> np.ndarray:
        points = env.seat_points()
        shot = env.film(self.aim(points), height=FILM_SIZE[0], width=FILM_SIZE[1])
        self.shot = shot
        img = shot.image
        for seat, point in points.items():
            at = shot.project(np.asarray(point) + np.array([0.0, 0.0, LABEL_HEIGHT]))
            if at is not None:
                canvas.label(img, seat, at, self.colors[seat])
        return self.caption.above(img, t, env.outcomes())

    def close(self) -> None:
        """The game closes its own renderers."""
