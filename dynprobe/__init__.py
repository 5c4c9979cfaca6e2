"""dynprobe — measure a PyTorch recurrent network as a dynamical system.

Wrap any recurrent module as a :class:`System` (``h_{t+1} = F(h_t, u_t; θ)``), run probes
(Lyapunov spectra, Jacobian conditioning, periodic orbits, bifurcations, entropy bounds,
mean-field predictions) that return ``xarray`` Datasets, and collect them in DataTrees.

>>> import dynprobe, torch
>>> system = dynprobe.wrap(torch.nn.LSTM(1, 8), dtype=torch.float64)
>>> ds = dynprobe.run("lyapunov", system, steps=500)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dynprobe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

from . import accessor as _accessor  # noqa: F401 - registers the .dynprobe accessor
from . import drives
from .api import analyze, dataset, list_datasets, list_models, list_probes, model, run, set_threads, wrap
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
from .tokendrive import tokens

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
