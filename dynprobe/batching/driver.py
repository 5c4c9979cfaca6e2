"""Drive a batch run: expand the inputs, skip what the store already holds, schedule the rest
on Dask, write each result as it arrives, and summarize.

Scheduling is ``dask.distributed``: a :class:`~distributed.LocalCluster` of single-threaded
worker processes sized to the machine by default, or an existing cluster by address
(``tcp://host:port``) or :class:`~distributed.Client` — the same job, no code change. Workers
read the checkpoint files themselves, so on a remote cluster the paths must be visible to them
(a shared file system); only the small result Datasets travel back to be written.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr
from torch import nn

from ..drives import parse_drive
from ..errors import DynprobeError, ProbeParameterError
from ..results import to_json
from .store import BatchStore, checkpoint_key, index_dataset
from .work import CheckpointOutcome, LoadOptions, ProbeOutcome, analyse_checkpoint, file_sha256, one_line, worker_report

__all__ = ["batch", "BatchSummary", "expand_paths"]

_INDEX_EVERY_S = 10.0


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch run, counted per checkpoint.

    ``ok``: every probe's result is complete (at least one computed now); ``failed``: at least
    one probe failed; ``skipped``: every result was already complete for this exact file.
    ``index`` is this run's index (status ``ok`` / ``error`` / ``skipped`` per checkpoint and
    probe, with file size, sha256, error text and elapsed time).
    """

    ok: int
    failed: int
    skipped: int
    wall_s: float
    store: Path
    index: xr.Dataset

    @property
    def failures(self) -> list[str]:
        """The error lines of this run (each names its file)."""
        errors = self.index.error.values[self.index.status.values == "error"]
        return sorted(set(errors.tolist()))

    def line(self) -> str:
        return (f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped in {self.wall_s:.1f} s "
                f"-> {self.store}")

    def __str__(self) -> str:
        return self.line()


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[str]:
    """Absolute checkpoint paths from paths and globs (``**`` recursive), sorted per pattern,
    without duplicates; a pattern that matches no file is an error."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise DynprobeError("batch: no checkpoint paths given")
    out: dict[str, None] = {}
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
            if not found:
                raise DynprobeError(f"batch: {text!r} matches no file")
        elif os.path.isdir(text):
            raise DynprobeError(f"batch: {text!r} is a directory; pass a glob such as '{text.rstrip('/')}/*.pt'")
        elif not os.path.exists(text):
            raise DynprobeError(f"batch: {text!r}: no such file")
        else:
            found = [text]
        out.update(dict.fromkeys(os.path.abspath(p) for p in found))
    return list(out)


def _resolve_probes(probes: str | Iterable[str], probe_params: Mapping[str, Mapping[str, Any]] | None
                    ) -> dict[str, dict[str, Any]]:
    """Probe names → resolved parameters (defaults included), checked before any work starts."""
    from ..api import _check_params
    from ..registry import registry

    names = [probes] if isinstance(probes, str) else list(probes)
    if not names:
        raise ProbeParameterError("batch: no probe given; pass probes=['lyapunov', ...] (CLI: --probe NAME)")
    params = dict(probe_params or {})
    stray = sorted(set(params) - set(names))
    if stray:
        raise ProbeParameterError(
            f"batch: parameters given for probes not run: {', '.join(stray)}; probes: {', '.join(names)}")
    return {name: _check_params(registry().probe(name), dict(params.get(name, {}))) for name in names}


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@contextmanager
def _client(workers: int | None, scheduler: Any) -> Iterator[Any]:
    """A Dask client: a fresh local cluster, one at ``scheduler``'s address, or the given one."""
    from ..extras import require

    require("distributed", "dynprobe batch")
    from distributed import Client, LocalCluster

    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise DynprobeError(f"batch: workers={workers!r}; pass a positive number of worker processes")
    if scheduler is None:
        n = workers or _cpu_count()
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    if workers is not None:
        raise DynprobeError("batch: workers= sizes the local cluster only; size an existing cluster where it runs "
                            "(or leave out scheduler=)")
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise DynprobeError(
            f"batch: scheduler={scheduler!r}; pass an address 'tcp://host:port' or a dask.distributed.Client")
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise DynprobeError(f"batch: cannot reach the Dask scheduler at {scheduler!r} ({err}); start one with "
                            "'dask scheduler' and 'dask worker ADDRESS', or leave out --scheduler for a local "
                            "cluster") from err
    with client:
        yield client


