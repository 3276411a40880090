"""Builders of the tables and figures of ``results.json``, for its writers (and for the
legacy adapter, which rebuilds old files with them): every seat's score, bars of win
and action-flip rates, matchups played by named policies, training variants compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.artifacts.run_figures import BarChart, Figure, LineChart, Series
from arena.artifacts.run_samples import SampleRecipe
from arena.artifacts.run_tables import Cell, Score, Table

if TYPE_CHECKING:
    from arena.artifacts.run import RunResults
    from arena.artifacts.training_run import TrainingResults
    from arena.evaluation import SeatResult


def words(key: str) -> str:
    """A JSON key as words, for a heading: ``victim_win_rates`` -> ``victim win rates``."""
    return " ".join(key.replace("_", " ").split()) or key


def seat_table(
    title: str,
    label_heading: str,
    scores: Mapping[str, SeatResult],
    *,
    highlight: Sequence[str] = (),
    caption: str = "",
) -> Table:
    """One row per label: win rate and mean return with their 95% intervals, W/L/T, and
    (only when some row has them) the action-flip rate and the attack."""
    attacked = any(r.flip_rate is not None or r.attack for r in scores.values())
    columns = [label_heading, "win rate [95% CI]", "mean return [95% CI]", "wins", "losses"]
    columns += ["ties", *(("action-flip rate", "attack") if attacked else ())]
    rows = []
    for label, r in scores.items():
        row: list[Cell] = [
            label,
            Score.of(r.win_rate, r.win_rate_ci95),
            Score.of(r.mean_return, r.return_ci95),
            r.wins,
            r.losses,
            r.ties,
        ]
        if attacked:
            attack = f"{r.attack}: {r.budget}" if r.attack and r.budget else r.attack
            row += [r.flip_rate, attack]
        rows.append(tuple(row))
    names = list(scores)
    return Table(
        title=title,
        columns=tuple(columns),
        rows=tuple(rows),
        highlight=tuple(names.index(h) for h in highlight if h in names),
        caption=caption,
    )


def win_rate_bars(title: str, scores: Mapping[str, SeatResult]) -> BarChart:
    """Each label's win rate with its 95% Wilson interval."""
    return BarChart(
        title,
        "win rate (bars: 95% Wilson interval)",
        tuple(scores),
        tuple(Score.of(r.win_rate, r.win_rate_ci95) for r in scores.values()),
    )


def seat_figures(scores: Mapping[str, SeatResult]) -> tuple[Figure, ...]:
    """Win rate by seat, and the action-flip rate of the attacked seats if any."""
    figures: list[Figure] = [win_rate_bars("Win rate by seat", scores)] if scores else []
    flips = {s: r.flip_rate for s, r in scores.items() if r.flip_rate is not None}
    if flips:
        figures.append(
            BarChart(
                "Action-flip rate by attacked seat",
                "action-flip rate (attacked steps whose action changed)",
                tuple(flips),
                tuple(Score(float(f)) for f in flips.values()),
            )
        )
    return tuple(figures)


def opponent_table(
    env: str, scores: Mapping[str, SeatResult], *, victim: str, adversary: str
) -> Table:
    """A victim's score against each opponent (``"normal victim vs adversary"`` ...),
    the rows against the adversary highlighted."""
    return seat_table(
        f"Victim win rates on {env}",
        "victim vs opponent",
        scores,
        highlight=[k for k in scores if k.endswith("vs adversary")],
        caption=f"victim {victim}; adversary {adversary}",
    )


def seat_specs_text(policies: Mapping[str, str]) -> str:
    """``runner: zoo:PATH, blocker: zero``."""
    return ", ".join(f"{seat}: {spec}" for seat, spec in policies.items())


# ---------------------------------------------------------------- matchups


@dataclass(frozen=True)
class Matchup:
    """One match of named policies: every seat's score, and how to play it again."""

    env: str
    label: str
    policies: dict[str, str]
    """Seat -> policy spec."""
    seats: dict[str, SeatResult]
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """What else was measured (episodes, seconds ...), for a table of the matchups."""


