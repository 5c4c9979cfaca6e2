"""Continuous piecewise-linear maps of the real line, batched over networks, composed exactly.

A map is stored by its knots (breakpoints), its values there and the slope of every piece —
the two unbounded end pieces included — so f, f², f³, … are known on the whole real line,
not only on a grid. Two layouts:

* :class:`DenseMap` — the base map f of every network, padded to a common knot count
  (``[network, K]``; padding is ``+inf``). Evaluation is a batched ``searchsorted``.
* :class:`RaggedMap` — an iterate fᵗ whose knot count varies wildly between networks, stored
  flat (CSR style: knots of network 0, then network 1, …). :func:`compose` builds f ∘ g from
  a dense f and a ragged g without any Python loop over networks: the new knots are the
  g-preimages of f's knots, found segment by segment with one batched comparison.

Slopes are carried exactly as products (slope of f∘g = slope of g × slope of f on the piece
g lands in), so a knot whose two sides have equal slopes (e.g. where g maps into a clipped,
flat part of f) is recognized and dropped, and piece counts are exact.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §3–4 (periodic points of f,
f³); Chatziafratis et al. (2020b) for linear pieces of iterated ReLU maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .ragged import search

__all__ = ["DenseMap", "RaggedMap", "compose", "fixed_points"]

@dataclass(frozen=True)
class DenseMap:
    """f for every network: ``x[b, :n[b]]`` ascending knots (``+inf`` after), ``y`` the values
    there, ``s[b, j]`` the slope of piece j (piece 0 = left end ray, piece n = right end ray;
    padded with the right ray's slope)."""

    x: Tensor
    y: Tensor
    s: Tensor
    n: Tensor

    @property
    def networks(self) -> int:
        return int(self.x.shape[0])

    def piece(self, v: Tensor, net: Tensor, *, right: bool = False) -> Tensor:
        """Index of the piece containing ``v`` (at a knot: the piece to its left, or to its right
        with ``right=True``), for points ``v[i]`` of networks ``net[i]``."""
        return search(self.x, v, net, right=right)

    def __call__(self, v: Tensor, net: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(v), f'(v))`` for points ``v`` of networks ``net`` (flat tensors)."""
        j = self.piece(v, net)
        anchor = (j - 1).clamp(min=0)
        xa, ya = self.x[net, anchor], self.y[net, anchor]
        slope = self.s[net, j]
        return ya + slope * (v - xa), slope

    def ragged(self) -> RaggedMap:
        """The same maps in the flat layout."""
        B, K = self.x.shape
        valid = torch.arange(K, device=self.x.device) < self.n[:, None]
        start = torch.zeros(B + 1, dtype=torch.long, device=self.x.device)
        start[1:] = torch.cumsum(self.n, 0)
        net = torch.arange(B, device=self.x.device)[:, None].expand(B, K)[valid]
        return RaggedMap(self.x[valid], self.y[valid], self.s[:, 1:][valid], self.s[:, 0].clone(), net, start)


@dataclass(frozen=True)
class RaggedMap:
    """fᵗ for every network, flat: knots ``x``, values ``y``, slope to the right of each knot
    ``s`` (the right end ray for a network's last knot), left end-ray slope ``s_left[b]``,
    network index ``net`` per knot and offsets ``start[b] : start[b + 1]``. Every network has
    at least one knot."""

    x: Tensor
    y: Tensor
    s: Tensor
    s_left: Tensor
    net: Tensor
    start: Tensor

    @property
    def networks(self) -> int:
        return int(self.start.shape[0] - 1)

    @property
    def counts(self) -> Tensor:
        """Knots per network."""
        return self.start[1:] - self.start[:-1]

    def is_last(self) -> Tensor:
        """Knot is its network's last (its right neighbour is the end ray)."""
        return torch.arange(self.x.shape[0], device=self.x.device) == (self.start[1:] - 1)[self.net]

    def slope_left(self) -> Tensor:
        """Slope to the left of each knot."""
        left = self.s_left[self.net]
        if self.x.shape[0] > 1:
            prev = torch.cat([self.s[:1], self.s[:-1]])
            first = torch.arange(self.x.shape[0], device=self.x.device) == self.start[:-1][self.net]
            left = torch.where(first, left, prev)
        return left


def _prune(x: Tensor, y: Tensor, s: Tensor, s_left: Tensor, net: Tensor, networks: int) -> RaggedMap:
    """Knots already in (network, x) order → :class:`RaggedMap`, merging repeated knots
    (zero-length pieces) and dropping knots with equal slopes on both sides."""
    T = x.shape[0]
    idx = torch.arange(T, device=x.device)
    repeat = torch.zeros(T, dtype=torch.bool, device=x.device)
    if T > 1:
        repeat[1:] = (x[1:] == x[:-1]) & (net[1:] == net[:-1])
        merged_next = torch.cat([repeat[1:], torch.zeros(1, dtype=torch.bool, device=x.device)])
        s = torch.where(merged_next, s[(idx + 1).clamp(max=T - 1)], s)  # a merged knot passes on its right slope
    counts = torch.bincount(net, minlength=networks)
    start = torch.zeros(networks + 1, dtype=torch.long, device=x.device)
    start[1:] = torch.cumsum(counts, 0)
    keep = (RaggedMap(x, y, s, s_left, net, start).slope_left() != s) & ~repeat
    kept = torch.bincount(net[keep], minlength=networks)
    keep |= (idx == start[:-1][net]) & (kept == 0)[net]  # a network keeps at least one (possibly trivial) knot
    x, y, s, net = x[keep], y[keep], s[keep], net[keep]
    start[1:] = torch.cumsum(torch.bincount(net, minlength=networks), 0)
    return RaggedMap(x, y, s, s_left, net, start)


def compose(f: DenseMap, g: RaggedMap) -> RaggedMap:
    """h = f ∘ g on the whole real line, exactly (up to float rounding of the knot positions).

    Knots of h: g's knots and, on every piece of g (end rays included), the preimages of the
    knots of f inside that piece's image. Values at new knots are f's knot values; slopes are
    products of slopes.
    """
    B = g.networks
    T = g.x.shape[0]
    dev, dt = g.x.device, g.x.dtype
    last = g.is_last()
    nxt = torch.arange(T, device=dev) + 1
    nxt = torch.where(last, torch.arange(T, device=dev), nxt)
    # one "segment" to the right of every knot (an interior piece or the right ray) ...
    seg_net = g.net
    xa, ya, slope = g.x, g.y, g.s
    xb, yb = g.x[nxt], g.y[nxt]
    inf = torch.full_like(ya, float("inf"))
    lo = torch.where(last, torch.where(slope > 0, ya, torch.where(slope < 0, -inf, ya)), torch.minimum(ya, yb))
    hi = torch.where(last, torch.where(slope > 0, inf, torch.where(slope < 0, ya, ya)), torch.maximum(ya, yb))
    # ... and the left ray of every network, anchored at its first knot
    first = g.start[:-1]
    sl = g.s_left
    yf = g.y[first]
    infb = torch.full_like(yf, float("inf"))
    lo_l = torch.where(sl > 0, -infb, torch.where(sl < 0, yf, yf))
    hi_l = torch.where(sl > 0, yf, torch.where(sl < 0, infb, yf))
    seg_net = torch.cat([seg_net, torch.arange(B, device=dev)])
    xa = torch.cat([xa, g.x[first]])
    ya = torch.cat([ya, yf])
    xb = torch.cat([xb, g.x[first]])
    yb = torch.cat([yb, yf])
    slope = torch.cat([slope, sl])
    is_ray = torch.cat([last, torch.ones(B, dtype=torch.bool, device=dev)])
    lo = torch.cat([lo, lo_l])
    hi = torch.cat([hi, hi_l])

    # f's knots strictly inside (lo, hi): a contiguous range i0 <= j < i1 of its sorted knots
    i0 = search(f.x, lo, seg_net, right=True)
    i1 = torch.minimum(search(f.x, hi, seg_net, right=False), f.n[seg_net])
    many = (i1 - i0).clamp(min=0)
    seg = torch.repeat_interleave(torch.arange(many.shape[0], device=dev), many)
    offset = torch.cumsum(many, 0) - many
    kidx = i0[seg] + torch.arange(seg.shape[0], device=dev) - offset[seg]
    net_new = seg_net[seg]
    c = f.x[net_new, kidx]
    span = yb[seg] - ya[seg]
    ray = is_ray[seg]
    safe_span = torch.where(ray | (span == 0), torch.ones_like(span), span)
    safe_slope = torch.where(slope[seg] == 0, torch.ones_like(span), slope[seg])
    x_new = torch.where(
        ray,
        xa[seg] + (c - ya[seg]) / safe_slope,
        xa[seg] + (c - ya[seg]) / safe_span * (xb[seg] - xa[seg]),
    )
    y_new = f.y[net_new, kidx]
    gs = slope[seg]  # slope of g on this piece, in the direction of increasing x
    s_new = gs * f.s[net_new, torch.where(gs > 0, kidx + 1, kidx)]

    # old knots: value f(g(x)); slope to the right = g's slope times f's slope on the side g moves to
    j_dn = f.piece(g.y, g.net, right=False)
    j_up = f.piece(g.y, g.net, right=True)
    anchor = (j_dn - 1).clamp(min=0)
    y_old = f.y[g.net, anchor] + f.s[g.net, j_dn] * (g.y - f.x[g.net, anchor])
    s_old = torch.where(g.s == 0, torch.zeros_like(g.s), g.s * f.s[g.net, torch.where(g.s > 0, j_up, j_dn)])
    left_piece = torch.where(sl > 0, torch.zeros_like(f.n), f.n)
    s_left = torch.where(sl == 0, torch.zeros_like(sl), sl * f.s[torch.arange(B, device=dev), left_piece])

    # final order without sorting: per network, the left ray's new knots, then each old knot
    # followed by the new knots of the piece to its right, each run in increasing x
    m_right, m_left = many[:T], many[T:]
    pos_old = torch.arange(T, device=dev) + torch.cumsum(m_right, 0) - m_right + torch.cumsum(m_left, 0)[g.net]
    rank = torch.where(slope[seg] > 0, kidx - i0[seg], i1[seg] - 1 - kidx)
    on_left = seg >= T
    pos_new = torch.where(
        on_left,
        pos_old[first[(seg - T).clamp(min=0)]] - m_left[(seg - T).clamp(min=0)] + rank,
        pos_old[seg.clamp(max=max(T - 1, 0))] + 1 + rank,
    )
    total = T + seg.shape[0]
    x_all = torch.empty(total, dtype=dt, device=dev)
    y_all, s_all = torch.empty_like(x_all), torch.empty_like(x_all)
    n_all = torch.empty(total, dtype=torch.long, device=dev)
    for pos, xs, ys, ss, ns in ((pos_old, g.x, y_old, s_old, g.net), (pos_new, x_new, y_new, s_new, net_new)):
        x_all[pos], y_all[pos], s_all[pos], n_all[pos] = xs.to(dt), ys.to(dt), ss.to(dt), ns
    return _prune(x_all, y_all, s_all, s_left.to(dt), n_all, B)


def _line_root(xa: Tensor, ya: Tensor, s: Tensor) -> Tensor:
    """Solution of ya + s (x - xa) = x (where s != 1), in intercept form."""
    return (ya - s * xa) / torch.where(s == 1, torch.ones_like(s), 1 - s)


def fixed_points(h: RaggedMap, interval: tuple[float, float] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """All isolated solutions of h(x) = x: ``(x, net, continuum)``.

    ``x`` and ``net`` list the roots network by network in ascending order (restricted to
    ``interval`` if given); ``continuum[b]`` is True when h(x) = x on a whole piece of network
    b (then those points are not listed).
    """
    B = h.networks
    dev = h.x.device
    d = h.y - h.x
    last = h.is_last()
    T = h.x.shape[0]
    idx = torch.arange(T, device=dev)
    nxt = torch.where(last, idx, idx + 1)
    d0, d1 = d, d[nxt]
    cross = ~last & (((d0 < 0) & (d1 > 0)) | ((d0 > 0) & (d1 < 0)))
    # on a piece, h(x) = y_a + s (x - x_a): the root is (y_a - s x_a) / (1 - s), anchored at the
    # end nearer the root (exact for flat pieces; no cancellation against far-away knots)
    near = torch.where(d0.abs() <= d1.abs(), idx, nxt)
    seg_roots = _line_root(h.x[near], h.y[near], h.s).clamp(h.x, h.x[nxt])[cross]
    seg_net = h.net[cross]
    at_knot = d == 0
    # right rays: root to the right of the last knot; left rays: to the left of the first
    r_root = _line_root(h.x, h.y, h.s)
    r_ok = last & (h.s != 1) & (r_root > h.x)
    r_root = r_root[r_ok]
    first = h.start[:-1]
    slm = h.s_left - 1
    dl = d[first]
    l_root = _line_root(h.x[first], h.y[first], h.s_left)
    l_ok = (slm != 0) & (l_root < h.x[first])
    l_root = l_root[l_ok]
    sr = h.s - 1
    continuum = torch.zeros(B, dtype=torch.bool, device=dev)
    flat_seg = ~last & (d0 == 0) & (d1 == 0)
    flat_ray = last & (d == 0) & (sr == 0)
    continuum[h.net[flat_seg | flat_ray]] = True
    continuum |= (slm == 0) & (dl == 0)
    x = torch.cat([seg_roots, h.x[at_knot], r_root, l_root])
    net = torch.cat([seg_net, h.net[at_knot], h.net[r_ok], torch.arange(B, device=dev)[l_ok]])
    if interval is not None:
        keep = (x >= interval[0]) & (x <= interval[1])
        x, net = x[keep], net[keep]
    order = torch.argsort(x, stable=True)
    order = order[torch.argsort(net[order], stable=True)]
    return x[order], net[order], continuum
