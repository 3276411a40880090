"""Adversary-training throughput, side by side in one run.

Prints env steps/s for:
  0. the physics ceiling: a bare ``mj_step`` loop (× the game's frame skip, zero
     control, reset every 500 steps) on the game's compiled model, in 1 and in 2
     processes at once (the 2-process figure is the ceiling of a 2-core machine);
  1. the game with the frozen victim inside, no learner (zero actions): in-process,
     and with the physics spread over 2 worker processes (the victim batched in the
     main process);
  2. the arena's trainer (``train_adversary``: SB3 PPO on ``EmbeddedVecEnv`` +
     ``VecNormalize``, the paper's PPO settings, batch 16,384) in-process, and with 2
     workers, the PPO update on 1 or on 2 torch threads (the workers idle meanwhile);
and each figure as a fraction of the 2-process ceiling. Run it on an idle machine:

    ARENA_ZOO_DIR=../shared/zoo python benchmarks/adversary_throughput.py
    python benchmarks/adversary_throughput.py --env toy_pass_v0   # no data needed
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from typing import Any

import numpy as np
import torch

from arena.pretrained import shipped, zoo_spec

VICTIMS = {
    "you_shall_not_pass_v0": ("runner", zoo_spec("you_shall_not_pass_v0", "runner")),
    "toy_pass_v0": ("runner", f"sb3:{shipped('toy_pass_v0__runner.zip')}"),
}


def _bare(env_id: str, steps: int, queue: Any = None) -> float:
    import mujoco

    import envs
    from envs.competition.games import FRAME_SKIP

    env = envs.make(env_id)
    model = env.model
    data = mujoco.MjData(model)
    start = time.perf_counter()
    for t in range(steps):
        if t % 500 == 0:
            mujoco.mj_resetData(model, data)
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
    rate = steps / (time.perf_counter() - start)
    if queue is not None:
        queue.put(rate)
    return rate


def bare_physics(env_id: str, steps: int, processes: int) -> float:
    """Total bare-physics env steps/s of ``processes`` loops running at once."""
    if processes == 1:
        return _bare(env_id, steps)
    ctx = mp.get_context("forkserver")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_bare, args=(env_id, steps, queue)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    rates = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return float(sum(rates))


def ceiling(env_id: str, seat: str, victim: str, workers: int, steps: int, n_envs: int) -> float:
    from arena.embedding import EmbeddedVecEnv

    vec = EmbeddedVecEnv(
        env_id,
        "blocker",
        {seat: victim},
        n_envs=n_envs,
        workers=workers,
        env_kwargs={"shaping": 0.0} if env_id != "toy_pass_v0" else None,
    )
    vec.reset()
    act = np.zeros((n_envs, *(vec.action_space.shape or ())), np.float32)
    for _ in range(10):
        vec.step(act)
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        vec.step(act)
    rate = (steps // n_envs) * n_envs / (time.perf_counter() - t0)
    vec.close()
    return rate


def training(
    env_id: str, seat: str, victim: str, workers: int, steps: int, n_envs: int, threads: int = 1
) -> float:
    """Env steps/s of the arena's own trainer (``train_adversary``, paper PPO settings)."""
    import tempfile

    from arena.training import AdversaryConfig, default_adversary_config, train_adversary

    base = default_adversary_config(env_id, n_envs=n_envs)
    config = AdversaryConfig(
        **{
            **base.__dict__,
            "workers": workers,
            "update_threads": threads,
            "checkpoint_every": 10**9,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_adversary(
            env_id, {seat: victim}, timesteps=steps, out=f"{tmp}/run", config=config, progress=False
        )
        return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="you_shall_not_pass_v0", choices=sorted(VICTIMS))
    parser.add_argument("--steps", type=int, default=16_384 * 3)
    parser.add_argument(
        "--envs", default="8,32", help="comma-separated env counts for the 2-worker rows"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    seat, victim = VICTIMS[args.env]
    counts = [int(n) for n in args.envs.split(",")]
    rows: list[tuple[str, float]] = []
    if args.env != "toy_pass_v0":
        for procs in (1, 2):
            rows.append(
                (
                    f"bare mj_step loop, {procs} process(es)",
                    bare_physics(args.env, args.steps, procs),
                )
            )
    rows.append(
        (
            "game + batched victim, in-process, 8 envs",
            ceiling(args.env, seat, victim, 0, args.steps, 8),
        )
    )
    for n in counts:
        rows.append(
            (
                f"game + batched victim, 2 workers, {n} envs",
                ceiling(args.env, seat, victim, 2, args.steps, n),
            )
        )
    rows.append(
        (
            "PPO adversary training, in-process, 8 envs",
            training(args.env, seat, victim, 0, args.steps, 8),
        )
    )
    for n in counts:
        for threads in (1, 2):
            rows.append(
                (
                    f"PPO adversary training, 2 workers, {n} envs, {threads} update thread(s)",
                    training(args.env, seat, victim, 2, args.steps, n, threads),
                )
            )
    top = rows[1][1] if args.env != "toy_pass_v0" else max(r for _, r in rows)
    print(f"{args.env}: {args.steps:,} env steps per row")
    for label, rate in rows:
        print(f"  {label:<66} {rate:6.0f} env steps/s  {rate / top:6.1%} of the 2-core ceiling")


if __name__ == "__main__":
    main()
