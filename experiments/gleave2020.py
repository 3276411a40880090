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
    arena run gleave2020 --resume runs/gleave2020/you_shall_not_pass__s0__...
    arena run gleave2020 --games you_shall_not_pass --adversary you_shall_not_pass=run:DIR
    arena run gleave2020 --games you_shall_not_pass --reward-study --timesteps 300000
    arena run gleave2020 --games you_shall_not_pass --reward-study \
        --variant-run sparse=runs/study/sparse --variant-run "game shaping (c)=..." ...

The adversaries train in place, in ``RUN_DIR/adversaries/`` of the final run
directory, with checkpoints: a run that stops (an error, Ctrl-C, a machine going
away) is continued by ``--resume RUN_DIR``. ``RUN_DIR/results.json`` marks a finished
run. A run that trains nothing (every adversary given) appears whole or not at all.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.numbers import parse_number, parse_seed
from arena.artifacts import Cell, Figure, RunResults, SampleRecipe, Score, Table
from arena.artifacts.run_builders import (
    Variant,
    opponent_table,
    variant_comparison,
    win_rate_bars,
)
from arena.cli.options import EPISODES, TIMESTEPS, add_ray_option, add_run_options, pairs
from arena.errors import MAX_EPISODES, MAX_TIMESTEPS, ArgumentParser, check_output_dir
from arena.evaluation import SeatResult
from arena.parallel import Pool, pool_for
from arena.players import acting
from arena.pretrained import shipped, zoo_spec
from experiments import ExperimentError

NAME = "gleave2020"


@dataclass(frozen=True)
class Game:
    env_id: str
    victim_seat: str
    adversary_seat: str
    victim: str
    """Policy spec of the victim."""
    opponent: str
    """Policy spec of the victim's normal opponent."""


def _zoo_game(env_id: str, victim_seat: str, adversary_seat: str) -> Game:
    """A MuJoCo game: the zoo agent of ``victim_seat`` against its zoo opponent."""
    victim, opponent = zoo_spec(env_id, victim_seat), zoo_spec(env_id, adversary_seat)
    return Game(env_id, victim_seat, adversary_seat, victim, opponent)


GAMES = {
    "toy_pass": Game(
        "toy_pass_v0", "runner", "blocker", f"sb3:{shipped('toy_pass_v0__runner.zip')}", "zero"
    ),
    "you_shall_not_pass": _zoo_game("you_shall_not_pass_v0", "runner", "blocker"),
    "kick_and_defend": _zoo_game("kick_and_defend_v0", "kicker", "keeper"),
    "sumo_humans": _zoo_game("sumo_humans_v0", "fighter_0", "fighter_1"),
}

NO_DENSE_TERMS = {
    "shaping": 0.0,
    "victim_value": 0.0,
    "victim_divergence": 0.0,
    "victim_reward": 0.0,
    "victim_novelty": 0.0,
    "victim_fall": 0.0,
    "white_box": False,
    "flat_win": False,
}
"""The recipe's terms switched off: the study's variants start from the games' own
rewards (the study was measured before ``--flat-win`` became the default)."""
REWARD_VARIANTS: dict[str, dict[str, Any]] = {
    "sparse": {},
    "victim value (a)": {"victim_value": 200.0},
    "action divergence (b)": {"victim_divergence": 3.0},
    "game shaping (c)": {"shaping": 100.0},
    "(a) + (c)": {"shaping": 100.0, "victim_value": 200.0},
    "victim reward (d, Guo)": {"shaping": 100.0, "victim_reward": 1.0},
    "novelty (e, IMAP)": {"shaping": 100.0, "victim_novelty": 1.0},
    "white-box (a) + (c)": {"shaping": 100.0, "victim_value": 200.0, "white_box": True},
    "(a) + (c), action std 0.2": {"shaping": 100.0, "victim_value": 200.0, "action_std": 0.2},
}
"""Initial weights (annealed to 0 over half the budget), scaled so that each dense
term's episode total is of the order of the ±1000 goal reward in you-shall-not-pass:
the runner's distance to its goal moves by up to ~5 (c), the zoo runner's value
estimate spans ~2 (a), and its action divergence (W2², see ``arena.embedding``)
averages ~0.3 per step over ~500 steps (b). The white-box variant is (a) + (c) with
the adversary also observing the victim's greedy action and value (``--white-box``);
``action_std`` is the initial spread of the adversary's actions (``--action-std``; SB3's
default 1 is mostly clipped noise in the humanoids' ±0.4 controls)."""


