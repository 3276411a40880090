"""``arena report RUN_DIR``: one self-contained HTML page of a run.

The page is one file, ``index.html``, that needs nothing else to be viewed: no
network, no files next to it. Plots (PNG, drawn with matplotlib's Agg canvas) and
episode videos (mp4, see ``arena.video``) are embedded in it as ``data:`` URIs; only a
video larger than ``INLINE_MAX_BYTES`` is written next to the page instead (and
linked by a relative path). The page is written in a directory (default
``RUN_DIR/report``), atomically: a previous report there is replaced whole. It shows,
for the run directory and every run nested in it (a folder with ``results.json``,
``progress.csv``, ``config.json`` or ``adversary_run.json``):

* the configuration: ``config.json``, ``adversary_run.json``, ``metadata.json``;
* the results: evaluate runs (``seats`` with ``win_rate_ci95``), rows of an
  experiment grid, labelled scores (``{label: {win_rate, win_rate_ci95, ...}}``) and
  any other JSON as tables, every value with its 95% interval when the run has one;
* plots: score vs ε with intervals (rows with an ``eps`` grid), win rate with
  intervals, action-flip rate (per seat or vs ε), win rate over training
  (``progress.csv``); figures the run saved itself are copied in;
* videos of recorded episodes (the first episode of each record, re-simulated and
  verified; see ``arena.video``): records found under the run, the record an
  ``arena evaluate --record`` run names in its ``config.json``, and any given with
  ``records=`` (``arena report RUN_DIR --record DIR``).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.numbers import parse_number, parse_seed
from arena.errors import ArenaError
from arena.io import public_mode

log = logging.getLogger(__name__)

MARKER = ".arena-report"
"""A file in every report directory: lets a new report replace an old one."""
SKIP_DIRS = frozenset({"checkpoints", "tb", "report", "__pycache__"})
"""Folders under a run that hold no runs of their own."""
MAX_VIDEOS = 8
MAX_ROWS = 200
CONFIG_FILES = ("config.json", "adversary_run.json")
MEDIA_SUFFIXES = (".png", ".mp4", ".gif", ".webm")
MIME = {".png": "image/png", ".gif": "image/gif", ".mp4": "video/mp4", ".webm": "video/webm"}
INLINE_MAX_BYTES = 48 * 2**20
"""Larger media files go next to the page (relative link) instead of inside it."""


class ReportError(ArenaError):
    """A run directory that cannot be reported (missing, or nothing in it to show)."""


# ---------------------------------------------------------------- page assembly


@dataclass
class _Page:
    """The growing page: HTML fragments plus the files that go next to it."""

    out: Path
    parts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    tables: int = 0
    plots: int = 0
    videos: int = 0

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def name(self, stem: str, suffix: str) -> str:
        self.files += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60]
        return f"{self.files:03d}_{safe}{suffix}"

    def embed(self, path: Path) -> str:
        """The ``src`` of a media file in the page directory: a ``data:`` URI (and the
        file removed) or, above ``INLINE_MAX_BYTES``, its name (the file stays)."""
        size = path.stat().st_size
        if size > INLINE_MAX_BYTES:
            self.notes.append(
                f"{path.name} ({size / 2**20:.0f} MiB) is not embedded: it lies next to "
                f"index.html; keep the two together"
            )
            return path.name
        src = _data_uri(path.read_bytes(), MIME[path.suffix.lower()])
        path.unlink()
        return src


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    records: Sequence[str | Path] = (),
    samples: bool = True,
) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``RUN_DIR/report``).

    ``records``: more record directories whose first episode becomes a video (besides
    those under ``run_dir`` and the one its ``config.json`` names). Where no record is
    found at all and ``samples`` is true, one episode per run that says how to play it
    (see ``_sample_recipe``) is played, recorded and shown. Returns the path of
    ``index.html``. ``out`` must be new, empty, or a previous report (which is
    replaced whole, never left half-written).
    """
    from arena.recording import read_manifest

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"no run directory at {run_dir}")
    final = Path(out) if out is not None else run_dir / "report"
    if final.exists() and not final.is_dir():
        raise ReportError(f"--out {final} exists and is not a directory")
    if final.is_dir() and any(final.iterdir()) and not (final / MARKER).is_file():
        raise ReportError(f"--out {final} exists, is not empty and is not an arena report")
    for rec in records:
        read_manifest(rec)  # a bad --record is the user's error: say so now
    runs = list(_runs(run_dir, final))
    for run in runs:  # so is a run file with a field of the wrong type
        for name in CONFIG_FILES:
            check_config(run / name)
    found = [*_records(run_dir, final), *_linked_records(runs), *map(Path, records)]
    videos = list({p.resolve(): p for p in found}.values())
    if not runs and not videos:
        raise ReportError(
            f"nothing to report in {run_dir}: no config.json, adversary_run.json, "
            f"results.json, progress.csv or episode records"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        public_mode(tmp)
        page = _Page(tmp)
        for sub in runs:
            _run_section(page, run_dir, sub)
        clips = [(rec, "") for rec in videos]
        if not clips and samples:
            clips = _sample_records(page, run_dir, runs)
        _video_section(page, run_dir, clips)
        (tmp / "index.html").write_text(_document(page, run_dir), encoding="utf-8")
        (tmp / MARKER).write_text("written by `arena report`; safe to replace\n")
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "index.html"


def _replace_dir(new: Path, final: Path) -> None:
    """Move ``new`` to ``final``; an old report there is swapped out, then removed."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    try:
        os.replace(new, final)
    except BaseException:
        if old is not None:
            os.replace(old / final.name, final)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _is_report(path: Path, final: Path) -> bool:
    return path == final or (path / MARKER).is_file()


def _walk(root: Path, final: Path) -> Iterator[Path]:
    """``root`` and its sub-folders, skipping hidden, report and bulky ones."""
    yield root
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if child.name.startswith(".") or child.name in SKIP_DIRS or _is_report(child, final):
            continue
        if (child / "manifest.json").is_file():  # a record: its episodes are not runs
            continue
        yield from _walk(child, final)


def _runs(root: Path, final: Path) -> Iterator[Path]:
    names = ("results.json", "progress.csv", "metadata.json", *CONFIG_FILES)
    for d in _walk(root, final):
        if any((d / n).is_file() for n in names):
            yield d


def _records(root: Path, final: Path) -> Iterator[Path]:
    for d in _walk(root, final):
        for child in sorted(p for p in d.iterdir() if p.is_dir()):
            if not child.name.startswith(".") and (child / "manifest.json").is_file():
                yield child
    if (root / "manifest.json").is_file():
        yield root


def _linked_records(runs: list[Path]) -> Iterator[Path]:
    """The records that runs name in their ``config.json`` (``arena evaluate --record``)."""
    for run in runs:
        try:
            config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        rec = config.get("record") if isinstance(config, dict) else None
        if isinstance(rec, str) and (Path(rec) / "manifest.json").is_file():
            yield Path(rec)


def _is_seat_map(value: Any, kind: type | tuple[type, ...]) -> bool:
    """An object whose keys are names and whose values are of ``kind``."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, kind) for k, v in value.items()
    )


