"""``arena demo``: the whole loop on the toy games, on a fresh machine, in about a minute.

1. train a victim on each toy game (PPO; or load the weights shipped in
   ``arena/assets`` with ``--shipped``);
2. score it against baseline opponents and under observation attacks, and train an
   adversarial policy against the runner (and score the runner, masked or not);
3. record episodes, replay them by re-simulation and verify every observation;
4. print one table and leave everything in a run directory.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agents.attacks import available as available_attacks
from arena import pretrained
from arena.artifacts import RunResults, SampleRecipe, Table
from arena.artifacts.run_builders import seat_table, win_rate_bars
from arena.evaluation import SeatResult
from arena.io import write_json_atomic
from arena.match import run_match
from arena.recording import match_manifest, write_record
from arena.replay import verify
from arena.rundir import new_run_dir, run_metadata
from arena.training import preset, train_adversary, train_seat

# (env, learner seat, frozen opponents while training, timesteps). The shipped weights
# in arena/assets were made by `arena demo --seed 0`: copied from its victims/ folder.
VICTIMS = {
    "toy_pass_v0": ("runner", {"blocker": "random"}, 60_000),
    "toy_catch_v0": ("player", {}, 100_000),
}


ADVERSARY_STEPS = 150_000


def shipped(env_id: str) -> Path:
    seat = VICTIMS[env_id][0]
    return pretrained.shipped(f"{env_id}__{seat}.zip")


def _has_adversary(match: SampleRecipe) -> bool:
    """Whether an adversary plays: an attack, or an adversarial policy (the finding)."""
    return bool(match.attacks) or any(p.startswith("run:") for p in match.policies.values())


def _rows(env_id: str, victim: str, adversary: str, seed: int) -> list[SampleRecipe]:
    """The demo's matches of ``env_id``, labelled: ``victim`` and (toy_pass) the
    adversarial blocker ``adversary`` as policy specs."""
    seat = VICTIMS[env_id][0]
    matches: list[tuple[str, dict[str, str], dict[str, str]]]
    if env_id == "toy_pass_v0":
        matches = [
            ("trained runner vs zero blocker", {seat: victim, "blocker": "zero"}, {}),
            ("trained runner vs random blocker", {seat: victim, "blocker": "random"}, {}),
            ("random runner vs zero blocker", {seat: "random", "blocker": "zero"}, {}),
            # Gleave et al. in miniature: the runner against an adversarial blocker
            # trained against it, masked or not
            ("trained runner vs adversarial blocker", {seat: victim, "blocker": adversary}, {}),
            (
                "masked runner vs adversarial blocker",
                {seat: f"masked:{victim}", "blocker": adversary},
                {},
            ),
        ]
    else:
        matches = [
            ("trained player", {seat: victim}, {}),
            ("random player", {seat: "random"}, {}),
        ]
        attacks = available_attacks()
        for name, spec in (
            ("noise", "noise:eps=0.3"),
            ("fgsm", "fgsm:eps=0.3"),
            ("pgd", "pgd:eps=0.3,steps=10"),
        ):
            if name in attacks:
                matches.append((f"trained player, {spec}", {seat: victim}, {seat: spec}))
    return [SampleRecipe(env_id, p, seed, a, label=label) for label, p, a in matches]


def _in_place(path: Path, tmp: Path, final: Path) -> Path:
    """Where ``path`` is once the run directory is renamed from ``tmp`` to ``final``."""
    return final / path.relative_to(tmp) if path.is_relative_to(tmp) else path


def run_demo(
    *, out: Path, retrain: bool = True, workers: int = 2, episodes: int = 50, seed: int = 0
) -> int:
    start = time.perf_counter()
    scores: list[tuple[SampleRecipe, SeatResult]] = []
    verified: dict[str, bool] = {}
    samples: list[SampleRecipe] = []
    with new_run_dir(out.parent, out.name, "toy", seed) as (tmp, final):
        (tmp / "victims").mkdir()
        for env_id, (seat, frozen, steps) in VICTIMS.items():
            if retrain:
                path = tmp / "victims" / shipped(env_id).name
                print(
                    f"[demo] training the {seat} of {env_id} ({steps:,} PPO steps)...",
                    file=sys.stderr,
                )
                train_seat(
                    env_id,
                    seat,
                    frozen,
                    timesteps=steps,
                    seed=seed,
                    out=path,
                    config=preset(env_id),
                )
            else:
                path = shipped(env_id)
            victim = f"sb3:{path}"
            adversary = tmp / "adversary"
            if env_id == "toy_pass_v0":
                print(
                    f"[demo] training an adversarial blocker against it "
                    f"({ADVERSARY_STEPS:,} PPO steps)...",
                    file=sys.stderr,
                )
                train_adversary(
                    env_id, {seat: victim}, timesteps=ADVERSARY_STEPS, out=adversary, seed=seed
                )
            rows = _rows(env_id, victim, f"run:{adversary}", seed)
            placed = _rows(
                env_id,
                f"sb3:{_in_place(path, tmp, final)}",
                f"run:{_in_place(adversary, tmp, final)}",
                seed,
            )
            for row, later in zip(rows, placed, strict=True):
                result, _ = run_match(
                    env_id,
                    row.policies,
                    n_episodes=episodes,
                    seed=seed,
                    attacks=row.attacks,
                    workers=workers,
                )
                scores.append((row, result.seats[seat]))
                if _has_adversary(row):
                    samples.append(later)
            record_dir = tmp / "records" / env_id
            _, records = run_match(
                env_id, {seat: victim, **frozen}, n_episodes=2, seed=seed, record=True
            )
            manifest = match_manifest(env_id, {seat: victim, **frozen}, seed=seed)
            write_record(record_dir, manifest, records)
            checks = verify(record_dir)
            verified[env_id] = all(c.match for c in checks)
            if not verified[env_id]:
                print(f"[demo] replay of {env_id} diverged: {checks}", file=sys.stderr)
        results = _results(scores, verified, samples, episodes=episodes, seed=seed)
        write_json_atomic(tmp / "results.json", results.to_json())
        write_json_atomic(tmp / "metadata.json", run_metadata())
    print(_format(scores, verified))
    print(f"\n{time.perf_counter() - start:.0f} s; everything is in {final}")
    print(f"replay a record: arena replay {final}/records/toy_pass_v0 --verify")
    return 0 if all(verified.values()) else 1


def _results(
    scores: list[tuple[SampleRecipe, SeatResult]],
    verified: dict[str, bool],
    samples: list[SampleRecipe],
    *,
    episodes: int,
    seed: int,
) -> RunResults:
    """The victims' scores (the matches with an adversary are the finding), their win
    rates as bars, the replay checks and the records they checked."""
    labelled = {f"{row.env}: {row.label}": score for row, score in scores}
    records = {env: f"records/{env}" for env in verified}
    return RunResults(
        kind="demo",
        title="the whole loop on the toy games",
        headline=seat_table(
            "The victims' scores",
            "game: match",
            labelled,
            highlight=[f"{row.env}: {row.label}" for row, _ in scores if _has_adversary(row)],
            caption=f"the victim's seat; {episodes} episodes each, seed {seed}",
        ),
        tables=(
            Table(
                "Replay of 2 recorded episodes",
                ("game", "record", "replay --verify: exact match"),
                tuple((env, records[env], ok) for env, ok in verified.items()),
            ),
        ),
        figures=(win_rate_bars("The victims' win rates", labelled),),
        records=tuple(records.values()),
        samples=tuple(samples),
    )


def _format(scores: list[tuple[SampleRecipe, SeatResult]], verified: dict[str, bool]) -> str:
    lines = [f"{'game':<14} {'match':<44} {'win rate [95% CI]':<22} {'return':>14}  notes"]
    for env, ok in verified.items():
        for row, r in (s for s in scores if s[0].env == env):
            lo, hi = r.win_rate_ci95
            ci = f"{r.win_rate:.2f} [{lo:.2f}, {hi:.2f}]"
            ret = f"{r.mean_return:+.2f} ± {r.std_return:.2f}"
            notes = "" if r.flip_rate is None else f"{r.budget}; action flips {r.flip_rate:.1%}"
            lines.append(f"{env:<14} {row.label:<44} {ci:<22} {ret:>14}  {notes}".rstrip())
        match = "replay --verify of 2 recorded episodes"
        lines.append(f"{env:<14} {match:<44} {'exact match' if ok else 'DIVERGED'}")
    return "\n".join(lines)
