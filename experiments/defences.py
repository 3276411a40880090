"""Defences that survive re-attack: fine-tune the victim, then attack it again.

Gleave et al. (2020, §5.3) fine-tuned victims against their adversary and found them
robust to it but not to a *new* adversary trained against the fine-tuned victim; KataGo's
defences fell the same way (Wang et al. 2023, go_attack). For each game this experiment:

1. takes the adversary (``--adversary GAME=SPEC``, or trains one with ``--timesteps``);
2. fine-tunes the zoo victim against a mix of that adversary and its normal opponent
   (``arena finetune-victim``; ``--finetuned GAME=SPEC`` skips it);
3. trains a new adversary against the fine-tuned victim (``--new-adversary GAME=SPEC``
   skips it);
4. scores {zoo victim, masked victim, fine-tuned victim} × {zoo opponent, old adversary,
   new adversary, random, zero}: the victim's win rate with 95% intervals.

    arena run defences --quick
    arena run defences --games you_shall_not_pass \\
        --adversary you_shall_not_pass=run:arena/assets/you_shall_not_pass_v0__blocker
    arena run defences --resume RUN_DIR

Trainings run in place in ``RUN_DIR/trainings/`` with checkpoints; ``--resume RUN_DIR``
continues a stopped run. Victims and opponents act as ``arena evaluate`` scores them:
zoo agents sampled, trained policies (adversaries, the fine-tuned victim) greedily; the
new adversary trains against the fine-tuned victim acting greedily, as it is scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.numbers import parse_number, parse_seed
from arena.artifacts import Cell, RunResults, SampleRecipe, Score, Table
from arena.cli.options import EPISODES, TIMESTEPS, TRAIN_WORKERS, add_run_options, pairs
from arena.errors import MAX_EPISODES, MAX_TIMESTEPS, ArgumentParser, check_output_dir
from arena.parallel import Pool, pool_for
from arena.players import acting, samples_by_default
from experiments import ExperimentError
from experiments.gleave2020 import GAMES, Game, evaluate

NAME = "defences"
VICTIMS = ("zoo victim", "masked victim", "fine-tuned victim")
OPPONENTS = ("zoo opponent", "old adversary", "new adversary", "random", "zero")
RUNTIME = ("resume", "workers", "train_workers")
"""The flags a resume may give: itself and those that change how fast the run goes, not
what it computes."""
ADVERSARY_SHARE = 0.5
"""The fine-tuning opponent: the old adversary this share of episodes, else the zoo's."""


