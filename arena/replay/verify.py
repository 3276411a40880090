"""The entry points: ``resimulate`` one recorded episode, ``verify`` a record directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from arena.artifacts import EpisodeEntry, RecordManifest
from arena.recording import EpisodeRecord, RecordError, load_episode, read_manifest
from arena.replay.check import EpisodeCheck, Mismatch
from arena.replay.notes import of_episode
from arena.replay.policies import check_policy_refs
from arena.replay.rederive import rederive
from arena.replay.simulate import make_env, simulate
from arena.replay.structure import check_structure


def resimulate(
    manifest: RecordManifest,
    record: EpisodeRecord,
    env: Any = None,
    on_step: Callable[[Any, int], None] | None = None,
) -> EpisodeCheck:
    """Verify one recorded episode (see ``arena.replay``).

    ``on_step(env, t)`` is called after the reset (t = 0) and after every step (for
    rendering a video of the re-simulation). Raises ``RecordError`` for a malformed
    manifest or episode; returns a failed ``EpisodeCheck`` for any difference.
    """
    entry = manifest.entry(record.index)
    own = env is None
    env = make_env(manifest) if own else env
    try:
        return _resimulate(manifest, entry, record, env, on_step)
    finally:
        if own:
            env.close()


def _check_summary(
    entry: EpisodeEntry, returns: dict[str, float], outcome: dict[str, str], steps: int
) -> Mismatch | None:
    """The manifest's per-episode returns and outcome are the simulated ones."""
    for seat, simulated in returns.items():
        if entry.returns[seat] != simulated:
            return Mismatch(
                steps,
                f"returns.{seat}",
                f"return of {seat!r} in the manifest differs (recorded "
                f"{entry.returns[seat]!r}, simulated {simulated!r})",
            )
        if entry.outcome is not None and entry.outcome[seat] != outcome[seat]:
            return Mismatch(
                steps,
                f"outcome.{seat}",
                f"outcome of {seat!r} in the manifest differs (recorded "
                f"{entry.outcome[seat]!r}, simulated {outcome[seat]!r})",
            )
    return None


def _resimulate(
    manifest: RecordManifest,
    entry: EpisodeEntry,
    record: EpisodeRecord,
    env: Any,
    on_step: Callable[[Any, int], None] | None,
) -> EpisodeCheck:
    seats = list(env.possible_agents)
    if sorted(record.actions) != sorted(seats):
        raise RecordError(
            f"episode {record.index}: the record's seats {sorted(record.actions)} are not "
            f"{manifest.env}'s {sorted(seats)}"
        )

    def failed(m: Mismatch, notes: tuple[str, ...] = ()) -> EpisodeCheck:
        return EpisodeCheck(record.index, m.step, False, m.step, m.detail, m.field, notes)

    bad = check_structure(manifest, entry, record, env) or check_policy_refs(manifest)
    if bad:
        return failed(bad)
    sim_bad, returns, outcome = simulate(env, record, seats, on_step)
    derived, notes = rederive(manifest, record, env)
    notes = of_episode(record.index, notes)
    der_bad = derived.get(record.index)
    if sim_bad or der_bad:
        first = min(
            (m for m in (sim_bad, der_bad) if m is not None), key=lambda m: (m.step, m is der_bad)
        )
        return failed(first, notes)
    bad = _check_summary(entry, returns, outcome, record.length)
    if bad:
        return failed(bad, notes)
    return EpisodeCheck(record.index, record.length, True, notes=notes)


def verify(directory: str | Path, episodes: list[int] | None = None) -> list[EpisodeCheck]:
    """Verify the listed episode positions (all by default) of a record directory."""
    manifest = read_manifest(directory)
    entries = manifest.episodes
    positions = range(len(entries)) if episodes is None else episodes
    for p in positions:
        if not 0 <= p < len(entries):
            raise RecordError(
                f"episode {p} is out of range; this record has episodes 0..{len(entries) - 1}"
            )
    return [
        resimulate(manifest, load_episode(directory, entries[p], manifest.seats)) for p in positions
    ]
