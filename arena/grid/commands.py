"""What a grid can run: the ``arena`` commands and the experiments, each with its own
parser (a cell's options become the command line the single command takes), the
checks the command makes before it starts (made for every cell before any cell runs),
how an interrupted cell continues, and the summary of a finished cell.

An experiment (``run NAME``) joins a grid when its module has ``parser()`` (its
``ArgumentParser``) and may have ``check(argv)``, which raises what the experiment
would refuse without running anything.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.artifacts.grid import GridError, Scalar, Value
from arena.cli.train import RECIPE_OPTIONS
from arena.errors import UsageError, parse_errors_raise

RESERVED = {
    "out": "the grid gives every cell its own run directory",
    "runs": "the grid gives every cell its own run directory",
    "resume": "`arena grid --resume` continues cells",
    "json": "the grid reads each cell's run directory",
    "ray": "`arena grid --ray` places the cells",
    "no_save": "every cell keeps its run directory",
    "record": "record from a single `arena evaluate`",
    "help": "not an option of a run",
    "version": "not an option of a run",
}
"""Options a grid file may not set, and why."""

BUILTIN = ("train-adversary", "finetune-victim", "evaluate")
RECIPE = frozenset(RECIPE_OPTIONS)
"""Options a resumed training keeps from its run (``--resume`` refuses them)."""


@dataclass(frozen=True)
class Command:
    name: str
    """``train-adversary``, ``evaluate``... or ``run NAME``."""
    parser: argparse.ArgumentParser
    output: str
    """The flag that names the cell's output: ``--out`` (the run directory itself) or
    ``--runs`` (the root under which the command makes its run directory)."""
    check: Callable[[argparse.Namespace, list[str]], None]
    kind: str
    """``training``, ``run`` (a run directory with ``results.json``) or ``experiment``."""

    @property
    def prefix(self) -> list[str]:
        return self.name.split()

    def argv(self, values: dict[str, Value | dict[str, Value]]) -> list[str]:
        """The command line of one cell (without the output flag)."""
        return self.prefix + options_argv(self.parser, values, self.name)

    def check_cell(self, argv: list[str], out: Path) -> None:
        """Refuse what the single command would refuse, without running it."""
        with parse_errors_raise():
            args = self.parser.parse_args([*argv[len(self.prefix) :], self.output, str(out)])
            self.check(args, argv)


def _subparser(name: str) -> argparse.ArgumentParser:
    from arena.cli.parser import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[name]
    return found


def command(name: str) -> Command:
    """The command a grid file names; ``GridError`` naming the valid ones."""
    words = name.split()
    if len(words) == 1 and words[0] in BUILTIN:
        checks = {
            "train-adversary": _check_train,
            "finetune-victim": _check_finetune,
            "evaluate": _check_evaluate,
        }
        output = "--runs" if name == "evaluate" else "--out"
        kind = "run" if name == "evaluate" else "training"
        return Command(name, _subparser(name), output, checks[name], kind)
    if len(words) == 2 and words[0] == "run":
        return _experiment(words[1])
    from arena.cli.run import experiments

    valid = [*BUILTIN, *(f"run {n}" for n in experiments())]
    raise GridError(f"unknown command {name!r}; valid: {', '.join(valid)}")


def _experiment(name: str) -> Command:
    from arena.cli.run import load

    try:
        main = load(name)
    except UsageError as exc:
        raise GridError(str(exc)) from None
    module = importlib.import_module(main.__module__)
    make_parser = getattr(module, "parser", None)
    if make_parser is None:
        raise GridError(f"experiment {name!r} cannot run in a grid: its module has no parser()")
    check = getattr(module, "check", None)

    def checked(args: argparse.Namespace, argv: list[str]) -> None:
        if check is not None:
            check(argv[2:])

    return Command(f"run {name}", make_parser(), "--runs", checked, "experiment")


def options_argv(
    parser: argparse.ArgumentParser, values: dict[str, Value | dict[str, Value]], name: str
) -> list[str]:
    """A cell's option values as the command line ``parser`` reads; ``GridError`` on an
    option the command does not have (naming those it has) or a value it cannot take."""
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help",)}
    valid = sorted(k for k in actions if k not in RESERVED)
    positional, optional = [], []
    for key, given in values.items():
        if key in RESERVED:
            raise GridError(f"option {key!r} cannot be set in a grid file: {RESERVED[key]}")
        action = actions.get(key)
        if action is None:
            raise GridError(f"{name} has no option {key!r}; valid: {', '.join(valid)}")
        where = f"option {key!r} of {name}"
        value: Value
        if isinstance(given, dict):
            if not isinstance(action, argparse._AppendAction):
                raise GridError(f"{where} takes no table of seats")
            items: list[Scalar] = []
            for seat, v in given.items():
                if isinstance(v, list):
                    raise GridError(f"{where}: seat {seat!r} takes one value per cell")
                items.append(f"{seat}={_text(v)}")
            value = items
        else:
            value = given
        many = value if isinstance(value, list) else [value]
        if not action.option_strings:
            if isinstance(value, list):
                raise GridError(f"{where} takes one value per cell")
            positional.append((parser._actions.index(action), _alone(parser, value, where)))
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction | argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise GridError(f"{where} is a switch: true or false")
            if isinstance(action, argparse.BooleanOptionalAction):  # --flag / --no-flag
                on, off = sorted(action.option_strings, key=len)
                optional.append(on if value else off)
            else:
                optional += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in many:
                optional += _flag_value(parser, flag, item, where)
        elif action.nargs in ("+", "*") or isinstance(action.nargs, int):
            optional += [flag, *(_alone(parser, v, where) for v in many)]
        else:
            if isinstance(value, list):
                raise GridError(f"{where} takes one value per cell, not a list")
            optional += _flag_value(parser, flag, value, where)
    return [text for _, text in sorted(positional)] + optional


def _is_flag(parser: argparse.ArgumentParser, text: str) -> bool:
    """Whether ``parser`` would read ``text`` standing alone as a flag (``--out=/etc``,
    ``-h``), not as a value: it begins with '-' and is no negative number."""
    negative = parser._negative_number_matcher.match(text) is not None
    return text.startswith("-") and not (negative and not parser._has_negative_number_optionals)


def _alone(parser: argparse.ArgumentParser, value: Scalar, where: str) -> str:
    """A value that stands alone on the command line; one the command would read as a
    flag (a grid file smuggling ``--ray`` or ``--help`` into a cell) is refused."""
    text = _text(value)
    if _is_flag(parser, text):
        raise GridError(f"{where}: {text!r} begins with '-' and would be read as a flag")
    return text


def _flag_value(parser: argparse.ArgumentParser, flag: str, value: Scalar, where: str) -> list[str]:
    """``FLAG VALUE``; a value that begins with '-' is joined to its flag
    (``--flag=-x``), so that it is read as the flag's value, never as a flag."""
    text = _text(value)
    if _is_flag(parser, text) and flag.startswith("--"):
        return [f"{flag}={text}"]
    return [flag, _alone(parser, value, where)]


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


