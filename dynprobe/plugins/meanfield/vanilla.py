"""Mean-field theory of the vanilla (Elman) RNN, eq. (1)–(4) of the mean-field paper.

e^t = W h^{t−1} + V x^t + b, h^t = φ(e^t), W_ij ~ N(0, σ_w²/N), V_ij ~ N(0, σ_v²/M),
b_i ~ N(μ_b, σ_b²); in the wide, untied limit e^t is Gaussian with variance q^t and the two
copies driven by inputs of correlation Σ₁₂ have pre-activation correlation c^t:

* q* = σ_w² E[φ(√q* z + μ_b)²] + σ_v² R + σ_b²                           (eq. 2, diagonal)
* q* c* = σ_w² E_{c*}[φ(u₁) φ(u₂)] + σ_v² R Σ₁₂ + σ_b²                   (eq. 2, off-diagonal)
* χ₁ = σ_w² E[φ′(u)²],  χ_c* = σ_w² E_{c*}[φ′(u₁) φ′(u₂)]                 (eq. 4)

The Jacobian J_t = D_{φ′(e)} W has no diagonal part, so in eq. (12)–(13) μ₁ = σ₁² = 0,
μ₂ = χ₁ and σ₂² = σ_w⁴ E[φ′⁴] − μ₂².

References
----------
Mean-field paper §3.1; Poole et al. (2016); Schoenholz et al. (2017).
"""

from __future__ import annotations

import numpy as np

from .activations import Activation
from .quadrature import COARSE, CachedRule1D, expect_2d
from .solvers import FixedPoint, solve_correlation, solve_variance

__all__ = ["solve_q", "moments", "correlation_map", "solve_c"]


def solve_q(act: Activation, sw2: np.ndarray, c0: np.ndarray, mu: np.ndarray) -> FixedPoint:
    """q* on a flat grid: the stable fixed point of q ↦ σ_w² E[φ²] + c0 (c0 = σ_v² R + σ_b²).

    The slope is χ_q = σ_w² E[φ′² + φφ″]; ``extras`` are E[φ²], E[φ], E[φ′²], E[φ′⁴] at q*.
    """

    def solve_integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
        f, d, ff2 = act.parts(x)
        return f * f, d * d + ff2

    def all_integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
        f, d, ff2 = act.parts(x)
        d2 = d * d
        return f * f, d2 + ff2, f, d2, d2 * d2

    def make(integrate):
        def fmap(q: np.ndarray, idx: np.ndarray, extras: bool) -> tuple[np.ndarray, ...]:
            e_f2, e_slope, *more = integrate(q, idx, all_integrands if extras else solve_integrands)
            return (sw2[idx] * e_f2 + c0[idx], sw2[idx] * e_slope, *((e_f2, *more) if extras else ()))

        return fmap

    fine, rough = CachedRule1D(act.breakpoints), CachedRule1D(act.breakpoints, COARSE, rtol=0.5)
    q0 = sw2 + c0 + 1.0  # above the stable root for bounded φ: iterates then decrease to it
    return solve_variance(
        make(lambda q, idx, integrands: fine.expect(q, mu[idx], idx, integrands)), q0,
        coarse=make(lambda q, idx, integrands: rough.expect(q, mu[idx], idx, integrands)),
    )


def moments(fp: FixedPoint, sw2: np.ndarray) -> dict[str, np.ndarray]:
    """Q* = E[φ²], E[φ], χ₁, μ₁, σ₁², μ₂, σ₂² of eq. (13), and for the JJᵀ recursion of
    :mod:`.theory` ``a_fourth`` = 0, ``b_fourth`` = σ_w⁴ E[φ′⁴] (J_t = D_{φ′} W: a = 0, b = φ′(e))."""
    e_f2, e_f, e_d2, e_d4 = fp.extras
    chi_1 = sw2 * e_d2
    zero = np.zeros_like(chi_1)
    return {
        "a_fourth": zero,
        "b_fourth": sw2 * sw2 * e_d4,
        "Q_star": e_f2,
        "mean_phi": e_f,
        "chi_1": chi_1,
        "mu_1": zero,
        "sigma_1_sq": zero,
        "mu_2": chi_1,
        "sigma_2_sq": sw2 * sw2 * e_d4 - chi_1 * chi_1,
    }


def correlation_map(act: Activation, q: np.ndarray, mu: np.ndarray, sw2: np.ndarray, noise: np.ndarray):
    """``f(c, idx) -> (M(c), χ_c(c))``: the off-diagonal map of eq. (2) divided by q*, and its
    slope σ_w² E_c[φ′φ′] (Price's theorem). ``noise`` = σ_v² R Σ₁₂ + σ_b²."""

    def integrands(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f1, d1, _ = act.parts(x1)
        f2, d2, _ = act.parts(x2)
        return f1 * f2, d1 * d2

    def cmap(c: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e_ff, e_dd = expect_2d(q[idx], mu[idx], c, act.breakpoints, integrands)
        return (sw2[idx] * e_ff + noise[idx]) / q[idx], sw2[idx] * e_dd

    return cmap


def solve_c(act: Activation, q: np.ndarray, mu: np.ndarray, sw2: np.ndarray, sv2R: np.ndarray, sb2: np.ndarray,
            sigma12: np.ndarray, chi_1: np.ndarray) -> FixedPoint:
    """c* and χ_c* on a flat grid (c* = 1 when Σ₁₂ = 1, or there is no input, and χ₁ ≤ 1)."""
    at_one = (sigma12 >= 1.0) | (sv2R == 0.0)
    cmap = correlation_map(act, q, mu, sw2, sv2R * sigma12 + sb2)
    return solve_correlation(cmap, np.zeros_like(q), at_one, chi_1)
