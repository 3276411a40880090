"""The arena: hosts games and agents, runs matches, scores, records and replays them."""

from arena import (
    perturber,  # noqa: F401  (registers the learned: attack)
    players,  # noqa: F401  (registers the run: and masked: policy kinds)
)
from arena.evaluation import SeatResult, wilson_interval
from arena.match import EpisodeOutcome, MatchError, MatchResult, run_match
from arena.recording import EpisodeRecord, RecordError

__all__ = [
    "EpisodeOutcome",
    "EpisodeRecord",
    "MatchError",
    "MatchResult",
    "RecordError",
    "SeatResult",
    "run_match",
    "wilson_interval",
]
