"""``run_match``: play a game with a policy in every seat, score it, optionally record it.

Episodes are grouped into fixed chunks of ``CHUNK`` episodes. A chunk is played in
lockstep (one batched ``predict`` per seat per step) and all of its randomness
(reset seeds, the policies' and attacks' own seeds, torch's generator) derives from
``(seed, chunk index)`` alone. Workers take whole chunks, so the same seed gives
the same result, bit for bit, whatever ``workers`` is.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

import envs
from agents import specs
from agents.attacks import ObservationAttack, parse_attack
from agents.numbers import parse_number, parse_seed
from agents.policies import Policy
from agents.whitebox import show
from arena.errors import MAX_EPISODES, ArenaError, max_workers
from arena.evaluation import SeatResult
from arena.parallel import Pool, pool_for
from arena.recording import EpisodeRecord

log = logging.getLogger(__name__)

CHUNK = 8
PolicyLike = str | Policy
AttackLike = str | ObservationAttack


class MatchError(ArenaError):
    """Bad match configuration: unknown seat, no policy for a seat, episodes <= 0."""


class MissingPolicy(MatchError):
    """A seat that was given no policy and has no default in its game."""

    def __init__(self, env_id: str, seat: str, seats: Iterable[str]):
        self.env_id, self.seat = env_id, seat
        super().__init__(
            f"seat {seat!r} of {env_id} needs a policy (--policy {seat}=SPEC); "
            f"seats: {', '.join(seats)}"
        )


def episode_seed(seed: int, index: int) -> int:
    """The env reset seed of episode ``index`` of a match seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _chunk_seed(seed: int, chunk: int, salt: int) -> int:
    return int(np.random.SeedSequence([seed, chunk, 1_000_003 + salt]).generate_state(1)[0])


@dataclass
class EpisodeOutcome:
    """The score of one episode."""

    index: int
    reset_seed: int
    length: int
    returns: dict[str, float]
    outcomes: dict[str, str]
    flips: dict[str, int] = field(default_factory=dict)
    attacked: dict[str, int] = field(default_factory=dict)
    end: str | None = None
    """How the episode ended, where the game says (``info["end"]``: ``"goal"``,
    ``"both down"``, ``"step limit"``...)."""


@dataclass(frozen=True)
class MatchResult:
    env: str
    episodes: int
    seed: int
    seats: dict[str, SeatResult]
    outcomes: list[EpisodeOutcome]

    @property
    def lengths(self) -> list[int]:
        return [o.length for o in self.outcomes]

    @property
    def ends(self) -> dict[str, int]:
        """How many episodes ended each way the game names, most frequent first (empty
        for games that do not say)."""
        counts = Counter(o.end for o in self.outcomes if o.end is not None)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def ends_line(self) -> str:
        """``ended: goal 96, both down 36, ...`` (empty for games that do not say)."""
        ends = self.ends
        return "ended: " + ", ".join(f"{how} {n}" for how, n in ends.items()) if ends else ""

    def to_json(self) -> dict[str, Any]:
        lengths = self.lengths
        out = {
            "env": self.env,
            "episodes": self.episodes,
            "seed": self.seed,
            "seats": {s: r.to_json() for s, r in self.seats.items()},
            "mean_length": float(np.mean(lengths)),
            "lengths": lengths,
        }
        if self.ends:
            out["ends"] = self.ends
        return out


@dataclass(frozen=True)
class _Job:
    env_id: str
    env_kwargs: dict[str, Any]
    policies: dict[str, PolicyLike]
    attacks: dict[str, AttackLike]
    deterministic: dict[str, bool]
    seed: int
    chunk: int
    indices: tuple[int, ...]
    record: bool
    match: int = 0
    """Which match of ``run_matches`` the chunk belongs to."""


_CACHE: dict[Any, Any] = {}


def _resolve_policy(p: PolicyLike, env: Any, seat: str, env_id: str) -> Policy:
    if not isinstance(p, str):
        return p
    key = ("policy", env_id, seat, p, specs.fingerprint(p))
    if key not in _CACHE:
        _CACHE[key] = specs.resolve(
            p, env.observation_space(seat), env.action_space(seat), env_id=env_id, seat=seat
        )
    return _CACHE[key]


def _resolve_attack(a: AttackLike) -> ObservationAttack:
    from arena.attacks import build_attack

    return build_attack(a)


def outcome_of(info: dict, seat: str, returns: dict[str, float]) -> str:
    """``seat``'s "win" | "loss" | "tie": the game's word in ``info``, else its return
    against the best other seat's."""
    if "outcome" in info:
        return str(info["outcome"])
    mine = returns[seat]
    others = [r for s, r in returns.items() if s != seat]
    ref = max(others) if others else 0.0
    return "win" if mine > ref else ("loss" if mine < ref else "tie")


