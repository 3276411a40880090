"""Agent steps per second of clean, FGSM and PGD-10 evaluation, side by side in one run.

Each mode plays the same ``--envs`` Pong games in lockstep (one batched victim call
per step, exactly the calls ``arena.match.play_chunk`` makes: ``predict`` when clean,
``ObservationAttack.step`` when attacked) for ``--steps`` steps; games that end are
reset and go on. Only the stepping is timed, not env creation. The modes are
interleaved over ``--repeats`` rounds and the median rate of each is reported, so a
busy machine slows all three alike. Targets
(issue 12): FGSM at >= 50% of the clean rate, PGD-10 at >= 12%.

The victim is ``$ARENA_ATARI_DIR/pong_ppo.npz`` or ``--victim PATH``; without one,
random weights of the same network (identical cost; the scores are meaningless).

    ARENA_ATARI_DIR=../shared/atari python benchmarks/attack_throughput.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODES = {"clean": None, "fgsm": "fgsm:eps=1/255", "pgd10": "pgd:eps=1/255,steps=10"}
TARGETS = {"fgsm": 0.50, "pgd10": 0.12}


def victim_path(arg: str | None, tmp: Path) -> tuple[str, str]:
    if arg:
        return arg, arg
    root = os.environ.get("ARENA_ATARI_DIR")
    if root and (Path(root) / "pong_ppo.npz").is_file():
        found = str(Path(root) / "pong_ppo.npz")
        return found, found
    rng = np.random.default_rng(0)
    shapes = {
        "conv1": ((32, 4, 8, 8), 32),
        "conv2": ((64, 32, 4, 4), 64),
        "conv3": ((32, 64, 3, 3), 32),
        "fc": ((512, 1568), 512),
        "pi": ((6, 512), 6),
        "v": ((1, 512), 1),
    }
    arrays: dict[str, Any] = {}  # Any: numpy's stub types **kwds like its allow_pickle flag
    for name, (w, b) in shapes.items():
        arrays[f"{name}.weight"] = (rng.standard_normal(w) * 0.05).astype(np.float32)
        arrays[f"{name}.bias"] = np.zeros(b, np.float32)
    path = tmp / "random_pong_cnn.npz"
    np.savez(path, **arrays)
    return str(path), "random weights of the README network (no ARENA_ATARI_DIR)"


class Lockstep:
    """``--envs`` Pong games stepped together, as ``arena.match.play_chunk`` steps a chunk."""

    def __init__(self, n: int, seed: int = 0):
        import envs

        self.games = [envs.make("atari_pong_v0") for _ in range(n)]
        self.obs = [g.reset(seed=seed + i)[0]["player"] for i, g in enumerate(self.games)]
        self.seed = seed + n

    def run(self, victim, attack, steps: int) -> float:
        """Play ``steps`` lockstep steps; return agent steps per second."""
        n = len(self.games)
        start_flags = np.zeros(n, dtype=bool)
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = np.stack(self.obs)
            if attack is None:
                actions, _ = victim.predict(batch, None, start_flags, True)
            else:
                actions = attack.step(victim, batch, None, start_flags, True).actions
            for e, g in enumerate(self.games):
                o, _, term, trunc, _ = g.step({"player": actions[e]})
                if term["player"] or trunc["player"]:
                    self.seed += 1
                    o, _ = g.reset(seed=self.seed)
                self.obs[e] = o["player"]
        return n * steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--victim", help="an atari .npz victim (default: $ARENA_ATARI_DIR/pong_ppo.npz)")
    p.add_argument("--envs", type=int, default=8, help="games in lockstep (default 8)")
    p.add_argument("--steps", type=int, default=150, help="lockstep steps per round (default 150)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    from gymnasium import spaces

    from agents import specs
    from agents.attacks import parse_attack

    with tempfile.TemporaryDirectory() as tmp:
        path, described = victim_path(args.victim, Path(tmp))
        obs_space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
        victim = specs.resolve(f"atari:{path}", obs_space, spaces.Discrete(6))
    attacks = {m: (parse_attack(a) if a else None) for m, a in MODES.items()}
    games = Lockstep(args.envs)
    games.run(victim, attacks["fgsm"], 5)  # warm-up
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode, attack in attacks.items():
            rates[mode].append(games.run(victim, attack, args.steps))
    med = {m: statistics.median(r) for m, r in rates.items()}
    print(f"victim: {described}")
    print(
        f"{args.envs} Pong games in lockstep (one batched victim call per step, as `arena "
        f"evaluate` plays a chunk), {args.steps} steps per round, one torch thread, median of "
        f"{args.repeats} interleaved rounds; setup (env creation, ROM loading) not timed"
    )
    print(f"{'mode':<8} {'agent steps/s':>14} {'vs clean':>9}   target")
    ok = True
    for mode, rate in med.items():
        ratio = rate / med["clean"]
        target = TARGETS.get(mode)
        mark = (
            "" if target is None else f">= {target:.0%} " + ("ok" if ratio >= target else "MISSED")
        )
        ok &= target is None or ratio >= target
        print(f"{mode:<8} {rate:>14.1f} {ratio:>9.1%}   {mark}")
    if not ok:
        print("(a target was missed: see the figures above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
