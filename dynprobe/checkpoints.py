"""Safe checkpoint loading: ``torch.load(weights_only=True)`` always.

A plain ``state_dict`` of ``nn.RNN/GRU/LSTM`` (or a cell) is turned back into the module by
reading the architecture off key names and shapes; anything else needs a factory
``package.module:function`` that builds the module, into which the state_dict is loaded
strictly. A pickled whole module is refused unless ``trust_pickle=True``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError

__all__ = ["load_checkpoint", "infer_rnn", "find_state_dict", "import_factory"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


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


def find_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensors of a checkpoint: the dict itself, or one nested under a usual key."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in _NESTED_KEYS:
            if key in obj:
                found = find_state_dict(obj[key])
                if found is not None:
                    return found
    return None


def infer_rnn(state: Mapping[str, torch.Tensor], *, nonlinearity: str | None = None) -> nn.Module:
    """Rebuild ``nn.RNN/GRU/LSTM`` (or a cell) from its state_dict keys and shapes.

    Gate count from ``weight_hh`` rows (1 RNN, 3 GRU, 4 LSTM), layers from the ``_l{k}``
    suffixes, projection from ``weight_hr``. A plain RNN's nonlinearity is not recorded in the
    state_dict: pass ``nonlinearity="tanh"`` or ``"relu"``.
    """
    prefixes = {re.sub(r"weight_hh(_l\d+)?$", "", k) for k in state if re.search(r"weight_hh(_l\d+)?$", k)}
    if len(prefixes) != 1:
        raise CheckpointError(
            "state_dict does not look like one nn.RNN/GRU/LSTM (found weight_hh under prefixes "
            f"{sorted(prefixes) or 'none'}); pass a factory package.module:function that builds the module"
        )
    (prefix,) = prefixes
    sd = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    cell = "weight_hh" in sd
    layers = 1 if cell else 1 + max(int(m.group(1)) for k in sd if (m := re.search(r"_l(\d+)$", k)))
    hh = sd["weight_hh" if cell else "weight_hh_l0"]
    ih = sd["weight_ih" if cell else "weight_ih_l0"]
    proj = 0 if cell or "weight_hr_l0" not in sd else sd["weight_hr_l0"].shape[0]
    hidden = sd["weight_hr_l0"].shape[1] if proj else hh.shape[1]
    gates = hh.shape[0] // hidden
    bias = any(k.startswith("bias_") for k in sd)
    if gates not in (1, 3, 4) or hh.shape[0] % hidden:
        raise CheckpointError(f"state_dict: weight_hh of shape {list(hh.shape)} fits no RNN/GRU/LSTM gate count")
    kw: dict[str, Any] = {"bias": bias}
    if gates == 1:
        if nonlinearity is None:
            raise CheckpointError(
                "state_dict of a plain RNN does not record its nonlinearity; pass nonlinearity='tanh' or 'relu' "
                "(CLI: --param nonlinearity=tanh)"
            )
        kw["nonlinearity"] = nonlinearity
    cls = {(1, True): nn.RNNCell, (3, True): nn.GRUCell, (4, True): nn.LSTMCell,
           (1, False): nn.RNN, (3, False): nn.GRU, (4, False): nn.LSTM}[(gates, cell)]
    if not cell:
        kw["num_layers"] = layers
        if proj:
            kw["proj_size"] = proj
    module = cls(ih.shape[1], hidden, **kw).to(hh.dtype)
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"state_dict: shapes do not fit {cls.__name__}: {str(err).splitlines()[0]}") from err
    return module


def load_checkpoint(
    path: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
) -> nn.Module:
    """Load a module from a checkpoint file without running pickled code.

    Returns the module with the weights loaded. Raises :class:`CheckpointError` with the file
    name and the problem in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # noqa: BLE001 - every failure becomes one line naming the file
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Weights only load failed" in str(err):
            raise CheckpointError(
                f"{path}: holds pickled objects (e.g. a whole module), refused by safe loading; save a state_dict, "
                "or pass trust_pickle=True (--trust-pickle) if you trust this file"
            ) from err
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(err).__name__}: {text})") from err
    if isinstance(obj, nn.Module):
        return obj
    state = find_state_dict(obj)
    if state is None:
        raise CheckpointError(f"{path}: no state_dict of tensors found (top-level type {type(obj).__name__})")
    if factory is not None:
        build = import_factory(factory) if isinstance(factory, str) else factory
        module = build()
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"{path}: state_dict does not fit the factory's module: {str(err).splitlines()[0]}") from err
        return module
    try:
        return infer_rnn(state, nonlinearity=nonlinearity)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
