"""``diagnose``: every installed probe that applies, with size-scaled defaults, and the verdicts.

The core knows no probe's math: each probe says whether it applies (``Probe.applies``), what
defaults suit a system of this size (``Probe.suggest``), and what its result means
(``Probe.verdicts``). This module only runs them, keeps going when one fails, and collects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xarray as xr
from torch import nn

from .api import results_tree, run_guarded, wrap
from .errors import NotApplicable
from .registry import registry
from .specs import Verdict
from .system import System

__all__ = ["Diagnosis", "diagnose", "TOPICS"]

TOPICS = ("regime", "memory", "gradients", "attractors", "entropy")
"""Order of verdict topics in tables; other topics follow alphabetically."""


@dataclass
class Diagnosis:
    """What ``diagnose`` found: the results tree, the verdicts, and what was skipped or failed."""

    system: System
    tree: xr.DataTree
    verdicts: list[Verdict]
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    elapsed_s: float = 0.0

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


def _plan(system: System, probes: Iterable[str] | None, params: Mapping[str, Mapping[str, Any]]) -> tuple[dict, dict]:
    reg = registry()
    names = list(probes) if probes is not None else list(reg.probes())
    plan: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        spec = reg.probe(name)
        reason = spec.refusal(system)
        if reason:
            skipped[name] = reason
            continue
        try:
            chosen = dict(spec.suggest(system)) if spec.suggest is not None else {}
        except NotApplicable as reason_err:
            if name not in params:  # the user's own parameters may make it apply: run it then
                skipped[name] = str(reason_err)
                continue
            chosen = {}
        chosen.update(params.get(name, {}))
        missing = [p.name for p in spec.params if p.required and p.name not in chosen]
        if missing:
            skipped[name] = f"needs parameters {', '.join(missing)} (pass them with --param {name}.{missing[0]}=...)"
            continue
        plan[name] = chosen
    return plan, skipped


def diagnose(
    target: System | nn.Module,
    *,
    probes: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
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

    Returns
    -------
    Diagnosis
        ``tree`` (one child per probe that ran), ``verdicts``, ``skipped`` (probe → reason),
        ``failed`` (probe → error). A failing probe never loses the others' results.

    References
    ----------
    Each verdict cites the paper section that defines it (see ``Verdict.reference``).
    """
    system = target if isinstance(target, System) else wrap(target)
    params = {k: dict(v) for k, v in (params or {}).items()}
    plan, skipped = _plan(system, probes, params)
    reg = registry()
    children: dict[str, xr.Dataset] = {}
    verdicts: list[Verdict] = []
    failed: dict[str, str] = {}
    start = time.perf_counter()
    for name, chosen in plan.items():
        spec = reg.probe(name)
        if "seed" in {p.name for p in spec.params}:
            chosen.setdefault("seed", seed)
        ds, error = run_guarded("diagnose", name, system, chosen)
        if ds is None:
            failed[name] = error
            continue
        children[name] = ds
        if spec.verdicts is not None:
            try:
                verdicts += [Verdict(v.topic, v.verdict, v.evidence, v.reference, probe=name) for v in spec.verdicts(ds)]
            except Exception as err:  # noqa: BLE001 - a broken verdict must not lose the result
                failed[f"{name} (verdicts)"] = f"{type(err).__name__}: {err}"
    return Diagnosis(system, results_tree(system, children), verdicts, skipped, failed, plan,
                     time.perf_counter() - start)
