"""Red-team tests of three new features, as an attacker who controls the files would try
them:

1. the ``learned:DIR`` attack (a run of ``arena train-perturber``): director files with
   gadget pickles, markers with wrong types or values out of range, links leading out
   of DIR, missing or corrupted files, a run for another game or seat, and
   ``train-perturber --resume`` of a run whose checkpoint is bad;
2. ``arena scorecard --compare DIR ...``: hostile ``scorecard.json`` files, and
   ``arena scorecard`` options that make no sense;
3. ``arena train-perturber`` bad input.

Every hostile input must give one line ``arena: error: ...`` with exit status 2 (from
the API, an error of ``arena.errors.USER_ERRORS``): never a traceback, never any code of
a file run (gadgets try to write a canary file), nothing lost or half-written.

The tests whose docstrings begin "Was a bug" pin what this red-team pass found (each
failed before its fix); the others are the proof that an attack is defended.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ASSETS, assert_one_line_error, put_scorecard, scorecard_json

from agents.attacks import parse_attack
from arena.errors import USER_ERRORS

RUNNER_ZIP = ASSETS / "toy_pass_v0__runner.zip"
CATCH_ZIP = ASSETS / "toy_catch_v0__player.zip"
RUNNER = f"sb3:{RUNNER_ZIP}"
RECIPE = ("--victim", f"runner={RUNNER}", "--opponent", "blocker=zero", "--eps", "0.2",
          "--steps", "2", "--envs", "2", "--seed", "0")  # fmt: skip
"""The command line of the ``director`` fixture's run (for ``--resume``)."""


@pytest.fixture(scope="module")
def director(tmp_path_factory) -> Path:
    """A small train-perturber run against toy_pass_v0's runner: its final director
    and a checkpoint."""
    from arena.perturber import train_perturber

    out = tmp_path_factory.mktemp("learned") / "pert"
    train_perturber("toy_pass_v0", "runner", RUNNER, {"blocker": "zero"}, eps=0.2, steps=2,
                    timesteps=64, out=out, n_envs=2)  # fmt: skip
    return out


def _copy(director: Path, tmp_path: Path, name: str = "run") -> Path:
    out = tmp_path / name
    shutil.copytree(director, out, symlinks=True)
    return out


