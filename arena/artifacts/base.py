"""What every file type shares: its error, its JSON reading, its schema check.

A file type is a frozen dataclass with ``SCHEMA_VERSION``, ``to_json()`` and
``from_json(data, where)``. ``from_json`` checks the type and range of every field and
raises a one-line error naming the file and the field; the previous schema version is
converted in one function of the type, never guessed at by a reader.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from arena.errors import ArenaError
from arena.io import write_json_atomic

MAX_JSON_BYTES = 64 * 2**20
"""No file the arena writes as JSON comes near this; a larger one is refused unread."""


class ArtifactError(ArenaError):
    """A file that is missing, corrupted, or of an unknown schema version."""


def kind(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    return "null" if value is None else type(value).__name__


def described(value: Any) -> str:
    """A JSON value's kind in words: ``an object``, ``a list``, ``a string``, ``null``,
    else the type's name (``int``, ``bool``...)."""
    names = {"dict": "an object", "list": "a list", "str": "a string", "NoneType": "null"}
    return names.get(type(value).__name__, type(value).__name__)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float that is not NaN (booleans are not numbers here)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def read_json(path: Path, error: type[ArtifactError] = ArtifactError) -> Any:
    """The JSON value in ``path``, a regular file (not a device, a FIFO or a directory)
    of at most ``MAX_JSON_BYTES``; every way it can fail is one line of ``error``."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is not a regular file")
        if info.st_size > MAX_JSON_BYTES:
            raise error(
                f"{path} is {info.st_size} bytes; a JSON file of the arena is under "
                f"{MAX_JSON_BYTES}"
            )
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:  # a file may grow after stat: read up to the cap
            chunks, total = [], 0
            while total <= MAX_JSON_BYTES and (chunk := fh.read(1 << 20)):
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_JSON_BYTES:
        raise error(f"{path} is over {MAX_JSON_BYTES} bytes; no JSON file of the arena is")
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer of 5,000 digits
        raise error(f"{path} is not valid JSON: {' '.join(str(exc).split())[:200]}") from None
    except RecursionError:
        raise error(f"{path} is not valid JSON: nested too deeply") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half."""
    write_json_atomic(path, data)


def check_version(
    data: Any,
    supported: tuple[int, ...],
    where: str,
    error: type[ArtifactError] = ArtifactError,
) -> int:
    """``data["schema_version"]`` if it is one of ``supported``; else one line that says
    whether the file is newer than this arena or simply not one of its files."""
    if not isinstance(data, dict):
        raise error(f"{where}: must be a JSON object, got {kind(data)}")
    version: Any = data.get("schema_version")
    if is_int(version) and version in supported:
        return int(version)
    newer = is_int(version) and version > max(supported)
    raise error(
        f"{where}: schema_version {version!r} is "
        f"{'newer than this arena supports (upgrade it)' if newer else 'not supported'}; "
        f"this arena reads schema_version {', '.join(map(str, supported))}"
    )


def integer(
    data: dict[str, Any],
    key: str,
    where: str,
    error: type[ArtifactError],
    low: int = 0,
    *,
    name: str | None = None,
) -> int:
    """``data[key]`` as an integer in ``[low, 2**63)``; the error names it ``name``
    (default ``WHERE: 'KEY'``)."""
    value: Any = data.get(key)
    if not is_int(value) or not low <= value < 2**63:
        label = name if name is not None else f"{where}: {key!r}"
        raise error(f"{label} must be an integer >= {low} (< 2**63), got {value!r}")
    return int(value)
