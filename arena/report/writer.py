"""``write_report``: find the runs, read them, lay out one section each, write the page.

The page is written in a temporary sibling of its directory and swapped in whole, so a
previous report is replaced, never left half-written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from arena.artifacts import Figure
from arena.artifacts.run_fields import as_text
from arena.io import public_mode
from arena.report import episodes, html, plots
from arena.report.discovery import (
    MANIFEST,
    MARKER,
    ReportError,
    check_out,
    discover,
    inside,
    owner,
    regular_file,
    relative,
    resolved,
)
from arena.report.episodes import MAX_VIDEOS, Episode
from arena.report.media import MIME, Clip, MediaError, PageFiles, Picture, copy_media
from arena.report.reading import RunView, read_run
from arena.report.tables import entries, table_view


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    records: Sequence[str | Path] = (),
    samples: bool = True,
) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``RUN_DIR/report``).

    Every run at or under ``run_dir`` gets a section: its headline table, a video of
    one episode (its own records' first episodes; else, with ``samples``, one episode
    played from its results' sample recipe), its plots, then its configuration and
    metadata folded away. ``records`` are more record directories to show. Returns the
    path of ``index.html``. ``out`` must be new, empty, or a previous report.
    """
    from arena.recording import read_manifest

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"no run directory at {run_dir}")
    final = Path(out) if out is not None else run_dir / "report"
    found = discover(run_dir, final)
    check_out(final, run_dir, found, [Path(r) for r in records])
    for rec in records:
        read_manifest(rec)  # a bad --record is the user's error: say so now
    paths = found.runs
    # a wrongly typed file: now
    runs = [read_run(p, relative(p, run_dir), root=run_dir) for p in paths]
    given = [Path(r) for r in records]
    loose = _attach_records(runs, paths, found.records, run_dir, given)
    loose += given
    if not runs and not loose:
        raise ReportError(
            f"nothing to report in {run_dir}: no config.json, adversary_run.json, "
            f"results.json, progress.csv or episode records"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        public_mode(tmp)
        files = PageFiles(tmp, notes=list(found.notes), root=run_dir)
        sections = [_section(i, run, run_dir, files, samples) for i, run in enumerate(runs)]
        _link_runs(sections, runs)
        shown = {resolved(rec) for run in runs for rec in run.records}
        loose = list({resolved(p): p for p in loose if resolved(p) not in shown}.values())
        if loose:
            sections.append(_records_section(loose, run_dir, files))
        (tmp / "index.html").write_text(_page(run_dir, runs, sections, files), encoding="utf-8")
        (tmp / MARKER).write_text("written by `arena report`; safe to replace\n")
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "index.html"


def _attach_records(
    runs: list[RunView], paths: list[Path], found: list[Path], root: Path, given: list[Path]
) -> list[Path]:
    """Give each run the records it names (only inside ``root``, or given with
    ``--record``) and those inside it; the rest are returned."""
    allowed = {resolved(p) for p in given}
    loose = []
    for rec in found:
        holder = owner(rec, paths)
        if holder is None:
            loose.append(rec)
        else:
            runs[paths.index(holder)].records.append(rec)
    for run in runs:
        named = run.results.records if run.results else ()
        for name in named:
            rec = Path(name) if Path(name).is_absolute() else run.path / name
            if not inside(rec, root) and resolved(rec) not in allowed:
                run.notes.append(
                    f"the record it names, {as_text(name)}, lies outside {root}: not shown "
                    f"(give it with --record to show it)"
                )
            elif not regular_file(rec / MANIFEST):
                run.notes.append(f"the record it names, {as_text(name)}, is not there")
            elif resolved(rec) not in {resolved(r) for r in run.records}:
                run.records.insert(0, rec)
    return loose


def _link_runs(sections: list[html.Section], runs: list[RunView]) -> None:
    """A table cell that names the folder of a run on the page (a grid's ``cells/c003``)
    links to that run's section."""
    anchors: dict[str, str] = {}
    for section, run in zip(sections, runs, strict=True):
        parts = Path(run.name).parts
        for depth in range(1, len(parts) + 1):  # the run's folder and those above it
            anchors.setdefault("/".join(parts[:depth]), f"#{section.anchor}")
    for section in sections:
        tables = ([section.headline] if section.headline else []) + section.tables
        for i, table in enumerate(tables):
            rows = tuple(
                dataclasses.replace(row, links=tuple(anchors.get(c) for c in row.cells))
                if any(c in anchors for c in row.cells)
                else row
                for row in table.rows
            )
            linked = dataclasses.replace(table, rows=rows)
            if i == 0 and section.headline is not None:
                section.headline = linked
            else:
                section.tables[i - (1 if section.headline is not None else 0)] = linked


def _heading(run: RunView) -> str:
    """The run's finding in words; else what kind of run it is."""
    if run.results is not None and run.results.kind != "results":
        return run.results.title[:1].upper() + run.results.title[1:]
    if run.is_training:
        finished = (run.path / "policy.zip").is_file()
        return "Adversary training" + ("" if finished else " (unfinished)")
    return "Results" if run.results is not None else "Run"


def _section(index: int, run: RunView, root: Path, files: PageFiles, samples: bool) -> html.Section:
    label = run.name if run.name != "." else root.name
    section = html.Section(
        anchor=f"run-{index}",
        heading=_heading(run),
        path=label,
        summary=f"{run.results.kind} run" if run.results and run.results.kind != "results" else "",
    )
    results = run.results
    if results is not None:
        section.headline = table_view(results.headline) if results.headline else None
        section.tables = [table_view(t) for t in results.tables]
        section.figures = _figures(results.figures, label, files)
    section.clips = _clips(run, label, files, samples)
    if run.progress:
        last = run.progress[-1]
        caption = (
            f"Win rate over training (last: {last.win_rate:.2f} at {int(last.timesteps):,} "
            f"steps, {last.episodes} episodes)"
        )
        try:
            section.figures.append(files.picture(plots.progress_png(run.progress), caption))
        except Exception as exc:  # one bad plot must not sink the page
            files.notes.append(f"{label}: progress.csv: not drawn ({episodes.why(exc)})")
    elif run.progress is not None:
        files.notes.append(f"{label}: progress.csv: no win rate recorded yet")
    for src in run.media:
        copy = files.name(src.stem, src.suffix.lower())
        try:
            copy_media(src, copy)
        except OSError as exc:
            copy.unlink(missing_ok=True)
            why = str(exc) if isinstance(exc, MediaError) else f"{src.name}: not read ({exc})"
            files.notes.append(f"{label}: {why}")
            continue
        if src.suffix.lower() in (".mp4", ".webm"):
            mime = MIME[src.suffix.lower()]
            section.saved_clips.append(Clip(files.embed(copy), src.name, mime))
        else:
            section.saved_pictures.append(Picture(files.embed(copy), src.name))
    if run.config is not None:
        title = f"Configuration ({run.config_file})"
        section.details.append(html.Details(title, entries(run.config.values)))
    if run.metadata:
        title = "Metadata: versions, git commit, command"
        section.details.append(html.Details(title, entries(run.metadata)))
    if results is not None and entries(results.extra):
        section.details.append(html.Details("Other values in results.json", entries(results.extra)))
    files.notes += [f"{label}: {n}" for n in run.notes]
    return section


def _figures(figures: Sequence[Figure], label: str, files: PageFiles) -> list[Picture]:
    """The run's figures drawn; one that cannot be drawn is a note."""
    pictures = []
    for f in figures:
        try:
            png, note = plots.figure(f)
        except Exception as exc:  # one bad figure must not sink the page
            files.notes.append(
                f"{label}: figure {f.title[:100]!r}: not drawn ({episodes.why(exc)})"
            )
            continue
        pictures.append(files.picture(png, f.title + (f" ({note})" if note else "")))
    return pictures


def _clips(run: RunView, label: str, files: PageFiles, samples: bool) -> list[Clip]:
    """Videos of the run's records; else of one sample episode played from its recipe."""
    wanted = [Episode(rec, f"record {rec.name}", label) for rec in run.records]
    recipes = run.samples
    if not wanted and samples and recipes:
        try:
            wanted = [episodes.play_sample(recipes[0], files, run.path.name, label)]
        except episodes.SampleError as exc:  # refused or too long: say why
            files.notes.append(f"{label}: no sample episode: {exc}")
        except Exception as exc:  # a victim file gone, a game not installed: say so, go on
            files.notes.append(f"{label}: no sample episode ({episodes.why(exc)})")
    elif not wanted and run.is_training and not recipes:
        if not _trained(run.path):  # else its notes say why there is no sample
            files.notes.append(f"{label}: no sample episode: no policy or checkpoint yet")
    elif not wanted and samples and run.results is not None and run.results.headline:
        files.notes.append(f"{label}: no episode to show: its results name no record or sample")
    return _videos(wanted, files)


def _trained(path: Path) -> bool:
    """A training run with a policy or a checkpoint (a sample it lacks: a note says why)."""
    return (path / "policy.zip").is_file() or (path / "checkpoints" / "state.json").is_file()


def _videos(wanted: list[Episode], files: PageFiles) -> list[Clip]:
    clips = []
    for ep in wanted:
        if files.videos >= MAX_VIDEOS:
            files.notes.append(f"{ep.record}: not shown (at most {MAX_VIDEOS} videos a page)")
            if ep.played:
                shutil.rmtree(ep.record, ignore_errors=True)
            continue
        clip = episodes.video(ep, files)
        if clip is not None:
            clips.append(clip)
            files.videos += 1
    return clips


def _records_section(records: list[Path], root: Path, files: PageFiles) -> html.Section:
    section = html.Section(anchor="records", heading="Recorded episodes", path=root.name)
    section.clips = _videos([Episode(rec, relative(rec, root)) for rec in records], files)
    return section


def _page(root: Path, runs: list[RunView], sections: list[html.Section], files: PageFiles) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tables = sum(bool(s.headline) + len(s.tables) for s in sections)
    figures = sum(len(s.figures) + len(s.saved_pictures) for s in sections)
    videos = sum(len(s.clips) + len(s.saved_clips) for s in sections)
    summary = (
        f"{len(runs)} runs, {tables} tables, {figures} figures, {videos} videos; "
        f"generated {now} by arena report"
    )
    page = html.PageView(
        name=root.name,
        title="Arena report",
        path=str(root),
        summary=summary,
        sections=sections,
        notes=files.notes,
        videos=videos,
    )
    return html.render_page(page)


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
