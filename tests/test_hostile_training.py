"""A training run directory as an attacker leaves it: links planted where the run
writes, its recipe file asking PPO for absurd work, special files where JSON belongs.
``--resume`` must end in one line, exit 2, writing and removing nothing outside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

VICTIM = "runner=random"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    import dataclasses

    from arena.training import default_adversary_config, train_adversary

    out = tmp_path_factory.mktemp("run") / "adv"
    config = dataclasses.replace(default_adversary_config("toy_pass_v0"), checkpoint_every=2048)
    train_adversary(
        "toy_pass_v0",
        {"runner": "random"},
        timesteps=2048,
        out=out,
        config=config,
        progress=False,
    )
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(run, dst, symlinks=True)
    (dst / "policy.zip").unlink()  # an unfinished run: resume from its checkpoint
    return dst


def _resume(cli, run: Path):
    return cli(
        "train-adversary",
        "toy_pass_v0",
        "--victim",
        VICTIM,
        "--timesteps",
        "4096",
        "--out",
        run,
        "--resume",
    )


def _one_line(done, *fragments: str) -> None:
    assert done.code == 2, done.err
    assert done.err.startswith("arena: error: ") and done.err.count("\n") == 1, done.err
    for fragment in fragments:
        assert fragment in done.err, done.err


def test_a_planted_lock_link_truncates_nothing(cli, small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(precious)
    _one_line(_resume(cli, run), "cannot lock .lock", "not links")
    assert precious.read_text() == "keep me"


@pytest.mark.parametrize("name", ["checkpoints", "tb"])
def test_linked_run_folders_carry_no_write_or_removal_outside(cli, small_run, tmp_path, name):
    run = _copy(small_run, tmp_path)
    outside = tmp_path / "outside"
    os.rename(run / name, outside)
    (outside / "step_important.txt").write_text("keep me")
    (run / name).symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())
    _one_line(_resume(cli, run), f"{name} is a link", "must be its own")
    assert sorted(p.name for p in outside.iterdir()) == before


@pytest.mark.parametrize("name", ["progress.csv", "adversary_run.json"])
def test_linked_run_files_are_refused(cli, small_run, tmp_path, name):
    run = _copy(small_run, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (run / name).unlink()
    (run / name).symlink_to(outside)
    _one_line(_resume(cli, run), name)
    assert outside.read_text() == "keep me"


def test_a_marker_that_is_a_device_or_a_fifo_is_refused_unread(cli, small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    (run / "adversary_run.json").unlink()
    os.mkfifo(run / "adversary_run.json")  # reading it would block forever
    _one_line(_resume(cli, run), "adversary_run.json")
    from arena.artifacts.base import ArtifactError, read_json

    with pytest.raises(ArtifactError, match="not a regular file"):
        read_json(Path("/dev/zero"))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"ppo": {"extra": {"bogus": 1}}}, "unknown PPO argument 'bogus'"),
        ({"ppo": {"extra": {"n_steps": 5}}}, "unknown PPO argument 'n_steps'"),
        ({"ppo": {"extra": {"clip_range": -1}}}, "'clip_range' must be a number"),
        ({"ppo": {"batch_size": 0}}, "'batch_size' must be in [2, 1e+07]"),
        ({"ppo": {"n_steps": 0}}, "'n_steps' must be in [1"),
        ({"ppo": {"n_envs": 0}}, "'n_envs' must be in [1, 4096]"),
        ({"ppo": {"n_epochs": 10**12}}, "'n_epochs' must be in [1, 1000]"),
        ({"ppo": {"net_arch": [-3]}}, "'net_arch' must be at most 8 layers"),
        ({"ppo": {"net_arch": [200000, 200000]}}, "'net_arch' must be at most 8 layers"),
        ({"anneal_fraction": 1e308}, "'anneal_fraction' must be in [0, 1]"),
        ({"workers": -1}, "'workers' must be in [0, 256]"),
        ({"env_kwargs": {"max_steps": 10**400}}, "env_kwargs.max_steps must be a finite"),
    ],
)
def test_a_tampered_recipe_is_refused_on_resume(cli, small_run, tmp_path, change, fragment):
    run = _copy(small_run, tmp_path)
    marker = json.loads((run / "adversary_run.json").read_text())
    for key, value in change.items():
        if key == "ppo":
            marker["config"]["ppo"].update(value)
        else:
            marker["config"][key] = value
    (run / "adversary_run.json").write_text(json.dumps(marker))
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    _one_line(_resume(cli, run), fragment)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == files
