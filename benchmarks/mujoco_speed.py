"""Speed of the competitive MuJoCo games: env steps/s next to a bare ``mj_step`` loop.

For each game, the env is stepped with uniformly random actions (resetting when an
episode ends) and, on a copy of the same compiled model, a bare loop does only
what physics needs for one env step (set ``ctrl``, ``mj_step`` × 5 substeps). The
ratio is the share of time the env spends in physics (target ≥ 80%). Then zoo vs
zoo evaluation of you-shall-not-pass through ``arena.match.run_match`` (workers
processes, each seat's network batched over 8 episodes) in episodes/s.

    python benchmarks/mujoco_speed.py --steps 2000 --episodes 32
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np

GAMES = (
    "you_shall_not_pass_v0",
    "kick_and_defend_v0",
    "sumo_humans_v0",
    "sumo_ants_v0",
    "run_to_goal_humans_v0",
    "run_to_goal_ants_v0",
)


def env_rate(env_id: str, steps: int, seed: int = 0) -> tuple[float, float]:
    """(env steps/s, bare mj_step-loop steps/s) over ``steps`` control steps."""
    import mujoco

    import envs
    from envs.competition.games import FRAME_SKIP

    env = envs.make(env_id)
    rng = np.random.default_rng(seed)
    agents = list(env.possible_agents)
    spaces = {a: env.action_space(a) for a in agents}
    actions = [
        {a: rng.uniform(spaces[a].low, spaces[a].high).astype(np.float32) for a in agents}
        for _ in range(steps)
    ]
    env.reset(seed=seed)
    start = time.perf_counter()
    for t in range(steps):
        if not env.agents:
            env.reset()
        env.step(actions[t])
    env_time = time.perf_counter() - start

    model = copy.deepcopy(env.model)
    data = mujoco.MjData(model)
    ctrl = np.concatenate([np.stack([act[a] for act in actions]) for a in agents], axis=1)
    # seat order in ctrl does not matter for the cost of a step
    start = time.perf_counter()
    for t in range(steps):
        if t % 200 == 0:
            mujoco.mj_resetData(model, data)
        data.ctrl[:] = ctrl[t]
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
    bare_time = time.perf_counter() - start
    env.close()
    return steps / env_time, steps / bare_time


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="control steps per game (2000)")
    p.add_argument("--games", default=",".join(GAMES), help="comma-separated game ids")
    p.add_argument(
        "--episodes",
        type=int,
        default=32,
        help="you-shall-not-pass zoo-vs-zoo episodes (32; 0 skips)",
    )
    p.add_argument("--workers", type=int, default=2, help="evaluation processes (2)")
    p.add_argument(
        "--zoo",
        default=os.environ.get("ARENA_ZOO_DIR", ""),
        help="zoo directory (default: ARENA_ZOO_DIR)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    print(f"{'game':<23} {'env steps/s':>12} {'bare mj_step/s':>15} {'env/bare':>9}")
    for env_id in args.games.split(","):
        env_sps, bare_sps = env_rate(env_id, args.steps)
        print(
            f"{env_id:<23} {env_sps:>12.0f} {bare_sps:>15.0f} {env_sps / bare_sps:>8.0%}",
            flush=True,
        )

    if args.episodes > 0:
        zoo = Path(args.zoo) if args.zoo else None
        if zoo is None or not zoo.is_dir():
            print(
                "zoo vs zoo evaluation skipped: set ARENA_ZOO_DIR or pass --zoo DIR",
                file=sys.stderr,
            )
            return 0
        from arena.match import run_match

        seats = {
            "runner": f"zoo:{zoo / 'you-shall-not-pass/agent2_parameters-v1.pkl'}",
            "blocker": f"zoo:{zoo / 'you-shall-not-pass/agent1_parameters-v1.pkl'}",
        }
        start = time.perf_counter()
        result, _ = run_match(
            "you_shall_not_pass_v0",
            seats,
            n_episodes=args.episodes,
            seed=0,
            workers=args.workers,
            deterministic=False,
        )
        seconds = time.perf_counter() - start
        steps = sum(result.lengths)
        print(
            f"you_shall_not_pass_v0 zoo vs zoo, workers={args.workers}: "
            f"{args.episodes} episodes in {seconds:.1f} s = {args.episodes / seconds:.2f} "
            f"episodes/s ({steps / seconds:.0f} env steps/s, mean length "
            f"{steps / args.episodes:.0f}; includes process start-up)"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
