"""Adversary-training throughput, side by side in one run.

Prints env steps/s for:
  1. the game with the frozen victim inside, no learner (zero actions): in-process,
     and with the physics spread over 2 worker processes (the victim batched in the
     main process in both) -- the ceiling;
  2. SB3 PPO training the adversary on the same vector env, in-process and with 2
     workers;
and the ratio of training to the ceiling. Run it on an idle machine:

    ARENA_ZOO_DIR=../shared/zoo python benchmarks/adversary_throughput.py
    python benchmarks/adversary_throughput.py --env toy_pass_v0   # no data needed
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

VICTIMS = {
    "you_shall_not_pass_v0": ("runner", "zoo:you-shall-not-pass/agent2_parameters-v1.pkl"),
    "toy_pass_v0": ("runner", "sb3:arena/assets/toy_pass_v0__runner.zip"),
}


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
    act = np.zeros((n_envs, *vec.action_space.shape), np.float32)
    for _ in range(10):
        vec.step(act)
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        vec.step(act)
    rate = (steps // n_envs) * n_envs / (time.perf_counter() - t0)
    vec.close()
    return rate


def training(env_id: str, seat: str, victim: str, workers: int, steps: int, n_envs: int) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from arena.embedding import EmbeddedVecEnv

    vec = EmbeddedVecEnv(
        env_id,
        "blocker",
        {seat: victim},
        n_envs=n_envs,
        workers=workers,
        env_kwargs={"shaping": 0.0} if env_id != "toy_pass_v0" else None,
    )
    venv = VecNormalize(vec)
    n_steps = 2048
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=4096,
        n_epochs=4,
        learning_rate=3e-4,
        verbose=0,
        seed=0,
        device="cpu",
    )
    t0 = time.perf_counter()
    model.learn(steps)
    rate = model.num_timesteps / (time.perf_counter() - t0)
    venv.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="you_shall_not_pass_v0", choices=sorted(VICTIMS))
    parser.add_argument("--steps", type=int, default=16_384 * 2)
    parser.add_argument("--envs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seat, victim = VICTIMS[args.env]
    rows = []
    for workers in (0, 2):
        rows.append(
            (
                f"game + batched victim, workers={workers}",
                ceiling(args.env, seat, victim, workers, args.steps, args.envs),
            )
        )
    for workers in (0, 2):
        rows.append(
            (
                f"PPO adversary training, workers={workers}",
                training(args.env, seat, victim, workers, args.steps, args.envs),
            )
        )
    best_ceiling = max(r for _, r in rows[:2])
    print(f"{args.env}, {args.envs} envs, {args.steps} steps each")
    for label, rate in rows:
        print(f"  {label:<42} {rate:8.0f} env steps/s   {rate / best_ceiling:6.1%} of ceiling")


if __name__ == "__main__":
    main()
