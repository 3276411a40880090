"""The ``arena`` subcommands and their flags; each names the function that runs it."""

from __future__ import annotations

import argparse

from arena.cli import grid, play, records, run, train, victims
from arena.cli.options import (
    ENVS,
    EPISODES,
    FPS,
    SEED,
    TIMESTEPS,
    TRAIN_WORKERS,
    WORKERS,
    add_ray_option,
    add_run_options,
    version,
    weight,
)
from arena.errors import (
    MAX_EPISODES,
    MAX_TIMESTEPS,
    ArgumentParser,
    float_arg,
    int_arg,
    max_workers,
)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="arena",
        description="Adversarial RL arena: attack, score, record and "
        "replay reinforcement-learning victims.",
    )
    parser.add_argument("--version", action="version", version=f"arena {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    _envs(sub)
    _evaluate(sub)
    _replay(sub)
    _report(sub)
    _train_adversary(sub)
    _finetune_victim(sub)
    _train_perturber(sub)
    _demo(sub)
    _victims(sub)
    _run(sub)
    _grid(sub)
    _scorecard(sub)
    return parser


Subparsers = argparse._SubParsersAction  # the object `add_subparsers` returns


def _envs(sub: Subparsers) -> None:
    p = sub.add_parser("envs", help="list the games")
    p.add_argument("--json", action="store_true", help="one JSON list: id, seats, needs")
    p.set_defaults(func=play.cmd_envs)


def _evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="play episodes and score every seat")
    p.add_argument("env_id", help="a game id (see `arena envs`)")
    p.add_argument(
        "--policy",
        action="append",
        metavar="SEAT=SPEC",
        help="policy for a seat: random, zero, sb3:PATH, zoo:PATH, atari:PATH, run:DIR",
    )
    p.add_argument(
        "--attack",
        action="append",
        metavar="SEAT=SPEC",
        help="observation attack on a seat's policy, e.g. player=fgsm:eps=1/255",
    )
    p.add_argument(
        "--episodes",
        type=EPISODES,
        required=True,
        help=f"number of episodes (1 to {MAX_EPISODES:,})",
    )
    add_run_options(p, workers=1)
    add_ray_option(p, "the chunks of episodes (the result is the same, bit for bit)")
    p.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="SEAT",
        help="SEAT samples its actions (default: zoo policies sample, the others act greedily)",
    )
    p.add_argument(
        "--greedy", action="append", default=[], metavar="SEAT", help="SEAT acts greedily"
    )
    p.add_argument("--stochastic", action="store_true", help="every seat samples its actions")
    p.add_argument("--record", metavar="DIR", help="write episode records to DIR (new)")
    p.add_argument("--no-save", action="store_true", help="write no run directory")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=play.cmd_evaluate)


def _replay(sub: Subparsers) -> None:
    p = sub.add_parser("replay", help="list or re-simulate a recorded match")
    p.add_argument("path", help="a record directory (with manifest.json)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="re-simulate from seed and actions; check every observation",
    )
    p.add_argument(
        "--episode",
        type=int_arg("episode", low=None, high=None),  # the record knows its range
        help="only this episode (0-based position)",
    )
    p.add_argument(
        "--video",
        metavar="OUT",
        help="render one episode (--episode, default 0) to OUT.mp4 or OUT.gif; "
        "re-simulates and refuses if it diverges from the record",
    )
    p.add_argument("--fps", type=FPS, help="video frame rate (default: the game's)")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="with --video: render even if the re-simulation diverges",
    )
    p.set_defaults(func=records.cmd_replay)


def _report(sub: Subparsers) -> None:
    p = sub.add_parser("report", help="an HTML page of a run: config, results, plots, videos")
    p.add_argument("run_dir", help="a run directory (config.json / adversary_run.json ...)")
    p.add_argument("--out", help="where the page goes (a new directory; default RUN_DIR/report)")
    p.add_argument(
        "--record",
        action="append",
        metavar="DIR",
        help="also show a video of this record's first episode (repeatable)",
    )
    p.set_defaults(func=records.cmd_report)