def matchup_scores(
    title: str,
    matchups: Sequence[Matchup],
    *,
    finding: Callable[[str], bool],
    deterministic: bool | dict[str, bool],
    env_kwargs: Mapping[str, Any],
) -> tuple[Table, BarChart, tuple[SampleRecipe, ...]]:
    """Every seat of every matchup as a row ``game: matchup, seat`` (the rows whose
    policy spec satisfies ``finding`` highlighted), their win-rate bars, and how to
    play each matchup that names its policies, as it was played."""
    scores: dict[str, SeatResult] = {}
    found = []
    for m in matchups:
        for seat, score in m.seats.items():
            label = f"{m.env}: {m.label}, {seat}"
            scores[label] = score
            if finding(m.policies.get(seat, "")):
                found.append(label)
    recipes = tuple(
        SampleRecipe(
            env=m.env,
            policies=dict(m.policies),
            seed=m.seed,
            env_kwargs=dict(env_kwargs),
            deterministic=deterministic,
            label=f"{m.env}: {m.label}",
        )
        for m in matchups
        if m.policies
    )
    table = seat_table(title, "game: matchup, seat", scores, highlight=found)
    return table, win_rate_bars(title, scores), recipes


# ---------------------------------------------------------------- training variants


@dataclass(frozen=True)
class Variant:
    """One training run of a comparison at equal budget: its learning curve, and the
    victim's score against what it trained."""

    run: str | None
    """The training run's directory, if known."""
    timesteps: tuple[float, ...]
    win_rate: tuple[float, ...]
    """The trained player's win rate at each of ``timesteps``: greedy evaluations (with
    ``ci95``) where the run made them, else the rolling training rate."""
    final: SeatResult | None = None
    """The victim against the trained player at the end, if it was scored."""
    ci95: tuple[tuple[float, float], ...] | None = None
    greedy: bool = False


def variant_comparison(
    name: str, variants: Mapping[str, Variant]
) -> tuple[tuple[Table, Table], tuple[Figure, ...]]:
    """Variants of one game compared: the victim's score against each final adversary
    (the lowest win rate highlighted) and the training runs; the learning curves."""
    finals = {k: v.final for k, v in variants.items() if v.final is not None}
    lowest = min(finals, key=lambda k: finals[k].win_rate) if finals else None
    scores = seat_table(
        f"{name}: victim win rate against each final adversary",
        "reward variant",
        finals,
        highlight=[lowest] if lowest else [],
        caption="each adversary trained with the same budget; greedy evaluation",
    )
    runs = Table(
        f"{name}: training runs",
        ("reward variant", "run directory"),
        tuple((k, v.run) for k, v in variants.items() if v.run is not None),
    )
    curves = tuple(
        Series(k, v.timesteps, v.win_rate, v.ci95) for k, v in variants.items() if v.timesteps
    )
    greedy = all(v.greedy for v in variants.values() if v.timesteps)
    chart = LineChart(
        f"{name}: adversary win rate over training, per reward variant",
        "adversary training timesteps",
        "adversary win rate (greedy evaluations, 95% CI)"
        if greedy
        else "adversary win rate (rolling, training)",
        curves,
        y_range=(0.0, 1.0),
    )
    return (scores, runs), (chart,) if curves else ()


def training_view(
    results: TrainingResults, run_dir: Path | None, notes: list[str] | None = None
) -> RunResults:
    """How a report shows an adversary training run: its summary as the headline, its
    latest policy as the sample episode (why there is none goes to ``notes``)."""
    from arena.artifacts.run import RunResults
    from arena.artifacts.run_samples import training_sample

    adversary = results.adversary_seat
    headline = Table(
        "Adversary after training",
        ("adversary seat", "victims", "timesteps", "rolling win rate"),
        (
            (
                adversary,
                seat_specs_text(results.victims),
                results.timesteps,
                results.rolling_win_rate,
            ),
        ),
        highlight=(0,),
        caption="rolling win rate: the adversary's last training episodes",
    )
    sample = training_sample(run_dir, notes) if run_dir is not None else None
    return RunResults(
        kind="adversary training",
        title=f"an adversary trained as {adversary} in {results.env}",
        headline=headline,
        samples=(sample,) if sample is not None else (),
        extra=results.to_json(),
    )