def _files(directory: Path) -> dict[str, bytes]:
    """Every regular file of a run and its bytes (what a refusal must leave alone)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _evaluate(cli, directory: Path | str, env: str = "toy_pass_v0", seat: str = "runner"):
    policies = {
        "toy_pass_v0": ("--policy", f"runner={RUNNER}", "--policy", "blocker=zero"),
        "toy_catch_v0": ("--policy", f"player=sb3:{CATCH_ZIP}"),
    }[env]
    return cli("evaluate", env, *policies, "--attack", f"{seat}=learned:{directory}",
               "--episodes", "1", "--no-save")  # fmt: skip


def assert_refused(cli, directory: Path, *fragments: str) -> None:
    """``learned:DIR`` refused by the API and, as one line, by the CLI."""
    with pytest.raises(USER_ERRORS) as caught:
        parse_attack(f"learned:{directory}")
    assert len(str(caught.value).splitlines()) == 1
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert_one_line_error(_evaluate(cli, directory), *fragments)


# ======================================================= 1. gadgets in the director's files


class Gadget:
    """Pickles as ``fn(arg)``: what an attacker puts in a file to run code on load."""

    def __init__(self, fn: Any, arg: Any):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


class Call:
    """Pickles as ``fn()``: the call of a ``functools.partial`` built by the pickle."""

    def __init__(self, fn: Any):
        self.fn = fn

    def __reduce__(self):
        return (self.fn, ())


_CANARY = Path("/tmp") / f"hostile_learned_scorecard_canary_{os.getpid()}"


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _blobs(canary: Path) -> dict[str, bytes]:
    """Pickles that would run code (write ``canary``) if unpickled."""
    touch = f"touch {canary}"
    write = f"open({str(canary)!r}, 'w').write('ran')"
    return {
        "os_system": pickle.dumps(Gadget(os.system, touch), protocol=4),
        "builtins_eval": pickle.dumps(Gadget(eval, write), protocol=4),
        "partial_chain": pickle.dumps(Call(functools.partial(os.system, touch)), protocol=4),
        "nested_in_dict": pickle.dumps({"log_std_init": Gadget(exec, write)}, protocol=4),
        # torch.load(weights_only=False) of a second pickle
        "torch_load_from_bytes": pickle.dumps(
            Gadget(torch.storage._load_from_bytes, _torch_bytes(Gadget(exec, write))),
            protocol=4,
        ),
        # numpy's exec helper, by name (GLOBAL + REDUCE)
        "numpy_runstring": b"\x80\x02cnumpy.testing._private.utils\nrunstring\n"
        + pickle.dumps(write, protocol=2)[2:-1]
        + b"}\x86R.",
        "py2_builtin_eval": b"\x80\x02c__builtin__\neval\n"
        + pickle.dumps(write, protocol=2)[2:-1]
        + b"\x85R.",
    }


def _with_members(src: Path, dst: Path, data_edit: Any = None, **members: bytes) -> None:
    """``src`` (an SB3 zip) rewritten to ``dst`` with members replaced or added and its
    ``data`` JSON edited."""
    with zipfile.ZipFile(src) as z:
        content = {n: z.read(n) for n in z.namelist()}
    if data_edit is not None:
        raw = json.loads(content["data"])
        data_edit(raw)
        content["data"] = json.dumps(raw).encode()
    content.update(members)
    tmp = dst.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        for name, blob in content.items():
            z.writestr(name, blob)
    tmp.replace(dst)


def _serialized(key: str, blob: bytes):
    def edit(raw: dict[str, Any]) -> None:
        raw[key] = {":type:": "<class 'dict'>", ":serialized:": base64.b64encode(blob).decode()}

    return edit


def test_the_gadgets_are_live_under_plain_pickle(tmp_path):
    """The gadgets below run code when unpickled the ordinary way (so their refusal
    below means something): the eval, the partial chain, the torch one."""
    canary = tmp_path / "canary"
    blobs = _blobs(canary)
    for name in ("builtins_eval", "partial_chain", "torch_load_from_bytes"):
        pickle.loads(blobs[name])
        assert canary.exists(), name
        canary.unlink()


_PLACES = ("policy_kwargs", "observation_space", "action_space", "policy_class")


@pytest.mark.parametrize("place", _PLACES)
@pytest.mark.parametrize("gadget", sorted(_blobs(_CANARY)))
def test_gadgets_in_the_director_run_nothing(director, tmp_path, cli, place, gadget):
    _CANARY.unlink(missing_ok=True)
    try:
        run = _copy(director, tmp_path)
        blob = _blobs(_CANARY)[gadget]
        _with_members(director / "policy.zip", run / "policy.zip", _serialized(place, blob))
        assert_refused(cli, run, "policy.zip")
        assert not _CANARY.exists(), "the file's code ran"
    finally:
        _CANARY.unlink(missing_ok=True)


@pytest.mark.parametrize("member", ["policy.pth", "pytorch_variables.pth"])
@pytest.mark.parametrize("gadget", ["os_system", "torch_load_from_bytes"])
def test_gadgets_in_the_director_weights_run_nothing(director, tmp_path, cli, member, gadget):
    _CANARY.unlink(missing_ok=True)
    try:
        run = _copy(director, tmp_path)
        touch, write = f"touch {_CANARY}", f"open({str(_CANARY)!r}, 'w').write('ran')"
        payload = (
            Gadget(os.system, touch)
            if gadget == "os_system"
            else Gadget(torch.storage._load_from_bytes, _torch_bytes(Gadget(exec, write)))
        )
        _with_members(
            director / "policy.zip", run / "policy.zip", **{member: _torch_bytes(payload)}
        )
        if member == "policy.pth":
            assert_refused(cli, run, "policy.zip")
        else:  # never read: the director loads, and nothing ran
            parse_attack(f"learned:{run}")
        assert not _CANARY.exists(), "the file's code ran"
    finally:
        _CANARY.unlink(missing_ok=True)


def test_a_zip_member_climbing_out_of_the_run_writes_nothing(director, tmp_path):
    """Members are read by name, never extracted: ``../../x`` inside the zip is inert."""
    run = _copy(director, tmp_path / "deep" / "er")
    outside = tmp_path / "slipped"
    _with_members(director / "policy.zip", run / "policy.zip",
                  **{"../../../slipped": b"x", "/tmp/slipped_abs": b"x"})  # fmt: skip
    parse_attack(f"learned:{run}")
    assert not outside.exists() and not Path("/tmp/slipped_abs").exists()


def test_a_gadget_checkpoint_on_resume_runs_nothing_and_changes_nothing(director, tmp_path, cli):
    """Was a bug (half): the gadget never ran, but the refusal came after the resume had
    rewritten ``perturber_run.json``."""
    _CANARY.unlink(missing_ok=True)
    try:
        run = _copy(director, tmp_path)
        write = f"open({str(_CANARY)!r}, 'w').write('ran')"
        _with_members(director / "checkpoint.zip", run / "checkpoint.zip",
                      **{"policy.optimizer.pth": _torch_bytes(Gadget(exec, write))})  # fmt: skip
        before = _files(run)
        result = cli("train-perturber", "toy_pass_v0", *RECIPE, "--timesteps", "4096",
                     "--resume", "--out", run)  # fmt: skip
        assert_one_line_error(result, "checkpoint.zip")
        assert not _CANARY.exists(), "the file's code ran"
        assert _files(run) == before
    finally:
        _CANARY.unlink(missing_ok=True)


# ===================================================== 1. the marker, the files, the game


def _marker_edit(**changes: Any):
    def edit(run: Path) -> None:
        path = run / "perturber_run.json"
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))

    return edit


def _marker_text(text: str):
    def edit(run: Path) -> None:
        (run / "perturber_run.json").write_text(text)

    return edit


_MARKERS = {
    "eps_nan": (_marker_edit(eps=math.nan), "eps=nan is not a finite number; valid: 0 <= eps"),
    "eps_inf": (_marker_edit(eps=math.inf), "not a finite number"),
    "eps_negative": (_marker_edit(eps=-0.1), "valid: 0 <= eps <= 1"),
    "eps_above_the_budget": (_marker_edit(eps=2), "valid: 0 <= eps <= 1"),
    "eps_bool": (_marker_edit(eps=True), "eps must be a number"),
    "eps_list": (_marker_edit(eps=[0.1]), "eps must be a number"),
    "steps_zero": (_marker_edit(steps=0), "steps=0 is out of range"),
    "steps_huge": (_marker_edit(steps=10**30), "at most 1000"),
    "steps_fraction": (_marker_edit(steps=2.5), "steps must be a positive integer"),
    "seed_negative": (_marker_edit(seed=-1), "seed=-1 is out of range"),
    "norm_unknown": (_marker_edit(norm="l0"), "norm must be one of linf, l2"),
    "env_unknown": (_marker_edit(env="nope_v0"), "unknown env id 'nope_v0'; valid ids"),
    "schema_2": (_marker_edit(schema_version=2), "schema_version 2 is not 1"),
    "extra_key": (_marker_edit(path="../../etc"), "must hold exactly the keys"),
    "opponents_not_text": (_marker_edit(opponents={"blocker": 3}), "opponents map seats"),
    "not_an_object": (_marker_text("[1, 2]"), "must hold exactly the keys"),
    "deeply_nested": (_marker_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "not_utf8": (lambda run: (run / "perturber_run.json").write_bytes(b"\xff\xfe{}"), "utf-8"),
}


@pytest.mark.parametrize("case", sorted(_MARKERS))
def test_hostile_markers_are_one_line(director, tmp_path, cli, case):
    edit, fragment = _MARKERS[case]
    run = _copy(director, tmp_path)
    edit(run)
    assert_refused(cli, run, fragment)


def test_an_integer_of_5000_digits_in_the_marker_is_one_line(director, tmp_path, cli):
    """Was a bug: ``json.loads`` raises a bare ``ValueError`` for an integer of over
    4,300 digits, which the marker reader did not catch: a traceback."""
    run = _copy(director, tmp_path)
    text = (run / "perturber_run.json").read_text()
    (run / "perturber_run.json").write_text(text.replace('"seed": 0', '"seed": ' + "9" * 5000))
    assert_refused(cli, run, "perturber_run.json is not valid JSON")


def test_a_boolean_schema_version_is_refused(director, tmp_path, cli):
    """Was a bug: ``true == 1`` in Python, so ``"schema_version": true`` passed."""
    run = _copy(director, tmp_path)
    _marker_edit(schema_version=True)(run)
    assert_refused(cli, run, "schema_version True is not 1")


def test_a_seat_the_game_lacks_is_refused_naming_the_seats(director, tmp_path, cli):
    """Was a bug: the toy games answer any seat name with a space, so a marker naming a
    seat the game lacks loaded."""
    run = _copy(director, tmp_path)
    _marker_edit(seat="nobody")(run)
    assert_refused(cli, run, "unknown seat 'nobody' for toy_pass_v0; valid seats: runner, blocker")


def test_a_policy_link_leading_out_of_the_run_is_refused(director, tmp_path, cli):
    """Was a bug: ``policy.zip`` (and ``policy_norm.npz``) were followed wherever a link
    led, unlike ``run:DIR``'s files: a run could load a director from anywhere."""
    elsewhere = _copy(director, tmp_path, "elsewhere")
    for name in ("policy.zip", "policy_norm.npz"):
        run = _copy(director, tmp_path, f"run_{name}")
        (run / name).unlink()
        (run / name).symlink_to(elsewhere / name)
        assert_refused(cli, run, f"'{name}' leads outside")


