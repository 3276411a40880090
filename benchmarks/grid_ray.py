"""Grids and evaluations through Ray against the local pool, side by side in one run.

Prints, for the same work done both ways on this machine:
  1. a grid of 8 toy-game adversary trainings of the demo's budget (150k steps;
     ``arena grid``): the local pool of
     processes, then Ray Tune trials on a local Ray (started once, outside the timing);
     env steps/s of each and their ratio; the per-trial start-up cost (a trial's wall
     time minus its command's own time, from the cells' statuses);
  2. ``arena evaluate`` of N you-shall-not-pass episodes (the zoo runner against the
     zoo blocker; needs ARENA_ZOO_DIR, else the toy game): 2 local worker processes,
     then Ray tasks; episodes/s and their ratio; the JSON of both compared;
  3. the driver's peak memory (ru_maxrss) in each mode.
Run it on an idle machine:

    ARENA_ZOO_DIR=../shared/zoo python benchmarks/grid_ray.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = f"sb3:{ROOT / 'arena' / 'assets' / 'toy_pass_v0__runner.zip'}"


def grid_file(directory: Path, cells: int, steps: int) -> Path:
    path = directory / "bench.toml"
    seeds = ", ".join(str(s) for s in range(cells))
    path.write_text(
        f"""command = "train-adversary"
[options]
env_id = "toy_pass_v0"
victim = {{ runner = "{RUNNER}" }}
timesteps = {steps}
workers = 0
seed = [{seeds}]
""",
        encoding="utf-8",
    )
    return path


DRIVER = (
    "import resource, sys\n"
    "from arena.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('DRIVER_MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def timed(argv: list[str]) -> tuple[float, str, int]:
    """Wall seconds, stdout and the driver's own peak memory (kB) of ``arena ARGV``."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"arena {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    peak = int(done.stderr.split("DRIVER_MAXRSS_KB")[-1].split()[0])
    return seconds, done.stdout, peak


def cell_seconds(out: Path) -> list[float]:
    return [json.loads(p.read_text())["seconds"] for p in sorted((out / "status").glob("*.json"))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=8)
    p.add_argument(
        "--steps", type=int, default=150_000, help="steps per training (the demo's budget)"
    )
    p.add_argument("--episodes", type=int, default=64)
    args = p.parse_args()
    import ray

    # one local Ray for every Ray figure, started outside the timings (as a cluster is)
    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, object_store_memory=256 * 2**20)
    address = ray.get_runtime_context().gcs_address
    print(f"local Ray started in {time.perf_counter() - started:.1f} s (not counted)")
    cpus = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        grid = grid_file(tmp_path, args.cells, args.steps)
        steps = args.cells * args.steps
        rows = {}
        for mode, extra in (("local pool", []), ("Ray Tune", ["--ray", address])):
            out = tmp_path / mode.split()[0]
            seconds, _, peak = timed(["grid", str(grid), "--out", str(out), *extra])
            inside = cell_seconds(out)
            rows[mode] = (seconds, steps / seconds, sum(inside) / len(inside), peak)
        print(
            f"\n1. grid of {args.cells} toy adversary trainings x {args.steps:,} steps, {cpus} CPUs"
        )
        for mode, (seconds, rate, cell, peak) in rows.items():
            print(
                f"   {mode:<11} {seconds:7.1f} s  {rate:8.0f} env steps/s  (a cell: {cell:.1f} s; "
                f"driver peak memory {peak / 1024:.0f} MiB)"
            )
        ratio = rows["Ray Tune"][1] / rows["local pool"][1]
        print(f"   Ray / local throughput: {ratio:.2f}")
        startup = rows["Ray Tune"][0] * min(cpus, args.cells) / args.cells - rows["Ray Tune"][2]
        local_startup = (
            rows["local pool"][0] * min(cpus, args.cells) / args.cells - rows["local pool"][2]
        )
        print(
            f"   start-up per cell beyond its command: Ray ~{startup:.1f} s, "
            f"local ~{local_startup:.1f} s"
        )

        zoo = os.environ.get("ARENA_ZOO_DIR")
        if zoo:
            from arena.pretrained import zoo_spec

            env = "you_shall_not_pass_v0"
            policies = [
                "--policy",
                f"runner={zoo_spec(env, 'runner')}",
                "--policy",
                f"blocker={zoo_spec(env, 'blocker')}",
            ]
        else:
            env, policies = "toy_pass_v0", ["--policy", f"runner={RUNNER}"]
        common = ["evaluate", env, *policies, "--episodes", str(args.episodes)]
        common += ["--no-save", "--json", "--seed", "3"]
        evals = {}
        for mode, extra in (("local", ["--workers", str(cpus)]), ("Ray", ["--ray", address])):
            seconds, stdout, peak = timed([*common, *extra])
            evals[mode] = (seconds, stdout.strip().splitlines()[-1], peak)
        print(f"\n2. arena evaluate {env}: {args.episodes} episodes")
        for mode, (seconds, _, peak) in evals.items():
            print(
                f"   {mode:<6} {seconds:7.1f} s  {args.episodes / seconds:6.2f} episodes/s  "
                f"driver peak memory {peak / 1024:.0f} MiB"
            )
        print(f"   Ray / local rate: {evals['local'][0] / evals['Ray'][0]:.2f}")
        same = evals["local"][1] == evals["Ray"][1]
        print(f"   JSON identical: {same}")
    ray.shutdown()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
