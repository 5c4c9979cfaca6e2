"""How :func:`dynprobe.wrap` turns a module into a System: adapters first, then — for a model
that is not itself recurrent — its recurrent core (:func:`dynprobe.recurrent.split`), with the
readout after it attached and token ids bound to the encoder before it.

Also the precision rule: half precision is refused for analysis. QR (``geqrf``) and the
eigen-solvers the probes use have no float16/bfloat16 kernels on the CPU, and 3 significant
digits cannot resolve a Lyapunov exponent; weights trained in half precision are cast exactly
to float32 or float64, so wrapping with ``dtype=torch.float32`` loses nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from .errors import DriveError, ProbeParameterError, UnsupportedModuleError, did_you_mean
from .recurrent import Parts, candidates, split, verify_encoder
from .system import System
from .tokendrive import TokenDrive, TokenSequence

__all__ = ["check_dtype", "check_cell_options", "analysis_dtype", "wrap_parts", "attach_head", "bind_tokens", "leaky",
           "Head", "CELL_OPTIONS"]

_HALF = (torch.float16, torch.bfloat16)
CELL_OPTIONS = ("step", "state", "state_names", "dt", "call_kwargs")
"""Options of :func:`dynprobe.wrap` for custom cells (read by the generic adapter; ``alpha``
applies to any System)."""



def check_dtype(dtype: torch.dtype) -> None:
    """Refuse precisions the analysis cannot use, in one line saying what to pass instead."""
    name = str(dtype).removeprefix("torch.")
    if dtype in _HALF:
        raise ProbeParameterError(
            f"dtype={name} is too coarse for dynamical analysis (no QR or eigen-solvers in half precision, ~3 "
            "significant digits); the weights are cast exactly to float32 or float64: pass dtype=torch.float32 "
            "(or float64)")
    if dtype.is_complex or not dtype.is_floating_point:
        raise ProbeParameterError(f"dtype={name}: a System's state is real floating point; pass torch.float64 or "
                                  "torch.float32")


def analysis_dtype(system: System, dtype: torch.dtype | None) -> torch.dtype | None:
    """``dtype`` checked (:func:`check_dtype`); for a System left in half precision, float32 —
    an exact cast of its weights — with a warning."""
    if dtype is not None:
        check_dtype(dtype)
        return dtype
    if system.dtype in _HALF:
        warnings.warn(f"wrap: {system.name} has {str(system.dtype).removeprefix('torch.')} weights; analysing it in "
                      "float32 (an exact cast): pass dtype= to choose", RuntimeWarning, stacklevel=3)
        return torch.float32
    return None


class Head(nn.Module):
    """A model's readout after its recurrent core, applied to what the core outputs
    (``select(h)``: the top layer's ``h`` of an ``nn.LSTM``), as an ``nn.Module`` so that
    the System casts it with its own dtype and device."""

    def __init__(self, select: Callable[[Tensor], Tensor], decoder: nn.Module) -> None:
        super().__init__()
        self.select = select
        self.decoder = decoder

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.select(h))


def attach_head(system: System, parts: Parts) -> System:
    """The System with ``parts.readout`` applied to its own readout, when that fits (the
    decoder accepts the core's output); unchanged otherwise."""
    if parts.readout is None or system.readout is None:
        return system
    probe = torch.zeros(1, system.state_dim, dtype=system.dtype, device=system.device)
    head = Head(system.readout, parts.readout)
    try:
        with torch.no_grad():
            head.to(dtype=system.dtype)(probe)
    except Exception:  # noqa: BLE001 - a readout that does not take the core's output is not attached
        return system
    return system.with_readout(head)


def _adapt(module: Any, options: dict[str, Any]) -> System:
    from .registry import registry

    return registry().adapt(module, options)


def wrap_parts(module: nn.Module, *, core: str | None = None,
               options: dict[str, Any] | None = None) -> tuple[System, Parts | None]:
    """A System for ``module`` and, when its recurrent core had to be found inside it, the split.

    With ``core`` (a submodule name) the split is taken as given. Otherwise the adapters are
    tried on the whole module first — a custom cell that calls an ``nn.LSTMCell`` inside its
    own forward is a cell, not a container — and only a module that no adapter accepts is split.
    """
    options = dict(options or {})
    alpha = options.pop("alpha", None)
    check_cell_options({k: v for k, v in options.items() if k not in ("state_dim", "input_dim", "name")}, module)
    system, parts = _wrap_parts(module, core, options)
    cell = [k for k in CELL_OPTIONS if options.get(k) is not None]
    if cell and system.arch.source == "dynprobe.plugins.adapters.torch_rnn":
        raise ProbeParameterError(f"wrap: {', '.join(cell)} describe a custom cell, but {system.name} is a built-in "
                                  "module that dynprobe re-expresses exactly; leave them out")
    if alpha is not None:
        system = leaky(system, float(alpha))
    return system, parts


def check_cell_options(options: Mapping[str, Any], target: Any) -> None:
    """Refuse unknown options, and cell options for what is not a module (``alpha`` fits all)."""
    unknown = sorted(k for k, v in options.items() if k not in (*CELL_OPTIONS, "alpha") and v is not None)
    if unknown:
        raise ProbeParameterError(f"wrap: unknown option(s) {', '.join(unknown)}; cell options: "
                                  f"{', '.join((*CELL_OPTIONS, 'alpha'))}{did_you_mean(unknown[0], CELL_OPTIONS)}")
    cell = [k for k in CELL_OPTIONS if options.get(k) is not None]
    if cell and not isinstance(target, nn.Module):
        raise ProbeParameterError(f"wrap: {', '.join(cell)} describe how to call a custom cell module, not a "
                                  f"{type(target).__name__}; leave them out")


def _wrap_parts(module: nn.Module, core: str | None, options: dict[str, Any]) -> tuple[System, Parts | None]:
    if core is None:
        try:
            return _adapt(module, options), None
        except UnsupportedModuleError as err:
            if not isinstance(module, nn.Module) or not candidates(module):
                raise
            try:
                parts = split(module)
            except UnsupportedModuleError as split_err:
                raise split_err from err
    else:
        parts = split(module, core)
    system = _adapt(parts.core, {**options, "name": None})
    system = system._replace(name=f"{parts.model}.{parts.name}: {system.name}")
    return attach_head(system, parts), parts


def leaky(system: System, alpha: float) -> System:
    """Leaky integration of any System: h' = (1 − α) h + α F(h, u), the Euler step of
    τ dh/dt = −h + F(h, u) with α = dt/τ (fading-memory paper §2.1 treats such leaky cells)."""
    if not 0.0 < alpha <= 1.0:
        raise ProbeParameterError(f"wrap: alpha={alpha} must lie in (0, 1] (alpha = dt / tau)")
    inner = system.step_fn

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        return (1.0 - alpha) * h + alpha * inner(h, u, p)

    step.__qualname__ = f"leaky[{alpha}]{getattr(inner, '__qualname__', '')}"
    arch = replace(system.arch, family="custom", nonlinearity="", source=f"{system.arch.source}+leaky")
    return system._replace(step=step, arch=arch, name=f"{system.name} (leaky, alpha={alpha:g})",
                           kind=f"{system.kind}+leaky[{alpha!r}]")


def bind_tokens(drive: TokenDrive, module: Any, parts: Parts | None,
                encoder: Callable[[Tensor], Tensor] | None = None) -> tuple[TokenSequence, str]:
    """Bind token ids to ``encoder`` (default: the encoder before the model's core), checked
    against the model's own forward where it can be run; returns the drive and how it was checked."""
    encode = encoder if encoder is not None else (parts.encoder if parts is not None else None)
    if encode is None:
        what = parts.describe() if parts is not None else type(module).__name__
        raise DriveError(
            f"drive 'tokens': token ids {list(drive.ids.shape)} need an encoder, but {what} has none in front of its "
            "recurrent core; pass tokens(ids, encoder=fn) with fn mapping ids [time, batch] to inputs "
            "[time, batch, M] (CLI: --encoder PKG.MOD:FN)")
    bound = drive.bind(encode)
    note = "given"
    if isinstance(module, nn.Module) and parts is not None and parts.name:
        note = verify_encoder(module, parts, drive.ids[:8], bound.inputs[:8])
        if note.startswith("not checked"):
            warnings.warn(f"{parts.describe()}: encoder {note}", RuntimeWarning, stacklevel=3)
    return bound, note
