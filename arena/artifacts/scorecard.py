"""``scorecard.json``: one victim's robustness across attack families and budgets.

Schema (version 1)::

    {"schema_version": 1, "kind": "scorecard",
     "env", "victim_seat", "victim", "metric": "mean return" | "win rate",
     "units": "...how ε is measured...", "budget": "quick" | "full",
     "episodes", "seed",
     "clean": ROW,
     "rows": [ROW, ...],              # every family at every ε
     "worst": [{"eps", "family", "score", "ci95"}, ...],   # the verdict per ε
     "normalised_area": float|null,  # area under the worst case over ε, / (clean × ε_max);
                                     # null where the clean score is 0 (nothing to scale by)
     "not_applicable": {family: why},
     "opponents": [{"opponent", "spec", "masked", "score", "ci95"}, ...],  # two-player games
     "certified": {eps: fraction}}  # IBP-certified decisions on visited states

    ROW = {"family", "eps", "score", "ci95": [low, high], "flip_rate", "attacked_fraction"}
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from arena.artifacts.base import ArtifactError, check_version, described, is_number


class ScorecardError(ArtifactError):
    """A scorecard file that is missing, corrupted or of another schema."""


def _finite(value: Any) -> bool:
    """A number that is a finite float (not NaN, not ±inf, not an integer beyond it)."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits
        return False


def _score(data: dict[str, Any], where: str) -> float:
    if not _finite(data.get("score")):
        raise ScorecardError(f"{where}: 'score' must be a finite number")
    return float(data["score"])


def _ci(value: Any, where: str) -> tuple[float, float]:
    if not (isinstance(value, list) and len(value) == 2 and all(_finite(v) for v in value)):
        raise ScorecardError(f"{where}: ci95 must be [low, high], finite numbers")
    return float(value[0]), float(value[1])


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ScorecardError(f"{where}: {key!r} must be a non-empty string")
    return value


@dataclass(frozen=True)
class FamilyRow:
    family: str
    eps: str
    """ε as written (``1/255``, ``0.1``): the grid's own spelling."""
    score: float
    ci95: tuple[float, float]
    flip_rate: float | None = None
    attacked_fraction: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "eps": self.eps,
            "score": self.score,
            "ci95": list(self.ci95),
            "flip_rate": self.flip_rate,
            "attacked_fraction": self.attacked_fraction,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> FamilyRow:
        if not isinstance(data, dict):
            raise ScorecardError(f"{where} must be an object, not {described(data)}")
        score = _score(data, where)
        rates = {}
        for key in ("flip_rate", "attacked_fraction"):
            v = data.get(key)
            if v is not None and not (is_number(v) and 0 <= v <= 1):
                raise ScorecardError(f"{where}: {key!r} must be a fraction or null")
            rates[key] = v
        return cls(
            _text(data, "family", where),
            _text(data, "eps", where),
            score,
            _ci(data.get("ci95"), where),
            **rates,
        )


@dataclass(frozen=True)
class Verdict:
    eps: str
    family: str
    score: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "eps": self.eps,
            "family": self.family,
            "score": self.score,
            "ci95": list(self.ci95),
        }


@dataclass(frozen=True)
class OpponentRow:
    """The victim (normal or masked) against one opponent of a two-player game."""

    opponent: str
    """``zoo``, ``random``, ``zero``, ``shipped adversary``, or the one given."""
    spec: str
    masked: bool
    score: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "opponent": self.opponent,
            "spec": self.spec,
            "masked": self.masked,
            "score": self.score,
            "ci95": list(self.ci95),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> OpponentRow:
        if not isinstance(data, dict):
            raise ScorecardError(f"{where}: must be an object, not {described(data)}")
        score = _score(data, where)
        if not isinstance(data.get("masked"), bool):
            raise ScorecardError(f"{where}: 'masked' must be true or false")
        return cls(
            _text(data, "opponent", where),
            _text(data, "spec", where),
            data["masked"],
            score,
            _ci(data.get("ci95"), where),
        )


