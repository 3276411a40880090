"""Competitive MuJoCo games (Bansal et al. 2018) that the agent-zoo victims play.

Registered here cheaply: ``mujoco`` is imported only when a game is made.

=========================  ======================  ==========  ===========
id                         seats                   agent       observation
=========================  ======================  ==========  ===========
you_shall_not_pass_v0      runner, blocker         humanoid    380
kick_and_defend_v0         kicker, keeper          humanoid    384
sumo_humans_v0             fighter_0, fighter_1    humanoid    395
sumo_ants_v0               fighter_0, fighter_1    ant         137
run_to_goal_humans_v0      runner_0, runner_1      humanoid    380
run_to_goal_ants_v0        runner_0, runner_1      ant         122
=========================  ======================  ==========  ===========
"""

from __future__ import annotations

from typing import Any

from envs.registry import EnvSpec, register


def _factory(class_name: str):
    def make(**kwargs: Any) -> Any:
        from envs.competition import games

        return getattr(games, class_name)(**kwargs)

    make.__name__ = f"make_{class_name}"
    return make


_GAMES = (
    (
        "you_shall_not_pass_v0",
        "YouShallNotPassEnv",
        ("runner", "blocker"),
        "humanoid runner must pass x = -4; humanoid blocker stops it",
    ),
    (
        "kick_and_defend_v0",
        "KickAndDefendEnv",
        ("kicker", "keeper"),
        "humanoid kicker shoots a ball at a goal a humanoid keeper defends",
    ),
    (
        "sumo_humans_v0",
        "SumoHumansEnv",
        ("fighter_0", "fighter_1"),
        "two humanoids push each other off a round arena",
    ),
    (
        "sumo_ants_v0",
        "SumoAntsEnv",
        ("fighter_0", "fighter_1"),
        "two ants push each other off a round arena",
    ),
    (
        "run_to_goal_humans_v0",
        "RunToGoalHumansEnv",
        ("runner_0", "runner_1"),
        "two humanoids race to the goal line behind the other",
    ),
    (
        "run_to_goal_ants_v0",
        "RunToGoalAntsEnv",
        ("runner_0", "runner_1"),
        "two ants race to the goal line behind the other",
    ),
)


# What Gleave et al.'s masked victim sees of its opponent. Their masker replaces the
# opponent's qpos (gym_compete's ``get_other_qpos``) by its value at the episode's
# start, and the observation is computed from it: the other agent's qpos is frozen
# (the standard part's last 24 entries, ant: 15), while its position relative to one's
# own (sumo: other xy - own xy; kick-and-defend: the qpos's x, y as other - own) is the
# frozen position minus where one is now. Sumo's "R - |other xy|" is computed by the
# scene from the true opponent, so the masked victim still sees it move.
def _span(start: int, stop: int, *more: int) -> tuple[int, ...]:
    return (*range(start, stop), *more)


_OPPONENT_OBS = {
    "you_shall_not_pass_v0": _span(356, 380),
    "kick_and_defend_v0": _span(356, 378),
    "sumo_humans_v0": _span(356, 380),
    "sumo_ants_v0": _span(107, 122),
    "run_to_goal_humans_v0": _span(356, 380),
    "run_to_goal_ants_v0": _span(107, 122),
}
_OWN_XY = (((0, 1.0),), ((1, 1.0),))  # own qpos x, y: entries 0, 1
# kick-and-defend drops its own x, y; own x = 4 - (T - ball x) - (ball x - own x),
# own y = 3 - (3 - ball y) - (ball y - own y): entries 381 + 378 and 382 + 379, negated
_KICK_OWN_XY = (((381, -1.0), (378, -1.0)), ((382, -1.0), (379, -1.0)))
_OPPONENT_RELATIVE = {
    "kick_and_defend_v0": tuple(zip((354, 355), _KICK_OWN_XY, strict=True)),
    "sumo_humans_v0": tuple(zip((380, 381), _OWN_XY, strict=True)),
    "sumo_ants_v0": tuple(zip((122, 123), _OWN_XY, strict=True)),
}

for _id, _cls, _seats, _desc in _GAMES:
    register(
        EnvSpec(
            id=_id,
            entry_point=_factory(_cls),
            seats=_seats,
            needs=("mujoco",),
            max_episode_steps=500,
            description=_desc + " (MuJoCo; agent-zoo compatible)",
            opponent_obs=dict.fromkeys(_seats, _OPPONENT_OBS[_id]),
            opponent_relative=dict.fromkeys(_seats, _OPPONENT_RELATIVE.get(_id, ())),
        )
    )
