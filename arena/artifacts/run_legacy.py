"""``results.json`` before schema version 1, converted to ``RunResults``.

Before version 1 each writer chose its own shape: ``arena evaluate`` wrote
``MatchResult.to_json`` (``seats``), ``gleave2020`` its ``games`` (victim win rates, or a
reward study's curves), ``huang2017_pong`` its ``rows`` (score vs ε), ``zoo_fidelity``
its ``matchups``, ``arena train-adversary`` its summary, ``arena demo`` a list of rows.
``results_from_legacy`` is the only code that knows those shapes (the experiments' in
``run_legacy_experiments``, their values in ``run_legacy_fields``); it reads them into
the builders' types and builds what a writer of version 1 builds. What it cannot place
is kept in ``RunResults.extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arena.artifacts import run_legacy_experiments as experiments
from arena.artifacts.base import is_number
from arena.artifacts.run import RunResults
from arena.artifacts.run_builders import seat_figures, seat_table, training_view, words
from arena.artifacts.run_fields import as_text, finite
from arena.artifacts.run_legacy_fields import cell, is_score_map, pair, seat, seed_of, specs
from arena.artifacts.run_samples import SampleRecipe
from arena.artifacts.run_tables import Cell, Score, Table


def results_from_legacy(
    data: Any,
    where: str,
    *,
    config: Mapping[str, Any] | None = None,
    run_dir: Path | None = None,
    root: Path | None = None,
    notes: list[str] | None = None,
) -> RunResults:
    """A ``results.json`` without ``schema_version`` as ``RunResults``.

    ``config`` (the run's ``config.json`` or ``adversary_run.json``) and ``run_dir``
    supply what the old files left out: the policies to play a sample episode with, the
    record an evaluate run wrote. Without them the results have no samples. With
    ``root``, a training run the file names is read only inside ``root``; why a sample
    was left out goes to ``notes``.
    """
    config = dict(config or {})
    notes = notes if notes is not None else []
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return RunResults("results", "results", tables=tuple(row_tables("Results", data)))
    if not isinstance(data, dict):
        return RunResults("results", "results", extra={"results": data})
    if is_score_map(data.get("seats")):
        return _evaluate(data, where, config)
    if isinstance(data.get("games"), dict) and data["games"]:
        return experiments.gleave(data, where, config, root=root, notes=notes)
    if isinstance(data.get("rows"), list) and data["rows"]:
        return experiments.huang(data, where, config) or generic(data, where)
    if isinstance(data.get("matchups"), list) and data["matchups"]:
        return experiments.zoo_fidelity(data, where, config)
    if isinstance(data.get("adversary_seat"), str) and isinstance(data.get("victims"), dict):
        return _training(data, where, run_dir, notes)
    return generic(data, where)


# ---------------------------------------------------------------- the arena's own shapes


def _evaluate(data: dict[str, Any], where: str, config: dict[str, Any]) -> RunResults:
    """``arena evaluate``: ``{env, episodes, seed, seats: {seat: score}, lengths}``."""
    seats = {s: seat(v, f"{where}: seats.{s}") for s, v in data["seats"].items()}
    attacks = {s: a for s, a in (config.get("attacks") or {}).items() if isinstance(a, str)}
    samples: tuple[SampleRecipe, ...] = ()
    policies = specs(config.get("policies"))
    if isinstance(config.get("env"), str) and policies:
        det = config.get("deterministic", True)
        samples = (
            SampleRecipe(
                env=config["env"],
                policies=policies,
                seed=seed_of(config),
                attacks=attacks,
                env_kwargs=dict(config.get("env_kwargs") or {}),
                deterministic=det if isinstance(det, bool) else dict(det),
                label="its policies" + (" and attacks" if attacks else ""),
            ),
        )
    record = config.get("record")
    env, episodes = data.get("env", config.get("env", "?")), data.get("episodes", "?")
    env, episodes, seed = (as_text(v) for v in (env, episodes, data.get("seed", "?")))
    return RunResults(
        kind="evaluate",
        title=f"scores on {env} over {episodes} episodes (seed {seed})",
        headline=(
            seat_table(
                "Scores by seat", "seat", seats, highlight=[s for s in seats if s in attacks]
            )
            if seats
            else None
        ),
        figures=seat_figures(seats),
        records=(record,) if isinstance(record, str) else (),
        samples=samples,
        extra=data,
    )


def _training(
    data: dict[str, Any], where: str, run_dir: Path | None, notes: list[str]
) -> RunResults:
    """``arena train-adversary``'s summary, read as its type."""
    from arena.artifacts.training_run import TrainingResults

    return training_view(TrainingResults.from_json(data, where), run_dir, notes)


def generic(data: dict[str, Any], where: str) -> RunResults:
    """Any other object: its numbers and texts as one table, tables of its score maps
    and row lists; the rest stays in ``extra``."""
    scalars = [(words(k), cell(v)) for k, v in data.items() if _is_scalar(v)]
    tables = [Table("Results", ("quantity", "value"), tuple(scalars))] if scalars else []
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if _is_scalar(value):
            continue
        if is_score_map(value):
            scores = {k: seat(v, f"{where}: {key}.{k}") for k, v in value.items()}
            tables.append(seat_table(words(key).capitalize(), "label", scores))
        elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            tables += row_tables(words(key).capitalize(), value)
        else:
            extra[key] = value
    return RunResults("results", "results", tables=tuple(tables), extra=extra)


def row_tables(title: str, rows: list[dict[str, Any]]) -> list[Table]:
    """Rows of an old file as a table: a ``X_ci95`` column joins its ``X`` (or
    ``mean_X``) as a score; columns no row fills are left out."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    merged: dict[str, str] = {}
    for c in columns:
        if c.endswith("_ci95"):
            base = c[: -len("_ci95")]
            for cand in (base, f"mean_{base}"):
                if cand in columns:
                    merged[cand] = c
                    break
    shown = [
        c
        for c in columns
        if c not in merged.values() and any(r.get(c) not in (None, "", [], {}) for r in rows)
    ]
    body = tuple(
        tuple(
            _score(r, c, merged[c]) if c in merged and is_number(r.get(c)) else cell(r.get(c))
            for c in shown
        )
        for r in rows
    )
    heads = tuple(words(c) + (" [95% CI]" if c in merged else "") for c in shown)
    return [Table(title, heads, body)] if shown else []


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _score(row: Mapping[str, Any], key: str, ci_key: str) -> Cell:
    value = finite(row.get(key))
    if value is None:
        return None
    ci: Any = row.get(ci_key)
    inside = pair(ci) and ci[0] - 1e-9 <= value <= ci[1] + 1e-9
    return Score(value, (float(ci[0]), float(ci[1])) if inside else None)
