"""Cross-check detected periods with an installed periodic-orbit finder (the ``period3`` probe).

The finder belongs to another plugin and is looked up through the registry at run time — it is
never imported — so the bifurcation probe works with or without it. For up to ``limit`` swept
values whose attractor is a converged periodic orbit of period p ≥ 2, the finder is run on that
single network with ``period=p``; the period counts as *confirmed* when one of the orbits it
returns (any variable with ``phase`` and ``unit`` dimensions) passes through the states our
trajectory visits, within tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from dynprobe import System

__all__ = ["verify_periods", "FINDER"]

FINDER = "period3"


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
        kwargs = {"period": p, **({"seed": 0} if "seed" in names else {})}
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
