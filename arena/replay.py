"""Verify a record: "the record is the episode".

``resimulate`` checks one recorded episode against the game and the policies:

1. structure, before simulating: every seat's actions (and an attacked seat's clean
   actions) have the action space's exact dtype and shape and lie in it; rewards are
   float64, attacked flags bool, δ float32; the reset seed is the manifest's and the
   one ``(seed, index)`` derives; the manifest's attacks are the record's attacked
   seats; every policy file the manifest names that exists has its sha256; an
   attacked step's δ is inside the attack's budget and an unattacked step's δ is 0;
2. re-simulation from the reset seed: every observation and reward is compared
   exactly, and the game must end the episode (terminated, or truncated at its step
   limit) exactly at the last recorded step, not earlier;
3. re-derivation: the chunk of episodes the arena played in lockstep is played again
   over the recorded observations with the manifest's policies and attacks, seeded as
   ``arena.match`` seeds them, and every action, δ, clean action and attacked flag
   must come out bit for bit (where a policy file is unavailable, a note says what
   was not re-derived: nothing passes silently);
4. the manifest's per-episode length, returns and outcome must be the simulated ones.

Steps are numbered as the game counts them: step 0 is the reset, step k the k-th
``env.step``; the arrays' row ``t`` (action, reward, δ, clean action, attacked flag)
belongs to step ``t + 1``. A difference is a failed ``EpisodeCheck`` naming the
episode, the step and the field; a record that cannot be read at all (malformed
manifest or arrays) is a ``RecordError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import envs
from arena.recording import (
    EpisodeRecord,
    RecordError,
    load_episode,
    member_path,
    read_manifest,
    validate_manifest,
)

log = logging.getLogger(__name__)

DELTA_TOLERANCE = 1e-6
"""Slack on the budget check of a stored δ (float32 rounding of ``x_adv - x``)."""


@dataclass(frozen=True)
class EpisodeCheck:
    index: int
    steps: int
    match: bool
    first_mismatch: int | None = None
    """The first step that differs (0 = the reset or the manifest, k = the k-th step)."""
    detail: str = ""
    field: str = ""
    """What differs: ``obs.SEAT``, ``reward.SEAT``, ``action.SEAT``, ``delta.SEAT``,
    ``clean_action.SEAT``, ``attacked.SEAT``, ``length``, ``reset_seed``,
    ``returns.SEAT``, ``outcome.SEAT``, ``attacks``, ``policies.SEAT.sha256``..."""
    notes: tuple[str, ...] = ()
    """What could not be checked (e.g. a policy file that is gone), said, not skipped."""

    @property
    def message(self) -> str:
        """One line, e.g. ``episode 3, step 101: reward of 'player' differs (...)``."""
        if self.match:
            return f"episode {self.index}: {self.steps} steps; verified"
        return f"episode {self.index}, step {self.first_mismatch}: {self.detail}"


class _Mismatch(NamedTuple):
    step: int
    field: str
    detail: str


def make_env(manifest: dict[str, Any], **overrides: Any) -> Any:
    """A fresh env exactly as the record's manifest describes it."""
    try:
        envs.spec(manifest["env"])
    except envs.EnvError as exc:
        raise RecordError(f"record's env is not available: {exc}") from None
    return envs.make(manifest["env"], **{**manifest.get("env_kwargs", {}), **overrides})


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _show(a: Any) -> str:
    a = np.asarray(a)
    if a.size <= 6:
        items = [str(x) for x in a.ravel()]  # numpy's shortest repr for the dtype
        return items[0] if a.ndim == 0 else "[" + ", ".join(items) + "]"
    return f"{a.dtype} array {a.shape}"