@pytest.mark.parametrize("name", ["policy.zip", "policy_norm.npz"])
@pytest.mark.parametrize("target", ["/dev/zero", "/etc/passwd"])
def test_links_to_system_files_are_one_line(director, tmp_path, cli, name, target):
    """Was a bug (``/dev/zero``): not a regular file, ``policy.zip`` was passed over for
    the checkpoint and ``policy_norm.npz`` for no normalisation at all, silently."""
    run = _copy(director, tmp_path)
    (run / name).unlink()
    (run / name).symlink_to(target)
    assert_refused(cli, run, "leads outside")


def test_a_policy_that_is_a_directory_is_refused_not_passed_over(director, tmp_path, cli):
    """Was a bug: a ``policy.zip`` that is a directory made the director the checkpoint."""
    run = _copy(director, tmp_path)
    (run / "policy.zip").unlink()
    (run / "policy.zip").mkdir()
    assert_refused(cli, run, "policy.zip is not a regular file")


@pytest.mark.parametrize("norm", ["policy_norm.npz", "checkpoint_norm.npz"])
def test_a_director_without_its_normalisation_is_refused(director, tmp_path, cli, norm):
    """Was a bug: without ``policy_norm.npz`` the director was loaded seeing raw
    observations (it was trained on normalised ones): a weaker attack, silently."""
    run = _copy(director, tmp_path)
    if norm == "checkpoint_norm.npz":  # an unfinished run: its checkpoint is the director
        (run / "policy.zip").unlink()
        (run / "policy_norm.npz").unlink()
    (run / norm).unlink()
    assert_refused(cli, run, f"{norm} is missing")


