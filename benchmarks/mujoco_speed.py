"""Speed of the competitive MuJoCo games: env steps/s next to a bare ``mj_step`` loop.

For each game, the env is stepped with uniformly random actions (resetting when an
episode ends) and, on a copy of the same compiled model, a bare loop does only
what physics needs for one env step (set ``ctrl``, ``mj_step`` × 5 substeps). The
ratio is the share of time the env spends in physics (target ≥ 80%). Then zoo vs
zoo evaluation of you-shall-not-pass through ``arena.match.run_match`` (workers
processes, each seat's network batched over 8 episodes) in episodes/s.

    python benchmarks/mujoco_speed.py --steps 1000 --repeats 5 --episodes 32
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


def env_rate(env_id: str, steps: int, seed: int = 0, repeats: int = 5) -> tuple[float, float]:
    """(env steps/s, bare mj_step-loop steps/s): the best of ``repeats`` interleaved blocks.

    Each repeat times ``steps`` env steps, then ``steps`` bare steps on a copy of the
    model, so that both see the same machine load (best-of filters other processes).
    """
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
    model = copy.deepcopy(env.model)
    data = mujoco.MjData(model)
    # ctrl in the model's seat order, so the bare loop steps exactly the env's physics
    order = sorted(agents, key=lambda a: env._seat[env._phys[a]].ctrl.start)
    ctrl = np.concatenate([np.stack([act[a] for act in actions]) for a in order], axis=1)
    env_best = bare_best = float("inf")
    starts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for _ in range(repeats):
        env.reset(seed=seed)  # every repeat plays the same trajectory
        starts[0] = (env.data.qpos.copy(), env.data.qvel.copy(), env.model.geom_size.copy())
        start = time.perf_counter()
        for t in range(steps):
            if not env.agents:
                env.reset()
                if t not in starts:
                    d = env.data
                    starts[t] = (d.qpos.copy(), d.qvel.copy(), env.model.geom_size.copy())
            env.step(actions[t])
        env_best = min(env_best, time.perf_counter() - start)

        # The same physics without the env: same states at each reset, same controls.
        start = time.perf_counter()
        for t in range(steps):
            if t in starts:
                qpos, qvel, size = starts[t]
                mujoco.mj_resetData(model, data)
                model.geom_size[:] = size
                data.qpos[:], data.qvel[:] = qpos, qvel
            data.ctrl[:] = ctrl[t]
            mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        bare_best = min(bare_best, time.perf_counter() - start)
    env.close()
    return steps / env_best, steps / bare_best


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="control steps per block (1000)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved blocks; best is kept (5)")
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
        env_sps, bare_sps = env_rate(env_id, args.steps, repeats=args.repeats)
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
