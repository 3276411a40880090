"""Verify a record: "the record is the episode".

``resimulate`` checks one recorded episode against the game and the policies:

1. structure, before simulating: every seat's actions (and an attacked seat's clean
   actions) have the action space's exact dtype and shape and lie in it; rewards are
   float64, attacked flags bool, δ float32; the reset seed is the manifest's and the
   one ``(seed, index)`` derives; the manifest's attacks are the record's attacked
   seats; every policy file the manifest names that exists has its sha256; an
   attacked step's δ is inside the attack's budget and an unattacked step's δ is 0;
2. re-simulation from the reset seed: every observation and reward is compared
   exactly, and the game must end the episode (terminated, or truncated at its step
   limit) exactly at the last recorded step, not earlier;
3. re-derivation: the chunk of episodes the arena played in lockstep is played again
   over the recorded observations with the manifest's policies and attacks, seeded as
   ``arena.match`` seeds them, and every action, δ, clean action and attacked flag
   must come out bit for bit (where a policy file is unavailable, a note says what
   was not re-derived: nothing passes silently);
4. the manifest's per-episode length, returns and outcome must be the simulated ones.

Steps are numbered as the game counts them: step 0 is the reset, step k the k-th
``env.step``; the arrays' row ``t`` (action, reward, δ, clean action, attacked flag)
belongs to step ``t + 1``. A difference is a failed ``EpisodeCheck`` naming the
episode, the step and the field; a record that cannot be read at all (malformed
manifest or arrays) is a ``RecordError``.

The modules, one job each: ``check`` (what a check says), ``structure`` (1),
``policies`` (the manifest's policy references and loading them), ``simulate`` (2),
``rederive`` (3), ``notes`` (what was not checked), ``verify`` (the entry points, 4).
"""

from arena.replay.check import EpisodeCheck
from arena.replay.notes import NOT_REDERIVED
from arena.replay.policies import MAX_POLICY_FILES
from arena.replay.simulate import make_env
from arena.replay.structure import DELTA_TOLERANCE
from arena.replay.verify import resimulate, verify

__all__ = [
    "DELTA_TOLERANCE",
    "MAX_POLICY_FILES",
    "NOT_REDERIVED",
    "EpisodeCheck",
    "make_env",
    "resimulate",
    "verify",
]