def _type_problem(key: str, value: Any) -> str | None:
    """What a run file's field ``key`` must be, if ``value`` is not that; else None."""
    if key in ("env", "adversary_seat") and not isinstance(value, str):
        return "text"
    if key in ("policies", "victims") and not (
        _is_seat_map(value, (str, dict))
        and all(isinstance(v.get("spec", ""), str) for v in value.values() if isinstance(v, dict))
    ):
        return "an object: name -> policy spec"
    if key == "attacks" and value is not None and not _is_seat_map(value, str):
        return "an object: seat -> attack spec"
    if key == "env_kwargs" and value is not None and not isinstance(value, dict):
        return "an object"
    if key == "deterministic" and not (isinstance(value, bool) or _is_seat_map(value, bool)):
        return "true or false"
    if key == "record" and value is not None and not isinstance(value, str):
        return "a directory (text) or null"
    if key == "eps" and not isinstance(value, list):
        return "a list of numbers"
    return None


def check_config(path: Path) -> None:
    """Refuse (``ReportError``, one line) a run's ``config.json`` or
    ``adversary_run.json`` whose fields that a report relies on have the wrong type, or
    a number (``seed``, ``episodes``, ``timesteps``, ``eps``) that ``parse_number``
    refuses. An unreadable file is only a note on the page."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        want = _type_problem(key, value)
        if want is not None:
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ReportError(f"{path}: {key!r} must be {want}, got {shown}")
    try:
        if "seed" in data:
            parse_seed(data["seed"], "seed")
        for key in ("episodes", "timesteps"):
            if data.get(key) is not None:
                parse_number(data[key], key, low=1, integer=True)
        for e in data.get("eps") or ():
            parse_number(e, "eps", low=0.0, high=1.0)
    except ValueError as exc:
        raise ReportError(f"{path}: {exc}") from None


def _load_json(path: Path, page: _Page) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        page.notes.append(f"{path.name}: not readable JSON ({exc})")
        return None


# ---------------------------------------------------------------- one run


def _run_section(page: _Page, root: Path, run: Path) -> None:
    rel = "." if run == root else str(run.relative_to(root))
    title = root.name if run == root else rel
    page.add(f'<section class="run"><h2>{_e(title)}</h2>')
    for name in CONFIG_FILES:
        if (run / name).is_file():
            data = _load_json(run / name, page)
            if data is not None:
                page.add(f"<h3>Configuration <code>{_e(name)}</code></h3>")
                page.add(_value_html(data, page, depth=0, plots=False))
    if (run / "results.json").is_file():
        results = _load_json(run / "results.json", page)
        if results is not None:
            page.add("<h3>Results <code>results.json</code></h3>")
            page.add(_results_html(results, page, label=title))
    if (run / "progress.csv").is_file():
        _progress_plot(page, run / "progress.csv", title)
    _copy_media(page, run)
    if (run / "metadata.json").is_file():
        meta = _load_json(run / "metadata.json", page)
        if meta is not None:
            page.add(
                "<details><summary>metadata.json (versions, git sha, command)</summary>"
                f"<pre>{_e(json.dumps(meta, indent=2))}</pre></details>"
            )
    page.add("</section>")


def _copy_media(page: _Page, run: Path) -> None:
    media = sorted(p for p in run.iterdir() if p.is_file() and p.suffix in MEDIA_SUFFIXES)
    if not media:
        return
    page.add("<h3>Figures and videos saved by the run</h3><div class=figs>")
    for src in media:
        copy = page.out / page.name(src.stem, src.suffix.lower())
        shutil.copyfile(src, copy)
        if src.suffix in (".mp4", ".webm"):
            page.add(_video_tag(page.embed(copy), src.name, MIME[src.suffix]))
            page.videos += 1
        else:
            page.add(f'<figure><img src="{_e(page.embed(copy))}" alt="{_e(src.name)}">')
            page.add(f"<figcaption>{_e(src.name)}</figcaption></figure>")
            page.plots += 1
    page.add("</div>")


# ---------------------------------------------------------------- results as tables


def _is_score(obj: Any) -> bool:
    """A seat's score as ``SeatResult.to_json`` writes it (or something like it)."""
    return isinstance(obj, dict) and (
        _num(obj.get("win_rate")) is not None or _num(obj.get("mean_return")) is not None
    )


