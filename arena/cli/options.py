"""Argument types and helpers shared by the ``arena`` subcommands and the experiments:
bounded numbers, ``KEY=VALUE`` pairs, and the flags every run takes (seed, workers,
root of run directories)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib import metadata as importlib_metadata

from arena.artifacts.training_config import MAX_WEIGHT
from arena.errors import (
    MAX_ENVS,
    MAX_EPISODES,
    MAX_TIMESTEPS,
    UsageError,
    float_arg,
    int_arg,
    max_workers,
    seed_arg,
    workers_arg,
)

MAX_FPS = 1000.0
"""The highest video frame rate (``--fps``)."""

EPISODES = int_arg("episodes", low=1, high=MAX_EPISODES)
TIMESTEPS = int_arg("timesteps", low=1, high=MAX_TIMESTEPS)
ENVS = int_arg("envs", low=1, high=MAX_ENVS)
SEED = seed_arg()
WORKERS = workers_arg()
TRAIN_WORKERS = workers_arg(low=0)
FPS = float_arg("fps", low=0.0, high=MAX_FPS, low_open=True)


def weight(name: str) -> Callable[[str], float]:
    """An argparse ``type=`` for the initial weight of a reward term: ``0..MAX_WEIGHT``."""
    return float_arg(name, low=0.0, high=MAX_WEIGHT)


def version() -> str:
    """The installed version of the arena (``0+unknown`` when it is not installed)."""
    try:
        return importlib_metadata.version("adversarial-arena")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def pairs(items: Sequence[str] | None, flag: str, form: str = "SEAT=SPEC") -> dict[str, str]:
    """``KEY=VALUE`` items of a repeatable flag as a dict; ``UsageError`` (one line) on
    an item without both sides or a key given twice. Spaces around either side go."""
    out: dict[str, str] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise UsageError(f"{flag} expects {form}, got {item!r}")
        if key in out:
            raise UsageError(f"{flag} given twice for {key!r}")
        out[key] = value
    return out


def add_ray_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--ray [ADDRESS]``: run ``what`` on Ray (alone: start or join a local Ray)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help=f"run {what} on Ray: alone, a local Ray (started, or the one `ray start` "
        "left); with ADDRESS (HOST:PORT), that cluster. Needs the `ray` extra",
    )


def add_run_options(
    parser: argparse.ArgumentParser, *, workers: int, seed_help: str | None = None
) -> None:
    """The flags of every command that plays episodes and saves a run directory:
    ``--seed``, ``--workers`` (default ``workers``) and ``--runs``."""
    parser.add_argument(
        "--seed", type=SEED, default=0, help=seed_help or "one seed gives one result, bit for bit"
    )
    parser.add_argument(
        "--workers",
        type=WORKERS,
        default=workers,
        help=f"worker processes (1 to {max_workers()}; default {workers})",
    )
    parser.add_argument("--runs", default="runs", help="root of run directories (default: runs)")
