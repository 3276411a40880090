"""``arena envs`` and ``arena evaluate``: list the games, play episodes and score seats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from arena.cli.options import pairs
from arena.errors import UsageError, check_output_dir


def cmd_envs(args: argparse.Namespace) -> int:
    import envs

    specs = envs.list_specs()
    if args.json:
        rows = [
            {
                "id": s.id,
                "seats": list(s.seats),
                "needs": list(s.needs),
                "nondeterministic": s.nondeterministic,
                "max_episode_steps": s.max_episode_steps,
                "default_policies": dict(s.default_policies),
            }
            for s in specs
        ]
        print(json.dumps(rows))
        return 0
    width = max(len(s.id) for s in specs)
    for s in specs:
        needs = f" [needs {', '.join(s.needs)}]" if s.needs else ""
        print(f"{s.id:<{width}}  seats: {', '.join(s.seats)}{needs}")
    return 0


def format_table(result: Any) -> str:
    """A ``MatchResult`` as the table ``arena evaluate`` prints: W/L/T, win rate with
    its 95% interval, and return of every seat (with the attack's figures)."""
    lines = [
        f"{result.env}: {result.episodes} episodes, seed {result.seed}, "
        f"mean length {sum(result.lengths) / len(result.lengths):.1f}"
    ]
    header = f"{'seat':<12} {'W':>5} {'L':>5} {'T':>5}  {'win rate [95% CI]':<24} {'return':>16}"
    lines.append(header)
    for seat, r in result.seats.items():
        ci = f"{r.win_rate:.2f} [{r.win_rate_ci95[0]:.2f}, {r.win_rate_ci95[1]:.2f}]"
        ret = f"{r.mean_return:.2f} ± {r.std_return:.2f}"
        lines.append(f"{seat:<12} {r.wins:>5} {r.losses:>5} {r.ties:>5}  {ci:<24} {ret:>16}")
        if r.attack:
            extra = f"  attack {r.attack}: {r.budget}; action-flip rate {r.flip_rate:.3f}"
            if r.attacked_fraction is not None and r.attacked_fraction < 1.0:
                extra += f", attacked {r.attacked_fraction:.1%} of steps"
            lines.append(extra)
    if result.ends:
        lines.append(result.ends_line())
    return "\n".join(lines)


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, disable=None, leave=False)


def cmd_evaluate(args: argparse.Namespace) -> int:
    pool = None
    if args.ray:
        # joined first: the cluster's workers start (and import the arena) while this
        # process imports it and checks the flags
        from arena.parallel import RayPool

        pool = RayPool(None if args.ray is True else args.ray)
    from agents import specs as policy_specs
    from agents.attacks import parse_attack
    from arena.artifacts.run import RunResults
    from arena.io import write_json_atomic
    from arena.match import check_seats, run_match
    from arena.players import acting
    from arena.recording import match_manifest, write_record
    from arena.rundir import new_run_dir, run_metadata

    policies = pairs(args.policy, "--policy")
    attacks = pairs(args.attack, "--attack")
    filled = check_seats(args.env_id, policies, attacks)
    refs = {seat: policy_specs.reference(str(spec)).to_json() for seat, spec in filled.items()}
    if args.record:
        record = check_output_dir(args.record, "--record")
        if record.is_dir() and any(record.iterdir()):
            raise UsageError(f"--record {record}: the directory exists and is not empty")
    if not args.no_save:
        check_output_dir(args.runs, "--runs")
    for a in attacks.values():
        parse_attack(a)
    specs = {seat: str(spec) for seat, spec in filled.items()}
    deterministic = acting(
        specs, sample=args.sample, greedy=args.greedy, every_seat_samples=args.stochastic
    )
    config = {
        "env": args.env_id,
        "env_kwargs": {},
        "policies": refs,
        "attacks": attacks,
        "episodes": args.episodes,
        "seed": args.seed,
        "workers": args.workers,
        "deterministic": deterministic,
    }
    bar = _progress(args.episodes, f"evaluate {args.env_id}")
    try:
        result, records = run_match(
            args.env_id,
            filled,
            n_episodes=args.episodes,
            seed=args.seed,
            attacks=attacks,
            workers=args.workers,
            deterministic=deterministic,
            record=bool(args.record),
            on_progress=bar.update,
            pool=pool,
        )
    finally:
        bar.close()
        if pool is not None:
            pool.close()
    payload = result.to_json()
    if args.record:
        manifest = match_manifest(
            args.env_id,
            {seat: str(spec) for seat, spec in filled.items()},
            seed=args.seed,
            attacks=attacks,
            workers=args.workers,
            deterministic=deterministic,
        )
        write_record(args.record, manifest, records)
        print(f"recorded {len(records)} episodes to {args.record}", file=sys.stderr)
    if not args.no_save:
        with new_run_dir(args.runs, "evaluate", args.env_id, args.seed) as (tmp, final):
            record_dir = str(Path(args.record).resolve()) if args.record else None
            write_json_atomic(tmp / "config.json", {**config, "record": record_dir})
            write_json_atomic(tmp / "metadata.json", run_metadata())
            results = RunResults.from_match(
                result,
                policies={seat: str(spec) for seat, spec in filled.items()},
                attacks=attacks,
                deterministic=deterministic,
                record=args.record,
            )
            write_json_atomic(tmp / "results.json", results.to_json())
        print(f"run saved to {final}", file=sys.stderr)
    if args.json:
        slim = {k: payload[k] for k in ("env", "episodes", "seed", "seats", "ends") if k in payload}
        print(json.dumps(slim, sort_keys=True))
    else:
        print(format_table(result))
    return 0
