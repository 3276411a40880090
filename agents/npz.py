"""``.npz`` files of plain numeric arrays, read without trusting their headers.

``np.load(allow_pickle=False)`` already refuses object arrays; what it does not do is
refuse a header that claims a huge shape (numpy allocates the claimed size before it
finds the data missing). Each member's header is read first and checked against the
bytes the member really holds.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np


class NpzError(ValueError):
    """A file that is not an ``.npz`` of plain numeric arrays."""


MAX_BYTES = 1 << 30


def read_npz(path: str | Path, *, max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """The arrays of ``path`` (numeric or bool only), or ``NpzError`` saying why not."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            if sum(i.file_size for i in infos) > max_bytes:
                raise NpzError(f"{path}: arrays of over {max_bytes} bytes")
            for info in infos:
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise NpzError(f"{path}: unsupported .npy version {version}")
                if dtype.kind not in "biuf":
                    raise NpzError(
                        f"{path}: array {info.filename[:-4]} has dtype {dtype} "
                        "(only plain numeric arrays load; pickled objects never)"
                    )
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise NpzError(f"{path}: array {info.filename[:-4]} claims more than it holds")
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except NpzError:
        raise
    except Exception as exc:  # zipfile, numpy header, OS and memory errors of a bad file
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise NpzError(f"{path} is not a readable .npz of plain arrays: {message}") from None