def _stack(obs_list: list[Any]) -> np.ndarray:
    return np.stack([np.asarray(o) for o in obs_list])


class LockstepPlayers:
    """The seats of one chunk acting on its batch of episodes in lockstep: the one place
    where a chunk's randomness is seeded from ``(seed, chunk)`` (torch, each policy's and
    each attack's own generator) and recurrent states are carried. ``play_chunk`` plays
    with it; ``arena.replay`` re-derives a record's actions with it."""

    def __init__(
        self,
        policies: dict[str, Policy],
        attacks: dict[str, ObservationAttack],
        deterministic: dict[str, bool],
        seed: int,
        chunk: int,
    ):
        self.policies, self.attacks, self.deterministic = policies, attacks, deterministic
        torch.manual_seed(_chunk_seed(seed, chunk, 0))
        for i, seat in enumerate(policies):
            reset = getattr(policies[seat], "reset", None)
            if callable(reset):
                reset(seed=_chunk_seed(seed, chunk, 1 + i))
            if seat in attacks:
                attacks[seat].reset(seed=_chunk_seed(seed, chunk, 100 + i))
        self.states: dict[str, Any] = dict.fromkeys(policies)

    def act(
        self,
        seat: str,
        batch: np.ndarray,
        episode_start: np.ndarray,
        seen: dict[str, np.ndarray] | None = None,
    ) -> tuple[Any, Any]:
        """``(actions, attack step or None)`` of ``seat`` for the batch's observations;
        ``seen``, every seat's batch, is shown to the seat's policy first (a white-box
        adversary reads its victim's)."""
        det = self.deterministic.get(seat, True)
        if seen is not None:
            show(self.policies[seat], seen)
        if seat in self.attacks:
            step = self.attacks[seat].step(
                self.policies[seat], batch, self.states[seat], episode_start, det
            )
            self.states[seat] = step.state
            return step.actions, step
        actions, self.states[seat] = self.policies[seat].predict(
            batch, state=self.states[seat], episode_start=episode_start, deterministic=det
        )
        return actions, None


def play_chunk(job: _Job) -> tuple[list[EpisodeOutcome], list[EpisodeRecord]]:
    """Play the episodes of one chunk in lockstep (runs in a worker or in-process)."""
    n = len(job.indices)
    games = [envs.make(job.env_id, **job.env_kwargs) for _ in range(n)]
    seats = list(games[0].possible_agents)
    policies = {s: _resolve_policy(job.policies[s], games[0], s, job.env_id) for s in seats}
    attacks = {s: _resolve_attack(a) for s, a in job.attacks.items()}
    players = LockstepPlayers(policies, attacks, job.deterministic, job.seed, job.chunk)

    seeds = [episode_seed(job.seed, idx) for idx in job.indices]
    obs = [g.reset(seed=s)[0] for g, s in zip(games, seeds, strict=True)]
    last_obs = [dict(o) for o in obs]
    alive = np.ones(n, dtype=bool)
    episode_start = np.ones(n, dtype=bool)
    returns = [dict.fromkeys(seats, 0.0) for _ in range(n)]
    lengths = [0] * n
    outcomes: list[dict[str, str]] = [{} for _ in range(n)]
    ends: list[str | None] = [None] * n
    flips = [dict.fromkeys(attacks, 0) for _ in range(n)]
    attacked = [dict.fromkeys(attacks, 0) for _ in range(n)]
    traj: list[dict[str, dict[str, list]]] = [
        {k: {s: [] for s in seats} for k in ("obs", "action", "reward")} for _ in range(n)
    ]
    atk_traj: list[dict[str, dict[str, list]]] = [
        {s: {"delta": [], "clean_action": [], "attacked": []} for s in attacks} for _ in range(n)
    ]
    if job.record:
        for e in range(n):
            for s in seats:
                traj[e]["obs"][s].append(np.asarray(obs[e][s]))

    while alive.any():
        actions: dict[str, np.ndarray] = {}
        steps = {}
        batches = {seat: _stack([last_obs[e][seat] for e in range(n)]) for seat in seats}
        for seat in seats:
            actions[seat], step = players.act(seat, batches[seat], episode_start, batches)
            if step is not None:
                steps[seat] = step
        episode_start = np.zeros(n, dtype=bool)
        for e in map(int, np.flatnonzero(alive)):
            act = {s: actions[s][e] for s in seats}
            o, r, term, trunc, info = games[e].step(act)
            lengths[e] += 1
            for s in seats:
                returns[e][s] += float(r[s])
            for s, st in steps.items():
                flipped = (
                    bool(st.flipped[e])
                    if st.flipped is not None
                    else not np.array_equal(st.actions[e], st.clean_actions[e])
                )
                flips[e][s] += int(flipped and bool(st.attacked[e]))
                attacked[e][s] += int(st.attacked[e])
                if job.record:
                    atk_traj[e][s]["delta"].append(st.delta[e])
                    atk_traj[e][s]["clean_action"].append(st.clean_actions[e])
                    atk_traj[e][s]["attacked"].append(bool(st.attacked[e]))
            if job.record:
                for s in seats:
                    traj[e]["obs"][s].append(np.asarray(o[s]))
                    traj[e]["action"][s].append(np.asarray(act[s]))
                    traj[e]["reward"][s].append(float(r[s]))
            last_obs[e] = o
            if any(term.values()) or any(trunc.values()):
                alive[e] = False
                outcomes[e] = {s: outcome_of(info.get(s, {}), s, returns[e]) for s in seats}
                said = [info[s]["end"] for s in seats if info.get(s, {}).get("end")]
                ends[e] = str(said[0]) if said else None

    results = [
        EpisodeOutcome(
            idx, seeds[e], lengths[e], returns[e], outcomes[e], flips[e], attacked[e], ends[e]
        )
        for e, idx in enumerate(job.indices)
    ]
    records = []
    if job.record:
        for e, idx in enumerate(job.indices):
            t = traj[e]
            records.append(
                EpisodeRecord(
                    index=idx,
                    reset_seed=seeds[e],
                    observations={s: np.stack(t["obs"][s]) for s in seats},
                    actions={s: np.stack(t["action"][s]) for s in seats},
                    rewards={s: np.asarray(t["reward"][s], dtype=np.float64) for s in seats},
                    attack={
                        s: {
                            "delta": np.stack(v["delta"]).astype(np.float32),
                            "clean_action": np.stack(v["clean_action"]),
                            "attacked": np.asarray(v["attacked"], dtype=bool),
                        }
                        for s, v in atk_traj[e].items()
                    },
                    outcome=dict(outcomes[e]),
                )
            )
    for g in games:
        g.close()
    return results, records


