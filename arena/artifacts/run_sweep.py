"""A sweep of observation attacks over budgets ε (``huang2017_pong``): one
``SweepPoint`` per victim × attack × ε, shown as the table "score vs ε" and as lines
of score and action-flip rate over ε; ``sweep_results`` is its ``results.json``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arena.artifacts.run import RunResults
from arena.artifacts.run_figures import LineChart, Series
from arena.artifacts.run_samples import SampleRecipe
from arena.artifacts.run_tables import Cell, Score, Table

if TYPE_CHECKING:
    from arena.evaluation import SeatResult

SWEEP_COLUMNS = (
    "victim",
    "attack",
    "ε",
    "mean score [95% CI]",
    "win rate [95% CI]",
    "action-flip rate",
    "attacked fraction",
    "episodes",
)


@dataclass(frozen=True)
class SweepPoint:
    """One victim under one attack at one budget (ε = 0: the clean game)."""

    victim: str
    attack: str
    eps: float
    eps_text: str
    """ε as the user typed it (``1/255``)."""
    attack_spec: str | None
    """The attack played (``fgsm:eps=1/255``); None at ε = 0."""
    episodes: int | None
    score: SeatResult


def _finite(x: float | None) -> Cell:
    return x if x is not None and math.isfinite(x) else None


def sweep_table(points: Sequence[SweepPoint], units: str) -> Table:
    """Score vs ε, one row per point; the rows at the largest ε (> 0) are the finding."""
    top = max((p.eps for p in points), default=0.0)
    rows = tuple(
        (
            p.victim,
            p.attack,
            p.eps_text,
            Score.of(p.score.mean_return, p.score.return_ci95),
            Score.of(p.score.win_rate, p.score.win_rate_ci95),
            _finite(p.score.flip_rate),
            _finite(p.score.attacked_fraction),
            p.episodes,
        )
        for p in points
    )
    return Table(
        "Score vs ε",
        SWEEP_COLUMNS,
        rows,
        highlight=tuple(i for i, p in enumerate(points) if p.eps == top and top > 0),
        caption=f"ε: {units}; score: full-game return",
    )


def _series(label: str, points: list[SweepPoint], flips: bool) -> Series | None:
    if flips:
        flipped = [(p.eps, p.score.flip_rate) for p in points if p.score.flip_rate is not None]
        x, y = tuple(e for e, _ in flipped), tuple(float(f or 0.0) for _, f in flipped)
        return Series(label, x, y) if flipped else None
    scored = [p for p in points if math.isfinite(p.score.mean_return)]
    if not scored:
        return None
    intervals = [p.score.return_ci95 for p in scored]
    known = all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in intervals)
    return Series(
        label,
        tuple(p.eps for p in scored),
        tuple(p.score.mean_return for p in scored),
        tuple(intervals) if known else None,
    )


def sweep_charts(points: Sequence[SweepPoint], units: str) -> tuple[LineChart, ...]:
    """Mean score and action-flip rate vs ε, a line per victim and attack (ε on a
    symlog axis when the budgets span more than a factor of 20)."""
    groups: dict[str, list[SweepPoint]] = {}
    for p in points:
        groups.setdefault(f"{p.victim} / {p.attack}", []).append(p)
    positive = sorted({p.eps for p in points if p.eps > 0})
    wide = bool(positive) and positive[-1] / positive[0] > 20
    charts = []
    for flips, y_label in ((False, "mean score (bars: 95% CI)"), (True, "action-flip rate")):
        lines = (_series(k, sorted(g, key=lambda p: p.eps), flips) for k, g in groups.items())
        series = [s for s in lines if s is not None]
        if series:
            charts.append(
                LineChart(
                    f"{y_label.split(' (')[0].capitalize()} vs ε",
                    f"ε ({units})",
                    y_label,
                    tuple(series),
                    x_scale="symlog" if wide else "linear",
                )
            )
    return tuple(charts)


def sweep_sample(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The episode worth watching: the first victim under FGSM (else the first attack)
    at its largest ε; None if nothing was attacked."""
    attacked = [p for p in points if p.attack_spec is not None]
    if not attacked:
        return None
    first = next((p for p in attacked if p.attack == "fgsm"), attacked[0])
    same = [p for p in attacked if p.attack == first.attack and p.victim == first.victim]
    return max(same, key=lambda p: p.eps)


def sweep_results(
    points: Sequence[SweepPoint],
    units: str,
    *,
    env: str,
    seat: str | None,
    victims: Mapping[str, str],
    seed: int,
    env_kwargs: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> RunResults:
    """The results of a sweep: score vs ε (the largest ε is the finding), score and
    action-flip rate vs ε, and how to play the first victim (``victims``: name ->
    policy spec) in ``seat`` at the largest ε, as the sweep played it (no episode
    without a seat)."""
    point = sweep_sample(points)
    recipe = None
    if seat is not None and point is not None and point.attack_spec and point.victim in victims:
        recipe = SampleRecipe(
            env=env,
            policies={seat: victims[point.victim]},
            seed=seed,
            attacks={seat: point.attack_spec},
            env_kwargs=dict(env_kwargs),
            label=f"victim {point.victim} under {point.attack_spec}",
        )
    return RunResults(
        kind="huang2017_pong",
        title=f"score vs ε on {env}",
        headline=sweep_table(points, units),
        figures=sweep_charts(points, units),
        samples=(recipe,) if recipe is not None else (),
        extra=dict(extra or {}),
    )
