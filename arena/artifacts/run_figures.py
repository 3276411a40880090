"""The figures of a run's ``results.json``: a ``LineChart`` of ``Series`` (a learning
curve, score vs ε) or a ``BarChart`` (a rate per matchup), drawn by the report."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from arena.artifacts.run_fields import (
    RunFileError,
    fail,
    interval,
    json_list,
    json_object,
    numbers,
    optional_interval,
    text,
)
from arena.artifacts.run_tables import Score

X_SCALES = ("linear", "log", "symlog")


def _chart_json(chart: LineChart | BarChart) -> dict[str, Any]:
    """``{"kind": KIND, FIELD: value ...}``, the fields in their order, tuples as lists."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value.to_json() if isinstance(value, Series | Score) else value

    return {"kind": chart.KIND, **{f.name: plain(getattr(chart, f.name)) for f in fields(chart)}}


@dataclass(frozen=True)
class Series:
    """One line of a ``LineChart``: y over x, with a 95% interval per point if known."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    ci95: tuple[tuple[float, float], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "x": list(self.x), "y": list(self.y)}
        if self.ci95 is not None:
            out["ci95"] = [list(p) for p in self.ci95]
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Series:
        data = json_object(data, where)
        x, y = numbers(data.get("x"), f"{where}.x"), numbers(data.get("y"), f"{where}.y")
        if len(x) != len(y):
            raise RunFileError(f"{where}: x has {len(x)} points and y {len(y)}")
        ci95 = None
        if data.get("ci95") is not None:
            pairs = json_list(data["ci95"], f"{where}.ci95")
            if len(pairs) != len(y):
                raise RunFileError(f"{where}: ci95 has {len(pairs)} intervals for {len(y)} points")
            ci95 = tuple(interval(p, f"{where}.ci95[{i}]") for i, p in enumerate(pairs))
        return cls(text(data.get("label"), f"{where}.label"), x, y, ci95)


@dataclass(frozen=True)
class LineChart:
    """Lines over a numeric x axis (a learning curve, score vs ε)."""

    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    x_scale: Literal["linear", "log", "symlog"] = "linear"
    y_range: tuple[float, float] | None = None

    KIND: ClassVar[str] = "lines"

    def to_json(self) -> dict[str, Any]:
        return _chart_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> LineChart:
        scale = data.get("x_scale", "linear")
        if scale not in X_SCALES:
            raise fail(f"{where}.x_scale", f"one of {', '.join(X_SCALES)}", scale)
        series = json_list(data.get("series"), f"{where}.series")
        return cls(
            title=text(data.get("title"), f"{where}.title"),
            x_label=text(data.get("x_label"), f"{where}.x_label"),
            y_label=text(data.get("y_label"), f"{where}.y_label"),
            series=tuple(Series.from_json(s, f"{where}.series[{i}]") for i, s in enumerate(series)),
            x_scale=scale,
            y_range=optional_interval(data.get("y_range"), f"{where}.y_range"),
        )


@dataclass(frozen=True)
class BarChart:
    """One horizontal bar per label (a rate per matchup), each with its interval."""

    title: str
    value_label: str
    labels: tuple[str, ...]
    values: tuple[Score, ...]
    value_range: tuple[float, float] | None = (0.0, 1.0)

    KIND: ClassVar[str] = "bars"

    def to_json(self) -> dict[str, Any]:
        return _chart_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> BarChart:
        labels = json_list(data.get("labels"), f"{where}.labels")
        values = json_list(data.get("values"), f"{where}.values")
        if len(labels) != len(values):
            raise RunFileError(f"{where}: {len(labels)} labels for {len(values)} values")
        return cls(
            title=text(data.get("title"), f"{where}.title"),
            value_label=text(data.get("value_label"), f"{where}.value_label"),
            labels=tuple(text(x, f"{where}.labels[{i}]") for i, x in enumerate(labels)),
            values=tuple(Score.from_json(v, f"{where}.values[{i}]") for i, v in enumerate(values)),
            value_range=optional_interval(data.get("value_range"), f"{where}.value_range"),
        )


Figure = LineChart | BarChart
FIGURE_KINDS: dict[str, type[LineChart] | type[BarChart]] = {"lines": LineChart, "bars": BarChart}


def figure_from_json(data: Any, where: str) -> Figure:
    data = json_object(data, where)
    cls = FIGURE_KINDS.get(data.get("kind"))
    if cls is None:
        raise fail(f"{where}.kind", f"one of {', '.join(FIGURE_KINDS)}", data.get("kind"))
    return cls.from_json(data, where)
