"""The notes of a check: what was not checked, said rather than skipped."""

from __future__ import annotations

NOT_REDERIVED = (
    "its actions, δ, clean actions and attacked flags were not re-derived "
    "(observations, rewards and the end were checked)"
)


def not_rederived(why: str) -> str:
    """The note for an episode whose actions could not be played again, and why."""
    return f"{why}: {NOT_REDERIVED}"


def sampling_unknown(seat: str) -> str:
    """The note for a seat whose actions may have been sampled or not."""
    return (
        f"actions of {seat!r} not re-derived: the manifest does not say whether they were "
        f"sampled ('deterministic')"
    )


def of_episode(index: int, notes: tuple[str, ...]) -> tuple[str, ...]:
    """The notes as the episode's check lists them, each naming the episode."""
    return tuple(f"episode {index}: {n}" for n in notes)