def _differs(name: str, seat: str, recorded: Any, derived: Any, how: str) -> str:
    recorded, derived = np.asarray(recorded), np.asarray(derived)
    if recorded.shape != derived.shape or recorded.dtype != derived.dtype:
        return (
            f"{name} of {seat!r} differs (recorded {recorded.dtype} {recorded.shape}, "
            f"{how} {derived.dtype} {derived.shape})"
        )
    if recorded.size > 6 and recorded.dtype.kind in "fiu":
        gap = np.max(np.abs(recorded.astype(np.float64) - derived.astype(np.float64)))
        return f"{name} of {seat!r} differs (max |recorded - {how}| = {gap:.3g})"
    return f"{name} of {seat!r} differs (recorded {_show(recorded)}, {how} {_show(derived)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _entry(manifest: dict[str, Any], index: int) -> dict[str, Any]:
    for entry in manifest["episodes"]:
        if entry["index"] == index:
            return entry
    raise RecordError(f"episode {index} is not listed in the record's manifest")


def _deterministic(manifest: dict[str, Any], seat: str) -> bool:
    det = manifest.get("deterministic", True)
    return bool(det.get(seat, True)) if isinstance(det, dict) else bool(det)


# ---------------------------------------------------------------- 1. structure


def _check_space(name: str, seat: str, arr: np.ndarray, space: Any) -> _Mismatch | None:
    field = f"{name}.{seat}"
    dtype, shape = getattr(space, "dtype", None), getattr(space, "shape", None)
    label = name.replace("_", " ")
    if dtype is not None and arr.dtype != dtype:
        return _Mismatch(
            1,
            field,
            f"{label} of {seat!r} has dtype {arr.dtype}; the game's action space "
            f"takes {np.dtype(dtype)} (every step)",
        )
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        return _Mismatch(
            1,
            field,
            f"{label} of {seat!r} has shape {tuple(arr.shape[1:])} per step; the game's "
            f"action space takes {tuple(shape)} (every step)",
        )
    for t in range(len(arr)):
        if not space.contains(arr[t]):
            return _Mismatch(
                t + 1, field, f"{label} of {seat!r} ({_show(arr[t])}) is outside {space}"
            )
    return None


def _attack_budget(seat: str, spec: str) -> Any:
    from agents.attacks import AttackSpecError, parse_attack

    try:
        return parse_attack(spec)
    except AttackSpecError as exc:
        raise RecordError(f"the manifest's attacks.{seat} is not a valid attack: {exc}") from None


def _check_delta(seat: str, arrays: dict[str, np.ndarray], attack: Any) -> _Mismatch | None:
    delta, attacked = arrays["delta"], arrays["attacked"]
    field = f"delta.{seat}"
    flat = delta.reshape(len(delta), -1)
    budget = attack.budget
    for t in range(len(delta)):
        row = flat[t]
        if not np.all(np.isfinite(row)):
            return _Mismatch(t + 1, field, f"delta of {seat!r} is not finite")
        if not attacked[t]:
            if np.any(row != 0):
                return _Mismatch(
                    t + 1,
                    f"attacked.{seat}",
                    f"attacked flag of {seat!r} is False, but its delta is not 0",
                )
            continue
        if attack.round_to_obs:
            continue  # rounding to valid pixels may step past ε by half a level
        if budget.norm == "linf":
            size = float(np.max(np.abs(row))) if row.size else 0.0
            over = size > budget.eps + DELTA_TOLERANCE
        elif budget.norm == "l2":
            size = float(np.sqrt(np.sum(row.astype(np.float64) ** 2)))
            over = size > budget.eps * (1 + 1e-5) + DELTA_TOLERANCE
        else:
            frame = delta[t]
            moved = np.any(frame != 0, axis=0) if frame.ndim == 3 else frame != 0
            size = float(np.count_nonzero(moved))
            over = size > budget.eps
        if over:
            return _Mismatch(
                t + 1,
                field,
                f"delta of {seat!r} is outside the attack's budget "
                f"({budget.norm} size {size:.6g} > ε={budget.eps:g})",
            )
    return None


