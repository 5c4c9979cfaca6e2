"""Read an input file named by ``--input``: real-valued inputs, token ids, or text.

* ``.npy`` — read without pickle, through a memory map so that the declared size is checked
  before anything is allocated;
* ``.pt`` / ``.pth`` (any other suffix) — one tensor saved with ``torch.save``, read with
  ``weights_only=True``; a file holding pickled objects is refused without running them;
* a text file (``.txt``, or any file when ``vocab`` is given) — words mapped to ids by the
  vocabulary (:func:`dynprobe.tokendrive.text_ids`).

Floating values are inputs ``[time, batch, M]`` (or ``[time, M]``); integer values are token
ids ``[time, batch]`` (or ``[time]``). Strings, objects, dicts, booleans and complex numbers
are refused in one line naming the file and what it should hold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .archive import memory_limit
from .errors import DriveError
from .tokendrive import as_ids, read_vocab, text_ids

__all__ = ["read_input"]

_EXPECT = "one tensor of floats [time, batch, M] or integer token ids [time, batch]"


def _check_size(where: str, shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape, dtype=np.float64))
    limit, why = memory_limit()
    if 8 * n > limit:
        raise DriveError(f"{where}: declares {list(shape)} values ({8 * n / 2**30:.1f} GiB as float64), more than "
                         f"the limit ({why}); refused before reading them")


def _classify(where: str, value: Any) -> tuple[Literal["floats", "tokens"], Tensor]:
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if kind in "USO":
            what = "strings" if kind in "US" else "Python objects"
            raise DriveError(f"{where}: holds {what}, not numbers; save {_EXPECT} (text: a .txt file with --vocab)")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        shown = type(value).__name__
        if isinstance(value, dict):
            shown += f" with keys {', '.join(map(repr, list(value)[:4]))}"
        raise DriveError(f"{where}: holds a {shown}; save {_EXPECT} with torch.save(tensor, path)")
    if value.is_complex() or value.dtype == torch.bool:
        raise DriveError(f"{where}: holds {str(value.dtype).removeprefix('torch.')} values; save {_EXPECT}")
    _check_size(where, tuple(value.shape))
    if value.is_floating_point():
        return "floats", value
    return "tokens", as_ids(value, where=where)


def read_input(text: str, *, vocab: str | Path | None = None) -> tuple[Literal["floats", "tokens"], Tensor]:
    """``("floats", U)`` or ``("tokens", ids)`` read from the file ``text`` (see the module
    docstring); a one-line :class:`DriveError` naming the file otherwise."""
    path = Path(text)
    where = f"--input {text}"
    if not path.is_file():
        raise DriveError(
            f"drive {text!r}: not a drive name and no such file; use autonomous, constant:VALUE, feedback "
            "or a .npy/.pt file with a [time, batch, M] sequence or [time, batch] token ids (text: .txt with --vocab)"
        )
    if vocab is not None or path.suffix == ".txt":
        if vocab is None:
            raise DriveError(f"{where}: a text input needs the model's vocabulary: pass --vocab FILE "
                             "(one token per line, or JSON {token: id})")
        return "tokens", text_ids(path, read_vocab(vocab))
    if path.suffix == ".npy":
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            first = str(err).splitlines()[0]
            if "pickle" in first.lower() or "object" in first.lower():
                raise DriveError(f"{where}: holds Python objects (refused: loading them runs pickled code); "
                                 f"save {_EXPECT}") from err
            raise DriveError(f"{where}: unreadable .npy file ({first})") from err
        except OSError as err:
            raise DriveError(f"{where}: unreadable .npy file ({err})") from err
        if mapped.dtype.kind not in "USO":
            _check_size(where, tuple(mapped.shape))
        return _classify(where, np.array(mapped))
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - never show torch's advice to unpickle
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or "Weights only load failed" in str(err):
            what = f" (it needs {found.group(1)})" if found else ""
            raise DriveError(f"{where}: refused: the file holds pickled Python objects{what}, which an input file "
                             f"never needs; save {_EXPECT} with torch.save(tensor, path)") from err
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DriveError(f"{where}: unreadable ({type(err).__name__}: {first}); pass a .npy file or {_EXPECT} "
                         "saved with torch.save") from err
    return _classify(where, value)
