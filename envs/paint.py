"""What a painter of episodes (``arena.video``) may ask of a game, and nothing more.

Every game has ``possible_agents`` and ``render()``. A game may add one of these
protocols, and painters use only them, never a game's internal state or its model's
names:

* ``TopDownScene``: ``render()`` shows the whole field from above; the game says in
  which color and where in that frame each seat's body is (the toy games);
* ``FilmedScene``: a 3-D world that a painter films with a camera of its choosing
  (one that follows the players), from the seats' body positions and colors (the
  MuJoCo competition games);
* ``NamedActions``: discrete actions with names (Atari, ``toy_catch_v0``).

This module imports numpy only; ``mujoco`` stays inside the games that film.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Color = tuple[int, int, int]
"""Red, green, blue, 0..255 each."""


@runtime_checkable
class TopDownScene(Protocol):
    """A game whose ``render()`` frame shows every seat's body on the whole field."""

    def seat_colors(self) -> dict[str, Color]:
        """Each seat's body color in ``render()``'s frame."""
        ...

    def seat_positions(self) -> dict[str, tuple[float, float]]:
        """Where each seat's body is in ``render()``'s frame: ``(x, y)`` as fractions of
        the frame's width and height from its top-left corner."""
        ...


@dataclass(frozen=True)
class Camera:
    """A free camera looking at ``lookat`` from ``distance`` away."""

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float = 90.0
    """Degrees about the vertical axis; 90 looks along +y (the field seen from its side)."""
    elevation: float = -20.0
    """Degrees; negative looks down."""


@dataclass(frozen=True)
class Shot:
    """One filmed frame and the camera's frustum, to find where world points appear."""

    image: np.ndarray
    """(H, W, 3) uint8."""
    position: np.ndarray
    """The camera's position (world, 3)."""
    forward: np.ndarray
    up: np.ndarray
    near: float
    """Distance from the camera to the near plane, which the other bounds are on."""
    center: float
    """Horizontal center of the near plane."""
    half_width: float
    """Half the near plane's width; 0: from its height and the image's aspect ratio."""
    bottom: float
    top: float

    def project(self, point: np.ndarray) -> tuple[int, int] | None:
        """The pixel ``(x, y)`` where world ``point`` appears (it may lie outside the
        image), or None when it is behind the camera."""
        v = np.asarray(point, dtype=np.float64) - self.position
        z = float(v @ self.forward)
        if z <= 1e-6:
            return None
        right = np.cross(self.forward, self.up)
        x = float(v @ right) / z * self.near
        y = float(v @ self.up) / z * self.near
        h, w = self.image.shape[:2]
        half_w = self.half_width or 0.5 * (self.top - self.bottom) * w / h
        px = (x - (self.center - half_w)) / (2 * half_w) * w
        py = (self.top - y) / (self.top - self.bottom) * h
        return int(px), int(py)


@runtime_checkable
class FilmedScene(Protocol):
    """A 3-D game that a painter films with its own camera."""

    def seat_colors(self) -> dict[str, Color]:
        """Each seat's body color."""
        ...

    def seat_points(self) -> dict[str, np.ndarray]:
        """Each seat's body position (world x, y, z; the center of its torso)."""
        ...

    def film_fovy(self) -> float:
        """The vertical field of view of ``film``, in degrees."""
        ...

    def film(self, camera: Camera, *, height: int, width: int) -> Shot:
        """The world now, seen by ``camera``, at most ``height`` x ``width`` pixels."""
        ...


@runtime_checkable
class NamedActions(Protocol):
    """A game whose discrete actions have names."""

    def action_names(self, seat: str) -> Sequence[str]:
        """The name of each action of ``seat``, by index."""
        ...
