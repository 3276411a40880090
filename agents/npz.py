"""``.npz`` files of plain numeric arrays, read without trusting their headers.

``np.load(allow_pickle=False)`` already refuses object arrays; what it does not do is
refuse a header that claims a huge shape (numpy allocates the claimed size before it
finds the data missing). Each member's header is read first and checked against the
bytes the member really holds; the members together may hold at most ``max_bytes``
(counted before anything is inflated), and a member that is not an ``.npy`` array
(which ``np.load`` would hand back as raw bytes, unchecked) is refused.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


class NpzError(ValueError):
    """A file that is not an ``.npz`` of plain numeric arrays."""


MAX_BYTES = 1 << 30
MAX_MEMBERS = 10_000

HeaderCheck = Callable[[str, tuple[int, ...], np.dtype], None]
"""``check(name, shape, dtype)``, called with each member's header before anything is
inflated; raises ``NpzError`` to refuse the file."""


def size_text(n: int) -> str:
    """``n`` bytes as people say it: ``4 GiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} bytes"


def read_npz(
    path: str | Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_members: int = MAX_MEMBERS,
    check: HeaderCheck | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of ``path`` (numeric or bool only), or ``NpzError`` saying why not."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if not fh.read(4).startswith(b"PK"):  # np.load would take it for an .npy or a pickle
                raise NpzError(
                    f"{path} is not a readable .npz of plain arrays: it is not an npz archive "
                    "(a zip of .npy arrays)"
                )
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > max_members:
                raise NpzError(f"{path}: {len(infos)} members, over the limit of {max_members}")
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise NpzError(
                    f"{path}: its arrays would take {size_text(total)}, over the limit of "
                    f"{size_text(max_bytes)}"
                )
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise NpzError(f"{path}: member {info.filename!r} is not an .npy array")
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise NpzError(f"{path}: unsupported .npy version {version}")
                name = info.filename[:-4]
                if dtype.kind not in "biuf":
                    raise NpzError(
                        f"{path}: array {name} has dtype {dtype}; arrays must be numbers "
                        "(only plain numeric arrays load; pickled objects never)"
                    )
                if any(d < 0 for d in shape) or math.prod(shape) * dtype.itemsize > info.file_size:
                    raise NpzError(f"{path}: array {name} claims more than it holds")
                if check is not None:
                    check(name, tuple(shape), dtype)
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except NpzError:
        raise
    except Exception as exc:  # zipfile, numpy header, OS and memory errors of a bad file
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise NpzError(
            f"{path} is not a readable .npz of plain arrays (corrupted or truncated): {message}"
        ) from None