@dataclass(frozen=True)
class Plan:
    """What one run does, resolved from its flags: its ``config.json``."""

    games: tuple[str, ...]
    episodes: int
    seed: int
    timesteps: int | None
    """The training budget of each adversary; None when the run trains none."""
    quick: bool = False
    reward_study: bool = False
    adversaries: dict[str, str] = field(default_factory=dict)
    """``--adversary GAME=SPEC``: the trained adversaries it scores instead."""
    variant_runs: dict[str, str] = field(default_factory=dict)
    """``--variant-run LABEL=DIR``: the reward study's finished training runs."""

    def check(self) -> None:
        """``ExperimentError`` (one line) on an unknown game, a given adversary of a
        game not run or a spec that does not parse, a variant run that is not one."""
        from agents.specs import parse

        unknown = [n for n in self.games if n not in GAMES]
        if unknown:
            raise ExperimentError(f"unknown game {unknown[0]!r}; valid: {', '.join(GAMES)}")
        for game, spec in self.adversaries.items():
            if game not in GAMES:
                raise ExperimentError(
                    f"--adversary {game}=...: unknown game {game!r}; valid: {', '.join(GAMES)}"
                )
            if game not in self.games:
                raise ExperimentError(
                    f"--adversary {game}=...: {game} is not among the games run "
                    f"({', '.join(self.games)}; see --games)"
                )
            parse(spec)
        for label, directory in self.variant_runs.items():
            if not (Path(directory) / "progress.csv").is_file():
                raise ExperimentError(
                    f"--variant-run {label}={directory}: not a training run (no progress.csv)"
                )

    def to_json(self) -> dict[str, Any]:
        """The values the run uses, and only those."""
        out: dict[str, Any] = {"experiment": NAME, "games": list(self.games)}
        out.update(quick=self.quick, reward_study=self.reward_study)
        out.update(episodes=self.episodes, seed=self.seed)
        if self.timesteps is not None:
            out["timesteps"] = self.timesteps
        if self.adversaries:
            out["adversaries"] = self.adversaries
        if self.variant_runs:
            out["variant_runs"] = self.variant_runs
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Plan:
        if not isinstance(data, dict) or data.get("experiment") != NAME:
            raise ExperimentError(f"{where}: not the configuration of a {NAME} run")
        missing = [k for k in ("games", "episodes", "seed") if k not in data]
        if missing:
            raise ExperimentError(f"{where}: missing key {missing[0]!r}")
        steps = data.get("timesteps")
        try:
            plan = cls(
                games=tuple(str(g) for g in data["games"]),
                episodes=parse_number(
                    data["episodes"], "episodes", low=1, high=MAX_EPISODES, integer=True
                ),
                seed=parse_seed(data["seed"]),
                timesteps=None
                if steps is None
                else parse_number(steps, "timesteps", low=1, high=MAX_TIMESTEPS, integer=True),
                quick=data.get("quick") is True,
                reward_study=data.get("reward_study") is True,
                adversaries={str(k): str(v) for k, v in (data.get("adversaries") or {}).items()},
                variant_runs={str(k): str(v) for k, v in (data.get("variant_runs") or {}).items()},
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ExperimentError(f"{where}: {exc}") from None
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
        default=None,
        help="adversary training budget (default 1,000,000; 150,000 with --quick)",
    )
    p.add_argument(
        "--episodes",
        type=EPISODES,
        default=None,
        help="evaluation episodes per cell (default 200; 100 with --quick)",
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
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run with its own configuration (only --workers may change)",
    )
    add_run_options(p, workers=2)
    add_ray_option(p, "the adversaries' trainings (as the cells of a grid) and the evaluations")
    return p


def check(argv: list[str]) -> None:
    """What a run with ``argv`` would refuse, refused without running (``arena grid``
    checks its cells with it)."""
    args = parser().parse_args(argv)
    if args.resume:
        raise ExperimentError("--resume: a grid resumes its cells itself")
    _new_plan(args)
    check_output_dir(args.runs, "--runs")


