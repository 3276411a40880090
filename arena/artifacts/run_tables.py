"""The tables of a run's ``results.json``: ``Table``s of ``Cell``s, a ``Score`` being a
measured value with its 95% interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from arena.artifacts.base import is_int, is_number
from arena.artifacts.run_fields import (
    RunFileError,
    fail,
    json_list,
    json_object,
    number,
    optional_interval,
    text,
)


@dataclass(frozen=True)
class Score:
    """A measured value with its 95% interval; JSON ``{"value": v, "ci95": [low, high]}``."""

    value: float
    """NaN where nothing was measured (no episodes)."""
    ci95: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        if self.ci95 is not None:
            out["ci95"] = list(self.ci95)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Score:
        data = json_object(data, where)
        unknown = sorted(set(data) - {"value", "ci95"})
        if unknown or "value" not in data:
            raise RunFileError(f"{where} must be an object with 'value' and optional 'ci95'")
        value = number(data["value"], f"{where}.value", nan=True)
        ci95 = optional_interval(data.get("ci95"), f"{where}.ci95")
        if ci95 is not None and not math.isnan(value):
            slack = 1e-9 * max(1.0, abs(value))
            if not ci95[0] - slack <= value <= ci95[1] + slack:
                raise RunFileError(f"{where}: value {value} lies outside its interval {list(ci95)}")
        return cls(value, ci95)

    @classmethod
    def of(cls, value: float, ci95: tuple[float, float] | list[float] | None) -> Score:
        """``value`` with ``ci95`` unless the interval is unknown (NaN)."""
        if ci95 is None or any(not is_number(x) for x in ci95):
            return cls(float(value), None)
        return cls(float(value), (float(ci95[0]), float(ci95[1])))


Cell = Score | str | int | float | bool | None
"""A table cell: a score with its interval, a number, a text, a flag, or nothing."""


def cell_to_json(cell: Cell) -> Any:
    return cell.to_json() if isinstance(cell, Score) else cell


def cell_from_json(data: Any, where: str) -> Cell:
    if isinstance(data, dict):
        return Score.from_json(data, where)
    if data is None or isinstance(data, bool | int | str):
        return data if not isinstance(data, str) else text(data, where, empty=True)
    if isinstance(data, float):
        return number(data, where, nan=True)
    raise fail(where, "a score, a number, a text, true/false or null", data)


@dataclass(frozen=True)
class Table:
    """Rows of cells under column headings in words (``"victim win rate [95% CI]"``)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    highlight: tuple[int, ...] = ()
    """Indices of the rows that are the finding (shown in bold beside the baselines)."""
    caption: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [[cell_to_json(c) for c in row] for row in self.rows],
            "highlight": list(self.highlight),
            "caption": self.caption,
        }

    def column(self, heading: str) -> tuple[Cell, ...]:
        """The cells under ``heading``, one per row (``KeyError`` naming the columns)."""
        if heading not in self.columns:
            raise KeyError(f"no column {heading!r} in {self.title!r}; columns: {self.columns}")
        i = self.columns.index(heading)
        return tuple(row[i] for row in self.rows)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Table:
        data = json_object(data, where)
        columns = tuple(
            text(c, f"{where}.columns[{i}]")
            for i, c in enumerate(json_list(data.get("columns"), f"{where}.columns"))
        )
        if not columns:
            raise RunFileError(f"{where}.columns must name at least one column")
        rows = []
        for i, row in enumerate(json_list(data.get("rows"), f"{where}.rows")):
            at = f"{where}.rows[{i}]"
            if not isinstance(row, list) or len(row) != len(columns):
                raise fail(at, f"a list of {len(columns)} cells (one per column)", row)
            rows.append(tuple(cell_from_json(c, f"{at}[{j}]") for j, c in enumerate(row)))
        highlight = json_list(data.get("highlight", []), f"{where}.highlight")
        for i, h in enumerate(highlight):
            if not is_int(h) or not 0 <= h < len(rows):
                raise fail(f"{where}.highlight[{i}]", f"a row index in 0..{len(rows) - 1}", h)
        return cls(
            title=text(data.get("title"), f"{where}.title"),
            columns=columns,
            rows=tuple(rows),
            highlight=tuple(highlight),
            caption=text(data.get("caption", ""), f"{where}.caption", empty=True),
        )
