"""Adversary-training throughput against the physics of the same episodes, in one run.

The ceiling is the physics of the game's own states: episodes of the game are played
first (the zoo victim acting, the adversary acting as a fresh PPO policy does, from a
Gaussian of unit spread around zero, clipped to its control range), recording every
step's controls and every episode's start state; then a bare loop replays them through
``mj_step`` (× the frame skip) and ``mj_rnePostConstraint`` (the contact forces the
rules read) on the game's compiled model: the same contacts, the same fallen bodies,
none of the game's Python, no policy. Printed, env steps/s:

  1. that bare replay in 1 process and in 2 at once, twice: through one ``MjData`` (one
     hot state, always in cache), and cut into as many runs as the training has
     environments per process, each in its own ``MjData``, stepped in turn one step each
     (the same computation, bit for bit, laid out in memory as a vectorised game holds
     its environments: 32 states in one process, or 16 in each of 2);
  2. the game with the frozen victim inside (``EmbeddedVecEnv``, 2 simulation workers,
     the learner's actions drawn as in the replay): the learner's environment without
     learning;
  3. the arena's trainer (``train_adversary``: SB3 PPO, the paper's settings, the
     default runtime: 2 simulation workers, the update on 2 threads);
  4. the trainer in-process (``--workers 0``): one run alone, then two runs at once,
     one per core (how the runs of a study, of seeds or of a grid share a machine);
and each as a fraction of the bare replay of its own layout (as many processes, as
many states per process: the target, training ≥ 0.8 of it) and of one hot state (the
cache-warm bound no vectorised game reaches: a 32-state replay is slower than a
one-state replay of the same steps). One run on 2 workers finishes soonest; two
in-process runs get the most steps out of the machine (no pickling between processes,
no core idle while the other waits).
Run it on an idle machine:

    ARENA_ZOO_DIR=../shared/zoo python benchmarks/adversary_throughput.py --env kick_and_defend_v0
    python benchmarks/adversary_throughput.py --env toy_pass_v0     # no data, no physics rows
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
import torch

GAMES = {
    "you_shall_not_pass_v0": "runner",
    "kick_and_defend_v0": "kicker",
    "sumo_humans_v0": "fighter_0",
    "sumo_ants_v0": "fighter_0",
    "toy_pass_v0": "runner",
}


def victim_spec(env_id: str) -> str:
    from arena.pretrained import shipped, zoo_spec

    if env_id == "toy_pass_v0":
        return f"sb3:{shipped('toy_pass_v0__runner.zip')}"
    return zoo_spec(env_id, GAMES[env_id])


def record(env_id: str, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Play ``steps`` steps of the game (the victim sampled, the adversary as a fresh
    policy): every step's controls, where episodes start, and their start states."""
    import envs
    from agents import specs

    game = envs.make(env_id)
    victim_seat = GAMES[env_id]
    adversary = next(s for s in game.possible_agents if s != victim_seat)
    victim = specs.resolve(
        victim_spec(env_id),
        game.observation_space(victim_seat),
        game.action_space(victim_seat),
        env_id=env_id,
        seat=victim_seat,
    )
    space = game.action_space(adversary)
    rng = np.random.default_rng(seed)
    obs, _ = game.reset(seed=seed)
    ctrl, starts, qpos, qvel = [], [], [game.data.qpos.copy()], [game.data.qvel.copy()]
    start = np.array([True])
    for t in range(steps):
        act, _ = victim.predict(obs[victim_seat][None], episode_start=start, deterministic=False)
        start = np.array([False])
        noise = np.clip(rng.normal(0.0, 1.0, space.shape), space.low, space.high)
        obs, _, term, trunc, _ = game.step({victim_seat: act[0], adversary: noise})
        ctrl.append(game.data.ctrl.copy())
        if any(term.values()) or any(trunc.values()):
            obs, _ = game.reset()
            starts.append(t + 1)
            qpos.append(game.data.qpos.copy())
            qvel.append(game.data.qvel.copy())
            start = np.array([True])
    return {
        "ctrl": np.asarray(ctrl),
        "starts": np.asarray(starts, dtype=np.int64),
        "qpos": np.asarray(qpos),
        "qvel": np.asarray(qvel),
    }


