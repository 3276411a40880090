"""Figures as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot).

``figure_png`` draws a ``LineChart`` (lines over x, 95% intervals as error bars) or a
``BarChart`` (one horizontal bar per label, with its interval); ``progress_png`` draws
a training run's win rate over training, with the shaping weight if it was annealed.

Text from a run's files is drawn as it is written (no ``$...$`` math, no TeX), cut at
``MAX_LABEL`` characters; a chart shows at most ``MAX_BARS`` bars, ``MAX_SERIES``
lines and ``MAX_POINTS`` points a line (``figure`` says what was left out).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from arena.artifacts import BarChart, Figure, LineChart, Score
from arena.report.reading import ProgressPoint

WIDTH = 6.4
BLUE = "#4c72b0"
RED = "#c44e52"
MAX_BARS = 60
"""Bars of one chart drawn; the rest are left out (the caption says how many)."""
MAX_SERIES = 20
"""Lines of one chart drawn."""
MAX_POINTS = 2_000
"""Points of one line drawn (evenly spread, the last one always)."""
MAX_LABEL = 80
"""Characters of a label, title or legend entry drawn."""
T = TypeVar("T")


@contextlib.contextmanager
def _plain_text() -> Iterator[None]:
    """Text drawn as written (``$`` is a dollar, never math or TeX); no warnings."""
    import matplotlib

    with (
        matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def thin(values: Sequence[T], limit: int = MAX_POINTS) -> list[T]:
    """At most ``limit`` of ``values``, evenly spread, the first and last kept."""
    n = len(values)
    if n <= limit:
        return list(values)
    step = (n - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _errors(values: list[float], cis: list[tuple[float, float] | None]) -> Any:
    """Error bar lengths below and above each value, or None where any is unknown."""
    if any(ci is None for ci in cis):
        return None
    return [
        [max(0.0, v - ci[0]) for v, ci in zip(values, cis, strict=True) if ci is not None],
        [max(0.0, ci[1] - v) for v, ci in zip(values, cis, strict=True) if ci is not None],
    ]


def _bars(chart: BarChart) -> bytes:
    labels, scores = chart.labels[:MAX_BARS], chart.values[:MAX_BARS]
    fig = _figure(WIDTH, 0.9 + 0.38 * len(labels))
    ax = fig.add_subplot()
    values = [_value(v) for v in scores]
    err = _errors(values, [v.ci95 for v in scores])
    ax.barh(range(len(values)), values, xerr=err, color=BLUE, capsize=3)
    ax.set_yticks(range(len(values)), [_cut(x) for x in labels])
    ax.invert_yaxis()
    if chart.value_range is not None:
        ax.set_xlim(*chart.value_range)
    ax.set_xlabel(_cut(chart.value_label))
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _value(score: Score) -> float:
    return 0.0 if score.value != score.value else score.value  # NaN: no bar


def _lines(chart: LineChart) -> bytes:
    fig = _figure(WIDTH, 4.0)
    ax = fig.add_subplot()
    series = chart.series[:MAX_SERIES]
    for s in series:
        index = thin(range(len(s.y)))
        xs, ys = [s.x[i] for i in index], [s.y[i] for i in index]
        cis = [s.ci95[i] for i in index] if s.ci95 is not None else None
        err = _errors(ys, list(cis)) if cis is not None else None
        if err is None:
            ax.plot(xs, ys, marker="o" if len(ys) < 30 else None, label=_cut(s.label))
        else:
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=_cut(s.label))
    positive = [x for s in series for x in s.x if x > 0]
    if chart.x_scale == "symlog":
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    elif chart.x_scale == "log" and positive:  # nothing to draw on a log axis: linear
        ax.set_xscale("log")
    if chart.y_range is not None:
        ax.set_ylim(*chart.y_range)
    ax.set_xlabel(_cut(chart.x_label))
    ax.set_ylabel(_cut(chart.y_label))
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def figure(chart: Figure) -> tuple[bytes, str]:
    """``chart`` as PNG bytes, and what of it was left out (empty if nothing)."""
    with _plain_text():
        png = _bars(chart) if isinstance(chart, BarChart) else _lines(chart)
    if isinstance(chart, BarChart):
        left = len(chart.labels) - MAX_BARS
        return png, f"the first {MAX_BARS} of {len(chart.labels)} bars" if left > 0 else ""
    notes = []
    if len(chart.series) > MAX_SERIES:
        notes.append(f"the first {MAX_SERIES} of {len(chart.series)} lines")
    longest = max((len(s.y) for s in chart.series), default=0)
    if longest > MAX_POINTS:
        notes.append(f"at most {MAX_POINTS:,} points a line, of {longest:,}")
    if chart.x_scale == "log" and not any(x > 0 for s in chart.series for x in s.x):
        notes.append("no positive x: drawn on a linear axis")
    return png, "; ".join(notes)


def figure_png(chart: Figure) -> bytes:
    """``chart`` as PNG bytes (see ``figure``)."""
    return figure(chart)[0]


def progress_png(points: list[ProgressPoint]) -> bytes:
    """The adversary's rolling win rate over training; the shaping weight beside it."""
    with _plain_text():
        return _progress(thin(points))


def _progress(points: list[ProgressPoint]) -> bytes:
    fig = _figure(WIDTH, 3.6)
    ax = fig.add_subplot()
    xs = [p.timesteps for p in points]
    ax.plot(xs, [p.win_rate for p in points], color=RED, label="win rate")
    ax.set_ylim(0, 1)
    ax.set_xlabel("training timesteps")
    ax.set_ylabel("adversary win rate (rolling)")
    ax.grid(alpha=0.3)
    if any(p.shaping for p in points):
        twin = ax.twinx()
        twin.plot(xs, [p.shaping or 0.0 for p in points], "--", color="gray", lw=1)
        twin.set_ylabel("shaping weight", color="gray")
    return _png(fig)
