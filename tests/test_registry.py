"""envs registry: make, spec, unknown ids, and the conformance suite over every game."""

from __future__ import annotations

import importlib.util

import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import envs
from envs.registry import EnvSpec

_AVAILABLE = {
    "mujoco": importlib.util.find_spec("mujoco") is not None,
    "atari": importlib.util.find_spec("ale_py") is not None,
}


def _params(ids: list[str]):
    out = []
    for env_id in ids:
        spec = envs.spec(env_id)
        marks = [getattr(pytest.mark, need) for need in spec.needs]
        missing = [n for n in spec.needs if not _AVAILABLE.get(n, False)]
        if missing:
            marks.append(pytest.mark.skip(reason=f"needs {', '.join(missing)}"))
        if spec.needs:  # physics and emulator games: conformance is the slow tier
            marks.append(pytest.mark.slow)
        out.append(pytest.param(env_id, marks=marks, id=env_id))
    return out


@pytest.mark.parametrize("env_id", _params(envs.list_ids(families=False)))
def test_every_game_passes_pettingzoo_conformance(env_id):
    # Adding a game adds no test code: the spec says what it needs.
    parallel_api_test(envs.make(env_id), num_cycles=200)
    parallel_seed_test(lambda: envs.make(env_id), num_cycles=50)


@pytest.mark.parametrize("env_id", _params(envs.list_ids(families=False)))
def test_spec_seats_match_the_game(env_id):
    env = envs.make(env_id)
    assert tuple(env.possible_agents) == envs.spec(env_id).seats
    env.close()


def test_unknown_id_lists_the_valid_ones():
    with pytest.raises(envs.EnvError) as info:
        envs.make("toy_pas_v0")
    message = str(info.value)
    assert "unknown env id 'toy_pas_v0'" in message
    assert "did you mean toy_pass_v0" in message
    assert "toy_catch_v0" in message
    assert "\n" not in message


def test_ids_must_be_versioned():
    with pytest.raises(envs.EnvError, match="versioned"):
        EnvSpec(id="unversioned", entry_point=dict, seats=("a",))


def test_register_refuses_duplicates_and_unknown_default_seats():
    spec = envs.spec("toy_pass_v0")
    with pytest.raises(envs.EnvError, match="already registered"):
        envs.register(spec)
    with pytest.raises(envs.EnvError, match="unknown seats"):
        EnvSpec(id="x_v0", entry_point=dict, seats=("a",), default_policies={"b": "zero"})


def test_unknown_seat_and_keyword_errors_name_the_valid_choices():
    with pytest.raises(envs.EnvError, match="valid seats: runner, blocker"):
        envs.spec("toy_pass_v0").check_seat("goalie")
    with pytest.raises(envs.EnvError, match="unexpected keyword"):
        envs.make("toy_pass_v0", gravity=3)


def test_kwargs_override_defaults():
    env = envs.make("toy_catch_v0", size=16, balls=2)
    obs, _ = env.reset(seed=0)
    assert obs["player"].shape == (1, 16, 16)
