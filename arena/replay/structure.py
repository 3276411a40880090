"""The checks before simulating: every array of the episode has the exact dtype and shape
the game and the record format take, its actions lie in the game's action spaces, its
seeds are the manifest's, its attacked seats are the manifest's, and every stored δ is
inside its attack's budget (0 where the step was not attacked). ``check_playable`` is
the part of them that stepping and painting a record needs even unverified."""

from __future__ import annotations

from typing import Any

import numpy as np

from arena.artifacts import EpisodeEntry, RecordManifest
from arena.recording import EpisodeRecord, RecordError
from arena.replay.check import Mismatch, show

DELTA_TOLERANCE = 1e-6
"""Slack on the budget check of a stored δ (float32 rounding of ``x_adv - x``)."""


def check_space(name: str, seat: str, arr: np.ndarray, space: Any) -> Mismatch | None:
    """``arr`` (T, ...) has the space's exact dtype and shape, and every row is in it."""
    field = f"{name}.{seat}"
    dtype, shape = getattr(space, "dtype", None), getattr(space, "shape", None)
    label = name.replace("_", " ")
    if dtype is not None and arr.dtype != dtype:
        return Mismatch(
            1,
            field,
            f"{label} of {seat!r} has dtype {arr.dtype}; the game's action space "
            f"takes {np.dtype(dtype)} (every step)",
        )
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        return Mismatch(
            1,
            field,
            f"{label} of {seat!r} has shape {tuple(arr.shape[1:])} per step; the game's "
            f"action space takes {tuple(shape)} (every step)",
        )
    for t in range(len(arr)):
        if not space.contains(arr[t]):
            return Mismatch(
                t + 1, field, f"{label} of {seat!r} ({show(arr[t])}) is outside {space}"
            )
    return None


def manifest_attack(seat: str, spec: str) -> Any:
    """The attack the manifest names for ``seat`` (its budget, its rounding)."""
    from agents.attacks import AttackSpecError, parse_attack

    try:
        return parse_attack(spec)
    except AttackSpecError as exc:
        raise RecordError(f"the manifest's attacks.{seat} is not a valid attack: {exc}") from None


def _delta_size(delta: np.ndarray, t: int, norm: str, eps: float) -> tuple[float, bool]:
    """Step ``t``'s δ measured in the budget's norm, and whether it exceeds ``eps``."""
    row = delta[t].reshape(-1)
    if norm == "linf":
        size = float(np.max(np.abs(row))) if row.size else 0.0
        return size, size > eps + DELTA_TOLERANCE
    if norm == "l2":
        size = float(np.sqrt(np.sum(row.astype(np.float64) ** 2)))
        return size, size > eps * (1 + 1e-5) + DELTA_TOLERANCE
    frame = delta[t]
    moved = np.any(frame != 0, axis=0) if frame.ndim == 3 else frame != 0
    size = float(np.count_nonzero(moved))
    return size, size > eps


def check_delta(seat: str, arrays: dict[str, np.ndarray], attack: Any) -> Mismatch | None:
    """Every δ is finite; 0 where the step was not attacked; inside the budget where it was."""
    delta, attacked = arrays["delta"], arrays["attacked"]
    field = f"delta.{seat}"
    budget = attack.budget
    for t in range(len(delta)):
        if not np.all(np.isfinite(delta[t])):
            return Mismatch(t + 1, field, f"delta of {seat!r} is not finite")
        if not attacked[t]:
            if np.any(delta[t] != 0):
                return Mismatch(
                    t + 1,
                    f"attacked.{seat}",
                    f"attacked flag of {seat!r} is False, but its delta is not 0",
                )
            continue
        if attack.round_to_obs:
            continue  # rounding to valid pixels may step past ε by half a level
        size, over = _delta_size(delta, t, budget.norm, budget.eps)
        if over:
            return Mismatch(
                t + 1,
                field,
                f"delta of {seat!r} is outside the attack's budget "
                f"({budget.norm} size {size:.6g} > ε={budget.eps:g})",
            )
    return None


def _check_steps_and_seeds(
    manifest: RecordManifest, entry: EpisodeEntry, record: EpisodeRecord
) -> Mismatch | None:
    from arena.match import episode_seed

    t_len = record.length
    for seat, acts in record.actions.items():
        if len(acts) != t_len:
            return Mismatch(
                min(t_len, len(acts)),
                f"action.{seat}",
                f"seats have different numbers of steps ({t_len} and {len(acts)} for {seat!r})",
            )
    if entry.length != t_len:
        return Mismatch(
            min(entry.length, t_len),
            "length",
            f"length differs (manifest {entry.length} steps, episode file {t_len})",
        )
    if entry.reset_seed != record.reset_seed:
        return Mismatch(
            0,
            "reset_seed",
            f"reset_seed differs (manifest {entry.reset_seed}, episode file {record.reset_seed})",
        )
    if manifest.seed is not None:
        derived = episode_seed(manifest.seed, record.index)
        if derived != record.reset_seed:
            return Mismatch(
                0,
                "reset_seed",
                f"reset_seed differs (recorded {record.reset_seed}, derived from seed "
                f"{manifest.seed} and index {record.index}: {derived})",
            )
    return None