P = TypeVar("P")


def check_seats(
    env_id: str,
    policies: Mapping[str, P],
    attacks: Iterable[str] = (),
    *,
    learner: str | None = None,
) -> dict[str, P | str]:
    """Every seat of ``env_id`` (but ``learner``, the one being trained) with its policy:
    the one given, else the game's default (``EnvSpec.default_policies``), in the game's
    seat order. A seat the game does not have (in ``policies``, ``attacks`` or
    ``learner``) is an ``envs.EnvError``; a seat with neither is ``MissingPolicy``; the
    learner given a policy is a ``MatchError``."""
    spec = envs.spec(env_id)
    for seat in [*policies, *attacks, *([learner] if learner is not None else [])]:
        spec.check_seat(seat)
    if learner in policies:
        raise MatchError(f"seat {learner!r} cannot be both the learner and given a policy")
    filled: dict[str, P | str] = {}
    for seat in spec.seats:
        if seat == learner:
            continue
        if seat in policies:
            filled[seat] = policies[seat]
        elif seat in spec.default_policies:
            filled[seat] = spec.default_policies[seat]
        else:
            raise MissingPolicy(env_id, seat, spec.seats)
    return filled


@dataclass(frozen=True)
class MatchRequest:
    """One match of ``run_matches``: the arguments of ``run_match``."""

    env_id: str
    policies: Mapping[str, PolicyLike]
    n_episodes: int
    seed: int = 0
    attacks: Mapping[str, AttackLike] | None = None
    env_kwargs: Mapping[str, Any] | None = None
    deterministic: bool | Mapping[str, bool] = True
    record: bool = False


@dataclass
class _Prepared:
    request: MatchRequest
    seed: int
    seats: list[str]
    attacks: dict[str, AttackLike]
    jobs: Iterator[_Job]
    n_chunks: int
    policies: dict[str, PolicyLike]


def _prepare(req: MatchRequest, match: int) -> _Prepared:
    """Check a request (in this process: errors surface before any work) and make its
    chunk jobs lazily, as workers take them: no job list up front."""
    n_episodes = parse_number(
        req.n_episodes, "episodes", low=1, high=MAX_EPISODES, integer=True, error=MatchError
    )
    seed = parse_seed(req.seed, error=MatchError)
    attacks = dict(req.attacks or {})
    filled = check_seats(req.env_id, req.policies, attacks)
    for _seat, p in filled.items():
        if isinstance(p, str):
            specs.parse(p)
    for seat, a in attacks.items():
        (parse_attack(a) if isinstance(a, str) else a).check_game(req.env_id, seat)
    seats = list(envs.spec(req.env_id).seats)
    deterministic = req.deterministic
    det = (
        {s: bool(deterministic) for s in seats}
        if isinstance(deterministic, bool)
        else {s: bool(deterministic.get(s, True)) for s in seats}
    )
    n_chunks = (n_episodes + CHUNK - 1) // CHUNK
    jobs = (
        _Job(
            req.env_id,
            dict(req.env_kwargs or {}),
            filled,
            attacks,
            det,
            seed,
            c,
            tuple(range(c * CHUNK, min(n_episodes, (c + 1) * CHUNK))),
            req.record,
            match,
        )
        for c in range(n_chunks)
    )
    return _Prepared(req, seed, seats, attacks, jobs, n_chunks, dict(filled))


