"""From the roots of fᵖ(x) = x of 1-D maps to periodic orbits of least period p; Sharkovsky.

Every root x of fᵖ(x) = x lies on an orbit whose least period d divides p. Iterating f from
x decides d (the first divisor with |fᵈ(x) − x| ≤ tol·(1 + |x|)); the orbits of least period
exactly p are then counted once each by keeping only the root that is the smallest point of
its own orbit. The count is checked: p roots per orbit.

Sharkovsky's order 3 ▷ 5 ▷ 7 ▷ … ▷ 2·3 ▷ 2·5 ▷ … ▷ 4·3 ▷ … ▷ 2ⁿ ▷ … ▷ 4 ▷ 2 ▷ 1: a continuous
map of the line with a point of period p has points of every period q with p ▷ q. Period 3
comes first, so it implies every period (Li & Yorke 1975) and an uncountable scrambled set.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 3.1 and Fact 1;
Sharkovsky (1964); Li & Yorke (1975).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

ROOT_SLACK = 1e6
"""A root x of fᵖ = id must satisfy |fᵖ(x) − x| ≤ ROOT_SLACK·tol·(1 + |x|) (1e-3 at tol = 1e-9:
only gross failures are caught; the steepness of fᵖ amplifies honest rounding)."""

__all__ = ["ROOT_SLACK", "Orbits1D", "classify_roots", "sharkovsky_key", "sharkovsky_leader", "implied_text"]

Evaluator = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``f(x, net) -> (f(x), f'(x))`` for flat points ``x`` of networks ``net``."""


@dataclass(frozen=True)
class Orbits1D:
    """Orbits of least period p: ``points[o, phase]`` in dynamical order starting from the
    orbit's smallest point, ``net[o]``, ``multiplier[o]`` (slope of fᵖ, Π f'(xᵢ)),
    ``residual[o]`` (max |fᵖ(xᵢ) − xᵢ|), and per network the number of roots of least period
    p (``least_p_roots``), which must equal p × the number of orbits."""

    points: Tensor
    net: Tensor
    multiplier: Tensor
    residual: Tensor
    least_p_roots: Tensor


def classify_roots(
    x: Tensor, net: Tensor, f: Evaluator, p: int, networks: int, *, tol: float,
    interval: tuple[float, float] | None = None,
) -> Orbits1D:
    """Orbits of least period exactly ``p`` among the roots ``x`` (network ``net``) of fᵖ = id.

    With ``interval``, only orbits lying entirely inside it are kept.
    """
    pts = [x]
    slope = torch.ones_like(x)
    for _ in range(p):
        fx, d = f(pts[-1], net)
        slope = slope * d
        pts.append(fx)
    orbit = torch.stack(pts, dim=1)  # [R, p + 1]
    scale = tol * (1.0 + x.abs())
    not_root = (orbit[:, p] - x).abs() > ROOT_SLACK * scale
    if bool(not_root.any()):
        warnings.warn(
            f"period3: {int(not_root.sum())} candidate root(s) of f^{p}(x) = x have residuals up to "
            f"{float((orbit[:, p] - x).abs().max()):.3g}; they are left out (a numerical failure: please report it)",
            RuntimeWarning, stacklevel=3,
        )
    least = torch.full_like(net, p)
    for d in sorted((d for d in range(1, p) if p % d == 0), reverse=True):
        least = torch.where((orbit[:, d] - x).abs() <= scale, torch.full_like(least, d), least)
    exact = (least == p) & ~not_root
    smallest = torch.ones_like(exact)
    for i in range(1, p):
        smallest &= x < orbit[:, i]
    keep = exact & smallest
    if interval is not None:
        lo, hi = interval
        inside = ((orbit[:, :p] >= lo - scale[:, None]) & (orbit[:, :p] <= hi + scale[:, None])).all(1)
        keep &= inside
    least_p = torch.bincount(net[exact], minlength=networks)
    res = torch.zeros_like(x)
    if keep.any():  # residual at every point of the orbit: |f^p(x_i) - x_i|
        ring = orbit[keep, :p]
        cur = ring.reshape(-1)
        rep = net[keep].repeat_interleave(p)
        for _ in range(p):
            cur = f(cur, rep)[0]
        res = (cur.reshape(-1, p) - ring).abs().amax(1)
    return Orbits1D(orbit[keep, :p], net[keep], slope[keep], res if keep.any() else x[:0], least_p)


def sharkovsky_key(p: int) -> tuple[int, int, int]:
    """Sort key of Sharkovsky's order: smaller key ⇒ earlier (stronger) period."""
    if p < 1:
        raise ValueError(f"periods are >= 1, got {p}")
    m, q = 0, p
    while q % 2 == 0:
        m, q = m + 1, q // 2
    return (0, m, q) if q > 1 else (1, -m, 0)


def sharkovsky_leader(found: Tensor, periods: list[int]) -> Tensor:
    """Per network (rows of ``found[network, period]``), the found period that comes first in
    Sharkovsky's order; 0 where none was found."""
    order = sorted(range(len(periods)), key=lambda i: sharkovsky_key(periods[i]))
    leader = torch.zeros(found.shape[0], dtype=torch.long)
    for i in reversed(order):
        leader = torch.where(found[:, i], torch.full_like(leader, periods[i]), leader)
    return leader


def implied_text(p: int) -> str:
    """What a point of least period ``p`` implies for a continuous map of the line."""
    if p == 0:
        return "no periodic point found among the periods checked"
    if p == 3:
        return "period 3: points of every period and an uncountable scrambled set (Li-Yorke chaos)"
    m, q = 0, p
    while q % 2 == 0:
        m, q = m + 1, q // 2
    if q > 1:
        return (f"period {p}: every period after it in Sharkovsky's order (all 2^j*r with j > {m}, or j = {m} "
                f"and odd r > {q}, and all powers of 2); positive topological entropy")
    return f"period {p}: periods {', '.join(str(2**j) for j in range(m, -1, -1))}"