def _check_structure(
    manifest: dict[str, Any], entry: dict[str, Any], record: EpisodeRecord, env: Any
) -> _Mismatch | None:
    from arena.match import episode_seed

    t_len = record.length
    for seat in record.actions:
        if len(record.actions[seat]) != t_len:
            return _Mismatch(
                min(t_len, len(record.actions[seat])),
                f"action.{seat}",
                f"seats have different numbers of steps ({t_len} and "
                f"{len(record.actions[seat])} for {seat!r})",
            )
    if entry["length"] != t_len:
        return _Mismatch(
            min(entry["length"], t_len),
            "length",
            f"length differs (manifest {entry['length']} steps, episode file {t_len})",
        )
    if entry["reset_seed"] != record.reset_seed:
        return _Mismatch(
            0,
            "reset_seed",
            f"reset_seed differs (manifest {entry['reset_seed']}, episode file "
            f"{record.reset_seed})",
        )
    if "seed" in manifest:
        derived = episode_seed(manifest["seed"], record.index)
        if derived != record.reset_seed:
            return _Mismatch(
                0,
                "reset_seed",
                f"reset_seed differs (recorded {record.reset_seed}, derived from seed "
                f"{manifest['seed']} and index {record.index}: {derived})",
            )
    for seat, acts in record.actions.items():
        space = env.action_space(seat)
        bad = _check_space("action", seat, acts, space)
        if bad:
            return bad
        rew = record.rewards[seat]
        if rew.dtype != np.float64 or rew.shape != (t_len,):
            return _Mismatch(
                1,
                f"reward.{seat}",
                f"reward of {seat!r} is {rew.dtype} {rew.shape}; records hold float64 ({t_len},)",
            )
    attacks = manifest.get("attacks") or {}
    if sorted(attacks) != sorted(record.attack):
        return _Mismatch(
            0,
            "attacks",
            f"the manifest's attacked seats {sorted(attacks)} differ from the record's "
            f"(δ recorded for {sorted(record.attack)})",
        )
    for seat, arrays in record.attack.items():
        bad = _check_space("clean_action", seat, arrays["clean_action"], env.action_space(seat))
        if bad:
            return bad
        att, delta = arrays["attacked"], arrays["delta"]
        if att.dtype != np.bool_ or att.shape != (t_len,):
            return _Mismatch(
                1,
                f"attacked.{seat}",
                f"attacked flags of {seat!r} are {att.dtype} {att.shape}; records hold "
                f"bool ({t_len},)",
            )
        if delta.dtype != np.float32 or delta.ndim < 2:
            return _Mismatch(
                1,
                f"delta.{seat}",
                f"delta of {seat!r} is {delta.dtype} {delta.shape}; records hold float32 (T, ...)",
            )
        bad = _check_delta(seat, arrays, _attack_budget(seat, attacks[seat]))
        if bad:
            return bad
    return None


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


MAX_POLICY_FILES = 10_000
"""A policy directory (``run:DIR``) with more files than this is not hashed."""


def _sha256(path: Path) -> str | None:
    """The sha256 ``agents.specs.reference`` records for ``path``; None for what no
    policy is (a device, a FIFO, a directory of more than ``MAX_POLICY_FILES`` files),
    which is never opened."""
    from agents import specs

    if path.is_file():
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = specs.sha256_of(path)
        return _SHA_CACHE[key]
    if path.is_dir():
        for count, _ in enumerate(path.rglob("*")):
            if count >= MAX_POLICY_FILES:
                return None
        return specs.sha256_of(path)
    return None


def _check_policy_refs(manifest: dict[str, Any]) -> _Mismatch | None:
    """Each ref's kind is its spec's; each file it names that exists has its sha256."""
    from agents import specs

    for seat, ref in (manifest.get("policies") or {}).items():
        if isinstance(ref, str):
            continue
        try:
            kind, _ = specs.parse(ref["spec"])
        except specs.PolicySpecError as exc:
            raise RecordError(f"the manifest's policies.{seat}.spec: {exc}") from None
        if kind.name != ref["kind"]:
            return _Mismatch(
                0,
                f"policies.{seat}.kind",
                f"policy of {seat!r}: its spec {ref['spec']!r} is of kind {kind.name!r}, "
                f"the manifest says {ref['kind']!r}",
            )
        paths = ref["path"].split("|") if ref.get("path") else []
        hashes = ref["sha256"].split("|") if ref.get("sha256") else []
        needs_file = kind.takes_path or kind.takes_spec
        if len(paths) != len(hashes) or (paths and not needs_file):
            return _Mismatch(
                0,
                f"policies.{seat}.sha256",
                f"policy of {seat!r}: {len(paths)} file(s) but {len(hashes)} sha256(s) "
                f"for a {kind.name!r} policy",
            )
        if kind.takes_path and not kind.takes_spec and not paths:
            return _Mismatch(
                0,
                f"policies.{seat}.sha256",
                f"policy of {seat!r}: a {kind.name!r} policy without its file's sha256",
            )
        loaded = [(f["path"], f["sha256"]) for f in (ref.get("files") or {}).values()]
        for path, digest in [*zip(paths, hashes, strict=True), *loaded]:
            p = Path(path)
            if not p.exists():
                continue  # unavailable: said in the notes of what was not re-derived
            actual = _sha256(p)
            if actual is None:
                return _Mismatch(
                    0,
                    f"policies.{seat}.path",
                    f"policy file of {seat!r} ({path}) is not a policy file or directory",
                )
            if actual != digest:
                return _Mismatch(
                    0,
                    f"policies.{seat}.sha256",
                    f"policy file of {seat!r} ({path}) has sha256 {actual[:16]}..., "
                    f"the manifest records {digest[:16]}...",
                )
    return None


