"""Read a checkpoint file's bytes into Python objects, safely, and say in one line why not.

Three formats: a ``torch.save`` archive (zip or legacy), read with ``weights_only=True``
unless the caller trusts the file; a ``.safetensors`` file, whose JSON header is checked
before the tensors are touched; and — only with ``trust_pickle=True`` — a pickled whole
module, whose classes are imported from the user's code (the current directory and the
directories in ``path``). A class that cannot be imported is named plainly ("the class
model.RNNModel is not importable; run from its directory or pass --code-path DIR").

Safe loading admits a few inert classes that training scripts and frameworks put next to the
weights — ``argparse.Namespace`` (``torch.save({"args": args, ...})``), ``pathlib`` paths,
numpy scalars and arrays, Lightning's ``AttributeDict`` (read as a plain dict) — and nothing
that runs code.

:func:`check_sizes` refuses a file whose tensors *declare* more weights than the machine can
hold before anything reads them (a 1.7 KB file of stride-0 tensors can declare 34 GB).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import pickle
import re
import struct
import sys
import types
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError

__all__ = ["read_payload", "check_sizes", "user_code", "memory_limit", "PICKLE_REFUSAL"]

PICKLE_REFUSAL = (
    "{path}: refused: the file holds pickled Python objects ({what}), and unpickling them can run "
    "arbitrary code; pass trust_pickle=True (CLI: --trust-pickle) only if you trust this file, or save "
    "model.state_dict() instead"
)
"""The exact refusal text for a file that safe loading cannot open (``{path}``, ``{what}`` filled in)."""

_MAX_HEADER = 100 << 20  # a safetensors header above 100 MB is not a header


_INERT: list[Any] = [
    argparse.Namespace,
    pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
    np.dtype, np.ndarray,
    # Lightning's AttributeDict, read as the plain dict it subclasses (no Lightning import)
    *[(dict, name) for name in ("lightning.fabric.utilities.data.AttributeDict",
                                "lightning_fabric.utilities.data.AttributeDict",
                                "pytorch_lightning.utilities.parsing.AttributeDict")],
]
for _name, _attr in (("numpy._core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
                     ("numpy.core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct")):
    with contextlib.suppress(ImportError, AttributeError):
        _INERT.append((getattr(__import__(_name, fromlist=[_attr]), _attr), f"{_name}.{_attr}"))
_INERT += [(type(np.dtype(t)), f"numpy.dtypes.{type(np.dtype(t)).__name__}")
           for t in ("f8", "f4", "f2", "i8", "i4", "i2", "i1", "u1", "b1")]


class ClassNotImportable(Exception):
    """Raised while unpickling a trusted file when a class it names cannot be imported."""

    def __init__(self, module: str, name: str, reason: str) -> None:
        super().__init__(f"{module}.{name}: {reason}")
        self.module, self.name, self.reason = module, name, reason


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as err:
            raise ClassNotImportable(module, name, f"{type(err).__name__}: {err}") from err


_PICKLE = types.ModuleType("dynprobe_pickle")
_PICKLE.Unpickler = _Unpickler  # type: ignore[attr-defined]
_PICKLE.load = lambda f, **kw: _Unpickler(f, **kw).load()  # type: ignore[attr-defined]
_PICKLE.__dict__.update({k: getattr(pickle, k) for k in ("UnpicklingError", "HIGHEST_PROTOCOL")})


@contextlib.contextmanager
def user_code(path: Sequence[str | Path] = ()) -> Iterator[None]:
    """Make the user's code importable: ``path`` and the current directory go first on
    ``sys.path`` for the duration (what ``python -c`` in that directory would see)."""
    dirs = [str(Path(p).resolve()) for p in path]
    for d, given in zip(dirs, path):
        if not Path(d).is_dir():
            raise CheckpointError(f"--code-path {given}: no such directory")
    added = [d for d in [*dirs, os.getcwd()] if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(d)


def _not_importable(path: Path, err: ClassNotImportable) -> CheckpointError:
    cls = f"{err.module}.{err.name}"
    if err.module == "__main__":
        return CheckpointError(
            f"{path}: the class {cls} is not importable: it was defined in the script that saved the file "
            f"(pickled as __main__.{err.name}); move {err.name} into a module and re-save, or save "
            "model.state_dict() and pass --factory module:function")
    return CheckpointError(
        f"{path}: the class {cls} is not importable ({err.reason}); run from its directory or pass --code-path DIR "
        "(Python: path=[DIR])")


def _read_error(path: Path, data: bytes, err: Exception) -> CheckpointError:
    """One line for a file torch could not open: empty, truncated, pickled objects, or else."""
    text = str(err)
    if not data:
        return CheckpointError(f"{path}: empty file (0 bytes); was the checkpoint written completely?")
    if "Weights only load failed" in text and "Unsupported operand" not in text:  # operand: not a pickle at all
        found = re.search(r"GLOBAL ([\w.]+)", text)
        what = f"it needs {found.group(1)}" if found else "objects safe loading cannot vet"
        return CheckpointError(PICKLE_REFUSAL.format(path=path, what=what))
    if data[:2] == b"PK" and not zipfile.is_zipfile(io.BytesIO(data)):
        return CheckpointError(
            f"{path}: truncated or corrupt torch archive ({len(data)} bytes, no end-of-archive record); "
            "re-copy or re-save the checkpoint"
        )
    first = text.splitlines()[0] if text else type(err).__name__
    what = ("damaged torch archive" if data[:2] == b"PK"
            else "not a torch archive, legacy torch file or safetensors file")
    return CheckpointError(f"{path}: unreadable checkpoint, {what} ({type(err).__name__}: {first})")


def is_safetensors(path: Path, head: bytes) -> bool:
    """By suffix, or by content: an 8-byte little-endian length and then a JSON object."""
    if path.suffix == ".safetensors":
        return True
    return len(head) >= 9 and head[8:9] == b"{" and head[:2] != b"PK"


def _read_safetensors(path: Path, data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if len(data) < 8:
        raise CheckpointError(f"{path}: truncated safetensors file ({len(data)} bytes, shorter than its header)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise CheckpointError(f"{path}: truncated safetensors file (header says {n} bytes, file has {len(data) - 8})")
    if n > _MAX_HEADER:
        raise CheckpointError(f"{path}: unreadable safetensors file (a {n}-byte header; real ones are kilobytes)")
    try:
        header = json.loads(data[8 : 8 + n])
    except RecursionError as err:
        raise CheckpointError(f"{path}: unreadable safetensors file (its JSON header is nested too deeply to be "
                              "a header)") from err
    except ValueError as err:
        raise CheckpointError(f"{path}: unreadable safetensors file (header is not JSON: {err})") from err
    if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
        raise CheckpointError(f"{path}: unreadable safetensors file (header is not a mapping of tensor entries)")
    meta = header.get("__metadata__") or {}
    shapes = {k: v.get("shape") for k, v in header.items() if k != "__metadata__"}
    if not all(isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s) for s in shapes.values()):
        raise CheckpointError(f"{path}: unreadable safetensors file (a tensor entry without a valid shape)")
    try:
        state = st_load(data)
    except (SafetensorError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        kind = "truncated" if "incomplete" in text.lower() or "too small" in text.lower() else "unreadable"
        raise CheckpointError(f"{path}: {kind} safetensors file ({text})") from err
    return state, {str(k): str(v) for k, v in meta.items()}


def read_payload(path: Path, data: bytes, *, trust_pickle: bool = False,
                 code_path: Sequence[str | Path] = ()) -> tuple[Any, dict[str, str], str]:
    """The object a file holds, its safetensors metadata (``{}`` for torch files) and its
    format (``torch`` or ``safetensors``). Raises one-line :class:`CheckpointError`."""
    if is_safetensors(path, data[:16]):
        obj, meta = _read_safetensors(path, data)
        return obj, meta, "safetensors"
    try:
        if trust_pickle:
            with user_code(code_path):
                obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False, pickle_module=_PICKLE)
        else:
            with torch.serialization.safe_globals(_INERT):
                obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except ClassNotImportable as err:
        raise _not_importable(path, err) from err
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes one line naming the file
        raise _read_error(path, data, err) from err
    return obj, {}, "torch"


_CAP = 16 << 30  # 2 billion float64 weights: far beyond any recurrent network one analyses whole


def memory_limit() -> tuple[int, str]:
    """How many bytes of weights a checkpoint may declare, and where the limit comes from:
    ``DYNPROBE_MAX_WEIGHT_BYTES`` when set, else half the memory the machine has available,
    at most 16 GiB."""
    env = os.environ.get("DYNPROBE_MAX_WEIGHT_BYTES")
    if env:
        try:
            return int(float(env)), "DYNPROBE_MAX_WEIGHT_BYTES"
        except ValueError:
            raise CheckpointError(f"DYNPROBE_MAX_WEIGHT_BYTES={env!r}: expected a number of bytes") from None
    available = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    if available is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if available is None or available // 2 > _CAP:
        return _CAP, "the 16 GiB default"
    return available // 2, f"half of the {_gib(available)} this machine has available"


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.1f} MiB"


def check_sizes(where: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse tensors that declare more weights than the machine can hold, before they are
    read: counted at 8 bytes each (the float64 System an analysis builds from them)."""
    declared = sum(int(t.numel()) for t in tensors.values())
    need = 8 * declared
    limit, why = memory_limit()
    if need <= limit:
        return
    stored = sum(t.untyped_storage().nbytes() for t in tensors.values())
    shared = " (stride-0 or overlapping views: crafted or broken)" if stored * 4 < declared else ""
    big = max(tensors, key=lambda k: tensors[k].numel())
    raise CheckpointError(
        f"{where}: declares {declared:,} weights ({_gib(need)} as float64; the largest {big!r} is "
        f"{list(tensors[big].shape)}) in {_gib(stored)} of stored data{shared}, more than the limit of {_gib(limit)} "
        f"({why}); refused before reading them; set DYNPROBE_MAX_WEIGHT_BYTES if this machine can hold them")
