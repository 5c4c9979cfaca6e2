"""Roots of fᵖ(x) = x for any 1-D map on an interval: dense grid, then bisection.

For maps that are not piecewise linear (tanh networks, the logistic map) the fixed points of
fᵖ on [a, b] are bracketed by sign changes of fᵖ(x) − x on a uniform grid of step h and
refined by bisection to machine precision — batched over networks and brackets, the System's
own ``map`` doing every evaluation.

What a grid can miss: two roots inside one cell (fᵖ − id touches or crosses zero twice
between grid points). A cell without a sign change is flagged *suspect* when
g = fᵖ − id turns around there (the finite-difference slopes of the cell and its neighbours
change sign) and |g(xᵢ)| + |g(xᵢ₊₁)| ≤ 2·L·h, with L the largest of those slopes: only then can
g reach zero and come back inside the cell with a slope like its neighbours'. Cells where fᵖ is
not finite (overflow) are suspect too.
(A feature narrower than the grid step escapes any such test; refine the grid to be sure.)

References
----------
Scrambling paper §5 and Fig. 7 (fixed points of f and f³ read off a plot of the graphs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.linearize import jacobian

from .ragged import by_network

__all__ = ["GridRoots", "grid_roots", "system_evaluator", "BISECTIONS", "EPS", "POINTS_PER_CHUNK"]

BISECTIONS = 60
"""Bisection steps: a cell shrinks by 2⁻⁶⁰, below float64 resolution for any grid."""

POINTS_PER_CHUNK = 1 << 20
"""Grid points (networks × grid) evaluated at once; bounds the memory of an ensemble's pass."""

EPS = 1e-6
"""Where fᵖ(x) = x exactly at a grid point, the neighbouring cells start EPS·h away from it."""


@dataclass(frozen=True)
class GridRoots:
    """Roots ``x`` (network ``net``) of fᵖ = id found on the grid, and per network the number
    of suspect cells where a pair of roots could hide; ``step`` is the grid step h."""

    x: Tensor
    net: Tensor
    suspect: Tensor
    step: float


def _lead(system: System) -> int:
    return 1 if system.networks is None else system.networks


def _iterate(system: System, pts: Tensor, p: int) -> Tensor:
    """fᵖ at points ``pts[B, M]`` (one row per network)."""
    h = pts[..., None] if system.networks is not None else pts[0][:, None]
    with torch.no_grad():
        for _ in range(p):
            h = system.map(h)
    return h[..., 0] if system.networks is not None else h[:, 0][None]


def system_evaluator(system: System):
    """``f(x, net) -> (f(x), f'(x))`` for a 1-D System, at flat points of given networks."""
    B = _lead(system)

    def f(x: Tensor, net: Tensor) -> tuple[Tensor, Tensor]:
        if x.numel() == 0:
            return x, x
        pts, cols = by_network(x.to(system.dtype), net, B)
        h = pts[..., None] if system.networks is not None else pts[0][:, None]
        with torch.no_grad():
            fx = system.map(h)
        J = jacobian(system, h)[..., 0, 0]
        if system.networks is None:
            fx, J = fx[:, 0][None], J[None]
        else:
            fx = fx[..., 0]
        return fx[net, cols].to(x.dtype), J[net, cols].to(x.dtype)

    return f