def _npz_edit(**arrays: Any):
    def edit(run: Path) -> None:
        with np.load(run / "policy_norm.npz") as data:
            content = {k: data[k] for k in data.files}
        content.update(arrays)
        np.savez(run / "policy_norm.npz", **content)

    return edit


def _truncate(name: str, keep: float):
    def edit(run: Path) -> None:
        blob = (run / name).read_bytes()
        (run / name).write_bytes(blob[: int(len(blob) * keep)])

    return edit


_FILES = {
    "norm_wrong_shape": (_npz_edit(obs_mean=np.zeros(3)), "of shape (9,)"),
    "norm_nan": (_npz_edit(obs_var=np.full(9, np.nan)), "obs_var must be finite numbers"),
    "norm_inf_mean": (_npz_edit(obs_mean=np.full(9, np.inf)), "obs_mean must be finite"),
    "norm_negative_var": (_npz_edit(obs_var=-np.ones(9)), "obs_var must be non-negative"),
    "norm_zero_epsilon": (_npz_edit(epsilon=np.float64(0)), "epsilon and clip_obs"),
    "norm_pickled_objects": (_npz_edit(obs_mean=np.array([{}] * 9)), "policy_norm.npz"),
    "norm_truncated": (_truncate("policy_norm.npz", 0.5), "policy_norm.npz"),
    "policy_truncated": (_truncate("policy.zip", 0.5), "policy.zip"),
    "policy_empty": (_truncate("policy.zip", 0.0), "not a zip file"),
    "no_director": (
        lambda run: [(run / n).unlink() for n in ("policy.zip", "checkpoint.zip")],
        "no director yet",
    ),
    "no_marker": (lambda run: (run / "perturber_run.json").unlink(), "not a train-perturber run"),
}


@pytest.mark.parametrize("case", sorted(_FILES))
def test_missing_or_corrupted_files_are_one_line(director, tmp_path, cli, case):
    edit, fragment = _FILES[case]
    run = _copy(director, tmp_path)
    edit(run)
    assert_refused(cli, run, fragment)


def test_a_run_for_another_game_is_refused(director, cli):
    """Was a bug: the director of toy_pass_v0 attacking toy_catch_v0's player got as
    far as the director's network: a RuntimeError and its traceback."""
    result = _evaluate(cli, director, "toy_catch_v0", "player")
    assert_one_line_error(result, "trained against toy_pass_v0 seat 'runner'",
                          "cannot attack toy_catch_v0 seat 'player'")  # fmt: skip


def test_a_run_for_another_seat_is_refused(director, cli):
    """Was a bug: the runner's director attacked the blocker (their spaces fit) with no
    word: an attack it was never trained for, reported as the learned adversary."""
    result = cli("evaluate", "toy_pass_v0", "--policy", "runner=zero", "--policy",
                 f"blocker={RUNNER}", "--attack", f"blocker=learned:{director}",
                 "--episodes", "1", "--no-save")  # fmt: skip
    assert_one_line_error(result, "cannot attack toy_pass_v0 seat 'blocker'")


def test_a_victim_whose_spaces_do_not_fit_the_director_is_refused(director):
    """Was a bug: through the API (no game to check) a victim of other spaces reached
    the director's network: a RuntimeError."""
    import envs
    from agents.attacks import AttackSpecError
    from agents.sb3 import sb3_victim

    game = envs.make("toy_catch_v0")
    victim = sb3_victim(CATCH_ZIP, game.observation_space("player"), game.action_space("player"))
    obs = np.zeros((1, *game.observation_space("player").shape), np.uint8)
    attack = parse_attack(f"learned:{director}")
    with pytest.raises(AttackSpecError, match="the director takes"):
        attack.step(victim, obs)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (",eps=nan", "eps=nan is not a finite number"),
        (",eps=-1", "valid: 0 <= eps <= 1"),
        (",eps=2", "valid: 0 <= eps <= 1"),
        (",eps=inf", "not a finite number"),
        (",steps=0", "steps=0 is out of range"),
        (",steps=1000000000", "at most 1000"),
        (",x=1", "unknown parameter 'x'; valid: DIR, eps, steps"),
    ],
)
def test_spec_overrides_out_of_range_are_one_line(director, cli, extra, fragment):
    assert_one_line_error(_evaluate(cli, f"{director}{extra}"), fragment)


