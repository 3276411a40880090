"""The files of a grid: the grid file a user writes (TOML), and what ``arena grid``
keeps in the grid directory: ``grid.json`` (the cells, fixed when the grid starts)
and ``status/cNNN.json`` (one per cell: running, done or failed, with its summary).

A grid file names one command and the values of its options::

    command = "train-adversary"       # train-adversary, finetune-victim, evaluate,
                                      # or "run NAME" (an experiment)
    cpus = 1                          # CPUs one cell takes (default 1)

    [options]                         # the command's options, by their long names
    env_id = "toy_pass_v0"            # positional arguments by name too
    victim = { runner = "random" }    # SEAT=SPEC flags: a table of seats
    timesteps = 20000
    seed = [0, 1, 2]                  # a list: one value per cell
    shaping = [0.0, 1.0]

Every combination of the listed values is one cell (the first listed option varies
slowest). Cells that are not a product are listed instead, each a table of options
over those in ``[options]`` (and multiplied by them, if those vary)::

    [[cells]]
    env_id = "you_shall_not_pass_v0"
    victim = { runner = "zoo:you-shall-not-pass/agent_zoo-runner.pkl" }
    [[cells]]
    env_id = "kick_and_defend_v0"
    victim = { kicker = "zoo:kick-and-defend/kicker/agent1_parameters-v1.pkl" }
 A seat's value in a table may be a list too. Options that take several
items (``--sample SEAT`` repeated, ``--attacks A B``) take one value per cell like
any other, so several items in one cell are a list inside the list:
``sample = [["runner"], ["runner", "blocker"]]``.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from arena.artifacts.base import ArtifactError, check_version, described, is_int

MAX_GRID_BYTES = 1 * 2**20
MAX_CELLS = 10_000
MIN_CPUS = 1e-4
"""Ray's finest fraction of a CPU."""
KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
Scalar = str | int | float | bool
Value = Scalar | list[Scalar]
"""One cell's value of one option: a scalar, or several items of a repeatable option."""


class GridError(ArtifactError):
    """A grid file or grid directory that cannot be used."""


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, str | bool | int | float):
        if isinstance(value, float) and value != value:
            raise GridError(f"{where}: NaN is not a value")
        return value
    raise GridError(f"{where}: expected a string, number or true/false, not {described(value)}")


def _values(value: Any, where: str) -> list[Value]:
    """The values an option takes over the cells: a list is one value per cell (each a
    scalar, or a list of items), anything else one value for every cell."""
    if isinstance(value, list):
        if not value:
            raise GridError(f"{where}: the list of values is empty")
        out: list[Value] = []
        for i, item in enumerate(value):
            if isinstance(item, list):
                out.append([_scalar(x, f"{where}[{i}][{j}]") for j, x in enumerate(item)])
            else:
                out.append(_scalar(item, f"{where}[{i}]"))
        return out
    return [_scalar(value, where)]


def _seat(seat: str, where: str) -> str:
    """A key of a table of seats (``SEAT=VALUE`` on the command line): printable, not
    empty, without ``=``."""
    if not seat or "=" in seat or not seat.isprintable():
        raise GridError(
            f"{where}: {seat!r} cannot be a seat: a seat name is printable, not empty, without '='"
        )
    return seat


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise GridError(
            f"{where}: option names are lowercase words (a-z, 0-9, '_', '-'), not {key!r}"
        )
    return key.replace("-", "_")


