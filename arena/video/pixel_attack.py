"""The ``pixel-attack`` layout: clean frame | perturbed frame | δ magnified, over a strip.

For an attacked seat with image observations (Atari, ``toy_catch_v0``): the clean
frame (the recorded observation; for a frame stack the newest frame), the perturbed
frame (``clip(obs / 255 + δ, 0, 1)``: δ is on the [0, 1] network-input scale) and δ
magnified (gray = 0; the factor and the largest |δ| in gray levels are written). The
strip says the step, the reward, the victim's clean action and attacked action (by
name where the game is an ``envs.paint.NamedActions``) and, when the victim can be
loaded from the manifest's policy reference, the probability of each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from arena.recording import EpisodeRecord, RecordError, RecordManifest
from arena.replay.policies import check_policy_refs, load_policy, policy_specs
from arena.video import canvas
from arena.video.writer import VideoError
from envs.paint import NamedActions

log = logging.getLogger(__name__)

PANEL = 252
"""Target side in pixels of one panel."""
TITLE_HEIGHT = 22
GAP = 6
"""Pixels between panels."""


def attacked_pixel_seat(record: EpisodeRecord) -> str | None:
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


class PixelAttackPainter:
    """Clean frame | perturbed frame | δ magnified, over a text strip."""

    layout = "pixel-attack"

    def __init__(self, manifest: RecordManifest, record: EpisodeRecord, seat: str, env: Any):
        self.env_id = manifest.env
        self.record, self.seat = record, seat
        self.spec = manifest.attacks.get(seat, "?")
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
        self.peak = float(np.abs(delta).max()) if delta.size else 0.0
        self.gain = 0.5 / self.peak if self.peak > 0 else 1.0
        h, w = self._image(obs[0]).shape[:2]
        self.k = max(1, round(PANEL / max(h, w)))
        self.names: Sequence[str] | None = (
            env.action_names(seat) if isinstance(env, NamedActions) else None
        )
        self.probs, why = probabilities(manifest, record, seat, env)
        self.notes: tuple[str, ...] = (why,) if why else ()

    def _image(self, x: np.ndarray) -> np.ndarray:
        """One observation (or δ) -> (H, W) or (H, W, 3): the newest frame of a stack."""
        if x.ndim == 2:
            return x
        if self.channel_last:
            return x if x.shape[-1] == 3 else x[..., -1]
        return np.moveaxis(x, 0, -1) if x.shape[0] == 3 else x[-1]

    def _panel(self, unit: np.ndarray, title: str) -> np.ndarray:
        """One image on the [0, 1] scale, scaled up, under its title."""
        img = np.clip(np.rint(self._image(unit) * 255.0), 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = canvas.upscale(img, self.k)
        head = canvas.blank(TITLE_HEIGHT, img.shape[1])
        canvas.text(head, title, (4, 16), color=canvas.DIM)
        return np.concatenate([head, img], axis=0)

    def _action(self, a: np.ndarray) -> str:
        a = np.asarray(a)
        if a.ndim == 0 and self.names is not None and 0 <= int(a) < len(self.names):
            return f"{int(a)} {self.names[int(a)]}"
        if a.ndim == 0:
            return str(a.item())
        return np.array2string(a, precision=2, max_line_width=60)

    def frame(self, env: Any, t: int) -> np.ndarray:
        rec = self.record
        clean_x = self.obs[t].astype(np.float32) / 255.0
        last = t == rec.length
        delta = np.zeros_like(self.delta[0]) if last else self.delta[t]
        panels = [
            self._panel(clean_x, "clean (env)"),
            self._panel(np.clip(clean_x + delta, 0.0, 1.0), "perturbed (victim)"),
            self._panel(
                np.clip(0.5 + self.gain * delta, 0.0, 1.0), f"delta x{self.gain:.3g}, gray = 0"
            ),
        ]
        gap = canvas.blank(panels[0].shape[0], GAP)
        row = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
        returns = canvas.returns_until(rec, t + (0 if last else 1))
        if last:
            end = f"{self.env_id}   end of episode {rec.index} after {rec.length} steps"
            lines = [(end, canvas.FOREGROUND), *canvas.outcome_lines(env.outcomes(), returns)]
        else:
            lines = self._step_lines(t, delta, returns)
        return canvas.stack_rows([row, canvas.strip(row.shape[1], lines, 3)])

    def _step_lines(
        self, t: int, delta: np.ndarray, returns: dict[str, float]
    ) -> list[canvas.Line]:
        rec, seat = self.record, self.seat
        reward = float(rec.rewards[seat][t])
        attack = rec.attack[seat]
        clean_a = attack["clean_action"][t]
        adv_a = rec.actions[seat][t]
        flipped = not np.array_equal(clean_a, adv_a)
        attacked = bool(attack["attacked"][t]) if "attacked" in attack else True
        p = self.probs[t] if self.probs is not None else None
        pc = f" p={p[0]:.2f}" if p is not None else ""
        pa = f" p={p[1]:.2f}" if p is not None else ""
        tag, color = ("FLIPPED", canvas.RED) if flipped else ("same", canvas.GREEN)
        size = (
            f"max|delta| {np.abs(delta).max() * 255:.2f}/255 this step"
            if attacked
            else "not attacked this step"
        )
        return [
            (
                f"step {t}/{rec.length}   reward {reward:+.2f}   return {returns[seat]:+.2f}",
                canvas.FOREGROUND,
            ),
            (
                f"{seat}: clean action {self._action(clean_a)}{pc}  ->  attacked action "
                f"{self._action(adv_a)}{pa}   [{tag}]",
                color,
            ),
            (f"attack {self.spec}: {size}; episode max {self.peak * 255:.2f}/255", canvas.DIM),
        ]

    def close(self) -> None:
        pass


def probabilities(
    manifest: RecordManifest, record: EpisodeRecord, seat: str, env: Any
) -> tuple[np.ndarray | None, str]:
    """Per step, (p(clean action | clean input), p(attacked action | perturbed input)).

    Needs the victim: loaded as the re-simulation loads it (``arena.replay.policies``),
    when its file is still there with the recorded sha256. Returns ``(None, reason)``
    otherwise.
    """
    import torch

    from agents.policies import TorchPolicy

    if seat not in manifest.policies:
        return None, f"no probabilities: the manifest has no policy for {seat!r}"
    try:
        bad = check_policy_refs(manifest)
    except RecordError as exc:
        return None, f"no probabilities: {exc}"
    if bad is not None:
        return None, f"no probabilities: {bad.detail}"
    found, why = policy_specs(manifest)
    if found is None:
        return None, f"no probabilities: {why}"
    try:
        policy = load_policy(manifest, env, seat, found[seat])
    except Exception as exc:  # any loader failure just drops the probabilities
        log.info("victim %s not loadable for probabilities: %s", found[seat], exc)
        policy = None
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