# ============================================================ 1. resume of a bad checkpoint


def _write(name: str, content: str | bytes):
    def edit(run: Path) -> None:
        path = run / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return edit


_RESUMES = {
    "state_missing": (lambda run: (run / "checkpoint.json").unlink(), "No such file"),
    "state_not_json": (_write("checkpoint.json", "{oops"), "is not valid JSON"),
    "state_a_list": (_write("checkpoint.json", "[1]"), "must be an object, not a list"),
    "timesteps_text": (_write("checkpoint.json", '{"timesteps": "lots"}'), "got 'lots'"),
    "timesteps_negative": (_write("checkpoint.json", '{"timesteps": -100000}'), "got -100000"),
    "timesteps_infinite": (_write("checkpoint.json", '{"timesteps": 1e400}'), "got inf"),
    "norm_missing": (lambda run: (run / "checkpoint_norm.npz").unlink(), "checkpoint_norm"),
    "zip_of_another_game": (
        lambda run: shutil.copy(CATCH_ZIP, run / "checkpoint.zip"),
        "checkpoint.zip does not fit this run",
    ),
    "zip_without_optimizer": (
        lambda run: shutil.copy(RUNNER_ZIP, run / "checkpoint.zip"),
        "checkpoint.zip does not fit this run",
    ),
}


@pytest.mark.parametrize("case", sorted(_RESUMES))
def test_resuming_from_a_bad_checkpoint_is_one_line_and_changes_nothing(
    director, tmp_path, cli, case
):
    """Was a bug: ``checkpoint.json`` was read unchecked (tracebacks: FileNotFoundError,
    JSONDecodeError, ValueError, OverflowError, TypeError; a negative count trained on
    from it), a checkpoint of other shapes was a RuntimeError, and every failure came
    after ``perturber_run.json`` had been rewritten."""
    edit, fragment = _RESUMES[case]
    run = _copy(director, tmp_path)
    edit(run)
    before = _files(run)
    result = cli("train-perturber", "toy_pass_v0", *RECIPE, "--timesteps", "4096", "--resume",
                 "--out", run)  # fmt: skip
    assert_one_line_error(result, "--resume", fragment)
    assert _files(run) == before


def test_a_failed_resume_releases_its_lock(director, tmp_path, cli):
    """Was a bug: a refused resume kept the run's lock for the life of the process,
    so the next try in it said another process was training the run."""
    run = _copy(director, tmp_path)
    (run / "checkpoint.json").write_text("[]")
    args = ("train-perturber", "toy_pass_v0", *RECIPE, "--timesteps", "4096", "--resume",
            "--out", run)  # fmt: skip
    assert_one_line_error(cli(*args), "must be an object")
    assert_one_line_error(cli(*args), "must be an object")  # not "being trained by another"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"env": "toy_catch_v0", "seat": "player"}, "trains another recipe (toy_catch_v0"),
        ({"victim": "sb3:/elsewhere.zip"}, "trains another recipe (toy_pass_v0, sb3:/elsewhere"),
        ({"opponents": {"blocker": "random"}}, "trains another recipe"),
        ({"eps": 0.1}, "eps 0.1"),
    ],
)
def test_resuming_a_run_of_another_recipe_is_refused(director, tmp_path, cli, change, fragment):
    run = _copy(director, tmp_path)
    _marker_edit(**change)(run)
    before = _files(run)
    result = cli("train-perturber", "toy_pass_v0", *RECIPE, "--timesteps", "4096", "--resume",
                 "--out", run)  # fmt: skip
    assert_one_line_error(result, "--resume", fragment)
    assert _files(run) == before


