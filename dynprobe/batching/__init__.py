"""Batch analysis of checkpoints: probes × checkpoints on Dask, into a resumable Zarr store.

``dynprobe.batch(paths, probes, out, ...)`` (:func:`~dynprobe.batching.driver.batch`) runs the job
and returns a :class:`BatchSummary`; ``dynprobe.open_batch(out)`` reads the store back as a
DataTree with each probe's results along ``checkpoint``; ``dynprobe batch ...`` is the command.

Modules: :mod:`.work` (what a worker does with one checkpoint), :mod:`.records` (what the store
knows of each result, the index), :mod:`.store` (the Zarr layout, writing and scanning),
:mod:`.integrity` (checksums), :mod:`.lock` (one writer per store), :mod:`.reading`
(``open_batch``), :mod:`.cluster` (Dask or this process), :mod:`.driver` (inputs, resume,
progress, summary).
Note that ``dynprobe.batch`` is the *function*; import from this package with
``from dynprobe.batching import open_batch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .driver import BatchSummary, batch, expand_paths
from .reading import open_batch

__all__ = ["batch", "open_batch", "BatchSummary", "expand_paths", "run_command"]


def run_command(paths: Sequence[str], probes: Sequence[str], out: str, params: Sequence[str], **options: Any) -> int:
    """The ``dynprobe batch`` command: run, print each failure and the summary line; the exit
    status is 1 when a checkpoint failed (its error is recorded in the store), else 0."""
    import warnings

    import click

    from ..options import probe_assignments

    with warnings.catch_warnings(record=True) as caught:  # shown as plain lines, not Python warnings
        try:
            summary = batch(list(paths), list(probes), out, probe_params=probe_assignments(params, list(probes)),
                            **options)
        finally:
            for w in caught:
                if issubclass(w.category, (RuntimeWarning, UserWarning)):
                    click.echo(f"warning: {str(w.message).splitlines()[0]}", err=True)
    for line in summary.failures:
        click.echo(f"failed: {line}", err=True)
    click.echo(f"dynprobe batch: {summary.line()}")
    return 1 if summary.failed else 0
