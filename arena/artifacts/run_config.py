"""A run directory's ``config.json`` (``RunConfig``): the run's configuration as its
writer resolved it, free-form, with the fields readers rely on checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.numbers import parse_number, parse_seed
from arena.artifacts.base import check_version, kind
from arena.artifacts.run_fields import RunFileError, as_text, brief, no_huge_int

CONFIG = "config.json"


@dataclass(frozen=True)
class RunConfig:
    """A run's configuration as its writer resolved it (``config.json``, or a training
    run's ``adversary_run.json``): free-form, but the fields readers rely on are
    checked for type and range."""

    values: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.values)

    @classmethod
    def from_json(cls, data: Any, where: str = CONFIG) -> RunConfig:
        if not isinstance(data, dict):
            raise RunFileError(f"{where} must hold a JSON object, got {kind(data)}")
        if "schema_version" in data:
            check_version(data, (1,), where, RunFileError)
        for key, value in data.items():
            want = _config_problem(key, value)
            if want is not None:
                shown = brief(value, as_json=True)
                raise RunFileError(f"{where}: {as_text(key, 60)!r} must be {want}, got {shown}")
        try:
            if "seed" in data:
                parse_seed(no_huge_int(data["seed"], "seed"), "seed")
            for key in ("episodes", "timesteps"):
                if data.get(key) is not None:
                    value = no_huge_int(data[key], key)
                    parse_number(value, key, low=1, integer=True)
            for e in data.get("eps") or ():
                parse_number(no_huge_int(e, "eps"), "eps", low=0.0, high=1.0)
        except ValueError as exc:
            raise RunFileError(f"{where}: {exc}") from None
        return cls(dict(data))


def _is_seat_map(value: Any, types: type | tuple[type, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, types) for k, v in value.items()
    )


def _config_problem(key: str, value: Any) -> str | None:
    """What config field ``key`` must be, if ``value`` is not that; else None."""
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
