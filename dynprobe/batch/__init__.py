"""Batch analysis of checkpoints: probes × checkpoints on Dask, into a resumable Zarr store.

``dynprobe.batch(paths, probes, out, ...)`` (:func:`~dynprobe.batch.driver.batch`) runs the job
and returns a :class:`BatchSummary`; ``dynprobe.open_batch(out)`` reads the store back as a
DataTree with each probe's results along ``checkpoint``; ``dynprobe batch ...`` is the command.

Modules: :mod:`.work` (what a worker does with one checkpoint), :mod:`.store` (the Zarr layout,
records and index, ``open_batch``), :mod:`.driver` (inputs, resume, Dask, progress, summary).
Note that ``dynprobe.batch`` is the *function*; import from this package with
``from dynprobe.batch import open_batch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .driver import BatchSummary, batch, expand_paths
from .store import open_batch

__all__ = ["batch", "open_batch", "BatchSummary", "expand_paths", "parse_probe_params", "run_command"]


def parse_probe_params(items: Sequence[str], probes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["lyapunov.k=8", ...]`` → ``{"lyapunov": {"k": 8}}``, each value converted by the
    type annotation of the probe's parameter. With a single probe the ``probe.`` may be left out."""
    from ..errors import ProbeParameterError, did_you_mean
    from ..options import coerce, parse_assignments
    from ..registry import registry

    out: dict[str, dict[str, Any]] = {}
    for key, text in parse_assignments(list(items)).items():
        name, dot, param = key.partition(".")
        if not dot:
            if len(probes) != 1:
                raise ProbeParameterError(
                    f"--param {key}={text}: name the probe, e.g. --param {probes[0]}.{key}={text}")
            name, param = probes[0], key
        if name not in probes:
            raise ProbeParameterError(f"--param {key}={text}: probe {name!r} is not run; probes: {', '.join(probes)}"
                                      f"{did_you_mean(name, probes)}")
        known = {p.name: p for p in registry().probe(name).params}
        if param not in known:
            raise ProbeParameterError(f"--param {key}={text}: probe {name!r} has no parameter {param!r}; parameters: "
                                      f"{', '.join(known)}{did_you_mean(param, known)}")
        out.setdefault(name, {})[param] = coerce(text, known[param].annotation, name=key)
    return out


def run_command(paths: Sequence[str], probes: Sequence[str], out: str, params: Sequence[str], **options: Any) -> int:
    """The ``dynprobe batch`` command: run, print each failure and the summary line; the exit
    status is 1 when a checkpoint failed (its error is recorded in the store), else 0."""
    import click

    summary = batch(list(paths), list(probes), out, probe_params=parse_probe_params(params, list(probes)), **options)
    for line in summary.failures:
        click.echo(f"failed: {line}", err=True)
    click.echo(f"dynprobe batch: {summary.line()}")
    return 1 if summary.failed else 0
