"""Speed of the competitive MuJoCo games: env steps/s next to a bare ``mj_step`` loop.

For each game, the env is stepped with uniformly random actions (resetting when an
episode ends) and, on a copy of the same compiled model replaying the same physics
states, a bare loop does only what physics needs for one env step (set ``ctrl``,
``mj_step`` × 5 substeps), interleaved in segments of 100 steps, best of
``--repeats``. The ratio is the share of time the env spends in physics (target
≥ 80%). Then zoo vs
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

clock = time.process_time
"""CPU time of this process: the rate of a single-threaded loop, whatever the load."""

GAMES = (
    "you_shall_not_pass_v0",
    "kick_and_defend_v0",
    "sumo_humans_v0",
    "sumo_ants_v0",
    "run_to_goal_humans_v0",
    "run_to_goal_ants_v0",
)


def env_rate(
    env_id: str, steps: int, seed: int = 0, repeats: int = 5, segment: int = 100
) -> tuple[float, float]:
    """(env steps/s, bare mj_step-loop steps/s) over ``steps`` control steps.

    The env plays ``steps`` random-action steps (the same trajectory in every repeat).
    Each segment of ``segment`` steps is timed in the env and then, on a copy of the
    compiled model started from the same physics state (and reset to the same states
    where the env reset), as a bare loop of ``ctrl`` + ``mj_step`` × 5 substeps. Each
    segment keeps its best time over ``repeats``: fine-grained interleaving and
    best-of filter out the load of other processes on a shared machine; so does the
    clock, the process's CPU time (``time.process_time``: time spent waiting for a
    core does not count).
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
    # ctrl in the model's seat order, so the bare loop steps exactly the env's physics
    order = sorted(agents, key=lambda a: env._seat[env._phys[a]].ctrl.start)
    ctrl = np.concatenate([np.stack([act[a] for act in actions]) for a in order], axis=1)
    model = copy.deepcopy(env.model)
    data = mujoco.MjData(model)
    kind = mujoco.mjtState.mjSTATE_INTEGRATION
    size = mujoco.mj_stateSize(model, kind)

    def snapshot() -> tuple[np.ndarray, np.ndarray]:
        state = np.empty(size)
        mujoco.mj_getState(env.model, env.data, state, kind)
        return state, env.model.geom_size.copy()

    def restore(snap: tuple[np.ndarray, np.ndarray]) -> None:
        model.geom_size[:] = snap[1]
        mujoco.mj_setState(model, data, snap[0], kind)

    n_seg = max(1, steps // segment)
    env_time = np.full(n_seg, np.inf)
    bare_time = np.full(n_seg, np.inf)
    starts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    resets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(repeats):
        env.reset(seed=seed)  # every repeat plays the same trajectory
        for k in range(n_seg):
            ts = range(k * segment, min(steps, (k + 1) * segment))
            starts.setdefault(k, snapshot())
            start = clock()
            for t in ts:
                if not env.agents:
                    env.reset()
                    resets.setdefault(t, snapshot())
                env.step(actions[t])
            env_time[k] = min(env_time[k], clock() - start)

            restore(starts[k])
            start = clock()
            for t in ts:
                if t in resets:
                    restore(resets[t])
                data.ctrl[:] = ctrl[t]
                mujoco.mj_step(model, data, nstep=FRAME_SKIP)
            bare_time[k] = min(bare_time[k], clock() - start)
    env.close()
    n = n_seg * segment if steps >= segment else steps
    return n / env_time.sum(), n / bare_time.sum()


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="control steps per game (1000)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; best per segment (5)")
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
        from arena.pretrained import zoo_spec

        seats = {s: zoo_spec("you_shall_not_pass_v0", s, zoo) for s in ("runner", "blocker")}
        start, cpu = time.perf_counter(), clock()
        result, _ = run_match(
            "you_shall_not_pass_v0",
            seats,
            n_episodes=args.episodes,
            seed=0,
            workers=args.workers,
            deterministic=False,
        )
        seconds, cpu = time.perf_counter() - start, clock() - cpu
        steps = sum(result.lengths)
        print(
            f"you_shall_not_pass_v0 zoo vs zoo, workers={args.workers}: "
            f"{args.episodes} episodes in {seconds:.1f} s = {args.episodes / seconds:.2f} "
            f"episodes/s ({steps / seconds:.0f} env steps/s, mean length "
            f"{steps / args.episodes:.0f}; includes process start-up)"
        )
        if args.workers == 1:  # in-process: the CPU time is the whole evaluation's
            print(
                f"  CPU time {cpu:.1f} s = {args.episodes / cpu:.2f} episodes per CPU-second "
                "(the rate of one free core)"
            )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
