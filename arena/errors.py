"""User errors: one type to raise, one tuple to catch, one line to print.

Every error the arena raises for bad user input derives from ``ArenaError``. The leaf
packages ``envs`` and ``agents`` cannot import ``arena``; their own bases are listed
in ``USER_ERRORS`` beside it. ``arena.cli.run_guarded`` catches ``USER_ERRORS`` in one place
and prints ``arena: error: <first line>``, exit status 2. Anything else is a bug and
keeps its traceback.

Also here: the argument parser whose usage errors are that one line, argparse types
built on the one number parser (``agents.numbers.parse_number``), and the check that
an output directory can be made before any work is done.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, NoReturn, TypeVar

from agents.attacks.base import AttackSpecError
from agents.numbers import SEED_MAX, parse_number
from agents.safe_pickle import UnsafePickleError
from agents.sb3 import PolicyFileError
from agents.specs import PolicySpecError
from agents.zoo import ZooError
from envs import EnvError


class ArenaError(ValueError):
    """Bad user input found by the arena (not by ``envs`` or ``agents``)."""


class UsageError(ArenaError):
    """A command-line argument that argparse accepted but the command cannot use."""


USER_ERRORS: tuple[type[Exception], ...] = (
    ArenaError,
    EnvError,
    PolicySpecError,
    PolicyFileError,
    AttackSpecError,
    ZooError,
    UnsafePickleError,
)
"""What ``arena`` reports as one line ``arena: error: ...`` with exit status 2."""

T = TypeVar("T")

MAX_EPISODES = 1_000_000
MAX_TIMESTEPS = 10**10
MAX_ENVS = 4096


def max_workers() -> int:
    """Worker processes beyond 4 per core only thrash: at most ``4 * os.cpu_count()``."""
    return 4 * (os.cpu_count() or 1)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line ``arena: error: ...``, exit 2; inside
    ``parse_errors_raise()`` they are a ``UsageError`` instead (a grid checks its cells
    with the commands' own parsers)."""

    raising: ClassVar[bool] = False

    def error(self, message: str) -> NoReturn:
        if ArgumentParser.raising:
            raise UsageError(f"{message} (see `{self.prog} --help`)")
        self.exit(2, f"arena: error: {message} (see `{self.prog} --help`)\n")


@contextlib.contextmanager
def parse_errors_raise() -> Iterator[None]:
    """Within: an ``ArgumentParser`` usage error raises ``UsageError``, no exit."""
    before, ArgumentParser.raising = ArgumentParser.raising, True
    try:
        yield
    finally:
        ArgumentParser.raising = before


def _argtype(parse: Callable[[str], T], kind: str) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:  # argparse prints "argument --flag: <message>"
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = kind
    return convert


def float_arg(
    name: str, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number in the range (``parse_number``)."""
    return _argtype(
        lambda text: parse_number(text, name, low=low, high=high, low_open=low_open), "number"
    )


def int_arg(name: str, *, low: int | None = 1, high: int | None) -> Callable[[str], int]:
    """An argparse ``type=``: an integer in ``[low, high]`` (``parse_number``)."""
    return _argtype(
        lambda text: parse_number(text, name, low=low, high=high, integer=True), "integer"
    )


def seed_arg(name: str = "seed") -> Callable[[str], int]:
    """An argparse ``type=`` for a seed: an integer in ``0..SEED_MAX``."""
    return int_arg(name, low=0, high=SEED_MAX)


def workers_arg(name: str = "workers", *, low: int = 1) -> Callable[[str], int]:
    """An argparse ``type=`` for worker processes: at most ``max_workers()``."""
    return int_arg(name, low=low, high=max_workers())


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output path that cannot become a directory: one
    below a file, or in a directory this user cannot write."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a directory")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {path}: {probe} is not a directory")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {probe} is not writable")
    return path