# ================================================================ 3. train-perturber input


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--eps", "nan"), "eps=nan is not a finite number; valid: 0 <= eps <= 1"),
        (("--eps", "inf"), "not a finite number"),
        (("--eps", "1e400"), "not a finite number"),
        (("--eps", "-0.1"), "valid: 0 <= eps <= 1"),
        (("--eps", "1.5"), "valid: 0 <= eps <= 1"),
        (("--eps", "0x10"), "eps must be a number"),
        (("--steps", "0"), "steps=0 is out of range"),
        (("--timesteps", "0"), "timesteps"),
        (("--envs", "0"), "envs"),
        (("--norm", "l0"), "invalid choice: 'l0'"),
    ],
)
def test_train_perturber_numbers_out_of_range(cli, tmp_path, args, fragment):
    options = {"--eps": "0.1", "--timesteps": "64", args[0]: args[1]}
    result = cli("train-perturber", "toy_pass_v0", "--victim", f"runner={RUNNER}",
                 *(x for kv in options.items() for x in kv), "--out", tmp_path / "x")  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("env", "victim", "extra", "fragment"),
    [
        ("nope_v0", f"runner={RUNNER}", (), "unknown env id 'nope_v0'; valid ids"),
        ("toy_catch_v0", f"runner={RUNNER}", (), "unknown seat 'runner'; valid seats: player"),
        ("toy_catch_v0", f"player=sb3:{CATCH_ZIP}", ("--opponent", "ghost=zero"),
         "unknown seat 'ghost' for toy_catch_v0; valid seats: player"),
        ("toy_catch_v0", f"player={RUNNER}", (), "but the seat has"),
        ("toy_pass_v0", "runner=random", ("--opponent", "blocker=zero"), "no network"),
        ("toy_pass_v0", f"runner={RUNNER}", ("--opponent", f"runner={RUNNER}"),
         "that is the victim's seat"),
    ],
)  # fmt: skip
def test_train_perturber_games_seats_and_victims(cli, tmp_path, env, victim, extra, fragment):
    result = cli("train-perturber", env, "--victim", victim, *extra, "--eps", "0.1",
                 "--timesteps", "64", "--out", tmp_path / "x")  # fmt: skip
    assert_one_line_error(result, *fragment.split("; "))
    assert not (tmp_path / "x").exists()


# ====================================================================== 2. scorecards


EPS = ("0.05", "0.1")
_card, _put = scorecard_json, put_scorecard


def test_compare_ranks_consistent_cards(cli, tmp_path):
    weak = _put(tmp_path, "weak", _card("weak", worst=(0.2, 0.1)))
    strong = _put(tmp_path, "strong", _card("strong"))
    result = cli("scorecard", "--compare", weak, strong, "--json")
    assert result.code == 0, result.err
    ranking = json.loads(result.out.strip().splitlines()[-1])["ranking"]
    assert [r["victim"] for r in ranking] == ["strong", "weak"]


def test_compare_ranks_a_nan_area_last_whatever_the_order(cli, tmp_path):
    """Was a bug: a victim whose clean score is 0 has a NaN area, and NaN compares
    neither above nor below: the ranking followed the order of the arguments."""
    zero = _put(tmp_path, "zero", _card("zero", clean_score=0.0, worst=(0.0, 0.0)))
    good = _put(tmp_path, "good", _card("good"))
    for order in ((zero, good), (good, zero)):
        result = cli("scorecard", "--compare", *order)
        assert result.code == 0, result.err
        assert [line.split()[1] for line in result.out.splitlines()] == ["good", "zero"]


def _strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity, which standard JSON does not have."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"not standard JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_clean_score_of_zero_writes_standard_json(cli, tmp_path):
    """Was a bug: the area of a victim whose clean score is 0 was written as NaN, which
    standard JSON (and every non-Python reader) refuses. It is null now, read as NaN."""
    from arena.artifacts.scorecard import Scorecard

    card = _card("zero", clean_score=0.0, worst=(0.0, 0.0))
    assert card["normalised_area"] is None
    text = json.dumps(card)
    assert _strict_json(text)["normalised_area"] is None
    assert math.isnan(Scorecard.from_json(json.loads(text), "zero").normalised_area)
    legacy = dict(card, normalised_area=math.nan)  # written before: still read
    assert math.isnan(Scorecard.from_json(legacy, "legacy").normalised_area)
    zero = _put(tmp_path, "zero", card)
    good = _put(tmp_path, "good", _card("good"))
    out = tmp_path / "board"
    result = cli("scorecard", "--compare", zero, good, "--json", "--out", out)
    assert result.code == 0, result.err
    ranking = _strict_json(result.out.strip().splitlines()[-1])["ranking"]
    assert [r["victim"] for r in ranking] == ["good", "zero"]
    for path in out.rglob("*.json"):
        _strict_json(path.read_text())


def _edited(**changes: Any):
    return _card("forged", **changes)


def _edit_worst(key: str, value: Any):
    card = _card("forged")
    card["worst"][0][key] = value
    return card


