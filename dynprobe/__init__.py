"""dynprobe — measure a PyTorch recurrent network as a dynamical system.

Wrap any recurrent module as a :class:`System` (``h_{t+1} = F(h_t, u_t; θ)``), run probes
(Lyapunov spectra, Jacobian conditioning, periodic orbits, bifurcations, entropy bounds,
mean-field predictions) that return ``xarray`` Datasets, and collect them in DataTrees.

>>> import dynprobe, torch
>>> system = dynprobe.wrap(torch.nn.LSTM(1, 8), dtype=torch.float64)
>>> ds = dynprobe.run("lyapunov", system, steps=500)

``import dynprobe`` is lazy (PEP 562): each public name loads its module — and torch, xarray —
on first use, so the command line starts fast (``dynprobe --help`` imports no torch) and the
optional batch dependencies (Dask, Zarr) load only for batch work. The ``.dynprobe`` accessor
on Datasets and DataTrees is registered as soon as any dynprobe function or class is used
(or on ``import dynprobe.accessor``).
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("dynprobe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_EXPORTS: dict[str, str] = {
    "System": "system", "StateLayout": "system", "StatePart": "system", "InitialState": "system",
    "Drive": "drives", "autonomous": "drives", "constant": "drives", "sequence": "drives", "feedback": "drives",
    "wrap": "api", "run": "api", "analyze": "api", "list_probes": "api", "list_models": "api",
    "list_datasets": "api", "model": "api", "dataset": "api",
    "set_threads": "threads",
    "load_system": "targets",
    "diagnose": "diagnose", "Diagnosis": "diagnose",
    "write_report": "report",
    "save": "results", "open_result": "results", "validate": "results",
    "batch": "batching", "open_batch": "batching", "BatchSummary": "batching",
    "Probe": "specs", "Verdict": "specs", "ModelSpec": "specs", "DatasetSpec": "specs",
    "hookimpl": "hookspecs",
    "DynprobeError": "errors",
    "tokens": "tokendrive",
    "Dimension": "schema",
}
_SUBMODULES = ("drives",)

__all__ = [
    "__version__",
    "System",
    "Dimension",
    "StateLayout",
    "StatePart",
    "InitialState",
    "Drive",
    "autonomous",
    "constant",
    "sequence",
    "feedback",
    "tokens",
    "drives",
    "wrap",
    "run",
    "analyze",
    "list_probes",
    "list_models",
    "list_datasets",
    "model",
    "dataset",
    "load_system",
    "diagnose",
    "Diagnosis",
    "write_report",
    "set_threads",
    "save",
    "open_result",
    "validate",
    "batch",
    "open_batch",
    "BatchSummary",
    "Probe",
    "Verdict",
    "ModelSpec",
    "DatasetSpec",
    "hookimpl",
    "DynprobeError",
]

_LIGHT = {"hookspecs", "errors", "threads", "schema"}  # modules that need neither xarray nor the accessor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None and name not in _SUBMODULES and not _is_submodule(name):
        raise AttributeError(f"module 'dynprobe' has no attribute {name!r}")
    if module not in _LIGHT:
        importlib.import_module(".accessor", __name__)  # registers ds.dynprobe
    if module is None:
        value: Any = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def _is_submodule(name: str) -> bool:
    """``dynprobe.report``, ``dynprobe.plugins``, ...: submodules load on first attribute access,
    as they did when ``import dynprobe`` imported them all."""
    import importlib.util

    return not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package object: importing the submodule ``dynprobe.diagnose`` must not replace the
    function ``dynprobe.diagnose`` (the import system binds submodules as package attributes)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if "xarray" in sys.modules:  # xarray is loaded already: registering the accessor costs nothing
    from . import accessor as _accessor  # noqa: F401

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from . import drives
    from .api import analyze, dataset, list_datasets, list_models, list_probes, model, run, wrap
    from .batching import BatchSummary, batch, open_batch
    from .diagnose import Diagnosis, diagnose
    from .drives import Drive, autonomous, constant, feedback, sequence
    from .errors import DynprobeError
    from .hookspecs import hookimpl
    from .report import write_report
    from .results import open_result, save, validate
    from .schema import Dimension
    from .specs import DatasetSpec, ModelSpec, Probe, Verdict
    from .system import InitialState, StateLayout, StatePart, System
    from .targets import load_system
    from .threads import set_threads
    from .tokendrive import tokens
