"""Red-team tests of two new features, as an attacker who controls the files would try them:

1. recurrent (sb3-contrib ``RecurrentActorCriticPolicy``) SB3 files, loaded by
   ``agents.sb3`` without running code: contradictory LSTM flags, huge or odd
   feature extractors, weights that do not fit (or fit but are poison), gadget pickles
   in ``policy_kwargs``, a file for a seat it does not fit;
2. white-box adversaries (``run:DIR`` of a ``--white-box`` run): markers naming
   victims that do not exist, that are not networks, that recurse, for another game;
   policy files that do not fit the augmented observation;
3. ``arena finetune-victim --victim SEAT=zoo:FILE`` with LSTM and hostile zoo files.

Every hostile input must give a ``PolicyFileError`` / ``PolicySpecError`` from the API,
and one line ``arena: error: ...`` with exit 2 from the CLI: never a traceback, never
any code of the file run (gadgets try to write a canary file), nothing half-written.

The tests whose docstrings begin "Was a bug" pin what a first red-team pass found
(each failed before its fix).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ASSETS, assert_one_line_error

from agents import specs
from agents.sb3 import PolicyFileError, sb3_victim
from agents.specs import PolicySpecError
from agents.zoo import lstm_size, mlp_size

RUNNER_ZIP = ASSETS / "toy_pass_v0__runner.zip"
_SERIAL = itertools.count()
SPEC_ERRORS = (PolicyFileError, PolicySpecError)


def _spaces(env_id: str, seat: str):
    import envs

    game = envs.make(env_id)
    try:
        return game.observation_space(seat), game.action_space(seat)
    finally:
        game.close()


class Gadget:
    """Pickles as ``fn(arg)``: what an attacker puts in a file to run code on load."""

    def __init__(self, fn: Any, arg: Any):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _u(text: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


# ===================================================================== 1. recurrent SB3 files


def _base_kwargs() -> dict[str, Any]:
    from agents.networks import DenseReLU

    return {
        "net_arch": [],
        "features_extractor_class": DenseReLU,
        "features_extractor_kwargs": {"features_dim": 8},
        "share_features_extractor": False,
        "lstm_hidden_size": 4,
        "n_lstm_layers": 1,
        "enable_critic_lstm": True,
        "shared_lstm": False,
    }


@dataclasses.dataclass
class RecurrentFile:
    """A small valid recurrent SB3 file for toy_pass_v0's runner, and a writer of
    hostile variants of it."""

    path: Path
    members: dict[str, bytes]
    directory: Path

    def variant(
        self,
        name: str,
        kwargs: Any = None,
        *,
        blob: bytes | None = None,
        state: dict[str, torch.Tensor] | None = None,
        data_edit: Any = None,
    ) -> Path:
        members = dict(self.members)
        raw = json.loads(members["data"])
        if kwargs is not None or blob is not None:
            blob = blob if blob is not None else pickle.dumps(kwargs, protocol=4)
            raw["policy_kwargs"] = {
                ":type:": "<class 'dict'>",
                ":serialized:": base64.b64encode(blob).decode(),
            }
        if data_edit is not None:
            data_edit(raw)
        members["data"] = json.dumps(raw).encode()
        if state is not None:
            buf = io.BytesIO()
            torch.save(state, buf)
            members["policy.pth"] = buf.getvalue()
        # a fresh name each time: arena.match caches loaded policies by spec in-process
        path = self.directory / f"{name}_{next(_SERIAL)}.zip"
        with zipfile.ZipFile(path, "w") as dst:
            for member, content in members.items():
                dst.writestr(member, content)
        return path


def _state_for(kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of the recurrent network ``kwargs`` build for the runner's seat."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    obs, act = _spaces("toy_pass_v0", "runner")
    return RecurrentActorCriticPolicy(obs, act, lambda _: 0.0, **kwargs).state_dict()


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory) -> RecurrentFile:
    import gymnasium
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    obs, act = _spaces("toy_pass_v0", "runner")

    class _Env(gymnasium.Env):
        observation_space = obs
        action_space = act

    directory = tmp_path_factory.mktemp("recurrent")
    model = RecurrentPPO(
        "MlpLstmPolicy",
        DummyVecEnv([_Env]),
        policy_kwargs=_base_kwargs(),
        n_steps=8,
        batch_size=8,
        device="cpu",
    )
    path = directory / "ok.zip"
    model.save(path)
    with zipfile.ZipFile(path) as src:
        members = {n: src.read(n) for n in src.namelist()}
    return RecurrentFile(path, members, directory)


def _evaluate_runner(cli, path: Path, env_id: str = "toy_pass_v0", seat: str = "runner"):
    args = ["evaluate", env_id, "--policy", f"{seat}=sb3:{path}"]
    if env_id == "toy_pass_v0":
        args += ["--policy", "blocker=zero"]
    return cli(*args, "--episodes", "1", "--no-save")


def test_the_valid_recurrent_file_loads_and_plays(recurrent, cli):
    obs, act = _spaces("toy_pass_v0", "runner")
    policy = sb3_victim(recurrent.path, obs, act)
    assert policy.recurrent
    played = _evaluate_runner(cli, recurrent.path)
    assert played.code == 0, played.err


def _k(**changes: Any) -> dict[str, Any]:
    return {**_base_kwargs(), **changes}


def _sb3_cases() -> list[Any]:
    """(name, how to make the hostile file from the ``RecurrentFile``, message fragment)."""
    from stable_baselines3.common import torch_layers

    from agents.networks import DenseReLU, SmallCNN

    nn = torch.nn
    good = _base_kwargs
    cases = [
        # contradictory LSTM flags (sb3-contrib's own asserts)
        ("shared_and_critic_lstm", lambda r: r.variant("a", _k(shared_lstm=True)), "LSTM"),
        (
            "shared_lstm_unshared_extractor",
            lambda r: r.variant("b", _k(shared_lstm=True, enable_critic_lstm=False)),
            "features extractor is not shared",
        ),
        # bounds and types of the LSTM keys
        ("hidden_2048", lambda r: r.variant("c1", _k(lstm_hidden_size=2048)), "lstm_hidden_size"),
        ("hidden_0", lambda r: r.variant("c2", _k(lstm_hidden_size=0)), "lstm_hidden_size"),
        ("hidden_neg", lambda r: r.variant("c3", _k(lstm_hidden_size=-5)), "lstm_hidden_size"),
        ("hidden_bool", lambda r: r.variant("c4", _k(lstm_hidden_size=True)), "lstm_hidden_size"),
        ("hidden_huge", lambda r: r.variant("c5", _k(lstm_hidden_size=10**30)), "lstm_hidden_size"),
        ("layers_3", lambda r: r.variant("c6", _k(n_lstm_layers=3)), "n_lstm_layers"),
        ("layers_float", lambda r: r.variant("c7", _k(n_lstm_layers=1.0)), "n_lstm_layers"),
        ("shared_int", lambda r: r.variant("c8", _k(shared_lstm=1)), "shared_lstm"),
        ("critic_none", lambda r: r.variant("c9", _k(enable_critic_lstm=None)), "enable_critic"),
        # unknown keys (sb3-contrib would pass lstm_kwargs straight to nn.LSTM)
        ("lstm_kwargs", lambda r: r.variant("d1", _k(lstm_kwargs={"dropout": 0.5})), "lstm_kwargs"),
        ("lstm_kwargs_none", lambda r: r.variant("d2", _k(lstm_kwargs=None)), "lstm_kwargs"),
        ("unknown_key", lambda r: r.variant("d3", _k(evil=1)), "'evil'"),
        ("kwargs_list", lambda r: r.variant("d4", [1, 2]), "dict of named options"),
        # feature extractors: huge, odd, wrong kind for a flat observation
        (
            "features_dim_huge",
            lambda r: r.variant("e1", _k(features_extractor_kwargs={"features_dim": 10**6})),
            "features_dim",
        ),
        (
            "features_dim_0",
            lambda r: r.variant("e2", _k(features_extractor_kwargs={"features_dim": 0})),
            "features_dim",
        ),
        (
            "features_dim_float",
            lambda r: r.variant("e3", _k(features_extractor_kwargs={"features_dim": 8.0})),
            "features_dim",
        ),
        (
            "features_dim_bool",
            lambda r: r.variant("e4", _k(features_extractor_kwargs={"features_dim": True})),
            "features_dim",
        ),
        (
            "features_dim_4096_weights_for_8",
            lambda r: r.variant("e5", _k(features_extractor_kwargs={"features_dim": 4096})),
            "size mismatch",
        ),
        (
            "dense_relu_odd_kwarg",
            lambda r: r.variant("e6", _k(features_extractor_kwargs={"features_dim": 8, "x": 1})),
            "unexpected keyword",
        ),
        (
            "dense_relu_observation_space_kwarg",
            lambda r: r.variant(
                "e7", _k(features_extractor_kwargs={"features_dim": 8, "observation_space": 3})
            ),
            "observation_space",
        ),
        (
            "dense_relu_kwargs_text",
            lambda r: r.variant("e8", _k(features_extractor_kwargs={"features_dim": "8"})),
            "features_extractor_kwargs",
        ),
        (
            "dense_relu_as_activation",
            lambda r: r.variant("e9", _k(activation_fn=DenseReLU)),
            "activation_fn",
        ),
        (
            "relu_as_extractor",
            lambda r: r.variant("e10", _k(features_extractor_class=nn.ReLU)),
            "features_extractor_class",
        ),
        (
            "nature_cnn_on_a_vector",
            lambda r: r.variant(
                "e11",
                _k(features_extractor_class=torch_layers.NatureCNN, features_extractor_kwargs={}),
            ),
            "weights do not fit",
        ),
        (
            "small_cnn_on_a_vector",
            lambda r: r.variant(
                "e12", _k(features_extractor_class=SmallCNN, features_extractor_kwargs={})
            ),
            "weights do not fit",
        ),
        (
            "flatten_with_features_dim",
            lambda r: r.variant("e13", _k(features_extractor_class=torch_layers.FlattenExtractor)),
            "features_dim",
        ),
        # other options the recurrent policy refuses or that change the weights' shapes
        ("squash_without_sde", lambda r: r.variant("f1", _k(squash_output=True)), "gSDE"),
        ("use_sde_weights_without", lambda r: r.variant("f2", _k(use_sde=True)), "log_std"),
        ("n_critics", lambda r: r.variant("f3", _k(n_critics=2)), "n_critics"),
        ("optimizer_lr_twice", lambda r: r.variant("f4", _k(optimizer_kwargs={"lr": 1})), "lr"),
        ("net_arch_huge", lambda r: r.variant("f5", _k(net_arch=[10**6])), "net_arch"),
        # weights that do not fit the network the file claims
        ("weights_bigger_lstm", lambda r: r.variant("g1", _k(lstm_hidden_size=8)), "size mismatch"),
        (
            "weights_of_another_network",
            lambda r: r.variant("g2", good(), state=_state_for(_k(lstm_hidden_size=16))),
            "size mismatch",
        ),
        (
            "weights_extra_key",
            lambda r: r.variant("g3", good(), state={**_state_for(good()), "x": torch.zeros(1)}),
            "Unexpected key",
        ),
        (
            "weights_missing_key",
            lambda r: r.variant(
                "g4", good(), state={k: v for k, v in _state_for(good()).items() if k != "log_std"}
            ),
            "Missing key",
        ),
        (
            "weights_not_tensors",
            lambda r: r.variant("g5", good(), state={"log_std": [1.0, 2.0]}),
            "named tensors",
        ),
        # the class itself: not on the table, or aliases of it
        (
            "policy_class_alias",
            lambda r: r.variant(
                "h1",
                data_edit=lambda raw: raw.__setitem__(
                    "policy_class",
                    {
                        ":serialized:": base64.b64encode(
                            b"\x80\x04c" + b"sb3_contrib.ppo_recurrent.policies\nMlpLstmPolicy\n."
                        ).decode()
                    },
                ),
            ),
            "MlpLstmPolicy",
        ),
        (
            "policy_class_not_a_class",
            lambda r: r.variant(
                "h2", data_edit=lambda raw: raw.__setitem__("policy_class", "RecurrentPPO")
            ),
            "class reference",
        ),
    ]
    return [pytest.param(make, fragment, id=name) for name, make, fragment in cases]


@pytest.mark.parametrize(("make", "fragment"), _sb3_cases())
def test_hostile_recurrent_files_are_refused_in_one_line(recurrent, cli, make, fragment):
    path = make(recurrent)
    obs, act = _spaces("toy_pass_v0", "runner")
    with pytest.raises(SPEC_ERRORS) as caught:
        sb3_victim(path, obs, act)
    assert fragment in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
    assert_one_line_error(_evaluate_runner(cli, path), str(path))


def _gadget_blobs(canary: Path) -> list[Any]:
    """Pickled policy_kwargs that would run code (write ``canary``) if unpickled."""
    import subprocess

    from agents.networks import DenseReLU

    touch = f"touch {canary}"
    write = f"open({str(canary)!r}, 'w').write('ran')"
    dense_global = b"c" + b"agents.networks\nDenseReLU\n"
    raw = {
        # BUILD on the DenseReLU token: would call its __setstate__
        "dense_relu_build": b"\x80\x04}(" + _u("features_extractor_class") + dense_global
        + b"}" + _u("features_dim") + b"K\x08sbu.",
        # NEWOBJ on the DenseReLU token: would construct the class
        "dense_relu_newobj": b"\x80\x04}(" + _u("features_extractor_class") + dense_global
        + b")\x81u.",
        # a dotted name walking from an allowed module to something else
        "dotted_walk": b"\x80\x04}(" + _u("features_extractor_class")
        + b"c" + b"agents.networks\nDenseReLU.__init__.__globals__\nu.",
        # python 2 spelling of builtins.eval
        "py2_eval": b"\x80\x02c__builtin__\neval\n" + _u(write) + b"\x85R.",
        # INST / OBJ opcodes
        "inst_opcode": b"(" + _u(touch) + b"ios\nsystem\n.",
        "obj_opcode": b"(cos\nsystem\n" + _u(touch) + b"o.",
    }  # fmt: skip
    built = {
        "os_system_in_net_arch": {**_base_kwargs(), "net_arch": Gadget(os.system, touch)},
        "eval_in_lstm_hidden_size": {**_base_kwargs(), "lstm_hidden_size": Gadget(eval, write)},
        "exec_as_whole_kwargs": Gadget(exec, write),
        "os_system_as_extractor": {
            **_base_kwargs(),
            "features_extractor_class": Gadget(os.system, touch),
        },
        "subprocess_in_lstm_kwargs": {
            **_base_kwargs(),
            "lstm_kwargs": {"x": Gadget(subprocess.call, ["touch", str(canary)])},
        },
        "bare_os_system_global": {**_base_kwargs(), "features_extractor_class": os.system},
        "reduce_dense_relu": {
            **_base_kwargs(),
            "features_extractor_class": Gadget(DenseReLU, 3),
        },
    }
    out = [pytest.param(blob, id=name) for name, blob in raw.items()]
    out += [pytest.param(pickle.dumps(obj, protocol=4), id=n) for n, obj in built.items()]
    return out


_CANARY = Path("/tmp") / f"hostile_whitebox_lstm_canary_{os.getpid()}"


def test_the_gadgets_are_live_under_plain_pickle(tmp_path):
    """The gadget pickles below really run code when unpickled the ordinary way, so
    their refusal below is meaningful."""
    canary = tmp_path / "canary"
    pickle.loads(pickle.dumps(Gadget(exec, f"open({str(canary)!r}, 'w').write('ran')")))
    assert canary.read_text() == "ran"


@pytest.mark.parametrize("blob", _gadget_blobs(_CANARY))
def test_gadget_policy_kwargs_run_nothing_and_are_refused(recurrent, cli, blob):
    _CANARY.unlink(missing_ok=True)
    try:
        path = recurrent.variant("gadget", blob=blob)
        obs, act = _spaces("toy_pass_v0", "runner")
        with pytest.raises(SPEC_ERRORS):
            sb3_victim(path, obs, act)
        assert_one_line_error(_evaluate_runner(cli, path), "policy_kwargs")
        assert not _CANARY.exists(), "the file's code ran"
    finally:
        _CANARY.unlink(missing_ok=True)


def test_a_recurrent_file_for_a_seat_it_does_not_fit(recurrent, cli):
    obs, act = _spaces("toy_catch_v0", "player")
    with pytest.raises(PolicyFileError, match="takes Box"):
        sb3_victim(recurrent.path, obs, act)
    result = _evaluate_runner(cli, recurrent.path, "toy_catch_v0", "player")
    assert_one_line_error(result, "takes Box", "but the seat has")


def test_valid_variants_of_the_lstm_flags_load_and_play(recurrent, cli):
    """The combinations sb3-contrib allows load and play (no false refusals)."""
    for name, kwargs in (
        ("shared", _k(shared_lstm=True, enable_critic_lstm=False, share_features_extractor=True)),
        ("no_critic_lstm", _k(enable_critic_lstm=False)),
        ("two_layers", _k(n_lstm_layers=2)),
    ):
        path = recurrent.variant(name, kwargs, state=_state_for(kwargs))
        obs, act = _spaces("toy_pass_v0", "runner")
        policy = sb3_victim(path, obs, act)
        x = policy.input_from_obs(np.zeros((3, 9), np.float32))
        assert policy.value(x).shape == (3,)
        played = _evaluate_runner(cli, path)
        assert played.code == 0, (name, played.err)


# --------------------------------------------------------------------- bugs in part 1


def test_combined_extractor_on_a_box_observation_is_one_line(recurrent, cli):
    """Was a bug: ``features_extractor_class`` CombinedExtractor (on the allow-list) with the
    seat's Box observation: CombinedExtractor reads ``observation_space.spaces`` and
    raises AttributeError, which ``agents.sb3.load_sb3_policy`` does not catch (it
    catches RuntimeError, TypeError, KeyError, ValueError, AssertionError only)."""
    from stable_baselines3.common import torch_layers

    kwargs = _k(
        features_extractor_class=torch_layers.CombinedExtractor, features_extractor_kwargs={}
    )
    path = recurrent.variant("combined", kwargs)
    obs, act = _spaces("toy_pass_v0", "runner")
    try:
        sb3_victim(path, obs, act)
    except SPEC_ERRORS:
        pass
    except AttributeError as exc:
        pytest.fail(f"sb3_victim raised AttributeError, not PolicyFileError: {exc}")
    else:
        pytest.fail("a CombinedExtractor on a Box observation was accepted")
    try:
        result = _evaluate_runner(cli, path)
    except AttributeError as exc:
        pytest.fail(f"arena evaluate: traceback (AttributeError: {exc})")
    assert_one_line_error(result, str(path))


def _fill(value: float):
    return lambda sd: {k: torch.full_like(v, value) for k, v in sd.items()}


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param(_fill(float("nan")), id="nan"),
        pytest.param(_fill(3e38), id="overflow"),
        pytest.param(lambda sd: {**sd, "log_std": torch.full((2,), -1000.0)}, id="log_std_-1000"),
    ],
)
def test_poisoned_weights_are_refused_on_loading(recurrent, cli, poison):
    """Was a bug: weights of the right shapes but NaN, or finite values that overflow (3e38),
    or a finite log_std of -1000 (std underflows to 0): ``agents.sb3.load_sb3_policy``
    accepts them, then the first ``predict`` builds ``torch.distributions.Normal``
    from NaN means / zero scales, whose argument validation raises ValueError; arena
    evaluate (arena/match.py act -> agents/policies.py predict -> SB3 distributions)
    ends with a traceback, exit 1. The same holds for MLP SB3 files; the loader should
    refuse non-finite weights and a network whose outputs are not finite."""
    state = poison(_state_for(_base_kwargs()))
    path = recurrent.variant("poison", _base_kwargs(), state=state)
    try:
        result = _evaluate_runner(cli, path)
    except ValueError as exc:
        pytest.fail(f"arena evaluate: traceback (ValueError: {str(exc)[:120]})")
    assert_one_line_error(result, str(path))


# ===================================================================== 2. white-box runs


@pytest.fixture(scope="module")
def white_box_run(tmp_path_factory) -> Path:
    from arena.training import default_adversary_config, train_adversary

    out = tmp_path_factory.mktemp("wb") / "run"
    config = dataclasses.replace(
        default_adversary_config("toy_pass_v0"), white_box=True, workers=0, eval_every=0
    )
    train_adversary(
        "toy_pass_v0",
        {"runner": f"sb3:{RUNNER_ZIP}"},
        timesteps=2048,
        out=out,
        config=config,
        progress=False,
    )
    return out


def _copy_run(base: Path, where: Path, name: str) -> Path:
    out = where / name
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("tb", ".lock"))
    return out


def _edit_marker(run: Path, edit) -> None:
    path = run / "adversary_run.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _set(*keys: str, value: Any):
    def edit(doc):
        for key in keys[:-1]:
            doc = doc[key]
        doc[keys[-1]] = value

    return edit


def _evaluate_blocker(cli, run: Path):
    return cli("evaluate", "toy_pass_v0", "--policy", f"runner=sb3:{RUNNER_ZIP}",
               "--policy", f"blocker=run:{run}", "--episodes", "1", "--no-save")  # fmt: skip


def test_the_white_box_base_run_plays(white_box_run, cli):
    result = _evaluate_blocker(cli, white_box_run)
    assert result.code == 0, result.err


def _write(name: str, content: bytes):
    def mutate(run: Path) -> None:
        (run / name).write_bytes(content)

    return mutate


def _marker(edit):
    def mutate(run: Path) -> None:
        _edit_marker(run, edit)

    return mutate


def _victims(victims: dict[str, str]):
    return _marker(_set("victims", value=victims))


def _swap_policy(run: Path) -> None:
    """A non-white-box policy (the runner's own MLP, 9 inputs) under a white-box marker."""
    shutil.copy(RUNNER_ZIP, run / "policy.zip")
    (run / "policy_norm.npz").unlink()


def _norm_of_wrong_shape(run: Path) -> None:
    np.savez(
        run / "policy_norm.npz",
        obs_mean=np.zeros(9),
        obs_var=np.ones(9),
        clip_obs=np.float64(5),
        epsilon=np.float64(1e-8),
        norm_obs=np.bool_(True),
    )


def _checkpoint_out_of_dir(run: Path) -> None:
    (run / "policy.zip").unlink()
    (run / "checkpoints" / "state.json").write_text(
        json.dumps({"timesteps": 1, "model": "../../../etc/passwd", "norm": "x"})
    )


def _wb_cases() -> list[Any]:
    runner = f"sb3:{RUNNER_ZIP}"
    cases = [
        ("victim_traversal", _victims({"runner": "sb3:../../../../../../etc/passwd"}), "passwd"),
        ("victim_missing_file", _victims({"runner": "sb3:/nonexistent/x.zip"}), "not found"),
        ("victim_directory", _victims({"runner": "sb3:/tmp"}), "/tmp"),
        ("victim_zoo_traversal", _victims({"runner": "zoo:../../../../etc/passwd"}), "zoo"),
        ("victim_mix", _victims({"runner": f"mix:0.5*{runner}|0.5*zero"}), "MixturePolicy"),
        ("victim_masked", _victims({"runner": "masked:random"}), "MaskedPolicy"),
        ("victim_random", _victims({"runner": "random"}), "RandomPolicy"),
        ("victim_zero", _victims({"runner": "zero"}), "ZeroPolicy"),
        ("victim_unknown_kind", _victims({"runner": "bogus:x"}), "unknown policy kind"),
        ("victim_empty_spec", _victims({"runner": ""}), "empty policy spec"),
        ("no_victims", _victims({}), "victims"),
        ("victims_not_text", _victims({"runner": 3}), "victims"),
        (
            "extra_victim_seat",
            _victims({"runner": runner, "nobody": runner}),
            "its victims must be the seats runner",
        ),
        ("other_game", _marker(_set("env", value="toy_catch_v0")), "toy_catch_v0"),
        ("no_such_game", _marker(_set("env", value="nope_v0")), "nope_v0"),
        ("no_adversary_seat", _marker(_set("adversary_seat", value=None)), "white-box"),
        ("runner_seat_marker", _marker(_set("adversary_seat", value="runner")), "seat 'runner'"),
        ("env_kwargs_unknown", _marker(_set("config", "env_kwargs", value={"foo": 1})), "foo"),
        ("env_kwargs_list", _marker(_set("config", "env_kwargs", value={"x": [1]})), "env_kwargs"),
        ("white_box_text", _marker(_set("config", "white_box", value="true")), "white_box"),
        ("schema_2", _marker(_set("schema_version", value=2)), "schema_version"),
        ("unknown_marker_key", _marker(_set("evil", value=1)), "evil"),
        ("not_json", _write("adversary_run.json", b"{not json"), "not valid JSON"),
        ("binary_marker", _write("adversary_run.json", b"\xff\xfe\x00\x01"), "adversary_run"),
        ("list_marker", _write("adversary_run.json", b"[]"), "JSON object"),
        ("deep_marker", _write("adversary_run.json", b"[" * 100_000 + b"]" * 100_000), "JSON"),
        ("non_white_box_policy", _swap_policy, "but the seat has Box(12,)"),
        ("norm_of_wrong_shape", _norm_of_wrong_shape, "(12,)"),
        ("policy_not_a_zip", _write("policy.zip", b"PK\x03\x04 not really"), "policy.zip"),
        ("checkpoint_out_of_dir", _checkpoint_out_of_dir, "not a plain file name"),
    ]
    return [pytest.param(mutate, fragment, id=name) for name, mutate, fragment in cases]


@pytest.mark.parametrize(("mutate", "fragment"), _wb_cases())
def test_hostile_white_box_runs_are_refused_in_one_line(
    white_box_run, cli, tmp_path, mutate, fragment
):
    run = _copy_run(white_box_run, tmp_path, "run")
    mutate(run)
    obs, act = _spaces("toy_pass_v0", "blocker")
    with pytest.raises((*SPEC_ERRORS, ValueError)) as caught:
        specs.resolve(f"run:{run}", obs, act, env_id="toy_pass_v0", seat="blocker")
    from arena.errors import USER_ERRORS

    assert isinstance(caught.value, USER_ERRORS), repr(caught.value)
    assert_one_line_error(_evaluate_blocker(cli, run), fragment)


# --------------------------------------------------------------------- bugs in part 2


def test_a_white_box_victim_that_is_its_own_run_is_one_line(white_box_run, cli, tmp_path):
    """Was a bug: a marker whose victim for the adversary's own seat is ``run:`` of the same
    directory: ``arena.players.load_run`` -> ``adversary_policy`` resolves the victim,
    which is ``load_run`` of the same run for the same game and seat, and so on until
    RecursionError: a traceback (exit 1), not one line. Nothing bounds the depth or
    notices the cycle."""
    run = _copy_run(white_box_run, tmp_path, "self")
    _edit_marker(run, _set("victims", value={"blocker": f"run:{run}"}))
    try:
        result = _evaluate_blocker(cli, run)
    except RecursionError:
        pytest.fail("arena evaluate: traceback (RecursionError)")
    assert_one_line_error(result, str(run))


def test_two_white_box_runs_naming_each_other_are_one_line(white_box_run, cli, tmp_path):
    """Was a bug: run A (adversary of blocker) names ``runner=run:B``; run B (marked as the
    adversary of runner) names ``blocker=run:A``. Each load resolves the other's victims
    before reading any policy file: RecursionError traceback
    (``arena/players.py`` ``adversary_policy`` <-> ``load_run``)."""
    a = _copy_run(white_box_run, tmp_path, "A")
    b = _copy_run(white_box_run, tmp_path, "B")
    _edit_marker(a, _set("victims", value={"runner": f"run:{b}"}))
    _edit_marker(b, _set("victims", value={"blocker": f"run:{a}"}))
    _edit_marker(b, _set("adversary_seat", value="runner"))
    try:
        result = _evaluate_blocker(cli, a)
    except RecursionError:
        pytest.fail("arena evaluate: traceback (RecursionError)")
    assert_one_line_error(result, "run:")


def test_a_victim_for_a_seat_the_game_lacks_is_refused_on_loading(white_box_run, cli, tmp_path):
    """Was a bug: a marker naming its victim under a seat toy_pass_v0 does not have
    (``{"nobody": "sb3:runner.zip"}``) loads: ``adversary_policy`` never checks the
    victims' seats against the game (the toy games' ``observation_space(seat)`` ignore
    the seat) and the features have the same size. The first step then raises
    ``WhiteBoxError: no observation of seat 'nobody'`` from
    ``agents/whitebox.py WhiteBoxPolicy.predict``; WhiteBoxError is not one of
    ``arena.errors.USER_ERRORS``, so arena evaluate ends with a traceback (exit 1)."""
    from agents.whitebox import WhiteBoxError

    run = _copy_run(white_box_run, tmp_path, "seat")
    _edit_marker(run, _set("victims", value={"nobody": f"sb3:{RUNNER_ZIP}"}))
    try:
        result = _evaluate_blocker(cli, run)
    except WhiteBoxError as exc:
        pytest.fail(f"arena evaluate: traceback (WhiteBoxError: {exc})")
    assert_one_line_error(result, "nobody")
    obs, act = _spaces("toy_pass_v0", "blocker")
    with pytest.raises(SPEC_ERRORS):  # it loads: refused only when it acts
        specs.resolve(f"run:{run}", obs, act, env_id="toy_pass_v0", seat="blocker")


@pytest.mark.parametrize(
    "env_kwargs",
    [
        pytest.param({"max_steps": 0}, id="max_steps_0"),
        pytest.param({"shaping": "abc"}, id="shaping_text"),
        pytest.param({"max_steps": "x"}, id="max_steps_text"),
    ],
)
def test_bad_env_kwargs_in_a_white_box_marker_are_one_line(
    white_box_run, cli, tmp_path, env_kwargs
):
    """Was a bug: ``config.env_kwargs`` of a marker is only checked to be plain scalars;
    ``arena/players.py adversary_policy`` builds the game with them
    (``envs.make(marker.env, **marker.config.env_kwargs)``) to find the victims' spaces,
    and the game's own ValueError (``max_steps must be > 0``, ``float('abc')``) or
    TypeError (``'<=' between str and int``; ``envs.make`` re-raises every TypeError but
    'unexpected keyword') escapes: a traceback, exit 1."""
    run = _copy_run(white_box_run, tmp_path, "kw")
    _edit_marker(run, _set("config", "env_kwargs", value=env_kwargs))
    try:
        result = _evaluate_blocker(cli, run)
    except (ValueError, TypeError) as exc:
        pytest.fail(f"arena evaluate: traceback ({type(exc).__name__}: {exc})")
    assert_one_line_error(result, "env_kwargs")


# ===================================================================== 3. finetune-victim zoo:


def _zoo_lstm(path: Path, d: int = 9, a: int = 2, edit=None, size: int | None = None) -> Path:
    rng = np.random.default_rng(5)
    flat = rng.normal(0, 0.3, size or lstm_size(d, a)).astype(np.float32)
    flat[3 : 3 + d] = 0.0
    flat[3 + d : 3 + 2 * d] = 100.0
    flat[3 + 2 * d] = 100.0
    if edit is not None:
        edit(flat)
    path.write_bytes(pickle.dumps(flat, protocol=3))
    return path


def _finetune(cli, out: Path, spec: str):
    return cli("finetune-victim", "toy_pass_v0", "--victim", f"runner={spec}",
               "--adversary", "zero", "--opponent", "random", "--out", out,
               "--timesteps", "256", "--envs", "1", "--workers", "0")  # fmt: skip


def _zoo_cases(canary: Path) -> list[Any]:
    d, a = 9, 2
    write = f"open({str(canary)!r}, 'w').write('ran')"

    def raw(content: bytes):
        def make(tmp: Path) -> Path:
            path = tmp / "victim.pkl"
            path.write_bytes(content)
            return path

        return make

    def array(edit=None, size=None):
        return lambda tmp: _zoo_lstm(tmp / "victim.pkl", edit=edit, size=size)

    def _count(value):
        return lambda f: f.__setitem__(3 + 2 * d, value)

    def _overflowing_variance(f):
        f[3 + d : 3 + 2 * d] = 3e38
        f[3 + 2 * d] = 1e-30

    cases = [
        ("os_system", raw(pickle.dumps(Gadget(os.system, f"touch {canary}"))), "posix.system"),
        ("exec_in_a_list", raw(pickle.dumps([np.zeros(3), Gadget(exec, write)])), "exec"),
        ("reduce_ndarray", raw(pickle.dumps(Gadget(np.ndarray, 3))), "not a zoo parameter file"),
        ("py2_eval", raw(b"c__builtin__\neval\n(" + _u(write) + b"tR."), "eval"),
        ("empty", raw(b""), "not a zoo parameter file"),
        ("sb3_zip", lambda tmp: RUNNER_ZIP, "not a zoo parameter file"),
        ("text", raw(b"hello"), "not a zoo parameter file"),
        ("object_array", raw(pickle.dumps(np.array([1, "x"], dtype=object))), "zoo"),
        ("two_arrays", raw(pickle.dumps([np.zeros(3), np.zeros(3)])), "flat float array"),
        ("lstm_one_too_many", array(size=lstm_size(d, a) + 1), "fit neither zoo network"),
        ("lstm_for_another_seat", array(size=lstm_size(d + 1, a)), "fit neither zoo network"),
        ("nan", array(edit=lambda f: f.__setitem__(100, np.nan)), "NaN"),
        ("count_zero", array(edit=_count(0.0)), "finite"),
        ("variance_overflow", array(edit=_overflowing_variance), "finite"),
    ]
    return [pytest.param(make, fragment, id=name) for name, make, fragment in cases]


@pytest.mark.parametrize(("make", "fragment"), _zoo_cases(_CANARY))
def test_finetuning_a_hostile_zoo_file_is_refused_in_one_line(cli, tmp_path, make, fragment):
    _CANARY.unlink(missing_ok=True)
    try:
        victim = make(tmp_path)
        out = tmp_path / "ft"
        result = _finetune(cli, out, f"zoo:{victim}")
        assert_one_line_error(result, fragment)
        assert not out.exists(), "a refused fine-tuning left its directory behind"
        assert not _CANARY.exists(), "the file's code ran"
    finally:
        _CANARY.unlink(missing_ok=True)


@pytest.mark.slow
def test_finetuning_a_zoo_lstm_trains_and_plays_as_a_recurrent_run(cli, tmp_path):
    """The valid case: an LSTM zoo victim fine-tunes (one short rollout) into a
    recurrent run that loads through the safe loader and plays."""
    victim = _zoo_lstm(tmp_path / "runner.pkl")
    out = tmp_path / "ft"
    result = _finetune(cli, out, f"zoo:{victim}")
    assert result.code == 0, result.err
    config = json.loads((out / "adversary_run.json").read_text())["config"]
    assert config["ppo"]["lstm"] is True
    obs, act = _spaces("toy_pass_v0", "runner")
    policy = specs.resolve(f"run:{out}", obs, act, env_id="toy_pass_v0", seat="runner")
    assert policy.recurrent
    played = cli("evaluate", "toy_pass_v0", "--policy", f"runner=run:{out}",
                 "--policy", "blocker=zero", "--episodes", "1", "--no-save")  # fmt: skip
    assert played.code == 0, played.err


def test_a_zoo_mlp_file_for_an_lstm_seat_size_is_told_apart(tmp_path):
    """The zoo loader tells the two networks apart by the array's length (no refusal
    of either), so fine-tuning starts from the network the file holds."""
    from agents.zoo import load_zoo_policy

    obs, act = _spaces("toy_pass_v0", "runner")
    lstm = load_zoo_policy(_zoo_lstm(tmp_path / "l.pkl"), obs, act)
    mlp = load_zoo_policy(_zoo_lstm(tmp_path / "m.pkl", size=mlp_size(9, 2)), obs, act)
    assert lstm.recurrent and not mlp.recurrent


@pytest.mark.parametrize(
    ("size", "poison"),
    [
        pytest.param(lstm_size(9, 2), "overflow", id="lstm_overflowing_weights"),
        pytest.param(lstm_size(9, 2), "log_std", id="lstm_log_std_-1000"),
    ],
)
def test_finetuning_a_zoo_lstm_with_poisoned_weights_is_one_line(cli, tmp_path, size, poison):
    """Was a bug: a zoo LSTM whose weights are finite but huge (3e38: the network's outputs
    overflow to NaN) or whose log-std is -1000 (std underflows to 0) passes
    ``agents.zoo.read_zoo_array`` (it checks only finiteness) and ``to_sb3``; the first
    rollout of ``arena finetune-victim`` builds ``torch.distributions.Normal`` from the
    NaN mean / zero std and its argument validation raises ValueError out of
    ``model.learn`` (arena/training.py ``_train``): a traceback, exit 1. (The run
    directory is discarded; MLP zoo files fail the same way.)"""
    d, a = 9, 2

    def edit(f):
        if poison == "overflow":
            f[3 + 2 * d + 1 :] = 3e38
        else:
            f[-a:] = -1000.0

    victim = _zoo_lstm(tmp_path / "poison.pkl", edit=edit, size=size)
    out = tmp_path / "ft"
    try:
        result = _finetune(cli, out, f"zoo:{victim}")
    except ValueError as exc:
        pytest.fail(f"arena finetune-victim: traceback (ValueError: {str(exc)[:120]})")
    assert_one_line_error(result, str(victim))
    assert not out.exists()


def test_finetuning_from_a_file_without_weights_is_refused(recurrent, tmp_path):
    """Was a bug: ``arena finetune-victim --victim runner=sb3:FILE`` where FILE's ``data``
    names a RecurrentActorCriticPolicy but its ``policy.pth`` holds no weights at all
    (``{}``): ``arena/training.py _set_parameters(..., exact=False)`` loads with
    ``exact_match=False`` (``load_state_dict(strict=False)``), so every missing weight is
    silently skipped and the "fine-tuning" trains a freshly initialized network, exit 0
    (``arena evaluate`` refuses the same file: 'Missing key(s)'). Checked here at the
    function the command calls, to keep the run short; through the CLI it trains and
    exits 0."""
    import gymnasium
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.zoo import sb3_lstm_kwargs
    from arena.training import _set_parameters
    from arena.training_run import TrainingError

    empty = recurrent.variant("no_weights", state={})
    obs, act = _spaces("toy_pass_v0", "runner")
    with pytest.raises(PolicyFileError, match="Missing key"):
        sb3_victim(empty, obs, act)  # what evaluate says of it

    class _Env(gymnasium.Env):
        observation_space = obs
        action_space = act

    model = RecurrentPPO(
        "MlpLstmPolicy", DummyVecEnv([_Env]), policy_kwargs=sb3_lstm_kwargs(), device="cpu"
    )
    with pytest.raises(TrainingError):  # fails now: nothing is loaded, nothing said
        _set_parameters(model, empty, exact=False)
