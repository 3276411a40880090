"""Adversary trainings side by side: their greedy evaluations in one plot and one table.

Each ``--run LABEL=DIR`` is an ``arena train-adversary`` run directory; runs labelled
``VARIANT/SEED`` share a colour, and each variant gets a row of its seeds' mean. The
curve is the run's greedy evaluations (``evaluation.csv``, made with ``--eval-every``)
with their 95% intervals, else its rolling training win rate (``progress.csv``,
which understates a greedy adversary; the table says which). ``--until N`` compares
the runs at an equal budget::

    arena run curves --run default/s0=runs/ysnp_flat_s0 --run lr1e-3/s0=runs/ysnp_lr1e3_s0 \\
        --until 2000000 --out docs/ysnp_lr_study.png

Nothing is trained or evaluated: the runs' own files are read, never their policies.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from arena.cli.options import TIMESTEPS, pairs
from arena.errors import ArgumentParser, check_output_dir
from experiments import ExperimentError
from experiments.gleave2020 import Curve, _curve, plot_curves

NAME = "curves"


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=f"arena run {NAME}", description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="a run directory of `arena train-adversary` (repeat; VARIANT/SEED labels "
        "are grouped by variant)",
    )
    p.add_argument("--until", type=TIMESTEPS, default=None, help="only the points up to N steps")
    p.add_argument("--out", default="curves.png", help="the plot (PNG; default curves.png)")
    p.add_argument("--title", default="adversary win rate over training", help="the plot's title")
    return p


def read(label: str, run_dir: Path, until: int | None) -> Curve:
    """The run's curve; ``ExperimentError`` (one line) for a directory that is not a
    run, or whose files do not parse."""
    where = f"--run {label}={run_dir}"
    if not run_dir.is_dir():
        raise ExperimentError(f"{where}: no such directory")
    if not (run_dir / "evaluation.csv").is_file() and not (run_dir / "progress.csv").is_file():
        raise ExperimentError(
            f"{where}: not an `arena train-adversary` run (no evaluation.csv or progress.csv)"
        )
    try:
        curve = _curve(run_dir, until)
    except OSError as exc:  # e.g. an evaluation.csv without rows and no progress.csv
        raise ExperimentError(
            f"{where}: no curve to read ({exc.strerror}: {exc.filename})"
        ) from None
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise ExperimentError(f"{where}: unreadable curve ({type(exc).__name__}: {exc})") from None
    if not curve.timesteps:
        within = f" up to {until:,} steps" if until is not None else ""
        raise ExperimentError(f"{where}: no point{within}")
    return curve


def _steps(n: int) -> str:
    """A column's step count, short: 250,080 as ``250k``, 1,250,400 as ``1.25M``."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}".rstrip("0").rstrip(".") + "M"
    return f"{n / 1e3:.0f}k" if n >= 1_000 else str(n)


def table(curves: dict[str, Curve]) -> str:
    """A markdown table: one row per run (greedy win rate at each point), and after
    the runs of each variant, the mean of its seeds where all of them have the point
    (none for a variant whose runs mix greedy and rolling curves: they measure
    different things)."""
    points = sorted({t for c in curves.values() for t in c.timesteps})
    lines = [
        "| run | " + " | ".join(_steps(t) for t in points) + " |",
        "|---|" + "---|" * len(points),
    ]
    at = {label: dict(zip(c.timesteps, c.win_rate, strict=True)) for label, c in curves.items()}
    groups: dict[str, list[str]] = {}
    for label in curves:
        groups.setdefault(label.split("/")[0], []).append(label)
    for group, labels in groups.items():
        for label in labels:
            kind = "" if curves[label].greedy else " (rolling)"
            cells = [f"{at[label][t]:.2f}" if t in at[label] else "–" for t in points]
            lines.append(f"| {label}{kind} | " + " | ".join(cells) + " |")
        kinds = {curves[x].greedy for x in labels}
        if len(labels) > 1 and len(kinds) == 1:
            kind = "" if kinds == {True} else " (rolling)"
            cells = [
                f"{statistics.mean(at[x][t] for x in labels):.2f}"
                if all(t in at[x] for x in labels)
                else "–"
                for t in points
            ]
            lines.append(f"| {group}, mean of {len(labels)}{kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runs = pairs(args.run, "--run", "LABEL=DIR")
    if not runs:
        raise ExperimentError("--run LABEL=DIR: give at least one run")
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        raise ExperimentError(f"--out {out}: the plot is a PNG (name it *.png)")
    if out.is_dir():
        raise ExperimentError(f"--out {out}: is a directory (give the PNG's file name)")
    check_output_dir(out.parent, "--out")
    curves = {label: read(label, Path(d).expanduser(), args.until) for label, d in runs.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, out, args.title)
    print(table(curves))
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":  # as `arena run` runs it: its errors are one line, exit 2
    from arena.cli import run_guarded

    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
