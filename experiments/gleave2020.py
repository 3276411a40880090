"""Gleave et al. 2020: adversarial policies vs zoo victims; normal and masked victims.

For each game: train (or load) an adversary against the frozen victim, then score the
victim against the adversary, its normal opponent, ``random`` and ``zero``, for the
normal and the masked victim, with 95% Wilson intervals; plot the adversary's win
rate over training. ``--quick`` runs the toy game in about a minute.
``--reward-study`` trains one adversary per reward variant at the same budget and
plots their learning curves side by side, then scores the victim against each final
adversary (sparse; (a) victim value; (b) action divergence; (c) game shaping; (a)+(c)).

    arena run gleave2020 --quick
    arena run gleave2020 --games you_shall_not_pass --timesteps 1000000
    arena run gleave2020 --games you_shall_not_pass --adversary you_shall_not_pass=run:DIR
    arena run gleave2020 --games you_shall_not_pass --reward-study --timesteps 300000
    arena run gleave2020 --games you_shall_not_pass --reward-study \
        --variant-run sparse=runs/study/sparse --variant-run "game shaping (c)=..." ...
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.errors import (
    MAX_EPISODES,
    MAX_TIMESTEPS,
    ArgumentParser,
    check_output_dir,
    int_arg,
    seed_arg,
    workers_arg,
)
from arena.evaluation import SeatResult
from experiments import ExperimentError

ASSETS = Path(__file__).resolve().parent.parent / "arena" / "assets"


@dataclass(frozen=True)
class Game:
    env_id: str
    victim_seat: str
    adversary_seat: str
    victim: str
    """Policy spec of the victim."""
    opponent: str
    """Policy spec of the victim's normal opponent."""


GAMES = {
    "toy_pass": Game(
        "toy_pass_v0", "runner", "blocker", f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}", "zero"
    ),
    "you_shall_not_pass": Game(
        "you_shall_not_pass_v0",
        "runner",
        "blocker",
        "zoo:you-shall-not-pass/agent2_parameters-v1.pkl",
        "zoo:you-shall-not-pass/agent1_parameters-v1.pkl",
    ),
    "kick_and_defend": Game(
        "kick_and_defend_v0",
        "kicker",
        "keeper",
        "zoo:kick-and-defend/kicker/agent1_parameters-v1.pkl",
        "zoo:kick-and-defend/defender/agent2_parameters-v1.pkl",
    ),
    "sumo_humans": Game(
        "sumo_humans_v0",
        "fighter_0",
        "fighter_1",
        "zoo:sumo/humans/agent_parameters-v1.pkl",
        "zoo:sumo/humans/agent_parameters-v1.pkl",
    ),
}

NO_DENSE_TERMS = {"shaping": 0.0, "victim_value": 0.0, "victim_divergence": 0.0}
REWARD_VARIANTS = {
    "sparse": {},
    "victim value (a)": {"victim_value": 200.0},
    "action divergence (b)": {"victim_divergence": 3.0},
    "game shaping (c)": {"shaping": 100.0},
    "(a) + (c)": {"shaping": 100.0, "victim_value": 200.0},
}
"""Initial weights (annealed to 0 over half the budget), scaled so that each dense
term's episode total is of the order of the ±1000 goal reward in you-shall-not-pass:
the runner's distance to its goal moves by up to ~5 (c), the zoo runner's value
estimate spans ~2 (a), and its action divergence (W2², see ``arena.embedding``)
averages ~0.3 per step over ~500 steps (b)."""


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="arena run gleave2020", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the toy game, small budgets")
    p.add_argument(
        "--games", default="you_shall_not_pass", help=f"comma-separated, from: {', '.join(GAMES)}"
    )
    p.add_argument(
        "--timesteps",
        type=int_arg("timesteps", high=MAX_TIMESTEPS),
        default=None,
        help="adversary training budget",
    )
    p.add_argument(
        "--episodes",
        type=int_arg("episodes", high=MAX_EPISODES),
        default=None,
        help="evaluation episodes per cell",
    )
    p.add_argument(
        "--adversary",
        action="append",
        default=[],
        metavar="GAME=SPEC",
        help="use this trained adversary instead of training one",
    )
    p.add_argument(
        "--reward-study", action="store_true", help="compare the reward variants at equal budget"
    )
    p.add_argument(
        "--variant-run",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="reward study: use this finished `arena train-adversary` run for the variant "
        "LABEL (one of the study's, or a new label) instead of training it",
    )
    p.add_argument("--seed", type=seed_arg(), default=0)
    p.add_argument("--workers", type=workers_arg(), default=2)
    p.add_argument("--runs", default="runs", help="root of run directories")
    return p