def _check_workers(client: Any, probes: Iterable[str]) -> None:
    """Every worker must have every probe: plugins are entry points of each worker's own
    environment, read in each worker process."""
    reports = client.run(worker_report)
    if not reports:
        raise DynprobeError("batch: the Dask cluster has no workers; start some with 'dask worker ADDRESS'")
    for address, report in sorted(reports.items()):
        missing = [p for p in probes if p not in report["probes"]]
        if missing:
            broken = f"; plugins that failed there: {'; '.join(report['failures'])}" if report["failures"] else ""
            raise DynprobeError(
                f"batch: worker {address} has no probe {', '.join(map(repr, missing))} (installed there: "
                f"{', '.join(report['probes']) or 'none'}{broken}); install the plugin's package on every worker"
            )


def _progress(total: int, enabled: bool | None) -> Any:
    """A rich progress bar on a terminal; ``None`` (silent) otherwise."""
    if enabled is False or (enabled is None and not sys.stderr.isatty()) or total == 0:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


def batch(
    paths: str | Path | Iterable[str | Path],
    probes: str | Iterable[str],
    out: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    probe_params: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int | None = None,
    scheduler: str | Any | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
    dtype: str = "float64",
    drive: str | None = None,
    progress: bool | None = None,
) -> BatchSummary:
    """Run probes over many checkpoints on Dask, writing a resumable Zarr store.

    Each checkpoint is read once by a worker (hashed and loaded from the same bytes, safely:
    see :func:`dynprobe.checkpoints.read_checkpoint`), wrapped, and measured by every probe.
    Each (checkpoint, probe) result is written to ``out`` as soon as its task finishes, then
    marked complete. A failing checkpoint or probe is recorded (one line naming the file) and
    the rest go on. Running the same call again skips results that are complete for a file
    with the same sha256 and the same parameters, recomputes changed files, and retries failures.

    Parameters
    ----------
    paths
        Checkpoint files and globs (``runs/*/epoch_*.pt``, ``**`` recursive).
    probes
        Probe names; ``probe_params`` gives their parameters, ``{"lyapunov": {"k": 8}}``.
    out
        The Zarr store (a directory, conventionally ``*.zarr``); created or resumed.
    factory
        ``package.module:function`` building the module when the checkpoints are not plain
        ``nn.RNN/GRU/LSTM`` state_dicts (it must be importable on the workers).
    workers
        Worker processes of the local cluster (default: one per available core).
    scheduler
        ``tcp://host:port`` of a running Dask scheduler, or a ``dask.distributed.Client``.
    trust_pickle, nonlinearity, allow_nonfinite
        Loading options (:func:`~dynprobe.checkpoints.read_checkpoint`).
    dtype
        ``float64`` (default) or ``float32`` for the Systems.
    drive
        Inputs of every System, in the CLI's form: ``autonomous`` (default), ``constant:0.3``
        (the attractors paper's induced system under a constant input), or a ``.npy``/``.pt``
        sequence file (visible to the workers).
    progress
        Progress bar: ``None`` shows one on a terminal (stderr) only.

    Returns
    -------
    BatchSummary
        ok / failed / skipped checkpoint counts, wall time, and this run's index.

    References
    ----------
    Attractors paper §4.1 (bifurcations over training are this: one probe along checkpoints).

    Example
    -------
    >>> summary = dynprobe.batch("ckpt/epoch_*.pt", ["lyapunov"], "runs.zarr", probe_params={"lyapunov": {"k": 8}})
    >>> tree = dynprobe.open_batch("runs.zarr")
    """
    start = time.perf_counter()
    if dtype not in ("float64", "float32"):
        raise DynprobeError(f"batch: dtype={dtype!r}; pass 'float64' or 'float32'")
    resolved = _resolve_probes(probes, probe_params)
    files = expand_paths(paths)
    if drive is not None:
        parse_drive(drive)  # a typo fails here, not once per checkpoint
    options = LoadOptions(factory=factory, trust_pickle=trust_pickle, nonlinearity=nonlinearity,
                          allow_nonfinite=allow_nonfinite, dtype=dtype, drive=drive)
    identity = {name: to_json({"probe": p, "load": options.describe()}) for name, p in resolved.items()}
    store = BatchStore(out)
    store.create(resolved)
    done = store.records()
    keys = {path: checkpoint_key(path) for path in files}
    statuses: dict[tuple[str, str], str] = {}
    todo: dict[str, dict[str, dict[str, Any]]] = {}
    for path in files:
        try:
            sha = file_sha256(path)
        except OSError:
            sha = ""  # the worker records why it cannot read the file
        for name in resolved:
            rec = done.get((keys[path], name))
            if rec is not None and rec.status == "ok" and rec.sha256 == sha and rec.params == identity[name]:
                statuses[(keys[path], name)] = "skipped"
            else:
                todo.setdefault(path, {})[name] = resolved[name]
    bar = _progress(len(todo), progress)
    try:
        if todo:
            with _client(workers, scheduler) as client, (bar or nullcontext()):
                _check_workers(client, resolved)
                _run(client, todo, options, store, keys, identity, statuses, bar)
    finally:
        records = store.records()
        store.write_index()
    ok = failed = skipped = 0
    for path in files:
        states = [statuses.get((keys[path], name), "missing") for name in resolved]
        if "error" in states or "missing" in states:
            failed += 1
        elif all(s == "skipped" for s in states):
            skipped += 1
        else:
            ok += 1
    index = index_dataset(records, statuses, paths={k: p for p, k in keys.items()}, probes=resolved)
    return BatchSummary(ok=ok, failed=failed, skipped=skipped, wall_s=time.perf_counter() - start,
                        store=store.path, index=index)


