"""Zoo fidelity: do the agent-zoo victims play our rebuilt games as on MuJoCo 1.31?

For every competitive MuJoCo game, the zoo agent plays three opponents: the zoo
agent of the other seat (zoo vs zoo), a motionless ``zero`` opponent and a uniformly
``random`` one, ``--episodes`` episodes each (sampled actions, as the zoo agents
were evaluated). Prints win / tie / loss of each seat with 95% Wilson intervals and
saves the table as JSON under ``runs/zoo_fidelity/``.

    arena run zoo_fidelity --episodes 100
    python -m experiments.zoo_fidelity --games sumo_ants_v0 --episodes 20

Reference figures (``../shared/zoo/README.md``): you-shall-not-pass zoo runner vs
zero blocker ≥ 95% wins; kick-and-defend kicker 66.9% on MuJoCo 1.31 (target
0.60-0.74); sumo zoo vs zero ≥ 90% (Gleave's scoring); run-to-goal vs zero ≥ 90%.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from agents.numbers import parse_number
from arena.artifacts import RunResults, Table
from arena.artifacts.run_builders import Matchup, matchup_scores, seat_specs_text, words
from arena.cli.options import EPISODES, add_run_options
from arena.errors import ArgumentParser, check_output_dir
from arena.pretrained import ZOO_FILES, zoo_spec
from experiments import ExperimentError

GAMES = tuple(ZOO_FILES)
"""Every game with zoo agents, in the order of the table."""
OPPONENTS = ("zoo", "zero", "random")
MATCHUP_KEYS = ("episodes", "mean_length", "seconds", "episodes_per_second")
"""What ``results.json`` says of each matchup beside its scores (``Matchup.extra``)."""


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="arena run zoo_fidelity", description=__doc__.splitlines()[0])
    p.add_argument(
        "--episodes",
        type=EPISODES,
        default=100,
        help="episodes per matchup (100)",
    )
    p.add_argument("--games", default="all", help="comma-separated game ids, or 'all' (default)")
    p.add_argument(
        "--opponents",
        default=",".join(OPPONENTS),
        help="comma-separated subset of zoo,zero,random (default: all three)",
    )
    p.add_argument(
        "--both-seats",
        action="store_true",
        help="also play the zoo agent of the other seat against zero / random",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="use the Gaussian's mean instead of sampled actions",
    )
    p.add_argument("--zoo", default=None, help="zoo directory (default: the ARENA_ZOO_DIR setting)")
    p.add_argument(
        "--env-kwargs",
        default="",
        metavar="K=V,...",
        help="game keyword arguments, e.g. contact_required=1 (numbers or text)",
    )
    add_run_options(p, workers=2)
    p.add_argument("--no-save", action="store_true", help="write no run directory")
    return p


def _kwargs(text: str) -> dict[str, Any]:
    """``K=V,...``: V an integer, a finite number (``parse_number``) or text."""
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ExperimentError(f"--env-kwargs expects K=V,..., got {item!r}")
        try:
            float(value)
        except ValueError:
            out[key] = value  # text
            continue
        try:
            out[key] = parse_number(value, key, integer=True)
        except ValueError:
            out[key] = parse_number(value, f"--env-kwargs {key}", error=ExperimentError)
    return out


def matchups(
    env_id: str, zoo: Path, opponents: list[str], both_seats: bool = False
) -> list[tuple[str, dict[str, str]]]:
    """``(label, {seat: spec})`` for each opponent kind. Against ``zero`` and ``random``
    the zoo agent keeps the game's first seat (every seat, with ``both_seats``)."""
    seats = list(ZOO_FILES[env_id])
    zoo_seats = {seat: zoo_spec(env_id, seat, zoo) for seat in seats}
    focus = seats if both_seats else seats[:1]
    out = []
    for kind in opponents:
        if kind == "zoo":
            out.append(("zoo vs zoo", zoo_seats))
            continue
        for seat in focus:
            policies = {s: (zoo_seats[s] if s == seat else kind) for s in seats}
            out.append((f"zoo {seat} vs {kind}", policies))
    return out


def _row(game: str, label: str, seat: str, r: Any) -> str:
    lo, hi = r.win_rate_ci95
    n = r.wins + r.losses + r.ties
    return (
        f"{game:<23} {label:<28} {seat:<10} {r.wins:>4} {r.ties:>4} {r.losses:>4} "
        f"{r.win_rate:>6.3f}  [{lo:.3f}, {hi:.3f}]  n={n}"
    )


