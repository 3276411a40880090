"""A run directory's ``results.json``: ``RunResults``.

``RunResults`` says what a run found and how to show it, so that a reader (``arena
report``) never guesses: the headline table (the finding the run exists for, each score
with its 95% interval), further tables, figures, the records the run wrote, and
``SampleRecipe``s (how to play one episode of what the run measured). Any other key a
writer adds is kept, untouched, in ``RunResults.extra``.

The parts live beside it: ``run_tables`` (``Table``, ``Score``), ``run_figures``
(``LineChart``, ``BarChart``), ``run_samples`` (``SampleRecipe``), ``run_builders`` and
``run_sweep`` (what writers build them with); ``run_config`` is ``config.json``.
``results.json`` as written before schema version 1 (no ``schema_version``) is read by
``arena.artifacts.run_legacy``: the only code that knows those shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from arena.artifacts.base import check_version
from arena.artifacts.run_builders import seat_figures, seat_table
from arena.artifacts.run_fields import RunFileError, json_list, text
from arena.artifacts.run_figures import Figure, figure_from_json
from arena.artifacts.run_samples import SampleRecipe
from arena.artifacts.run_tables import Table

if TYPE_CHECKING:
    from arena.match import MatchResult

RESULTS = "results.json"
TOP_KEYS = (
    "schema_version",
    "kind",
    "title",
    "headline",
    "tables",
    "figures",
    "records",
    "samples",
)
"""``RunResults``' own keys; any other key is kept in ``RunResults.extra``."""


def record_path(value: Any, where: str) -> str:
    """A record directory named by a run: absolute, or relative and inside the run."""
    named = text(value, where)
    if not Path(named).is_absolute() and ".." in PurePosixPath(named).parts:
        raise RunFileError(f"{where} {named!r} leaves the run directory")
    return named


@dataclass(frozen=True)
class RunResults:
    """A run directory's ``results.json``: its finding first, then what supports it."""

    SCHEMA_VERSION: ClassVar[int] = 1

    kind: str
    """What wrote it: ``evaluate``, ``gleave2020``, ``adversary training`` ..."""
    title: str
    """The finding in a few words: ``"victim win rates on you_shall_not_pass_v0"``."""
    headline: Table | None = None
    """The table the run exists for; its highlighted rows are the finding."""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    records: tuple[str, ...] = ()
    """Record directories the run wrote: relative to the run directory, or absolute."""
    samples: tuple[SampleRecipe, ...] = ()
    """Episodes worth watching, the finding's first."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Any other key of the file (the run's raw numbers), kept as written."""

    def to_json(self) -> dict[str, Any]:
        out = {
            "schema_version": self.SCHEMA_VERSION,
            "kind": self.kind,
            "title": self.title,
            "headline": self.headline.to_json() if self.headline is not None else None,
            "tables": [t.to_json() for t in self.tables],
            "figures": [f.to_json() for f in self.figures],
            "records": list(self.records),
            "samples": [s.to_json() for s in self.samples],
        }
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    def table(self, title: str) -> Table:
        """The headline or further table called ``title`` (``KeyError`` naming them)."""
        tables = ((self.headline,) if self.headline is not None else ()) + self.tables
        for table in tables:
            if table.title == title:
                return table
        titles = ", ".join(repr(t.title) for t in tables) or "none"
        raise KeyError(f"no table {title!r}; tables: {titles}")

    @classmethod
    def from_json(
        cls,
        data: Any,
        where: str = RESULTS,
        *,
        config: Mapping[str, Any] | None = None,
        run_dir: Path | None = None,
        root: Path | None = None,
        notes: list[str] | None = None,
    ) -> RunResults:
        """The results, every field checked (one-line ``RunFileError``). A file without
        ``schema_version`` (before version 1) is converted by ``results_from_legacy``,
        which may use the run's ``config`` and ``run_dir`` to say how to play a sample
        (reading another run only inside ``root``, if given; why not goes to ``notes``)."""
        if not (isinstance(data, dict) and "schema_version" in data):
            from arena.artifacts.run_legacy import results_from_legacy

            return results_from_legacy(
                data, where, config=config, run_dir=run_dir, root=root, notes=notes
            )
        check_version(data, (cls.SCHEMA_VERSION,), where, RunFileError)
        headline = data.get("headline")

        def each(key: str) -> list[tuple[Any, str]]:
            items = json_list(data.get(key, []), f"{where}: {key}")
            return [(item, f"{where}: {key}[{i}]") for i, item in enumerate(items)]

        return cls(
            kind=text(data.get("kind"), f"{where}: kind"),
            title=text(data.get("title"), f"{where}: title"),
            headline=Table.from_json(headline, f"{where}: headline") if headline else None,
            tables=tuple(Table.from_json(t, at) for t, at in each("tables")),
            figures=tuple(figure_from_json(f, at) for f, at in each("figures")),
            records=tuple(record_path(r, at) for r, at in each("records")),
            samples=tuple(SampleRecipe.from_json(s, at) for s, at in each("samples")),
            extra={k: v for k, v in data.items() if k not in TOP_KEYS},
        )

    @classmethod
    def from_match(
        cls,
        result: MatchResult,
        *,
        policies: Mapping[str, str],
        attacks: Mapping[str, str] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        deterministic: bool | Mapping[str, bool] = True,
        record: str | Path | None = None,
    ) -> RunResults:
        """The results of ``arena evaluate``: every seat's score (attacked seats are the
        finding), win-rate bars, the record if one was written, and how to replay it."""
        attacks = dict(attacks or {})
        det = deterministic if isinstance(deterministic, bool) else dict(deterministic)
        n = len(result.lengths)
        caption = f"mean episode length {sum(result.lengths) / n:.1f} steps" if n else ""
        if result.ends:
            caption += "; " + result.ends_line()
        return cls(
            kind="evaluate",
            title=f"scores on {result.env} over {result.episodes} episodes (seed {result.seed})",
            headline=seat_table(
                "Scores by seat",
                "seat",
                result.seats,
                highlight=[s for s in result.seats if s in attacks],
                caption=caption,
            ),
            figures=seat_figures(result.seats),
            records=(str(Path(record).resolve()),) if record is not None else (),
            samples=(
                SampleRecipe(
                    env=result.env,
                    policies={s: str(p) for s, p in policies.items()},
                    seed=result.seed,
                    attacks=attacks,
                    env_kwargs=dict(env_kwargs or {}),
                    deterministic=det,
                    label="its policies" + (" and attacks" if attacks else ""),
                ),
            ),
            extra=result.to_json(),
        )
