"""Tiny fast games for tests and the demo."""

from envs.registry import EnvSpec, register
from envs.toy.catch import CatchEnv
from envs.toy.plane_pass import PlanePassEnv

register(
    EnvSpec(
        id="toy_pass_v0",
        entry_point=PlanePassEnv,
        seats=("runner", "blocker"),
        max_episode_steps=60,
        default_policies={"blocker": "zero"},
        opponent_obs={"runner": (4, 5, 6, 7), "blocker": (4, 5, 6, 7)},
        description="runner must get past a blocker on a plane (numpy)",
    )
)
register(
    EnvSpec(
        id="toy_catch_v0",
        entry_point=CatchEnv,
        seats=("player",),
        max_episode_steps=10 * 22,
        description="catch falling balls from 24x24 pixels (one seat)",
    )
)

__all__ = ["CatchEnv", "PlanePassEnv"]
