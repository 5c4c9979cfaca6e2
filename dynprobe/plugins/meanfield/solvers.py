"""Vectorized fixed-point solvers that report non-convergence instead of a wrong number.

Both work on whole grids at once and keep iterating only the grid points not yet converged
(near criticality the variance map has slope → 1, where plain iteration needs thousands of
steps — "critical slowing down"; Newton's method does not, and at the degenerate point itself it
still halves the error every step).

* :func:`solve_variance` — the stable fixed point x* = T(x*) of a variance map T ≥ 0 (q* of
  eq. 2, Q* of eq. 7/21) by Newton's method on g = T(x) − x inside a bracket [lo, hi] with
  g(lo) ≥ 0 > g(hi) (lo = 0 to start: T(0) ≥ 0); where Newton is unusable (T′ ≥ 1, or its
  step leaves the bracket) it bisects, or — with no upper end found yet — takes the plain step
  x ← T(x). A point whose iterate runs off to infinity (e.g. ReLU with σ_w² > 2: no finite q*)
  or that has not met the tolerance after ``max_iter`` steps is reported ``converged = False``.
* :func:`solve_correlation` — the stable root of G(c) = M(c) − c on [−1, 1] (c* of eq. 2, 8)
  by Newton's method safeguarded with bisection (``rtsafe``), G(−1) ≥ 0 ≥ G(1) always holding
  for a correlation map. c = 1 is returned only when it is a *stable* fixed point (χ₁ ≤ 1).

References
----------
Mean-field paper §3.1 (q* and c*), App. C (existence of Q*), App. D (the approach to Q*);
Schoenholz et al. (2017) "Deep information propagation" (slopes χ_q, χ_c of the maps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FixedPoint", "solve_variance", "solve_correlation", "TOL", "MAX_ITER"]

TOL = 1e-14
"""Relative tolerance on |T(x) − x| (and on the bracket width for c*)."""
NOISE_TOL = 1e-10
"""A residual below this that stops shrinking is quadrature noise: accept (near double roots,
e.g. tanh at σ_w = 1 with no bias or input, where q* = 0 is approached only linearly)."""
MAX_ITER = 200
COARSE_ITER = 8
_DIVERGED = 1e100

VarianceMap = Callable[[np.ndarray, np.ndarray, bool], tuple[np.ndarray, ...]]
"""``f(x, index, extras) -> (T(x), T′(x), *more)`` for the grid points ``index`` (a flat integer
array); with ``extras=True`` ``more`` are further integrals at x, kept for the accepted iterate
(asked for only when a pass is likely the last, since they cost as much as the solve itself)."""
_LIKELY_LAST = 1e-6  # a previous residual this small makes the next (Newton) pass the last


@dataclass
class FixedPoint:
    """A solved grid: the fixed point, the map's slope there, extras, and what happened."""

    x: np.ndarray
    slope: np.ndarray
    converged: np.ndarray
    reason: np.ndarray  # "" where converged, else why not
    extras: tuple[np.ndarray, ...] = ()


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


