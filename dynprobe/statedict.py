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

__all__ = ["import_factory", "call_factory", "find_state_dict", "find_module", "infer_rnn", "load_strict", "fit_prefix",
           "check_dtype", "neighbours", "RNN_KEY"]

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


def call_factory(spec: str | Callable[..., Any], kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the module a factory makes, with ``kwargs``; one line when the call fails (a class
    such as ``torch.nn:GRU`` needs its arguments) or returns something that is not a module."""
    fn = import_factory(spec) if isinstance(spec, str) else spec
    name = spec if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
    try:
        module = fn(**dict(kwargs or {}))
    except TypeError as err:
        raise CheckpointError(
            f"factory {name!r} could not be called with {_kw_text(kwargs)} ({err}); pass its arguments with "
            "--model-param KEY=VALUE (Python: model_kwargs={...}) or name a function that needs none") from err
    except Exception as err:  # noqa: BLE001 - the user's code failed: one line, chained
        raise CheckpointError(f"factory {name!r} raised {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                              ) from err
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"factory {name!r} returned {type(module).__name__}, not an nn.Module")
    return module


def _kw_text(kwargs: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in (kwargs or {}).items()) or "no arguments"


def check_dtype(key: str, value: torch.Tensor) -> None:
    """Weights must be real floating point: integer weights (a quantized checkpoint) or
    complex ones are refused in one line naming the key."""
    if value.is_complex():
        raise CheckpointError(f"{key!r} holds complex values ({str(value.dtype).removeprefix('torch.')}); dynprobe "
                              "measures real dynamical systems: save real floating-point weights")
    if not value.is_floating_point():
        raise CheckpointError(
            f"{key!r} holds {str(value.dtype).removeprefix('torch.')} values, not floating-point weights (a quantized "
            "checkpoint?); dequantize and save float32/float64 weights")


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


def rnn_prefix(state: Mapping[str, torch.Tensor], core: str | None = None) -> str:
    """The prefix under which the ``nn.RNN/GRU/LSTM`` (or cell) of a state_dict was saved: the
    only one, or the one named ``core`` (``"encoder.rnn"`` for keys ``encoder.rnn.weight_hh_l0``)."""
    prefixes = {k[: m.start()] for k in state if (m := RNN_KEY.search(k)) and "weight_hh" in k}
    if core is not None:
        wanted = f"{core.rstrip('.')}." if core else ""
        if wanted not in prefixes:
            raise CheckpointError(f"state_dict has no recurrent module {core!r}; it has "
                                  f"{', '.join(repr(p.rstrip('.')) for p in sorted(prefixes)) or 'none'}")
        return wanted
    if len(prefixes) != 1:
        several = len(prefixes) > 1
        raise CheckpointError(
            f"state_dict does not look like one nn.RNN/GRU/LSTM (found weight_hh under prefixes {sorted(prefixes) or 'none'})"
            + ("; name one with --module (Python: module=), e.g. --module " + sorted(prefixes)[0].rstrip(".")
               if several else "")
            + "; or pass a factory package.module:function that builds the module")
    return prefixes.pop()


_ENCODER_NAME = re.compile(r"emb|encoder|wte|tok|lookup", re.IGNORECASE)
_READOUT_NAME = re.compile(r"decoder|readout|head|fc|out|linear|proj|classifier", re.IGNORECASE)


def _pick(found: list[str], pattern: re.Pattern[str]) -> str | None:
    if len(found) > 1:
        found = [p for p in found if pattern.search(p)]
    return found[0] if len(found) == 1 else None


def neighbours(state: Mapping[str, torch.Tensor], core: nn.Module,
               name: str | None = None) -> tuple[nn.Module | None, nn.Module | None]:
    """The input encoder and readout saved beside the recurrent core of a state_dict, rebuilt
    when the keys leave no doubt: an ``nn.Embedding`` (a ``P.weight`` of shape [V, M] with no
    ``P.bias``, M the core's input size) and an ``nn.Linear`` head (``P.weight`` [K, H] with
    ``P.bias`` [K], H the core's output size). Several candidates: the one whose name says
    so (``encoder``, ``embedding``, ``decoder``, ``head``, ...); still several, or none: ``None``."""
    prefix = rnn_prefix(state, name)
    m_in = int(core.input_size)  # type: ignore[arg-type]
    h_out = int(getattr(core, "proj_size", 0) or core.hidden_size)  # type: ignore[arg-type]
    mats = {k[: -len(".weight")]: v for k, v in state.items()
            if k.endswith(".weight") and not k.startswith(prefix) and v.ndim == 2 and v.is_floating_point()}
    enc = _pick([p for p, w in mats.items() if w.shape[1] == m_in and f"{p}.bias" not in state], _ENCODER_NAME)
    heads = []
    for p, w in mats.items():
        bias = state.get(f"{p}.bias")
        if p != enc and w.shape[1] == h_out and (bias is None or list(bias.shape) == [w.shape[0]]):
            heads.append(p)
    head = _pick(heads, _READOUT_NAME)
    encoder = nn.Embedding.from_pretrained(mats[enc].clone(), freeze=True) if enc is not None else None
    readout = None
    if head is not None:
        w, b = mats[head], state.get(f"{head}.bias")
        readout = nn.Linear(w.shape[1], w.shape[0], bias=b is not None).to(w.dtype)
        load_strict(readout, {"weight": w, **({"bias": b} if b is not None else {})}, what=f"the readout {head!r}")
    return encoder, readout


def infer_rnn(state: Mapping[str, torch.Tensor], *, nonlinearity: str | None = None,
              name: str | None = None) -> nn.Module:
    """Rebuild ``nn.RNN/GRU/LSTM`` (or a cell) from its state_dict keys and shapes.

    Only keys that name RNN weights (``weight_ih_l0``, ``rnn.bias_hh``, ...) are read, so a
    readout or an optimizer next to them does not matter. Gate count from ``weight_hh`` rows
    (1 RNN, 3 GRU, 4 LSTM), layers from the ``_l{k}`` suffixes, projection from ``weight_hr``,
    direction from ``_reverse``. A plain RNN's nonlinearity is not recorded in a state_dict:
    pass ``nonlinearity="tanh"`` or ``"relu"`` unless the checkpoint records it.
    """
    prefix = rnn_prefix(state, name)
    rnn_keys = [k for k in state if RNN_KEY.search(k)]
    sd = {k[len(prefix):]: state[k] for k in rnn_keys if k.startswith(prefix) and "." not in k[len(prefix):]}
    cell = "weight_hh" in sd
    layers = 1 if cell else 1 + max(int(m.group(1)) for k in sd if (m := re.search(r"_l(\d+)", k)))
    hh = sd["weight_hh" if cell else "weight_hh_l0"]
    ih = sd.get("weight_ih" if cell else "weight_ih_l0")
    for key, value in sd.items():
        check_dtype(prefix + key, value)
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
    for k, v in own.items():
        if k in state and v.is_floating_point():
            check_dtype(k, state[k])
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