@dataclass(frozen=True)
class GridSpec:
    """A parsed grid file: the command and, per option, the values it takes. An
    option given per seat (a table) maps seat -> values."""

    command: str
    options: dict[str, list[Value] | dict[str, list[Value]]]
    cpus: float = 1.0
    name: str = ""
    listed: tuple[dict[str, Value | dict[str, Value]], ...] = ()
    """``[[cells]]``: cells given one by one (each over every combination of options)."""

    @classmethod
    def read(cls, path: str | Path) -> GridSpec:
        path = Path(path)
        try:
            if not path.is_file():
                raise GridError(f"{path}: no such grid file")
            with path.open("rb") as fh:  # a huge file is not read whole
                raw = fh.read(MAX_GRID_BYTES + 1)
        except OSError as exc:
            raise GridError(f"{path}: cannot read it: {exc.strerror}") from None
        if len(raw) > MAX_GRID_BYTES:
            raise GridError(f"{path}: larger than {MAX_GRID_BYTES} bytes: not a grid file")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise GridError(f"{path}: not a TOML grid file: {first}") from None
        except RecursionError:
            raise GridError(f"{path}: not a TOML grid file: nested too deeply") from None
        return cls.from_toml(data, str(path), default_name=path.stem)

    @classmethod
    def from_toml(cls, data: dict[str, Any], where: str, default_name: str = "") -> GridSpec:
        unknown = sorted(set(data) - {"command", "cpus", "name", "options", "cells"})
        if unknown:
            raise GridError(
                f"{where}: unknown key {unknown[0]!r}; a grid file has command, cpus, name, "
                f"[options] and [[cells]]"
            )
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise GridError(f"{where}: 'command' must name the command the grid runs")
        cpus = data.get("cpus", 1)
        if (
            isinstance(cpus, bool)
            or not isinstance(cpus, int | float)
            or not MIN_CPUS <= cpus <= 1024
        ):
            raise GridError(
                f"{where}: 'cpus' (CPUs per cell) must be a number from {MIN_CPUS} to 1024"
            )
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name.isprintable():
            raise GridError(f"{where}: 'name' must be a string of printable characters")
        raw = data.get("options", {})
        if not isinstance(raw, dict):
            raise GridError(f"{where}: [options] must be a table")
        options: dict[str, list[Value] | dict[str, list[Value]]] = {}
        for k, v in raw.items():
            key = _key(k, f"{where}: [options]")
            if key in options:
                raise GridError(f"{where}: option {k!r} given twice")
            if isinstance(v, dict):
                if not v:
                    raise GridError(f"{where}: options.{k} is an empty table of seats")
                options[key] = {
                    _seat(str(seat), f"{where}: options.{k}"): _values(
                        sv, f"{where}: options.{k}.{seat}"
                    )
                    for seat, sv in v.items()
                }
            else:
                options[key] = _values(v, f"{where}: options.{k}")
        raw_cells = data.get("cells", [])
        if not isinstance(raw_cells, list) or not all(isinstance(c, dict) for c in raw_cells):
            raise GridError(f"{where}: [[cells]] must be a list of tables")
        listed = tuple(
            _listed_cell(c, f"{where}: cells[{i}]", set(options)) for i, c in enumerate(raw_cells)
        )
        spec = cls(" ".join(command.split()), options, float(cpus), name, listed)
        if spec.n_cells > MAX_CELLS:
            raise GridError(f"{where}: {spec.n_cells:,} cells; at most {MAX_CELLS:,}")
        return spec

    def _axes(self) -> list[tuple[tuple[str, str | None], list[Value]]]:
        axes: list[tuple[tuple[str, str | None], list[Value]]] = []
        for key, values in self.options.items():
            if isinstance(values, dict):
                axes += [((key, seat), v) for seat, v in values.items()]
            else:
                axes.append(((key, None), values))
        return axes

    @property
    def n_cells(self) -> int:
        n = max(1, len(self.listed))
        for _, values in self._axes():
            n *= len(values)
        return n

    def cells(self) -> list[dict[str, Value | dict[str, Value]]]:
        """Every combination: per cell, option -> value (a table option: seat -> value)."""
        axes = self._axes()
        out = []
        for combo in itertools.product(*(values for _, values in axes)):
            cell: dict[str, Any] = {}
            for ((key, seat), _), value in zip(axes, combo, strict=True):
                if seat is None:
                    cell[key] = value
                else:
                    cell.setdefault(key, {})[seat] = value
            for listed in self.listed or ({},):
                out.append({**cell, **listed})
        return out

    def varied(self) -> list[str]:
        """The options (``key`` or ``key.seat``) that differ between cells."""
        out = [
            key if seat is None else f"{key}.{seat}"
            for (key, seat), values in self._axes()
            if len(values) > 1
        ]
        if len(self.listed) > 1:
            seen: dict[str, list[Any]] = {}
            for cell in self.listed:
                for key, value in cell.items():
                    paths = (
                        [(f"{key}.{seat}", v) for seat, v in value.items()]
                        if isinstance(value, dict)
                        else [(key, value)]
                    )
                    for path, v in paths:
                        seen.setdefault(path, []).append(v)
            out += [p for p, vs in seen.items() if p not in out and (
                len(vs) < len(self.listed) or any(v != vs[0] for v in vs))]  # fmt: skip
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "cpus": self.cpus, "name": self.name,
               "options": self.options}  # fmt: skip
        if self.listed:
            out["cells"] = list(self.listed)
        return out