# ---- the checks the single commands make before they start -------------------------

_ENV_CACHE: dict[str, Any] = {}
_CHECKED: set[tuple[str, str, str]] = set()


def check_policy(env_id: str, seat: str, spec: str) -> None:
    """Load ``spec`` for ``seat`` of ``env_id`` as a match would (once per grid): a
    missing file, a file that is not a policy or a policy whose spaces do not fit the
    seat is refused here, before any cell runs."""
    import envs
    from agents import specs

    if (env_id, seat, spec) in _CHECKED:
        return
    specs.parse(spec)
    if env_id not in _ENV_CACHE:
        _ENV_CACHE[env_id] = envs.make(env_id)
    env = _ENV_CACHE[env_id]
    specs.resolve(
        spec, env.observation_space(seat), env.action_space(seat), env_id=env_id, seat=seat
    )
    _CHECKED.add((env_id, seat, spec))


def _check_evaluate(args: argparse.Namespace, argv: list[str]) -> None:
    from agents.attacks import parse_attack
    from arena.cli.options import pairs
    from arena.match import check_seats
    from arena.players import acting

    policies = pairs(args.policy, "--policy")
    attacks = pairs(args.attack, "--attack")
    filled = check_seats(args.env_id, policies, attacks)
    for seat, spec in filled.items():
        check_policy(args.env_id, seat, str(spec))
    for a in attacks.values():
        parse_attack(a)
    specs = {seat: str(spec) for seat, spec in filled.items()}
    acting(specs, sample=args.sample, greedy=args.greedy, every_seat_samples=args.stochastic)


def _check_train(args: argparse.Namespace, argv: list[str]) -> None:
    import envs
    from arena.cli.options import pairs
    from arena.training import TrainingError

    victims = pairs(args.victim, "--victim")
    spec = envs.spec(args.env_id)
    for seat in victims:
        spec.check_seat(seat)
    free = [s for s in spec.seats if s not in victims]
    if len(free) != 1:
        raise TrainingError(
            f"{args.env_id} has seats {', '.join(spec.seats)}: victims must fill all but "
            f"one (the adversary's)"
        )
    for seat, victim in victims.items():
        check_policy(args.env_id, seat, victim)


