"""Re-derivation: the chunk of episodes the arena played in lockstep with the recorded
one is played again over its recorded observations, with the manifest's policies and
attacks seeded as ``arena.match`` seeds them; every action, δ, clean action and
attacked flag must come out bit for bit. What cannot be played again is a note."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from arena.artifacts import RecordManifest, member_path
from arena.recording import EpisodeRecord, load_episode
from arena.replay.check import Mismatch, differs, first_line, same
from arena.replay.notes import not_rederived, sampling_unknown
from arena.replay.policies import load_policy, policy_specs

Derived = tuple[dict[int, Mismatch], tuple[str, ...]]
"""Per episode index, the first re-derived value that differs; and the notes."""

_CHUNKS: dict[str, Derived] = {}


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


def _chunk_members(
    manifest: RecordManifest, record: EpisodeRecord
) -> tuple[list[EpisodeRecord] | None, int, str]:
    """The episodes played in lockstep with ``record`` (in order), or (None, _, why not)."""
    from arena.match import CHUNK

    indices = sorted(e.index for e in manifest.episodes)
    if indices != list(range(len(indices))):
        return None, 0, "the record's episodes are not episodes 0..N-1 of one match"
    chunk = record.index // CHUNK
    out = []
    for i in range(chunk * CHUNK, min(len(indices), (chunk + 1) * CHUNK)):
        if i == record.index:
            out.append(record)
        elif record.source is None:
            return None, chunk, "the other episodes of its lockstep chunk are not at hand"
        else:
            out.append(load_episode(record.source, manifest.entry(i), manifest.seats))
    return out, chunk, ""


def _cache_key(manifest: RecordManifest, record: EpisodeRecord, chunk: int) -> str | None:
    if record.source is None:
        return None
    from arena.match import CHUNK

    stamp = []
    for entry in manifest.episodes:
        if entry.index // CHUNK == chunk:
            path = member_path(record.source, entry.file, "episode file")
            with open(path, "rb") as fh:  # read by load_episode already: a bounded file
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            stamp.append((entry.file, digest))
    text = json.dumps(
        [str(record.source.resolve()), chunk, manifest.to_json(), stamp], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def rederive(manifest: RecordManifest, record: EpisodeRecord, env: Any) -> Derived:
    """Play the record's lockstep chunk again over its observations; per episode index,
    the first action, δ, clean action or attacked flag that differs."""
    if manifest.seed is None:
        return {}, (not_rederived("the manifest has no seed"),)
    members, chunk, why = _chunk_members(manifest, record)
    if members is None:
        return {}, (not_rederived(why),)
    key = _cache_key(manifest, record, chunk)
    if key is not None and key in _CHUNKS:
        return _CHUNKS[key]
    result = _rederive_chunk(manifest, members, chunk, env)
    if key is not None:
        if len(_CHUNKS) >= 16:
            _CHUNKS.pop(next(iter(_CHUNKS)))
        _CHUNKS[key] = result
    return result


def _cannot_have_played(seat: str, step: int, exc: Exception) -> Mismatch:
    return Mismatch(
        step,
        f"policies.{seat}",
        f"the manifest's policy of {seat!r} cannot have played this record: "
        f"{type(exc).__name__}: {first_line(exc)}",
    )


def _load_policies(
    manifest: RecordManifest, members: list[EpisodeRecord], env: Any, seats: list[str]
) -> tuple[dict[str, Any] | None, Derived]:
    """Every seat's policy; else (None, what to report instead of re-deriving)."""
    specs, why = policy_specs(manifest)
    if specs is None:
        return None, ({}, (not_rederived(why),))
    policies = {}
    for seat in seats:
        try:
            policies[seat] = load_policy(manifest, env, seat, specs[seat])
        except ImportError as exc:  # an optional dependency missing here: say so
            why = f"the policy of {seat!r} ({specs[seat]}) cannot be loaded here ({exc})"
            return None, ({}, (not_rederived(why),))
        except Exception as exc:  # the file is there, as hashed, and cannot serve the seat
            bad = _cannot_have_played(seat, 1, exc)
            return None, ({m.index: bad for m in members}, ())
    for rec in members[1:]:
        for seat in seats:
            first, obs = members[0].observations[seat], rec.observations[seat]
            if obs.shape[1:] != first.shape[1:] or obs.dtype != first.dtype:
                why = f"episode {rec.index} of its lockstep chunk has other observation shapes"
                return None, ({}, (not_rederived(why),))
    return policies, ({}, ())


