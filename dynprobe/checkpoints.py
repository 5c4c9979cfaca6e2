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

import importlib
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

__all__ = ["Checkpoint", "read_checkpoint", "load_checkpoint", "infer_rnn", "find_state_dict", "import_factory",
           "PICKLE_REFUSAL"]

PICKLE_REFUSAL = (
    "{path}: refused: the file holds pickled Python objects ({what}), and unpickling them can run "
    "arbitrary code; pass trust_pickle=True (CLI: --trust-pickle) only if you trust this file, or save "
    "model.state_dict() instead"
)
"""The exact refusal text for a file that safe loading cannot open (``{path}``, ``{what}`` filled in)."""

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "network", "rnn")
_CONFIG_KEYS = ("config", "hparams", "hyper_parameters", "args", "meta", "metadata")
_RNN_KEY = re.compile(r"(weight|bias)_(ih|hh|hr)(_l\d+)?(_reverse)?$")
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


def import_factory(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function``; a one-line error says what is missing."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CheckpointError(f"factory {spec!r}: expected the form package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CheckpointError(f"factory {spec!r}: cannot import {module_name!r} ({err}); is it installed?") from err
    try:
        fn = getattr(module, attr)
    except AttributeError as err:
        raise CheckpointError(f"factory {spec!r}: module {module_name!r} has no attribute {attr!r}") from err
    if not callable(fn):
        raise CheckpointError(f"factory {spec!r}: {attr!r} is not callable")
    return fn


def _is_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def find_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensors of a checkpoint: the dict itself, or one nested under a usual key
    (``state_dict``, ``model``, ...), else under any key whose dict holds RNN weights."""
    if _is_state(obj):
        return dict(obj)
    if not isinstance(obj, Mapping):
        return None
    for key in _NESTED_KEYS:
        if key in obj and (found := find_state_dict(obj[key])) is not None:
            return found
    for value in obj.values():
        found = find_state_dict(value) if isinstance(value, Mapping) else None
        if found is not None and any(_RNN_KEY.search(k) for k in found):
            return found
    return None


def _find_module(obj: Any) -> nn.Module | None:
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, Mapping):
        for value in obj.values():
            if isinstance(value, nn.Module):
                return value
    return None


def infer_rnn(state: Mapping[str, torch.Tensor], *, nonlinearity: str | None = None) -> nn.Module:
    """Rebuild ``nn.RNN/GRU/LSTM`` (or a cell) from its state_dict keys and shapes.

    Only keys that name RNN weights (``weight_ih_l0``, ``rnn.bias_hh``, ...) are read, so a
    readout or an optimizer next to them does not matter. Gate count from ``weight_hh`` rows
    (1 RNN, 3 GRU, 4 LSTM), layers from the ``_l{k}`` suffixes, projection from ``weight_hr``,
    direction from ``_reverse``. A plain RNN's nonlinearity is not recorded in a state_dict:
    pass ``nonlinearity="tanh"`` or ``"relu"`` unless the checkpoint records it.
    """
    rnn_keys = [k for k in state if _RNN_KEY.search(k)]
    prefixes = {k[: _RNN_KEY.search(k).start()] for k in rnn_keys if "weight_hh" in k}  # type: ignore[union-attr]
    if len(prefixes) != 1:
        raise CheckpointError(
            "state_dict does not look like one nn.RNN/GRU/LSTM (found weight_hh under prefixes "
            f"{sorted(prefixes) or 'none'}); pass a factory package.module:function that builds the module"
        )
    (prefix,) = prefixes
    sd = {k[len(prefix):]: state[k] for k in rnn_keys if k.startswith(prefix) and "." not in k[len(prefix):]}
    cell = "weight_hh" in sd
    layers = 1 if cell else 1 + max(int(m.group(1)) for k in sd if (m := re.search(r"_l(\d+)", k)))
    hh = sd["weight_hh" if cell else "weight_hh_l0"]
    ih = sd.get("weight_ih" if cell else "weight_ih_l0")
    if ih is None or hh.ndim != 2 or ih.ndim != 2:
        raise CheckpointError(f"state_dict under prefix {prefix!r}: weight_ih/weight_hh missing or not matrices")
    proj = 0 if cell or "weight_hr_l0" not in sd else sd["weight_hr_l0"].shape[0]
    hidden = sd["weight_hr_l0"].shape[1] if proj else hh.shape[1]
    gates = hh.shape[0] // hidden if hidden else 0
    if gates not in (1, 3, 4) or hh.shape[0] % hidden:
        raise CheckpointError(f"state_dict: weight_hh of shape {list(hh.shape)} fits no RNN/GRU/LSTM gate count")
    kw: dict[str, Any] = {"bias": any(k.startswith("bias_") for k in sd)}
    if gates == 1:
        if nonlinearity not in ("tanh", "relu"):
            raise CheckpointError(
                "state_dict of a plain RNN does not record its nonlinearity; pass nonlinearity='tanh' or 'relu' "
                f"(CLI: --nonlinearity tanh){'' if nonlinearity is None else f', not {nonlinearity!r}'}"
            )
        kw["nonlinearity"] = nonlinearity
    cls = {(1, True): nn.RNNCell, (3, True): nn.GRUCell, (4, True): nn.LSTMCell,
           (1, False): nn.RNN, (3, False): nn.GRU, (4, False): nn.LSTM}[(gates, cell)]
    if not cell:
        kw.update(num_layers=layers, bidirectional=any(k.endswith("_reverse") for k in sd))
        if proj:
            kw["proj_size"] = proj
    module = cls(ih.shape[1], hidden, **kw).to(hh.dtype)
    _load_strict(module, sd, what=cls.__name__)
    return module


def _load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line message: missing, unexpected, or the
    first mismatched shapes (torch's own message spans many lines)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k!r}: checkpoint {list(state[k].shape)}, {what} {list(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if shapes:
        more = f" (and {len(shapes) - 2} more)" if len(shapes) > 2 else ""
        raise CheckpointError(f"shape mismatch for {'; '.join(shapes[:2])}{more}; the checkpoint holds a different architecture")
    if missing or unexpected:
        raise CheckpointError(f"state_dict does not fit {what}: missing keys {missing[:4]}, unexpected keys {unexpected[:4]}")
    module.load_state_dict(dict(state), strict=True)


def _fit_prefix(module: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that belong to ``module``, saved under whatever prefix (``""``,
    ``rnn.``, ``module.``); all of ``state`` when no prefix holds every key of the module (then
    the strict load names what is missing)."""
    own = list(module.state_dict())
    if not own:
        return dict(state)
    first = own[0]
    for prefix in sorted({k[: len(k) - len(first)] for k in state if k.endswith(first)}, key=len):
        if all(prefix + k in state for k in own):
            return {k: state[prefix + k] for k in own}
    return dict(state)


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
    what = "damaged torch archive" if data[:2] == b"PK" else "not a torch archive, legacy torch file or safetensors file"
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
    module = _find_module(obj)
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
                _load_strict(module, _fit_prefix(module, state), what=f"the factory's {type(module).__name__}")
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