def _is_score_map(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(_is_score(v) for v in obj.values())


def _is_rows(obj: Any) -> bool:
    return (
        isinstance(obj, list)
        and bool(obj)
        and all(isinstance(r, dict) for r in obj)
        and all(not isinstance(v, dict) for r in obj for v in r.values())
    )


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if abs(x) < 1e-12:
            return "0"
        if abs(x) >= 1e4:
            return f"{x:.0f}"
        return f"{x:.4g}" if abs(x) >= 1e-3 else f"{x:.3g}"
    if isinstance(x, list):
        if len(x) > 12 and all(_num(v) is not None for v in x):
            vals = [float(v) for v in x]
            return (
                f"{len(vals)} values: min {_fmt(min(vals))}, "
                f"mean {_fmt(sum(vals) / len(vals))}, max {_fmt(max(vals))}"
            )
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, dict):
        return json.dumps(x)
    return str(x)


def _short(x: float) -> str:
    """3 significant digits, but whole numbers from 1000 on (no 1.62e+03)."""
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _interval(x: Any) -> str:
    if isinstance(x, list | tuple) and len(x) == 2:
        lo, hi = _num(x[0]), _num(x[1])
        if lo is not None and hi is not None:
            return f"[{_short(lo)}, {_short(hi)}]"
        return f"[{_fmt(x[0])}, {_fmt(x[1])}]"
    return _fmt(x)