@dataclass(frozen=True)
class Plan:
    """What one run does, resolved from its flags: its ``config.json``."""

    games: tuple[str, ...]
    episodes: int
    seed: int
    timesteps: int
    """Training budget of each adversary (old and new) the run trains."""
    finetune_timesteps: int
    quick: bool = False
    adversaries: dict[str, str] = field(default_factory=dict)
    finetuned: dict[str, str] = field(default_factory=dict)
    new_adversaries: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """``ExperimentError`` (one line) on an unknown game or a given policy of a game
        not run or whose spec does not parse."""
        from agents.specs import parse

        unknown = [n for n in self.games if n not in GAMES]
        if unknown:
            raise ExperimentError(f"unknown game {unknown[0]!r}; valid: {', '.join(GAMES)}")
        for flag, given in (
            ("--adversary", self.adversaries),
            ("--finetuned", self.finetuned),
            ("--new-adversary", self.new_adversaries),
        ):
            for game, spec in given.items():
                if game not in self.games:
                    raise ExperimentError(
                        f"{flag} {game}=...: {game!r} is not among the games run "
                        f"({', '.join(self.games)}; see --games)"
                    )
                parse(spec)

    def to_json(self) -> dict[str, Any]:
        return {"experiment": NAME, **dataclasses.asdict(self), "games": list(self.games)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Plan:
        if not isinstance(data, dict) or data.get("experiment") != NAME:
            raise ExperimentError(f"{where}: not the configuration of a {NAME} run")
        try:
            plan = cls(
                games=tuple(str(g) for g in data["games"]),
                episodes=parse_number(
                    data["episodes"], "episodes", low=1, high=MAX_EPISODES, integer=True
                ),
                seed=parse_seed(data["seed"]),
                timesteps=parse_number(
                    data["timesteps"], "timesteps", low=1, high=MAX_TIMESTEPS, integer=True
                ),
                finetune_timesteps=parse_number(
                    data["finetune_timesteps"],
                    "finetune_timesteps",
                    low=1,
                    high=MAX_TIMESTEPS,
                    integer=True,
                ),
                quick=data.get("quick") is True,
                **{
                    key: {str(k): str(v) for k, v in (data.get(key) or {}).items()}
                    for key in ("adversaries", "finetuned", "new_adversaries")
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExperimentError(f"{where}: {type(exc).__name__}: {exc}") from None
        plan.check()
        return plan


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=f"arena run {NAME}", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the toy game, small budgets")
    p.add_argument(
        "--games", default="you_shall_not_pass", help=f"comma-separated, from: {', '.join(GAMES)}"
    )
    p.add_argument(
        "--timesteps",
        type=TIMESTEPS,
        help="budget of each adversary it trains (default 5,000,000; 150,000 with --quick)",
    )
    p.add_argument(
        "--finetune-timesteps",
        type=TIMESTEPS,
        help="budget of the fine-tuning (default 1,000,000; 50,000 with --quick)",
    )
    p.add_argument(
        "--episodes",
        type=EPISODES,
        help="evaluation episodes per cell (default 200; 50 with --quick)",
    )
    for flag, what in (
        ("--adversary", "the adversary to defend against"),
        ("--finetuned", "the victim already fine-tuned against it"),
        ("--new-adversary", "the adversary already trained against the fine-tuned victim"),
    ):
        p.add_argument(
            flag, action="append", default=[], metavar="GAME=SPEC", help=f"{what} (not trained)"
        )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run with its own configuration "
        "(--workers and --train-workers may change)",
    )
    p.add_argument(
        "--train-workers",
        type=TRAIN_WORKERS,
        help="processes simulating each training's games (0: in-process, one core; "
        "default: the trainer's)",
    )
    add_run_options(p, workers=2)
    return p


def _new_plan(args: argparse.Namespace) -> Plan:
    names = ["toy_pass"] if args.quick else [g.strip() for g in args.games.split(",")]
    plan = Plan(
        games=tuple(names),
        episodes=args.episodes or (50 if args.quick else 200),
        seed=args.seed,
        timesteps=args.timesteps or (150_000 if args.quick else 5_000_000),
        finetune_timesteps=args.finetune_timesteps or (50_000 if args.quick else 1_000_000),
        quick=args.quick,
        adversaries=pairs(args.adversary, "--adversary", "GAME=SPEC"),
        finetuned=pairs(args.finetuned, "--finetuned", "GAME=SPEC"),
        new_adversaries=pairs(args.new_adversary, "--new-adversary", "GAME=SPEC"),
    )
    plan.check()
    return plan


def check(argv: list[str]) -> None:
    """What a run with ``argv`` would refuse, refused without running (``arena grid``)."""
    args = parser().parse_args(argv)
    if args.resume:
        raise ExperimentError("--resume: a grid resumes its cells itself")
    _new_plan(args)
    check_output_dir(args.runs, "--runs")


def _resumed_plan(args: argparse.Namespace, run_dir: Path) -> Plan:
    defaults = vars(parser().parse_args([]))
    changed = [k for k, v in vars(args).items() if k not in RUNTIME and v != defaults[k]]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise ExperimentError(
            "--resume keeps the run's own configuration: give only --workers or "
            f"--train-workers with it, not {flag}"
        )
    config = run_dir / "config.json"
    if not config.is_file():
        raise ExperimentError(f"--resume {run_dir}: not a {NAME} run (no config.json)")
    if (run_dir / "results.json").is_file():
        raise ExperimentError(f"--resume {run_dir}: the run is finished (it has results.json)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExperimentError(f"--resume {config}: not readable JSON: {exc}") from None
    return Plan.from_json(data, where=f"--resume {config}")


def _train(out: Path, what: str, steps: int, **kwargs: Any) -> str:
    """Train into ``out`` in place (from its last checkpoint if an earlier session left
    one; not again if finished); the result as a policy spec."""
    from arena.training import is_training_run, train_adversary

    spec = f"run:{out}"
    if (out / "results.json").is_file():
        print(f"[{NAME}] {what}: trained in an earlier session", file=sys.stderr)
        return spec
    resume = is_training_run(out)
    print(
        f"[{NAME}] {what}: {'resuming' if resume else 'training'} for {steps:,} steps",
        file=sys.stderr,
    )
    train_adversary(timesteps=steps, out=out, resume=resume, progress=False, **kwargs)
    return spec


def policies(
    plan: Plan, name: str, run_dir: Path, runtime: dict[str, Any] | None = None
) -> dict[str, str]:
    """The game's old adversary, fine-tuned victim and new adversary as policy specs,
    each trained (in ``run_dir/trainings/``, with ``runtime``: ``runtime_flags``) where
    the plan does not give it."""
    from arena.training import default_adversary_config

    game = GAMES[name]
    trainings = run_dir / "trainings"
    config = default_adversary_config(game.env_id)
    old = plan.adversaries.get(name) or _train(
        trainings / f"{name}__adversary",
        f"{name}: adversary",
        plan.timesteps,
        env_id=game.env_id,
        victims={game.victim_seat: game.victim},
        seed=plan.seed,
        config=config,
        runtime=runtime,
    )
    finetuned = plan.finetuned.get(name) or _train(
        trainings / f"{name}__finetuned",
        f"{name}: fine-tuned victim",
        plan.finetune_timesteps,
        env_id=game.env_id,
        victims={
            game.adversary_seat: (
                f"mix:{ADVERSARY_SHARE}*{old}|{1 - ADVERSARY_SHARE}*{game.opponent}"
            )
        },
        adversary_seat=game.victim_seat,
        init=game.victim,
        seed=plan.seed,
        config=config,
        runtime=runtime,
    )
    # the new adversary meets the fine-tuned victim acting as it will be scored
    sampled = samples_by_default(finetuned)
    new = plan.new_adversaries.get(name) or _train(
        trainings / f"{name}__new_adversary",
        f"{name}: new adversary",
        plan.timesteps,
        env_id=game.env_id,
        victims={game.victim_seat: finetuned},
        seed=plan.seed,
        config=dataclasses.replace(config, victim_sampled=sampled),
        runtime=runtime,
    )
    return {"old": old, "finetuned": finetuned, "new": new}


def _matrix(
    plan: Plan, name: str, run_dir: Path, pool: Pool, runtime: dict[str, Any] | None
) -> tuple[Table, SampleRecipe]:
    game: Game = GAMES[name]
    got = policies(plan, name, run_dir, runtime)
    victims = dict(
        zip(VICTIMS, (game.victim, f"masked:{game.victim}", got["finetuned"]), strict=True)
    )
    opponents = dict(
        zip(OPPONENTS, (game.opponent, got["old"], got["new"], "random", "zero"), strict=True)
    )
    rows: list[tuple[Cell, ...]] = []
    for label, victim in victims.items():
        cells: list[Cell] = []
        for opponent in opponents.values():
            r = evaluate(game, victim, opponent, plan.episodes, plan.seed, pool)
            cells.append(Score.of(r.win_rate, r.win_rate_ci95))
        rows.append((label, *cells))
    table = Table(
        f"{game.env_id}: {game.victim_seat}'s win rate, defended and re-attacked",
        ("victim", *(f"vs {o}" for o in OPPONENTS)),
        tuple(rows),
        highlight=(2,),
        caption=(
            f"{plan.episodes} episodes per cell; old adversary {got['old']}; fine-tuned "
            f"victim {got['finetuned']} (against {ADVERSARY_SHARE:g} old adversary, "
            f"{1 - ADVERSARY_SHARE:g} zoo opponent); new adversary {got['new']}"
        ),
    )
    matchup = {game.victim_seat: got["finetuned"], game.adversary_seat: got["new"]}
    sample = SampleRecipe(
        env=game.env_id,
        policies=matchup,
        seed=plan.seed,
        deterministic=acting(matchup),
        label="fine-tuned victim vs the new adversary",
    )
    return table, sample


def run(argv: list[str] | None = None) -> tuple[RunResults, Path]:
    from arena.io import write_json_atomic
    from arena.rundir import run_metadata, run_name

    args = parser().parse_args(argv)
    plan = _resumed_plan(args, Path(args.resume)) if args.resume else _new_plan(args)
    if args.resume:
        run_dir = Path(args.resume)
    else:
        check_output_dir(args.runs, "--runs")
        run_dir = Path(args.runs) / NAME / run_name("+".join(plan.games), plan.seed)
        run_dir.mkdir(parents=True)
        write_json_atomic(run_dir / "config.json", plan.to_json())
        write_json_atomic(run_dir / "metadata.json", run_metadata())
        print(f"[{NAME}] run directory {run_dir} (if stopped: --resume {run_dir})", file=sys.stderr)
    from arena.training import runtime_flags

    pool = pool_for(args.workers, None)
    runtime = None if args.train_workers is None else runtime_flags(args.train_workers)
    parts = [_matrix(plan, name, run_dir, pool, runtime) for name in plan.games]
    tables = tuple(t for t, _ in parts)
    results = RunResults(
        kind=NAME,
        title=f"defences that survive re-attack: {', '.join(plan.games)}",
        headline=tables[0],
        tables=tables[1:],
        samples=tuple(s for _, s in parts),
        extra={"episodes": plan.episodes, "timesteps": plan.timesteps},
    )
    write_json_atomic(run_dir / "results.json", results.to_json())
    return results, run_dir


def main(argv: list[str] | None = None) -> int:
    from experiments.gleave2020 import format_report

    print(format_report(*run(argv)))
    return 0


if __name__ == "__main__":  # as `arena run` runs it: its errors are one line, exit 2
    from arena.cli import run_guarded

    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
