"""Safe checkpoint loading: ``torch.load(weights_only=True)`` always, safetensors too.

A plain ``state_dict`` of ``nn.RNN/GRU/LSTM`` (or a cell) — at the top of the file or nested
under a key such as ``model`` / ``state_dict``, with a prefix such as ``rnn.`` or ``module.`` —
is turned back into the module by reading the architecture off key names and shapes.
Anything else needs a factory ``package.module:function`` that builds the module, into which
the state_dict is loaded strictly. A pickled whole module is refused unless the caller passes
``trust_pickle=True`` (CLI ``--trust-pickle``): unpickling runs arbitrary code.

Every failure is one :class:`~dynprobe.errors.CheckpointError` line naming the file and the
problem: unreadable, truncated, pickled objects, shapes that do not fit, NaN/inf weights.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .statedict import find_module, find_state_dict, fit_prefix, import_factory, infer_rnn, load_strict

__all__ = ["Checkpoint", "read_checkpoint", "load_checkpoint", "infer_rnn", "find_state_dict", "import_factory",
           "PICKLE_REFUSAL"]

PICKLE_REFUSAL = (
    "{path}: refused: the file holds pickled Python objects ({what}), and unpickling them can run "
    "arbitrary code; pass trust_pickle=True (CLI: --trust-pickle) only if you trust this file, or save "
    "model.state_dict() instead"
)
"""The exact refusal text for a file that safe loading cannot open (``{path}``, ``{what}`` filled in)."""

_CONFIG_KEYS = ("config", "hparams", "hyper_parameters", "args", "meta", "metadata")
_EPOCH_NAME = re.compile(r"(?:^|[^a-z])(?:epoch|ep)[_\-=]?(\d+)", re.IGNORECASE)
_STEP_NAME = re.compile(r"(?:^|[^a-z])(?:step|iter|it|global_step)[_\-=]?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the module with its weights, and what the file says about itself.

    ``epoch`` / ``step`` come from the file (keys ``epoch``, ``step``/``global_step``, or
    safetensors metadata) or else from its name (``epoch_012.pt``, ``step-3000.pt``);
    ``None`` when neither says. ``format`` is ``torch``, ``safetensors`` or ``pickle``.
    """

    module: nn.Module
    path: str
    format: str
    epoch: int | None = None
    step: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _check_finite(path: str, state: Mapping[str, torch.Tensor], allow: bool) -> None:
    if allow:
        return
    nan = inf = 0
    where = []
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            n_nan, n_bad = int(torch.isnan(value).sum()), int((~torch.isfinite(value)).sum())
            if n_bad:
                nan, inf = nan + n_nan, inf + n_bad - n_nan
                where.append(repr(key))
    if where:
        more = f" and {len(where) - 3} more" if len(where) > 3 else ""
        raise CheckpointError(
            f"{path}: weights hold {nan} NaN and {inf} inf values (in {', '.join(where[:3])}{more}; did training "
            "diverge?); refused: pass allow_nonfinite=True (CLI: --allow-nonfinite) to analyse them anyway"
        )


def _is_safetensors(path: Path, head: bytes) -> bool:
    if path.suffix == ".safetensors":
        return True
    return len(head) >= 9 and head[8:9] == b"{" and head[:2] != b"PK"


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


def _read_safetensors(path: Path, data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if len(data) < 8:
        raise CheckpointError(f"{path}: truncated safetensors file ({len(data)} bytes, shorter than its header)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise CheckpointError(f"{path}: truncated safetensors file (header says {n} bytes, file has {len(data) - 8})")
    try:
        header = json.loads(data[8 : 8 + n])
        state = st_load(data)
    except (SafetensorError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        kind = "truncated" if "incomplete" in text.lower() or "too small" in text.lower() else "unreadable"
        raise CheckpointError(f"{path}: {kind} safetensors file ({text})") from err
    meta = header.get("__metadata__") or {}
    return state, {str(k): str(v) for k, v in meta.items()}


def _recorded(obj: Any, names: tuple[str, ...]) -> Any:
    """A value recorded at the top of a checkpoint dict or in its config / hparams."""
    if not isinstance(obj, Mapping):
        return None
    for name in names:
        if name in obj and isinstance(obj[name], (str, int)) and not isinstance(obj[name], bool):
            return obj[name]
    for key in _CONFIG_KEYS:
        if isinstance(obj.get(key), Mapping) and (found := _recorded(obj[key], names)) is not None:
            return found
    return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def read_checkpoint(
    path: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
    data: bytes | None = None,
) -> Checkpoint:
    """Load a checkpoint file without running pickled code, with its epoch / step.

    Parameters
    ----------
    path
        A ``torch.save`` file (zip or legacy format) or a ``.safetensors`` file.
    factory
        ``package.module:function`` (or a callable) building the module when the state_dict
        is not a plain ``nn.RNN/GRU/LSTM``; the weights are loaded strictly, under any prefix.
    trust_pickle
        Allow a file holding pickled objects (a whole module). Unpickling runs the file's code.
    nonlinearity
        ``tanh`` / ``relu`` for a plain RNN state_dict that does not record it.
    allow_nonfinite
        Accept NaN / inf weights (refused by default).
    data
        The file's bytes when already read (the batch worker hashes and loads one read).

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        One line naming the file and the problem.
    """
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"{path}: unreadable ({err.strerror or err})") from err
    meta: dict[str, Any] = {}
    if _is_safetensors(path, data[:16]):
        obj: Any
        obj, meta = _read_safetensors(path, data)
        fmt = "safetensors"
    else:
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=not trust_pickle)
        except Exception as err:  # noqa: BLE001 - every failure becomes one line naming the file
            raise _read_error(path, data, err) from err
        fmt = "torch"
    nonlinearity = _first(nonlinearity, _recorded(meta, ("nonlinearity",)), _recorded(obj, ("nonlinearity",)))
    module = find_module(obj)
    if module is not None:
        fmt = "pickle"
        state = module.state_dict()
    else:
        state = find_state_dict(obj)
        if state is None:
            raise CheckpointError(f"{path}: no state_dict of tensors found (top-level type {type(obj).__name__})")
    _check_finite(str(path), state, allow_nonfinite)
    if module is None:
        try:
            if factory is not None:
                module = (import_factory(factory) if isinstance(factory, str) else factory)()
                if not isinstance(module, nn.Module):
                    raise CheckpointError(f"factory {factory!r} returned {type(module).__name__}, not an nn.Module")
                load_strict(module, fit_prefix(module, state), what=f"the factory's {type(module).__name__}")
            else:
                module = infer_rnn(state, nonlinearity=nonlinearity)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from err
    epoch = _as_int(_first(_recorded(meta, ("epoch",)), _recorded(obj, ("epoch",))))
    step = _as_int(_first(_recorded(meta, ("step", "global_step")), _recorded(obj, ("step", "global_step"))))
    if epoch is None and (m := _EPOCH_NAME.search(path.stem)):
        epoch = int(m.group(1))
    if step is None and (m := _STEP_NAME.search(path.stem)):
        step = int(m.group(1))
    return Checkpoint(module=module, path=str(path), format=fmt, epoch=epoch, step=step,
                      info={"nonlinearity": nonlinearity} if nonlinearity else {})


def load_checkpoint(
    path: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
) -> nn.Module:
    """Load a module from a checkpoint file without running pickled code (see
    :func:`read_checkpoint`). Raises :class:`CheckpointError` with the file name and the
    problem in one line."""
    return read_checkpoint(path, factory=factory, trust_pickle=trust_pickle, nonlinearity=nonlinearity,
                           allow_nonfinite=allow_nonfinite).module