def _score_table(scores: dict[str, dict[str, Any]], key_name: str) -> str:
    """One row per seat or label: W/L/T, win rate and mean return with their 95%
    intervals, and (only when some row has them) action-flip rate and attack."""
    cells: list[dict[str, str]] = []
    for s in scores.values():
        win = _fmt(s.get("win_rate"))
        if "win_rate_ci95" in s:
            win += f" {_interval(s['win_rate_ci95'])}"
        ret = _fmt(s.get("mean_return"))
        if "return_ci95" in s:
            ret += f" {_interval(s['return_ci95'])}"
        attack = s.get("attack") or ""
        if s.get("budget"):
            attack = f"{attack}: {s['budget']}"
        flip = _fmt(s.get("flip_rate")) if _num(s.get("flip_rate")) is not None else ""
        if _num(s.get("attacked_fraction")) is not None and s["attacked_fraction"] < 1:
            flip += f" (attacked {s['attacked_fraction']:.1%} of steps)"
        cells.append(
            {
                "W": _fmt(s.get("wins")),
                "L": _fmt(s.get("losses")),
                "T": _fmt(s.get("ties")),
                "win rate [95% CI]": win,
                "mean return [95% CI]": ret,
                "± std": _fmt(s.get("std_return")),
                "action-flip rate": flip,
                "attack": str(attack),
            }
        )
    optional = ("action-flip rate", "attack")
    columns = [c for c in cells[0] if c not in optional or any(row[c] for row in cells)]
    head = f"<tr><th>{_e(key_name)}</th>{''.join(f'<th>{_e(c)}</th>' for c in columns)}</tr>"
    body = [
        f"<tr><th>{_e(label)}</th>{''.join(f'<td>{_e(row[c])}</td>' for c in columns)}</tr>"
        for label, row in zip(scores, cells, strict=True)
    ]
    return f'<table class="results">{head}{"".join(body)}</table>'


def _rows_table(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    merged: dict[str, str] = {}  # value column -> its interval column
    for c in columns:
        if c.endswith("_ci95"):
            base = c[: -len("_ci95")]
            for cand in (base, f"mean_{base}"):
                if cand in columns:
                    merged[cand] = c
                    break
    shown = [c for c in columns if c not in merged.values()]
    head = "".join(f"<th>{_e(c)}{' [95% CI]' if c in merged else ''}</th>" for c in shown)
    body = []
    for r in rows[:MAX_ROWS]:
        cells = []
        for c in shown:
            text = _fmt(r.get(c))
            if c in merged and r.get(merged[c]) is not None:
                text += f" {_interval(r[merged[c]])}"
            cells.append(f"<td>{_e(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = (
        f"<p class=note>{len(rows) - MAX_ROWS} more rows not shown</p>"
        if len(rows) > MAX_ROWS
        else ""
    )
    return f'<table class="results"><tr>{head}</tr>{"".join(body)}</table>{more}'


def _kv_table(items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_interval(v) if k.endswith('_ci95') else _fmt(v))}</td></tr>"
        for k, v in items.items()
    )
    return f'<table class="kv">{rows}</table>'


def _series(obj: Any) -> dict[str, list[float]] | None:
    """``{"timesteps": [...], name: [...]}``: same-length numeric lists to plot."""
    if not isinstance(obj, dict) or not isinstance(obj.get("timesteps"), list):
        return None
    n = len(obj["timesteps"])
    out = {
        k: [float(x) for x in v]
        for k, v in obj.items()
        if isinstance(v, list) and len(v) == n and all(_num(x) is not None for x in v)
    }
    return out if len(out) >= 2 and n > 0 else None


def _results_html(results: Any, page: _Page, label: str) -> str:
    return _value_html(results, page, depth=0, plots=True, label=label)


def _value_html(
    obj: Any, page: _Page, *, depth: int, plots: bool, label: str = "", key: str = ""
) -> str:
    """Any JSON value as tables (and, for results, plots), nested values as subsections."""
    out: list[str] = []
    if isinstance(obj, dict) and _is_score_map(obj.get("seats")):
        scalars = {k: v for k, v in obj.items() if k != "seats" and not isinstance(v, dict)}
        if scalars:
            out.append(_kv_table(scalars))
        out.append(_score_table(obj["seats"], "seat"))
        page.tables += 1
        if plots:
            out.append(_score_plots(page, obj["seats"], f"{label} {key}".strip()))
        rest = {k: v for k, v in obj.items() if k != "seats" and isinstance(v, dict)}
        for k, v in rest.items():
            out.append(_subsection(k, v, page, depth, plots, label))
        return "".join(out)
    if _is_score_map(obj):
        out.append(_score_table(obj, key or "label"))
        page.tables += 1
        if plots:
            out.append(_score_plots(page, obj, f"{label} {key}".strip()))
        return "".join(out)
    if _is_rows(obj):
        out.append(_rows_table(obj))
        page.tables += 1
        if plots:
            out.append(_grid_plots(page, obj, f"{label} {key}".strip()))
        return "".join(out)
    if isinstance(obj, dict):
        if plots and obj and all(_series(v) is not None for v in obj.values()):
            out.append(_curves_plot(page, obj, f"{label} {key}".strip()))
            out.append(_curve_entries(page, obj, f"{label} {key}".strip()))
            return "".join(out)
        if plots and _series(obj) is not None:
            out.append(_curves_plot(page, {key or label: obj}, f"{label} {key}".strip()))
        scalars = {
            k: v
            for k, v in obj.items()
            if not (isinstance(v, dict) and v) and not (isinstance(v, list) and _is_rows(v))
        }
        if scalars:
            out.append(_kv_table(scalars))
            page.tables += 1
        for k, v in obj.items():
            if k not in scalars:
                out.append(_subsection(k, v, page, depth, plots, label))
        return "".join(out)
    if isinstance(obj, list):
        return f"<pre>{_e(json.dumps(obj, indent=1)[:20000])}</pre>"
    return f"<p>{_e(_fmt(obj))}</p>"


