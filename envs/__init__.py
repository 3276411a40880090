"""Games: PettingZoo ``ParallelEnv`` games behind one registry.

>>> import envs
>>> env = envs.make("toy_pass_v0")
>>> sorted(env.possible_agents)
['blocker', 'runner']

This package imports nothing else of the project.
"""

from envs.registry import (
    EnvError,
    EnvFamily,
    EnvSpec,
    list_ids,
    list_specs,
    make,
    register,
    register_family,
    spec,
)

__all__ = [
    "EnvError",
    "EnvFamily",
    "EnvSpec",
    "list_ids",
    "list_specs",
    "make",
    "register",
    "register_family",
    "spec",
]
