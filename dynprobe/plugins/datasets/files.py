"""Reading the standard files of file-based data sets, safely, from a user directory.

Nothing is downloaded: the user puts the files in a directory given as ``root=`` or by the
environment variable ``DYNPROBE_DATA`` (else ``./data``). A missing file is a one-line
:class:`~dynprobe.errors.DatasetError` saying where it looked and what to put there.

* IDX (LeCun's MNIST format), optionally gzipped — :func:`read_idx`;
* CIFAR-10 "python version" batches — pickled dicts, read by :func:`read_cifar_batch` with an
  unpickler that admits only numpy array reconstruction (no arbitrary code runs).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynprobe.errors import DatasetError

__all__ = ["data_dirs", "find_file", "read_idx", "read_cifar_batch", "ENV_VAR"]

ENV_VAR = "DYNPROBE_DATA"
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def data_dirs(root: str | os.PathLike[str] | None, subdirs: Sequence[str] = ()) -> list[Path]:
    """The directories searched: ``root`` (else ``$DYNPROBE_DATA``, else ``./data``), then its ``subdirs``."""
    base = Path(root) if root is not None else Path(os.environ.get(ENV_VAR) or "data")
    base = base.expanduser().absolute()
    return [base, *(base / s for s in subdirs)]


def find_file(dirs: Sequence[Path], names: Sequence[str]) -> Path | None:
    """The first existing ``dir/name`` over dirs × names (dirs outer), or ``None``."""
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def missing(what: str, dirs: Sequence[Path], put: str) -> DatasetError:
    """The one-line error for files that are not there."""
    where = ", ".join(str(d) for d in dirs)
    return DatasetError(
        f"{what}: not found in {where} (from root=, else ${ENV_VAR}, else ./data); put {put} there"
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its stored type and shape.

    Format: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float,
    0x0E double), the number of dimensions, the sizes as big-endian uint32, then the data.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"{path}: corrupt gzip data ({err}); download the file again") from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (magic {raw[:4].hex() or 'empty'}); expected 0000 08 03 for images")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: IDX header truncated ({len(raw)} bytes); the file is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) != header + count * dtype.itemsize:
        raise DatasetError(
            f"{path}: IDX data has {len(raw) - header} bytes but dims {list(dims)} need {count * dtype.itemsize}; "
            "the file is truncated or not what its header says"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


class _NumpyOnly(pickle.Unpickler):
    """Unpickle only what CIFAR-10 batches hold: dicts, lists, bytes, str, numbers, numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, whatever its module
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "scalar":
            return np.uint8(0).__reduce__()[0]  # numpy's scalar constructor
        return getattr(np, name)


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: ``data [n, 3072]`` uint8 (R, G, B planes of 32×32) and ``labels [n]``."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            batch = _NumpyOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({err}); use the files of cifar-10-python.tar.gz") from err
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 python batch (holds a {type(batch).__name__}, expected a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None:
        raise DatasetError(f"{path}: a CIFAR-10 batch needs 'data' [n, 3072] uint8 and 'labels'; this one does not")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    return data.astype(np.uint8, copy=False), labels