def _curve_entries(page: _Page, curves: dict[str, Any], title: str) -> str:
    """What the entries of a set of learning curves hold besides the curves (e.g. a
    reward study: each variant's run and its final score): one table per field."""
    out = []
    common = [k for k in next(iter(curves.values())) if all(k in v for v in curves.values())]
    series = _series(next(iter(curves.values()))) or {}
    scalars = [
        k
        for k in common
        if k not in series and all(not isinstance(v[k], dict) for v in curves.values())
    ]
    if scalars:
        out.append(
            _rows_table(
                [{"variant": name, **{k: v[k] for k in scalars}} for name, v in curves.items()]
            )
        )
        page.tables += 1
    for k in common:
        scores = {name: v[k] for name, v in curves.items()}
        if _is_score_map(scores):
            out.append(f"<h4>{_e(k)}</h4>{_score_table(scores, 'variant')}")
            page.tables += 1
            out.append(_score_plots(page, scores, f"{title} {k}"))
    return "".join(out)


def _subsection(key: str, value: Any, page: _Page, depth: int, plots: bool, label: str) -> str:
    if depth >= 5:
        return f"<h4>{_e(key)}</h4><pre>{_e(json.dumps(value, indent=1)[:20000])}</pre>"
    level = min(6, 4 + depth)
    inner = _value_html(value, page, depth=depth + 1, plots=plots, label=label, key=key)
    return f'<div class="sub"><h{level}>{_e(key)}</h{level}>{inner}</div>'


# ---------------------------------------------------------------- plots


