"""The experiments' ``results.json`` before schema version 1, converted to
``RunResults`` with the builders their writers use now: ``gleave2020``'s ``games``,
``huang2017_pong``'s ``rows``, ``zoo_fidelity``'s ``matchups``. Called by
``run_legacy.results_from_legacy``, which tells the shapes apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from arena.artifacts.base import is_int
from arena.artifacts.run import RunResults
from arena.artifacts.run_builders import (
    Matchup,
    Variant,
    matchup_scores,
    opponent_table,
    variant_comparison,
    win_rate_bars,
)
from arena.artifacts.run_fields import RunFileError, as_text, finite
from arena.artifacts.run_figures import Figure
from arena.artifacts.run_legacy_fields import is_score_map, seat, seed_of, specs
from arena.artifacts.run_samples import SampleRecipe, training_sample
from arena.artifacts.run_sweep import SweepPoint, sweep_results
from arena.artifacts.run_tables import Table


def gleave(
    data: dict[str, Any],
    where: str,
    config: dict[str, Any],
    *,
    root: Path | None = None,
    notes: list[str] | None = None,
) -> RunResults:
    """``gleave2020``: per game, the victim's win rates against the adversary and the
    baselines, or (reward study) each reward variant's curve and final score. A trained
    adversary is read only inside ``root`` (if given); why not goes to ``notes``."""
    notes = notes if notes is not None else []
    tables: list[Table] = []
    figures: list[Figure] = []
    samples: list[SampleRecipe] = []
    for name, game in data["games"].items():
        at = f"{where}: games.{name}"
        if not isinstance(game, dict):
            raise RunFileError(f"{at} must be an object, got {type(game).__name__}")
        if isinstance(game.get("victim_win_rates"), dict):
            rates = {
                k: seat(v, f"{at}.victim_win_rates.{k}")
                for k, v in game["victim_win_rates"].items()
            }
            env = as_text(game.get("env", name))
            victim, adversary = game.get("victim", "?"), game.get("adversary", "?")
            tables.append(
                opponent_table(env, rates, victim=as_text(victim), adversary=as_text(adversary))
            )
            figures.append(win_rate_bars(f"Victim win rates on {env}", rates))
            recipe = _against(game.get("victim"), adversary, config, root, notes)
            if recipe is not None:
                samples.append(replace(recipe, label="normal victim vs adversary"))
            continue
        variants = {k: _variant(v, f"{at}.{k}") for k, v in game.items() if isinstance(v, dict)}
        compared, charts = variant_comparison(name, variants)
        tables += compared
        figures += charts
        for label, variant in variants.items():
            recipe = (
                _against(None, f"run:{variant.run}", config, root, notes) if variant.run else None
            )
            if recipe is not None:
                samples.append(replace(recipe, label=f"victim vs the final '{label}' adversary"))
    names = ", ".join(data["games"])
    return RunResults(
        kind="gleave2020",
        title=f"adversarial policies against frozen victims: {names}",
        headline=tables[0],
        tables=tuple(tables[1:]),
        figures=tuple(figures),
        samples=tuple(samples),
        extra={k: v for k, v in data.items() if k != "games"},
    )


def _variant(data: dict[str, Any], where: str) -> Variant:
    """One reward variant of a study: ``{run, timesteps, win_rate,
    victim_vs_final_adversary}``, each part optional."""
    steps, rates = data.get("timesteps"), data.get("win_rate")
    if not (isinstance(steps, list) and isinstance(rates, list) and len(steps) == len(rates)):
        steps, rates = [], []
    xs, ys = [finite(x) for x in steps], [finite(y) for y in rates]
    curve = all(v is not None for v in [*xs, *ys])
    final = data.get("victim_vs_final_adversary")
    at = f"{where}.victim_vs_final_adversary"
    return Variant(
        run=data["run"] if isinstance(data.get("run"), str) else None,
        timesteps=tuple(x for x in xs if x is not None) if curve else (),
        win_rate=tuple(y for y in ys if y is not None) if curve else (),
        final=seat(final, at) if isinstance(final, dict) else None,
    )


def huang(data: dict[str, Any], where: str, config: dict[str, Any]) -> RunResults | None:
    """``huang2017_pong``: one row per victim × attack × ε, score and win rate with
    their intervals; None without a row that has its ε."""
    points = [
        SweepPoint(
            victim=as_text(r.get("victim")),
            attack=as_text(r.get("attack")),
            eps=eps,
            eps_text=as_text(r.get("eps_text", r["eps"])),
            attack_spec=r["attack_spec"] if isinstance(r.get("attack_spec"), str) else None,
            episodes=r["episodes"] if is_int(r.get("episodes")) else None,
            score=seat(r, f"{where}: rows[{i}]"),
        )
        for i, r in enumerate(data["rows"])
        if isinstance(r, dict) and (eps := finite(r.get("eps"))) is not None
    ]
    if not points:
        return None
    env = config.get("env")
    return sweep_results(
        points,
        as_text(config.get("eps_units") or "L∞ on the network input"),
        env=env if isinstance(env, str) else "Atari",
        seat=_only_seat(env) if isinstance(env, str) else None,
        victims=specs(config.get("victims")),
        seed=seed_of(config),
        env_kwargs=dict(config.get("env_kwargs") or {}),
        extra={k: v for k, v in data.items() if k != "rows"},
    )


def zoo_fidelity(data: dict[str, Any], where: str, config: dict[str, Any]) -> RunResults:
    """``zoo_fidelity``: per game and matchup, every seat's score."""
    matchups = []
    for i, m in enumerate(data["matchups"]):
        at = f"{where}: matchups[{i}]"
        if not isinstance(m, dict) or not is_score_map(m.get("seats")):
            raise RunFileError(f"{at} must be an object with 'seats' (seat -> score)")
        matchups.append(
            Matchup(
                env=as_text(m.get("env")),
                label=as_text(m.get("matchup")),
                policies=specs(m.get("policies")) if isinstance(m.get("env"), str) else {},
                seats={s: seat(v, f"{at}.seats.{s}") for s, v in m["seats"].items()},
                seed=seed_of(m),
            )
        )
    det = config.get("deterministic", False)
    headline, bars, samples = matchup_scores(
        "Win rates of the zoo agents",
        matchups,
        finding=lambda spec: spec.startswith("zoo:"),
        deterministic=det if isinstance(det, bool) else False,
        env_kwargs=dict(config.get("env_kwargs") or {}),
    )
    return RunResults(
        kind="zoo_fidelity",
        title="zoo agents in the rebuilt games",
        headline=headline,
        figures=(bars,),
        samples=samples,
        extra={k: v for k, v in data.items() if k != "matchups"},
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name
        return False


def _only_seat(env: str) -> str | None:
    """The seat of a one-seat game (an Atari victim has nobody to sit beside)."""
    import envs

    try:
        seats = envs.spec(env).seats
    except envs.EnvError:
        return None
    return seats[0] if len(seats) == 1 else None


def _against(
    victim: Any,
    adversary: Any,
    config: Mapping[str, Any],
    root: Path | None = None,
    notes: list[str] | None = None,
) -> SampleRecipe | None:
    """The victim against a trained adversary ``run:DIR`` (seats, game and, unless
    given, the victim from the adversary's training run), seeded as the run was. Zoo
    victims act with sampled actions, as gleave2020 scored them; the rest greedily.
    With ``root``, a training run outside it is not read (a note says so)."""
    if not isinstance(adversary, str) or not adversary.startswith("run:"):
        return None
    directory = Path(adversary[len("run:") :])
    if root is not None and not _inside(directory, root):
        if notes is not None:
            notes.append(
                f"no sample of {as_text(adversary, 100)}: it lies outside the runs directory"
            )
        return None
    trained = training_sample(directory, notes)
    if trained is None or len(trained.policies) != 2:
        return None
    victim_seat, adversary_seat = trained.policies  # the victim's seat first
    policies = {victim_seat: victim if isinstance(victim, str) else trained.policies[victim_seat]}
    policies[adversary_seat] = adversary
    return SampleRecipe(
        env=trained.env,
        policies=policies,
        seed=seed_of(config),
        env_kwargs=trained.env_kwargs,
        deterministic={s: "zoo:" not in spec for s, spec in policies.items()},
    )
