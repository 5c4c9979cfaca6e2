"""What a Dask worker does for one checkpoint: read it once, hash it, load it safely, run
each probe under its time limit — and turn every failure into a recorded error instead of an
exception.

The functions here run in worker processes (or in the driving process with ``workers=0``),
which load their plugins from their own entry points (:func:`worker_report` is what the
driver asks each worker before submitting work). Each worker writes its own checkpoint's
groups to the store as each probe finishes (distinct groups: no two writers share one), so a
probe that hangs or a worker that dies loses only what was not finished, writing scales with
the workers, and only small records travel back.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from ..deadline import call_with_deadline
from ..intake import LoadOptions
from .store import BatchStore, Record

__all__ = ["LoadOptions", "ProbeOutcome", "CheckpointOutcome", "analyse_checkpoint", "write_outcome", "worker_report",
           "one_line",
           "file_sha256"]

_ABOUT_THE_CODE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
"""Warnings about library code, not about a result: not recorded with it."""


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
    load_notes: list[str] = field(default_factory=list)
    """Warnings from loading the checkpoint, recorded with every probe's result."""
    probes: dict[str, ProbeOutcome] = field(default_factory=dict)

    def record(self, name: str, params: str) -> Record:
        """The store record of probe ``name`` (``params``: the JSON identifying the result).
        Which code made the result is read from the result itself (its provenance attrs)."""
        o = self.probes[name]
        made = o.dataset.attrs if o.dataset is not None else {}
        return Record(path=self.path, size=self.size, sha256=self.sha256, status=o.status, error=o.error,
                      elapsed_s=o.elapsed_s + self.load_s, epoch=-1 if self.epoch is None else self.epoch,
                      step=-1 if self.step is None else self.step, params=params, warnings=o.warnings,
                      dynprobe_version=str(made.get("dynprobe_version", "")), plugin=str(made.get("plugin", "")),
                      plugin_version=str(made.get("plugin_version", "")))


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


def one_line_text(err: BaseException) -> str:
    """The first line of ``err``'s message (dynprobe's own errors are one line already)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def analyse_checkpoint(path: str, probes: Mapping[str, Mapping[str, Any]], options: LoadOptions,
                       store: str | None = None, key: str = "", identity: Mapping[str, str] | None = None,
                       timeout: float | None = None) -> CheckpointOutcome:
    """Read ``path`` once (hash and load from the same bytes), wrap it, run ``probes`` (each
    under ``timeout`` seconds), and with ``store`` write each result under group ``key`` as
    soon as its probe finishes (see :func:`write_outcome`).

    Never raises for a bad checkpoint or a failing, crashing or hanging probe: the outcome
    records the error (one line naming the file) for every probe it concerns. Runs with one torch
    thread (a worker thread is one core's worth of work) and restores the caller's setting.
    """
    from ..threads import pinned

    with pinned(1):  # one thread per worker: the workers are the parallelism
        out = CheckpointOutcome(path=path)
        system = _load(out, probes, options)
        for name, params in probes.items():
            if system is not None:
                outcome = _measure(path, name, system, params, timeout)
                outcome.warnings = "; ".join(filter(None, [*out.load_notes, outcome.warnings]))
                out.probes[name] = outcome
            if store is not None:
                write_outcome(out, store, key, identity or {}, only=name)
    return out


def write_outcome(out: CheckpointOutcome, store: str, key: str, identity: Mapping[str, str],
                  only: str | None = None) -> None:
    """Write each probe's Dataset then its record (marking it complete), or the error record;
    drop the Datasets from ``out`` once written. A write that fails turns the probe's outcome
    into an error left for the driver to record. ``only``: just that probe."""
    bs = BatchStore(store)
    for name, o in out.probes.items():
        if (only is not None and name != only) or o.written:
            continue
        try:
            bs.write(key, name, out.record(name, identity.get(name, "")), o.dataset)
            o.written = True
        except Exception as err:  # noqa: BLE001 - e.g. the store is not visible from this worker
            o.status, o.error = "error", f"{out.path}: cannot write the result to {store} ({one_line(err)})"
        o.dataset = None


def _measure(path: str, name: str, system: Any, params: Mapping[str, Any], timeout: float | None) -> ProbeOutcome:
    """One probe on one checkpoint, under its time limit, with its warnings collected."""
    from ..api import run
    from ..timings import format_duration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = call_with_deadline(lambda: run(name, system, **params), timeout, name=f"dynprobe probe {name}")
    if done.timed_out:
        outcome = ProbeOutcome("error", error=f"{path}: probe {name!r} timed out after "
                                              f"{format_duration(timeout or 0)} (--timeout)")
    elif done.error is not None:
        outcome = ProbeOutcome("error", error=f"{path}: probe {name!r} failed: {one_line(done.error)}")
    else:
        outcome = ProbeOutcome("ok", dataset=done.value)
    outcome.elapsed_s = done.elapsed_s
    about_the_result = [w for w in caught if str(w.message) and not issubclass(w.category, _ABOUT_THE_CODE)]
    outcome.warnings = "; ".join(sorted({str(w.message).splitlines()[0] for w in about_the_result}))
    return outcome


def _load(out: CheckpointOutcome, probes: Mapping[str, Any], options: LoadOptions) -> Any:
    """The checkpoint's System, filling ``out``'s file identity; ``None`` (every probe's
    outcome an error naming the file) when it cannot be loaded."""
    from ..errors import DynprobeError
    from ..intake import resolve

    path = out.path
    start = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        out.size, out.sha256 = len(data), hashlib.sha256(data).hexdigest()
        with warnings.catch_warnings(record=True) as load_warnings:
            warnings.simplefilter("always")
            loaded = resolve(path, options, data=data)
        system, ckpt = loaded.system, loaded.checkpoint
        out.epoch, out.step = (ckpt.epoch, ckpt.step) if ckpt is not None else (None, None)
        out.load_notes = sorted({str(w.message).splitlines()[0] for w in load_warnings
                                 if str(w.message) and not issubclass(w.category, _ABOUT_THE_CODE)})
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - a bad checkpoint is recorded, the run goes on
        if isinstance(err, OSError):
            text = f"{path}: unreadable ({err.strerror or err})"
        elif isinstance(err, DynprobeError):
            text = one_line_text(err) if path in str(err) else f"{path}: {one_line_text(err)}"
        else:
            text = f"{path}: {one_line(err)}"
        out.load_s = time.perf_counter() - start
        out.probes = {name: ProbeOutcome("error", error=text) for name in probes}
        return None
    out.load_s = time.perf_counter() - start
    return system


def worker_report() -> dict[str, Any]:
    """Run on each worker before a batch: which probes it has, which plugins failed, versions."""
    from .. import __version__
    from ..registry import registry

    reg = registry()
    # the first torch.func call of a process imports much of torch (seconds): pay it here, so
    # that the first checkpoint's elapsed time measures its probes
    torch.func.jvp(torch.sin, (torch.zeros(1),), (torch.ones(1),))
    return {"probes": sorted(reg.probes()), "failures": [f"{f.plugin}: {f.error}" for f in reg.failures],
            "dynprobe": __version__, "torch": str(torch.__version__),
            "versions": {name: probe.version for name, probe in reg.probes().items()}}
