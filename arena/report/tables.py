"""Tables as the page shows them: every cell as text, a score with its 95% interval
(``0.35 [0.29, 0.42]``), the finding's rows marked; and the folded key/value views of
a run's configuration and metadata, keys in words and unused values left out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arena.artifacts import Cell, Score, Table
from arena.artifacts.run_builders import words
from arena.artifacts.run_fields import brief, finite, int_text

MAX_ROWS = 200
MAX_DEPTH = 5
"""Nested objects (and lists) shown this deep; deeper ones as short text."""
MAX_TEXT = 2000
"""Characters of one cell or value; longer text is cut (ends with ``...``)."""
MAX_KEYS = 500
"""Keys of one folded object shown; the rest counted."""


@dataclass(frozen=True)
class RowView:
    cells: tuple[str, ...]
    finding: bool
    """A highlighted row: the result the run exists for, shown in bold."""
    links: tuple[str | None, ...] = ()
    """Per cell, a link within the page (a cell naming a run's folder links to it)."""


@dataclass(frozen=True)
class TableView:
    title: str
    columns: tuple[str, ...]
    rows: tuple[RowView, ...]
    caption: str = ""
    hidden: int = 0
    """Rows beyond ``MAX_ROWS``, not shown."""


@dataclass(frozen=True)
class Entry:
    """One key of a folded configuration: its value as text, or its own entries."""

    key: str
    text: str | None
    children: tuple[Entry, ...] = ()


def number(x: float) -> str:
    if isinstance(x, int) and not isinstance(x, bool) and finite(x) is None:
        return int_text(x)  # too large for a float
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if abs(x) < 1e-12:
        return "0"
    if abs(x) >= 1e4:
        return f"{x:.0f}"
    return f"{x:.4g}" if abs(x) >= 1e-3 else f"{x:.3g}"


def _short(x: float) -> str:
    """3 significant digits, but whole numbers from 1000 on (no 1.62e+03)."""
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def score_text(score: Score) -> str:
    """``0.35 [0.29, 0.42]``: the value and its 95% interval."""
    if score.ci95 is None:
        return number(score.value)
    return f"{number(score.value)} [{_short(score.ci95[0])}, {_short(score.ci95[1])}]"


def cell_text(cell: Cell | Any, depth: int = 0) -> str:
    """A cell or a JSON value as text: at most ``MAX_TEXT`` characters, lists nested
    at most ``MAX_DEPTH`` deep (deeper ones as short text)."""
    text = _text(cell, depth)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _text(cell: Cell | Any, depth: int) -> str:
    if cell is None:
        return "–"
    if isinstance(cell, Score):
        return score_text(cell)
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, int):
        return int_text(cell)
    if isinstance(cell, float):
        return number(cell)
    if isinstance(cell, str):
        return cell[: MAX_TEXT + 1]
    if isinstance(cell, list):
        vals = [finite(v) for v in cell] if len(cell) > 12 else []
        if vals and all(v is not None for v in vals):
            xs = [v for v in vals if v is not None]
            return (
                f"{len(xs)} values: min {number(min(xs))}, "
                f"mean {number(math.fsum(xs) / len(xs))}, max {number(max(xs))}"
            )
        if depth >= MAX_DEPTH:
            return brief(cell, MAX_TEXT, as_json=True)
        parts, used = [], 0
        for v in cell:
            if used > MAX_TEXT:
                parts.append("...")
                break
            parts.append(_text(v, depth + 1))
            used += len(parts[-1]) + 2
        return ", ".join(parts)
    return brief(cell, MAX_TEXT, as_json=True)


def table_view(table: Table) -> TableView:
    """``table`` as text, its highlighted rows marked; at most ``MAX_ROWS`` rows."""
    rows = tuple(
        RowView(tuple(cell_text(c) for c in row), i in table.highlight)
        for i, row in enumerate(table.rows[:MAX_ROWS])
    )
    return TableView(
        title=table.title,
        columns=table.columns,
        rows=rows,
        caption=table.caption,
        hidden=max(0, len(table.rows) - MAX_ROWS),
    )


def _unused(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def entries(values: Mapping[str, Any], depth: int = 0) -> tuple[Entry, ...]:
    """A JSON object as entries: keys in words, nested objects as nested entries,
    and what the run did not use (null, empty text, lists or objects) left out."""
    out: list[Entry] = []
    for i, (key, value) in enumerate(values.items()):
        if len(out) >= MAX_KEYS:
            out.append(Entry("…", f"{len(values) - i} more keys not shown"))
            break
        if _unused(value):
            continue
        name = words(str(key)[:200])
        if isinstance(value, dict) and depth < MAX_DEPTH:
            children = entries(value, depth + 1)
            if children:
                out.append(Entry(name, None, children))
        else:
            out.append(Entry(name, cell_text(value, depth)))
    return tuple(out)
