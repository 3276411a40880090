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
from typing import Any

from agents.attacks import available as available_attacks
from arena.io import write_json_atomic
from arena.match import run_match
from arena.recording import write_record
from arena.replay import verify
from arena.rundir import new_run_dir, run_metadata
from arena.training import preset, train_adversary, train_seat

ASSETS = Path(__file__).parent / "assets"

# (env, learner seat, frozen opponents while training, timesteps). The shipped weights
# in arena/assets were made by `arena demo --seed 0`: copied from its victims/ folder.
VICTIMS = {
    "toy_pass_v0": ("runner", {"blocker": "random"}, 60_000),
    "toy_catch_v0": ("player", {}, 100_000),
}


ADVERSARY_STEPS = 150_000


def shipped(env_id: str) -> Path:
    seat = VICTIMS[env_id][0]
    return ASSETS / f"{env_id}__{seat}.zip"


def _rows(env_id: str, victim_spec: str) -> list[tuple[str, dict, dict]]:
    """(label, policies, attacks) for the demo's table."""
    seat = VICTIMS[env_id][0]
    if env_id == "toy_pass_v0":
        return [
            ("trained runner vs zero blocker", {seat: victim_spec, "blocker": "zero"}, {}),
            ("trained runner vs random blocker", {seat: victim_spec, "blocker": "random"}, {}),
            ("random runner vs zero blocker", {seat: "random", "blocker": "zero"}, {}),
        ]
    rows: list[tuple[str, dict, dict]] = [
        ("trained player", {seat: victim_spec}, {}),
        ("random player", {seat: "random"}, {}),
    ]
    attacks = available_attacks()
    for name, spec in (
        ("noise", "noise:eps=0.3"),
        ("fgsm", "fgsm:eps=0.3"),
        ("pgd", "pgd:eps=0.3,steps=10"),
    ):
        if name in attacks:
            rows.append((f"trained player, {spec}", {seat: victim_spec}, {seat: spec}))
    return rows


def run_demo(
    *, out: Path, retrain: bool = True, workers: int = 2, episodes: int = 50, seed: int = 0
) -> int:
    start = time.perf_counter()
    table: list[dict[str, Any]] = []
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
            rows = _rows(env_id, victim)
            if env_id == "toy_pass_v0":
                # Gleave et al. in miniature: an adversarial blocker trained against the
                # frozen runner, then the runner scored against it, masked or not.
                adversary = tmp / "adversary"
                print(
                    f"[demo] training an adversarial blocker against it "
                    f"({ADVERSARY_STEPS:,} PPO steps)...",
                    file=sys.stderr,
                )
                train_adversary(
                    env_id, {seat: victim}, timesteps=ADVERSARY_STEPS, out=adversary, seed=seed
                )
                rows += [
                    (
                        "trained runner vs adversarial blocker",
                        {seat: victim, "blocker": f"run:{adversary}"},
                        {},
                    ),
                    (
                        "masked runner vs adversarial blocker",
                        {seat: f"masked:{victim}", "blocker": f"run:{adversary}"},
                        {},
                    ),
                ]
            for label, policies, attacks in rows:
                result, _ = run_match(
                    env_id,
                    policies,
                    n_episodes=episodes,
                    seed=seed,
                    attacks=attacks,
                    workers=workers,
                )
                r = result.seats[seat]
                table.append({"env": env_id, "match": label, "seat": seat, **r.to_json()})
            record_dir = tmp / "records" / env_id
            _, records = run_match(
                env_id, {seat: victim, **frozen}, n_episodes=2, seed=seed, record=True
            )
            manifest = {
                "env": env_id,
                "env_kwargs": {},
                "seats": list(records[0].actions),
                "policies": {seat: victim, **frozen},
                "attacks": {},
                "seed": seed,
                "deterministic": True,
            }
            write_record(record_dir, manifest, records)
            checks = verify(record_dir)
            ok = all(c.match for c in checks)
            table.append(
                {
                    "env": env_id,
                    "match": "replay --verify of 2 recorded episodes",
                    "seat": seat,
                    "verified": ok,
                }
            )
            if not ok:
                print(f"[demo] replay of {env_id} diverged: {checks}", file=sys.stderr)
        write_json_atomic(tmp / "results.json", table)
        write_json_atomic(tmp / "metadata.json", run_metadata())
    print(_format(table))
    print(f"\n{time.perf_counter() - start:.0f} s; everything is in {final}")
    print(f"replay a record: arena replay {final}/records/toy_pass_v0 --verify")
    return 0 if all(row.get("verified", True) for row in table) else 1


def _format(table: list[dict[str, Any]]) -> str:
    lines = [f"{'game':<14} {'match':<44} {'win rate [95% CI]':<22} {'return':>14}  notes"]
    for row in table:
        if "verified" in row:
            lines.append(
                f"{row['env']:<14} {row['match']:<44} "
                f"{'exact match' if row['verified'] else 'DIVERGED'}"
            )
            continue
        lo, hi = row["win_rate_ci95"]
        ci = f"{row['win_rate']:.2f} [{lo:.2f}, {hi:.2f}]"
        ret = f"{row['mean_return']:+.2f} ± {row['std_return']:.2f}"
        notes = ""
        if "flip_rate" in row:
            notes = f"{row['budget']}; action flips {row['flip_rate']:.1%}"
        lines.append(f"{row['env']:<14} {row['match']:<44} {ci:<22} {ret:>14}  {notes}".rstrip())
    return "\n".join(lines)