def _check_finetune(args: argparse.Namespace, argv: list[str]) -> None:
    from arena.cli.train import finetune_seats

    seat, spec, other = finetune_seats(args)
    check_policy(args.env_id, seat, spec)
    check_policy(args.env_id, other, args.adversary)
    if args.opponent is not None:
        check_policy(args.env_id, other, args.opponent)


# ---- after a cell: where its run is, and what it found -----------------------------


def run_dir_of(cmd: Command, out: Path) -> Path | None:
    """The cell's run directory: ``out`` for a training; else the one directory below
    ``out`` that the command made (``out/<experiment>/<run>``), None before it did."""
    if cmd.kind == "training":
        return out if out.is_dir() else None
    found = [p.parent for p in out.glob("*/*/config.json") if not p.parent.name.startswith(".")]
    return found[0] if len(found) == 1 else None


def resume_argv(cmd: Command, argv: list[str], values: dict[str, Any], out: Path) -> list[str]:
    """The command line that continues an interrupted cell: a training from its last
    checkpoint (``--resume``, its recipe kept by the run); an experiment that has
    ``--resume RUN_DIR`` likewise; anything else runs again from the start."""
    if cmd.kind == "training":
        from arena.training import is_training_run

        if is_training_run(out):
            kept = {k: v for k, v in values.items() if k not in RECIPE}
            return [*cmd.argv(kept), "--resume"]
        return argv
    run_dir = run_dir_of(cmd, out)
    resumes = any("--resume" in a.option_strings for a in cmd.parser._actions)
    if cmd.kind == "experiment" and resumes and run_dir is not None:
        keep = {k: v for k, v in values.items() if k == "workers"}
        return [*cmd.prefix, *options_argv(cmd.parser, keep, cmd.name), "--resume", str(run_dir)]
    return argv


def summary(cmd: Command, out: Path) -> dict[str, Any]:
    """What a finished cell found, as JSON: ``headline`` (label, value, ci95) and
    ``figures`` (every figure of its headline table, by ``row: column``). Wall-clock
    figures are left out: a cell gives the same summary wherever it ran."""
    run_dir = run_dir_of(cmd, out)
    if run_dir is None:
        raise GridError(f"{out}: the command left no run directory")
    if cmd.kind == "training":
        return _training_summary(run_dir)
    return _results_summary(run_dir)


def _training_summary(run_dir: Path) -> dict[str, Any]:
    from arena.artifacts.base import read_json
    from arena.artifacts.training_run import TrainingResults, TrainingRunFiles

    files = TrainingRunFiles(run_dir)
    results = TrainingResults.from_json(read_json(files.results), str(files.results))
    figures: dict[str, Any] = {"timesteps": results.timesteps}
    headline: dict[str, Any] = {"label": "adversary win rate (rolling, training)"}
    headline["value"] = results.rolling_win_rate
    figures["rolling win rate"] = results.rolling_win_rate
    rows = _evaluation_rows(files.evaluation)
    if rows:
        last = rows[-1]
        value = float(last["win_rate"])
        ci = [float(last["win_low"]), float(last["win_high"])]
        figures["greedy win rate"] = {"value": value, "ci95": ci}
        headline = {
            "label": f"adversary win rate (greedy, {last['episodes']} episodes at "
            f"{int(last['timesteps']):,} steps)",
            "value": value,
            "ci95": ci,
        }
    return {"headline": headline, "figures": figures}


def _evaluation_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("win_rate")]


def _results_summary(run_dir: Path) -> dict[str, Any]:
    from arena.artifacts.base import read_json
    from arena.artifacts.run import RunResults
    from arena.artifacts.run_tables import Score, cell_to_json

    path = run_dir / "results.json"
    results = RunResults.from_json(read_json(path), str(path))
    table = results.headline
    figures: dict[str, Any] = {}
    headline: dict[str, Any] = {"label": results.title, "value": None}
    if table is None:
        return {"headline": headline, "figures": figures}
    first_score = None
    rows = list(enumerate(table.rows))
    rows.sort(key=lambda item: item[0] not in table.highlight)  # the finding first
    for _, row in rows:
        label = " ".join(str(c) for c in row[:1])
        for column, cell in zip(table.columns[1:], row[1:], strict=True):
            figures[f"{label}: {column}"] = cell_to_json(cell)
            if first_score is None and isinstance(cell, Score) and not math.isnan(cell.value):
                first_score = (f"{label}: {column}", cell)
    if first_score is not None:
        label, score = first_score
        headline = {"label": label, "value": score.value}
        if score.ci95 is not None:
            headline["ci95"] = list(score.ci95)
    return {"headline": headline, "figures": figures}
