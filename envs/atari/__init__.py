"""Atari games ``atari_<game>_v0`` for every ROM that ale-py ships; one seat, ``player``.

Registering is cheap: the ROM list is read from ale-py's ``md5.json`` without
importing ale-py, and ale-py / OpenCV are imported only when a game is built.

>>> import envs
>>> envs.spec("atari_pong_v0").seats
('player',)
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

from envs.registry import EnvFamily, EnvSpec, register_family

PREFIX, SUFFIX = "atari_", "_v0"
MAX_EPISODE_STEPS = 27_000
"""Agent steps (108,000 frames: the usual 30 minutes of play at frame skip 4)."""


TWO_PLAYER_ONLY = frozenset({"combat", "joust", "maze_craze", "warlords"})
"""ROMs that ale-py ships for PettingZoo's multi-agent games but that its single-player
interface refuses (``ALEInterface.isSupportedROM`` is None; loading one ends the
process). Checked against ale-py by ``tests/test_atari.py``."""


@functools.cache
def rom_names() -> tuple[str, ...]:
    """Every single-player ROM id ale-py ships (``pong``, ``space_invaders``...), sorted."""
    found = importlib.util.find_spec("ale_py")
    if found is None or not found.submodule_search_locations:
        return ()
    md5 = Path(next(iter(found.submodule_search_locations))) / "roms" / "md5.json"
    if not md5.is_file():
        return ()
    with open(md5) as fh:
        names = {name.rsplit(".", 1)[0] for name in json.load(fh)}
    return tuple(sorted(names - TWO_PLAYER_ONLY))


def _make_factory(game: str):
    def factory(**kwargs):
        from envs.atari.env import AtariEnv

        return AtariEnv(game, **kwargs)

    factory.__name__ = f"make_{game}"
    return factory


def make_spec(game: str) -> EnvSpec:
    return EnvSpec(
        id=f"{PREFIX}{game}{SUFFIX}",
        entry_point=_make_factory(game),
        seats=("player",),
        needs=("atari",),
        nondeterministic=False,
        max_episode_steps=MAX_EPISODE_STEPS,
        default_policies={},
        description=f"Atari {game} (ALE), DeepMind preprocessing: 4×84×84 gray frames",
    )


register_family(EnvFamily(prefix=PREFIX, suffix=SUFFIX, names=rom_names, make_spec=make_spec))

__all__ = ["MAX_EPISODE_STEPS", "TWO_PLAYER_ONLY", "make_spec", "rom_names"]
