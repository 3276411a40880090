"""Scoring: win/tie/loss counts, Wilson intervals, return statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

OUTCOMES = ("win", "loss", "tie")


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Normal-approximation 95% interval of a mean (the mean itself when n < 2)."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    m = sum(values) / n
    if n < 2:
        return (m, m)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = 1.959963984540054 * sd / math.sqrt(n)
    return (m - half, m + half)


@dataclass(frozen=True)
class SeatResult:
    """One seat's score over a match."""

    wins: int
    losses: int
    ties: int
    win_rate: float
    win_rate_ci95: tuple[float, float]
    mean_return: float
    std_return: float
    return_ci95: tuple[float, float]
    flip_rate: float | None = None
    """Fraction of attacked-seat steps where the attack changed the victim's action."""
    attacked_fraction: float | None = None
    """Fraction of steps on which the attack perturbed the observation."""
    attack: str | None = None
    budget: str | None = None
    """The attack's budget in words, with its unit."""

    @classmethod
    def from_episodes(
        cls,
        outcomes: Sequence[str],
        returns: Sequence[float],
        *,
        flips: int | None = None,
        attacked: int | None = None,
        steps: int | None = None,
        attack: str | None = None,
        budget: str | None = None,
    ) -> SeatResult:
        n = len(outcomes)
        wins, losses = outcomes.count("win"), outcomes.count("loss")
        mean = sum(returns) / n if n else math.nan
        std = math.sqrt(sum((r - mean) ** 2 for r in returns) / n) if n else math.nan
        return cls(
            wins=wins,
            losses=losses,
            ties=n - wins - losses,
            win_rate=wins / n if n else math.nan,
            win_rate_ci95=wilson_interval(wins, n),
            mean_return=mean,
            std_return=std,
            return_ci95=mean_ci95(list(returns)),
            flip_rate=(flips / steps) if (flips is not None and steps) else None,
            attacked_fraction=(attacked / steps) if (attacked is not None and steps) else None,
            attack=attack,
            budget=budget,
        )

    def to_json(self) -> dict:
        out = asdict(self)
        out["win_rate_ci95"] = list(self.win_rate_ci95)
        out["return_ci95"] = list(self.return_ci95)
        return {k: v for k, v in out.items() if v is not None}