def _segments(model: Any, trace: dict[str, np.ndarray], states: int) -> list[tuple[Any, range]]:
    """The trace cut into ``states`` runs of consecutive steps, each with its start
    state: the ``MjData`` (contacts' warm start included) that replaying the trace
    through one ``MjData`` has when it reaches the run's first step."""
    import mujoco

    n = len(trace["ctrl"])
    length = -(-n // states)
    begins = _episode_begins(trace)
    data = mujoco.MjData(model)
    _begin(model, data, trace, 0)
    runs = []
    for t in range((states - 1) * length + 1):
        if t % length == 0:
            snap = mujoco.MjData(model)
            mujoco.mj_copyData(snap, model, data)
            runs.append((snap, range(t, min(n, t + length))))
        _step(model, data, trace, begins, t)
    return runs


def _episode_begins(trace: dict[str, np.ndarray]) -> dict[int, int]:
    """Step index -> the index of the episode that begins there."""
    return {int(t): k + 1 for k, t in enumerate(trace["starts"])}


def _begin(model: Any, data: Any, trace: dict[str, np.ndarray], episode: int) -> None:
    import mujoco

    mujoco.mj_resetData(model, data)
    data.qpos[:] = trace["qpos"][episode]
    data.qvel[:] = trace["qvel"][episode]
    mujoco.mj_forward(model, data)


def _step(
    model: Any, data: Any, trace: dict[str, np.ndarray], begins: dict[int, int], t: int
) -> None:
    """Step ``t`` of the trace on ``data``: its episode's start state first if one begins
    there, then its controls through ``mj_step`` (× the frame skip) and
    ``mj_rnePostConstraint``."""
    import mujoco

    from envs.competition.games import FRAME_SKIP

    if t in begins:
        _begin(model, data, trace, begins[t])
    data.ctrl[:] = trace["ctrl"][t]
    mujoco.mj_step(model, data, nstep=FRAME_SKIP)
    mujoco.mj_rnePostConstraint(model, data)


def replay(
    env_id: str, trace: dict[str, np.ndarray], states: int = 1, queue: Any = None
) -> tuple[float, list[np.ndarray]]:
    """Env steps/s of the trace's controls replayed through bare ``mj_step`` (× the frame
    skip) and ``mj_rnePostConstraint``, and each state's final ``qpos``.

    ``states`` 1: one ``MjData`` steps the whole trace, its memory always in cache.
    ``states`` N: the trace cut into N runs, each in its own ``MjData``, stepped in turn
    one step each, as a vectorised game of N environments in one process steps them: the
    same computation, bit for bit, in the training's memory layout."""
    import envs

    model = envs.make(env_id).model
    begins = _episode_begins(trace)
    runs = _segments(model, trace, states)
    t0 = time.perf_counter()
    for j in range(len(runs[0][1])):
        for data, steps in runs:
            if j < len(steps):
                _step(model, data, trace, begins, steps[j])
    rate = len(trace["ctrl"]) / (time.perf_counter() - t0)
    if queue is not None:
        queue.put(rate)
    return rate, [data.qpos.copy() for data, _ in runs]


def bare_replay(
    env_id: str, trace: dict[str, np.ndarray], processes: int, states: int = 1
) -> float:
    """Total env steps/s of ``processes`` bare replays (of ``states`` states each)
    running at once."""
    if processes == 1:
        return replay(env_id, trace, states)[0]
    return _at_once(replay, (env_id, trace, states), processes)


def _at_once(target: Any, args: tuple[Any, ...], processes: int) -> float:
    """Total rate of ``processes`` copies of ``target(*args, queue)`` run at once, each
    putting its rate on the queue."""
    from arena.parallel import forkserver

    ctx = forkserver()
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    rates = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return float(sum(rates))


def game_with_victim(env_id: str, steps: int, n_envs: int) -> float:
    import envs
    from arena.embedding import EmbeddedVecEnv

    seat = GAMES[env_id]
    adversary = next(s for s in envs.spec(env_id).seats if s != seat)
    vec = EmbeddedVecEnv(env_id, adversary, {seat: victim_spec(env_id)}, n_envs=n_envs, workers=2)
    vec.reset()
    from gymnasium import spaces

    space = vec.action_space
    assert isinstance(space, spaces.Box)
    rng = np.random.default_rng(0)  # the learner as in the replay: a fresh policy's Gaussian
    acts = [
        np.clip(rng.normal(0.0, 1.0, (n_envs, *space.shape)), space.low, space.high).astype(
            np.float32
        )
        for _ in range(64)
    ]
    for t in range(10):
        vec.step(acts[t])
    t0 = time.perf_counter()
    for t in range(steps // n_envs):
        vec.step(acts[t % 64])
    rate = (steps // n_envs) * n_envs / (time.perf_counter() - t0)
    vec.close()
    return rate


def training(env_id: str, steps: int, workers: int | None = None, queue: Any = None) -> float:
    """Steady env steps/s of the arena's own trainer with its default recipe, on its
    default runtime (2 simulation workers) or with ``workers`` (0: all in this process):
    from the end of its first rollout to the end of its last (the updates between
    included; imports, building the model and the first reset, which a long run pays
    once, not). ``steps`` is rounded up to at least 3 rollouts."""
    import csv
    import dataclasses

    torch.set_num_threads(1)
    from arena.training import default_adversary_config, train_adversary

    config = default_adversary_config(env_id, workers=workers)
    config = dataclasses.replace(config, checkpoint_every=10**9)
    batch = config.ppo.n_envs * config.ppo.n_steps
    rollouts = max(3, -(-steps // batch))
    with tempfile.TemporaryDirectory() as tmp:
        train_adversary(
            env_id,
            {GAMES[env_id]: victim_spec(env_id)},
            timesteps=rollouts * batch,
            out=f"{tmp}/run",
            config=config,
            progress=False,
        )
        with open(f"{tmp}/run/progress.csv") as fh:
            rows = list(csv.DictReader(fh))
    # each row, at a rollout's end: steps since training began / seconds since then
    ends = [int(r["timesteps"]) / float(r["steps_per_s"]) for r in rows]
    rate = (len(rows) - 1) * batch / (ends[-1] - ends[0])
    if queue is not None:
        queue.put(rate)
    return rate


def trainings_at_once(env_id: str, steps: int, runs: int) -> float:
    """Total env steps/s of ``runs`` in-process trainings running at once (one per
    core: how a study's or a grid's runs share a machine, ``--workers 0``)."""
    return _at_once(training, (env_id, steps, 0), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="you_shall_not_pass_v0", choices=sorted(GAMES))
    parser.add_argument("--steps", type=int, default=16_384 * 4)
    parser.add_argument("--replay-steps", type=int, default=20_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from arena.training import default_adversary_config

    # the default recipe's environments: all in one process in-process, half in each of
    # the 2 simulation workers otherwise
    n_envs = default_adversary_config(args.env).ppo.n_envs
    physics = args.env != "toy_pass_v0"
    ceilings: dict[tuple[int, int], float] = {}  # (processes, states) -> env steps/s
    if physics:
        trace = record(args.env, args.replay_steps)
        for procs, states in ((1, 1), (2, 1), (1, n_envs), (2, n_envs), (2, n_envs // 2)):
            ceilings[procs, states] = bare_replay(args.env, trace, procs, states)
    # (label, env steps/s, processes, states per process as the training holds them)
    rows: list[tuple[str, float, int, int]] = [
        (
            f"game + batched victim, 2 workers, {n_envs} envs",
            game_with_victim(args.env, args.steps, n_envs),
            2,
            n_envs // 2,
        ),
        (
            "PPO training, default runtime (2 simulation workers)",
            training(args.env, args.steps),
            2,
            n_envs // 2,
        ),
        (
            "PPO training in-process (--workers 0), 1 run",
            training(args.env, args.steps, 0),
            1,
            n_envs,
        ),
        (
            "PPO training in-process, 2 runs at once (total)",
            trainings_at_once(args.env, args.steps, 2),
            2,
            n_envs,
        ),
    ]
    print(f"{args.env}: {args.steps:,} env steps per training row", end="")
    if not physics:
        print()
        for label, rate, _, _ in rows:
            print(f"  {label:<62} {rate:6.0f} env steps/s")
        return
    print(f"; replay of {args.replay_steps:,} steps ({len(trace['starts']) + 1} episodes)")
    for (procs, states), rate in ceilings.items():
        label = (
            f"bare replay, {states} state{'s in turn' if states > 1 else ''}, {procs} process(es)"
        )
        print(f"  {label:<62} {rate:6.0f} env steps/s")
    for label, rate, procs, states in rows:
        hot, layout = ceilings[procs, 1], ceilings[procs, states]
        print(
            f"  {label:<62} {rate:6.0f} env steps/s  {rate / layout:6.1%} of the bare replay of "
            f"its layout ({states} states x {procs}), {rate / hot:6.1%} of one hot state x {procs}"
        )


if __name__ == "__main__":
    main()
