"""``diagnose``: every installed probe that applies, with size-scaled defaults, and the verdicts.

The core knows no probe's math: each probe says whether it applies (``Probe.applies``), what
defaults suit a system of this size (``Probe.suggest``), and what its result means
(``Probe.verdicts``). This module only runs them (:mod:`dynprobe.planning` decides what), and
makes a run one can watch and interrupt without losing anything:

* each probe runs under a time limit (:mod:`dynprobe.deadline`; ``timeout``, default
  :data:`DEFAULT_TIMEOUT_S`); a probe that runs past it is reported as timed out;
* anything a probe raises, ``SystemExit`` included, is that probe's recorded failure;
* with ``out``, the results file is rewritten (atomically) after every probe, so what
  finished is on disk even if the process is killed; a result the format cannot hold is left
  out of the file and named;
* Ctrl-C stops the running probe and raises :class:`DiagnosisInterrupted`, which carries the
  diagnosis of what finished (the command line writes its report);
* a progress line per probe on stderr (:mod:`dynprobe.progress`), and the time each took.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr
from torch import nn

from .api import error_line, results_tree, run, wrap
from .deadline import DEFAULT_TIMEOUT_S, call_with_deadline
from .planning import Plan, plan
from .progress import ProbeProgress
from .registry import registry
from .results import check_output_path, extend_tree, to_json, write_tree
from .specs import Verdict
from .system import System
from .timings import format_duration, remember, timing_key

__all__ = ["Diagnosis", "DiagnosisInterrupted", "diagnose", "TOPICS", "DEFAULT_TIMEOUT_S"]

TOPICS = ("regime", "memory", "gradients", "attractors", "entropy")
"""Order of verdict topics in tables; other topics follow alphabetically."""

@dataclass
class Diagnosis:
    """What ``diagnose`` found: the results tree, the verdicts, and what was skipped or failed.

    ``elapsed`` holds each probe's wall time (ran, failed or timed out); ``unsaved`` the
    probes whose result the output file could not hold (they are in ``tree``, not in the
    file); ``interrupted`` is set when Ctrl-C ended the run, and ``pending`` lists the probes
    it did not reach.
    """

    system: System
    tree: xr.DataTree
    verdicts: list[Verdict]
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    elapsed: dict[str, float] = field(default_factory=dict)
    unsaved: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    pending: list[str] = field(default_factory=list)
    quick: bool = False
    timeout_s: float | None = None
    out: Path | None = None

    def _ordered(self) -> list[Verdict]:
        rank = {t: i for i, t in enumerate(TOPICS)}
        return sorted(self.verdicts, key=lambda v: (rank.get(v.topic, len(TOPICS)), v.topic, v.probe))

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(topic, verdict, evidence, probe · reference) sorted by topic."""
        return [(v.topic, v.verdict, v.evidence, f"{v.probe} · {v.reference}") for v in self._ordered()]

    def to_dataframe(self) -> Any:
        """The verdicts as a ``pandas.DataFrame`` with columns topic, verdict, evidence, probe,
        reference (sorted as :meth:`rows`); pandas comes with xarray."""
        import pandas as pd

        columns = ["topic", "verdict", "evidence", "probe", "reference"]
        return pd.DataFrame([(v.topic, v.verdict, v.evidence, v.probe, v.reference) for v in self._ordered()],
                            columns=columns)

    def __repr__(self) -> str:
        ran = ", ".join(self.tree.children) or "none"
        parts = [f"{len(self.verdicts)} verdicts", f"ran: {ran}"]
        if self.skipped:
            parts.append(f"skipped: {', '.join(self.skipped)}")
        if self.failed:
            parts.append(f"failed: {', '.join(self.failed)}")
        return f"<Diagnosis of {self.system.name}: {'; '.join(parts)}; {self.elapsed_s:.1f} s>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict table, then what was skipped or failed and why."""
        import html

        from .report import _table

        head = (f"<p><b>Diagnosis</b> of {html.escape(self.system.describe())} — "
                f"{len(self.tree.children)} probes in {self.elapsed_s:.1f} s</p>")
        out = [head, _table(["topic", "verdict", "evidence", "probe · reference"], self.rows())]
        not_run = [(n, "skipped", r) for n, r in self.skipped.items()] + [(n, "failed", e) for n, e in self.failed.items()]
        if not_run:
            out.append(_table(["probe", "status", "reason"], not_run))
        return "\n".join(out)

    @property
    def ran(self) -> list[str]:
        """Probes with a result, in the order they ran."""
        return list(self.tree.children)

    def time_shares(self) -> list[tuple[str, float, float]]:
        """(probe, seconds, share of the probes' total time) in the order they ran."""
        total = sum(self.elapsed.values()) or 1.0
        return [(name, t, t / total) for name, t in self.elapsed.items()]

    def status_attrs(self) -> dict[str, Any]:
        """What the saved tree's root records about the run (netCDF-safe)."""
        return {"skipped": to_json(self.skipped), "failed": to_json(self.failed), "unsaved": to_json(self.unsaved),
                "interrupted": int(self.interrupted), "pending": to_json(self.pending), "quick": int(self.quick),
                "timeout_s": float(self.timeout_s) if self.timeout_s is not None else -1.0,
                "elapsed_s": float(self.elapsed_s), "probe_elapsed_s": to_json(self.elapsed)}


class DiagnosisInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`diagnose`; ``.diagnosis`` holds what finished (already in ``out``)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(f"diagnosis interrupted after {len(diagnosis.ran)} probe(s)")
        self.diagnosis = diagnosis


class _Run:
    """The state of one diagnosis while it runs."""

    def __init__(self, system: System, planned: Plan, *, seed: int, timeout: float | None, out: Path | None,
                 quick: bool, show: ProbeProgress) -> None:
        self.system, self.plan, self.seed, self.timeout, self.show = system, planned, seed, timeout, show
        self.children: dict[str, xr.Dataset] = {}
        self.diagnosis = Diagnosis(system, results_tree(system, {}), [], dict(planned.skipped), dict(planned.failed),
                                   {p.name: dict(p.params) for p in planned.runs}, quick=quick, timeout_s=timeout,
                                   out=out)
        self.start = time.perf_counter()
        self.written = False  # the output file holds an earlier state of the tree

    def one(self, name: str, params: dict[str, Any], estimate: float | None) -> None:
        spec = registry().probe(name)
        if "seed" in {p.name for p in spec.params}:
            params.setdefault("seed", self.seed)
        self.diagnosis.params[name] = dict(params)
        self.show.start(name, estimate)
        outcome = call_with_deadline(lambda: run(name, self.system, **params), self.timeout,
                                     name=f"dynprobe probe {name}")
        d = self.diagnosis
        d.elapsed[name] = outcome.elapsed_s
        if outcome.timed_out:
            still = "; it is still running in the background" if outcome.abandoned else ""
            d.failed[name] = f"timed out after {format_duration(self.timeout or 0)} (--timeout){still}"
            warnings.warn(f"dynprobe.diagnose: probe {name!r} {d.failed[name]}", RuntimeWarning, stacklevel=4)
            self.show.finish(name, "timed out")
            return
        if outcome.error is not None:
            d.failed[name] = error_line(outcome.error)
            warnings.warn(f"dynprobe.diagnose: probe {name!r} failed: {d.failed[name]}", RuntimeWarning, stacklevel=4)
            self.show.finish(name, "failed", d.failed[name])
            return
        ds = outcome.value
        remember(timing_key(name, self.system, {**spec.defaults(), **params}), outcome.elapsed_s)
        self.children[name] = ds
        if spec.verdicts is not None:
            try:
                d.verdicts += [Verdict(v.topic, v.verdict, v.evidence, v.reference, probe=name) for v in spec.verdicts(ds)]
            except Exception as err:  # noqa: BLE001 - a broken verdict must not lose the result
                d.failed[f"{name} (verdicts)"] = error_line(err)
        self.save(added=name)
        self.show.finish(name, "not saved" if name in d.unsaved else "ok", format_duration(outcome.elapsed_s))

    def save(self, added: str | None = None) -> None:
        """Bring the tree (and the output file, if any) up to date with what finished: the
        first time the whole tree, then the one child ``added`` and the status attrs."""
        d = self.diagnosis
        d.tree = results_tree(self.system, self.children)
        d.elapsed_s = time.perf_counter() - self.start
        if d.out is None:
            return
        tree = d.tree.copy()
        tree.attrs.update(d.status_attrs())
        if self.written:
            left_out = extend_tree(tree, d.out, [added] if added is not None else [])
        else:
            left_out, self.written = write_tree(tree, d.out), True
        for node, reason in left_out.items():
            if node not in d.unsaved:
                d.unsaved[node] = reason
                warnings.warn(f"dynprobe.diagnose: the result of {node!r} cannot be saved in {str(d.out)!r} "
                              f"({reason}); it is left out of the file", RuntimeWarning, stacklevel=4)