def _train_adversary(sub: Subparsers) -> None:
    p = sub.add_parser("train-adversary", help="train an adversary against a frozen victim")
    p.add_argument("env_id", help="a two-player game (see `arena envs`)")
    p.add_argument(
        "--victim",
        action="append",
        required=True,
        metavar="SEAT=SPEC",
        help="the frozen victim (every seat but the adversary's)",
    )
    p.add_argument(
        "--timesteps",
        type=TIMESTEPS,
        help=f"total env steps (1 to {MAX_TIMESTEPS:,}); with --resume, default: the run's own",
    )
    p.add_argument("--out", required=True, help="the run directory (new, or with --resume)")
    p.add_argument(
        "--seed", type=SEED, help="default 0; with --resume, the run's own (another is refused)"
    )
    p.add_argument("--envs", type=ENVS, help="parallel envs (default: the preset's)")
    p.add_argument(
        "--workers",
        type=TRAIN_WORKERS,
        help="processes simulating the games (default: 2 in the MuJoCo games, 0 = in-process)",
    )
    p.add_argument(
        "--shaping",
        type=weight("shaping"),
        help="initial weight of the game's dense shaping reward (c), annealed to 0 over "
        "half of training (default: 100 in the MuJoCo games, 0 in the toy games; 0: off)",
    )
    p.add_argument(
        "--victim-value",
        type=weight("victim-value"),
        help="initial weight of the reward (a) for lowering the victim's own value "
        "estimate (needs a value head), annealed (default: 200 in the MuJoCo games, else 0)",
    )
    p.add_argument(
        "--victim-divergence",
        type=weight("victim-divergence"),
        help="initial weight of the reward for pushing the victim's action distribution "
        "away from what it does when it cannot see the opponent move (W2), annealed",
    )
    p.add_argument(
        "--victim-reward",
        type=weight("victim-reward"),
        help="initial weight of minus the victim's own dense reward per step (Guo et al.'s "
        "zero-sum term), annealed",
    )
    p.add_argument(
        "--victim-novelty",
        type=weight("victim-novelty"),
        help="initial weight of the novelty of the victim's observations (random network "
        "distillation; IMAP's state coverage), annealed",
    )
    p.add_argument(
        "--victim-fall",
        type=weight("victim-fall"),
        help="initial weight of lowering the victim's torso (potential-based; the MuJoCo "
        "games), annealed",
    )
    p.add_argument(
        "--anneal",
        type=float_arg("anneal", low=0.0, high=1.0),
        metavar="F",
        help="the dense reward terms fall linearly to 0 over this fraction of the training "
        "(default 0.5; 0: never annealed, they stay at their weight)",
    )
    p.add_argument(
        "--action-std",
        type=float_arg("action-std", low=1e-3, high=5.0),
        metavar="S",
        help="initial spread of the adversary's Gaussian actions, in the game's control "
        "units (default 1, SB3's; the humanoids' controls span -0.4 to 0.4)",
    )
    p.add_argument(
        "--ppo",
        action="append",
        metavar="KEY=VALUE",
        help="a PPO setting of the recipe, e.g. n_epochs=10 or batch_size=2048 (keys: "
        "n_epochs, batch_size, learning_rate, ent_coef, gamma, clip_range, gae_lambda, "
        "vf_coef, max_grad_norm, target_kl)",
    )
    p.add_argument(
        "--white-box",
        action="store_true",
        default=None,
        help="the adversary also observes its victim's greedy action and value (a copy of "
        "the victim's network run on the victim's observation); it plays only where the "
        "victim's observation is at hand (arena evaluate, run:DIR)",
    )
    p.add_argument(
        "--flat-win",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every win pays the game's goal reward (1000): drop the bonuses some games "
        "add to some wins (the keeper's +500 for touching the ball, +500 for standing) "
        "or take from them (the blocker's 0 for a win on time). Default: on in the MuJoCo "
        "games; --no-flat-win keeps the games' own win rewards",
    )
    p.add_argument(
        "--eval-every",
        type=TIMESTEPS,
        metavar="N",
        help="evaluate the adversary (greedy) against the victim every N steps, into "
        "evaluation.csv (default: never)",
    )
    p.add_argument(
        "--eval-episodes",
        type=int_arg("eval-episodes", low=1, high=MAX_EPISODES),
        metavar="N",
        help="episodes per evaluation (default 50)",
    )
    _checkpoint_every(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint, with the run's own recipe (--workers, "
        "--eval-every, --eval-episodes and --checkpoint-every may change)",
    )
    p.set_defaults(func=train.cmd_train_adversary)


def _checkpoint_every(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint-every",
        type=TIMESTEPS,
        metavar="N",
        help="steps between checkpoints: a stopped run loses at most this many (default 50,000)",
    )


def _train_perturber(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train-perturber",
        help="train a learned perturbation adversary (PA-AD) against a victim: learned:DIR",
    )
    p.add_argument("env_id", help="a game id (see `arena envs`)")
    p.add_argument(
        "--victim",
        action="append",
        required=True,
        metavar="SEAT=SPEC",
        help="the victim whose observations are perturbed",
    )
    p.add_argument(
        "--opponent",
        action="append",
        default=[],
        metavar="SEAT=SPEC",
        help="the victim's opponent in a two-player game (default: the game's)",
    )
    p.add_argument(
        "--eps",
        type=float_arg("eps", low=0.0, high=1.0),
        required=True,
        help="the budget, as the attacks take it (pixels: k/255; state "
        "vectors: standard deviations of each dimension)",
    )
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument(
        "--steps",
        type=int_arg("steps", low=1, high=1000),
        default=10,
        help="PGD steps of the actor per victim step (default 10)",
    )
    p.add_argument(
        "--timesteps",
        type=TIMESTEPS,
        default=None,
        help="the budget (a new run needs it; --resume trains on to the run's own)",
    )
    p.add_argument("--out", required=True, help="the run directory (new, or with --resume)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--envs", type=ENVS, default=8, help="parallel envs (default 8)")
    p.add_argument("--resume", action="store_true", help="continue a stopped run")
    p.set_defaults(func=train.cmd_train_perturber)


