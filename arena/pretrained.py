"""Pretrained policies the arena knows by name: the files shipped inside the package
(``arena/assets``) and the agent-zoo file of every seat of the competitive MuJoCo games.

>>> spec = f"sb3:{shipped('toy_pass_v0__runner.zip')}"  # a toy victim, no data needed
>>> zoo_spec("you_shall_not_pass_v0", "runner")
'zoo:you-shall-not-pass/agent2_parameters-v1.pkl'

A relative zoo spec is looked up in ``$ARENA_ZOO_DIR`` when it is loaded
(``agents.zoo``); pass ``zoo_dir`` to name the directory instead.
"""

from __future__ import annotations

from pathlib import Path

from arena.errors import ArenaError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
"""The package's data folder: the toy victims and a trained adversary."""

ZOO_FILES: dict[str, dict[str, str]] = {
    "you_shall_not_pass_v0": {
        "runner": "you-shall-not-pass/agent2_parameters-v1.pkl",
        "blocker": "you-shall-not-pass/agent1_parameters-v1.pkl",
    },
    "kick_and_defend_v0": {
        "kicker": "kick-and-defend/kicker/agent1_parameters-v1.pkl",
        "keeper": "kick-and-defend/defender/agent2_parameters-v1.pkl",
    },
    "sumo_humans_v0": {
        "fighter_0": "sumo/humans/agent_parameters-v1.pkl",
        "fighter_1": "sumo/humans/agent_parameters-v1.pkl",
    },
    "sumo_ants_v0": {
        "fighter_0": "sumo/ants/agent_parameters-v1.pkl",
        "fighter_1": "sumo/ants/agent_parameters-v1.pkl",
    },
    "run_to_goal_humans_v0": {
        "runner_0": "run-to-goal/humans/agent1_parameters-v1.pkl",
        "runner_1": "run-to-goal/humans/agent2_parameters-v1.pkl",
    },
    "run_to_goal_ants_v0": {
        "runner_0": "run-to-goal/ants/agent1_parameters-v1.pkl",
        "runner_1": "run-to-goal/ants/agent2_parameters-v1.pkl",
    },
}
"""Zoo file of each seat of each game (in the game's seat order), relative to the zoo
directory (``../shared/zoo/README.md``)."""


class PretrainedError(ArenaError):
    """A shipped file or a zoo agent that the arena does not have."""


def shipped(name: str) -> Path:
    """The path of a file shipped in ``arena/assets`` (e.g. ``toy_pass_v0__runner.zip``)."""
    path = ASSETS_DIR / name
    if name in ("", ".", "..") or path.parent != ASSETS_DIR or not path.exists():
        valid = ", ".join(sorted(p.name for p in ASSETS_DIR.iterdir()))
        raise PretrainedError(f"no shipped file {name!r}; valid: {valid}")
    return path


def zoo_spec(env_id: str, seat: str, zoo_dir: str | Path | None = None) -> str:
    """The ``zoo:`` policy spec of ``seat``'s agent in ``env_id`` (relative to
    ``$ARENA_ZOO_DIR``, or inside ``zoo_dir`` when given)."""
    if env_id not in ZOO_FILES:
        raise PretrainedError(f"no zoo agents for {env_id!r}; valid: {', '.join(ZOO_FILES)}")
    files = ZOO_FILES[env_id]
    if seat not in files:
        raise PretrainedError(f"{env_id} has no seat {seat!r}; valid: {', '.join(files)}")
    rel = files[seat]
    return f"zoo:{Path(zoo_dir) / rel}" if zoo_dir is not None else f"zoo:{rel}"
