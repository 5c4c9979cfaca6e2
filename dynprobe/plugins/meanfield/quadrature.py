"""Gaussian expectations E[f(√q z + μ)] and E[f(u₁) g(u₂)] by graded Gauss–Legendre panels.

Plain Gauss–Hermite fails once q is large: φ(√q z + μ) then changes within a band of width
~1/√q around z₀ = (b − μ)/√q for each breakpoint b of φ (tanh and σ have poles at x = ±iπ/2,
±iπ, ReLU a kink at 0), so a rule spread over the whole Gaussian misses it (measured in the design phase: χ₁ off by
0.5 with 64 nodes at σ_w² = 16). It fails for small q too, when the feature sits in the
Gaussian's tail (|μ| ≫ √q). Here z ∈ [−L, L] (L = 10; the mass beyond is < 1e-22) is cut at
fixed edges that resolve the Gaussian, at every z₀, and at z₀ ± (w/√q)·4^k, k = 0, 1, 2 — a
geometric grading, so that the singularity sits near a panel end at every scale — and each
panel gets ``n`` Gauss–Legendre nodes. Edges outside [−L, L] are clipped (zero-width panels get
zero weight), so every grid point has the same number of nodes and a block of grid points is
one array operation. The grid is processed in cache-sized blocks.

Accuracy, against ``scipy.integrate.quad`` over q ∈ [1e-5, 1e4], μ ∈ [−6, 5] for φ², φ′², φ′⁴
of tanh and σ (tests/test_meanfield_quadrature.py): :data:`FINE` (12 nodes × 11 panels) ≤ 2e-9
relative, :data:`COARSE` (6 × 11) ≤ 2e-4 (the first Newton steps only).

The correlated 2-D rule (eq. 3, 39): u₁ = √q z₁ + μ, u₂ = √q (c z₁ + √(1−c²) z₂) + μ; the outer
z₁ rule is cut where u₁ crosses a breakpoint and where the z₂-averaged u₂ integrand does
(z₁ = z₀/c), the inner z₂ rule (one per outer node) where u₂ crosses a breakpoint.

References
----------
Mean-field paper §3.1 eq. (2)–(3) (the Gaussian measure D_q z), App. E eq. (39).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["RuleSpec", "FINE", "COARSE", "FINE_2D", "expect_1d", "expect_2d", "CachedRule1D", "Z_MAX"]

Z_MAX = 10.0
"""Half-width of the integration range in standard-normal units."""
_Q_FLOOR = 1e-300  # q = 0 is evaluated as the limit q → 0⁺ (ReLU's kink at μ = 0 averages)
_BLOCK = 512  # grid points per block (keeps the temporaries in cache)


@dataclass(frozen=True)
class RuleSpec:
    """A panelled rule: ``n`` nodes per panel, panels graded around each breakpoint."""

    n: int
    width: float = 1.0
    levels: int = 3
    grade: float = 4.0
    fixed: tuple[float, ...] = (-Z_MAX, -4.0, 0.0, 4.0, Z_MAX)

    @property
    def steps(self) -> np.ndarray:
        return self.width * self.grade ** np.arange(self.levels)


FINE = RuleSpec(12, width=1.5)
COARSE = RuleSpec(6, width=1.5)
FINE_2D = RuleSpec(10, width=1.5, levels=3)


@lru_cache(maxsize=32)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _edges(centers: np.ndarray, scale: np.ndarray, spec: RuleSpec) -> np.ndarray:
    """Sorted panel edges in [−L, L]: the fixed ones, every center, and center ± scale·steps."""
    lead = centers.shape[:-1]
    fixed = np.broadcast_to(np.asarray(spec.fixed), lead + (len(spec.fixed),))
    offsets = (scale[..., None] * spec.steps).reshape(lead + (-1,))
    c = np.repeat(centers, spec.levels, axis=-1)
    with np.errstate(invalid="ignore"):
        edges = np.concatenate([fixed, centers, c - offsets, c + offsets], axis=-1)
    edges = np.nan_to_num(edges, nan=Z_MAX, posinf=Z_MAX, neginf=-Z_MAX)
    return np.sort(np.clip(edges, -Z_MAX, Z_MAX), axis=-1)


def _nodes(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights (Legendre weight × normal density) on panels ``edges [..., P+1]``;
    panels of zero width at every point of the block are dropped."""
    xi, om = _legendre(n)
    lo, hi = edges[..., :-1], edges[..., 1:]
    used = (hi > lo).reshape(-1, lo.shape[-1]).any(axis=0)
    if not used.all():
        lo, hi = lo[..., used], hi[..., used]
    lo, hi = lo[..., None], hi[..., None]
    half = 0.5 * (hi - lo)
    z = lo + half * (xi + 1.0)
    w = half * om * np.exp(-0.5 * z * z)
    shape = lo.shape[:-2] + (-1,)
    w = w.reshape(shape)
    # normalized to total mass 1 (the mass beyond ±L is < 1e-22): constants are integrated exactly
    return z.reshape(shape), w / w.sum(axis=-1, keepdims=True)