def run_matches(
    requests: Sequence[MatchRequest],
    *,
    workers: int = 1,
    pool: Pool | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[MatchResult, list[EpisodeRecord]]]:
    """Play several matches at once: the chunks of all of them share one pool (``pool``,
    else ``workers`` local processes), so a grid of short matches keeps every worker
    busy. Each result is what ``run_match`` gives for its request, bit for bit."""
    workers = parse_number(
        workers, "workers", low=1, high=max_workers(), integer=True, error=MatchError
    )
    prepared = [_prepare(req, i) for i, req in enumerate(requests)]
    total_chunks = sum(p.n_chunks for p in prepared)
    if pool is None:
        pool = pool_for(min(workers, total_chunks))
    chunks: list[dict[int, tuple[list[EpisodeOutcome], list[EpisodeRecord]]]] = [
        {} for _ in prepared
    ]
    jobs = itertools.chain.from_iterable(p.jobs for p in prepared)
    for job, played in pool.imap_unordered(play_chunk, jobs):
        chunks[job.match][job.chunk] = played
        if on_progress:
            on_progress(len(job.indices))
    out = []
    for p, got in zip(prepared, chunks, strict=True):
        outcomes = [o for c in sorted(got) for o in got[c][0]]
        records = [r for c in sorted(got) for r in got[c][1]]
        score = _score(p.request.env_id, p.seed, p.seats, outcomes, p.attacks, p.policies)
        out.append((score, records))
    return out


def run_match(
    env_id: str,
    policies: Mapping[str, PolicyLike],
    *,
    n_episodes: int,
    seed: int = 0,
    attacks: Mapping[str, AttackLike] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool | Mapping[str, bool] = True,
    workers: int = 1,
    record: bool = False,
    on_progress: Callable[[int], None] | None = None,
    pool: Pool | None = None,
) -> tuple[MatchResult, list[EpisodeRecord]]:
    """Play ``n_episodes`` of ``env_id`` and score every seat.

    ``policies`` maps seats to policy specs (``"zero"``, ``"sb3:PATH"``...) or Policy
    objects; empty seats get the game's default opponent. ``attacks`` maps a seat to
    an observation attack on that seat's policy. The chunks of episodes run on
    ``pool`` (``arena.parallel``: e.g. Ray), else on ``workers`` local processes.
    Returns the result and, with ``record=True``, the episode records (in episode
    order).
    """
    request = MatchRequest(
        env_id, policies, n_episodes, seed, attacks, env_kwargs, deterministic, record
    )
    ((result, records),) = run_matches(
        [request], workers=workers, pool=pool, on_progress=on_progress
    )
    return result, records


def _attacked_victim(env_id: str, seat: str, policy: PolicyLike) -> Policy:
    """The attacked seat's policy, as the match resolved it (cached): its budget's
    units depend on it (standard deviations where it normalises its observation)."""
    if not isinstance(policy, str):
        return policy
    if ("env", env_id) not in _CACHE:
        _CACHE[("env", env_id)] = envs.make(env_id)
    return _resolve_policy(policy, _CACHE[("env", env_id)], seat, env_id)


def _score(env_id, seed, seats, outcomes, attacks, policies) -> MatchResult:
    total_steps = sum(o.length for o in outcomes)
    result = {}
    for seat in seats:
        atk = attacks.get(seat)
        a_obj = _resolve_attack(atk) if atk is not None else None
        victim = _attacked_victim(env_id, seat, policies[seat]) if atk is not None else None
        result[seat] = SeatResult.from_episodes(
            [o.outcomes[seat] for o in outcomes],
            [o.returns[seat] for o in outcomes],
            flips=sum(o.flips[seat] for o in outcomes) if atk is not None else None,
            attacked=sum(o.attacked[seat] for o in outcomes) if atk is not None else None,
            steps=total_steps if atk is not None else None,
            attack=(atk if isinstance(atk, str) else getattr(a_obj, "name", None)),
            budget=a_obj.describe(victim) if a_obj is not None else None,
        )
    return MatchResult(env_id, len(outcomes), seed, result, outcomes)
