"""Classify recorded orbits: least period, distinct attractors, regime per swept value.

Inputs are the state signatures z_t (see :mod:`dynprobe.plugins.bifurcation.orbit`) of every sample
at every swept value, the per-sample largest Lyapunov exponent from a short QR run, and the
divergence flags. The rules, in order:

1. *Period*: the least p ≤ p_max with ‖z_{t+p} − z_t‖∞ ≤ tol·(1 + max|z|) over the last
   max(p, 8) recorded steps (the most converged part of the record).
2. *Attractors*: diverged samples form one group (escape to infinity); the others are grouped
   by geometry alone (:func:`same_attractor`): two recorded orbits are one attractor when the
   points of one lie, in the median, within three local nearest-neighbour spacings of the
   other's (spacings floored at ``attractor_tol`` relative to the orbit's size); two orbits that
   both met the period test are compared point by point, and only orbits without a period may
   also match by lying on the curve the other traces. (The probe then regroups the periodic
   samples by the exact orbit Newton's method refines them to: :mod:`.verify`.)
3. *Regime of an attractor*: when most of its samples met the period test, the most common
   period p → ``fixed_point`` (p = 1) or ``periodic``; otherwise by the mean largest exponent λ:
   ``chaotic`` (λ > λ_tol), ``quasi_periodic`` (|λ| ≤ λ_tol and the residual of the best
   period candidate not shrinking over the record), else an orbit still converging (λ < −λ_tol,
   or marginal at a bifurcation): its best period candidate, ``converged`` false.
   Escape → ``divergent``.
4. *Regime of a swept value*: that of its attractor when there is one, else ``multistable``.

References
----------
Attractors paper §3.2–3.3 (Def. 2, attractors and basins; contractive systems have one fixed
point), §4.1 (chaos in the bifurcation diagram); ChaosTools' ``orbitdiagram`` for the recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["REGIMES", "least_periods", "same_attractor", "Classification", "classify"]

REGIMES = ("fixed_point", "periodic", "quasi_periodic", "chaotic", "divergent", "multistable")
WINDOW = 8
CLOUD_POINTS = 128
CHUNK = 128


def _residuals(z: torch.Tensor, pmax: int, *, at_end: bool = True) -> torch.Tensor:
    """d[p-1, ...] = max over max(p, WINDOW) consecutive steps of ‖z_{t+p} − z_t‖∞, taken at the
    end of the record (or at its start); z: [T, ..., d]."""
    T = z.shape[0]
    out = torch.full((pmax, *z.shape[1:-1]), math.inf, dtype=z.dtype)
    for p in range(1, pmax + 1):
        w = max(p, WINDOW)
        if w + p > T:
            break
        lo = T - w - p if at_end else 0
        out[p - 1] = (z[lo + p:lo + p + w] - z[lo:lo + w]).abs().amax(dim=-1).amax(dim=0)
    return out


def least_periods(z: np.ndarray, *, pmax: int, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(period, candidate, shrinking, scale)`` per trajectory for signatures ``z: [T, ..., d]``.

    ``period`` is the least p whose residual is within ``tol·(1 + scale)`` (0 if none);
    ``candidate`` the p with the smallest relative residual, and ``shrinking`` whether that
    residual fell below 0.8× its value at the start of the record (an orbit still converging,
    as near a bifurcation, rather than a quasi-periodic one).
    """
    T = z.shape[0]
    zt = torch.as_tensor(z)
    scale = zt[T - min(T, 2 * max(pmax, WINDOW)):].abs().amax(dim=-1).amax(dim=0)
    res = _residuals(zt, pmax) / (1.0 + scale)
    ok = res <= tol
    period = torch.where(ok.any(0), ok.to(torch.int8).argmax(0) + 1, 0)
    candidate = res.argmin(dim=0)
    first = torch.gather(_residuals(zt, pmax, at_end=False) / (1.0 + scale), 0, candidate[None])[0]
    last = torch.gather(res, 0, candidate[None])[0]
    return (period.numpy().astype(np.int64), (candidate + 1).numpy().astype(np.int64),
            (last < 0.8 * first).numpy(), scale.numpy())


