"""The `arena` command: the contract of its output and of its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import GOLDEN, assert_one_line_error, diverged_golden_copy


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_entry_point_version_and_envs_json():
    done = subprocess.run(
        [sys.executable, "-m", "arena.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("arena ")
    done = subprocess.run(
        [sys.executable, "-m", "arena.cli", "envs", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows["toy_pass_v0"]["seats"] == ["runner", "blocker"]
    assert rows["toy_catch_v0"]["needs"] == []


def test_evaluate_json_contract_and_determinism(cli, runner_zip, tmp_path):
    args = [
        "evaluate",
        "toy_pass_v0",
        "--policy",
        f"runner=sb3:{runner_zip}",
        "--policy",
        "blocker=random",
        "--stochastic",
        "--episodes",
        "18",
        "--seed",
        "0",
        "--json",
    ]
    first = cli(*args)
    assert first.code == 0, first.err
    payload = _last_json(first.out)
    assert set(payload) == {"env", "episodes", "seed", "seats"}
    seat = payload["seats"]["runner"]
    for key in ("wins", "losses", "ties", "win_rate", "win_rate_ci95", "mean_return", "std_return"):
        assert key in seat
    assert seat["wins"] + seat["losses"] + seat["ties"] == 18
    again = cli(*args)
    two = cli(*args, "--workers", "2")
    one = cli(*args, "--workers", "1")
    assert first.out == again.out == two.out == one.out
    runs = list((tmp_path / "runs" / "evaluate").iterdir())
    assert len(runs) == 4
    run = runs[0]
    assert run.name.startswith("toy_pass_v0__s0__")
    config = json.loads((run / "config.json").read_text())
    assert config["policies"]["runner"]["sha256"] and config["episodes"] == 18
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["versions"]["torch"].startswith("2.13.0")
    # the CPU's kind: the same seed can play other MuJoCo games on another kind
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    cpu = meta["cpu"]
    assert isinstance(cpu["model"], str) and cpu["model"]
    assert cpu["numpy_kernels"] == [t for t in __cpu_dispatch__ if __cpu_features__[t]]
    assert json.loads((run / "results.json").read_text())["seats"]["runner"] == seat


def test_default_opponent_and_table_output(cli):
    done = cli(
        "evaluate", "toy_pass_v0", "--policy", "runner=random", "--episodes", "2", "--no-save"
    )
    assert done.code == 0 and "blocker" in done.out and "win rate" in done.out


def test_record_then_replay_verify(cli, tmp_path, catch_zip):
    rec = tmp_path / "rec"
    done = cli(
        "evaluate",
        "toy_catch_v0",
        "--policy",
        f"player=sb3:{catch_zip}",
        "--episodes",
        "2",
        "--record",
        rec,
        "--no-save",
    )
    assert done.code == 0, done.err
    replay = cli("replay", rec, "--verify")
    assert replay.code == 0
    assert replay.out.count("verified: every observation and reward matches exactly") == 2
    listing = cli("replay", rec, "--episode", "1")
    assert listing.code == 0 and "episode 1: 210 steps" in listing.out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["evaluate", "toy_pas_v0", "--episodes", "1"], ["unknown env id", "toy_pass_v0"]),
        (
            ["evaluate", "toy_pass_v0", "--policy", "goalie=zero", "--episodes", "1"],
            ["unknown seat 'goalie'", "runner, blocker"],
        ),
        (["evaluate", "toy_pass_v0", "--policy", "runner", "--episodes", "1"], ["SEAT=SPEC"]),
        (
            ["evaluate", "toy_pass_v0", "--policy", "runner=banana", "--episodes", "1"],
            ["unknown policy kind 'banana'", "random, zero"],
        ),
        (
            ["evaluate", "toy_pass_v0", "--policy", "runner=sb3:/no/such.zip", "--episodes", "1"],
            ["policy file not found"],
        ),
        (
            ["evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "0"],
            ["positive integer"],
        ),
        (
            ["evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "-3"],
            ["positive integer"],
        ),
        (
            ["evaluate", "toy_pass_v0", "--policy", "blocker=zero", "--episodes", "1"],
            ["seat 'runner'", "needs a policy"],
        ),
        (
            [
                "evaluate",
                "toy_pass_v0",
                "--policy",
                "runner=zero",
                "--attack",
                "runner=warp:eps=1",
                "--episodes",
                "1",
            ],
            ["unknown attack 'warp'", "valid attacks"],
        ),
        (["replay", "/no/such/record"], ["no record at"]),
        (["run", "nope"], ["unknown experiment 'nope'"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(cli, tmp_path, args, fragments):
    result = cli(*args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_record_errors(cli, tmp_path):
    bad = tmp_path / "schema"
    shutil.copytree(GOLDEN, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["schema_version"] = 2
    (bad / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(
        cli("replay", bad, "--verify"), "schema_version 2 is newer than this arena supports"
    )
    trunc = tmp_path / "trunc"
    shutil.copytree(GOLDEN, trunc)
    npz = trunc / "episode_00001.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    assert_one_line_error(cli("replay", trunc, "--verify"), "corrupted or truncated")
    assert_one_line_error(cli("replay", GOLDEN, "--episode", "9"), "out of range", "0..1")
    unknown_env = tmp_path / "unknown_env"
    shutil.copytree(GOLDEN, unknown_env)
    manifest = json.loads((unknown_env / "manifest.json").read_text())
    manifest["env"] = "toy_gone_v9"
    (unknown_env / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(cli("replay", unknown_env, "--verify"), "unknown env id 'toy_gone_v9'")


def test_record_into_existing_directory_is_refused_before_playing(cli, tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "keep.txt").write_text("mine")
    result = cli(
        "evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "1", "--record", rec
    )
    assert_one_line_error(result, "exists and is not empty")
    assert [p.name for p in rec.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "runs").exists()


def test_replay_reports_divergence(cli, tmp_path):
    bad = diverged_golden_copy(tmp_path)
    result = cli("replay", bad, "--verify")
    assert result.code == 1
    assert "MISMATCH at step 4" in result.out and "re-simulation diverged" in result.err


# ---------------------------------------------------------------- experiments as plug-ins


def test_run_lists_the_experiments_registered_as_entry_points(cli):
    from importlib.metadata import entry_points

    done = cli("run", "list")
    assert done.code == 0, done.err
    names = {ep.name for ep in entry_points(group="arena.experiments")}
    assert {"gleave2020", "huang2017_pong", "zoo_fidelity"} <= names
    for line in done.out.strip().splitlines():
        name, summary = line.split(maxsplit=1)
        assert name in names and summary  # each with the first line of its docstring
    assert "Gleave et al. 2020" in done.out


def test_unknown_experiment_is_one_line_naming_the_valid_ones(cli):
    assert_one_line_error(
        cli("run", "chess"), "unknown experiment 'chess'", "gleave2020", "zoo_fidelity"
    )


def test_an_installed_package_adds_an_experiment(cli, tmp_path, monkeypatch):
    """A user's own package registers an experiment through the same entry-point group."""
    site = tmp_path / "site"
    (site / "my_study-0.1.dist-info").mkdir(parents=True)
    (site / "my_study-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-study\nVersion: 0.1\n"
    )
    (site / "my_study-0.1.dist-info" / "entry_points.txt").write_text(
        "[arena.experiments]\nmy_study = my_study:main\n"
    )
    (site / "my_study.py").write_text(
        '"""My study: a plug-in experiment."""\n'
        "def main(argv):\n"
        "    print('my study got', argv)\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(site))
    listed = cli("run", "list")
    assert "my_study" in listed.out and "My study: a plug-in experiment." in listed.out
    done = cli("run", "my_study", "--flag", "x")
    assert done.code == 3 and "my study got ['--flag', 'x']" in done.out


def test_the_library_reads_experiments_only_through_entry_points():
    code = (
        "import sys, arena.cli, arena.cli.parser\n"
        "from arena.cli.run import experiments\n"
        "assert 'gleave2020' in experiments()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'experiments')\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_each_seat_acts_as_scored_unless_told(cli, tmp_path):
    """Zoo policies sample by default, every other policy acts greedily; --sample and
    --greedy choose per seat, --stochastic samples all; the record and the run say so."""
    from arena.players import acting

    zoo = "masked:zoo:you-shall-not-pass/agent2_parameters-v1.pkl"
    assert acting({"runner": zoo, "blocker": "run:x"}) == {"runner": False, "blocker": True}
    assert acting({"runner": zoo, "blocker": "random"}, greedy=["runner"]) == {
        "runner": True,
        "blocker": True,
    }
    base = ["evaluate", "toy_pass_v0", "--policy", "runner=random", "--episodes", "2"]
    done = cli(*base, "--sample", "runner", "--record", tmp_path / "rec", "--no-save")
    assert done.code == 0, done.err
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["deterministic"] == {"runner": False, "blocker": True}
    for flags, message in (
        (["--sample", "goalie"], "--sample goalie: no such seat; seats: runner, blocker"),
        (["--sample", "runner", "--greedy", "runner"], "both --sample and --greedy"),
        (["--stochastic", "--greedy", "runner"], "--stochastic samples every seat"),
    ):
        done = cli(*base, *flags, "--no-save")
        assert done.code == 2 and message in done.err and done.err.count("\n") == 1, done.err
