"""``arena scorecard``: one robustness verdict per victim across the observation-attack
families, each at every ε of a grid; the worst case over families is the verdict.

The games run as the cells of a grid (``arena.grid``: one ``arena evaluate`` per
family and ε, the clean game once), on this machine or on Ray, so a scorecard resumes
and spreads like any grid. ε is on the victim's input: pixels on [0, 1], state vectors
in standard deviations of each dimension as the victim normalises them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.artifacts.scorecard import FamilyRow, OpponentRow, Scorecard, Verdict
from arena.errors import UsageError

EPS_GRIDS = {
    ("pixels", "quick"): ("0.0002", "0.001", "1/255", "4/255"),
    ("pixels", "full"): ("0.0001", "0.0002", "0.0005", "0.001", "1/255", "2/255", "4/255", "8/255"),
    ("state", "quick"): ("0.01", "0.02", "0.05", "0.1"),
    ("state", "full"): ("0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"),
}
"""ε per input kind and budget: pixels on [0, 1] (1/255 = one grey level); state
vectors in the victim's standard deviations. The grids reach down to where the
published victims still hold (PGD takes the zoo runner to 0 wins at 0.05 and Pong's
PPO to -20 at 0.0005) and up to where adversarial training is meant to help (4/255)."""


@dataclass(frozen=True)
class Family:
    name: str
    spec: str
    """The attack spec, ``{eps}`` for ε; ``{eps_l2}`` for the L2 radius ``ε·√d`` (d
    input entries): the L2 ball whose root-mean-square change per entry is ε."""
    applies: Callable[[Any, str], str | None]
    """``(victim policy, input kind) -> why not`` (None: it applies)."""


def _differentiable(victim: Any, kind: str) -> str | None:
    from agents.policies import TorchPolicy

    if not isinstance(victim, TorchPolicy):
        return f"needs gradients; {type(victim).__name__} has none"
    return None


def _pixels(victim: Any, kind: str) -> str | None:
    return _differentiable(victim, kind) or (
        None if kind == "pixels" else "defined on images; this victim sees a state vector"
    )


def _discrete(victim: Any, kind: str) -> str | None:
    from gymnasium import spaces

    why = _differentiable(victim, kind)
    if why is None and not isinstance(victim.action_space, spaces.Discrete):
        why = "ranks discrete actions; this victim's actions are continuous"
    return why


def _categorical(victim: Any, kind: str) -> str | None:
    from gymnasium import spaces

    why = _differentiable(victim, kind)
    if why is None and not isinstance(victim.action_space, spaces.Discrete):
        why = (
            "its gradient is zero at the clean input for a continuous victim (the clean "
            "action is the Gaussian's mode): one step from there moves nothing; pgd's "
            "random start and mad apply"
        )
    return why


def _value_head(victim: Any, kind: str) -> str | None:
    why = _differentiable(victim, kind)
    if why is None:
        import torch

        probe = torch.zeros((1, *victim.observation_space.shape))
        if victim.value(victim.input_from_obs(probe.numpy())) is None:
            why = "needs the victim's value head; it has none"
    return why


FAMILIES = (
    Family("noise", "noise:eps={eps}", _differentiable),
    Family("fgsm", "fgsm:eps={eps}", _categorical),
    Family("pgd", "pgd:eps={eps},steps=10", _differentiable),
    Family("pgd-l2", "pgd:eps={eps_l2},steps=10,norm=l2", _differentiable),
    Family("timed", "timed:eps={eps}", _discrete),
    Family("universal", "universal:eps={eps},fit_steps=64", _pixels),
    Family("mad", "mad:eps={eps},steps=10", _differentiable),
    Family("critic", "critic:eps={eps},steps=10", _value_head),
)


def input_kind(observation_space: Any) -> str:
    """``pixels`` for image observations (uint8 of rank ≥ 2), else ``state``."""
    import numpy as np

    shape = getattr(observation_space, "shape", ()) or ()
    dtype = getattr(observation_space, "dtype", None)
    return "pixels" if dtype == np.uint8 and len(shape) >= 2 else "state"


def area(eps: list[float], clean: float, worst: list[float]) -> float:
    """The area under the worst-case score over ε ∈ [0, ε_max] (trapezoids, the clean
    score at ε = 0) over ``clean × ε_max``: 1 when no attack hurts."""
    xs, ys = [0.0, *eps], [clean, *worst]
    total = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    scale = clean * xs[-1]
    return total / scale if scale else math.nan


def plan(
    env_id: str,
    victim_seat: str,
    victim: str,
    budget: str,
    only: tuple[str, ...] | None = None,
) -> tuple[str, list[Family], dict[str, str], tuple[str, ...]]:
    """The input kind, the families that apply (of ``only``, if given), why the others
    do not, and the ε grid."""
    valid = [f.name for f in FAMILIES] + ["patch"]
    unknown = [f for f in only or () if f not in valid]
    if unknown:
        raise UsageError(f"unknown attack family {unknown[0]!r}; valid: {', '.join(valid)}")
    import envs
    from agents import specs

    game = envs.make(env_id)
    game_spec = envs.spec(env_id)
    game_spec.check_seat(victim_seat)
    policy = specs.resolve(
        victim,
        game.observation_space(victim_seat),
        game.action_space(victim_seat),
        env_id=env_id,
        seat=victim_seat,
    )
    kind = input_kind(game.observation_space(victim_seat))
    if (kind, budget) not in EPS_GRIDS:
        raise UsageError(f"--budget {budget!r}; valid: quick, full")
    applies, why_not = [], {}
    for family in FAMILIES:
        if only is not None and family.name not in only:
            continue
        why = family.applies(policy, kind)
        if why is None:
            applies.append(family)
        else:
            why_not[family.name] = why
    if only is None or "patch" in only:
        why_not["patch"] = "an L0 sticker: its budget is its size in pixels, not an L∞ ε"
    return kind, applies, why_not, EPS_GRIDS[(kind, budget)]


def verdict(
    eps: tuple[str, ...], clean: FamilyRow, rows: list[FamilyRow], metric: str
) -> tuple[list[Verdict], float]:
    """Per ε the worst family (lowest score) and the normalised area under that curve."""
    from agents.numbers import parse_number

    out = []
    for text in eps:
        at = [r for r in rows if r.eps == text]
        if not at:
            continue
        worst = min(at, key=lambda r: r.score)
        out.append(Verdict(text, worst.family, worst.score, worst.ci95))
    values = [parse_number(v.eps, "eps") for v in out]
    return out, area(values, clean.score, [v.score for v in out])


def build(
    env_id: str,
    victim_seat: str,
    victim: str,
    metric: str,
    kind: str,
    budget: str,
    episodes: int,
    seed: int,
    clean: FamilyRow,
    rows: list[FamilyRow],
    why_not: dict[str, str],
    eps: tuple[str, ...],
) -> Scorecard:
    verdicts, normalised = verdict(eps, clean, rows, metric)
    units = (
        "L∞ on the [0, 1] pixel input (1/255 = one grey level)"
        if kind == "pixels"
        else "L∞ in standard deviations of each observation dimension (as the victim normalises it)"
    ) + "; pgd-l2: the L2 ball of radius ε·√d (d input entries), an RMS change of ε per entry"
    return Scorecard(
        env=env_id,
        victim_seat=victim_seat,
        victim=victim,
        metric=metric,
        units=units,
        budget=budget,
        episodes=episodes,
        seed=seed,
        clean=clean,
        rows=tuple(rows),
        worst=tuple(verdicts),
        normalised_area=normalised,
        not_applicable=dict(why_not),
    )


def summary_row(family: str, eps: str, seat_json: dict[str, Any], metric: str) -> FamilyRow:
    """A cell's figures for the victim's seat (``MatchResult`` JSON) as a row."""
    if metric == "win rate":
        score, ci = seat_json["win_rate"], seat_json["win_rate_ci95"]
    else:
        score, ci = seat_json["mean_return"], seat_json["return_ci95"]
    return FamilyRow(
        family=family,
        eps=eps,
        score=float(score),
        ci95=(float(ci[0]), float(ci[1])),
        flip_rate=seat_json.get("flip_rate"),
        attacked_fraction=seat_json.get("attacked_fraction"),
    )


def read_cell(run_dir: Path, seat: str) -> dict[str, Any]:
    from arena.artifacts.base import read_json

    data = read_json(run_dir / "results.json")
    return dict(data["seats"][seat])


def opponent_specs(env_id: str, victim_seat: str, given: dict[str, str]) -> dict[str, str]:
    """The opponents a two-player victim meets: the one given (else the game's default
    or its zoo agent), ``random``, ``zero`` and the adversary shipped for that seat."""
    import envs
    from arena.pretrained import ASSETS_DIR, PretrainedError, zoo_spec

    spec = envs.spec(env_id)
    (other,) = [s for s in spec.seats if s != victim_seat]
    out: dict[str, str] = {}
    if other in given:
        out["given"] = given[other]
    elif other in spec.default_policies:
        out["default"] = spec.default_policies[other]
    else:
        with contextlib.suppress(PretrainedError):
            out["zoo"] = zoo_spec(env_id, other)
    out["random"], out["zero"] = "random", "zero"
    shipped = ASSETS_DIR / f"{env_id}__{other}"
    if shipped.is_dir():
        out["shipped adversary"] = f"run:{shipped}"
    return out


def certified_fractions(
    env_id: str, victim_seat: str, policies: dict[str, str], seed: int, eps: tuple[str, ...]
) -> dict[str, float]:
    """Per ε, the fraction of the states the victim visits in two clean episodes (at
    most 512) whose decision IBP certifies; empty for a victim it cannot bound."""
    import numpy as np

    import envs
    from agents import specs
    from agents.certify import certified
    from agents.numbers import parse_number
    from arena.match import run_match
    from arena.players import acting

    game = envs.make(env_id)
    victim = specs.resolve(
        policies[victim_seat],
        game.observation_space(victim_seat),
        game.action_space(victim_seat),
        env_id=env_id,
        seat=victim_seat,
    )
    from agents.policies import TorchPolicy

    if not isinstance(victim, TorchPolicy) or victim.interval_steps() is None:
        return {}
    _, records = run_match(
        env_id, policies, n_episodes=2, seed=seed, record=True, deterministic=acting(policies)
    )
    frames = np.concatenate([r.observations[victim_seat] for r in records])[:512]
    x = victim.input_from_obs(frames)
    scale = victim.input_scale()
    out = {}
    for e in eps:
        sure = certified(victim, x, float(parse_number(e, "eps")), scale)
        assert sure is not None
        out[e] = float(sure.float().mean())
    return out


def family_attack(family: Family, eps: str, d: int) -> str:
    """The attack spec of ``family`` at ``eps`` for a victim input of ``d`` entries."""
    from agents.numbers import parse_number

    radius = f"{parse_number(eps, 'eps') * math.sqrt(d):.6g}"
    return family.spec.format(eps=eps, eps_l2=radius)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def run_scorecard(
    env_id: str,
    victim_seat: str,
    victim: str,
    *,
    opponents: dict[str, str] | None = None,
    budget: str = "quick",
    episodes: int = 3,
    seed: int = 0,
    out: Path,
    ray: str | bool | None = None,
    families: tuple[str, ...] | None = None,
    learned: str | None = None,
) -> Scorecard:
    """Score ``victim`` under every family that applies at every ε of the budget's grid
    (the games as the cells of a grid in ``out/grid``); write ``out/scorecard.json``.
    ``learned`` (a ``train-perturber`` run of this game and seat) adds the learned
    adversary as one more family, at every ε."""
    import envs
    from arena.artifacts.grid import GridSpec
    from arena.grid.cells import GridDir
    from arena.grid.driver import execute, plan_cells
    from arena.io import write_json_atomic

    kind, chosen, why_not, eps = plan(env_id, victim_seat, victim, budget, families)
    seats = envs.spec(env_id).seats
    metric = "mean return" if len(seats) == 1 else "win rate"
    policies = {victim_seat: victim, **dict(opponents or {})}
    if len(seats) > 1:
        (other,) = [s for s in seats if s != victim_seat]
        first = next(iter(opponent_specs(env_id, victim_seat, dict(opponents or {})).items()))
        if first[0] == "random":
            raise UsageError(
                f"{env_id}: seat {other!r} has no default policy and no zoo agent was found "
                f"(ARENA_ZOO_DIR); give one with --opponent {other}=SPEC"
            )
        policies.setdefault(other, first[1])  # the game's default or its zoo agent
        from agents import specs

        game = envs.make(env_id)
        specs.resolve(  # a missing or unfit opponent: one line now, not from the first cell
            policies[other],
            game.observation_space(other),
            game.action_space(other),
            env_id=env_id,
            seat=other,
        )
        game.close()
    if not chosen and learned is None:  # nothing would be attacked: no card to write
        by_reason: dict[str, list[str]] = {}
        for name, why in why_not.items():
            by_reason.setdefault(why, []).append(name)
        reasons = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
        raise UsageError(f"no attack family applies to this victim ({reasons})")
    base = {"env_id": env_id, "policy": policies, "episodes": episodes, "seed": seed}
    cells: list[dict[str, Any]] = [dict(base)]
    outs, labels = ["cells/clean"], [("clean", "0")]
    import numpy as np

    game = envs.make(env_id)
    d = int(np.prod(game.observation_space(victim_seat).shape))
    game.close()
    if learned is not None:
        chosen = [*chosen, Family("learned", f"learned:{learned},eps={{eps}}", _differentiable)]
    for family in chosen:
        for e in eps:
            attack = family_attack(family, e, d)
            cells.append({**base, "attack": f"{victim_seat}={attack}"})
            outs.append(f"cells/{family.name}__{_slug(e)}")
            labels.append((family.name, e))
    matchups: list[tuple[str, str, bool]] = []
    if len(seats) == 2:
        (other,) = [x for x in seats if x != victim_seat]
        # a masked victim is already masked: it meets each opponent once
        variants = (False,) if victim.startswith("masked:") else (False, True)
        for label, opp in opponent_specs(env_id, victim_seat, dict(opponents or {})).items():
            for masked in variants:
                me = f"masked:{victim}" if masked else victim
                cells.append({**base, "policy": {victim_seat: me, other: opp}})
                outs.append(f"cells/vs_{_slug(label)}{'__masked' if masked else ''}")
                labels.append(("opponent", label))
                matchups.append((label, opp, masked))
    spec = GridSpec("evaluate", {}, 1.0, f"scorecard {env_id}:{victim_seat}", tuple(cells))
    grid = GridDir(Path(out) / "grid")
    manifest = plan_cells(spec, grid, outs)
    summary = execute(manifest, grid, ray=ray)
    if summary["failed"]:
        bad = next(r for r in summary["results"] if r["state"] != "done")
        raise UsageError(f"scorecard cell {bad['name']} failed: {bad.get('error', 'see its log')}")
    rows: list[FamilyRow] = []
    versus: list[OpponentRow] = []
    clean: FamilyRow | None = None
    matches = iter(matchups)
    for (name, e), row in zip(labels, summary["results"], strict=True):
        figures = read_cell(Path(row["run_dir"]), victim_seat)
        entry = summary_row(name, e, figures, metric)
        if name == "clean":
            clean = entry
        elif name == "opponent":
            label, opp, masked = next(matches)
            versus.append(OpponentRow(label, opp, masked, entry.score, entry.ci95))
        else:
            rows.append(entry)
    assert clean is not None
    card = build(
        env_id, victim_seat, victim, metric, kind, budget, episodes, seed, clean, rows, why_not, eps
    )
    sure = certified_fractions(env_id, victim_seat, policies, seed, eps)
    card = dataclasses.replace(card, opponents=tuple(versus), certified=sure)
    write_json_atomic(Path(out) / Scorecard.FILE, card.to_json())
    write_json_atomic(Path(out) / "results.json", results_of(card).to_json())
    return card


def results_of(card: Scorecard) -> Any:
    """The scorecard as a run's ``results.json`` (``arena report`` renders it): the
    verdict per ε first, every family's row, what does not apply; score vs ε."""
    from agents.numbers import parse_number
    from arena.artifacts.run import RunResults
    from arena.artifacts.run_figures import LineChart, Series
    from arena.artifacts.run_tables import Score, Table

    clean = Score.of(card.clean.score, card.clean.ci95)
    verdict = Table(
        f"The worst case over attack families ({card.metric}; clean {clean.value:.3g})",
        ("ε", "worst family", f"victim's {card.metric} [95% CI]", "certified decisions (IBP)"),
        tuple(
            (v.eps, v.family, Score.of(v.score, v.ci95), card.certified.get(v.eps))
            for v in card.worst
        ),
        highlight=tuple(range(len(card.worst))),
        caption=f"ε {card.units}; area under the worst case over ε, normalised by the clean "
        f"score: {card.normalised_area:.3f}",
    )
    rows = Table(
        "Every family at every ε",
        ("family", "ε", f"{card.metric} [95% CI]", "action-flip rate", "attacked steps"),
        tuple(
            (r.family, r.eps, Score.of(r.score, r.ci95), r.flip_rate, r.attacked_fraction)
            for r in card.rows
        ),
    )
    na = Table(
        "Families that do not apply",
        ("family", "why"),
        tuple(card.not_applicable.items()),
    )
    tables = [rows, na] if card.not_applicable else [rows]
    if card.opponents:
        tables.insert(
            0,
            Table(
                "The victim against each opponent, normal and masked",
                ("opponent", "policy", "victim", f"{card.metric} [95% CI]"),
                tuple(
                    (
                        o.opponent,
                        o.spec,
                        "masked" if o.masked else "normal",
                        Score.of(o.score, o.ci95),
                    )
                    for o in card.opponents
                ),
            ),
        )
    families = sorted({r.family for r in card.rows})
    x = lambda e: float(parse_number(e, "eps"))  # noqa: E731
    series = [
        Series(
            f,
            (0.0, *(x(r.eps) for r in card.rows if r.family == f)),
            (card.clean.score, *(r.score for r in card.rows if r.family == f)),
            (card.clean.ci95, *(r.ci95 for r in card.rows if r.family == f)),
        )
        for f in families
    ]
    series.append(
        Series(
            "worst case",
            (0.0, *(x(v.eps) for v in card.worst)),
            (card.clean.score, *(v.score for v in card.worst)),
        )
    )
    chart = LineChart(
        f"{card.env}: the victim's {card.metric} under each attack family",
        f"ε ({card.units})",
        card.metric,
        tuple(series),
    )
    return RunResults(
        kind="scorecard",
        title=f"robustness of {card.victim_seat} in {card.env}",
        headline=verdict,
        tables=tuple(tables),
        figures=(chart,),
        extra={"scorecard": Scorecard.FILE},
    )