# ---------------------------------------------------------------- 2. simulation


def _outcome(info: dict[str, Any], seat: str, returns: dict[str, float]) -> str:
    from arena.match import _outcome_from

    return _outcome_from(info, seat, returns)


def _simulate(
    env: Any, record: EpisodeRecord, seats: list[str], on_step: Callable | None
) -> tuple[_Mismatch | None, dict[str, float], dict[str, str]]:
    """Step the recorded actions from the reset seed; compare every observation and reward."""
    obs, _ = env.reset(seed=record.reset_seed)
    if on_step:
        on_step(env, 0)
    for s in seats:
        if not _same(np.asarray(obs[s]), record.observations[s][0]):
            return (
                _Mismatch(0, f"obs.{s}", _obs_detail(s, obs[s], record.observations[s][0])),
                {},
                {},
            )
    running = dict.fromkeys(seats, 0.0)
    rewards: dict[str, list[float]] = {s: [] for s in seats}
    info: dict[str, Any] = {}
    done, how = False, ""
    for t in range(record.length):
        obs, rew, term, trunc, info = env.step({s: record.actions[s][t] for s in seats})
        if on_step:
            on_step(env, t + 1)
        for s in seats:
            if not _same(np.asarray(obs[s]), record.observations[s][t + 1]):
                detail = _obs_detail(s, obs[s], record.observations[s][t + 1])
                return _Mismatch(t + 1, f"obs.{s}", detail), {}, {}
            sim, rec = float(rew[s]), record.rewards[s][t]
            if not _same(np.asarray(sim, dtype=np.float64), np.asarray(rec)):
                return (
                    _Mismatch(
                        t + 1,
                        f"reward.{s}",
                        f"reward of {s!r} differs (recorded {float(rec)!r}, simulated {sim!r})",
                    ),
                    {},
                    {},
                )
            running[s] += sim
            rewards[s].append(sim)
        done = any(term.values()) or any(trunc.values())
        how = "terminated" if any(term.values()) else "truncated"
        if done and t + 1 < record.length:
            return (
                _Mismatch(
                    t + 1,
                    "length",
                    f"the game ended the episode here ({how}), but the record goes on to "
                    f"step {record.length}",
                ),
                {},
                {},
            )
    if not done:
        return (
            _Mismatch(
                record.length,
                "length",
                f"the record ends at step {record.length}, but the game did not end the "
                f"episode there (neither terminated nor truncated): the record is cut short",
            ),
            {},
            {},
        )
    returns = {s: float(np.asarray(rewards[s], dtype=np.float64).sum()) for s in seats}
    infos = info if isinstance(info, dict) else {}
    outcome = {s: _outcome(infos.get(s, {}) or {}, s, running) for s in seats}
    return None, returns, outcome


def _obs_detail(seat: str, simulated: Any, recorded: np.ndarray) -> str:
    sim = np.asarray(simulated)
    if sim.shape != recorded.shape or sim.dtype != recorded.dtype:
        return (
            f"observation of {seat!r} differs (recorded {recorded.dtype} {recorded.shape}, "
            f"simulated {sim.dtype} {sim.shape})"
        )
    diff = np.max(np.abs(sim.astype(np.float64) - recorded.astype(np.float64)))
    return f"observation of {seat!r} differs (max |Δ| = {diff:.3g})"


