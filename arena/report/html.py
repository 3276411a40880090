"""The page's HTML, from the Jinja2 templates in ``arena/report/templates`` (package
data), autoescaped: no HTML is written anywhere else."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from arena.report.media import Clip, Picture
from arena.report.tables import Entry, TableView


@dataclass(frozen=True)
class Details:
    """A folded part of a run: its configuration, metadata or other values."""

    title: str
    entries: tuple[Entry, ...]


@dataclass
class Section:
    """One run on the page: the finding and an episode first, plots, then the folded."""

    anchor: str
    heading: str
    path: str
    summary: str = ""
    headline: TableView | None = None
    clips: list[Clip] = field(default_factory=list)
    figures: list[Picture] = field(default_factory=list)
    tables: list[TableView] = field(default_factory=list)
    saved_pictures: list[Picture] = field(default_factory=list)
    saved_clips: list[Clip] = field(default_factory=list)
    details: list[Details] = field(default_factory=list)


@dataclass
class PageView:
    name: str
    title: str
    path: str
    summary: str
    sections: list[Section]
    notes: list[str]
    videos: int


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("arena.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(page: PageView) -> str:
    return str(_environment().get_template("page.html.j2").render(page=page))
