"""Check what the classifier found against orbit finders.

* :func:`refine_attractors` — every sample that met the period test (period p) is refined by
  Newton's method on Fᵖ(h) − h (the core orbit machinery, :mod:`dynprobe.orbits`, in float64);
  samples are then grouped by the exact orbit they converged to (up to cyclic shift), which
  replaces the geometric grouping for them. A network with many attractors (a 3-bit flip-flop:
  8 memories) is counted right however close its orbits are, and an orbit still converging is
  not split into copies.
* :func:`verify_periods` — the installed ``period3`` probe (looked up through the registry at
  run time, never imported, so the bifurcation probe works with or without it) is run on up to
  ``limit`` swept values whose attractor is a converged periodic orbit of period p ≥ 2; the
  period counts as *confirmed* when one of the orbits it returns (any variable with ``phase`` and
  ``unit`` dimensions) passes through the states our trajectory visits, within tolerance.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.orbits import PeriodMap, cluster, least_period, refine, search_system

from .classify import Classification

__all__ = ["verify_periods", "refine_attractors", "FINDER", "REFINE_FLOPS"]

FINDER = "period3"
CHECK_BUDGET = {"starts": 32, "rounds": 2}
"""Search budget asked of the finder (where it takes these options): it has to confirm one orbit
that the trajectory already visits, not to find every orbit."""
STACKED_MAX_N = 16
"""Largest N refined on the stacked ensemble at once. The full Jacobians Newton needs come from N
tangents ``vmap``-ed over per-network parameters, which costs far more than N tangent passes
(GRU, N = 512, three networks: 15 s stacked, 0.4 s network by network, the same matrices); below
this size the stacked call is the cheaper one (one call instead of a Python loop over values)."""
REFINE_FLOPS = 2e10
"""Largest estimated cost (floating-point operations) of the Newton refinement of a sweep."""


def refine_attractors(ensemble: System, final: torch.Tensor, cls: Classification, scale: np.ndarray,
                      tol: float) -> tuple[Classification, np.ndarray, str]:
    """Group the periodic samples by the orbit Newton's method refines them to.

    Parameters
    ----------
    ensemble
        The swept System (one network per value).
    final
        Last recorded states ``[S, B, N]``.
    cls
        The geometric classification (its ``sample_period`` says which samples to refine).
    scale
        Size of each sample's orbit ``[S, B]`` (the signature scale): a refined orbit must lie
        within 10·``tol``·(1 + scale) of the sample's last state, and two are one within 1e-6 of it.
    tol
        Relative distance (the classifier's ``attractor_tol``).

    Returns
    -------
    (classification, checked, note)
        The classification with attractor ids, counts, regimes and periods updated where the
        refinement decided; ``checked [S]`` int8: 1 every periodic sample's orbit was confirmed,
        0 some were not (their geometric groups are kept), −1 no periodic sample; and a note.
    """
    S, B = cls.sample_period.shape
    n = final.shape[-1]
    periods = sorted({int(p) for p in np.unique(cls.sample_period) if p > 0})
    checked = np.full(S, -1, dtype=np.int8)
    if not periods:
        return cls, checked, "no periodic samples"
    picks = {p: _samples_of_period(cls.sample_period, p) for p in periods}
    cost = sum(rows.size * idx.shape[1] * n ** 3 * p for p, (rows, idx, _) in picks.items()) * 8.0
    if cost > REFINE_FLOPS:
        return cls, checked, f"skipped (about {cost:.1e} flops for N = {n}; limit {REFINE_FLOPS:.0e})"
    target = search_system(ensemble)
    h_all = final.to(torch.float64)
    size_all = torch.as_tensor(1.0 + np.maximum(scale, 0.0), dtype=torch.float64)
    label = np.full((S, B), -1, dtype=np.int64)
    for p, (rows, idx, real) in picks.items():
        sub = target if target.networks is None or rows.size == S else target.take(rows)
        pmap = PeriodMap(sub, p)
        h = h_all[torch.as_tensor(rows)[:, None], torch.as_tensor(idx)]
        size = size_all[torch.as_tensor(rows)[:, None], torch.as_tensor(idx)]
        ref = _refine(target, sub, rows, p, h)
        near = torch.linalg.vector_norm(ref.h - h, dim=-1) <= 10 * tol * size  # it was (nearly) on that orbit
        ok = ref.converged & near & (least_period(pmap, ref.h, 1e-6 * size) == p) & torch.as_tensor(real)
        lab, _ = cluster(pmap.points(ref.h), ok, 1e-6 * size.amax(-1))
        mine = ok.numpy()
        label[rows[:, None].repeat(idx.shape[1], 1)[mine], idx[mine]] = (lab.numpy() + B * p)[mine]  # ids per period
    return _regroup(cls, label, checked), checked, f"Newton on F^p from every periodic sample (periods {periods})"


def _refine(target: System, sub: System, rows: np.ndarray, p: int, h: torch.Tensor) -> Any:
    """Newton on Fᵖ from ``h [R, k, N]``: on the stacked ensemble ``sub`` for small N, network by
    network (``target.network(row)``) beyond :data:`STACKED_MAX_N`."""
    if sub.networks is None or h.shape[-1] <= STACKED_MAX_N:
        return refine(PeriodMap(sub, p), h, max_iter=20)
    parts = [refine(PeriodMap(target.network(int(row)), p), h[r:r + 1], max_iter=20) for r, row in enumerate(rows)]
    return type(parts[0])(*(torch.cat([getattr(q, f.name) for q in parts]) for f in fields(parts[0])))


def _samples_of_period(sample_period: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows [R], idx [R, k], real [R, k])``: the swept values with a sample of least period p,
    the indices of those samples (padded by repeating the first), and which entries are not padding."""
    has = sample_period == p
    rows = np.flatnonzero(has.any(1))
    k = int(has[rows].sum(1).max()) if rows.size else 0
    idx = np.zeros((rows.size, k), dtype=np.int64)
    real = np.zeros((rows.size, k), dtype=bool)
    for r, s in enumerate(rows):
        mine = np.flatnonzero(has[s])
        idx[r] = np.concatenate([mine, np.full(k - mine.size, mine[0])])
        real[r, :mine.size] = True
    return rows, idx, real


def _regroup(cls: Classification, label: np.ndarray, checked: np.ndarray) -> Classification:
    """New attractor ids: refined orbits by their label, other samples by their geometric group."""
    attractor, count = cls.attractor.copy(), cls.attractors.copy()
    regime, period, converged = cls.regime.astype(object), cls.period.copy(), cls.converged.copy()
    for s in range(attractor.shape[0]):
        periodic = cls.sample_period[s] > 0
        if not periodic.any():
            continue
        done = label[s] >= 0
        checked[s] = int(bool(done[periodic].all()))
        keys = [("orbit", int(label[s, b])) if done[b] else ("group", int(cls.attractor[s, b]))
                for b in range(attractor.shape[1]) if cls.attractor[s, b] >= 0]
        ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
        alive = np.flatnonzero(cls.attractor[s] >= 0)
        attractor[s, alive] = [ids[k] for k in keys]
        escape = int(cls.regime[s] == "divergent" or (cls.attractor[s] < 0).any())
        count[s] = len(ids) + escape
        if count[s] > 1:
            regime[s], period[s] = "multistable", 0
        elif keys and keys[0][0] == "orbit" and not escape:
            p = int(cls.sample_period[s, alive[0]])
            regime[s], period[s], converged[s] = ("fixed_point" if p == 1 else "periodic"), p, True
    return Classification(regime=regime.astype(str), period=period, attractors=count, max_exponent=cls.max_exponent,
                          converged=converged, sample_period=cls.sample_period, attractor=attractor)


def _orbit_points(ds: xr.Dataset) -> list[np.ndarray]:
    """Orbits in a finder result as ``[phase, unit]`` arrays, one per orbit."""
    out: list[np.ndarray] = []
    for var in ds.data_vars.values():
        if "phase" in var.dims and "unit" in var.dims and var.dtype.kind == "f":
            arr = var.transpose(..., "phase", "unit").values
            out += list(arr.reshape(-1, arr.shape[-2], arr.shape[-1]))
    return out


def _matches(points: np.ndarray, cycle: np.ndarray, tol: float) -> bool:
    """Whether every point of our cycle ``[p, N]`` is within ``tol`` of a point of ``points``."""
    pts = points[np.isfinite(points).all(-1)]
    if not len(pts):
        return False
    d = np.abs(cycle[:, None, :] - pts[None, :, :]).max(-1)
    return bool((d.min(axis=1) <= tol * (1.0 + np.abs(cycle).max())).all())


def verify_periods(ensemble: System, final: torch.Tensor, cls: Any, *, limit: int, tol: float) -> tuple[np.ndarray, str]:
    """``(verified [S] int8, note)``: 1 confirmed, 0 the finder found no such orbit, −1 not checked."""
    S = ensemble.networks or 1
    verified = np.full(S, -1, dtype=np.int8)
    if limit <= 0:
        return verified, "off (verify=0)"
    from dynprobe.api import run
    from dynprobe.registry import registry

    finder = registry().probes().get(FINDER)
    if finder is None:
        return verified, f"{FINDER} not installed"
    names = {p.name for p in finder.params}
    if "period" not in names:
        return verified, f"{FINDER} ({finder.plugin}) has no 'period' option"
    todo = [s for s in range(S) if cls.regime[s] == "periodic" and cls.period[s] >= 2 and cls.converged[s]]
    step = max(1, len(todo) // limit) if todo else 1
    failures = []
    for s in todo[::step][:limit]:
        p = int(cls.period[s])
        net = ensemble.network(s)
        b = int(np.flatnonzero(cls.attractor[s] >= 0)[0])
        with torch.no_grad():
            cycle = net.trajectory(final[s, b], p - 1).cpu().numpy().reshape(p, -1)
        kwargs = {"period": p, **({"seed": 0} if "seed" in names else {}),
                  **{k: v for k, v in CHECK_BUDGET.items() if k in names}}
        try:
            ds = run(FINDER, net, **kwargs)
        except Exception as err:  # noqa: BLE001 - a finder failure leaves the value unchecked
            failures.append(f"s[{s}]: {type(err).__name__}: {err}"[:160])
            continue
        orbits = _orbit_points(ds)
        if not orbits:
            failures.append(f"s[{s}]: result has no variable with phase and unit dimensions")
            continue
        verified[s] = int(any(_matches(o, cycle, tol) for o in orbits))
    note = f"{FINDER} ({finder.plugin} {finder.version})".strip()
    if failures:
        note += "; unchecked: " + "; ".join(failures[:3])
    return verified, note
