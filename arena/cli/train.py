"""``arena train-adversary`` and ``arena finetune-victim``: PPO against frozen
policies, into a run directory that ``--resume`` continues."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from arena.cli.options import pairs
from arena.errors import UsageError, check_output_dir

REWARD_TERMS = (
    "shaping",
    "victim_value",
    "victim_divergence",
    "victim_reward",
    "victim_novelty",
    "victim_fall",
)
"""The dense reward terms whose initial weight a flag of the same name sets."""
RECIPE_OPTIONS = ("envs", "white_box", "flat_win", "action_std", "anneal", "ppo", *REWARD_TERMS)
"""``train-adversary``'s options that make a run's recipe: ``--resume`` refuses them (the
run keeps its own), and a grid resuming a cell drops them."""


def runtime(args: argparse.Namespace, recipe: dict[str, object]) -> dict[str, object]:
    """The runtime fields the flags set (``--workers``, ``--eval-every``...); with
    ``--resume``, any flag of ``recipe`` given is an error: a run keeps its recipe."""
    from arena.training import runtime_flags

    if args.resume:
        given = [flag for flag, value in recipe.items() if value is not None]
        if given:
            raise UsageError(
                f"--resume continues the run with its own recipe; drop {given[0]} (only "
                f"--workers, --eval-every, --eval-episodes and --checkpoint-every may change)"
            )
    out: dict[str, object] = {}
    if args.workers is not None:
        out.update(runtime_flags(args.workers))
    for key in ("eval_every", "eval_episodes", "checkpoint_every"):
        if getattr(args, key, None) is not None:
            out[key] = getattr(args, key)
    return out


PPO_KEYS = ("n_epochs", "batch_size", "learning_rate", "ent_coef", "gamma")
"""``--ppo`` keys that are ``PPOConfig`` fields; the others go to its ``extra``."""


def ppo_settings(items: list[str] | None, ppo: Any) -> Any:
    """``ppo`` with the ``--ppo KEY=VALUE`` settings, each checked against the ranges a
    run file may hold; ``UsageError`` (one line, naming the valid keys) otherwise."""
    from agents.numbers import parse_number
    from arena.artifacts.training_config import PPO_EXTRA, RANGES

    valid = (*PPO_KEYS, *PPO_EXTRA)
    fields: dict[str, Any] = {}
    extra = dict(ppo.extra)
    for key, text in pairs(items, "--ppo", "KEY=VALUE").items():
        if key not in valid:
            raise UsageError(f"--ppo {key}=...: unknown PPO setting; valid: {', '.join(valid)}")
        low, high = RANGES[key] if key in RANGES else PPO_EXTRA[key]
        integer = key in ("n_epochs", "batch_size")
        try:
            value = parse_number(text, f"--ppo {key}", low=low, high=high, integer=integer)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if key in PPO_KEYS:
            fields[key] = value
        else:
            extra[key] = value
    out = dataclasses.replace(ppo, **fields, extra=extra)
    batch = out.n_envs * out.n_steps
    if out.batch_size > batch:
        raise UsageError(
            f"--ppo batch_size={out.batch_size}: larger than a rollout ({out.n_envs} envs x "
            f"{out.n_steps} steps = {batch})"
        )
    return out


def cmd_train_adversary(args: argparse.Namespace) -> int:
    from arena.training import default_adversary_config, train_adversary

    victims = pairs(args.victim, "--victim")
    check_output_dir(args.out, "--out")
    weights = {t: getattr(args, t) for t in REWARD_TERMS if getattr(args, t) is not None}
    flags = {"--" + key.replace("_", "-"): getattr(args, key) for key in RECIPE_OPTIONS}
    changes = runtime(args, flags)
    config = default_adversary_config(args.env_id, n_envs=args.envs)
    config = dataclasses.replace(config, **weights)
    if args.white_box:
        config = dataclasses.replace(config, white_box=True)
    if args.flat_win is not None:
        config = dataclasses.replace(config, flat_win=args.flat_win)
    if args.anneal is not None:
        config = dataclasses.replace(config, anneal_fraction=args.anneal)
    if args.action_std is not None:
        ppo = dataclasses.replace(config.ppo, log_std_init=math.log(args.action_std))
        config = dataclasses.replace(config, ppo=ppo)
    if args.ppo:
        config = dataclasses.replace(config, ppo=ppo_settings(args.ppo, config.ppo))
    results = train_adversary(
        args.env_id,
        victims,
        timesteps=args.timesteps,
        out=args.out,
        seed=args.seed,
        config=config,
        resume=args.resume,
        runtime=changes,
    )
    print(json.dumps(results, sort_keys=True))
    print(f"the adversary loads as run:{args.out}", file=sys.stderr)
    from arena.artifacts.training_run import TrainingRunFiles

    files = TrainingRunFiles(Path(args.out))
    score = files.best_score()
    if score is not None:
        said = f"{score['win_rate']:.2f} at {score['timesteps']:,} steps"
        print(f"its best greedy evaluation ({said}) loads as run:{files.best}", file=sys.stderr)
    return 0


def finetune_seats(args: argparse.Namespace) -> tuple[str, str, str]:
    """``(victim seat, victim spec, the other seat)`` of ``finetune-victim``'s flags;
    ``UsageError`` unless one victim in a seat of a two-seat game."""
    import envs

    victim = pairs(args.victim, "--victim")
    if len(victim) != 1:
        raise UsageError("--victim SEAT=SPEC: give exactly one victim")
    ((seat, spec),) = victim.items()
    game = envs.spec(args.env_id)
    game.check_seat(seat)
    others = [s for s in game.seats if s != seat]
    if len(others) != 1:
        raise UsageError(f"fine-tuning needs a two-seat game; {args.env_id} has {game.seats}")
    return seat, spec, others[0]


def cmd_finetune_victim(args: argparse.Namespace) -> int:
    from arena.training import default_adversary_config, train_adversary

    check_output_dir(args.out, "--out")
    seat, spec, other = finetune_seats(args)
    opponent = args.opponent
    if opponent is None:
        from arena.match import MissingPolicy, check_seats

        try:
            opponent = str(check_seats(args.env_id, {}, learner=seat)[other])
        except MissingPolicy:
            raise UsageError(
                f"--opponent SPEC is needed: {args.env_id} has no default {other}"
            ) from None
    share = args.adversary_share
    mix = f"mix:{share}*{args.adversary}|{1 - share}*{opponent}"
    changes = runtime(args, {"--envs": args.envs})
    config = default_adversary_config(args.env_id, n_envs=args.envs)
    results = train_adversary(
        args.env_id,
        {other: mix},
        timesteps=args.timesteps,
        out=args.out,
        seed=args.seed,
        config=config,
        resume=args.resume,
        runtime=changes,
        adversary_seat=seat,
        init=spec,
    )
    print(json.dumps(results, sort_keys=True))
    print(f"the fine-tuned victim loads as run:{args.out}", file=sys.stderr)
    return 0


def cmd_train_perturber(args: argparse.Namespace) -> int:
    import envs
    from arena.match import MissingPolicy, check_seats
    from arena.perturber import train_perturber

    victim = pairs(args.victim, "--victim")
    if len(victim) != 1:
        raise UsageError("--victim SEAT=SPEC: give exactly one victim")
    ((seat, spec),) = victim.items()
    envs.spec(args.env_id).check_seat(seat)
    opponents = pairs(args.opponent, "--opponent")
    if seat in opponents:
        raise UsageError(f"--opponent {seat}=...: that is the victim's seat")
    if not args.resume:
        check_output_dir(args.out, "--out")
    try:
        seats = check_seats(args.env_id, opponents, learner=seat)
    except MissingPolicy as exc:
        raise UsageError(str(exc)) from None
    results = train_perturber(
        args.env_id,
        seat,
        spec,
        {s: str(p) for s, p in seats.items()},
        eps=args.eps,
        norm=args.norm,
        steps=args.steps,
        timesteps=args.timesteps,
        out=args.out,
        seed=args.seed,
        n_envs=args.envs,
        resume=args.resume,
    )
    print(json.dumps(results, sort_keys=True))
    print(f"the perturber attacks as learned:{args.out}", file=sys.stderr)
    return 0
