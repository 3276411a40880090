"""The ``arena`` command.

Every user error (unknown env, seat, policy or attack, missing or corrupted file,
bad number) prints one line ``arena: error: ...`` naming the valid choices and exits
with status 2. Nothing half-written is left behind: outputs are written atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from arena.errors import (
    MAX_ENVS,
    MAX_EPISODES,
    MAX_TIMESTEPS,
    USER_ERRORS,
    ArgumentParser,
    UsageError,
    check_output_dir,
    float_arg,
    int_arg,
    max_workers,
    seed_arg,
    workers_arg,
)

MAX_FPS = 1000.0


def _version() -> str:
    try:
        return importlib_metadata.version("adversarial-arena")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def _seat_pairs(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        seat, eq, spec = item.partition("=")
        if not eq or not seat or not spec:
            raise UsageError(f"{flag} expects SEAT=SPEC, got {item!r}")
        if seat in out:
            raise UsageError(f"{flag} given twice for seat {seat!r}")
        out[seat] = spec
    return out


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, disable=None, leave=False)


# ---------------------------------------------------------------- commands


def cmd_envs(args: argparse.Namespace) -> int:
    import envs

    specs = envs.list_specs()
    if args.json:
        rows = [
            {
                "id": s.id,
                "seats": list(s.seats),
                "needs": list(s.needs),
                "nondeterministic": s.nondeterministic,
                "max_episode_steps": s.max_episode_steps,
                "default_policies": dict(s.default_policies),
            }
            for s in specs
        ]
        print(json.dumps(rows))
        return 0
    width = max(len(s.id) for s in specs)
    for s in specs:
        needs = f" [needs {', '.join(s.needs)}]" if s.needs else ""
        print(f"{s.id:<{width}}  seats: {', '.join(s.seats)}{needs}")
    return 0


def _format_table(result: Any) -> str:
    lines = [
        f"{result.env}: {result.episodes} episodes, seed {result.seed}, "
        f"mean length {sum(result.lengths) / len(result.lengths):.1f}"
    ]
    header = f"{'seat':<12} {'W':>5} {'L':>5} {'T':>5}  {'win rate [95% CI]':<24} {'return':>16}"
    lines.append(header)
    for seat, r in result.seats.items():
        ci = f"{r.win_rate:.2f} [{r.win_rate_ci95[0]:.2f}, {r.win_rate_ci95[1]:.2f}]"
        ret = f"{r.mean_return:.2f} ± {r.std_return:.2f}"
        lines.append(f"{seat:<12} {r.wins:>5} {r.losses:>5} {r.ties:>5}  {ci:<24} {ret:>16}")
        if r.attack:
            extra = f"  attack {r.attack}: {r.budget}; action-flip rate {r.flip_rate:.3f}"
            if r.attacked_fraction is not None and r.attacked_fraction < 1.0:
                extra += f", attacked {r.attacked_fraction:.1%} of steps"
            lines.append(extra)
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from agents import specs as policy_specs
    from agents.attacks import parse_attack
    from arena.io import write_json_atomic
    from arena.match import check_seats, run_match
    from arena.recording import write_record
    from arena.rundir import new_run_dir, run_metadata

    policies = _seat_pairs(args.policy, "--policy")
    attacks = _seat_pairs(args.attack, "--attack")
    filled = check_seats(args.env_id, policies, attacks)
    refs = {seat: policy_specs.reference(str(spec)).to_json() for seat, spec in filled.items()}
    if args.record:
        record = check_output_dir(args.record, "--record")
        if record.is_dir() and any(record.iterdir()):
            raise UsageError(f"--record {record}: the directory exists and is not empty")
    if not args.no_save:
        check_output_dir(args.runs, "--runs")
    for a in attacks.values():
        parse_attack(a)
    config = {
        "env": args.env_id,
        "env_kwargs": {},
        "policies": refs,
        "attacks": attacks,
        "episodes": args.episodes,
        "seed": args.seed,
        "workers": args.workers,
        "deterministic": not args.stochastic,
    }
    bar = _progress(args.episodes, f"evaluate {args.env_id}")
    try:
        result, records = run_match(
            args.env_id,
            filled,
            n_episodes=args.episodes,
            seed=args.seed,
            attacks=attacks,
            workers=args.workers,
            deterministic=not args.stochastic,
            record=bool(args.record),
            on_progress=bar.update,
        )
    finally:
        bar.close()
    payload = result.to_json()
    if args.record:
        write_record(args.record, {**config, "seats": list(result.seats)}, records)
        print(f"recorded {len(records)} episodes to {args.record}", file=sys.stderr)
    if not args.no_save:
        with new_run_dir(args.runs, "evaluate", args.env_id, args.seed) as (tmp, final):
            record_dir = str(Path(args.record).resolve()) if args.record else None
            write_json_atomic(tmp / "config.json", {**config, "record": record_dir})
            write_json_atomic(tmp / "metadata.json", run_metadata())
            write_json_atomic(tmp / "results.json", payload)
        print(f"run saved to {final}", file=sys.stderr)
    if args.json:
        slim = {k: payload[k] for k in ("env", "episodes", "seed", "seats")}
        print(json.dumps(slim, sort_keys=True))
    else:
        print(_format_table(result))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from arena.recording import read_episode, read_manifest
    from arena.replay import resimulate

    if args.video:
        return _replay_video(args)
    for flag, given in (("--fps", args.fps is not None), ("--no-verify", args.no_verify)):
        if given:
            raise UsageError(f"{flag} applies only with --video OUT.mp4|OUT.gif")
    manifest = read_manifest(args.path)
    n = len(manifest["episodes"])
    positions = [args.episode] if args.episode is not None else list(range(n))
    for p in positions:
        if not 0 <= p < n:
            raise UsageError(f"--episode {p} is out of range; this record has episodes 0..{n - 1}")
    ok = True
    for p in positions:
        record = read_episode(args.path, p)
        returns = ", ".join(f"{s} {float(r.sum()):+.2f}" for s, r in record.rewards.items())
        if not args.verify:
            print(f"episode {record.index}: {record.length} steps; returns {returns}")
            continue
        check = resimulate(manifest, record)
        if check.match:
            print(
                f"episode {record.index}: {record.length} steps; returns {returns}; "
                "verified: every observation and reward matches exactly (actions, attacks "
                "and the manifest re-derived)"
            )
            for note in check.notes:
                print(f"  note: {note}")
        else:
            ok = False
            print(
                f"episode {record.index}: MISMATCH at step {check.first_mismatch}: {check.detail}"
            )
    if not ok:
        print("arena: error: re-simulation diverged from the record", file=sys.stderr)
        return 1
    return 0


def _replay_video(args: argparse.Namespace) -> int:
    from arena.video import check_video_path, episode_video

    check_video_path(args.video)
    episode = 0 if args.episode is None else args.episode
    video = episode_video(
        args.path, args.video, episode=episode, fps=args.fps, verify=not args.no_verify
    )
    check = "verified: the re-simulation matches the record" if video.verified else "not verified"
    print(
        f"episode {video.episode}: {video.steps} steps -> {video.path} ({video.frames} frames "
        f"at {video.fps:g} fps, {video.layout} layout, {video.seconds:.1f} s); {check}"
    )
    for note in video.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from arena.report import write_report

    page = write_report(args.run_dir, out=args.out, records=args.record or ())
    print(f"report written to {page}")
    return 0


def cmd_train_adversary(args: argparse.Namespace) -> int:
    from arena.training import default_adversary_config, train_adversary

    victims = _seat_pairs(args.victim, "--victim")
    check_output_dir(args.out, "--out")
    config = default_adversary_config(args.env_id, n_envs=args.envs, workers=args.workers)
    if args.shaping is not None:
        config = type(config)(**{**config.__dict__, "shaping": args.shaping})
    if args.victim_value is not None:
        config = type(config)(**{**config.__dict__, "victim_value": args.victim_value})
    if args.victim_divergence is not None:
        config = type(config)(**{**config.__dict__, "victim_divergence": args.victim_divergence})
    results = train_adversary(
        args.env_id,
        victims,
        timesteps=args.timesteps,
        out=args.out,
        seed=args.seed,
        config=config,
        resume=args.resume,
    )
    print(json.dumps(results, sort_keys=True))
    print(f"the adversary loads as run:{args.out}", file=sys.stderr)
    return 0


def cmd_finetune_victim(args: argparse.Namespace) -> int:
    import envs
    from arena.training import default_adversary_config, train_adversary

    victim = _seat_pairs(args.victim, "--victim")
    check_output_dir(args.out, "--out")
    if len(victim) != 1:
        raise UsageError("--victim SEAT=SPEC: give exactly one victim")
    ((seat, spec),) = victim.items()
    game = envs.spec(args.env_id)
    game.check_seat(seat)
    others = [s for s in game.seats if s != seat]
    if len(others) != 1:
        raise UsageError(f"fine-tuning needs a two-seat game; {args.env_id} has {game.seats}")
    opponent = args.opponent or game.default_policies.get(others[0])
    if opponent is None:
        raise UsageError(f"--opponent SPEC is needed: {args.env_id} has no default {others[0]}")
    share = args.adversary_share
    mix = f"mix:{share}*{args.adversary}|{1 - share}*{opponent}"
    config = default_adversary_config(args.env_id, n_envs=args.envs, workers=args.workers)
    results = train_adversary(
        args.env_id,
        {others[0]: mix},
        timesteps=args.timesteps,
        out=args.out,
        seed=args.seed,
        config=config,
        resume=args.resume,
        adversary_seat=seat,
        init=spec,
    )
    print(json.dumps(results, sort_keys=True))
    print(f"the fine-tuned victim loads as run:{args.out}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from arena.demo import run_demo

    check_output_dir(args.out, "--out")
    return run_demo(
        out=Path(args.out),
        retrain=not args.shipped,
        workers=args.workers,
        episodes=args.episodes,
        seed=args.seed,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from experiments import run_experiment

    return run_experiment(args.name, args.rest)


# ---------------------------------------------------------------- parser


EPISODES = int_arg("episodes", low=1, high=MAX_EPISODES)
TIMESTEPS = int_arg("timesteps", low=1, high=MAX_TIMESTEPS)
ENVS = int_arg("envs", low=1, high=MAX_ENVS)
SEED = seed_arg()
WORKERS = workers_arg()
TRAIN_WORKERS = workers_arg(low=0)
MAX_WEIGHT = 1e6
"""The largest initial weight of a dense reward term."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="arena",
        description="Adversarial RL arena: attack, score, record and "
        "replay reinforcement-learning victims.",
    )
    parser.add_argument("--version", action="version", version=f"arena {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    p = sub.add_parser("envs", help="list the games")
    p.add_argument("--json", action="store_true", help="one JSON list: id, seats, needs")
    p.set_defaults(func=cmd_envs)

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
    p.add_argument("--seed", type=SEED, default=0, help="one seed gives one result, bit for bit")
    p.add_argument(
        "--workers", type=WORKERS, default=1, help=f"worker processes (1 to {max_workers()})"
    )
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: greedy)")
    p.add_argument("--record", metavar="DIR", help="write episode records to DIR (new)")
    p.add_argument("--runs", default="runs", help="root of run directories (default: runs)")
    p.add_argument("--no-save", action="store_true", help="write no run directory")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=cmd_evaluate)

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
    p.add_argument(
        "--fps",
        type=float_arg("fps", low=0.0, high=MAX_FPS, low_open=True),
        help="video frame rate (default: the game's)",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="with --video: render even if the re-simulation diverges",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("report", help="an HTML page of a run: config, results, plots, videos")
    p.add_argument("run_dir", help="a run directory (config.json / adversary_run.json ...)")
    p.add_argument("--out", help="where the page goes (a new directory; default RUN_DIR/report)")
    p.add_argument(
        "--record",
        action="append",
        metavar="DIR",
        help="also show a video of this record's first episode (repeatable)",
    )
    p.set_defaults(func=cmd_report)

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
        required=True,
        help=f"total env steps (1 to {MAX_TIMESTEPS:,})",
    )
    p.add_argument("--out", required=True, help="the run directory (new, or with --resume)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--envs", type=ENVS, help="parallel envs (default: the preset's)")
    p.add_argument(
        "--workers",
        type=TRAIN_WORKERS,
        help="processes simulating the games (default: 2 in the MuJoCo games, 0 = in-process)",
    )
    p.add_argument(
        "--shaping",
        type=float_arg("shaping", low=0.0, high=MAX_WEIGHT),
        help="initial weight of the game's dense shaping reward (c), annealed to 0 over "
        "half of training (default: 100 in the MuJoCo games, 0 in the toy games; 0: off)",
    )
    p.add_argument(
        "--victim-value",
        type=float_arg("victim-value", low=0.0, high=MAX_WEIGHT),
        help="initial weight of the reward (a) for lowering the victim's own value "
        "estimate (needs a value head), annealed (default: 200 in the MuJoCo games, else 0)",
    )
    p.add_argument(
        "--victim-divergence",
        type=float_arg("victim-divergence", low=0.0, high=MAX_WEIGHT),
        help="initial weight of the reward for pushing the victim's action distribution "
        "away from what it does when it cannot see the opponent move (W2), annealed",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.set_defaults(func=cmd_train_adversary)

    p = sub.add_parser(
        "finetune-victim", help="retrain a victim against a mix of an adversary and its opponent"
    )
    p.add_argument("env_id")
    p.add_argument(
        "--victim",
        action="append",
        required=True,
        metavar="SEAT=SPEC",
        help="the victim to fine-tune (sb3:PATH or run:DIR)",
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
    p.add_argument("--timesteps", type=TIMESTEPS, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--envs", type=ENVS)
    p.add_argument(
        "--workers", type=TRAIN_WORKERS, help="processes simulating the games (0: in-process)"
    )
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_finetune_victim)

    p = sub.add_parser("demo", help="train, evaluate, record and replay on the toy games")
    p.add_argument("--out", default="runs/demo", help="where the demo writes (default runs/demo)")
    p.add_argument(
        "--shipped",
        action="store_true",
        help="load the victims shipped in arena/assets instead of training them",
    )
    p.add_argument("--episodes", type=EPISODES, default=50, help="episodes per table row")
    p.add_argument("--seed", type=SEED, default=0, help="seed of training and evaluation")
    p.add_argument("--workers", type=WORKERS, default=2, help="worker processes")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run an experiment from experiments/ (e.g. `arena run list`)")
    p.add_argument("name", help="experiment name; `list` lists them")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the experiment's own arguments")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import torch

    torch.set_num_threads(1)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        lines = str(exc).strip().splitlines()
        print(f"arena: error: {lines[0] if lines else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arena: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
