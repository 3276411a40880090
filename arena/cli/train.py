"""``arena train-adversary`` and ``arena finetune-victim``: PPO against frozen
policies, into a run directory that ``--resume`` continues."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

from arena.cli.options import pairs
from arena.errors import UsageError, check_output_dir

REWARD_TERMS = ("shaping", "victim_value", "victim_divergence", "victim_reward", "victim_novelty")
"""The dense reward terms whose initial weight a flag of the same name sets."""


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


def cmd_train_adversary(args: argparse.Namespace) -> int:
    from arena.training import default_adversary_config, train_adversary

    victims = pairs(args.victim, "--victim")
    check_output_dir(args.out, "--out")
    weights = {t: getattr(args, t) for t in REWARD_TERMS if getattr(args, t) is not None}
    flags = {
        "--envs": args.envs,
        "--white-box": args.white_box,
        "--action-std": args.action_std,
    } | {"--" + t.replace("_", "-"): getattr(args, t) for t in REWARD_TERMS}
    changes = runtime(args, flags)
    config = default_adversary_config(args.env_id, n_envs=args.envs)
    config = dataclasses.replace(config, **weights)
    if args.white_box:
        config = dataclasses.replace(config, white_box=True)
    if args.action_std is not None:
        ppo = dataclasses.replace(config.ppo, log_std_init=math.log(args.action_std))
        config = dataclasses.replace(config, ppo=ppo)
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
