"""Huang et al. 2017 on Pong: victims × attacks × ε grid, score vs ε with 95% intervals.

Reproduces the headline experiment of "Adversarial Attacks on Neural Network Policies"
(Huang, Papernot, Goodfellow, Duan, Abbeel 2017) on ``atari_pong_v0``: each pretrained
victim plays full games under each attack at each budget ε (L∞ on the [0, 1] float
network input, no rounding unless ``--round``), and the table and the plot report the
mean game score with its 95% interval. ε = 0 is the clean game, played once per victim.

Victims are ``.npz`` files in the format of ../shared/atari/README.md (``atari:`` policy
kind), given with ``--victims PATH...`` or found in ``$ARENA_ATARI_DIR``.

    ARENA_ATARI_DIR=../shared/atari arena run huang2017_pong --quick
    arena run huang2017_pong --victims ../shared/atari/pong_ppo.npz --episodes 10 \\
        --attacks fgsm noise pgd

Writes ``runs/huang2017_pong/atari_pong_v0__s<seed>__<time>/`` with ``config.json``,
``metadata.json``, ``results.json``, ``results.csv``, ``table.txt`` and
``score_vs_eps.png``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from agents.numbers import parse_number
from arena.artifacts.run_sweep import SweepPoint, sweep_results
from arena.cli.options import EPISODES, add_ray_option, add_run_options
from arena.errors import ArgumentParser, check_output_dir, float_arg, int_arg
from experiments import ExperimentError

ENV_ID = "atari_pong_v0"
SEAT = "player"
EPS_GRID = ("0", "0.0002", "0.0005", "0.001", "1/255", "2/255")
DEFAULT_VICTIMS = ("pong_ppo", "pong_a2c", "pong_acktr", "pong_ppo_advtrained")
ATTACK_SPECS = {
    "fgsm": "fgsm:eps={eps}",
    "noise": "noise:eps={eps}",
    "pgd": "pgd:eps={eps},steps=10",
    "timed": "timed:eps={eps}",
}

MAX_STEPS = 10_000_000
"""The longest a game may be truncated to (``--max-steps``)."""
EPS_UNITS = "L∞ on the [0, 1] network input (1/255 = one gray level)"


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="arena run huang2017_pong", description=__doc__.split("\n")[0])
    p.add_argument(
        "--victims",
        nargs="+",
        metavar="PATH",
        help="victim .npz files (default: the pong_* files in $ARENA_ATARI_DIR)",
    )
    p.add_argument(
        "--attacks",
        nargs="+",
        default=["fgsm", "noise"],
        choices=list(ATTACK_SPECS),
        help="attacks to run (default: fgsm noise)",
    )
    p.add_argument(
        "--eps",
        nargs="+",
        type=_eps,
        default=list(EPS_GRID),
        metavar="E",
        help=f"ε grid on the [0, 1] pixel scale; fractions allowed (default: {' '.join(EPS_GRID)})",
    )
    p.add_argument(
        "--episodes",
        type=EPISODES,
        default=10,
        help="full games per cell (default 10)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="2 games per cell and only the first victim (a smoke run)",
    )
    p.add_argument(
        "--round",
        action="store_true",
        help="round perturbed frames to valid uint8 pixels (default: float input)",
    )
    p.add_argument(
        "--max-steps",
        type=int_arg("max-steps", high=MAX_STEPS),
        default=None,
        metavar="N",
        help="truncate games after N agent steps (smoke tests; default: full games)",
    )
    add_run_options(p, workers=1)
    add_ray_option(p, "every game of the sweep")
    return p


def check(argv: list[str]) -> None:
    """What a run with ``argv`` would refuse, refused without running (``arena grid``
    checks its cells with it)."""
    args = parser().parse_args(argv)
    check_output_dir(args.runs, "--runs")
    for victim in find_victims(args.victims):
        from arena.grid.commands import check_policy

        check_policy(ENV_ID, SEAT, f"atari:{victim}")


def _eps(text: str) -> str:
    """An ε of the grid, kept as typed (``1/255``) once ``parse_number`` accepts it."""
    float_arg("eps", low=0.0, high=1.0)(text)
    return text


def find_victims(paths: list[str] | None) -> list[Path]:
    """The victim files: the given paths, else the known ones in ``$ARENA_ATARI_DIR``."""
    if paths:
        out = [Path(p).expanduser() for p in paths]
        missing = [str(p) for p in out if not p.is_file()]
        if missing:
            raise ExperimentError(f"victim file not found: {', '.join(missing)}")
        return out
    root = os.environ.get("ARENA_ATARI_DIR")
    if not root:
        raise ExperimentError(
            "no victims: pass --victims PATH.npz or set ARENA_ATARI_DIR to the "
            "directory of the pretrained Atari victims (e.g. "
            "ARENA_ATARI_DIR=../shared/atari)"
        )
    found = [
        Path(root) / f"{n}.npz" for n in DEFAULT_VICTIMS if (Path(root) / f"{n}.npz").is_file()
    ]
    if not found:
        raise ExperimentError(
            f"ARENA_ATARI_DIR={root} holds none of {', '.join(n + '.npz' for n in DEFAULT_VICTIMS)}"
        )
    return found


def plot(points: list[SweepPoint], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[tuple[str, str], list[SweepPoint]] = {}
    for p in points:
        series.setdefault((p.victim, p.attack), []).append(p)
    for (victim, attack), pts in sorted(series.items()):
        pts = sorted(pts, key=lambda p: p.eps)
        ys = [p.score.mean_return for p in pts]
        lo = [p.score.mean_return - p.score.return_ci95[0] for p in pts]
        hi = [p.score.return_ci95[1] - p.score.mean_return for p in pts]
        ax.errorbar(
            [p.eps for p in pts],
            ys,
            yerr=[lo, hi],
            marker="o",
            capsize=3,
            label=f"{victim} / {attack}",
            linestyle="--" if attack == "noise" else "-",
        )
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlabel("ε (L∞ on the [0, 1] network input; 1/255 = one gray level)")
    ax.set_ylabel("game score (mean, 95% CI)")
    ax.set_ylim(-22, 22)
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_title("Pong: score vs ε (Huang et al. 2017)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(points: list[SweepPoint], units: str = EPS_UNITS) -> str:
    head = (
        f"{'victim':<22} {'attack':<7} {'ε':>9} {'ε·255':>6} {'score':>7} "
        f"{'95% CI':>16} {'win':>5} {'flip':>6} {'attacked':>8} {'n':>3}"
    )
    lines = [f"ε: {units}; score: full-game return, mean and 95% CI", head, "-" * len(head)]
    for p in points:
        r = p.score
        ci = f"[{r.return_ci95[0]:.1f}, {r.return_ci95[1]:.1f}]"
        flip = "" if r.flip_rate is None else f"{r.flip_rate:.3f}"
        attacked = "" if r.attacked_fraction is None else f"{r.attacked_fraction:.1%}"
        lines.append(
            f"{p.victim:<22} {p.attack:<7} {p.eps:>9.5f} {p.eps * 255:>6.3g} "
            f"{r.mean_return:>7.2f} {ci:>16} {r.win_rate:>5.2f} {flip:>6} "
            f"{attacked:>8} {p.episodes:>3}"
        )
    return "\n".join(lines)


CSV_COLUMNS = (
    "victim",
    "attack",
    "eps",
    "mean_return",
    "ci95_low",
    "ci95_high",
    "win_rate",
    "flip_rate",
    "attacked_fraction",
    "episodes",
)


def write_csv(points: list[SweepPoint], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for p in points:
            r = p.score
            score = (r.mean_return, *r.return_ci95, r.win_rate, r.flip_rate, r.attacked_fraction)
            writer.writerow((p.victim, p.attack, p.eps, *score, p.episodes))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch

    from agents.specs import reference
    from arena.io import write_json_atomic
    from arena.match import MatchRequest, run_matches
    from arena.parallel import pool_for
    from arena.rundir import new_run_dir, run_metadata

    torch.set_num_threads(1)
    check_output_dir(args.runs, "--runs")
    victims = find_victims(args.victims)
    episodes = args.episodes
    if args.quick:
        victims, episodes = victims[:1], min(episodes, 2)
    grid = sorted({parse_number(e, "eps", low=0.0, high=1.0): e for e in args.eps}.items())
    rounding = ",round=true" if args.round else ""
    env_kwargs = {} if args.max_steps is None else {"max_episode_steps": args.max_steps}
    specs = {victim.stem: f"atari:{victim}" for victim in victims}
    refs = {name: reference(spec).to_json() for name, spec in specs.items()}
    # every game of the sweep at once: the clean game once per victim, then each
    # attack at each ε > 0; all their chunks share one pool (local, or Ray)
    cells: list[tuple[str, str, float, str, str | None]] = []
    for name in specs:
        for attack in args.attacks:
            for value, text in grid:
                attack_spec = None
                if value > 0:
                    attack_spec = ATTACK_SPECS[attack].format(eps=text) + rounding
                cells.append((name, attack, value, text, attack_spec))
    wanted: dict[tuple[str, str | None], MatchRequest] = {}
    for name, _attack, _value, _text, attack_spec in cells:
        wanted.setdefault(
            (name, attack_spec),
            MatchRequest(
                ENV_ID,
                {SEAT: specs[name]},
                episodes,
                args.seed,
                attacks={SEAT: attack_spec} if attack_spec else None,
                env_kwargs=env_kwargs,
            ),
        )
    pool = pool_for(args.workers, args.ray)
    played = run_matches(list(wanted.values()), pool=pool)
    seats = {key: result.seats[SEAT] for key, (result, _) in zip(wanted, played, strict=True)}
    points: list[SweepPoint] = []
    for name, attack, value, text, attack_spec in cells:
        seat = seats[(name, attack_spec)]
        points.append(SweepPoint(name, attack, value, text, attack_spec, episodes, seat))
        print(
            f"{name:<22} {attack:<6} ε={text:<7} score {seat.mean_return:6.2f} "
            f"[{seat.return_ci95[0]:.1f}, {seat.return_ci95[1]:.1f}]",
            file=sys.stderr,
        )
    units = EPS_UNITS + (
        "; perturbed frames rounded to uint8" if args.round else "; float input, not rounded"
    )
    table = format_table(points, units)
    config = {
        "experiment": "huang2017_pong",
        "env": ENV_ID,
        "victims": refs,
        "attacks": {a: ATTACK_SPECS[a] + rounding for a in args.attacks},
        "eps": [t for _, t in grid],
        "eps_units": units,
        "episodes": episodes,
        "env_kwargs": env_kwargs,
        "seed": args.seed,
        "quick": args.quick,
    }
    results = sweep_results(
        points,
        units,
        env=ENV_ID,
        seat=SEAT,
        victims=specs,
        seed=args.seed,
        env_kwargs=env_kwargs,
    )
    with new_run_dir(args.runs, "huang2017_pong", ENV_ID, args.seed) as (tmp, final):
        write_json_atomic(tmp / "config.json", config)
        write_json_atomic(tmp / "metadata.json", run_metadata())
        write_json_atomic(tmp / "results.json", results.to_json())
        write_csv(points, tmp / "results.csv")
        (tmp / "table.txt").write_text(table + "\n")
        plot(points, tmp / "score_vs_eps.png")
    print(table)
    print(f"written to {final}")
    return 0


if __name__ == "__main__":  # as `arena run` runs it: its errors are one line, exit 2
    from arena.cli import run_guarded

    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