def diagnose(
    target: System | nn.Module,
    *,
    probes: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    quick: bool = False,
    out: str | Path | None = None,
    progress: bool | None = None,
) -> Diagnosis:
    """Run every installed probe that applies to ``target`` and collect their verdicts.

    Parameters
    ----------
    target
        A System or a module (wrapped with :func:`dynprobe.wrap`).
    probes
        Restrict to these probes (default: all installed).
    params
        Per-probe overrides of the size-scaled defaults, ``{"lyapunov": {"k": 8}}``.
    seed
        Passed to every probe that has a ``seed`` parameter.
    timeout
        Seconds one probe may take before it is stopped and reported as timed out
        (``None``: no limit, probes run in the calling thread).
    quick
        The quick preset: every probe's work budgets (steps, samples, ...) scaled down,
        see :mod:`dynprobe.planning`; options given in ``params`` are kept as given.
    out
        Write the results tree here (``.nc`` / ``.zarr``) after every probe, atomically, with
        the run's status (skipped, failed, unsaved, interrupted, times) in the root attrs.
    progress
        One line per probe on stderr (``None``: only when stderr is a terminal).

    Returns
    -------
    Diagnosis
        ``tree`` (one child per probe that ran), ``verdicts``, ``skipped`` (probe → reason),
        ``failed`` (probe → error), ``elapsed`` (probe → seconds). A failing, crashing or
        hanging probe never loses the others' results.

    Raises
    ------
    DiagnosisInterrupted
        On Ctrl-C, with ``.diagnosis`` holding what finished (and written to ``out``).

    References
    ----------
    Each verdict cites the paper section that defines it (see ``Verdict.reference``).
    """
    system = target if isinstance(target, System) else wrap(target)
    params = {k: dict(v) for k, v in (params or {}).items()}
    out_path = check_output_path(out, what="diagnose: out") if out is not None else None
    if timeout is not None and not timeout > 0:
        raise ValueError(f"diagnose: timeout={timeout!r}; pass a positive number of seconds or None")
    planned = plan(system, probes, params, quick=quick)
    with ProbeProgress(progress) as show:
        state = _Run(system, planned, seed=seed, timeout=timeout, out=out_path, quick=quick, show=show)
        show.line(planned.estimate_line())
        state.save()  # the output exists from the start, with what was skipped or failed already
        todo = list(planned.runs)
        try:
            while todo:
                state.one(todo[0].name, dict(todo[0].params), todo[0].estimate_s)
                todo.pop(0)
        except KeyboardInterrupt as interrupt:
            d = state.diagnosis
            d.interrupted, d.pending = True, [p.name for p in todo if p.name not in state.children]
            if d.pending:
                show.finish(d.pending[0], "interrupted")
            state.save()
            raise DiagnosisInterrupted(d) from interrupt
        state.save()
    return state.diagnosis