def _derived(e: int, actions: Any, step: Any) -> list[tuple[str, Any]]:
    """Episode ``e``'s re-derived values of one seat at one step, in the order checked."""
    out: list[tuple[str, Any]] = [("action", np.asarray(actions[e]))]
    if step is not None:
        out += [
            ("delta", np.asarray(step.delta[e], np.float32)),
            ("clean_action", step.clean_actions[e]),
            ("attacked", np.bool_(step.attacked[e])),
        ]
    return out


def _first_difference(
    rec: EpisodeRecord, seat: str, t: int, derived: list[tuple[str, Any]], known: bool
) -> tuple[Mismatch | None, bool]:
    """The first recorded value of ``seat`` at row ``t`` that its re-derived one
    contradicts; and whether the action differed where sampling is unknown."""
    doubt = False
    for name, value in derived:
        recorded = rec.actions[seat][t] if name == "action" else rec.attack[seat][name][t]
        if same(np.asarray(recorded), np.asarray(value)):
            continue
        if name == "action" and not known:
            doubt = True  # sampled or not? the manifest does not say
            continue
        detail = differs(name.replace("_", " "), seat, recorded, value, "re-derived")
        return Mismatch(t + 1, f"{name}.{seat}", detail), doubt
    return None, doubt


def _rederive_chunk(
    manifest: RecordManifest, members: list[EpisodeRecord], chunk: int, env: Any
) -> Derived:
    from agents.attacks.base import AttackNotApplicable
    from arena.attacks import build_attack
    from arena.match import LockstepPlayers

    seats = list(env.possible_agents)
    policies, instead = _load_policies(manifest, members, env, seats)
    if policies is None or manifest.seed is None:
        return instead
    known = manifest.deterministic is not None
    det = {s: manifest.is_deterministic(s) for s in seats}
    found: dict[int, Mismatch] = {}
    doubt: set[str] = set()
    n, lengths = len(members), [r.length for r in members]
    with _torch_as_in_a_match():
        attacks = {s: build_attack(a) for s, a in manifest.attacks.items()}
        players = LockstepPlayers(policies, attacks, det, manifest.seed, chunk)
        episode_start = np.ones(n, dtype=bool)
        for t in range(max(lengths)):
            alive = [e for e in range(n) if t < lengths[e] and members[e].index not in found]
            if not alive:
                break
            seen = {
                s: np.stack([r.observations[s][min(t, r.length)] for r in members]) for s in seats
            }
            for seat in seats:
                try:
                    actions, step = players.act(seat, seen[seat], episode_start, seen)
                except AttackNotApplicable as exc:  # refused on this victim since then:
                    # still a mismatch (a forger could name such an attack to escape the
                    # check), but one that says what it is
                    refused = Mismatch(
                        t + 1,
                        f"attacks.{seat}",
                        f"the record's attack of {seat!r} ({manifest.attacks.get(seat)}) "
                        f"is refused by this arena, so its actions cannot be re-derived: "
                        f"{first_line(exc)}",
                    )
                    for e in alive:
                        found[members[e].index] = refused
                    return found, ()
                except Exception as exc:  # the named policy or attack cannot have played
                    for e in alive:
                        found[members[e].index] = _cannot_have_played(seat, t + 1, exc)
                    return found, ()
                for e in alive:
                    if members[e].index in found:
                        continue
                    derived = _derived(e, actions, step)
                    bad, unsure = _first_difference(members[e], seat, t, derived, known)
                    if unsure:
                        doubt.add(seat)
                    if bad:
                        found[members[e].index] = bad
            episode_start = np.zeros(n, dtype=bool)
    return found, tuple(sampling_unknown(s) for s in sorted(doubt))
