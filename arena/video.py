"""Videos of recorded episodes: re-simulate a record, draw each step, encode mp4 or gif.

``episode_video(record_dir, out)`` re-simulates one episode of a record (see
``arena.replay.resimulate``), checks it against the record, draws one frame per step
and encodes the frames with imageio (mp4: H.264 through imageio-ffmpeg's ffmpeg; gif:
Pillow). The layout depends on what the record holds:

* **pixel attack** (an attacked seat with image observations, e.g. ``toy_catch_v0``
  or ``atari_<game>_v0`` under ``--attack``): side by side the clean frame (the
  recorded observation; for a frame stack the newest frame), the perturbed frame
  (``clip(obs / 255 + δ, 0, 1)``: δ is on the [0, 1] network-input scale) and δ
  magnified (grey = 0; the factor and the largest |δ| in grey levels are written),
  over a text strip: step, reward, the victim's clean action (on the clean frame)
  and attacked action (on the perturbed frame), and, when the victim can be loaded
  from the manifest's policy reference, the probabilities of both;
* **MuJoCo games** (``model``/``data`` physics): the scene from a camera that follows
  the midpoint of the two players and backs off to keep both in view, each player
  labelled with its seat in its body's colour, and the outcome at the end;
* **anything else** (``toy_pass_v0``, unattacked pixel games): the game's own
  ``render()`` under a strip with the step and each seat's return.

The video file appears whole or not at all: frames go to a temporary file in the same
directory, renamed over ``out`` only when the episode re-simulated exactly (unless
``verify=False``) and the encoder finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena.errors import ArenaError
from arena.io import public_mode
from arena.recording import EpisodeRecord, RecordError, read_episode, read_manifest
from arena.replay import EpisodeCheck, make_env, resimulate

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".gif")
GIF_MAX_FPS = 50
"""GIF frame delays are in 1/100 s and browsers slow down delays under 2/100 s."""
HOLD_SECONDS = 1.5
"""How long the last frame (with the outcome) stays on screen."""
PANEL = 252
"""Target side in pixels of one panel of the pixel-attack layout."""
SCENE_MIN_WIDTH = 480
"""Games rendered narrower than this are scaled up by a whole factor to reach it."""
MUJOCO_SIZE = (480, 640)
"""(height, width) of the MuJoCo scene (within the models' offscreen buffer)."""

_BG = (24, 24, 28)
_FG = (235, 235, 235)
_DIM = (160, 160, 160)
_RED = (235, 90, 70)
_GREEN = (110, 210, 110)


class VideoError(ArenaError):
    """A video that cannot be made: bad path or extension, or a diverging re-simulation."""


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


# ---------------------------------------------------------------- paths and writing


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


class AtomicVideoWriter:
    """Append frames; on success the file is renamed into place, on error removed.

    All frames take the size of the first one (padded to even sides for H.264).
    """

    def __init__(self, path: str | Path, *, fps: float):
        self.path = check_video_path(path)
        self.fps = float(fps)
        if not self.fps > 0:
            raise VideoError(f"fps must be > 0, got {fps}")
        self.suffix = self.path.suffix.lower()
        if self.suffix == ".gif" and self.fps > GIF_MAX_FPS:
            raise VideoError(f"a gif plays at most {GIF_MAX_FPS} fps, got {fps:g}; use .mp4")
        self.frames = 0
        self.last_frame: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self._writer: Any = None
        self._tmp: str | None = None

    def __enter__(self) -> AtomicVideoWriter:
        import imageio.v2 as iio

        parent = self.path.parent if str(self.path.parent) else Path(".")
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.path.stem}.", suffix=f".tmp{self.suffix}", dir=parent
        )
        os.close(fd)
        try:
            self._writer = self._open(iio, self._tmp)
        except BaseException:
            os.unlink(self._tmp)
            raise
        return self

    def _open(self, iio: Any, tmp: str) -> Any:
        if self.suffix == ".mp4":
            return iio.get_writer(
                tmp,
                format="FFMPEG",
                mode="I",
                fps=self.fps,
                codec="libx264",
                pixelformat="yuv420p",
                quality=8,
                macro_block_size=2,
                ffmpeg_log_level="error",
                # veryfast: 2.3x less encoder CPU than x264's default, about the same size
                output_params=["-movflags", "+faststart", "-preset", "veryfast"],
            )
        return iio.get_writer(tmp, format="GIF", mode="I", duration=1000.0 / self.fps, loop=0)

    def append(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self._shape is None:
            h, w = frame.shape[:2]
            self._shape = (h + h % 2, w + w % 2)
        frame = _fit(frame, self._shape)
        self._writer.append_data(frame)
        self.last_frame = frame
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._tmp is not None
        try:
            if self._writer is not None:
                self._writer.close()
            if exc_type is None:
                if self.frames == 0:
                    raise VideoError(f"no frames to write to {self.path}")
                public_mode(self._tmp)
                os.replace(self._tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)


def write_video(path: str | Path, frames: Any, *, fps: float) -> int:
    """Write an iterable of ``(H, W, 3)`` uint8 frames atomically; returns the count."""
    with AtomicVideoWriter(path, fps=fps) as writer:
        for frame in frames:
            writer.append(frame)
    return writer.frames


def _fit(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pad (with the background colour) or crop ``frame`` to ``shape``."""
    h, w = shape
    if frame.shape[:2] == (h, w):
        return frame
    out = np.empty((h, w, 3), dtype=np.uint8)
    out[:] = _BG
    fh, fw = min(h, frame.shape[0]), min(w, frame.shape[1])
    out[:fh, :fw] = frame[:fh, :fw]
    return out


# ---------------------------------------------------------------- drawing helpers


def _text(img: np.ndarray, text: str, xy: tuple[int, int], *, color=_FG, scale=0.45) -> None:
    import cv2

    cv2.putText(img, text, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _text_width(text: str, scale: float = 0.45) -> int:
    import cv2

    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return int(w)


def _strip(width: int, lines: list[tuple[str, tuple[int, int, int]]], n_lines: int):
    """A text strip of ``n_lines`` lines (a fixed height, so every frame has one size)."""
    line_h = 20
    strip = np.empty((8 + line_h * n_lines, width, 3), dtype=np.uint8)
    strip[:] = _BG
    for i, (line, color) in enumerate(lines[:n_lines]):
        _text(strip, _ascii(line), (8, 4 + line_h * (i + 1) - 6), color=color)
    return strip


def _ascii(text: str) -> str:
    """Hershey fonts draw ASCII only."""
    for a, b in (("δ", "delta"), ("ε", "eps"), ("±", "+/-"), ("∞", "inf"), ("→", "->")):
        text = text.replace(a, b)
    return text.encode("ascii", "replace").decode()


def _upscale(img: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1) if k > 1 else img


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.concatenate([_fit(r, (r.shape[0], width)) for r in rows], axis=0)


def _outcome_lines(
    outcomes: dict[str, str], returns: dict[str, float]
) -> list[tuple[str, tuple[int, int, int]]]:
    """Two lines: who won (from the env's final infos) and each seat's return."""
    colour = {"win": _GREEN, "loss": _RED}
    parts = "   ".join(f"{s} {outcomes.get(s, '?')} ({r:+.2f})" for s, r in returns.items())
    if not outcomes:
        return [("episode over", _FG), (parts, _FG)]
    if len(outcomes) == 1:
        ((seat, result),) = outcomes.items()
        return [(f"outcome: {seat} {result}", colour.get(result, _FG)), (parts, _FG)]
    winners = [s for s, o in outcomes.items() if o == "win"]
    head = f"outcome: {' and '.join(winners)} won" if winners else "outcome: tie (no winner)"
    return [(head, _GREEN if winners else _FG), (parts, _FG)]


# ---------------------------------------------------------------- env wrapper


class _Watched:
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


def _play(record: EpisodeRecord, env: Any, on_step: Callable[[Any, int], None]) -> EpisodeCheck:
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


# ---------------------------------------------------------------- painters


class _Painter:
    layout = "scene"
    notes: tuple[str, ...] = ()

    def frame(self, env: Any, t: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _returns_until(record: EpisodeRecord, t: int) -> dict[str, float]:
    return {s: float(r[:t].sum()) for s, r in record.rewards.items()}


def _seat_pixels(env: Any, shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """Where each seat's body is drawn in ``render()``'s frame, for games whose state
    says so (``toy_pass_v0``: positions on a plane that the frame shows whole)."""
    from envs.toy import plane_pass

    game = getattr(env, "unwrapped", env)
    if not isinstance(game, plane_pass.PlanePassEnv):
        return {}
    h, w = shape[:2]
    sx, sy = w / (2 * plane_pass.X_LIM), h / (2 * plane_pass.Y_LIM)
    return {
        seat: (int((x + plane_pass.X_LIM) * sx), int((plane_pass.Y_LIM - y) * sy))
        for seat, (x, y) in zip(game.possible_agents, game.pos, strict=True)
    }


def _label(img: np.ndarray, seat: str, at: tuple[int, int], *, above: int) -> None:
    """The seat's name in a box of its body's colour (sampled at ``at``), above it."""
    import cv2

    h, w = img.shape[:2]
    cx, cy = int(np.clip(at[0], 0, w - 1)), int(np.clip(at[1], 0, h - 1))
    colour = tuple(int(c) for c in img[cy, cx, :3])
    label = _ascii(seat)
    tw = _text_width(label, 0.5)
    x = int(np.clip(cx - tw // 2, 6, w - tw - 8))
    y = int(np.clip(cy - above, 20, h - 4))
    cv2.rectangle(img, (x - 4, y - 16), (x + tw + 4, y + 5), colour, -1)
    _text(img, label, (x, y), color=(255, 255, 255), scale=0.5)


class _ScenePainter(_Painter):
    """The game's own ``render()`` under a strip: step and each seat's return."""

    def __init__(self, manifest: dict[str, Any], record: EpisodeRecord):
        self.env_id = manifest["env"]
        self.record = record
        self.attack = manifest.get("attacks") or {}

    def frame(self, env: Any, t: int) -> np.ndarray:
        scene = env.render()
        if scene is None:
            raise VideoError(f"{self.env_id} rendered no frame in rgb_array mode")
        scene = np.asarray(scene, dtype=np.uint8)
        # small games are scaled up (whole pixels) so that the strip's text fits
        scene = np.ascontiguousarray(_upscale(scene, max(1, -(-SCENE_MIN_WIDTH // scene.shape[1]))))
        for seat, at in _seat_pixels(env, scene.shape).items():
            _label(scene, seat, at, above=18)
        rec = self.record
        returns = _returns_until(rec, t)
        lines = [
            (f"{self.env_id}   step {t}/{rec.length}   episode {rec.index}", _FG),
            ("   ".join(f"{s}: return {r:+.2f}" for s, r in returns.items()), _DIM),
        ]
        for seat, spec in self.attack.items():
            lines.append((f"{seat} attacked by {spec}", _RED))
        if t == rec.length:
            lines += _outcome_lines(env.outcomes(), returns)
        n_lines = 4 + len(self.attack)
        return _stack_rows([_strip(scene.shape[1], lines, n_lines), scene])


class _PixelAttackPainter(_Painter):
    """Clean frame | perturbed frame | δ magnified, over a text strip."""

    layout = "pixel-attack"

    def __init__(self, manifest: dict[str, Any], record: EpisodeRecord, seat: str, env: Any):
        self.env_id = manifest["env"]
        self.record, self.seat = record, seat
        self.spec = (manifest.get("attacks") or {}).get(seat, "?")
        obs = record.observations[seat]
        delta = record.attack[seat]["delta"]
        self.channel_last = obs.ndim == 4 and delta.shape[1:] != obs.shape[1:]
        if self.channel_last:  # HWC observations, CHW network input (SB3 transposes)
            delta = np.moveaxis(delta, 1, -1)
        if delta.shape[1:] != obs.shape[1:]:
            raise VideoError(
                f"δ of {seat!r} has shape {delta.shape[1:]}, observations {obs.shape[1:]}"
            )
        self.obs, self.delta = obs, delta
        peak = float(np.abs(delta).max()) if delta.size else 0.0
        self.peak = peak
        self.gain = 0.5 / peak if peak > 0 else 1.0
        h, w = self._image(obs[0]).shape[:2]
        self.k = max(1, round(PANEL / max(h, w)))
        self.meanings = getattr(env, "action_meanings", None)
        self.probs, why = _probabilities(manifest, record, seat, env)
        self.notes = (why,) if why else ()

    def _image(self, x: np.ndarray) -> np.ndarray:
        """One observation (or δ) -> (H, W) or (H, W, 3): the newest frame of a stack."""
        if x.ndim == 2:
            return x
        if self.channel_last:
            return x if x.shape[-1] == 3 else x[..., -1]
        return np.moveaxis(x, 0, -1) if x.shape[0] == 3 else x[-1]

    def _rgb(self, unit: np.ndarray) -> np.ndarray:
        img = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return _upscale(img, self.k)

    def _panel(self, img: np.ndarray, title: str) -> np.ndarray:
        head = np.empty((22, img.shape[1], 3), dtype=np.uint8)
        head[:] = _BG
        _text(head, _ascii(title), (4, 16), color=_DIM)
        return np.concatenate([head, img], axis=0)

    def _action(self, a: np.ndarray) -> str:
        a = np.asarray(a)
        if a.ndim == 0 and self.meanings is not None and 0 <= int(a) < len(self.meanings):
            return f"{int(a)} {self.meanings[int(a)]}"
        if a.ndim == 0:
            return str(a.item())
        return np.array2string(a, precision=2, max_line_width=60)

    def frame(self, env: Any, t: int) -> np.ndarray:
        rec, seat = self.record, self.seat
        clean_x = self.obs[t].astype(np.float32) / 255.0
        last = t == rec.length
        delta = np.zeros_like(self.delta[0]) if last else self.delta[t]
        adv_x = np.clip(clean_x + delta, 0.0, 1.0)
        sep = np.empty((22 + self._rgb(self._image(clean_x)).shape[0], 6, 3), dtype=np.uint8)
        sep[:] = _BG
        panels = [
            self._panel(self._rgb(self._image(clean_x)), "clean (env)"),
            sep,
            self._panel(self._rgb(self._image(adv_x)), "perturbed (victim)"),
            sep,
            self._panel(
                self._rgb(np.clip(0.5 + self.gain * self._image(delta), 0.0, 1.0)),
                f"delta x{self.gain:.3g}, grey = 0",
            ),
        ]
        row = np.concatenate(panels, axis=1)
        returns = _returns_until(rec, t + (0 if last else 1))
        if last:
            lines = [
                (f"{self.env_id}   end of episode {rec.index} after {rec.length} steps", _FG),
                *_outcome_lines(env.outcomes(), returns),
            ]
        else:
            reward = float(rec.rewards[seat][t])
            attack = rec.attack[seat]
            clean_a = attack["clean_action"][t]
            adv_a = rec.actions[seat][t]
            flipped = not np.array_equal(clean_a, adv_a)
            attacked = bool(attack["attacked"][t]) if "attacked" in attack else True
            p = self.probs[t] if self.probs is not None else None
            pc = f" p={p[0]:.2f}" if p is not None else ""
            pa = f" p={p[1]:.2f}" if p is not None else ""
            tag = ("FLIPPED", _RED) if flipped else ("same", _GREEN)
            lines = [
                (
                    f"step {t}/{rec.length}   reward {reward:+.2f}   return {returns[seat]:+.2f}",
                    _FG,
                ),
                (
                    f"{seat}: clean action {self._action(clean_a)}{pc}  ->  attacked action "
                    f"{self._action(adv_a)}{pa}   [{tag[0]}]",
                    tag[1],
                ),
                (
                    f"attack {self.spec}: "
                    + (
                        f"max|delta| {np.abs(delta).max() * 255:.2f}/255 this step"
                        if attacked
                        else "not attacked this step"
                    )
                    + f"; episode max {self.peak * 255:.2f}/255",
                    _DIM,
                ),
            ]
        return _stack_rows([row, _strip(row.shape[1], lines, 3)])


def _probabilities(
    manifest: dict[str, Any], record: EpisodeRecord, seat: str, env: Any
) -> tuple[np.ndarray | None, str]:
    """Per step, (p(clean action | clean input), p(attacked action | perturbed input)).

    Needs the victim: loaded from the manifest's policy reference when its file is
    still there with the recorded sha256. Returns ``(None, reason)`` otherwise.
    """
    import torch

    from agents import specs
    from agents.policies import TorchPolicy

    ref = (manifest.get("policies") or {}).get(seat)
    if ref is None:
        return None, f"no probabilities: the manifest has no policy for {seat!r}"
    spec = ref if isinstance(ref, str) else ref.get("spec")
    candidates = [spec]
    if isinstance(ref, dict) and ref.get("path") and ref.get("kind"):
        candidates.append(f"{ref['kind']}:{ref['path']}")
    sha = ref.get("sha256") if isinstance(ref, dict) else None
    if isinstance(ref, dict) and sha and ref.get("path") and "|" not in sha:
        path = Path(ref["path"])
        if not path.exists() or specs.sha256_of(path) != sha:
            return None, f"no probabilities: victim file {path} is missing or changed"
    policy = None
    for cand in candidates:
        try:
            policy = specs.resolve(
                str(cand),
                env.observation_space(seat),
                env.action_space(seat),
                env_id=manifest["env"],
                seat=seat,
            )
            break
        except Exception as exc:  # any loader failure just drops the probabilities
            log.info("victim %s not loadable for probabilities: %s", cand, exc)
    if not isinstance(policy, TorchPolicy) or policy.recurrent:
        return None, "no probabilities: the victim is not a loadable feed-forward TorchPolicy"
    obs = record.observations[seat][:-1]
    delta = torch.as_tensor(record.attack[seat]["delta"])
    out = np.zeros((record.length, 2))
    with torch.no_grad():
        for start in range(0, record.length, 64):
            stop = min(record.length, start + 64)
            x = policy.input_from_obs(obs[start:stop])
            if x.shape[1:] != delta.shape[1:]:
                return None, "no probabilities: δ does not match the victim's input"
            clean = policy.forward(x)[0]
            adv = policy.forward(x + delta[start:stop])[0]
            categorical = torch.distributions.Categorical
            if not isinstance(clean, categorical) or not isinstance(adv, categorical):
                return None, "no probabilities: the victim's actions are not discrete"
            ca = torch.as_tensor(np.asarray(record.attack[seat]["clean_action"][start:stop]))
            aa = torch.as_tensor(np.asarray(record.actions[seat][start:stop]))
            out[start:stop, 0] = clean.probs.gather(1, ca.long().view(-1, 1))[:, 0].numpy()
            out[start:stop, 1] = adv.probs.gather(1, aa.long().view(-1, 1))[:, 0].numpy()
    return out, ""


class _MujocoPainter(_Painter):
    """The scene from a following camera, players labelled by seat, outcome at the end.

    Renders with its own ``mujoco.Renderer`` on the env's ``model``/``data`` instead of
    the env's fixed camera, which loses players who leave the middle of the field.
    Shadows, reflections and multisampling are off: together about 6x faster under
    software GL (Mesa llvmpipe, where a machine has no GPU), ~20 ms a 640×480 frame.
    """

    layout = "mujoco"

    def __init__(self, manifest: dict[str, Any], record: EpisodeRecord, env: Any):
        import mujoco

        self.mj = mujoco
        self.env_id = manifest["env"]
        self.record = record
        self.attack = manifest.get("attacks") or {}
        model = env.model
        h, w = MUJOCO_SIZE
        h = min(h, int(model.vis.global_.offheight))
        w = min(w, int(model.vis.global_.offwidth))
        samples = int(model.vis.quality.offsamples)
        model.vis.quality.offsamples = 0  # no multisampling: 3x faster under software GL
        try:
            self.renderer = mujoco.Renderer(model, height=h, width=w)
        finally:
            model.vis.quality.offsamples = samples  # read once, by the context above
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.camera = mujoco.MjvCamera()
        self.camera.azimuth = 90.0
        self.camera.elevation = -20.0
        self.aspect = w / h
        self.fovy = float(model.vis.global_.fovy)
        self.bodies: dict[str, int] = {}
        self.colours: dict[str, tuple[int, int, int]] = {}
        physical = list(getattr(env, "seats", env.possible_agents))
        for seat in env.possible_agents:
            k = physical.index(seat)
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"agent{k}/torso")
            if body < 0:
                raise VideoError(f"{self.env_id}: no body agent{k}/torso for seat {seat!r}")
            self.bodies[seat] = int(body)
            geoms = np.flatnonzero(model.geom_bodyid == body)
            rgba = model.geom_rgba[geoms[0]] if len(geoms) else np.array([1.0, 1.0, 1.0, 1.0])
            self.colours[seat] = tuple(int(255 * c) for c in rgba[:3])  # type: ignore[assignment]
        self._lookat: np.ndarray | None = None
        self._distance = 0.0

    def _aim(self, data: Any) -> None:
        pts = np.array([data.xpos[b] for b in self.bodies.values()])
        pts = np.clip(np.nan_to_num(pts), -50.0, 50.0)
        centre = pts.mean(axis=0)
        centre[2] = 0.6
        spread = float(np.max(np.abs(pts[:, :2] - centre[:2]).max(axis=0), initial=0.0))
        half_w = np.tan(np.radians(self.fovy / 2)) * self.aspect
        distance = max(8.0, (spread + 2.0) / half_w)
        if self._lookat is None:
            self._lookat, self._distance = centre, distance
        else:  # smooth, so the picture does not shake with every stride
            self._lookat = 0.85 * self._lookat + 0.15 * centre
            self._distance = 0.85 * self._distance + 0.15 * distance
            self._distance = max(self._distance, distance * 0.9)
        self.camera.lookat[:] = self._lookat
        self.camera.distance = self._distance

    def _project(self, point: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int] | None:
        cam = self.renderer.scene.camera[0]
        pos, fwd, up = np.array(cam.pos), np.array(cam.forward), np.array(cam.up)
        right = np.cross(fwd, up)
        v = point - pos
        z = float(v @ fwd)
        if z <= 1e-6:
            return None
        near = float(cam.frustum_near)
        x = float(v @ right) / z * near
        y = float(v @ up) / z * near
        h, w = shape[:2]
        bottom, top = float(cam.frustum_bottom), float(cam.frustum_top)
        centre = float(cam.frustum_center)
        # 0 means "from the viewport's aspect ratio" (mjr_render fills it in)
        half_w = float(cam.frustum_width) or 0.5 * (top - bottom) * w / h
        px = (x - (centre - half_w)) / (2 * half_w) * w
        py = (top - y) / (top - bottom) * h
        return int(px), int(py)

    def frame(self, env: Any, t: int) -> np.ndarray:
        import cv2

        data = env.data
        self._aim(data)
        self.renderer.update_scene(data, camera=self.camera)
        img = np.array(self.renderer.render(), dtype=np.uint8)
        for seat, body in self.bodies.items():
            at = self._project(np.asarray(data.xpos[body]) + np.array([0.0, 0.0, 0.7]), img.shape)
            if at is None:
                continue
            label = _ascii(seat)
            tw = _text_width(label, 0.5)
            x = int(np.clip(at[0] - tw // 2, 2, img.shape[1] - tw - 8))
            y = int(np.clip(at[1], 20, img.shape[0] - 4))
            cv2.rectangle(img, (x - 4, y - 16), (x + tw + 4, y + 5), self.colours[seat], -1)
            _text(img, label, (x, y), color=(255, 255, 255), scale=0.5)
        rec = self.record
        returns = _returns_until(rec, t)
        lines = [
            (f"{self.env_id}   step {t}/{rec.length}   episode {rec.index}", _FG),
            ("   ".join(f"{s}: return {r:+.1f}" for s, r in returns.items()), _DIM),
        ]
        for seat, spec in self.attack.items():
            lines.append((f"{seat}'s observations attacked by {spec}", _RED))
        if t == rec.length:
            lines += _outcome_lines(env.outcomes(), returns)
        n_lines = 4 + len(self.attack)
        return _stack_rows([_strip(img.shape[1], lines, n_lines), img])

    def close(self) -> None:
        self.renderer.close()


def _pixel_seat(manifest: dict[str, Any], record: EpisodeRecord) -> str | None:
    """The first attacked seat whose observations are images with recorded δ."""
    for seat, arrays in record.attack.items():
        obs = record.observations.get(seat)
        if (
            "delta" in arrays
            and "clean_action" in arrays
            and obs is not None
            and obs.dtype == np.uint8
            and obs.ndim in (3, 4)
        ):
            return seat
    return None


def _painter(manifest: dict[str, Any], record: EpisodeRecord, env: Any) -> _Painter:
    seat = _pixel_seat(manifest, record)
    if seat is not None:
        return _PixelAttackPainter(manifest, record, seat, env)
    if hasattr(env, "model") and hasattr(env, "data") and "mujoco" in _needs(manifest):
        return _MujocoPainter(manifest, record, env)
    return _ScenePainter(manifest, record)


def _needs(manifest: dict[str, Any]) -> tuple[str, ...]:
    import envs

    return tuple(envs.spec(manifest["env"]).needs)


# ---------------------------------------------------------------- the entry point


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
    n = len(manifest["episodes"])
    if not 0 <= episode < n:
        raise RecordError(f"episode {episode} is out of range; this record has episodes 0..{n - 1}")
    record = read_episode(record_dir, episode)
    env = _Watched(make_env(manifest, render_mode="rgb_array"))
    painter: _Painter | None = None
    try:
        if fps is None:
            fps = float(env.metadata.get("render_fps", 30))
            if out.suffix.lower() == ".gif":
                fps = min(fps, float(GIF_MAX_FPS))
        painter = _painter(manifest, record, env)
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
                check = _play(record, env, on_step)
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


def iter_record_dirs(root: str | Path) -> Iterator[Path]:
    """Record directories (with a ``manifest.json``) at or under ``root``, sorted."""
    root = Path(root)
    for manifest in sorted(root.rglob("manifest.json")):
        if not any(part.startswith(".") for part in manifest.relative_to(root).parts):
            yield manifest.parent
