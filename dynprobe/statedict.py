"""From tensors to a module: find the state_dict in a checkpoint, rebuild ``nn.RNN/GRU/LSTM``
(or a cell) from its key names and shapes, or load it strictly into a factory's module under
whatever prefix it was saved with. Errors are one line (:class:`~dynprobe.errors.CheckpointError`);
:mod:`dynprobe.checkpoints` adds the file name.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError

__all__ = ["import_factory", "find_state_dict", "find_module", "infer_rnn", "load_strict", "fit_prefix", "RNN_KEY"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "network", "rnn")
RNN_KEY = re.compile(r"(weight|bias)_(ih|hh|hr)(_l\d+)?(_reverse)?$")
"""Parameter names of ``nn.RNN/GRU/LSTM`` and their cells."""


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
        if found is not None and any(RNN_KEY.search(k) for k in found):
            return found
    return None


def find_module(obj: Any) -> nn.Module | None:
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
    rnn_keys = [k for k in state if RNN_KEY.search(k)]
    prefixes = {k[: RNN_KEY.search(k).start()] for k in rnn_keys if "weight_hh" in k}  # type: ignore[union-attr]
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
    load_strict(module, sd, what=cls.__name__)
    return module


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line message: missing, unexpected, or the
    first mismatched shapes (torch's own message spans many lines)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k!r}: checkpoint {list(state[k].shape)}, {what} {list(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if shapes:
        more = f" (and {len(shapes) - 2} more)" if len(shapes) > 2 else ""
        raise CheckpointError(
            f"shape mismatch for {'; '.join(shapes[:2])}{more}; the checkpoint holds a different architecture")
    if missing or unexpected:
        raise CheckpointError(
            f"state_dict does not fit {what}: missing keys {missing[:4]}, unexpected keys {unexpected[:4]}")
    module.load_state_dict(dict(state), strict=True)


def fit_prefix(module: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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