# ---------------------------------------------------------------- 3. re-derivation


@contextlib.contextmanager
def _torch_as_in_a_match() -> Iterator[None]:
    """One thread (as the arena plays) and the caller's torch RNG state kept."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


def _policy_spec(manifest: dict[str, Any], seat: str) -> tuple[str | None, str]:
    """The spec that loads exactly the policy the manifest names, or (None, why not)."""
    from agents import specs

    ref = (manifest.get("policies") or {}).get(seat)
    if ref is None:
        default = envs.spec(manifest["env"]).default_policies.get(seat)
        if default is None:
            return None, f"the manifest names no policy for {seat!r}"
        return str(default), ""
    if isinstance(ref, str):
        return ref, ""
    paths = ref["path"].split("|") if ref.get("path") else []
    loaded = [f["path"] for f in (ref.get("files") or {}).values()]
    for path in [*paths, *loaded]:
        if not Path(path).exists():
            return None, f"the policy file of {seat!r} ({path}) is unavailable"
    kind = specs.kinds().get(ref["kind"])
    if kind is not None and kind.takes_path and not kind.takes_spec and len(paths) == 1:
        return f"{ref['kind']}:{paths[0]}", ""
    return str(ref["spec"]), ""


_POLICIES: dict[str, Any] = {}


def _load_policy(manifest: dict[str, Any], env: Any, seat: str, spec: str) -> Any:
    """Loaded as ``arena.match`` loads it; kept (like match's cache) for files whose
    sha256 the manifest records and ``_check_policy_refs`` has checked."""
    from agents import specs

    ref = (manifest.get("policies") or {}).get(seat)
    hashed = isinstance(ref, dict) and bool(ref.get("sha256"))
    key = json.dumps(
        [manifest["env"], manifest.get("env_kwargs", {}), seat, spec, ref],
        sort_keys=True,
        default=str,
    )
    if hashed and key in _POLICIES:
        return _POLICIES[key]
    policy = specs.resolve(
        spec,
        env.observation_space(seat),
        env.action_space(seat),
        env_id=manifest["env"],
        seat=seat,
    )
    if hashed:
        if len(_POLICIES) >= 8:
            _POLICIES.pop(next(iter(_POLICIES)))
        _POLICIES[key] = policy
    return policy


_Derived = tuple[dict[int, _Mismatch], tuple[str, ...]]
_CHUNKS: dict[str, _Derived] = {}


def _chunk_members(
    manifest: dict[str, Any], record: EpisodeRecord
) -> tuple[list[EpisodeRecord] | None, int, str]:
    """The episodes played in lockstep with ``record`` (in order), or (None, _, why not)."""
    from arena.match import CHUNK

    indices = sorted(e["index"] for e in manifest["episodes"])
    if indices != list(range(len(indices))):
        return None, 0, "the record's episodes are not episodes 0..N-1 of one match"
    chunk = record.index // CHUNK
    members = range(chunk * CHUNK, min(len(indices), (chunk + 1) * CHUNK))
    out = []
    for i in members:
        if i == record.index:
            out.append(record)
        elif record.source is None:
            return None, chunk, "the other episodes of its lockstep chunk are not at hand"
        else:
            out.append(load_episode(record.source, _entry(manifest, i), list(manifest["seats"])))
    return out, chunk, ""


def _cache_key(manifest: dict[str, Any], record: EpisodeRecord, chunk: int) -> str | None:
    if record.source is None:
        return None
    from arena.match import CHUNK

    stamp = []
    for entry in manifest["episodes"]:
        if entry["index"] // CHUNK == chunk:
            data = member_path(record.source, entry["file"], "episode file").read_bytes()
            stamp.append((entry["file"], hashlib.sha256(data).hexdigest()))
    text = json.dumps([str(record.source.resolve()), chunk, manifest, stamp], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


NOT_REDERIVED = (
    "its actions, δ, clean actions and attacked flags were not re-derived "
    "(observations, rewards and the end were checked)"
)


def _rederive(manifest: dict[str, Any], record: EpisodeRecord, env: Any) -> _Derived:
    """Play the record's lockstep chunk again over its observations; per episode index,
    the first action, δ, clean action or attacked flag that differs."""
    if "seed" not in manifest:
        return {}, (f"the manifest has no seed: {NOT_REDERIVED}",)
    members, chunk, why = _chunk_members(manifest, record)
    if members is None:
        return {}, (f"{why}: {NOT_REDERIVED}",)
    key = _cache_key(manifest, record, chunk)
    if key is not None and key in _CHUNKS:
        return _CHUNKS[key]
    result = _rederive_chunk(manifest, members, chunk, env)
    if key is not None:
        if len(_CHUNKS) >= 16:
            _CHUNKS.pop(next(iter(_CHUNKS)))
        _CHUNKS[key] = result
    return result


def _rederive_chunk(
    manifest: dict[str, Any], members: list[EpisodeRecord], chunk: int, env: Any
) -> _Derived:
    from agents.attacks import parse_attack
    from arena.match import LockstepPlayers

    seats = list(env.possible_agents)
    policies = {}
    for seat in seats:
        spec, why = _policy_spec(manifest, seat)
        if spec is None:
            return {}, (f"{why}: {NOT_REDERIVED}",)
        try:
            policies[seat] = _load_policy(manifest, env, seat, spec)
        except ImportError as exc:  # an optional dependency missing here: say so
            why = f"the policy of {seat!r} ({spec}) cannot be loaded here ({exc})"
            return {}, (f"{why}: {NOT_REDERIVED}",)
        except Exception as exc:  # the file is there, as hashed, and cannot serve the seat
            bad = _Mismatch(
                1,
                f"policies.{seat}",
                f"the manifest's policy of {seat!r} cannot have played this record: "
                f"{type(exc).__name__}: {_first_line(exc)}",
            )
            return {m.index: bad for m in members}, ()
    for rec in members[1:]:
        for seat in seats:
            first, obs = members[0].observations[seat], rec.observations[seat]
            if obs.shape[1:] != first.shape[1:] or obs.dtype != first.dtype:
                why = f"episode {rec.index} of its lockstep chunk has other observation shapes"
                return {}, (f"{why}: {NOT_REDERIVED}",)
    seed = manifest["seed"]
    known = "deterministic" in manifest
    det = {s: _deterministic(manifest, s) for s in seats}
    attack_specs = manifest.get("attacks") or {}
    found: dict[int, _Mismatch] = {}
    doubt: set[str] = set()
    n = len(members)
    lengths = [r.length for r in members]
    with _torch_as_in_a_match():
        attacks = {s: parse_attack(a) for s, a in attack_specs.items()}
        players = LockstepPlayers(policies, attacks, det, seed, chunk)
        episode_start = np.ones(n, dtype=bool)
        for t in range(max(lengths)):
            alive = [e for e in range(n) if t < lengths[e] and members[e].index not in found]
            if not alive:
                break
            for seat in seats:
                try:
                    batch = np.stack([r.observations[seat][min(t, r.length)] for r in members])
                    actions, step = players.act(seat, batch, episode_start)
                except Exception as exc:  # the named policy or attack cannot have played
                    for e in alive:
                        found[members[e].index] = _Mismatch(
                            t + 1,
                            f"policies.{seat}",
                            f"the manifest's policy of {seat!r} cannot have played this "
                            f"record: {type(exc).__name__}: {_first_line(exc)}",
                        )
                    return found, ()
                for e in alive:
                    rec = members[e]
                    if rec.index in found:
                        continue
                    checks: list[tuple[str, Any, Any]] = [
                        ("action", rec.actions[seat][t], np.asarray(actions[e]))
                    ]
                    if step is not None:
                        arrays = rec.attack[seat]
                        checks += [
                            ("delta", arrays["delta"][t], np.asarray(step.delta[e], np.float32)),
                            ("clean_action", arrays["clean_action"][t], step.clean_actions[e]),
                            ("attacked", arrays["attacked"][t], np.bool_(step.attacked[e])),
                        ]
                    for name, recorded, derived in checks:
                        if _same(np.asarray(recorded), np.asarray(derived)):
                            continue
                        if name == "action" and not known:
                            doubt.add(seat)  # sampled or not? the manifest does not say
                            continue
                        label = name.replace("_", " ")
                        found[rec.index] = _Mismatch(
                            t + 1,
                            f"{name}.{seat}",
                            _differs(label, seat, recorded, derived, "re-derived"),
                        )
                        break
            episode_start = np.zeros(n, dtype=bool)
    notes = tuple(
        f"actions of {s!r} not re-derived: the manifest does not say whether they were "
        f"sampled ('deterministic')"
        for s in sorted(doubt)
    )
    return found, notes


# ---------------------------------------------------------------- the checks


def resimulate(
    manifest: dict[str, Any],
    record: EpisodeRecord,
    env: Any = None,
    on_step: Callable[[Any, int], None] | None = None,
) -> EpisodeCheck:
    """Verify one recorded episode (see the module docstring).

    ``on_step(env, t)`` is called after the reset (t = 0) and after every step (for
    rendering a video of the re-simulation). Raises ``RecordError`` for a malformed
    manifest or episode; returns a failed ``EpisodeCheck`` for any difference.
    """
    validate_manifest(manifest)
    entry = _entry(manifest, record.index)
    own = env is None
    env = make_env(manifest) if own else env
    try:
        return _resimulate(manifest, entry, record, env, on_step)
    finally:
        if own:
            env.close()


def _resimulate(
    manifest: dict[str, Any],
    entry: dict[str, Any],
    record: EpisodeRecord,
    env: Any,
    on_step: Callable[[Any, int], None] | None,
) -> EpisodeCheck:
    seats = list(env.possible_agents)
    if sorted(record.actions) != sorted(seats):
        raise RecordError(
            f"episode {record.index}: the record's seats {sorted(record.actions)} are not "
            f"{manifest['env']}'s {sorted(seats)}"
        )

    def failed(m: _Mismatch, notes: tuple[str, ...] = ()) -> EpisodeCheck:
        return EpisodeCheck(record.index, m.step, False, m.step, m.detail, m.field, notes)

    bad = _check_structure(manifest, entry, record, env) or _check_policy_refs(manifest)
    if bad:
        return failed(bad)
    sim_bad, returns, outcome = _simulate(env, record, seats, on_step)
    derived, notes = _rederive(manifest, record, env)
    notes = tuple(f"episode {record.index}: {n}" for n in notes)
    der_bad = derived.get(record.index)
    if sim_bad or der_bad:
        first = min(
            (m for m in (sim_bad, der_bad) if m is not None), key=lambda m: (m.step, m is der_bad)
        )
        return failed(first, notes)
    for seat in seats:
        if entry["returns"][seat] != returns[seat]:
            return failed(
                _Mismatch(
                    record.length,
                    f"returns.{seat}",
                    f"return of {seat!r} in the manifest differs (recorded "
                    f"{entry['returns'][seat]!r}, simulated {returns[seat]!r})",
                ),
                notes,
            )
        if "outcome" in entry and entry["outcome"][seat] != outcome[seat]:
            return failed(
                _Mismatch(
                    record.length,
                    f"outcome.{seat}",
                    f"outcome of {seat!r} in the manifest differs (recorded "
                    f"{entry['outcome'][seat]!r}, simulated {outcome[seat]!r})",
                ),
                notes,
            )
    return EpisodeCheck(record.index, record.length, True, notes=notes)


def verify(directory: str | Path, episodes: list[int] | None = None) -> list[EpisodeCheck]:
    """Verify the listed episode positions (all by default) of a record directory."""
    manifest = read_manifest(directory)
    entries, seats = manifest["episodes"], list(manifest["seats"])
    positions = range(len(entries)) if episodes is None else episodes
    for p in positions:
        if not 0 <= p < len(entries):
            raise RecordError(
                f"episode {p} is out of range; this record has episodes 0..{len(entries) - 1}"
            )
    return [resimulate(manifest, load_episode(directory, entries[p], seats)) for p in positions]
