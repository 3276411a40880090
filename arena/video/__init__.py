"""Videos of recorded episodes: re-simulate a record, paint each step, encode mp4 or gif.

``episode_video(record_dir, out)`` re-simulates one episode of a record (see
``arena.replay.resimulate``), checks it against the record, paints one frame per step
and encodes the frames (mp4: H.264 through imageio-ffmpeg's ffmpeg; gif: Pillow). The
layout depends on what the record and the game hold:

* **pixel attack** (an attacked seat with image observations, e.g. ``toy_catch_v0``
  or ``atari_<game>_v0`` under ``--attack``): clean frame | perturbed frame | δ
  magnified, over the victim's clean and attacked actions (``pixel_attack``);
* **MuJoCo games** (an ``envs.paint.FilmedScene``): the scene from a camera that
  follows the players, each labeled with its seat in its body's color, and the
  outcome at the end (``follow_camera``);
* **anything else** (``toy_pass_v0``, unattacked pixel games): the game's own
  ``render()`` under a caption with the step and each seat's return (``scene``).

Painters use only what ``envs.paint`` declares of a game. Modules: ``episode`` (the
entry point), the three painters, ``canvas`` (text, labels, captions, layout) and
``writer`` (encoding; the file appears whole or not at all).
"""

from arena.video.episode import HOLD_SECONDS, VideoResult, episode_video
from arena.video.follow_camera import FILM_SIZE
from arena.video.pixel_attack import PANEL
from arena.video.scene import SCENE_MIN_WIDTH
from arena.video.writer import (
    GIF_MAX_FPS,
    VIDEO_SUFFIXES,
    AtomicVideoWriter,
    VideoError,
    check_video_path,
)

__all__ = [
    "FILM_SIZE",
    "GIF_MAX_FPS",
    "HOLD_SECONDS",
    "PANEL",
    "SCENE_MIN_WIDTH",
    "VIDEO_SUFFIXES",
    "AtomicVideoWriter",
    "VideoError",
    "VideoResult",
    "check_video_path",
    "episode_video",
]
