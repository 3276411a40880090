"""Bad input, anywhere: one line ``arena: error: ...`` naming the valid choices or
range, exit status 2, and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error

from agents.numbers import SEED_MAX, parse_number

ROOT = Path(__file__).resolve().parent.parent


def _tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- the one parser


@pytest.mark.parametrize(
    ("text", "kwargs", "fragments"),
    [
        ("nan", {"low": 0.0, "high": 1.0}, ["eps=nan is not a finite number", "0 <= eps <= 1"]),
        ("inf", {"low": 0.0, "high": 1.0}, ["not a finite number", "0 <= eps <= 1"]),
        ("-inf", {"low": 0.0}, ["not a finite number", "eps >= 0"]),
        ("1e400", {"low": 0.0}, ["not a finite number"]),
        ("-0.5", {"low": 0.0, "high": 1.0}, ["eps=-0.5 is out of range", "0 <= eps <= 1"]),
        ("abc", {"low": 0.0, "high": 1.0}, ["eps must be a number (0 <= eps <= 1)", "'abc'"]),
        ("1/0", {"low": 0.0}, ["eps must be a number"]),
        ("2.5", {"low": 1, "high": 10, "integer": True}, ["a positive integer, at most 10"]),
        ("0", {"low": 1, "high": 10, "integer": True}, ["eps=0 is out of range"]),
        ("nan", {"low": 0, "integer": True}, ["not a finite number", "a non-negative integer"]),
        (True, {"low": 0.0}, ["must be a number"]),
        ([1], {"low": 0, "integer": True}, ["must be a non-negative integer", "[1]"]),
    ],
)
def test_the_number_parser_refuses_and_names_the_range(text, kwargs, fragments):
    with pytest.raises(ValueError) as info:
        parse_number(text, "eps", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_number_parser_accepts_fractions_and_whole_floats():
    assert parse_number("1/255", "eps", low=0.0, high=1.0) == pytest.approx(1 / 255)
    assert parse_number(" 2e-3 ", "eps") == 0.002
    assert parse_number("3", "n", integer=True) == 3
    assert parse_number(3.0, "n", integer=True) == 3
    assert parse_number(str(SEED_MAX), "seed", low=0, high=SEED_MAX, integer=True) == SEED_MAX


# ---------------------------------------------------------------- one error type


def test_every_arena_error_is_an_arena_error_and_caught_in_one_tuple():
    from agents.attacks import AttackSpecError
    from agents.safe_pickle import UnsafePickleError
    from agents.sb3 import PolicyFileError
    from agents.specs import PolicySpecError
    from agents.zoo import ZooError
    from arena import cli
    from arena.errors import USER_ERRORS, ArenaError, UsageError
    from arena.match import MatchError
    from arena.report import ReportError
    from arena.training import TrainingError
    from arena.video import VideoError
    from envs import EnvError
    from experiments import ExperimentError

    for error in (MatchError, TrainingError, ReportError, VideoError, ExperimentError, UsageError):
        assert issubclass(error, ArenaError) and issubclass(error, ValueError)
    leaves = (EnvError, PolicySpecError, PolicyFileError, AttackSpecError, ZooError)
    assert set(USER_ERRORS) == {ArenaError, UnsafePickleError, *leaves}
    assert not hasattr(cli, "_user_errors") and not hasattr(cli, "_ArgError")


def test_leaf_packages_import_nothing_of_the_arena():
    code = (
        "import sys, envs, agents, agents.specs, agents.attacks, agents.numbers, agents.zoo, "
        "agents.wrappers, agents.sb3, agents.atari_cnn, agents.mixture\n"
        "agents.attacks.available(); agents.specs.kinds()\n"
        "bad = sorted(m for m in sys.modules if m == 'arena' or m.startswith('arena.'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- seeds


def test_negative_seed_in_evaluate(cli, tmp_path):
    result = cli(
        "evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "1", "--seed", "-1"
    )
    assert_one_line_error(result, "--seed", "seed=-1 is out of range", "non-negative integer")
    assert not (tmp_path / "runs").exists()


def test_negative_seed_in_train_adversary_leaves_nothing(cli, tmp_path, runner_zip):
    out = tmp_path / "adv"
    args = ["train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}"]
    result = cli(*args, "--timesteps", "100", "--out", out, "--seed", "-1")
    assert_one_line_error(result, "seed=-1 is out of range", f"at most {SEED_MAX:,}")
    assert not out.exists()
    # and --resume finds nothing to resume (before, a half-made run crashed on it)
    again = cli(*args, "--timesteps", "100", "--out", out, "--resume")
    assert_one_line_error(again, "not an adversary training run")
    assert not out.exists()


def test_negative_seed_in_the_library_too(tmp_path, runner_zip):
    from arena.match import MatchError, run_match
    from arena.training import TrainingError, train_adversary

    with pytest.raises(MatchError, match="seed=-1 is out of range"):
        run_match("toy_pass_v0", {"runner": "zero"}, n_episodes=1, seed=-1)
    with pytest.raises(TrainingError, match="seed=-1 is out of range"):
        victims = {"runner": f"sb3:{runner_zip}"}
        train_adversary("toy_pass_v0", victims, timesteps=10, out=tmp_path / "a", seed=-1)
    assert not (tmp_path / "a").exists()


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_nothing(cli, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    for out in (tmp_path / "new", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        result = cli(
            "train-adversary",
            "toy_pass_v0",
            "--victim",
            f"runner=sb3:{bad}",
            "--timesteps",
            "100",
            "--out",
            out,
        )
        assert_one_line_error(result, "bad.zip")
        if out.name == "empty":
            assert out.is_dir() and not any(out.iterdir())
        else:
            assert not out.exists()


# ---------------------------------------------------------------- attack specs


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("pgd:eps=0.1,steps=inf", ["pgd: steps=inf is not a finite number", "at most 1000"]),
        ("pgd:eps=0.1,steps=1001", ["steps=1001 is out of range", "at most 1000"]),
        ("patch:size=nan", ["patch: size=nan is not a finite number", "a positive integer"]),
        ("patch:size=inf", ["size=inf is not a finite number"]),
        ("pgd:eps=0.1,step_size=nan", ["step_size=nan is not a finite number", "step_size >= 0"]),
        ("timed:eps=0.1,beta=nan", ["timed: beta=nan is not a finite number", "0 <= beta <= 1"]),
        ("fgsm:eps=nan", ["eps=nan is not a finite number", "0 <= eps <= 1"]),
        ("fgsm:eps=inf", ["eps=inf is not a finite number", "0 <= eps <= 1"]),
        ("fgsm:eps=-inf", ["eps=-inf is not a finite number"]),
        ("noise:eps=-0.1", ["eps=-0.1 is out of range", "0 <= eps <= 1"]),
        ("pgd:eps=nan/255", ["eps must be a number"]),
        ("universal:eps=0.1,fit_steps=nan", ["fit_steps=nan is not a finite number"]),
        ("pgd:eps=0.1,target=1e9", ["target=1,000,000,000 is out of range", "at most 100,000"]),
    ],
)
def test_bad_attack_numbers(cli, tmp_path, catch_zip, spec, fragments):
    result = cli(
        "evaluate",
        "toy_catch_v0",
        "--policy",
        f"player=sb3:{catch_zip}",
        "--attack",
        f"player={spec}",
        "--episodes",
        "1",
    )
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_attack_numbers_from_text_still_work():
    from agents.attacks import parse_attack

    pgd = parse_attack("pgd:eps=2/255,steps=3,step_size=1/255,target=1")
    assert pgd.budget.eps == pytest.approx(2 / 255)
    assert (pgd.steps, pgd.target) == (3, 1)
    assert pgd.step_size == pytest.approx(1 / 255)
    assert parse_attack("patch:size=4,row=0,col=0").size == 4


# ---------------------------------------------------------------- mixture weights


@pytest.mark.parametrize(
    ("mix", "fragments"),
    [
        ("mix:nan*random|1*zero", ["weight=nan is not a finite number", "0 <= weight"]),
        ("mix:inf*random|1*zero", ["weight=inf is not a finite number"]),
        ("mix:-1*random|1*zero", ["weight=-1 is out of range", "0 <= weight"]),
        ("mix:0*random|0*zero", ["are all 0", "weight > 0"]),
        ("mix:x*random|1*zero", ["weight must be a number"]),
    ],
)
def test_bad_mixture_weights(cli, tmp_path, mix, fragments):
    result = cli(
        "evaluate", "toy_pass_v0", "--policy", "runner=zero", "--policy", f"blocker={mix}",
        "--episodes", "1",
    )  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--episodes", "1000000000000"], ["--episodes", "at most 1,000,000"]),
        (["--episodes", "nan"], ["--episodes", "not a finite number"]),
        (["--episodes", "2", "--workers", str(4 * (os.cpu_count() or 1) + 1)], ["at most"]),
        (["--episodes", "2", "--workers", "0"], ["--workers", "a positive integer"]),
        (["--episodes", "2", "--seed", str(SEED_MAX + 1)], ["--seed", "at most"]),
    ],
)
def test_evaluate_limits(cli, tmp_path, args, fragments):
    result = cli("evaluate", "toy_pass_v0", "--policy", "runner=zero", *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--timesteps", "0"], ["--timesteps", "a positive integer, at most 10,000,000,000"]),
        (["--timesteps", "10000000001"], ["--timesteps", "at most 10,000,000,000"]),
        (["--timesteps", "inf"], ["--timesteps", "not a finite number"]),
        (["--timesteps", "9", "--workers", "-1"], ["--workers", "a non-negative integer"]),
        (["--timesteps", "9", "--envs", "0"], ["--envs", "a positive integer"]),
        (["--timesteps", "9", "--shaping", "nan"], ["--shaping", "not a finite number"]),
    ],
)
def test_train_adversary_limits(cli, tmp_path, runner_zip, args, fragments):
    out = tmp_path / "adv"
    result = cli(
        "train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}", "--out", out,
        *args,
    )  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_other_number_flags(cli, tmp_path, runner_zip):
    from conftest import GOLDEN

    video = tmp_path / "v.gif"
    assert_one_line_error(cli("replay", GOLDEN, "--video", video, "--fps", "nan"), "--fps")
    assert_one_line_error(cli("replay", GOLDEN, "--video", video, "--fps", "0"), "0 < fps <= 1000")
    assert_one_line_error(cli("replay", GOLDEN, "--episode", "-1"), "--episode")
    result = cli(
        "finetune-victim", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
        "--adversary", "zero", "--timesteps", "10", "--out", tmp_path / "ft",
        "--adversary-share", "nan",
    )  # fmt: skip
    assert_one_line_error(result, "--adversary-share", "0 <= adversary-share <= 1")
    assert not video.exists() and not (tmp_path / "ft").exists()


def test_episode_jobs_are_made_lazily(monkeypatch):
    """A million episodes are 125,000 chunks: they are made one at a time, as played,
    not as one list up front."""
    from arena import match

    made = []
    real_job = match._Job

    def job(*args, **kwargs):
        made.append(1)
        return real_job(*args, **kwargs)

    class Stop(Exception):
        pass

    def play(job):
        raise Stop

    monkeypatch.setattr(match, "_Job", job)
    monkeypatch.setattr(match, "play_chunk", play)
    with pytest.raises(Stop):
        match.run_match("toy_pass_v0", {"runner": "zero"}, n_episodes=1_000_000, seed=0)
    assert len(made) == 1


def test_results_with_a_window_of_chunks_equal_those_in_one_process():
    from arena.match import CHUNK, run_match

    episodes = 5 * CHUNK + 3  # more chunks than two per worker in flight
    kwargs = {"n_episodes": episodes, "seed": 3, "deterministic": False}
    one, _ = run_match("toy_pass_v0", {"runner": "random", "blocker": "random"}, **kwargs)
    two, _ = run_match(
        "toy_pass_v0", {"runner": "random", "blocker": "random"}, workers=2, **kwargs
    )
    assert one.to_json() == two.to_json()
    assert [o.index for o in two.outcomes] == list(range(episodes))


# ---------------------------------------------------------------- report


def _evaluate_run(cli, tmp_path: Path) -> Path:
    done = cli("evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "1")
    assert done.code == 0, done.err
    (run,) = (tmp_path / "runs" / "evaluate").iterdir()
    return run


@pytest.mark.parametrize(
    ("field", "value", "fragments"),
    [
        ("seed", "abc", ["config.json", "seed must be a non-negative integer", "'abc'"]),
        ("seed", [1], ["config.json", "seed must be a non-negative integer", "[1]"]),
        ("seed", -2, ["seed=-2 is out of range"]),
        ("episodes", "many", ["episodes must be a positive integer"]),
        ("env", 3, ["'env' must be text"]),
        ("policies", ["zero"], ["'policies' must be an object"]),
        ("attacks", "fgsm", ["'attacks' must be an object"]),
        ("env_kwargs", [1], ["'env_kwargs' must be an object"]),
        ("deterministic", "yes", ["'deterministic' must be true or false"]),
    ],
)
def test_report_on_a_config_with_a_wrong_typed_field(cli, tmp_path, field, value, fragments):
    run = _evaluate_run(cli, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config[field] = value
    (run / "config.json").write_text(json.dumps(config))
    before = _tree(tmp_path)
    assert_one_line_error(cli("report", run), *fragments)
    assert _tree(tmp_path) == before
    assert not (run / "report").exists()


# ---------------------------------------------------------------- --resume


def _marker(runner_zip) -> dict:
    return {
        "env": "toy_pass_v0",
        "victims": {"runner": f"sb3:{runner_zip}"},
        "seed": 0,
        "config": {"ppo": {}},
    }


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("{not json", ["adversary_run.json is not valid JSON"]),
        ("[1, 2]", ["must hold a JSON object, not a list"]),
        ("{}", ["missing key 'env'", "valid keys: env, victims"]),
        ({"bogus": 1}, ["unknown key 'bogus'", "valid keys: env, victims"]),
        ({"seed": "abc"}, ["seed must be a non-negative integer", "'abc'"]),
        ({"seed": -1}, ["seed=-1 is out of range"]),
        ({"victims": ["runner"]}, ["'victims' must be an object, not a list"]),
        ({"config": {"ppo": {"n_envs": "8"}}}, ["config.ppo: 'n_envs' must be an integer"]),
        ({"config": {"ppo": {}, "shaping": "nan"}}, ["config.shaping=nan is not a finite"]),
        ({"config": {"ppo": {}, "bogus": 1}}, ["config: unknown key 'bogus'", "valid keys: ppo"]),
    ],
)
def test_resume_refuses_a_bad_run_file_and_changes_nothing(
    cli, tmp_path, runner_zip, content, fragments
):
    out = tmp_path / "adv"
    out.mkdir()
    if isinstance(content, dict):
        content = json.dumps({**_marker(runner_zip), **content})
    (out / "adversary_run.json").write_text(content)
    (out / "progress.csv").write_text("timesteps,win_rate,episodes,steps_per_s,shaping\n")
    before = _tree(out)
    result = cli(
        "train-adversary", "toy_pass_v0", "--victim", f"runner=sb3:{runner_zip}",
        "--timesteps", "100", "--out", out, "--resume",
    )  # fmt: skip
    assert_one_line_error(result, *fragments)
    assert _tree(out) == before


def test_resume_drops_progress_rows_logged_after_the_checkpoint(tmp_path):
    from arena.training import PROGRESS_HEADER, trim_progress

    path = tmp_path / "progress.csv"
    rows = [
        "2048,0.1000,3,900.0,0.0000",
        "4096,0.2000,6,910.0,0.0000",
        "6144,0.3000,9,905.0,0.0000",  # logged after the checkpoint at 5000: replayed
        "8192,0.35",  # cut short by the kill
    ]
    path.write_text(PROGRESS_HEADER + "\n".join(rows) + "\n")
    trim_progress(path, 5000)
    assert path.read_text() == PROGRESS_HEADER + "\n".join(rows[:2]) + "\n"
    trim_progress(path, 4096)  # a row at the checkpoint itself was logged from its state
    assert path.read_text().splitlines()[-1] == rows[1]
    trim_progress(path, 0)
    assert path.read_text() == PROGRESS_HEADER


# ---------------------------------------------------------------- experiments


@pytest.mark.parametrize(
    ("adversary", "fragments"),
    [
        ("toy_pass", ["--adversary expects GAME=SPEC", "'toy_pass'"]),
        ("=zero", ["--adversary expects GAME=SPEC"]),
        ("pong=zero", ["unknown game 'pong'", "valid: toy_pass, you_shall_not_pass"]),
        ("you_shall_not_pass=zero", ["not among the games run", "toy_pass"]),
        ("toy_pass=banana", ["unknown policy kind 'banana'", "valid forms"]),
    ],
)
def test_gleave2020_bad_adversary(cli, tmp_path, adversary, fragments):
    result = cli("run", "gleave2020", "--quick", "--adversary", adversary)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_gleave2020_bad_numbers_and_variant_runs(cli, tmp_path):
    assert_one_line_error(cli("run", "gleave2020", "--quick", "--timesteps", "0"), "--timesteps")
    assert_one_line_error(cli("run", "gleave2020", "--quick", "--episodes", "x"), "--episodes")
    assert_one_line_error(
        cli("run", "gleave2020", "--quick", "--reward-study", "--variant-run", "sparse"),
        "--variant-run expects LABEL=DIR",
    )
    assert_one_line_error(
        cli("run", "gleave2020", "--quick", "--reward-study", "--variant-run", f"a={tmp_path}"),
        "not a training run",
    )
    assert not (tmp_path / "runs").exists()


def test_experiment_usage_errors_are_one_line(cli):
    assert_one_line_error(cli("run", "huang2017_pong", "--episodes", "abc"), "--episodes")
    assert_one_line_error(cli("run", "huang2017_pong", "--eps", "nan"), "--eps", "0 <= eps <= 1")
    assert_one_line_error(cli("run", "zoo_fidelity", "--episodes", "0"), "--episodes")
    assert_one_line_error(
        cli("run", "zoo_fidelity", "--env-kwargs", "a=nan", "--no-save"), "--env-kwargs a=nan"
    )


def test_experiment_module_run_directly_prints_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "experiments.gleave2020", "--adversary", "oops"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "arena: error: --adversary expects GAME=SPEC, got 'oops'"


# ---------------------------------------------------------------- outputs checked first


def test_bad_runs_root_is_refused_before_anything_is_written(cli, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("mine")
    rec = tmp_path / "rec"
    result = cli(
        "evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "2",
        "--record", rec, "--runs", not_a_dir,
    )  # fmt: skip
    assert_one_line_error(result, f"--runs {not_a_dir}: exists and is not a directory")
    assert not rec.exists() and not_a_dir.read_text() == "mine"
    result = cli("evaluate", "toy_pass_v0", "--policy", "runner=zero", "--episodes", "2",
                 "--record", not_a_dir / "rec")  # fmt: skip
    assert_one_line_error(result, f"{not_a_dir} is not a directory")
    assert not (tmp_path / "runs").exists()


def test_huang2017_pong_checks_runs_before_playing(cli, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("mine")
    result = cli("run", "huang2017_pong", "--quick", "--runs", not_a_dir / "x")
    assert_one_line_error(result, f"{not_a_dir} is not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