def _new_plan(args: argparse.Namespace) -> Plan:
    names = ["toy_pass"] if args.quick else [g.strip() for g in args.games.split(",")]
    plan = Plan(
        games=tuple(names),
        episodes=args.episodes or (100 if args.quick else 200),
        seed=args.seed,
        timesteps=args.timesteps or (150_000 if args.quick else 1_000_000),
        quick=args.quick,
        reward_study=args.reward_study,
        adversaries=pairs(args.adversary, "--adversary", "GAME=SPEC"),
        variant_runs=pairs(args.variant_run, "--variant-run", "LABEL=DIR"),
    )
    plan.check()
    # keep only what the run uses: the study ignores --adversary, the tables
    # --variant-run, and a run whose adversaries are all given trains nothing
    if plan.reward_study:
        plan = dataclasses.replace(plan, adversaries={})
        trains = any(label not in plan.variant_runs for label in REWARD_VARIANTS)
    else:
        plan = dataclasses.replace(plan, variant_runs={})
        trains = any(name not in plan.adversaries for name in plan.games)
    if not trains:
        if args.timesteps:
            print(f"[{NAME}] --timesteps unused: this run trains no adversary", file=sys.stderr)
        plan = dataclasses.replace(plan, timesteps=None)
    return plan


def _resumed_plan(args: argparse.Namespace, run_dir: Path) -> Plan:
    defaults = vars(parser().parse_args([]))
    changed = [
        k
        for k, v in vars(args).items()
        if k not in ("resume", "workers", "ray") and v != defaults[k]
    ]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise ExperimentError(
            f"--resume keeps the run's own configuration: give only --workers or --ray with "
            f"it, not {flag}"
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


def _train(game: Game, out: Path, what: str, plan: Plan, config: Any) -> None:
    """Train ``what`` into ``out`` in place: from its last checkpoint when an earlier
    session left one; not again when it finished."""
    from arena.training import is_training_run, train_adversary

    assert plan.timesteps is not None  # the plan trains
    if (out / "results.json").is_file():
        print(f"[{NAME}] {what}: trained in an earlier session", file=sys.stderr)
        return
    resume = is_training_run(out)
    doing = "resuming" if resume else "training"
    print(f"[{NAME}] {what}: {doing} for {plan.timesteps:,} steps", file=sys.stderr)
    train_adversary(
        game.env_id,
        {game.victim_seat: game.victim},
        timesteps=plan.timesteps,
        out=out,
        seed=plan.seed,
        config=config,
        resume=resume,
    )


def _variant_dir(run_dir: Path, name: str, label: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    return run_dir / "adversaries" / f"{name}__{slug}"


def trainings(plan: Plan, run_dir: Path) -> list[tuple[str, Path, Any]]:
    """Every adversary the plan trains: (game, run directory, recipe)."""
    from arena.training import default_adversary_config

    out: list[tuple[str, Path, Any]] = []
    for name in plan.games:
        game = GAMES[name]
        base = default_adversary_config(game.env_id)
        if plan.reward_study:
            for label, extra in REWARD_VARIANTS.items():
                if label not in plan.variant_runs:
                    w: dict[str, Any] = {**NO_DENSE_TERMS, **extra}
                    std = w.pop("action_std", None)
                    config = dataclasses.replace(base, **w)
                    if std is not None:
                        ppo = dataclasses.replace(config.ppo, log_std_init=math.log(std))
                        config = dataclasses.replace(config, ppo=ppo)
                    out.append((name, _variant_dir(run_dir, name, label), config))
        elif name not in plan.adversaries:
            out.append((name, run_dir / "adversaries" / name, base))
    return out


def train_all(plan: Plan, run_dir: Path, ray: str | bool | None = None) -> None:
    """Train every adversary the plan needs, each in ``run_dir/adversaries/``: one
    after another here, or with ``ray`` as the cells of a grid on Ray."""
    todo = trainings(plan, run_dir)
    if ray:
        _train_on_ray(plan, run_dir, todo, ray)
        return
    for name, out, config in todo:
        _train(GAMES[name], out, f"{name}: {out.name}", plan, config)


def grid_cells(plan: Plan, todo: list[tuple[str, Path, Any]]) -> list[dict[str, Any]]:
    """The trainings as cells of ``arena train-adversary`` (its options and values)."""
    assert plan.timesteps is not None  # the plan trains
    cells = []
    for name, _out, config in todo:
        game = GAMES[name]
        cells.append(
            {
                "env_id": game.env_id,
                "victim": {game.victim_seat: game.victim},
                "timesteps": plan.timesteps,
                "seed": plan.seed,
                **{term: getattr(config, term) for term in NO_DENSE_TERMS},
                **(
                    {"action_std": math.exp(config.ppo.log_std_init)}
                    if config.ppo.log_std_init
                    else {}
                ),
            }
        )
    return cells


def _train_on_ray(
    plan: Plan, run_dir: Path, todo: list[tuple[str, Path, Any]], ray: str | bool
) -> None:
    """The trainings as the cells of a grid in ``run_dir/adversaries`` (the mechanism
    of ``arena grid --ray``): each cell the ``arena train-adversary`` of one adversary."""
    from arena.artifacts.grid import GridSpec
    from arena.grid.cells import GridDir
    from arena.grid.driver import execute, plan_cells

    cells = grid_cells(plan, todo)
    cpus = max(1, max((c.workers for _, _, c in todo), default=1))
    spec = GridSpec("train-adversary", {}, float(cpus), f"{NAME} adversaries", tuple(cells))
    grid = GridDir(run_dir / "adversaries")
    manifest = plan_cells(spec, grid, [out.name for _, out, _ in todo])
    summary = execute(manifest, grid, ray=ray)
    if summary["failed"]:
        failed = next(r for r in summary["results"] if r["state"] != "done")
        raise ExperimentError(
            f"training {failed['name']} failed: {failed.get('error', 'see its log')} "
            f"(--resume {run_dir} continues)"
        )


def _seats(game: Game, victim: str, opponent: str) -> dict[str, str]:
    return {game.victim_seat: victim, game.adversary_seat: opponent}


def evaluate(
    game: Game, victim: str, opponent: str, episodes: int, seed: int, pool: Pool
) -> SeatResult:
    from arena.match import run_match

    policies = _seats(game, victim, opponent)
    # zoo agents were trained and evaluated with sampled actions; our PPO policies act
    # greedily (their Gaussian's mean)
    result, _ = run_match(
        game.env_id,
        policies,
        n_episodes=episodes,
        seed=seed,
        pool=pool,
        deterministic=acting(policies),
    )
    return result.seats[game.victim_seat]


def _sample(game: Game, victim: str, opponent: str, seed: int, label: str) -> SampleRecipe:
    """One episode of a matchup, played as ``evaluate`` scored it."""
    policies = _seats(game, victim, opponent)
    return SampleRecipe(
        env=game.env_id, policies=policies, seed=seed, deterministic=acting(policies), label=label
    )


@dataclass(frozen=True)
class Curve:
    timesteps: list[int]
    win_rate: list[float]
    ci95: list[tuple[float, float]] | None
    """None for the rolling training rate (no interval)."""

    @property
    def greedy(self) -> bool:
        return self.ci95 is not None


def _curve(run_dir: Path, until: int | None = None) -> Curve:
    """The adversary's win rate over training: its greedy evaluations
    (``evaluation.csv``, with intervals) where the run made them, else the rolling
    rate of training (``progress.csv``), which understates a greedy adversary. With
    ``until``, the points after that many steps are left out."""

    def within(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [r for r in rows if until is None or int(r["timesteps"]) <= until]

    evaluation = run_dir / "evaluation.csv"
    if evaluation.is_file():
        with open(evaluation) as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("win_rate") not in (None, "", "nan")]
        if rows:
            rows = within(rows)
            return Curve(
                [int(r["timesteps"]) for r in rows],
                [float(r["win_rate"]) for r in rows],
                [(float(r["win_low"]), float(r["win_high"])) for r in rows],
            )
    with open(run_dir / "progress.csv") as fh:
        rows = within([r for r in csv.DictReader(fh) if r["win_rate"] != "nan"])
    return Curve([int(r["timesteps"]) for r in rows], [float(r["win_rate"]) for r in rows], None)


def plot_curves(curves: dict[str, Curve], out: Path, title: str) -> None:
    """One line per run, its 95% band where it has greedy evaluations; runs labelled
    ``VARIANT/SEED`` share a colour per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from arena.io import atomic_path

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    greedy = True
    for label, curve in curves.items():
        group = label.split("/")[0]
        colour = colours.setdefault(group, palette[len(colours) % len(palette)])
        style = "-" if label == group or label.endswith("/s0") else "--"
        ax.plot(curve.timesteps, curve.win_rate, style, color=colour, label=label, marker=".")
        if curve.ci95 is not None:
            low, high = zip(*curve.ci95, strict=True)
            ax.fill_between(curve.timesteps, low, high, color=colour, alpha=0.12)
        greedy = greedy and curve.greedy
    ax.set_xlabel("adversary training timesteps")
    ax.set_ylabel(
        "adversary win rate, greedy (95% CI)" if greedy else "adversary win rate (rolling)"
    )
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class Part:
    """What one game adds to the results."""

    tables: tuple[Table, ...]
    figures: tuple[Figure, ...]
    samples: tuple[SampleRecipe, ...]
    against: dict[str, dict[str, SeatResult]] = field(default_factory=dict)
    """Opponent -> victim kind -> the victim's score (not in a reward study)."""


def _study(plan: Plan, name: str, run_dir: Path, into: Path, pool: Pool) -> Part:
    """The reward study of one game: learning curves, and the victim vs each final
    adversary. Plots go to ``into``."""
    game = GAMES[name]
    dirs = {
        label: _variant_dir(run_dir, name, label)
        for label in REWARD_VARIANTS
        if label not in plan.variant_runs
    }
    dirs.update({label: Path(d) for label, d in plan.variant_runs.items()})
    curves = {label: _curve(d) for label, d in dirs.items()}
    title = f"{game.env_id}: reward variants at equal budget"
    plot_curves(curves, into / f"{name}_reward_study.png", title)
    variants, samples = {}, []
    for label, d in dirs.items():
        curve = curves[label]
        # the final adversary against the victim, greedy, as in the tables
        final = evaluate(game, game.victim, f"run:{d}", plan.episodes, plan.seed, pool)
        variants[label] = Variant(
            str(d),
            tuple(map(float, curve.timesteps)),
            tuple(curve.win_rate),
            final,
            tuple(curve.ci95) if curve.ci95 is not None else None,
            curve.greedy,
        )
        what = f"victim vs the final '{label}' adversary"
        samples.append(_sample(game, game.victim, f"run:{d}", plan.seed, what))
    tables, figures = variant_comparison(name, variants)
    return Part(tables, figures, tuple(samples))


OPPONENTS = ("adversary", "normal opponent", "random", "zero")
VICTIMS = ("normal", "masked")


def _scores(plan: Plan, name: str, run_dir: Path, into: Path, pool: Pool) -> Part:
    """The normal and the masked victim of one game against each opponent."""
    game = GAMES[name]
    adversary = plan.adversaries.get(name, f"run:{run_dir / 'adversaries' / name}")
    opponents = dict(zip(OPPONENTS, (adversary, game.opponent, "random", "zero"), strict=True))
    against: dict[str, dict[str, SeatResult]] = {opp: {} for opp in OPPONENTS}
    scores = {}
    for kind, victim in zip(VICTIMS, (game.victim, f"masked:{game.victim}"), strict=True):
        for opp, spec in opponents.items():
            r = evaluate(game, victim, spec, plan.episodes, plan.seed, pool)
            scores[f"{kind} victim vs {opp}"] = against[opp][kind] = r
    trained = Path(adversary.partition(":")[2]) if adversary.startswith("run:") else None
    if trained is not None and (trained / "progress.csv").is_file():
        title = f"{game.env_id}: adversary win rate over training"
        plot_curves({"adversary": _curve(trained)}, into / f"{name}_training.png", title)
    return Part(
        (opponent_table(game.env_id, scores, victim=game.victim, adversary=adversary),),
        (win_rate_bars(f"Victim win rates on {game.env_id}", scores),),
        (_sample(game, game.victim, adversary, plan.seed, "normal victim vs adversary"),),
        against,
    )


def _headline(parts: dict[str, Part]) -> Table:
    """The finding: each game's normal victim against the adversary beside the
    baselines, with the masked victim (blind to the adversary's moves) beside it."""
    rows: list[tuple[Cell, ...]] = []
    for name, part in parts.items():
        for opp, by_kind in part.against.items():
            rates = (Score.of(by_kind[k].win_rate, by_kind[k].win_rate_ci95) for k in VICTIMS)
            rows.append((GAMES[name].env_id, opp, *rates))
    return Table(
        "Victim win rate against the adversary and the baselines",
        ("game", "victim vs", *(f"{k} victim win rate [95% CI]" for k in VICTIMS)),
        tuple(rows),
        highlight=tuple(i for i, row in enumerate(rows) if row[1] == "adversary"),
        caption="the masked victim sees its opponent frozen as at the episode's start",
    )


def measure(plan: Plan, run_dir: Path, into: Path, pool: Pool) -> RunResults:
    """Score every game of the plan (its adversaries trained in ``run_dir``); write the
    plots and, last, ``results.json`` into ``into``."""
    from arena.io import write_json_atomic

    score = _study if plan.reward_study else _scores
    parts = {name: score(plan, name, run_dir, into, pool) for name in plan.games}
    tables = [t for part in parts.values() for t in part.tables]
    headline = tables.pop(0) if plan.reward_study else _headline(parts)
    extra: dict[str, Any] = {} if plan.timesteps is None else {"timesteps": plan.timesteps}
    results = RunResults(
        kind=NAME,
        title=f"adversarial policies against frozen victims: {', '.join(plan.games)}",
        headline=headline,
        tables=tuple(tables),
        figures=tuple(f for part in parts.values() for f in part.figures),
        samples=tuple(s for part in parts.values() for s in part.samples),
        extra={**extra, "episodes": plan.episodes},
    )
    write_json_atomic(into / "results.json", results.to_json())
    return results


def run(argv: list[str] | None = None) -> tuple[RunResults, Path]:
    """Run the experiment: its results and its run directory."""
    from arena.io import write_json_atomic
    from arena.rundir import new_run_dir, run_metadata, run_name

    args = parser().parse_args(argv)
    plan = _resumed_plan(args, Path(args.resume)) if args.resume else _new_plan(args)
    if not args.resume:
        check_output_dir(args.runs, "--runs")
    pool = pool_for(args.workers, args.ray)  # Ray joined once the flags are known good
    if args.resume:
        run_dir = Path(args.resume)
    else:
        if plan.timesteps is None:  # nothing to train: the directory appears whole
            with new_run_dir(args.runs, NAME, "+".join(plan.games), plan.seed) as (tmp, final):
                write_json_atomic(tmp / "config.json", plan.to_json())
                write_json_atomic(tmp / "metadata.json", run_metadata())
                results = measure(plan, final, tmp, pool)
            return results, final
        run_dir = Path(args.runs) / NAME / run_name("+".join(plan.games), plan.seed)
        run_dir.mkdir(parents=True)
        write_json_atomic(run_dir / "config.json", plan.to_json())
        write_json_atomic(run_dir / "metadata.json", run_metadata())
        print(f"[{NAME}] run directory {run_dir} (if stopped: --resume {run_dir})", file=sys.stderr)
    train_all(plan, run_dir, args.ray)
    return measure(plan, run_dir, run_dir, pool), run_dir


def _text(cell: Cell) -> str:
    if isinstance(cell, Score):
        ci = f" [{cell.ci95[0]:.2f}, {cell.ci95[1]:.2f}]" if cell.ci95 is not None else ""
        return f"{cell.value:.2f}{ci}"
    return "–" if cell is None else f"{cell:.3g}" if isinstance(cell, float) else str(cell)


def format_report(results: RunResults, run_dir: Path) -> str:
    """Every table of the results as text, the headline first."""
    lines = []
    for table in (results.headline, *results.tables):
        if table is None:
            continue
        cells = [table.columns, *(tuple(_text(c) for c in row) for row in table.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
        lines += [table.title, *([table.caption] if table.caption else [])]
        for row in cells:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        lines.append("")
    lines.append(f"run directory: {run_dir}")
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    print(format_report(*run(argv)))
    return 0


if __name__ == "__main__":  # as `arena run` runs it: its errors are one line, exit 2
    from arena.cli import run_guarded

    sys.exit(run_guarded(lambda: main(sys.argv[1:])))