def _pairs(items: list[str], flag: str, form: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ExperimentError(f"{flag} expects {form}, got {item!r}")
        if key.strip() in out:
            raise ExperimentError(f"{flag} given twice for {key.strip()!r}")
        out[key.strip()] = value.strip()
    return out


def _adversaries(items: list[str], names: list[str]) -> dict[str, str]:
    """``--adversary GAME=SPEC``: a game being run, and a policy spec that parses."""
    from agents.specs import parse

    given = _pairs(items, "--adversary", "GAME=SPEC")
    for game, spec in given.items():
        if game not in GAMES:
            raise ExperimentError(
                f"--adversary {game}=...: unknown game {game!r}; valid: {', '.join(GAMES)}"
            )
        if game not in names:
            raise ExperimentError(
                f"--adversary {game}=...: {game} is not among the games run "
                f"({', '.join(names)}; see --games)"
            )
        parse(spec)
    return given


def _variant_runs(items: list[str]) -> dict[str, str]:
    """``--variant-run LABEL=DIR``: DIR a training run with its ``progress.csv``."""
    runs = _pairs(items, "--variant-run", "LABEL=DIR")
    for label, directory in runs.items():
        if not (Path(directory) / "progress.csv").is_file():
            raise ExperimentError(
                f"--variant-run {label}={directory}: not a training run (no progress.csv)"
            )
    return runs


def evaluate(
    game: Game, victim: str, opponent: str, episodes: int, seed: int, workers: int
) -> SeatResult:
    from arena.match import run_match

    policies = {game.victim_seat: victim, game.adversary_seat: opponent}
    # zoo agents were trained and evaluated with sampled actions; our PPO policies act
    # greedily (their Gaussian's mean)
    deterministic = {seat: "zoo:" not in spec for seat, spec in policies.items()}
    result, _ = run_match(
        game.env_id,
        policies,
        n_episodes=episodes,
        seed=seed,
        workers=workers,
        deterministic=deterministic,
    )
    return result.seats[game.victim_seat]


def _curve(run_dir: Path) -> tuple[list[int], list[float]]:
    with open(run_dir / "progress.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["win_rate"] != "nan"]
    return [int(r["timesteps"]) for r in rows], [float(r["win_rate"]) for r in rows]


def plot_curves(curves: dict[str, Path], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, run_dir in curves.items():
        x, y = _curve(run_dir)
        ax.plot(x, y, label=label)
    ax.set_xlabel("adversary training timesteps")
    ax.set_ylabel("adversary win rate (rolling 200 episodes)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from arena.io import write_json_atomic
    from arena.rundir import new_run_dir, run_metadata
    from arena.training import AdversaryConfig, default_adversary_config, train_adversary

    args = _parser().parse_args(argv)
    names = ["toy_pass"] if args.quick else [g.strip() for g in args.games.split(",")]
    unknown = [n for n in names if n not in GAMES]
    if unknown:
        raise ExperimentError(f"unknown game {unknown[0]!r}; valid: {', '.join(GAMES)}")
    given = _adversaries(args.adversary, names)
    variant_runs = _variant_runs(args.variant_run)
    check_output_dir(args.runs, "--runs")
    timesteps = args.timesteps or (150_000 if args.quick else 1_000_000)
    episodes = args.episodes or (100 if args.quick else 200)
    report: dict[str, Any] = {"games": {}, "timesteps": timesteps, "episodes": episodes}
    with new_run_dir(args.runs, "gleave2020", "+".join(names), args.seed) as (tmp, final):
        write_json_atomic(
            tmp / "config.json", {**vars(args), "timesteps": timesteps, "episodes": episodes}
        )
        write_json_atomic(tmp / "metadata.json", run_metadata())
        for name in names:
            game = GAMES[name]
            base = default_adversary_config(game.env_id)
            if args.reward_study:
                curves: dict[str, Path] = {}
                for label, extra in REWARD_VARIANTS.items():
                    if label in variant_runs:
                        continue
                    out = tmp / "adversaries" / f"{name}__{label.split()[0].strip('()')}"
                    config = AdversaryConfig(**{**base.__dict__, **NO_DENSE_TERMS, **extra})
                    print(
                        f"[gleave2020] {name}: training '{label}' for {timesteps:,} steps",
                        file=sys.stderr,
                    )
                    train_adversary(
                        game.env_id,
                        {game.victim_seat: game.victim},
                        timesteps=timesteps,
                        out=out,
                        seed=args.seed,
                        config=config,
                    )
                    curves[label] = out
                for label, directory in variant_runs.items():
                    curves[label] = Path(directory)
                plot_curves(
                    curves,
                    tmp / f"{name}_reward_study.png",
                    f"{game.env_id}: reward variants at equal budget",
                )
                study = {}
                for label, d in curves.items():
                    steps, wins = _curve(d)
                    # the final adversary against the victim, greedy, as in the tables
                    r = evaluate(game, game.victim, f"run:{d}", episodes, args.seed, args.workers)
                    study[label] = {
                        "run": str(final / d.relative_to(tmp) if d.is_relative_to(tmp) else d),
                        "timesteps": steps,
                        "win_rate": wins,
                        "victim_vs_final_adversary": r.to_json(),
                    }
                report["games"][name] = study
                continue
            if name in given:
                adversary = given[name]
                curve_dir = Path(adversary.partition(":")[2])
            else:
                curve_dir = tmp / "adversaries" / name
                print(
                    f"[gleave2020] {name}: training the adversary for {timesteps:,} steps",
                    file=sys.stderr,
                )
                train_adversary(
                    game.env_id,
                    {game.victim_seat: game.victim},
                    timesteps=timesteps,
                    out=curve_dir,
                    seed=args.seed,
                    config=base,
                )
                adversary = f"run:{curve_dir}"
            rows = {}
            for victim_label, victim in (
                ("normal", game.victim),
                ("masked", f"masked:{game.victim}"),
            ):
                for opp_label, opp in (
                    ("adversary", adversary),
                    ("normal opponent", game.opponent),
                    ("random", "random"),
                    ("zero", "zero"),
                ):
                    r = evaluate(game, victim, opp, episodes, args.seed, args.workers)
                    rows[f"{victim_label} victim vs {opp_label}"] = r.to_json()
            shown = (
                f"run:{final / curve_dir.relative_to(tmp)}"
                if curve_dir.is_relative_to(tmp)
                else adversary
            )
            report["games"][name] = {
                "env": game.env_id,
                "victim": game.victim,
                "adversary": shown,
                "victim_win_rates": rows,
            }
            if (curve_dir / "progress.csv").is_file():
                plot_curves(
                    {"adversary": curve_dir},
                    tmp / f"{name}_training.png",
                    f"{game.env_id}: adversary win rate over training",
                )
        write_json_atomic(tmp / "results.json", report)
    report["run_dir"] = str(final)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for name, data in report["games"].items():
        if "victim_win_rates" not in data:
            lines.append(f"{name}: reward study")
            lines.append(
                f"  {'variant':<24} {'budget':>9} {'rolling win':>11}  "
                "victim win rate vs the final adversary [95% CI]"
            )
            for label, curve in data.items():
                last = curve["win_rate"][-1] if curve["win_rate"] else float("nan")
                budget = curve["timesteps"][-1] if curve["timesteps"] else 0
                r = curve["victim_vs_final_adversary"]
                lo, hi = r["win_rate_ci95"]
                n = r["wins"] + r["losses"] + r["ties"]
                lines.append(
                    f"  {label:<24} {budget:>9,} {last:>11.2f}  "
                    f"{r['win_rate']:.2f} [{lo:.2f}, {hi:.2f}] (n={n})"
                )
            continue
        lines.append(f"{data['env']}: victim {data['victim']}, adversary {data['adversary']}")
        lines.append(f"  {'victim vs opponent':<40} {'victim win rate [95% CI]':<26} W/L/T")
        for label, r in data["victim_win_rates"].items():
            lo, hi = r["win_rate_ci95"]
            lines.append(
                f"  {label:<40} {r['win_rate']:.2f} [{lo:.2f}, {hi:.2f}]"
                f"{'':<10} {r['wins']}/{r['losses']}/{r['ties']}"
            )
    lines.append(f"run directory: {report['run_dir']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    report = run(argv)
    print(format_report(report))
    return 0


if __name__ == "__main__":  # through `arena run`: its errors are one line, exit 2
    from arena.cli import main as arena_main

    sys.exit(arena_main(["run", "gleave2020", *sys.argv[1:]]))