def _rule_1d(q: np.ndarray, mu: np.ndarray, b: np.ndarray, spec: RuleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal nodes z and weights for the points (q, μ): ``[G, K]`` each."""
    root = np.sqrt(np.maximum(q, _Q_FLOOR))[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        centers = (b - mu[:, None]) / root
        scale = np.broadcast_to(1.0 / root, centers.shape)
    return _nodes(_edges(centers, scale, spec), spec.n)


def _block_1d(q: np.ndarray, mu: np.ndarray, b: np.ndarray, spec: RuleSpec) -> tuple[np.ndarray, np.ndarray]:
    z, w = _rule_1d(q, mu, b, spec)
    return np.sqrt(np.maximum(q, _Q_FLOOR))[:, None] * z + mu[:, None], w


Integrands = Callable[..., Sequence[np.ndarray]]


def expect_1d(q: np.ndarray, mu: np.ndarray, breakpoints: Sequence[float], integrands: Integrands,
              spec: RuleSpec = FINE) -> np.ndarray:
    """E over x ~ N(μ, q) of each array ``integrands(x)`` returns: shape ``[k, size]`` for flat
    ``q``, ``mu`` of length ``size``."""
    q, mu = np.broadcast_arrays(np.asarray(q, dtype=np.float64).ravel(), np.asarray(mu, dtype=np.float64).ravel())
    b = np.asarray(tuple(breakpoints) or (0.0,), dtype=np.float64)
    parts = []
    for start in range(0, q.size, _BLOCK):
        sl = slice(start, start + _BLOCK)
        x, w = _block_1d(q[sl], mu[sl], b, spec)
        parts.append(np.stack([np.einsum("ik,ik->i", f, w) for f in integrands(x)]))
    if not parts:
        return np.zeros((len(integrands(np.zeros((0, 1)))), 0))
    return np.concatenate(parts, axis=1)


class CachedRule1D:
    """:func:`expect_1d` for an iterative solver: the panels built for (q, μ) at some grid points
    are reused while q stays within ``rtol`` of the q they were built for (a rule in z is exact
    for any q; only the alignment of its panels with the breakpoints depends on q, and that
    shifts by a fraction ~rtol·|μ| of the innermost panel). Saves rebuilding nodes and weights
    in the last Newton steps, where q moves by < 1e-4."""

    def __init__(self, breakpoints: Sequence[float], spec: RuleSpec = FINE, rtol: float = 1e-2) -> None:
        self.b = np.asarray(tuple(breakpoints) or (0.0,), dtype=np.float64)
        self.spec, self.rtol = spec, rtol
        self._idx = np.zeros(0, dtype=np.int64)
        self._q = self._z = self._w = np.zeros(0)

    def expect(self, q: np.ndarray, mu: np.ndarray, idx: np.ndarray, integrands: Integrands) -> np.ndarray:
        """Like :func:`expect_1d` for the flat grid points ``idx`` (sorted, unique)."""
        pos = np.minimum(np.searchsorted(self._idx, idx), max(self._idx.size - 1, 0))
        hit = self._idx.size > 0 and bool(np.all(self._idx[pos] == idx))
        if hit and np.all(np.abs(q - self._q[pos]) <= self.rtol * self._q[pos]):
            whole = idx.size == self._idx.size
            z, w = (self._z, self._w) if whole else (self._z[pos], self._w[pos])
        else:
            z, w = _rule_1d(q, mu, self.b, self.spec)
            self._idx, self._q, self._z, self._w = np.array(idx), np.array(q), z, w
        x = np.sqrt(np.maximum(q, _Q_FLOOR))[:, None] * z + mu[:, None]
        return np.stack([np.einsum("ik,ik->i", f, w) for f in integrands(x)])


def _block_2d(q: np.ndarray, mu: np.ndarray, c: np.ndarray, b: np.ndarray, spec: RuleSpec):
    c = np.clip(c, -1.0, 1.0)
    s = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    root = np.sqrt(np.maximum(q, _Q_FLOOR))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zb = (b - mu[:, None]) / root[:, None]  # [G, B]
        outer = np.concatenate([zb, zb / c[:, None]], axis=-1)
        # u₁'s features have width ~1/√q in z₁; the z₂-averaged u₂ integrand's, ~min(1/√q, s)/|c|
        smooth = np.minimum(1.0 / root, np.maximum(s, 1e-8)) / np.abs(c)
        scale = np.concatenate([np.broadcast_to(1.0 / root[:, None], zb.shape),
                                np.broadcast_to(smooth[:, None], zb.shape)], axis=-1)
        z1, w1 = _nodes(_edges(outer, scale, spec), spec.n)
        inner = (zb[:, None, :] - c[:, None, None] * z1[..., None]) / s[:, None, None]  # [G, K1, B]
        scale = np.broadcast_to((1.0 / (root * s))[:, None, None], inner.shape)
    z2, w2 = _nodes(_edges(inner, scale, spec), spec.n)  # [G, K1, K2]
    r = root[:, None, None]
    x1 = r * z1[..., None] + mu[:, None, None]
    x2 = r * (c[:, None, None] * z1[..., None] + s[:, None, None] * z2) + mu[:, None, None]
    return x1, x2, w1[..., None] * w2


def expect_2d(q: np.ndarray, mu: np.ndarray, c: np.ndarray, breakpoints: Sequence[float], integrands: Integrands,
              spec: RuleSpec = FINE_2D) -> np.ndarray:
    """E over (u₁, u₂) jointly normal (means μ, variances q, correlation c) of each array
    ``integrands(x1, x2)`` returns (``x1`` broadcasts against ``x2``): shape ``[k, size]``."""
    q, mu, c = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64).ravel() for a in (q, mu, c)))
    b = np.asarray(tuple(breakpoints) or (0.0,), dtype=np.float64)
    block = max(1, _BLOCK // 128)  # the 2-D rule has ~100x the nodes of the 1-D one
    parts = []
    for start in range(0, q.size, block):
        sl = slice(start, start + block)
        x1, x2, w = _block_2d(q[sl], mu[sl], c[sl], b, spec)
        parts.append(np.stack([np.einsum("ijk,ijk->i", np.broadcast_to(f, w.shape), w) for f in integrands(x1, x2)]))
    if not parts:
        return np.zeros((0, 0))
    return np.concatenate(parts, axis=1)