def _listed_cell(
    data: dict[str, Any], where: str, options: set[str]
) -> dict[str, Value | dict[str, Value]]:
    """One ``[[cells]]`` table: option -> one value (a list: several items)."""
    cell: dict[str, Value | dict[str, Value]] = {}
    for k, v in data.items():
        key = _key(k, where)
        if key in options:
            raise GridError(f"{where}: {k!r} is in [options] too; give it in one place")
        if key in cell:
            raise GridError(f"{where}: option {k!r} given twice")
        if isinstance(v, dict):
            cell[key] = {
                _seat(str(seat), f"{where}.{k}"): _one(sv, f"{where}.{k}.{seat}")
                for seat, sv in v.items()
            }
        else:
            cell[key] = _one(v, f"{where}.{k}")
    return cell


def _one(value: Any, where: str) -> Value:
    if isinstance(value, list):
        return [_scalar(x, f"{where}[{j}]") for j, x in enumerate(value)]
    return _scalar(value, where)


@dataclass(frozen=True)
class CellPlan:
    """One cell as ``grid.json`` fixes it: its values and the command line it runs."""

    index: int
    values: dict[str, Any]
    argv: list[str]
    """The ``arena`` command line, without the output flag the grid adds."""
    out: str = ""
    """Where its run goes, relative to the grid directory (default ``cells/cNNN``)."""

    @property
    def name(self) -> str:
        return f"c{self.index:03d}"

    @property
    def output(self) -> str:
        return self.out or f"cells/{self.name}"

    def label(self, varied: list[str]) -> str:
        """The varied values of the cell in words: ``seed=0 shaping=1.0``."""
        parts = []
        for path in varied:
            key, _, seat = path.partition(".")
            value = self.values.get(key)
            if seat:
                value = value.get(seat) if isinstance(value, dict) else None
            parts.append(f"{path}={value}")
        return " ".join(parts)


@dataclass(frozen=True)
class GridManifest:
    """``grid.json``: the grid as it started; ``--resume`` runs exactly these cells."""

    SCHEMA_VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "grid.json"

    spec: GridSpec
    cells: tuple[CellPlan, ...]
    varied: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.SCHEMA_VERSION,
            "kind": "grid",
            "grid": self.spec.to_json(),
            "varied": list(self.varied),
            "cells": [
                {"index": c.index, "values": c.values, "argv": c.argv, "out": c.output}
                for c in self.cells
            ],
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> GridManifest:
        if not isinstance(data, dict) or data.get("kind") != "grid":
            raise GridError(f"{where}: not the manifest of a grid")
        check_version(data, (cls.SCHEMA_VERSION,), where, error=GridError)
        grid = data.get("grid")
        if not isinstance(grid, dict):
            raise GridError(f"{where}: 'grid' must be an object")
        spec = GridSpec.from_toml(grid, f"{where}: grid")
        cells = []
        raw = data.get("cells")
        if not isinstance(raw, list) or len(raw) != spec.n_cells:
            raise GridError(f"{where}: 'cells' must list the grid's {spec.n_cells} cells")
        for i, c in enumerate(raw):
            at = f"{where}: cells[{i}]"
            if not isinstance(c, dict) or c.get("index") != i or not is_int(c.get("index")):
                raise GridError(f"{at}: must be an object with index {i}")
            argv = c.get("argv")
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise GridError(f"{at}: 'argv' must be a list of strings")
            if not isinstance(c.get("values"), dict):
                raise GridError(f"{at}: 'values' must be an object")
            out = c.get("out", f"cells/c{i:03d}")
            if not inside_path(out) or Path(out).parts[0] in OWN_FILES:
                raise GridError(
                    f"{at}: 'out' must be a relative path inside the grid directory, beside "
                    f"{', '.join(OWN_FILES)}"
                )
            cells.append(CellPlan(i, c["values"], list(argv), out))
        varied = data.get("varied", [])
        if not isinstance(varied, list) or not all(isinstance(v, str) for v in varied):
            raise GridError(f"{where}: 'varied' must be a list of option names")
        return cls(spec, tuple(cells), tuple(varied))