def solve_variance(
    fmap: VarianceMap,
    x0: np.ndarray,
    *,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    coarse: VarianceMap | None = None,
    coarse_tol: float = 1e-5,
    block: int = 512,
) -> FixedPoint:
    """Stable fixed point of an increasing map T ≥ 0 at every grid point, from ``x0``.

    ``coarse`` (optional) is a cheaper, less accurate version of ``fmap`` used until the
    relative residual falls below ``coarse_tol`` (about its accuracy); ``fmap`` then finishes
    (Newton doubles the digits per step, so two or three accurate steps remain). The accepted
    x is the last point where ``fmap`` was evaluated, so ``slope`` and ``extras`` belong to it.
    The grid is solved ``block`` points at a time, so that every pass over a block stays in cache.
    """
    shape = np.shape(x0)
    x = _flat(x0).copy()
    size = x.size
    slope = np.full(size, np.nan)
    extras: list[np.ndarray] = []
    reason = np.full(size, "", dtype=object)
    previous = np.full(size, np.inf)
    pending: list[np.ndarray] = []  # accepted on a pass that skipped the extras
    stages = ([(coarse, coarse_tol)] if coarse is not None else []) + [(fmap, tol)]
    for start in range(0, size, block):
        points = np.arange(start, min(start + block, size))
        for stage, (f, stol) in enumerate(stages):
            final = stage == len(stages) - 1
            active = points[np.isfinite(x[points])]
            lo, hi = np.zeros(size), np.full(size, np.inf)  # a bracket per stage: g(lo) >= 0 > g(hi)
            for _ in range(max_iter if final else COARSE_ITER):
                if active.size == 0:
                    break
                xa = x[active]
                want = final and bool(np.all(previous[active] <= _LIKELY_LAST))
                t, dt, *more = f(xa, active, want)
                g = t - xa
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.abs(g) / np.maximum(xa, t)
                small = (rel <= stol) | ((xa <= 1e-200) & (t <= 1e-200))
                if final:
                    small |= (rel <= NOISE_TOL) & (rel >= 0.5 * previous[active])
                    previous[active] = rel
                    slope[active[small]] = dt[small]
                    if want:
                        if not extras:
                            extras = [np.full(size, np.nan) for _ in more]
                        for store, value in zip(extras, more):
                            store[active[small]] = value[small]
                    else:
                        pending.append(active[small])
                keep = ~small & np.isfinite(t) & (t < _DIVERGED)
                up = g >= 0
                lo[active] = np.where(up, np.maximum(lo[active], xa), lo[active])
                hi[active] = np.where(up, hi[active], np.minimum(hi[active], xa))
                la, ha = lo[active], hi[active]
                with np.errstate(divide="ignore", invalid="ignore"):
                    newton = xa - g / (dt - 1.0)
                # a Newton step below 0 (a root at x = 0, overshot by rounding) lands on 0 exactly
                newton = np.maximum(newton, 0.0)
                inside = (dt < 1.0 - 1e-12) & np.isfinite(newton) & (newton <= ha) & ((newton >= la) | (newton == 0.0))
                fallback = np.where(np.isfinite(ha), 0.5 * (la + ha), t)
                x[active] = np.where(small, xa, np.where(inside, newton, fallback))
                gone = ~small & ~keep
                reason[active[gone]] = "no finite fixed point: the variance grows without bound"
                x[active[gone]] = np.nan
                active = active[keep]
    late = np.concatenate(pending) if pending else np.zeros(0, dtype=np.int64)
    if late.size:
        t, dt, *more = fmap(x[late], late, True)
        if not extras:
            extras = [np.full(size, np.nan) for _ in more]
        for store, value in zip(extras, more):
            store[late] = value
    converged = np.isfinite(slope) & np.isfinite(x)
    stuck = ~converged & (reason == "")
    reason[stuck] = (f"did not converge in {max_iter} iterations (the variance was still growing: "
                     "probably no finite fixed point)")
    x[~converged] = np.nan
    return FixedPoint(x.reshape(shape), slope.reshape(shape), converged.reshape(shape),
                      reason.reshape(shape).astype(str), tuple(e.reshape(shape) for e in extras))


CorrelationMap = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``f(c, index) -> (M(c), M′(c))`` for the grid points ``index``."""


def solve_correlation(
    cmap: CorrelationMap,
    c0: np.ndarray,
    at_one: np.ndarray,
    chi_one: np.ndarray,
    *,
    tol: float = TOL,
    max_iter: int = 100,
) -> FixedPoint:
    """Stable root of M(c) = c in [−1, 1] at every grid point.

    ``at_one`` marks the points where c = 1 is an exact fixed point (Σ₁₂ = 1, or no input
    noise); there c* = 1 if ``chi_one`` (χ₁) ≤ 1, otherwise the root below 1 is found.
    """
    shape = np.shape(c0)
    c = _flat(c0).copy()
    size = c.size
    at_one = _flat(at_one).astype(bool)
    chi_one = _flat(chi_one)
    lo = np.full(size, -1.0)
    hi = np.full(size, 1.0)
    slope = np.full(size, np.nan)
    done = at_one & (chi_one <= 1.0)
    c[done] = 1.0
    slope[done] = chi_one[done]
    active = np.flatnonzero(~done & np.isfinite(c))
    for _ in range(max_iter):
        if active.size == 0:
            break
        ca = c[active]
        m, dm = cmap(ca, active)
        g = m - ca
        ok = (np.abs(g) <= tol) | (hi[active] - lo[active] <= tol)
        slope[active[ok]] = dm[ok]
        pos = g >= 0
        lo[active] = np.where(pos, ca, lo[active])
        hi[active] = np.where(pos, hi[active], ca)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = ca - g / (dm - 1.0)
        inside = (newton > lo[active]) & (newton < hi[active]) & np.isfinite(newton)
        c[active] = np.where(inside, newton, 0.5 * (lo[active] + hi[active]))
        c[active[ok]] = ca[ok]
        active = active[~ok]
    converged = np.isfinite(slope)
    reason = np.where(converged, "", f"c* did not converge in {max_iter} iterations").astype(object)
    c[~converged] = np.nan
    return FixedPoint(c.reshape(shape), slope.reshape(shape), converged.reshape(shape),
                      reason.reshape(shape).astype(str))