def compare(paths: list[Path]) -> tuple[list[Scorecard], Any]:
    """Scorecards of one game, seat and ε grid, ranked: by the normalised area under the
    worst case, then by the worst case at each ε (higher is more robust). ``UsageError``
    on a directory without a scorecard, or cards that cannot be compared."""
    from arena.artifacts.base import ArtifactError, read_json
    from arena.artifacts.run import RunResults
    from arena.artifacts.run_tables import Score, Table

    if len(paths) < 2:
        raise UsageError("--compare needs at least two scorecard directories")
    cards = []
    for path in paths:
        file = Path(path) / Scorecard.FILE
        try:
            cards.append(Scorecard.from_json(read_json(file), str(file)))
        except ArtifactError as exc:
            raise UsageError(str(exc)) from None
    first = cards[0]
    for path, card in zip(paths[1:], cards[1:], strict=True):
        for what in ("env", "victim_seat", "metric", "units"):
            if getattr(card, what) != getattr(first, what):
                raise UsageError(
                    f"--compare {path}: its {what} is {getattr(card, what)!r}, not "
                    f"{getattr(first, what)!r} as in {paths[0]}: not comparable"
                )
        if [v.eps for v in card.worst] != [v.eps for v in first.worst]:
            raise UsageError(f"--compare {path}: another ε grid than {paths[0]}: not comparable")
    from agents.numbers import parse_number

    for path, card in zip(paths, cards, strict=True):  # the area is derived: recomputed
        xs = [float(parse_number(v.eps, "eps")) for v in card.worst]
        derived = area(xs, card.clean.score, [v.score for v in card.worst])
        claimed = card.normalised_area
        if math.isnan(derived) and card.clean.score != 0:
            raise UsageError(
                f"--compare {path}: its area cannot be computed from its own figures "
                f"(clean score {card.clean.score:g}): refused"
            )
        if not (math.isnan(derived) and math.isnan(claimed)) and not math.isclose(
            derived, claimed, rel_tol=1e-9, abs_tol=1e-12
        ):
            raise UsageError(
                f"--compare {path}: its normalised area {claimed!r} is not the area under "
                f"its own worst case ({derived:.6g}): refused"
            )
    ranked = sorted(  # a NaN area (a clean score of 0) last, whatever the order given
        zip(paths, cards, strict=True),
        key=lambda pc: (
            math.isnan(pc[1].normalised_area),
            0.0 if math.isnan(pc[1].normalised_area) else -pc[1].normalised_area,
            [-v.score for v in pc[1].worst],
        ),
    )
    eps = [v.eps for v in first.worst]
    table = Table(
        f"Victims ranked by robustness on {first.env} ({first.victim_seat}, {first.metric})",
        ("rank", "victim", "clean", "normalised area", *(f"worst at ε={e}" for e in eps)),
        tuple(
            (
                i + 1,
                card.victim,
                Score.of(card.clean.score, card.clean.ci95),
                "n/a (clean 0)" if math.isnan(card.normalised_area) else card.normalised_area,
                *(Score.of(v.score, v.ci95) for v in card.worst),
            )
            for i, (_, card) in enumerate(ranked)
        ),
        highlight=(0,),
        caption=f"ε {first.units}; each victim's worst case over the attack families",
    )
    results = RunResults(
        kind="leaderboard",
        title=f"robustness leaderboard on {first.env}",
        headline=table,
        extra={"scorecards": [str(p) for p, _ in ranked]},
    )
    return [c for _, c in ranked], results