def _figure(width: float = 6.4, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(page: _Page, fig: Any, stem: str, caption: str) -> str:
    """The figure as an embedded PNG with its caption."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    page.plots += 1
    src = _data_uri(buf.getvalue(), MIME[".png"])
    return (
        f'<figure><img src="{_e(src)}" alt="{_e(caption)}" data-name="{_e(stem)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _ci_err(values: list[float], cis: list[Any]) -> list[list[float]] | None:
    lows, highs = [], []
    for v, ci in zip(values, cis, strict=True):
        if not (isinstance(ci, list | tuple) and len(ci) == 2):
            return None
        lo, hi = _num(ci[0]), _num(ci[1])
        if lo is None or hi is None:
            return None
        lows.append(max(0.0, v - lo))
        highs.append(max(0.0, hi - v))
    return [lows, highs]


def _score_plots(page: _Page, scores: dict[str, dict[str, Any]], title: str) -> str:
    """Win rate with its 95% interval per label; the action-flip rate where attacked."""
    labels = [k for k, s in scores.items() if _num(s.get("win_rate")) is not None]
    parts = []
    if labels:
        values = [float(scores[k]["win_rate"]) for k in labels]
        err = _ci_err(values, [scores[k].get("win_rate_ci95") for k in labels])
        xlabel = "win rate (bars: 95% Wilson interval)"
        parts.append(
            _bars(
                page, labels, values, err, xlabel, f"{title}_win_rate", f"{title}: win rate, 95% CI"
            )
        )
    flipped = [k for k, s in scores.items() if _num(s.get("flip_rate")) is not None]
    if flipped:
        values = [float(scores[k]["flip_rate"]) for k in flipped]
        xlabel = "action-flip rate (attacked steps whose action changed)"
        parts.append(
            _bars(
                page,
                flipped,
                values,
                None,
                xlabel,
                f"{title}_flip_rate",
                f"{title}: action-flip rate",
            )
        )
    return f"<div class=figs>{''.join(parts)}</div>" if parts else ""


def _bars(
    page: _Page,
    labels: list[str],
    values: list[float],
    err: Any,
    xlabel: str,
    name: str,
    caption: str,
) -> str:
    """A horizontal bar chart of rates in [0, 1], one bar a label, top to bottom."""
    fig = _figure(6.4, 0.9 + 0.38 * len(labels))
    ax = fig.add_subplot()
    ax.barh(range(len(labels)), values, xerr=err, color="#4c72b0", capsize=3)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _save(page, fig, name, caption)


def _grid_plots(page: _Page, rows: list[dict[str, Any]], title: str) -> str:
    """Score vs ε (with intervals) and action-flip rate vs ε, one line per group."""
    grid = [r for r in rows if _num(r.get("eps")) is not None]
    if len({float(r["eps"]) for r in grid}) < 2:
        return ""
    score_key = next(
        (k for k in ("mean_return", "win_rate") if _num(grid[0].get(k)) is not None), None
    )
    if score_key is None:
        return ""
    ci_key = "return_ci95" if score_key == "mean_return" else "win_rate_ci95"
    group_keys = [
        k
        for k in grid[0]
        if k not in ("eps", "eps_text", "attack_spec") and isinstance(grid[0][k], str)
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in grid:
        groups.setdefault(" / ".join(str(r.get(k)) for k in group_keys) or "all", []).append(r)
    eps_all = sorted({float(r["eps"]) for r in grid})
    positive = [e for e in eps_all if e > 0]
    symlog = bool(positive) and max(positive) / min(positive) > 20
    parts = []
    for key, ylabel, with_ci in (
        (score_key, "mean score" if score_key == "mean_return" else "win rate", True),
        ("flip_rate", "action-flip rate", False),
    ):
        if not any(_num(r.get(key)) is not None for r in grid):
            continue
        fig = _figure(6.4, 4.0)
        ax = fig.add_subplot()
        for name, members in groups.items():
            pts = sorted(
                (float(r["eps"]), float(r[key]), r.get(ci_key))
                for r in members
                if _num(r.get(key)) is not None
            )
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            err = _ci_err(ys, [p[2] for p in pts]) if with_ci else None
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name)
        if symlog:
            ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xlabel("ε (L∞, network input)")
        ax.set_ylabel(ylabel + (" (bars: 95% CI)" if with_ci else ""))
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=8)
        caption = f"{title}: {ylabel} vs ε" + (" with 95% intervals" if with_ci else "")
        parts.append(_save(page, fig, f"{title}_{key}_vs_eps", caption))
    return f"<div class=figs>{''.join(parts)}</div>" if parts else ""


def _curves_plot(page: _Page, curves: dict[str, Any], title: str) -> str:
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot()
    for name, obj in curves.items():
        s = _series(obj)
        if s is None:
            continue
        x = s.pop("timesteps")
        for key, ys in s.items():
            ax.plot(x, ys, label=f"{name}: {key}" if len(curves) > 1 or len(s) > 1 else key)
    ax.set_xlabel("timesteps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return f"<div class=figs>{_save(page, fig, f'{title}_curves', f'{title}: over training')}</div>"


def _progress_plot(page: _Page, path: Path, title: str) -> None:
    """Win rate over training from a training run's ``progress.csv``."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error) as exc:
        page.notes.append(f"{path}: unreadable ({exc})")
        return
    pts = []
    for r in rows:
        try:
            t, w = float(r["timesteps"]), float(r["win_rate"])
        except (KeyError, TypeError, ValueError):
            continue
        if not math.isnan(w):
            pts.append((t, w, r))
    if not pts:
        page.add("<p class=note>progress.csv: no win rate recorded yet</p>")
        return
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#c44e52", label="win rate")
    ax.set_ylim(0, 1)
    ax.set_xlabel("training timesteps")
    ax.set_ylabel("adversary win rate (rolling)")
    ax.grid(alpha=0.3)
    shaping = [_float(p[2].get("shaping")) for p in pts]
    if any(s for s in shaping if s is not None):
        ax2 = ax.twinx()
        ax2.plot([p[0] for p in pts], [s or 0.0 for s in shaping], "--", color="grey", lw=1)
        ax2.set_ylabel("shaping weight", color="grey")
    last = pts[-1]
    caption = (
        f"{title}: win rate over training (last: {last[1]:.2f} at {int(last[0]):,} steps, "
        f"{last[2].get('episodes', '?')} episodes)"
    )
    page.add("<h3>Win rate over training <code>progress.csv</code></h3>")
    page.add(f"<div class=figs>{_save(page, fig, f'{title}_training', caption)}</div>")


def _float(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- videos


def _video_tag(src: str, caption: str, mime: str = "video/mp4") -> str:
    return (
        '<figure class="video"><video controls muted loop playsinline preload="auto" '
        f'data-state="pending"><source src="{_e(src)}" type="{_e(mime)}"></video>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _sample_recipe(run: Path) -> dict[str, Any] | None:
    """How to play one episode of what ``run`` measured, or None.

    * an adversary training run (``adversary_run.json`` and ``policy.zip``): the trained
      adversary against its frozen victims;
    * an ``arena evaluate`` run (``config.json`` with ``env`` and ``policies``): its
      policies and attacks;
    * a ``huang2017_pong`` run: its first victim under its first attack at the largest ε.
    """

    def load(name: str) -> Any:
        try:
            return json.loads((run / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None

    adv = load("adversary_run.json")
    if isinstance(adv, dict) and (run / "policy.zip").is_file():
        policies = dict(adv.get("victims") or {})
        policies[str(adv.get("adversary_seat"))] = f"run:{run.resolve()}"
        return {
            "env": adv.get("env"),
            "policies": policies,
            "attacks": {},
            "env_kwargs": {},
            "seed": parse_seed(adv.get("seed", 0), error=ReportError),
            "what": f"the trained {adv.get('adversary_seat')} against its victims",
        }
    config = load("config.json")
    if not isinstance(config, dict):
        return None
    if isinstance(config.get("env"), str) and isinstance(config.get("policies"), dict):
        policies = {
            seat: ref.get("spec") if isinstance(ref, dict) else ref
            for seat, ref in config["policies"].items()
        }
        seat_attacks = dict(config.get("attacks") or {})
        return {
            "env": config["env"],
            "policies": policies,
            "attacks": seat_attacks,
            "env_kwargs": dict(config.get("env_kwargs") or {}),
            "seed": parse_seed(config.get("seed", 0), error=ReportError),
            "deterministic": config.get("deterministic", True),
            "what": "its policies" + (" and attacks" if seat_attacks else ""),
        }
    victims, attacks, eps = config.get("victims"), config.get("attacks"), config.get("eps")
    if config.get("experiment") == "huang2017_pong" and victims and attacks and eps:
        name, ref = next(iter(victims.items()))
        kind = "fgsm" if "fgsm" in attacks else next(iter(attacks))
        top = max(eps, key=lambda e: parse_number(e, "eps", error=ReportError))
        if parse_number(top, "eps", error=ReportError) <= 0:
            return None
        attack = str(attacks[kind]).format(eps=top)
        return {
            "env": config.get("env"),
            "policies": {"player": ref.get("spec") if isinstance(ref, dict) else ref},
            "attacks": {"player": attack},
            "env_kwargs": dict(config.get("env_kwargs") or {}),
            "seed": parse_seed(config.get("seed", 0), error=ReportError),
            "what": f"victim {name} under {attack}",
        }
    return None


def _sample_records(page: _Page, root: Path, runs: list[Path]) -> list[tuple[Path, str]]:
    """Play and record one episode per run that has a recipe; records go in the page's
    temporary directory (removed once their videos are made)."""
    from agents import specs as policy_specs
    from arena.match import run_match
    from arena.recording import write_record

    out = []
    for run in runs:
        recipe = _sample_recipe(run)
        rel = "." if run == root else str(run.relative_to(root))
        if recipe is None:
            if (run / "adversary_run.json").is_file():
                page.notes.append(f"{rel}: no sample episode: no policy.zip (training unfinished)")
            continue
        try:
            policies = {s: str(p) for s, p in recipe["policies"].items()}
            _, records = run_match(
                recipe["env"],
                policies,
                n_episodes=1,
                seed=recipe["seed"],
                attacks=recipe["attacks"] or None,
                env_kwargs=recipe["env_kwargs"],
                deterministic=recipe.get("deterministic", True),
                record=True,
            )
            manifest = {
                "env": recipe["env"],
                "env_kwargs": recipe["env_kwargs"],
                "policies": {s: policy_specs.reference(p).to_json() for s, p in policies.items()},
                "attacks": recipe["attacks"],
                "seed": recipe["seed"],
                "seats": list(records[0].actions),
                "deterministic": recipe.get("deterministic", True),
            }
            rec = write_record(page.out / page.name(f"sample_{run.name}", ""), manifest, records)
        except Exception as exc:  # a victim file gone, a game not installed: say so, go on
            page.notes.append(f"{rel}: no sample episode ({type(exc).__name__}: {exc})")
            continue
        what = f"sample episode played for this report (seed {recipe['seed']}): {recipe['what']}"
        out.append((rec, f"{rel}: {what}"))
    return out


def _video_section(page: _Page, root: Path, clips: list[tuple[Path, str]]) -> None:
    """One video per record (its first episode); ``clips`` are (record, caption) pairs,
    an empty caption naming the record by its path."""
    if not clips:
        return
    from arena.video import episode_video

    page.add('<section class="run"><h2>Recorded episodes</h2><div class=figs>')
    for rec, label in clips[:MAX_VIDEOS]:
        rel = str(rec.relative_to(root)) if rec.is_relative_to(root) else str(rec)
        label = label or rel
        path = page.out / page.name(f"{rec.name}_ep0", ".mp4")
        try:
            video = episode_video(rec, path, episode=0)
        except Exception as exc:  # one bad record must not sink the whole page
            page.notes.append(f"{label}: no video ({type(exc).__name__}: {exc})")
            continue
        finally:
            if rec.is_relative_to(page.out):
                shutil.rmtree(rec, ignore_errors=True)
        caption = (
            f"{label}: {video.layout} video of episode {video.episode}, {video.steps} steps, "
            f"{'re-simulated and verified' if video.verified else 'NOT verified'}"
        )
        page.add(_video_tag(page.embed(path), caption))
        page.videos += 1
        page.notes += [f"{label}: {n}" for n in video.notes]
    page.add("</div>")
    if len(clips) > MAX_VIDEOS:
        page.notes.append(f"{len(clips) - MAX_VIDEOS} more records without videos")
    page.add("</section>")


# ---------------------------------------------------------------- the document

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1e2230;color:#eee;padding:16px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#aab}
main{padding:8px 28px 40px;max-width:1400px}
section.run{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 18px 16px;
margin:18px 0}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px} h4,h5,h6{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
table.results th{background:#f0f2f6} table.kv th{background:#f6f6f6;font-weight:600}
td{font-variant-numeric:tabular-nums;max-width:720px;overflow-wrap:anywhere}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:6px 0;background:#fff} figure img{max-width:min(100%,620px);border:1px solid #ddd}
figure.video video{max-width:100%;background:#000;border:1px solid #ddd}
figcaption{font-size:12px;color:#555;max-width:640px}
.sub{margin-left:10px} code{background:#f1f1f1;padding:0 3px;border-radius:3px}
.note{color:#8a5a00} pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:420px}
"""

_SCRIPT = """
(function(){
  var vids = document.querySelectorAll('video');
  function count(){
    var ok = 0, bad = 0;
    vids.forEach(function(v){ if (v.dataset.state === 'loaded') ok++;
      else if (v.dataset.state.indexOf('error') === 0) bad++; });
    document.body.dataset.videosLoaded = ok; document.body.dataset.videosFailed = bad;
  }
  vids.forEach(function(v){
    function failed(){ v.dataset.state = 'error ' + (v.error ? v.error.code : 'source'); count(); }
    v.addEventListener('loadeddata', function(){ v.dataset.state = 'loaded'; count(); });
    v.addEventListener('error', failed);
    v.querySelectorAll('source').forEach(function(s){ s.addEventListener('error', failed); });
    if (v.readyState >= 2) v.dataset.state = 'loaded';
  });
  count();
})();
"""


def _document(page: _Page, run_dir: Path) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = ""
    if page.notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in page.notes)
        notes = f'<section class="run"><h2>Notes</h2><ul class=note>{items}</ul></section>'
    summary = (
        f"{page.tables} tables, {page.plots} figures, {page.videos} videos; "
        f"generated {now} by arena report"
    )
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="generator" content="arena report">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>arena report: {_e(run_dir.name)}</title><style>{_CSS}</style></head>"
        f'<body data-videos="{page.videos}" data-videos-loaded="0" data-videos-failed="0">'
        f"<header><h1>{_e(run_dir.name)}</h1><p>{_e(str(run_dir))}</p>"
        f"<p>{_e(summary)}</p></header><main>{''.join(page.parts)}{notes}</main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
