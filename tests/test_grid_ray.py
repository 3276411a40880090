"""Grids and evaluations on a real Ray cluster of two nodes on this machine: the same
tables as the local run, trials spread over both nodes, a killed trial worker retried
from its last checkpoint, `arena evaluate --ray` identical to the local JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ASSETS, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.ray]

RUNNER = f"sb3:{ASSETS / 'toy_pass_v0__runner.zip'}"
GRIDS = ROOT / "experiments" / "grids"


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each: trials must use both."""
    pytest.importorskip("ray", reason="the `ray` extra is not installed")
    from ray.cluster_utils import Cluster

    small = {"num_cpus": 1, "object_store_memory": 128 * 2**20}
    head = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    head.add_node(**small)
    head.wait_for_nodes()
    yield head.address
    head.shutdown()


def arena(*args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arena.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_grid(grid: Path, out: Path, cluster: str) -> subprocess.Popen:
    """``arena grid GRID --out OUT --ray CLUSTER --json``, running in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "arena.cli", "grid", grid, "--out", out, "--ray", cluster, "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(driver: subprocess.Popen) -> dict:
    """The last JSON line of a background grid once it has finished."""
    stdout, stderr = driver.communicate(timeout=600)
    return last_json(subprocess.CompletedProcess([], driver.returncode, stdout, stderr))


def comparable(summary: dict) -> list[dict]:
    """The results of a grid without where they ran (paths, attempts)."""
    return [
        {k: v for k, v in row.items() if k not in ("run_dir", "attempts")}
        for row in summary["results"]
    ]


def nodes(out: Path) -> set[str]:
    return {json.loads(p.read_text())["node"] for p in (out / "status").glob("c*.json")}


def test_evaluate_on_ray_is_the_local_json_bit_for_bit(cluster):
    common = ("evaluate", "toy_pass_v0", "--policy", f"runner={RUNNER}", "--episodes", 40)
    common += ("--seed", 7, "--no-save", "--json", "--attack", "runner=noise:eps=0.3")
    local = arena(*common, "--workers", 2)
    on_ray = arena(*common, "--ray", cluster)
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert on_ray.stdout.strip().splitlines()[-1] == local.stdout.strip().splitlines()[-1]


def test_twelve_cell_grid_on_two_nodes_gives_the_local_table(cluster, tmp_path):
    grid = GRIDS / "toy_evaluate.toml"
    local = last_json(arena("grid", grid, "--out", tmp_path / "local", "--json"))
    on_ray = last_json(arena("grid", grid, "--out", tmp_path / "ray", "--ray", cluster, "--json"))
    assert local["cells"] == on_ray["cells"] == on_ray["done"] == 12
    assert comparable(on_ray) == comparable(local)
    table = [json.loads((tmp_path / d / "results.json").read_text()) for d in ("local", "ray")]
    assert table[0]["headline"] == table[1]["headline"]
    assert len(nodes(tmp_path / "ray")) == 2  # the trials ran on both nodes
    assert nodes(tmp_path / "local") == {None}
    assert any((tmp_path / "ray" / "ray").rglob("experiment_state-*.json"))  # Tune's storage


def _kill_when(path_ready, status: Path, deadline_s: float = 240) -> int:
    """SIGKILL the process running a cell (the Ray worker of its trial) once
    ``path_ready()``; its pid."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if status.is_file():
            data = json.loads(status.read_text())
            if data["state"] == "running" and path_ready():
                os.kill(data["pid"], signal.SIGKILL)
                return int(data["pid"])
        time.sleep(0.05)
    raise AssertionError(f"{status}: the cell never got ready to be killed")


def test_killed_trial_worker_is_retried_from_its_last_checkpoint(cluster, tmp_path):
    grid = tmp_path / "train.toml"
    grid.write_text(
        f"""
command = "train-adversary"
[options]
env_id = "toy_pass_v0"
victim = {{ runner = "{RUNNER}" }}
timesteps = [2048, 4096, 40960]
workers = 0
checkpoint_every = 4096
""",
        encoding="utf-8",
    )
    out = tmp_path / "ray"
    driver = start_grid(grid, out, cluster)
    state = out / "cells" / "c002" / "checkpoints" / "state.json"
    _kill_when(state.is_file, out / "status" / "c002.json")
    checkpoint = json.loads(state.read_text())["timesteps"]
    summary = finished(driver)
    assert summary["done"] == 3 and summary["failed"] == 0
    killed = summary["results"][2]
    assert killed["attempts"] == 2
    assert killed["summary"]["figures"]["timesteps"] == 40960
    log = (out / "logs" / "c002.log").read_text()
    resumed = int(log.split("from its checkpoint at ")[1].split()[0].replace(",", ""))
    assert checkpoint <= resumed < 40960  # at most one checkpoint interval lost
    # the cells nobody killed are those of the local run, figure for figure
    local = last_json(arena("grid", grid, "--out", tmp_path / "local", "--json"))
    assert comparable(summary)[:2] == comparable(local)[:2]
    for cell in ("c000", "c001"):
        rows = [
            [line.split(",")[:3] for line in (d / "cells" / cell / "progress.csv").open()]
            for d in (out, tmp_path / "local")
        ]
        assert rows[0] == rows[1]  # the same training, step by step


def test_killed_evaluation_trial_reruns_to_the_same_result(cluster, tmp_path):
    grid = tmp_path / "eval.toml"
    grid.write_text(
        f"""
command = "evaluate"
[options]
env_id = "toy_pass_v0"
policy = {{ runner = "{RUNNER}" }}
attack = "runner=noise:eps=0.4"
episodes = [8, 600]
""",
        encoding="utf-8",
    )
    out = tmp_path / "ray"
    driver = start_grid(grid, out, cluster)
    _kill_when(lambda: True, out / "status" / "c001.json")
    summary = finished(driver)
    assert summary["results"][1]["attempts"] == 2
    local = last_json(arena("grid", grid, "--out", tmp_path / "local", "--json"))
    assert comparable(summary) == comparable(local)


def test_gleave2020_trains_and_scores_through_ray(cluster, tmp_path):
    """The experiment's adversary training runs as a grid cell on the cluster and its
    evaluations as Ray tasks; its tables are those of the local run."""
    common = ("run", "gleave2020", "--quick", "--timesteps", 4096, "--episodes", 16)
    local = arena(*common, "--runs", tmp_path / "local")
    on_ray = arena(*common, "--runs", tmp_path / "ray", "--ray", cluster)
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr[-2000:]
    run_dirs = [next((tmp_path / d / "gleave2020").iterdir()) for d in ("local", "ray")]
    results = [json.loads((d / "results.json").read_text()) for d in run_dirs]
    assert results[0]["headline"] == results[1]["headline"]
    statuses = list((run_dirs[1] / "adversaries" / "status").glob("c*.json"))
    assert [json.loads(p.read_text())["state"] for p in statuses] == ["done"]
