"""Drive a batch run: expand the inputs, lock the store, skip what it already holds (verified),
schedule the rest, write each result as it arrives, and summarize.

Scheduling (:mod:`.cluster`) is ``dask.distributed``: a :class:`~distributed.LocalCluster` of
single-threaded worker processes sized to the machine by default, an existing cluster by
address (``tcp://host:port``) or :class:`~distributed.Client` — the same job, no code change —
or, with ``workers=0``, this process. Workers read the checkpoint files and write their
results themselves, so on a remote cluster both must be on a file system they see.

Resuming: a (checkpoint, probe) result is reused when its record is complete, its checksum
matches, and it was made from a file with the same sha256, with the same parameters and
loading options, by the same dynprobe and plugin versions. ``recompute=True`` recomputes
everything asked for; ``recompute=False`` keeps complete results made by other versions.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr
from torch import nn

from ..deadline import DEFAULT_TIMEOUT_S
from ..drives import parse_drive
from ..errors import DynprobeError, ProbeParameterError
from ..results import to_json
from .cluster import check_workers, client_for, refuse_in_worker_bootstrap
from .lock import StoreLock
from .records import Record, checkpoint_key, index_dataset
from .store import BatchStore
from .work import CheckpointOutcome, LoadOptions, ProbeOutcome, analyse_checkpoint, file_sha256, one_line

__all__ = ["batch", "BatchSummary", "expand_paths"]

_INDEX_EVERY_S = 10.0


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch run, counted per checkpoint.

    ``ok``: every probe's result is complete (at least one computed now); ``failed``: at least
    one probe failed; ``skipped``: every result was already complete for this exact file.
    ``index`` is this run's index (status ``ok`` / ``error`` / ``skipped`` per checkpoint and
    probe, with file size, sha256, error text and elapsed time). ``damaged``: results found
    damaged in the store before the run (recomputed by it), as (group key, probe) → reason.
    """

    ok: int
    failed: int
    skipped: int
    wall_s: float
    store: Path
    index: xr.Dataset
    damaged: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        """The error lines of this run (each names its file)."""
        errors = self.index.error.values[self.index.status.values == "error"]
        return sorted(set(errors.tolist()))

    def line(self) -> str:
        repaired = f", {len(self.damaged)} damaged result(s) recomputed" if self.damaged else ""
        return (f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped{repaired} in {self.wall_s:.1f} s "
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
    from ..registry import registry

    names = [probes] if isinstance(probes, str) else list(probes)
    if not names:
        raise ProbeParameterError("batch: no probe given; pass probes=['lyapunov', ...] (CLI: --probe NAME)")
    params = dict(probe_params or {})
    stray = sorted(set(params) - set(names))
    if stray:
        raise ProbeParameterError(
            f"batch: parameters given for probes not run: {', '.join(stray)}; probes: {', '.join(names)}")
    return {name: registry().probe(name).bind(dict(params.get(name, {}))) for name in names}


def _identity(resolved: Mapping[str, Mapping[str, Any]], options: LoadOptions) -> dict[str, str]:
    """Per probe: the JSON of everything but code versions that determines its results."""
    return {name: to_json({"probe": p, "load": options.describe()}) for name, p in resolved.items()}


def _versions(probes: Iterable[str]) -> dict[str, Any]:
    """This process's dynprobe version and each probe's plugin version (what made a result)."""
    from .. import __version__
    from ..registry import registry

    return {"dynprobe": __version__, "versions": {p: registry().probe(p).version for p in probes}}


def reusable(record: Record | None, sha256: str, identity: str, made_by: tuple[str, str],
             recompute: bool | None) -> bool:
    """May a rerun skip this result? ``made_by``: (dynprobe version, plugin version) now."""
    if record is None or recompute is True or record.status != "ok":
        return False
    if record.sha256 != sha256 or record.params != identity:
        return False
    return recompute is False or (record.dynprobe_version, record.plugin_version) == made_by


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
    timeout: float | None = DEFAULT_TIMEOUT_S,
    recompute: bool | None = None,
    **load: Any,
) -> BatchSummary:
    """Run probes over many checkpoints, writing a resumable, verified Zarr store.

    Each checkpoint is read once by a worker (hashed and loaded from the same bytes, safely:
    see :func:`dynprobe.checkpoints.read_checkpoint`), wrapped, and measured by every probe,
    each under ``timeout``. Each (checkpoint, probe) result is written to ``out`` as soon as
    its probe finishes, checksummed, then marked complete. A failing checkpoint or probe is
    recorded (one line naming the file) and the rest go on. Running the same call again skips
    results that are complete and intact for a file with the same sha256, the same parameters
    and the same dynprobe and plugin versions; it recomputes changed files, changed
    parameters, new versions and damaged results, and retries failures. One run writes a store
    at a time: a second one refuses in one line (:mod:`.lock`).

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
        Worker processes of the local cluster (default: one per available core); ``0`` runs
        every checkpoint in this process, without Dask.
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
    timeout
        Seconds one probe may take on one checkpoint before it is stopped and recorded as
        timed out (``None``: no limit).
    recompute
        ``None`` (default): recompute what changed (file, parameters, versions) or is damaged;
        ``True``: recompute every result asked for; ``False``: also keep complete results made
        by other dynprobe or plugin versions.
    **load
        Further loading options of :class:`dynprobe.intake.LoadOptions`, as ``dynprobe run``
        and ``diagnose`` take them: ``module``, ``path``, ``device``, ``vocab``, ``encoder``,
        ``cycle``, ``model_kwargs`` (the factory's arguments).

    Returns
    -------
    BatchSummary
        ok / failed / skipped checkpoint counts, wall time, this run's index, and the damaged
        results it found (and recomputed).

    References
    ----------
    Attractors paper §4.1 (bifurcations over training are this: one probe along checkpoints).

    Example
    -------
    >>> summary = dynprobe.batch("ckpt/epoch_*.pt", ["lyapunov"], "runs.zarr", probe_params={"lyapunov": {"k": 8}})
    >>> tree = dynprobe.open_batch("runs.zarr")
    """
    refuse_in_worker_bootstrap()
    start = time.perf_counter()
    if dtype not in ("float64", "float32"):
        raise DynprobeError(f"batch: dtype={dtype!r}; pass 'float64' or 'float32'")
    if timeout is not None and not timeout > 0:
        raise DynprobeError(f"batch: timeout={timeout!r}; pass a positive number of seconds or None")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise DynprobeError(f"batch: workers={workers!r}; pass a positive number of worker processes, or 0 to run "
                            "in this process")
    if workers == 0 and scheduler is not None:
        raise DynprobeError("batch: workers=0 runs in this process; leave out scheduler= (or workers=)")
    from ..extras import require

    require("zarr", "dynprobe batch")  # the store; before anything is written
    if workers != 0:
        require("distributed", "dynprobe batch")
    resolved = _resolve_probes(probes, probe_params)
    files = expand_paths(paths)
    try:
        options = LoadOptions(factory=factory, trust_pickle=trust_pickle, nonlinearity=nonlinearity,
                              allow_nonfinite=allow_nonfinite, dtype=dtype, drive=drive, **load)
    except TypeError as err:
        raise DynprobeError(f"batch: {err}; loading options: {', '.join(LoadOptions.__dataclass_fields__)}") from None
    if drive is not None:
        parse_drive(drive, vocab=options.vocab)  # a typo fails here, not once per checkpoint
    identity, versions = _identity(resolved, options), _versions(resolved)
    store = BatchStore(out)
    store.check_target()  # before the lock file goes into a folder that is not ours
    with StoreLock(store.path):
        store.create(resolved)
        job = _Job(store, files, resolved, identity, versions, options, timeout)
        job.plan(recompute)
        bar = _progress(len(job.todo), progress)
        try:
            if job.todo:
                with bar or nullcontext():
                    if workers == 0:
                        job.run_here(bar)
                    else:
                        with client_for(workers, scheduler) as client:
                            check_workers(client, resolved, versions)
                            job.run_on(client, bar)
        finally:
            scan = store.scan()
            store.write_index(scan)
    return job.summary(scan, time.perf_counter() - start)