def grid_roots(system: System, p: int, interval: tuple[float, float], points: int) -> GridRoots:
    """All sign changes (and exact zeros) of fᵖ(x) − x on ``points`` grid points of
    ``interval``, refined by bisection, for every network of ``system`` — ensembles in chunks
    of at most :data:`POINTS_PER_CHUNK` grid points in all."""
    if system.networks is None or system.networks * points <= POINTS_PER_CHUNK:
        return _grid_roots(system, p, interval, points)
    per = max(1, POINTS_PER_CHUNK // points)
    parts = []
    for a in range(0, system.networks, per):
        sub = system.with_params({k: v[a: a + per] for k, v in system.params.items()})
        part = _grid_roots(sub, p, interval, points)
        parts.append(GridRoots(part.x, part.net + a, part.suspect, part.step))
    return GridRoots(torch.cat([q.x for q in parts]), torch.cat([q.net for q in parts]),
                     torch.cat([q.suspect for q in parts]), parts[0].step)


def _grid_roots(system: System, p: int, interval: tuple[float, float], points: int) -> GridRoots:
    B = _lead(system)
    a, b = float(interval[0]), float(interval[1])
    xs = torch.linspace(a, b, points, dtype=system.dtype)
    grid = xs.expand(B, points).contiguous()
    g = _iterate(system, grid, p) - grid
    step = (b - a) / (points - 1)
    zero = g == 0
    # a cell's ends: the grid points, nudged inward by EPS*h where g vanishes exactly there
    # (clipped maps hit exact zeros, e.g. f(0) = 0), so roots next to them are still bracketed
    x_lo, x_hi = grid[:, :-1].clone(), grid[:, 1:].clone()
    g_lo, g_hi = g[:, :-1].clone(), g[:, 1:].clone()
    for xs_, gs_, sign in ((x_lo, g_lo, 1.0), (x_hi, g_hi, -1.0)):
        net_z, cell_z = (gs_ == 0).nonzero(as_tuple=True)
        if net_z.numel():
            nudged = xs_[net_z, cell_z] + sign * EPS * step
            pts, cols = by_network(nudged, net_z, B)
            xs_[net_z, cell_z] = nudged
            gs_[net_z, cell_z] = (_iterate(system, pts, p) - pts)[net_z, cols]
    cross = ((g_lo < 0) & (g_hi > 0)) | ((g_lo > 0) & (g_hi < 0))
    # suspect: no sign change, g turns around there (the finite-difference slopes of the cell and
    # its neighbours change sign), and values small enough to reach zero and come back
    slope = (g[:, 1:] - g[:, :-1]) / step
    pad = torch.cat([slope[:, :1], slope, slope[:, -1:]], dim=1)  # the ends repeat their slope
    left, mid, right = pad[:, :-2], pad[:, 1:-1], pad[:, 2:]
    L = torch.maximum(torch.maximum(left.abs(), mid.abs()), right.abs())
    turns = (left * mid <= 0) | (mid * right <= 0)
    quiet = ~cross & (g_lo != 0) & (g_hi != 0) & turns
    blind = ~torch.isfinite(g_lo) | ~torch.isfinite(g_hi)  # f^p overflowed: nothing can be said there
    suspect = ((quiet & (g_lo.abs() + g_hi.abs() <= 2 * L * step)) | blind).sum(1)

    net_c, cell = cross.nonzero(as_tuple=True)
    lo, hi = x_lo[net_c, cell], x_hi[net_c, cell]
    if lo.numel():
        L_, cols = by_network(lo, net_c, B)
        H_ = by_network(hi, net_c, B)[0]
        G_ = by_network(g_lo[net_c, cell], net_c, B)[0]
        for _ in range(BISECTIONS):
            mid = 0.5 * (L_ + H_)
            gm = _iterate(system, mid, p) - mid
            same = (gm > 0) == (G_ > 0)
            done = gm == 0
            L_ = torch.where(same & ~done, mid, L_)
            H_ = torch.where(same & ~done, H_, mid)
            L_ = torch.where(done, mid, L_)
        roots = (0.5 * (L_ + H_))[net_c, cols]
    else:
        roots = lo
    net_z, idx_z = zero.nonzero(as_tuple=True)
    x = torch.cat([roots, grid[net_z, idx_z]])
    net = torch.cat([net_c, net_z])
    order = torch.argsort(x, stable=True)
    order = order[torch.argsort(net[order], stable=True)]
    return GridRoots(x[order], net[order], suspect, step)