_CARDS = {
    # Was a bug, each: accepted, ranked first or printed as inf
    "area_infinite": (_edited(normalised_area=math.inf), "'normalised_area' must be a finite"),
    "area_400_digits": (_edited(normalised_area=10**400), "'normalised_area' must be a finite"),
    "score_infinite": (_edit_worst("score", math.inf), "'score' must be a finite number"),
    "score_minus_infinite": (_edit_worst("score", -math.inf), "'score' must be a finite"),
    "score_400_digits": (_edit_worst("score", 10**400), "'score' must be a finite number"),
    "ci_infinite": (_edit_worst("ci95", [0, math.inf]), "ci95 must be [low, high], finite"),
    # defended already
    "schema_2": (_edited(schema_version=2), "schema_version 2 is newer than this arena"),
    "schema_true": (_edited(schema_version=True), "schema_version True is not supported"),
    "not_a_scorecard": (_edited(kind="leaderboard"), "not a scorecard"),
    "rows_not_a_list": (_edited(rows="x"), "'rows' must be a list"),
    "clean_missing": (_edited(clean=None), "clean must be an object"),
    "score_nan": (_edit_worst("score", math.nan), "'score' must be a finite number"),
    "score_text": (_edit_worst("score", "1"), "'score' must be a finite number"),
    "episodes_float": (_edited(episodes=3.5), "'episodes' must be an integer"),
    "certified_above_one": (_edited(certified={"0.1": 2}), "certified must map"),
    "reasons_not_text": (_edited(not_applicable={"x": 1}), "'not_applicable' must map"),
    "opponents_not_a_list": (_edited(opponents={}), "opponents must be a list"),
    "an_array": ([1, 2, 3], "not a scorecard"),
}


@pytest.mark.parametrize("case", sorted(_CARDS))
def test_hostile_scorecards_are_one_line(cli, tmp_path, case):
    card, fragment = _CARDS[case]
    good = _put(tmp_path, "good", _card("good"))
    bad = _put(tmp_path, "bad", card)
    for order in ((good, bad), (bad, good)):
        assert_one_line_error(cli("scorecard", "--compare", *order, "--out", tmp_path / "o"),
                              fragment)  # fmt: skip
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("name", "change", "fragment"),
    [
        ("env", {"env": "toy_catch_v0"}, "its env is 'toy_catch_v0', not 'toy_pass_v0'"),
        ("seat", {"victim_seat": "blocker"}, "its victim_seat is 'blocker'"),
        ("metric", {"metric": "mean return"}, "its metric is 'mean return'"),
    ],
)
def test_cards_of_another_game_or_seat_are_not_compared(cli, tmp_path, name, change, fragment):
    good = _put(tmp_path, "good", _card("good"))
    other = _put(tmp_path, "other", _card("other", **change))
    assert_one_line_error(cli("scorecard", "--compare", good, other), fragment, "not comparable")


def _link_to(target: str):
    def make(tmp_path: Path) -> Path:
        out = tmp_path / "bad"
        out.mkdir()
        (out / "scorecard.json").symlink_to(target)
        return out

    return make


_FILES_SC = {
    "deep": (lambda t: _put(t, "bad", raw=b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
    "not_utf8": (lambda t: _put(t, "bad", raw=b"\xff\xfe{}"), "utf-8"),
    "int_5000_digits": (
        lambda t: _put(t, "bad", raw=b'{"x": ' + b"9" * 5000 + b"}"),
        "not valid JSON",
    ),
    "link_to_dev_zero": (_link_to("/dev/zero"), "is not a regular file"),
    "dangling_link": (_link_to("/nonexistent/scorecard.json"), "cannot read"),
    "a_directory": (
        lambda t: (t / "bad" / "scorecard.json").mkdir(parents=True) or t / "bad",
        "is not a regular file",
    ),
    "missing": (lambda t: (t / "bad").mkdir() or t / "bad", "cannot read"),
    "not_a_directory": (lambda t: (t / "bad").write_text("x") or t / "bad", "cannot read"),
}


@pytest.mark.parametrize("case", sorted(_FILES_SC))
def test_unreadable_scorecard_files_are_one_line(cli, tmp_path, case):
    make, fragment = _FILES_SC[case]
    good = _put(tmp_path, "good", _card("good"))
    assert_one_line_error(cli("scorecard", "--compare", good, make(tmp_path)), fragment)


def test_a_huge_scorecard_is_refused_unread(cli, tmp_path, monkeypatch):
    import arena.artifacts.base as base

    monkeypatch.setattr(base, "MAX_JSON_BYTES", 4096)
    good = _put(tmp_path, "good", _card("good"))
    huge = _card("huge")
    huge["not_applicable"] = {f"f{i}": "x" * 100 for i in range(100)}
    assert_one_line_error(cli("scorecard", "--compare", good, _put(tmp_path, "huge", huge)),
                          "a JSON file of the arena is under 4096")  # fmt: skip


def test_compare_out_never_replaces_another_runs_results(cli, tmp_path, director):
    """Was a bug: ``--compare A B --out A`` wrote the leaderboard over A's own
    ``results.json`` (its report), and so over any run's."""
    a = _put(tmp_path, "a", _card("a"))
    b = _put(tmp_path, "b", _card("b"))
    (a / "results.json").write_text('{"kind": "scorecard"}')
    run = _copy(director, tmp_path)
    for out in (a, run):
        before = (out / "results.json").read_bytes()
        assert_one_line_error(cli("scorecard", "--compare", a, b, "--out", out),
                              f"--out {out} holds the results.json of another run")  # fmt: skip
        assert (out / "results.json").read_bytes() == before
    again = tmp_path / "board"
    for _ in range(2):  # a leaderboard's own directory may be written again
        assert cli("scorecard", "--compare", a, b, "--out", again).code == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--learned", "x"), "not --learned"),
        (("--families", "nope"), "not --families"),
        (("--opponent", "blocker=zero"), "not --opponent"),
        (("toy_pass_v0",), "not ENV_ID"),
    ],
)
def test_compare_refuses_options_it_would_ignore(cli, tmp_path, args, fragment):
    """Was a bug (but for ENV_ID): ``--compare`` ignored --learned, --families and
    --opponent without a word."""
    a = _put(tmp_path, "a", _card("a"))
    assert_one_line_error(cli("scorecard", *args, "--compare", a, a), fragment)