class _Job:
    """One batch run: what to do, what happened."""

    def __init__(self, store: BatchStore, files: list[str], resolved: Mapping[str, Any], identity: Mapping[str, str],
                 versions: Mapping[str, Any], options: LoadOptions, timeout: float | None) -> None:
        self.store, self.files, self.resolved, self.identity = store, files, resolved, identity
        self.versions, self.options, self.timeout = versions, options, timeout
        self.keys = {path: checkpoint_key(path) for path in files}
        self.statuses: dict[tuple[str, str], str] = {}
        self.todo: dict[str, dict[str, dict[str, Any]]] = {}
        self.damaged: dict[tuple[str, str], str] = {}
        self.shas: dict[str, str] = {}
        self.errors: dict[tuple[str, str], str] = {}
        self.counts = [0, 0]
        self.last_index = time.perf_counter()

    def plan(self, recompute: bool | None) -> None:
        """Skip what is complete, intact and made the same way; everything else is to do."""
        found = self.store.scan()
        wanted = {(self.keys[p], name) for p in self.files for name in self.resolved}
        self.damaged = {k: v for k, v in found.damaged.items() if k in wanted}
        if self.damaged:
            type(found)(damaged=self.damaged).warn(self.store.path, stacklevel=4)
        for path in self.files:
            try:
                sha = file_sha256(path)
            except OSError:
                sha = ""  # the worker records why it cannot read the file
            self.shas[path] = sha
            for name in self.resolved:
                made_by = (self.versions["dynprobe"], self.versions["versions"][name])
                if reusable(found.records.get((self.keys[path], name)), sha, self.identity[name], made_by, recompute):
                    self.statuses[(self.keys[path], name)] = "skipped"
                else:
                    self.todo.setdefault(path, {})[name] = self.resolved[name]

    def collect(self, path: str, outcome: CheckpointOutcome, bar: Any, task: Any) -> None:
        """Record one checkpoint's outcome (writing the records a worker could not)."""
        key = self.keys[path]
        outcome.sha256 = outcome.sha256 or self.shas.get(path, "")
        for name, o in outcome.probes.items():
            if not o.written and not self.store.write(key, name, outcome.record(name, self.identity[name]), None):
                o.status = "ok"  # a worker that died after writing this result: it stays, intact
            self.statuses[(key, name)] = o.status
            if o.status != "ok":
                self.errors[(key, name)] = o.error
        bad = any(o.status != "ok" for o in outcome.probes.values())
        self.counts[bad] += 1
        if bar is not None:
            bar.update(task, advance=1, status=f"{self.counts[0]} ok, {self.counts[1]} failed")
        if time.perf_counter() - self.last_index > _INDEX_EVERY_S:
            self.store.write_index()
            self.last_index = time.perf_counter()

    def run_here(self, bar: Any) -> None:
        """``workers=0``: every checkpoint in this process, one after the other."""
        task = bar.add_task("batch", total=len(self.todo), status="") if bar is not None else None
        target = str(self.store.path.resolve())
        for path, probes in self.todo.items():
            outcome = analyse_checkpoint(path, dict(probes), self.options, target, self.keys[path], self.identity,
                                         self.timeout)
            self.collect(path, outcome, bar, task)

    def run_on(self, client: Any, bar: Any) -> None:
        """Submit one task per checkpoint (the worker writes its results); collect the records."""
        from distributed import as_completed

        run_id = uuid.uuid4().hex[:8]
        target = str(self.store.path.resolve())
        futures = {client.submit(analyse_checkpoint, path, dict(probes), self.options, target, self.keys[path],
                                 self.identity, self.timeout, pure=False, key=f"dynprobe-{self.keys[path]}-{run_id}"): path
                   for path, probes in self.todo.items()}
        task = bar.add_task("batch", total=len(futures), status="") if bar is not None else None
        try:
            for future in as_completed(futures):
                path = futures[future]
                try:
                    outcome = future.result()
                except Exception as err:  # noqa: BLE001 - a worker that died loses only its own checkpoint
                    text = f"{path}: the Dask task failed ({one_line(err)})"
                    outcome = CheckpointOutcome(path=path, probes={n: ProbeOutcome("error", error=text)
                                                                   for n in self.todo[path]})
                future.release()
                self.collect(path, outcome, bar, task)
        except BaseException:
            client.cancel(list(futures))
            raise

    def summary(self, scan: Any, wall_s: float) -> BatchSummary:
        ok = failed = skipped = 0
        for path in self.files:
            states = [self.statuses.get((self.keys[path], name), "missing") for name in self.resolved]
            if "error" in states or "missing" in states:
                failed += 1
            elif all(s == "skipped" for s in states):
                skipped += 1
            else:
                ok += 1
        index = index_dataset(scan.records, self.statuses, paths={k: p for p, k in self.keys.items()},
                              probes=self.resolved, errors=self.errors)
        return BatchSummary(ok=ok, failed=failed, skipped=skipped, wall_s=wall_s, store=self.store.path, index=index,
                            damaged=dict(self.damaged))