def _check_attack_arrays(
    seat: str, arrays: dict[str, np.ndarray], space: Any, t_len: int
) -> Mismatch | None:
    bad = check_space("clean_action", seat, arrays["clean_action"], space)
    if bad:
        return bad
    att, delta = arrays["attacked"], arrays["delta"]
    if att.dtype != np.bool_ or att.shape != (t_len,):
        return Mismatch(
            1,
            f"attacked.{seat}",
            f"attacked flags of {seat!r} are {att.dtype} {att.shape}; records hold bool ({t_len},)",
        )
    if delta.dtype != np.float32 or delta.ndim < 2:
        return Mismatch(
            1,
            f"delta.{seat}",
            f"delta of {seat!r} is {delta.dtype} {delta.shape}; records hold float32 (T, ...)",
        )
    return None


def _check_observations(seat: str, obs: np.ndarray, space: Any) -> Mismatch | None:
    shape = getattr(space, "shape", None)
    if shape is not None and tuple(obs.shape[1:]) != tuple(shape):
        return Mismatch(
            0,
            f"obs.{seat}",
            f"observations of {seat!r} have shape {tuple(obs.shape[1:])} per step; the "
            f"game's observation space is {tuple(shape)}",
        )
    return None


def check_playable(record: EpisodeRecord, env: Any) -> Mismatch | None:
    """What stepping the recorded actions and painting them needs, and nothing more
    (``replay --video --no-verify``): the game's seats, as many steps for each; actions
    (and an attacked seat's clean actions) of the action space's dtype and shape and in
    it; observations of the observation space's shape; rewards float64; attack arrays
    of the record format's dtypes, δ finite."""
    seats = list(env.possible_agents)
    if sorted(record.actions) != sorted(seats):
        return Mismatch(
            0, "seats", f"the record's seats {sorted(record.actions)} are not the game's {seats}"
        )
    t_len = record.length
    for seat in seats:
        acts = record.actions[seat]
        if len(acts) != t_len:
            return Mismatch(
                min(t_len, len(acts)),
                f"action.{seat}",
                f"seats have different numbers of steps ({t_len} and {len(acts)} for {seat!r})",
            )
        bad = check_space("action", seat, acts, env.action_space(seat)) or _check_observations(
            seat, record.observations[seat], env.observation_space(seat)
        )
        if bad:
            return bad
        bad = _check_rewards(seat, record.rewards[seat], t_len)
        if bad:
            return bad
    for seat, arrays in record.attack.items():
        bad = _check_attack_arrays(seat, arrays, env.action_space(seat), t_len)
        if bad:
            return bad
        delta = arrays["delta"]
        for t in range(len(delta)):
            if not np.all(np.isfinite(delta[t])):
                return Mismatch(t + 1, f"delta.{seat}", f"delta of {seat!r} is not finite")
    return None


def _check_rewards(seat: str, rew: np.ndarray, t_len: int) -> Mismatch | None:
    if rew.dtype != np.float64 or rew.shape != (t_len,):
        return Mismatch(
            1,
            f"reward.{seat}",
            f"reward of {seat!r} is {rew.dtype} {rew.shape}; records hold float64 ({t_len},)",
        )
    return None


def check_structure(
    manifest: RecordManifest, entry: EpisodeEntry, record: EpisodeRecord, env: Any
) -> Mismatch | None:
    """The first structural difference of the episode (see the module docstring)."""
    bad = _check_steps_and_seeds(manifest, entry, record)
    if bad:
        return bad
    t_len = record.length
    for seat, acts in record.actions.items():
        bad = check_space("action", seat, acts, env.action_space(seat))
        if bad:
            return bad
        bad = _check_rewards(seat, record.rewards[seat], t_len)
        if bad:
            return bad
    attacks = manifest.attacks
    if sorted(attacks) != sorted(record.attack):
        return Mismatch(
            0,
            "attacks",
            f"the manifest's attacked seats {sorted(attacks)} differ from the record's "
            f"(δ recorded for {sorted(record.attack)})",
        )
    for seat, arrays in record.attack.items():
        bad = _check_attack_arrays(seat, arrays, env.action_space(seat), t_len)
        if bad:
            return bad
        bad = check_delta(seat, arrays, manifest_attack(seat, attacks[seat]))
        if bad:
            return bad
    return None