def test_compare_needs_two_cards(cli, tmp_path):
    a = _put(tmp_path, "a", _card("a"))
    assert_one_line_error(cli("scorecard", "--compare", a), "at least two")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--episodes", "0"), "episodes=0 is out of range; valid: a positive integer"),
        (("--episodes", "-1"), "episodes=-1 is out of range"),
        (("--episodes", "10000000000"), "at most 1,000,000"),
        (("--families", "noise,bogus"), "unknown attack family 'bogus'; valid: noise, fgsm"),
        (("--budget", "huge"), "invalid choice: 'huge'"),
        (("--seed", "-1"), "seed"),
    ],
)
def test_scorecard_options_out_of_range(cli, tmp_path, args, fragment):
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", *args,
                 "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "sc").exists()


def test_empty_families_are_refused_not_every_family(cli, tmp_path):
    """Was a bug: ``--families ""`` meant every family (an empty string is false)."""
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--families", "",
                 "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "unknown attack family ''; valid: noise")
    assert not (tmp_path / "sc").exists()


def test_an_opponent_in_the_victims_seat_is_refused(cli, tmp_path):
    """Was a bug: ``--opponent runner=zero`` with ``--victim runner=...`` replaced the
    victim by the opponent in every cell: eleven games played, then a failure."""
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--opponent",
                 "runner=zero", "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "--opponent runner=...: that is the victim's seat")
    assert not (tmp_path / "sc").exists()


def test_an_opponent_for_a_one_player_game_is_one_line(cli, tmp_path):
    result = cli("scorecard", "toy_catch_v0", "--victim", f"player=sb3:{CATCH_ZIP}",
                 "--opponent", "ghost=zero", "--families", "noise", "--out",
                 tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "unknown seat 'ghost' for toy_catch_v0; valid seats: player")
    assert not (tmp_path / "sc").exists()


def test_learned_of_another_seat_is_refused(cli, tmp_path, director):
    result = cli("scorecard", "toy_pass_v0", "--victim", f"blocker={RUNNER}", "--learned",
                 director, "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "attacks toy_pass_v0 seat 'runner'", "not toy_pass_v0 seat")
    assert not (tmp_path / "sc").exists()


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda run: (run / "policy_norm.npz").unlink(), "policy_norm.npz is missing"),
        (_truncate("policy.zip", 0.5), "policy.zip"),
        (lambda run: [(run / n).unlink() for n in ("policy.zip", "checkpoint.zip")],
         "no director yet"),
    ],
)  # fmt: skip
def test_learned_with_a_broken_director_is_refused_before_any_game(
    cli, tmp_path, director, edit, fragment
):
    """Was a bug: only the marker of ``--learned DIR`` was read up front; a broken
    director failed in its cells, after every other game had been played."""
    run = _copy(director, tmp_path)
    edit(run)
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--learned", run,
                 "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "--learned", fragment)
    assert not (tmp_path / "sc").exists()


def test_learned_dir_with_a_comma_is_refused_before_any_game(cli, tmp_path, director):
    """Was a bug: a DIR with a comma passed the marker check but split the spec
    ``learned:DIR,eps=...`` of every learned cell."""
    run = _copy(director, tmp_path, "a,b")
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--learned", run,
                 "--out", tmp_path / "sc")  # fmt: skip
    assert_one_line_error(result, "--learned", "'b' is not key=value")
    assert not (tmp_path / "sc").exists()


def test_scorecard_out_never_replaces_another_runs_results(cli, tmp_path, director):
    """Was a bug: ``arena scorecard ... --out DIR`` of another run wrote its grid,
    scorecard and ``results.json`` over that run's."""
    run = _copy(director, tmp_path)
    before = _files(run)
    result = cli("scorecard", "toy_pass_v0", "--victim", f"runner={RUNNER}", "--out", run)
    assert_one_line_error(result, "holds the results.json of another run")
    assert _files(run) == before and not (run / "grid").exists()