def _finetune_victim(sub: Subparsers) -> None:
    p = sub.add_parser(
        "finetune-victim", help="retrain a victim against a mix of an adversary and its opponent"
    )
    p.add_argument("env_id")
    p.add_argument(
        "--victim",
        action="append",
        required=True,
        metavar="SEAT=SPEC",
        help="the victim to fine-tune (zoo:PATH, MLP or LSTM; sb3:PATH; run:DIR)",
    )
    p.add_argument("--adversary", required=True, metavar="SPEC", help="e.g. run:DIR")
    p.add_argument(
        "--opponent", metavar="SPEC", help="its normal opponent (default: the game's default)"
    )
    p.add_argument(
        "--adversary-share",
        type=float_arg("adversary-share", low=0.0, high=1.0),
        default=0.5,
        help="fraction of episodes against the adversary (default 0.5)",
    )
    p.add_argument(
        "--timesteps", type=TIMESTEPS, help="total env steps; with --resume, default: the run's own"
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--seed", type=SEED, help="default 0; with --resume, the run's own (another is refused)"
    )
    p.add_argument("--envs", type=ENVS)
    p.add_argument(
        "--workers", type=TRAIN_WORKERS, help="processes simulating the games (0: in-process)"
    )
    _checkpoint_every(p)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=train.cmd_finetune_victim)


def _victims(sub: Subparsers) -> None:
    p = sub.add_parser("victims", help="the standard victims: source, licence, sha256, present?")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=victims.cmd_victims)
    p = sub.add_parser("fetch", help="download standard victims (checked by sha256) into the cache")
    p.add_argument(
        "names", nargs="+", metavar="NAME", help="a victim (see `arena victims`), zoo, atari or all"
    )
    p.add_argument("--dir", help="the cache directory (default: $ARENA_HOME or ~/.cache/arena)")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=victims.cmd_fetch)


def _demo(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="train, evaluate, record and replay on the toy games")
    p.add_argument("--out", default="runs/demo", help="where the demo writes (default runs/demo)")
    p.add_argument(
        "--shipped",
        action="store_true",
        help="load the victims shipped in arena/assets instead of training them",
    )
    p.add_argument("--episodes", type=EPISODES, default=50, help="episodes per table row")
    p.add_argument("--seed", type=SEED, default=0, help="seed of training and evaluation")
    p.add_argument(
        "--workers", type=WORKERS, default=2, help=f"worker processes (1 to {max_workers()})"
    )
    p.set_defaults(func=run.cmd_demo)


def _run(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run an experiment (`arena run list` lists them)")
    p.add_argument("name", help="experiment name; `list` lists them")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the experiment's own arguments")
    p.set_defaults(func=run.cmd_run)


def _grid(sub: Subparsers) -> None:
    p = sub.add_parser(
        "grid", help="run one command over a grid of option values (a TOML file), or on Ray"
    )
    p.add_argument("grid_file", help="the grid: a command and its options' values (TOML)")
    p.add_argument("--out", required=True, help="the grid directory (new, or with --resume)")
    add_ray_option(p, "the cells as Ray Tune trials")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the grid in --out: finished cells are kept, the others run again "
        "(a training from its last checkpoint)",
    )
    p.add_argument(
        "--parallel",
        type=WORKERS,
        help="cells at a time on this machine (default: CPUs over the grid's cpus per cell)",
    )
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=grid.cmd_grid)


def _scorecard(sub: Subparsers) -> None:
    p = sub.add_parser(
        "scorecard", help="a victim's robustness verdict across the attack families and budgets"
    )
    p.add_argument("env_id", nargs="?", help="a game (see `arena envs`)")
    p.add_argument("--victim", metavar="SEAT=SPEC", help="the victim and its seat")
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="DIR",
        help="rank the scorecards in these directories instead (one game and ε grid)",
    )
    p.add_argument(
        "--opponent", action="append", metavar="SEAT=SPEC", help="the other seats' policies"
    )
    p.add_argument("--budget", choices=("quick", "full"), default="quick", help="the ε grid")
    p.add_argument(
        "--families", metavar="LIST", help="comma-separated attack families (default: all)"
    )
    p.add_argument(
        "--learned",
        metavar="DIR",
        help="a train-perturber run against this victim: the learned adversary as one more family",
    )
    p.add_argument("--episodes", type=EPISODES, default=3, help="episodes per family and ε")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", help="the scorecard's directory (default: runs/scorecard/...)")
    add_ray_option(p, "the games as grid cells")
    p.add_argument("--json", action="store_true", help="last line of stdout: scorecard.json")
    p.set_defaults(func=records.cmd_scorecard)
