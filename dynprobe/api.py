"""The public Python API: wrap modules, run probes, analyse, look things up.

Everything here goes through the registry facade (:mod:`dynprobe.registry`); nothing here
knows any probe's math.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import xarray as xr
from torch import nn

from .drives import Drive
from .errors import DynprobeError, PluginError, ProbeParameterError, did_you_mean
from .registry import registry
from .results import attach, make_attrs
from .specs import DatasetSpec, ModelSpec, Probe
from .system import InitialState, System
from .threads import applied, set_threads

__all__ = [
    "wrap",
    "run",
    "analyze",
    "list_probes",
    "list_models",
    "list_datasets",
    "model",
    "dataset",
    "set_threads",
]


def wrap(
    module_or_fn: nn.Module | System | Callable[..., torch.Tensor] | Sequence[nn.Module],
    drive: Drive | None = None,
    *,
    core: str | None = None,
    state_dim: int | tuple[int, ...] | None = None,
    input_dim: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    readout: Callable[[torch.Tensor], torch.Tensor] | None = None,
    init: InitialState | None = None,
    name: str | None = None,
    **cell: Any,
) -> System:
    """Turn a recurrent module (or a plain step function, or a list of modules) into a System.

    Modules go through the ``dynprobe_adapt`` hook: ``nn.RNN/GRU/LSTM`` and their cells are
    re-expressed as pure steps; any module with ``forward(x, h) -> (y, h)`` works through the
    generic adapter (tuple and dict states, ``step()`` methods, ``dt``: see ``cell`` below). A
    model that is not itself recurrent — an ``nn.Embedding``, an ``nn.LSTM`` and a decoder in
    one module — is split around its recurrent core (:func:`dynprobe.recurrent.split`): the
    core is wrapped, the modules after it become the readout, and the ones before it encode
    the ids of a :func:`dynprobe.tokens` drive. A plain function ``fn(h, u, params)`` needs
    ``state_dim`` (and ``input_dim`` if it takes inputs). A list of modules of one
    architecture becomes an ensemble with a leading ``network`` axis.

    Parameters
    ----------
    module_or_fn
        What to wrap.
    drive
        How inputs are produced (:mod:`dynprobe.drives`); autonomous (u = 0) by default.
        ``tokens(ids)`` without an encoder is bound to the model's own encoder.
    core
        Name of the recurrent submodule of a larger model (default: the only one inside).
    state_dim, input_dim
        Sizes for modules without ``hidden_size`` / ``input_size`` and for plain functions.
    dtype, device
        Cast the parameters (e.g. ``torch.float64`` for exponents to many digits). Half
        precision (float16, bfloat16) is refused: pass ``torch.float32``, which holds such
        weights exactly.
    readout, init, name
        Output map, initial-state distribution and display name.
    **cell
        Options of the generic adapter for custom cells (README, "Your own cell"): ``step``
        (the one-step method's name), ``state`` (an example state: a tensor, tuple or dict),
        ``state_names``, ``dt`` and ``call_kwargs`` (fixed extra arguments of each step),
        ``alpha`` (leaky integration h' = (1 - α) h + α F(h, u)).

    Returns
    -------
    System

    References
    ----------
    Fading-memory paper §2.1; attractors paper §2 (the induced dynamical system).

    Example
    -------
    >>> system = dynprobe.wrap(nn.LSTM(3, 16), dtype=torch.float64)
    >>> system.state_dim
    32
    >>> lm_system = dynprobe.wrap(lm, dtype=torch.float64, drive=dynprobe.tokens(ids))  # lm.encoder embeds ids
    """
    from .tokendrive import TokenDrive
    from .wrapping import analysis_dtype, bind_tokens, check_cell_options, check_dtype, leaky, wrap_parts

    if dtype is not None:
        check_dtype(dtype)
    parts = None
    if not isinstance(module_or_fn, (nn.Module, list, tuple)):
        check_cell_options(cell, module_or_fn)
    if isinstance(module_or_fn, System):
        system = module_or_fn
    elif isinstance(module_or_fn, (list, tuple)):
        members = [
            wrap(m, core=core, state_dim=state_dim, input_dim=input_dim, readout=readout, init=init, name=name, **cell)
            for m in module_or_fn
        ]
        system = System.stack(members)
    elif callable(module_or_fn) and not isinstance(module_or_fn, nn.Module):
        if state_dim is None or isinstance(state_dim, tuple):
            raise ProbeParameterError(
                "wrap: a plain step function needs state_dim=N (an int); input_dim defaults to 0"
            )
        system = System.from_step(module_or_fn, state_dim=state_dim, input_dim=input_dim or 0, name=name)
    else:
        options = {"state_dim": state_dim, "input_dim": input_dim, "name": name, **cell}
        system, parts = wrap_parts(module_or_fn, core=core, options=options)
    plain = isinstance(module_or_fn, System) or (callable(module_or_fn) and not isinstance(module_or_fn, nn.Module))
    if plain and cell.get("alpha") is not None:  # modules are leaked in wrap_parts
        system = leaky(system, float(cell["alpha"]))
    dtype = analysis_dtype(system, dtype)
    if dtype is not None or device is not None:
        system = system.to(dtype=dtype, device=device)
    if readout is not None:
        system = system.with_readout(readout)
    if init is not None:
        system = system.with_init(init)
    if isinstance(drive, TokenDrive) and parts is not None:
        drive, _ = bind_tokens(drive, module_or_fn, parts)
    if drive is not None:
        system = system.with_drive(drive)
    return system


def run(probe: str, system: System | nn.Module | None, **params: Any) -> xr.Dataset:
    """Run one probe on a system and return its Dataset with provenance attrs.

    ``system`` may also be a module (it is wrapped first) or ``None`` for probes that need
    none (e.g. a purely theoretical ``meanfield`` prediction).

    Example
    -------
    >>> ds = dynprobe.run("lyapunov", system, steps=2000, k=4)
    >>> ds.exponent_mean.values
    """
    spec = registry().probe(probe)
    if system is not None and not isinstance(system, System):
        system = wrap(system)
    resolved = spec.bind(params)
    if system is not None:
        reason = probe_applies(spec, system)
        if reason:
            raise ProbeParameterError(f"probe {probe!r} does not apply to {system.name}: {reason}")
    with applied(system.state_dim if system is not None else None) as threads:
        start = time.perf_counter()
        ds = spec.run(system, **params)
        elapsed = time.perf_counter() - start
    if not isinstance(ds, xr.Dataset):
        raise PluginError(f"probe {probe!r} (plugin {spec.plugin}) returned {type(ds).__name__}, not an xarray.Dataset")
    attrs = make_attrs(probe=probe, params=resolved, system=system, elapsed_s=elapsed, plugin=spec.plugin,
                       plugin_version=spec.version)
    attrs["threads"] = int(threads)  # the torch threads the run used (dynprobe.threads)
    return attach(ds, attrs)


def analyze(
    system: System | nn.Module,
    probes: Iterable[str] | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    **common: Any,
) -> xr.DataTree:
    """Run several probes and collect them in a DataTree, one child per probe.

    ``probes`` defaults to every installed probe that applies to the system. ``params`` gives
    per-probe parameters (``{"lyapunov": {"k": 4}}``); ``common`` parameters (e.g. ``seed``)
    go to every probe that has them. A probe that fails does not lose the others: its child
    holds no data and attrs ``status="error"`` and ``error`` (and a warning is issued).
    """
    if not isinstance(system, System):
        system = wrap(system)
    reg = registry()
    names = list(probes) if probes is not None else list(reg.probes())
    params = dict(params or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ProbeParameterError(f"analyze: parameters given for probes not run: {unknown}; probes: {names}")
    children: dict[str, xr.Dataset] = {}
    for name in names:
        try:
            spec = reg.probe(name)
            if probes is None and probe_applies(spec, system):
                continue
        except PluginError as err:  # a broken registration or applies(): this probe only
            warnings.warn(f"dynprobe.analyze: probe {name!r} failed: {err}", RuntimeWarning, stacklevel=2)
            children[name] = xr.Dataset(attrs={"probe": name, "status": "error", "error": f"PluginError: {err}"})
            continue
        accepted = {p.name for p in spec.params}
        kwargs = {k: v for k, v in common.items() if k in accepted}
        kwargs.update(params.get(name, {}))
        ds, error = run_guarded("analyze", name, system, kwargs)
        children[name] = ds if ds is not None else xr.Dataset(attrs={"probe": name, "status": "error", "error": error})
    return results_tree(system, children)


def probe_applies(spec: Probe, system: System) -> str | None:
    """The probe's reason for not applying to ``system`` (``None``: it applies); a crashing
    ``applies()`` is the plugin's bug, raised as :class:`PluginError` naming it."""
    try:
        reason = spec.refusal(system)  # ensembles the probe refuses, then its own applies()
    except (KeyboardInterrupt, DynprobeError):
        raise
    except BaseException as err:  # noqa: BLE001 - SystemExit included: a plugin bug, not the user's
        raise PluginError(f"probe {spec.name!r} (plugin {spec.plugin}): applies() raised "
                          f"{type(err).__name__}: {err}") from err
    return str(reason) if reason else None


def error_line(err: BaseException) -> str:
    """``"Type: first line of the message"`` — how a failure is recorded."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_guarded(caller: str, probe: str, system: System, params: Mapping[str, Any]) -> tuple[xr.Dataset | None, str]:
    """:func:`run` that never raises: ``(dataset, "")``, or ``(None, "Type: message")`` with a
    warning naming ``caller`` — one probe's failure must never lose the others' results.
    ``SystemExit`` from a probe is a failure too; only ``KeyboardInterrupt`` propagates."""
    try:
        return run(probe, system, **params), ""
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - recorded and warned about, never lost
        kind = "failed" if isinstance(err, DynprobeError) else "crashed"
        warnings.warn(f"dynprobe.{caller}: probe {probe!r} {kind}: {error_line(err)}", RuntimeWarning, stacklevel=3)
        return None, error_line(err)


def results_tree(system: System, children: Mapping[str, xr.Dataset]) -> xr.DataTree:
    """A DataTree with one child per probe and the system's identity in the root attrs."""
    tree = xr.DataTree.from_dict(dict(children))
    tree.attrs = {"system": system.describe(), "model_fingerprint": system.fingerprint(), "probes": ",".join(children)}
    return tree


def list_probes() -> list[Probe]:
    """Installed probes, sorted by name."""
    return list(registry().probes().values())


def list_models() -> list[ModelSpec]:
    """Installed reference models, sorted by name."""
    return list(registry().models().values())


def list_datasets() -> list[DatasetSpec]:
    """Installed data sets and tasks, sorted by name."""
    return list(registry().datasets().values())


def _call_factory(kind: str, spec: ModelSpec | DatasetSpec, preset: str | None, kwargs: Mapping[str, Any]) -> Any:
    presets = getattr(spec, "presets", {}) or {}
    base = dict(spec.defaults)
    if preset is not None:
        if preset not in presets:
            raise ProbeParameterError(
                f"{kind} {spec.name!r}: unknown preset {preset!r}; presets: {', '.join(presets) or '(none)'}"
                f"{did_you_mean(preset, presets)}"
            )
        base.update(presets[preset])
    base.update(kwargs)
    try:
        return spec.factory(**base)
    except TypeError as err:
        raise ProbeParameterError(f"{kind} {spec.name!r}: {err}") from err


def model(name: str, *, preset: str | None = None, **kwargs: Any) -> Any:
    """Build a bundled or installed reference model (an ``nn.Module``, or a System for
    ensembles), e.g. ``dynprobe.model("lstm2d_chaotic")``."""
    return _call_factory("model", registry().model(name), preset, kwargs)


def dataset(name: str, **kwargs: Any) -> Any:
    """Build a data set or synthetic task, e.g. ``dynprobe.dataset("adding", T=100)``."""
    return _call_factory("dataset", registry().dataset(name), None, kwargs)
