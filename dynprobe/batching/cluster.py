"""Where a batch runs: a Dask cluster (local processes or an existing one), or this process.

``workers=None`` starts a :class:`~distributed.LocalCluster` of single-threaded worker
processes, one per available core; ``workers=N`` that many; ``workers=0`` runs every
checkpoint here, one after the other, without Dask (small jobs, debugging, notebooks, and
scripts that cannot have a main guard). ``scheduler`` (``tcp://host:port`` or a
:class:`~distributed.Client`) sends the same job to an existing cluster.

A script that calls ``dynprobe.batch`` at module level, without an
``if __name__ == "__main__":`` guard, cannot start local worker processes: each one re-imports
the script, which calls ``batch`` again. Dask then reports "Nanny failed to start" after a
long traceback; here the worker's import stops with one line, and the run fails with one line
saying what to do.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DynprobeError
from .work import worker_report

__all__ = ["client_for", "check_workers", "refuse_in_worker_bootstrap", "cpu_count", "MAIN_GUARD_HINT"]

MAIN_GUARD_HINT = ("a script that calls dynprobe.batch must do so under `if __name__ == \"__main__\":` (each worker "
                   "process re-imports the script), or pass workers=0 (--workers 0) to run in this process")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def refuse_in_worker_bootstrap() -> None:
    """Stop, in one line, a worker process that is importing a script without a main guard
    (``multiprocessing`` marks a spawned child as inheriting while it imports ``__main__``)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(f"dynprobe.batch was called while a worker process imported the script: {MAIN_GUARD_HINT}")


@contextmanager
def _quiet_startup() -> Iterator[None]:
    """The nanny logs a full traceback when a worker cannot start; the run reports it in one line."""
    logger = logging.getLogger("distributed.nanny")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)


@contextmanager
def _local(n: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    try:
        with _quiet_startup():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR)
    except (RuntimeError, TimeoutError, OSError) as err:
        raise DynprobeError(f"batch: Dask could not start its local worker processes ({type(err).__name__}: "
                            f"{str(err).strip() or 'no message'}); {MAIN_GUARD_HINT}") from err
    with cluster, Client(cluster) as client:
        yield client


@contextmanager
def client_for(workers: int | None, scheduler: Any) -> Iterator[Any]:
    """A Dask client: a fresh local cluster, one at ``scheduler``'s address, or the given one."""
    from ..extras import require

    require("distributed", "dynprobe batch")  # one line naming the [batch] extra when Dask is missing
    from distributed import Client

    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise DynprobeError(f"batch: workers={workers!r}; pass a positive number of worker processes, or 0 to run "
                            "in this process")
    if scheduler is None:
        with _local(workers or cpu_count()) as client:
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


def check_workers(client: Any, probes: Iterable[str], expected: dict[str, Any] | None = None) -> None:
    """Every worker must have every probe, in the version this process has: plugins are entry
    points of each worker's own environment, and a result is identified by the versions that
    made it (a worker with other versions would make every rerun recompute)."""
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
        if expected is None:
            continue
        here = {"dynprobe": expected["dynprobe"], **{p: expected["versions"][p] for p in probes}}
        there = {"dynprobe": report.get("dynprobe"), **{p: report.get("versions", {}).get(p) for p in probes}}
        differ = [f"{k} {there[k]!r} (here {here[k]!r})" for k in here if there[k] != here[k]]
        if differ:
            raise DynprobeError(f"batch: worker {address} runs other versions: {', '.join(differ)}; install the same "
                                "versions on every worker and here")