def main(argv: list[str] | None = None) -> int:
    import torch

    from arena.io import write_json_atomic
    from arena.match import run_match
    from arena.rundir import new_run_dir, run_metadata

    args = parser().parse_args(argv)
    torch.set_num_threads(1)
    wanted = list(GAMES) if args.games == "all" else args.games.split(",")
    unknown = [g for g in wanted if g not in GAMES]
    opponents = [o for o in args.opponents.split(",") if o]
    if unknown:
        raise ExperimentError(f"unknown game {unknown[0]!r}; valid: {', '.join(GAMES)}")
    bad = [o for o in opponents if o not in OPPONENTS]
    if bad:
        raise ExperimentError(f"unknown opponent {bad[0]!r}; valid: {', '.join(OPPONENTS)}")
    env_kwargs = _kwargs(args.env_kwargs)
    if not args.no_save:
        check_output_dir(args.runs, "--runs")
    zoo_text = args.zoo or os.environ.get("ARENA_ZOO_DIR", "")
    if not zoo_text or not Path(zoo_text).is_dir():
        raise ExperimentError("no zoo directory; set ARENA_ZOO_DIR or pass --zoo DIR")
    zoo = Path(zoo_text).resolve()
    played: list[Matchup] = []
    header = (
        f"{'game':<23} {'matchup':<28} {'seat':<10} {'win':>4} {'tie':>4} {'loss':>4} "
        f"{'rate':>6}  95% interval"
    )
    print(header)
    print("-" * len(header))
    for env_id in wanted:
        for label, seats in matchups(env_id, zoo, opponents, args.both_seats):
            start = time.perf_counter()
            result, _ = run_match(
                env_id,
                seats,
                n_episodes=args.episodes,
                seed=args.seed,
                workers=args.workers,
                deterministic=args.deterministic,
                env_kwargs=env_kwargs,
            )
            seconds = time.perf_counter() - start
            for seat, r in result.seats.items():
                print(_row(env_id, label, seat, r), flush=True)
            n = len(result.lengths)
            measured = {"episodes": n, "mean_length": sum(result.lengths) / n}
            measured |= {"seconds": seconds, "episodes_per_second": n / seconds}
            played.append(Matchup(env_id, label, seats, result.seats, args.seed, measured))
    config = {
        "episodes": args.episodes,
        "games": wanted,
        "opponents": opponents,
        "seed": args.seed,
        "both_seats": args.both_seats,
        "workers": args.workers,
        "env_kwargs": env_kwargs,
        "deterministic": args.deterministic,
        "zoo": str(zoo),
    }
    if not args.no_save:
        name = wanted[0] if len(wanted) == 1 else "all"
        with new_run_dir(args.runs, "zoo_fidelity", name, args.seed) as (tmp, final):
            write_json_atomic(tmp / "config.json", config)
            write_json_atomic(tmp / "metadata.json", run_metadata())
            results = fidelity_results(played, args.deterministic, env_kwargs)
            write_json_atomic(tmp / "results.json", results.to_json())
        print(f"results saved to {final}", file=sys.stderr)
    return 0


def fidelity_results(
    played: list[Matchup], deterministic: bool, env_kwargs: dict[str, Any]
) -> RunResults:
    """The zoo agents' win rates (the rows of their seats are the finding), a bar each,
    the matchups with their timing, and how to play each one."""
    headline, bars, samples = matchup_scores(
        "Win rates of the zoo agents",
        played,
        finding=lambda spec: spec.startswith("zoo:"),
        deterministic=deterministic,
        env_kwargs=env_kwargs,
    )
    columns = ("game", "matchup", "policies", *(words(k) for k in MATCHUP_KEYS))
    rows = tuple(
        (m.env, m.label, seat_specs_text(m.policies), *(m.extra[k] for k in MATCHUP_KEYS))
        for m in played
    )
    return RunResults(
        kind="zoo_fidelity",
        title="zoo agents in the rebuilt games",
        headline=headline,
        tables=(Table("Matchups", columns, rows),),
        figures=(bars,),
        samples=samples,
    )


if __name__ == "__main__":  # as `arena run` runs it: its errors are one line, exit 2
    from arena.cli import run_guarded

    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
