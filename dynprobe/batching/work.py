"""What a Dask worker does for one checkpoint: read it once, hash it, load it safely, run
each probe — and turn every failure into a recorded error instead of an exception.

The functions here run in worker processes, which load their plugins from their own entry
points (:func:`worker_report` is what the driver asks each worker before submitting work).
Each worker writes its own checkpoint's groups to the store (distinct groups: no two writers
share one), so writing scales with the workers and only small records travel back.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from torch import nn

from .store import BatchStore, Record

__all__ = ["LoadOptions", "ProbeOutcome", "CheckpointOutcome", "analyse_checkpoint", "write_outcome", "worker_report",
           "one_line",
           "file_sha256"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class LoadOptions:
    """How every checkpoint of a run is loaded (see :func:`dynprobe.checkpoints.read_checkpoint`)."""

    factory: str | Callable[..., nn.Module] | None = None
    trust_pickle: bool = False
    nonlinearity: str | None = None
    allow_nonfinite: bool = False
    dtype: str = "float64"
    drive: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able form, part of what identifies a result (a changed option recomputes)."""
        factory = self.factory if isinstance(self.factory, str) or self.factory is None else (
            f"{getattr(self.factory, '__module__', '?')}:{getattr(self.factory, '__qualname__', repr(self.factory))}")
        return {"factory": factory, "trust_pickle": self.trust_pickle, "nonlinearity": self.nonlinearity,
                "allow_nonfinite": self.allow_nonfinite, "dtype": self.dtype, "drive": self.drive}


@dataclass
class ProbeOutcome:
    """One probe on one checkpoint: a Dataset (until written), or the error text."""

    status: str
    dataset: xr.Dataset | None = None
    error: str = ""
    elapsed_s: float = 0.0
    warnings: str = ""
    written: bool = False


@dataclass
class CheckpointOutcome:
    """Everything a worker sends back for one checkpoint."""

    path: str
    size: int = -1
    sha256: str = ""
    epoch: int | None = None
    step: int | None = None
    load_s: float = 0.0
    write_s: float = 0.0
    probes: dict[str, ProbeOutcome] = field(default_factory=dict)

    def record(self, name: str, params: str) -> Record:
        """The store record of probe ``name`` (``params``: the JSON identifying the result)."""
        o = self.probes[name]
        return Record(path=self.path, size=self.size, sha256=self.sha256, status=o.status, error=o.error,
                      elapsed_s=float(o.elapsed_s + self.load_s), epoch=-1 if self.epoch is None else int(self.epoch),
                      step=-1 if self.step is None else int(self.step), params=params, warnings=o.warnings)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (the driver's cheap check whether a file changed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def analyse_checkpoint(path: str, probes: Mapping[str, Mapping[str, Any]], options: LoadOptions,
                       store: str | None = None, key: str = "", identity: Mapping[str, str] | None = None
                       ) -> CheckpointOutcome:
    """Read ``path`` once (hash and load from the same bytes), wrap it, run ``probes``, and
    with ``store`` write each result under group ``key`` (see :func:`write_outcome`).

    Never raises for a bad checkpoint or a failing probe: the outcome records the error (one
    line naming the file) for every probe it concerns. Sets one torch thread: a worker thread
    is one core's worth of work.
    """
    out = _analyse(path, probes, options)
    if store is not None:
        write_outcome(out, store, key, identity or {})
    return out


def write_outcome(out: CheckpointOutcome, store: str, key: str, identity: Mapping[str, str]) -> None:
    """Write each probe's Dataset then its record (marking it complete), or the error record;
    drop the Datasets from ``out`` once written. A write that fails turns the probe's outcome
    into an error left for the driver to record."""
    start = time.perf_counter()
    bs = BatchStore(store)
    for name, o in out.probes.items():
        try:
            bs.write(key, name, out.record(name, identity.get(name, "")), o.dataset)
            o.written = True
        except Exception as err:  # noqa: BLE001 - e.g. the store is not visible from this worker
            o.status, o.error = "error", f"{out.path}: cannot write the result to {store} ({one_line(err)})"
        o.dataset = None
    out.write_s = time.perf_counter() - start


def _analyse(path: str, probes: Mapping[str, Mapping[str, Any]], options: LoadOptions) -> CheckpointOutcome:
    from ..api import run, wrap
    from ..checkpoints import read_checkpoint
    from ..drives import parse_drive
    from ..errors import DynprobeError
    from ..threads import set_threads

    set_threads(1)  # one thread per worker process: the workers are the parallelism
    out = CheckpointOutcome(path=path)
    start = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        out.size, out.sha256 = len(data), hashlib.sha256(data).hexdigest()
        ckpt = read_checkpoint(path, data=data, factory=options.factory, trust_pickle=options.trust_pickle,
                               nonlinearity=options.nonlinearity, allow_nonfinite=options.allow_nonfinite)
        out.epoch, out.step = ckpt.epoch, ckpt.step
        system = wrap(ckpt.module, dtype=_DTYPES[options.dtype])
        if options.drive is not None:
            system = system.with_drive(parse_drive(options.drive))
    except Exception as err:  # noqa: BLE001 - a bad checkpoint is recorded, the run goes on
        if isinstance(err, OSError):
            text = f"{path}: unreadable ({err.strerror or err})"
        elif isinstance(err, DynprobeError):
            text = str(err) if path in str(err) else f"{path}: {err}"
        else:
            text = f"{path}: {one_line(err)}"
        out.load_s = time.perf_counter() - start
        out.probes = {name: ProbeOutcome("error", error=text) for name in probes}
        return out
    out.load_s = time.perf_counter() - start
    for name, params in probes.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = run(name, system, **params)
                outcome = ProbeOutcome("ok", dataset=ds)
            except Exception as err:  # noqa: BLE001 - one probe never loses the others
                outcome = ProbeOutcome("error", error=f"{path}: probe {name!r} failed: {one_line(err)}")
        outcome.elapsed_s = time.perf_counter() - t0
        outcome.warnings = "; ".join(sorted({str(w.message).splitlines()[0] for w in caught}))
        out.probes[name] = outcome
    return out


def worker_report() -> dict[str, Any]:
    """Run on each worker before a batch: which probes it has, which plugins failed, versions."""
    from .. import __version__
    from ..registry import registry

    reg = registry()
    # the first torch.func call of a process imports much of torch (seconds): pay it here, so
    # that the first checkpoint's elapsed time measures its probes
    torch.func.jvp(torch.sin, (torch.zeros(1),), (torch.ones(1),))
    return {"probes": sorted(reg.probes()), "failures": [f"{f.plugin}: {f.error}" for f in reg.failures],
            "dynprobe": __version__, "torch": str(torch.__version__)}