OWN_FILES = ("grid.json", "results.json", "status", "logs", "ray", ".grid.lock")
"""What the grid itself keeps in its directory: no cell's run goes there."""


def inside_path(path: Any) -> bool:
    """A relative path that stays inside, and below, the directory it is relative to."""
    return (
        isinstance(path, str)
        and bool(path)
        and "\x00" not in path
        and not Path(path).is_absolute()
        and bool(Path(path).parts)
        and ".." not in Path(path).parts
    )


def _headline_number(value: Any) -> bool:
    """A figure a summary may hold: a float (NaN: nothing measured) or an int a float
    can hold; never infinite."""
    if is_int(value):
        return bool(abs(value) < 2**63)
    return isinstance(value, float) and not math.isinf(value)


def _summary(data: Any, where: str) -> dict[str, Any]:
    """A finished cell's summary: ``headline`` (label, value, ci95) and ``figures``."""
    if not isinstance(data, dict):
        raise GridError(f"{where}: 'summary' must be an object")
    head = data.get("headline", {})
    if not isinstance(head, dict) or not isinstance(data.get("figures", {}), dict):
        raise GridError(f"{where}: 'summary' must hold objects 'headline' and 'figures'")
    value, ci = head.get("value"), head.get("ci95")
    if not isinstance(head.get("label", ""), str):
        raise GridError(f"{where}: 'summary.headline.label' must be a string")
    if value is not None and not _headline_number(value):
        raise GridError(f"{where}: 'summary.headline.value' must be a number or null")
    if ci is not None and (
        not isinstance(ci, list) or len(ci) != 2 or not all(_headline_number(x) for x in ci)
    ):
        raise GridError(f"{where}: 'summary.headline.ci95' must be two numbers")
    return data


STATES = ("running", "done", "failed")


@dataclass(frozen=True)
class CellStatus:
    """``status/cNNN.json``: where a cell stands. ``running`` left behind by a worker
    that died is what ``--resume`` (or Ray's retry) continues."""

    index: int
    state: str
    attempt: int
    run_dir: str | None = None
    """The cell's run directory, relative to the grid directory."""
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    host: str = ""
    pid: int = 0
    node: str | None = None
    """The Ray node that ran it (None: the local pool)."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "index": self.index,
            "state": self.state,
            "attempt": self.attempt,
            "run_dir": self.run_dir,
            "summary": self.summary,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
            "node": self.node,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> CellStatus:
        if not isinstance(data, dict):
            raise GridError(f"{where}: must hold a JSON object, not {described(data)}")
        check_version(data, (1,), where, error=GridError)
        if data.get("state") not in STATES:
            raise GridError(f"{where}: 'state' must be one of {', '.join(STATES)}")
        for key in ("index", "attempt", "pid"):
            if not is_int(data.get(key)) or data[key] < 0:
                raise GridError(f"{where}: {key!r} must be a whole number >= 0")
        run_dir = data.get("run_dir")
        if run_dir is not None and not inside_path(run_dir):
            raise GridError(f"{where}: 'run_dir' must be a path inside the grid directory")
        summary = _summary(data.get("summary", {}), where)
        error, node = data.get("error"), data.get("node")
        if error is not None and not isinstance(error, str):
            raise GridError(f"{where}: 'error' must be a string or null")
        if node is not None and not isinstance(node, str):
            raise GridError(f"{where}: 'node' must be a string or null")
        seconds = data.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise GridError(f"{where}: 'seconds' must be a number")
        return cls(
            index=data["index"],
            state=data["state"],
            attempt=data["attempt"],
            run_dir=run_dir,
            summary=summary,
            error=error,
            host=str(data.get("host", "")),
            pid=data["pid"],
            node=node,
            seconds=float(seconds),
        )