@dataclass(frozen=True)
class Scorecard:
    SCHEMA_VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "scorecard.json"

    env: str
    victim_seat: str
    victim: str
    metric: str
    units: str
    budget: str
    episodes: int
    seed: int
    clean: FamilyRow
    rows: tuple[FamilyRow, ...]
    worst: tuple[Verdict, ...]
    normalised_area: float
    not_applicable: dict[str, str] = field(default_factory=dict)
    opponents: tuple[OpponentRow, ...] = ()
    """Two-player games: the victim against each opponent, normal and masked."""
    certified: dict[str, float] = field(default_factory=dict)
    """ε -> the fraction of visited states whose decision interval bound propagation
    certifies not to change (victims whose network is listed; else empty)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.SCHEMA_VERSION,
            "kind": "scorecard",
            "env": self.env,
            "victim_seat": self.victim_seat,
            "victim": self.victim,
            "metric": self.metric,
            "units": self.units,
            "budget": self.budget,
            "episodes": self.episodes,
            "seed": self.seed,
            "clean": self.clean.to_json(),
            "rows": [r.to_json() for r in self.rows],
            "worst": [v.to_json() for v in self.worst],
            # standard JSON has no NaN: a clean score of 0 leaves no area, written null
            "normalised_area": None if math.isnan(self.normalised_area) else self.normalised_area,
            "not_applicable": dict(self.not_applicable),
            "opponents": [o.to_json() for o in self.opponents],
            "certified": dict(self.certified),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Scorecard:
        if not isinstance(data, dict) or data.get("kind") != "scorecard":
            raise ScorecardError(f"{where}: not a scorecard")
        check_version(data, (cls.SCHEMA_VERSION,), where, ScorecardError)
        rows = data.get("rows")
        if not isinstance(rows, list):
            raise ScorecardError(f"{where}: 'rows' must be a list")
        worst = data.get("worst")
        if not isinstance(worst, list):
            raise ScorecardError(f"{where}: 'worst' must be a list")
        verdicts = []
        for i, v in enumerate(worst):
            at = f"{where}: worst[{i}]"
            if not isinstance(v, dict):
                raise ScorecardError(f"{at}: must be an object, not {described(v)}")
            verdicts.append(
                Verdict(
                    _text(v, "eps", at),
                    _text(v, "family", at),
                    _score(v, at),
                    _ci(v.get("ci95"), at),
                )
            )
        _check_grid([v.eps for v in verdicts], where)
        na = data.get("not_applicable", {})
        if not isinstance(na, dict) or not all(isinstance(v, str) for v in na.values()):
            raise ScorecardError(f"{where}: 'not_applicable' must map families to reasons")
        for key in ("episodes", "seed"):
            if not isinstance(data.get(key), int) or isinstance(data.get(key), bool):
                raise ScorecardError(f"{where}: {key!r} must be an integer")
        area: Any = data.get("normalised_area")
        if area is None:  # a victim whose clean score is 0 (older files wrote NaN)
            area = math.nan
        if not (_finite(area) or (isinstance(area, float) and math.isnan(area))):
            raise ScorecardError(f"{where}: 'normalised_area' must be a finite number or null")
        clean = FamilyRow.from_json(data.get("clean"), f"{where}: clean")
        if math.isnan(area) and clean.score != 0:
            raise ScorecardError(
                f"{where}: 'normalised_area' is null, which only a clean score of 0 gives; "
                f"the clean score is {clean.score:g}"
            )
        return cls(
            env=_text(data, "env", where),
            victim_seat=_text(data, "victim_seat", where),
            victim=_text(data, "victim", where),
            metric=_text(data, "metric", where),
            units=_text(data, "units", where),
            budget=_text(data, "budget", where),
            episodes=data["episodes"],
            seed=data["seed"],
            clean=clean,
            rows=tuple(FamilyRow.from_json(r, f"{where}: rows[{i}]") for i, r in enumerate(rows)),
            worst=tuple(verdicts),
            normalised_area=float(area),
            not_applicable={str(k): v for k, v in na.items()},
            certified=_fractions(data.get("certified", {}), f"{where}: certified"),
            opponents=tuple(
                OpponentRow.from_json(o, f"{where}: opponents[{i}]")
                for i, o in enumerate(_list(data.get("opponents", []), f"{where}: opponents"))
            ),
        )


def _check_grid(eps: list[str], where: str) -> None:
    """The verdicts' ε: at least one, each a finite number in [0, 1000], increasing, the
    last above 0 (the area is normalised by it)."""
    from agents.numbers import parse_number

    if not eps:
        raise ScorecardError(f"{where}: 'worst' is empty: a scorecard has at least one ε")
    values = []
    for i, e in enumerate(eps):
        try:
            values.append(float(parse_number(e, f"worst[{i}].eps", low=0.0, high=1000.0)))
        except ValueError as exc:
            raise ScorecardError(f"{where}: {exc}") from None
    if any(b <= a for a, b in itertools.pairwise(values)) or values[-1] <= 0:
        raise ScorecardError(
            f"{where}: the worst case's ε must increase and end above 0, got {', '.join(eps)}"
        )


def _fractions(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and is_number(v) and 0 <= v <= 1 for k, v in value.items()
    ):
        raise ScorecardError(f"{where} must map ε to fractions")
    return {k: float(v) for k, v in value.items()}


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScorecardError(f"{where} must be a list")
    return value
