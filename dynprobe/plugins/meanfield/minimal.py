"""Mean-field theory of the minimalRNN, eq. (5)–(9), (13) and App. B–E of the mean-field paper.

e^t = W h^{t−1} + V x̃^t + b, u^t = σ(e^t), h^t = u^t ⊙ h^{t−1} + (1 − u^t) ⊙ x̃^t with
W_ij ~ N(0, σ_w²/N), V_ij ~ N(0, σ_v²/N), b_i ~ N(μ_b, σ_b²) and inputs of second moment R:

* q = σ_w² Q + σ_v² R + σ_b²                                              (eq. 6, 22)
* Q* = Q* E[σ²(√q* z + μ_b)] + R E[(1 − σ)²]                              (eq. 7, 21, App. C)
* c^{t+1} = [c^t + (σ_w² − σ_v²)ρ − β] A(c^t) − 2σ_w²ρ m + σ_w²ρ + σ_v²ρ + β  (eq. 8)
  with ρ = RΣ₁₂/q*, β = σ_b²/q*, A(c) = E_c[σ(u₁)σ(u₂)], m = E[σ(u)]
  (the paper prints eq. 8 with σ_b = 0; β carries the bias variance through the same algebra)
* χ_c* = A(c*) + (q* c* + (σ_w² − σ_v²) R Σ₁₂ − σ_b²) E_{c*}[σ′σ′]          (eq. 9)
* χ₁ = μ₁ + μ₂, μ₁ = E[σ²], μ₂ = σ_w² (Q* + R) E[σ′²]                      (eq. 13)
* σ₁² = E[σ⁴] − μ₁², σ₂² = σ_w⁴ (Q*² + R²) E[σ′⁴] − μ₂²                    (eq. 13)

References
----------
Mean-field paper §3.2, App. B (eq. 17–23), C (eq. 24), D (eq. 32–36), E (eq. 37–40).
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid_parts
from .quadrature import COARSE, CachedRule1D, expect_2d
from .solvers import FixedPoint, solve_correlation, solve_variance

__all__ = ["solve_Q", "moments", "correlation_map", "solve_c", "GATE_BREAKPOINTS"]


def _special():  # scipy.special on first use: importing it costs ~0.3 s of every start-up
    from scipy import special

    return special

GATE_BREAKPOINTS = (0.0,)


def solve_Q(sw2: np.ndarray, noise: np.ndarray, R: np.ndarray, mu: np.ndarray) -> FixedPoint:
    """Q* on a flat grid (``noise`` = σ_v² R + σ_b²); the slope is χ_Q of App. D eq. (32),
    ``extras`` are E[σ], E[σ²], E[σ⁴], E[σ′²], E[σ′⁴], E[σ²σ′²] at q* = σ_w² Q* + noise."""

    # With s = σ(x): σ′ = s − s², σ″ = σ′(1 − 2s), so σ′² + σσ″ = σ′ s(2 − 3s) and
    # E[(1 − σ)²] = 1 − 2E[σ] + E[σ²], E[σ′² − (1 − σ)σ″] = E[σ′² + σσ″] − E[σ″]: four integrands.
    def solve_integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
        s = _special().expit(x)
        ss = s * s
        d = s - ss
        return s, ss, d * (2 * s - 3 * ss), d * (1 - 2 * s)

    def all_integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
        s = _special().expit(x)
        ss = s * s
        d = s - ss
        dd = d * d
        return s, ss, d * (2 * s - 3 * ss), d * (1 - 2 * s), ss * ss, dd, dd * dd, ss * dd

    def make(integrate):
        def fmap(Q: np.ndarray, idx: np.ndarray, extras: bool) -> tuple[np.ndarray, ...]:
            w, r = sw2[idx], R[idx]
            e_s, e_s2, e_ds2, e_d2, *more = integrate(w * Q + noise[idx], idx,
                                                      all_integrands if extras else solve_integrands)
            e_1s2 = 1.0 - 2.0 * e_s + e_s2
            out = (Q * e_s2 + r * e_1s2, e_s2 + w * (Q * e_ds2 + r * (e_ds2 - e_d2)))
            return (*out, e_s, e_s2, *more) if extras else out

        return fmap

    fine, rough = CachedRule1D(GATE_BREAKPOINTS), CachedRule1D(GATE_BREAKPOINTS, COARSE, rtol=0.5)
    return solve_variance(
        make(lambda q, idx, integrands: fine.expect(q, mu[idx], idx, integrands)), R.copy(),
        coarse=make(lambda q, idx, integrands: rough.expect(q, mu[idx], idx, integrands)),
    )


def moments(fp: FixedPoint, sw2: np.ndarray, R: np.ndarray) -> dict[str, np.ndarray]:
    """E[σ], the μ's and σ²'s of eq. (13), χ₁ = μ₁ + μ₂, and for the JJᵀ recursion of
    :mod:`.theory` the fourth moments of J_t's diagonal parts a = σ(e), b = σ′(e)(h − x̃) (eq. 10):
    ``a_fourth`` = E[σ⁴], ``b_fourth`` = 2σ_w²(Q*+R)E[σ²σ′²] + 3σ_w⁴(Q*+R)²E[σ′⁴] (e, h, x̃
    independent, h and x̃ Gaussian)."""
    e_s, e_s2, e_s4, e_d2, e_d4, e_s2d2 = fp.extras
    Q = fp.x
    mu_2 = sw2 * (Q + R) * e_d2
    QR = Q + R
    return {
        "a_fourth": e_s4,
        "b_fourth": 2 * sw2 * QR * e_s2d2 + 3 * sw2 * sw2 * QR * QR * e_d4,
        "Q_star": Q,
        "mean_gate": e_s,
        "chi_1": e_s2 + mu_2,
        "mu_1": e_s2,
        "sigma_1_sq": e_s4 - e_s2 * e_s2,
        "mu_2": mu_2,
        "sigma_2_sq": sw2 * sw2 * (Q * Q + R * R) * e_d4 - mu_2 * mu_2,
    }


def step_coefficients(q: np.ndarray, sw2: np.ndarray, sv2: np.ndarray, sb2: np.ndarray, R: np.ndarray,
                      s_prev: np.ndarray, s_next: np.ndarray, mean_gate: np.ndarray):
    """Coefficients (a, b) of eq. (8) written as c^{t+1} = (c^t + a)·A(c^t) + b, for input
    correlations Σ^t = ``s_prev`` and Σ^{t+1} = ``s_next``."""
    rho, rho_next, beta = R * s_prev / q, R * s_next / q, sb2 / q
    a = (sw2 - sv2) * rho - beta
    b = -2.0 * sw2 * rho * mean_gate + sw2 * rho + sv2 * rho_next + beta
    return a, b


def correlation_map(q: np.ndarray, mu: np.ndarray, a: np.ndarray, b: np.ndarray):
    """``f(c, idx) -> (M(c), χ_c(c))`` for eq. (8) at a constant Σ₁₂ and its slope, eq. (9)."""

    def integrands(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s1, d1, _ = sigmoid_parts(x1)
        s2, d2, _ = sigmoid_parts(x2)
        return s1 * s2, d1 * d2

    def cmap(c: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A, e_dd = expect_2d(q[idx], mu[idx], c, GATE_BREAKPOINTS, integrands)
        shift = c + a[idx]
        return shift * A + b[idx], A + shift * q[idx] * e_dd

    return cmap


def solve_c(q: np.ndarray, mu: np.ndarray, sw2: np.ndarray, sv2: np.ndarray, sb2: np.ndarray, R: np.ndarray,
            sigma12: np.ndarray, mean_gate: np.ndarray, chi_1: np.ndarray) -> FixedPoint:
    """c* and χ_c* on a flat grid (c* = 1 when Σ₁₂ = 1, or there is no input, and χ₁ ≤ 1)."""
    a, b = step_coefficients(q, sw2, sv2, sb2, R, sigma12, sigma12, mean_gate)
    at_one = (sigma12 >= 1.0) | (R == 0.0)
    return solve_correlation(correlation_map(q, mu, a, b), np.zeros_like(q), at_one, chi_1)
