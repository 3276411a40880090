"""Shared fixtures: in-process CLI runner, shipped toy victims."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import arena  # noqa: F401  (the arena registers the run: and masked: policy kinds)

torch.set_num_threads(1)
os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "arena" / "assets"
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``arena ARGS`` in-process from a temporary working directory."""
    from arena.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> CliResult:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's --version / usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def runner_zip() -> Path:
    return ASSETS / "toy_pass_v0__runner.zip"


@pytest.fixture(scope="session")
def catch_zip() -> Path:
    return ASSETS / "toy_catch_v0__player.zip"


def seat_policy(env_id: str, seat: str, spec: str):
    """``spec`` resolved for ``seat`` of ``env_id``, as a match resolves it."""
    import envs
    from agents import specs

    game = envs.make(env_id)
    return specs.resolve(
        spec, game.observation_space(seat), game.action_space(seat), env_id=env_id, seat=seat
    )


def assert_one_line_error(result, *fragments):
    """``result`` (the ``cli`` fixture's) failed with one ``arena: error:`` line, exit 2,
    no traceback, naming every fragment."""
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("arena: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.err


GOLDEN = Path(__file__).parent / "data" / "golden_toy_pass"
"""A small record of toy_pass_v0 (two random players, 2 episodes) that guards the format."""


def diverged_golden_copy(tmp_path: Path) -> Path:
    """A copy of the golden record whose 4th runner action was changed: it no longer
    re-simulates to the recorded observations."""
    import shutil

    import numpy as np

    bad = tmp_path / "diverged"
    shutil.copytree(GOLDEN, bad)
    path = bad / "episode_00000.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["action.runner"][3] += 0.5
    np.savez_compressed(path, **arrays)
    return bad


def edit_npz(rec: Path, position: int, edit) -> None:
    """Tamper with one episode file's arrays, as anyone with the file could."""
    import numpy as np

    path = rec / f"episode_{position:05d}.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    np.savez_compressed(path, **arrays)


def edit_manifest(rec: Path, edit) -> None:
    """Tamper with ``manifest.json`` as JSON, as anyone with the file could."""
    import json

    path = rec / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def scorecard_json(
    victim: str,
    *,
    clean_score: float = 1.0,
    worst: tuple[float, ...] = (0.6, 0.3),
    eps: tuple[str, ...] = ("0.05", "0.1"),
    **changes,
) -> dict:
    """A ``scorecard.json`` of toy_pass_v0's runner (one ``pgd`` row per ε), its area as
    the arena computes it from its figures (NaN where it cannot), then ``changes``."""
    import math

    from arena.artifacts.scorecard import FamilyRow, Scorecard, Verdict
    from arena.scorecard import area

    rows = tuple(FamilyRow("pgd", e, s, (0.0, 1.0)) for e, s in zip(eps, worst, strict=True))
    try:
        normalised = area([float(e) for e in eps], clean_score, list(worst))
    except ValueError:
        normalised = math.nan
    card = Scorecard(
        env="toy_pass_v0",
        victim_seat="runner",
        victim=victim,
        metric="win rate",
        units="L∞ in standard deviations",
        budget="quick",
        episodes=3,
        seed=0,
        clean=FamilyRow("clean", "0", clean_score, (0.0, 1.0)),
        rows=rows,
        worst=tuple(Verdict(r.eps, r.family, r.score, r.ci95) for r in rows),
        normalised_area=normalised,
    ).to_json()
    card.update(changes)
    return card


def put_scorecard(tmp_path: Path, name: str, card=None, raw: str | bytes | None = None) -> Path:
    """``tmp_path/name/scorecard.json`` holding ``card`` as JSON, or ``raw`` as it is."""
    import json

    out = tmp_path / name
    out.mkdir()
    path = out / "scorecard.json"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw if raw is not None else json.dumps(card))
    return out
