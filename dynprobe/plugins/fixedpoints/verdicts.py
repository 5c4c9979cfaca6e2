"""What a ``fixedpoints`` result says: terminal summary rows and the ``attractors`` verdict of
``diagnose`` ("8 stable fixed points: a 3-bit memory").

K stable fixed points can hold log₂K bits between inputs (a flip-flop of b bits needs 2ᵇ);
the saddles between them, counted by unstable dimension, are the routes the state takes when an
input flips a memory. A search that did not end ``complete`` is said to be so.

References
----------
Sussillo & Barak (2013), Neural Computation 25(3), §4 (the 3-bit flip-flop: 8 stable fixed
points, saddles between them).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from dynprobe import Verdict

__all__ = ["summary", "verdicts", "memory_phrase"]

_REF = "Sussillo & Barak 2013 §2-4 (fixed points by minimising q, linearization)"


def memory_phrase(stable: int) -> str:
    """"8 stable fixed points: a 3-bit memory", "5 stable fixed points: 5 memory states (2.3 bits)"…"""
    if stable == 0:
        return "no stable fixed point"
    if stable == 1:
        return "one stable fixed point"
    bits = math.log2(stable)
    if bits.is_integer():
        return f"{stable} stable fixed points: a {int(bits)}-bit memory"
    return f"{stable} stable fixed points: {stable} memory states ({bits:.1f} bits)"


def _by_index(ds: xr.Dataset, sel: np.ndarray) -> str:
    dims = ds.unstable_dims.values[sel]
    counts = np.bincount(dims[dims >= 0]) if dims.size else np.zeros(0, dtype=int)
    parts = [f"{c} with {i} unstable direction{'s' if i != 1 else ''}" for i, c in enumerate(counts) if c and i]
    return ", ".join(parts)


def _coverage(ds: xr.Dataset) -> str:
    starts, unseen = int(ds.starts_used), float(ds.unseen)
    if bool(ds.complete):
        return (f"search complete: the last {ds.attrs.get('patience', 2)} rounds of {ds.attrs.get('batch', '?')} starts "
                f"found nothing new ({starts} starts)")
    return f"search NOT complete after {starts} starts (chance that one more start finds a new point ≈ {unseen:.2g})"


def _one(ds: xr.Dataset) -> list[Verdict]:
    valid = ds.valid.values.astype(bool)
    fixed = valid & (ds.kind.values == "fixed")
    stable = fixed & ds.stable.values.astype(bool)
    n_fixed, n_stable, n_slow = int(fixed.sum()), int(stable.sum()), int((valid & (ds.kind.values == "slow")).sum())
    unstable = _by_index(ds, fixed & ~stable)
    head = memory_phrase(n_stable)
    if n_stable == 1 and n_fixed == 1:
        head += " and no other fixed point"
    elif n_stable == 0 and n_fixed:
        head += f"; {n_fixed} unstable"
    evidence = f"{n_fixed} fixed point{'s' if n_fixed != 1 else ''} ({n_stable} stable" + (f", {unstable})" if unstable else ")")
    if n_slow:
        evidence += f"; {n_slow} slow point{'s' if n_slow != 1 else ''}"
    if n_fixed:
        evidence += f"; |F(h) - h| <= {np.nanmax(ds.speed.values[fixed]):.1e}"
    if n_stable:
        tau = ds.timescale.values[stable][:, 0]
        evidence += f"; slowest decay at a stable point τ = {np.max(tau):.3g} steps"
    return [Verdict("attractors", head, f"{evidence}; {_coverage(ds)}", _REF)]


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """The attractors verdict: stable fixed points as memory states, with the saddles, slow
    points, accuracy, the slowest decay at a stable point and the search's coverage as evidence."""
    if "network" in ds.dims or "condition" in ds.dims:
        stable = np.atleast_1d(ds.stable_points.values).ravel()
        what = "networks" if "network" in ds.dims else "held inputs"
        if "network" in ds.dims and "condition" in ds.dims:
            what = "(network, input) pairs"
        lo, hi = int(stable.min()), int(stable.max())
        span = f"{lo}" if lo == hi else f"{lo} to {hi} (median {np.median(stable):g})"
        complete = np.atleast_1d(ds.complete.values).ravel()
        return [Verdict("attractors", f"stable fixed points: {span} over {stable.size} {what}",
                        f"{int(complete.sum())} of {complete.size} searches complete; fixed points "
                        f"{int(np.min(ds.fixed_points))} to {int(np.max(ds.fixed_points))}", _REF)]
    return _one(ds)


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Counts by stability and unstable dimension, slow points, coverage and accuracy."""
    if "network" in ds.dims or "condition" in ds.dims:
        return [("stable fixed points", " ".join(str(int(v)) for v in np.ravel(ds.stable_points.values)[:32])),
                ("fixed points", " ".join(str(int(v)) for v in np.ravel(ds.fixed_points.values)[:32])),
                ("searches complete", f"{int(np.sum(ds.complete))} of {np.size(ds.complete.values)}")]
    valid = ds.valid.values.astype(bool)
    fixed = valid & (ds.kind.values == "fixed")
    stable = fixed & ds.stable.values.astype(bool)
    rows = [("fixed points", f"{int(fixed.sum())} ({int(stable.sum())} stable"
             + (f"; {_by_index(ds, fixed & ~stable)})" if (fixed & ~stable).any() else ")")),
            ("slow points", str(int((valid & (ds.kind.values == "slow")).sum()))),
            ("coverage", _coverage(ds)),
            ("new points per round", " ".join(str(int(v)) for v in ds.new_points.values if v >= 0))]
    if fixed.any():
        rows.append(("largest |F(h) - h|", f"{np.nanmax(ds.speed.values[fixed]):.2e}"))
    return rows