def _run(client: Any, todo: Mapping[str, Mapping[str, Any]], options: LoadOptions, store: BatchStore,
         keys: Mapping[str, str], identity: Mapping[str, str], statuses: dict[tuple[str, str], str], bar: Any) -> None:
    """Submit one task per checkpoint (the worker writes its results); collect the records."""
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    target = str(store.path.resolve())
    futures = {client.submit(analyse_checkpoint, path, dict(probes), options, target, keys[path], identity, pure=False,
                             key=f"dynprobe-{keys[path]}-{run_id}"): path for path, probes in todo.items()}
    task = bar.add_task("batch", total=len(futures), status="") if bar is not None else None
    last_index = time.perf_counter()
    n_ok = n_err = 0
    try:
        for future in as_completed(futures):
            path = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # noqa: BLE001 - a worker that died loses only its own checkpoint
                text = f"{path}: the Dask task failed ({one_line(err)})"
                failed = {name: ProbeOutcome("error", error=text) for name in todo[path]}
                outcome = CheckpointOutcome(path=path, probes=failed)
            future.release()
            for name, o in outcome.probes.items():
                if not o.written:
                    store.write(keys[path], name, outcome.record(name, identity[name]), None)
                statuses[(keys[path], name)] = o.status
            bad = any(o.status != "ok" for o in outcome.probes.values())
            n_ok, n_err = n_ok + (not bad), n_err + bad
            if bar is not None:
                bar.update(task, advance=1, status=f"{n_ok} ok, {n_err} failed")
            if time.perf_counter() - last_index > _INDEX_EVERY_S:
                store.write_index()
                last_index = time.perf_counter()
    except BaseException:
        client.cancel(list(futures))
        raise