def _spacing(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour distance of every point within its own cloud; ``x: [P, n, d]``."""
    d = torch.cdist(x, x)
    d.diagonal(dim1=-2, dim2=-1).fill_(math.inf)
    return d.min(dim=-1).values


def _inside(near_d: torch.Tensor, near: torch.Tensor, spacing: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Whether at least half the points lie within 3 local spacings of the other cloud."""
    local = torch.maximum(torch.gather(spacing, 1, near), floor[:, None])
    return (near_d <= 3.0 * local).to(torch.float64).mean(dim=-1) >= 0.5


def _segment_distance(pts: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
    """``[R, n]``: distance of every point ``pts: [R, n, d]`` to the polyline through ``curve: [R, m, d]``."""
    a, ab = curve[:, :-1], curve[:, 1:] - curve[:, :-1]  # segments [R, m-1, d]
    ap = pts[:, :, None, :] - a[:, None]
    t = ((ap * ab[:, None]).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-300)[:, None]).clamp(0.0, 1.0)
    return (ap - t[..., None] * ab[:, None]).norm(dim=-1).min(dim=-1).values


def _near_polyline(pts: torch.Tensor, curve: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """``[R]``: at least half of ``pts`` lie on the curve that ``curve`` samples in time order.

    For a smooth attractor (an invariant circle whose rotation is close to rational), each
    recorded orbit visits a few phase clusters of its own, between another orbit's: the clouds
    do not interleave, yet both sample one curve. The tolerance is how far that curve departs
    from its sampled polygon — the median distance of the curve's points from the chord of their
    two neighbours — floored at 3·``floor``.
    """
    out = []
    for lo in range(0, pts.shape[0], 16):
        p, c, f = pts[lo:lo + 16], curve[lo:lo + 16], floor[lo:lo + 16]
        bend = _segment_distance(c[:, 1:-1, None, :].reshape(-1, 1, c.shape[-1]),
                                 torch.stack([c[:, :-2], c[:, 2:]], dim=2).reshape(-1, 2, c.shape[-1]))
        tol = torch.maximum(2.0 * bend.reshape(c.shape[0], -1).median(dim=-1).values, 3.0 * f)
        out.append((_segment_distance(p, c) <= tol[:, None]).to(torch.float64).mean(dim=-1) >= 0.5)
    return torch.cat(out)


def same_attractor(a: np.ndarray, b: np.ndarray, tol: np.ndarray | float, smooth: np.ndarray | bool = False) -> np.ndarray:
    """Whether recorded orbits lie on one attractor; ``a, b: [..., T, d]`` (batched), ``tol`` the
    absolute spacing floor.

    The points of one orbit must sit, in the median, within 3 local spacings of the other's
    points (spacings floored at ``tol``), in at least one direction: samples of one chaotic set
    interleave, converged copies of one cycle coincide, and a trajectory that lingers near part
    of a chaotic set still lies inside it. Distinct attractors are disjoint closed sets and fail
    in both directions. Where ``smooth`` (neither orbit chaotic), points of one orbit lying on the
    curve the other traces also count (:func:`_near_polyline`).
    """
    ta = torch.as_tensor(np.ascontiguousarray(a[..., -CLOUD_POINTS:, :]), dtype=torch.float64)
    tb = torch.as_tensor(np.ascontiguousarray(b[..., -CLOUD_POINTS:, :]), dtype=torch.float64)
    lead = ta.shape[:-2]
    ta, tb = ta.reshape(-1, *ta.shape[-2:]), tb.reshape(-1, *tb.shape[-2:])
    floor = torch.as_tensor(np.broadcast_to(np.asarray(tol, dtype=np.float64), lead).reshape(-1).copy())
    curved = torch.as_tensor(np.broadcast_to(np.asarray(smooth, dtype=bool), lead).reshape(-1).copy())
    out = torch.empty(ta.shape[0], dtype=torch.bool)
    for lo in range(0, ta.shape[0], CHUNK):
        sl = slice(lo, lo + CHUNK)
        a_, b_, f_ = ta[sl], tb[sl], floor[sl]
        d_ab = torch.cdist(a_, b_)
        da, na = d_ab.min(dim=-1)
        db, nb = d_ab.min(dim=-2)
        out[sl] = _inside(da, na, _spacing(b_), f_) | _inside(db, nb, _spacing(a_), f_)
        todo = curved[sl] & ~out[sl]
        if todo.any():
            out[sl][todo] = _near_polyline(a_[todo], b_[todo], f_[todo]) | _near_polyline(b_[todo], a_[todo], f_[todo])
    return out.reshape(lead).numpy()


def _same_cycle(zs: np.ndarray, period: np.ndarray, b: int, floor: np.ndarray) -> np.ndarray:
    """For values where samples 0 and b have one period p: whether b's last p points each lie
    within 3·floor of one of sample 0's last p points (the same cycle); ``zs: [S, B, T, d]``."""
    p = period[:, 0]
    w = int(p.max())
    t = np.arange(w)
    mask = t[None, :] >= (w - p)[:, None]  # [S, w]: the last p points
    a = torch.as_tensor(np.ascontiguousarray(zs[:, b, -w:]))
    c = torch.as_tensor(np.ascontiguousarray(zs[:, 0, -w:]))
    d = torch.cdist(a, c).numpy()
    d = np.where(mask[:, None, :], d, np.inf).min(axis=-1)  # nearest point of 0's cycle
    return np.where(mask, d <= 3.0 * floor[:, b, None], True).all(axis=-1)


def _one_attractor(zs: np.ndarray, period: np.ndarray, diverged: np.ndarray, floor: np.ndarray,
                   smooth: np.ndarray) -> np.ndarray:
    """Fast path, batched over swept values: ``[S]`` true where every sample reached the
    attractor of sample 0 (cycles compared point-wise, other orbits as clouds or curves)."""
    S, B = period.shape
    single = ~diverged.any(axis=1)
    cyc = single & (period > 0).all(axis=1) & (period == period[:, :1]).all(axis=1)
    for b in range(1, B):
        if cyc.any():
            cyc[cyc] &= _same_cycle(zs[cyc], period[cyc], b, floor[cyc])
    rest = np.flatnonzero(single & ~cyc)
    for lo in range(0, len(rest), CHUNK):
        idx = rest[lo:lo + CHUNK]
        single[idx] = _clouds_match_first(zs[idx], floor[idx], smooth[idx])
    return single | cyc


def _clouds_match_first(zs: np.ndarray, floor: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """``[R]``: every sample's cloud matches sample 0's (the :func:`same_attractor` test, with
    each cloud's spacings computed once); ``zs: [R, B, T, d]``, ``floor, smooth: [R, B]``."""
    clouds = torch.as_tensor(np.ascontiguousarray(zs[..., -CLOUD_POINTS:, :]), dtype=torch.float64)
    R, B, n, d = clouds.shape
    spacing = _spacing(clouds.reshape(R * B, n, d)).reshape(R, B, n)
    fl = torch.as_tensor(floor, dtype=torch.float64)
    ok = torch.ones(R, dtype=torch.bool)
    for b in range(1, B):
        dist = torch.cdist(clouds[:, b], clouds[:, 0])
        da, na = dist.min(dim=-1)
        db, nb = dist.min(dim=-2)
        match = _inside(da, na, spacing[:, 0], fl[:, b]) | _inside(db, nb, spacing[:, b], fl[:, b])
        curved = torch.as_tensor(smooth[:, b] & smooth[:, 0]) & ~match & ok
        if curved.any():
            c0, cb = clouds[curved, 0], clouds[curved, b]
            match[curved] = _near_polyline(cb, c0, fl[curved, b]) | _near_polyline(c0, cb, fl[curved, b])
        ok &= match
    return ok.numpy()


@dataclass
class Classification:
    """Per swept value (``[S]``) and per sample (``[S, B]``) results."""

    regime: np.ndarray  # [S] str
    period: np.ndarray  # [S] int: least period of the single periodic attractor, else 0
    attractors: np.ndarray  # [S] int: distinct attractors reached (escape counts as one)
    max_exponent: np.ndarray  # [S] float: max over finite attractors of their mean exponent
    converged: np.ndarray  # [S] bool: every periodic attractor met the period tolerance
    sample_period: np.ndarray  # [S, B] int (0: aperiodic or diverged)
    attractor: np.ndarray  # [S, B] int: attractor id per sample (-1: diverged)


def classify(
    z: np.ndarray,
    exponent: np.ndarray,
    diverged: np.ndarray,
    *,
    pmax: int,
    period_tol: float,
    attractor_tol: float,
    exponent_tol: float,
) -> Classification:
    """Classify every swept value from signatures ``z: [T, S, B, d]``, exponents and flags ``[S, B]``."""
    T, S, B, _ = z.shape
    period, candidate, shrinking, scale = least_periods(z, pmax=pmax, tol=period_tol)
    period = np.where(diverged, 0, period)
    regime = np.empty(S, dtype=object)
    out_period = np.zeros(S, dtype=np.int64)
    n_attr = np.zeros(S, dtype=np.int64)
    lam_max = np.full(S, np.nan)
    converged = np.ones(S, dtype=bool)
    attractor = np.full((S, B), -1, dtype=np.int64)
    zs = np.moveaxis(z, 0, -2)  # [S, B, T, d]
    floor = attractor_tol * (1.0 + np.maximum(scale, 0.0))
    # [S, B]: neither chaotic nor a converged cycle, so the orbit may trace a curve. A cycle is a
    # finite set of points: the polyline through a period-2 orbit (A, B, A, …) bends by |AB| at
    # every point, which would make every orbit within 2|AB| "lie on the curve" — the clocked
    # flip-flop network's 8 period-2 memories were counted as one attractor that way.
    smooth = (exponent <= exponent_tol) & (period == 0)
    single = _one_attractor(zs, period, diverged, floor, smooth)
    for s in range(S):
        groups: list[list[int]] = []
        if single[s]:
            groups.append([int(b) for b in np.flatnonzero(~diverged[s])])
        else:
            for b in np.flatnonzero(~diverged[s]):
                for g in groups:
                    if same_attractor(zs[s, b], zs[s, g[0]], floor[s, b], smooth[s, b] & smooth[s, g[0]]):
                        g.append(int(b))
                        break
                else:
                    groups.append([int(b)])
        kinds = []
        for gid, g in enumerate(groups):
            attractor[s, g] = gid
            found = period[s, g]
            lam = float(np.mean(exponent[s, g]))
            lam_max[s] = lam if np.isnan(lam_max[s]) else max(lam_max[s], lam)
            if 2 * int((found > 0).sum()) >= len(g):  # most members met the period test
                p = int(np.bincount(found[found > 0]).argmax())
                converged[s] &= bool((found == p).all())
            elif lam < -exponent_tol or (lam <= exponent_tol and shrinking[s, g].all()):  # still converging
                p = int(np.bincount(candidate[s, g]).argmax())
                converged[s] = False
            else:
                p = 0
                lam = float(np.mean(exponent[s, g][found == 0]))
            if p:
                kinds.append(("fixed_point" if p == 1 else "periodic", p))
            else:
                kinds.append(("chaotic" if lam > exponent_tol else "quasi_periodic", 0))
        escape = bool(diverged[s].any())
        n_attr[s] = len(groups) + int(escape)
        if n_attr[s] > 1:
            regime[s] = "multistable"
        elif escape:
            regime[s] = "divergent"
        else:
            regime[s], out_period[s] = kinds[0]
    return Classification(
        regime=regime.astype(str),
        period=out_period,
        attractors=n_attr,
        max_exponent=lam_max,
        converged=converged,
        sample_period=period,
        attractor=attractor,
    )
