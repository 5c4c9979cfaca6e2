"""Independent references for the mean-field tests (``from meanfield_reference import E``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import integrate, optimize, special


def E(f, q: float, mu: float, *, epsrel: float = 1e-13) -> float:
    """E[f(√q z + μ)] for z ~ N(0, 1) by ``scipy.integrate.quad`` (adaptive, independent of the
    panelled rule), split where f(√q z + μ) changes: around z₀ = −μ/√q at scales 1/√q·{1, 4, 16}."""
    z0 = -mu / math.sqrt(q)
    pts = sorted({-12.0, 12.0} | {float(np.clip(z0 + k / math.sqrt(q), -12, 12)) for k in (-16, -4, -1, 0, 1, 4, 16)})

    def g(z: float) -> float:
        return f(math.sqrt(q) * z + mu) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(integrate.quad(g, a, b, epsabs=0, epsrel=epsrel, limit=400)[0] for a, b in zip(pts[:-1], pts[1:]))


def reference_vanilla(sw, sv, sb, mu, R):
    """(q*, χ₁) of a tanh vanilla RNN: brentq on eq. (2), χ₁ = σ_w² E[φ'²] (eq. 4), by quad."""
    c0 = sv**2 * R + sb**2
    q = optimize.brentq(lambda q: sw**2 * E(lambda x: np.tanh(x) ** 2, q, mu) + c0 - q, 1e-12, sw**2 + c0 + 1,
                        xtol=1e-15, rtol=1e-15)
    return q, sw**2 * E(lambda x: (1 - np.tanh(x) ** 2) ** 2, q, mu)


def reference_minimal(sw, sv, sb, mu, R):
    """(q*, χ₁) of the minimalRNN (App. C): brentq on the Q* equation, χ₁ by quad."""
    sig = special.expit
    c0 = sv**2 * R + sb**2

    def g(Q):
        q = sw**2 * Q + c0
        return Q * E(lambda x: sig(x) ** 2, q, mu) + R * E(lambda x: (1 - sig(x)) ** 2, q, mu) - Q

    Q = optimize.brentq(g, 1e-14, 10 * R + 1, xtol=1e-15, rtol=1e-15)
    q = sw**2 * Q + c0
    return q, E(lambda x: sig(x) ** 2, q, mu) + sw**2 * (Q + R) * E(lambda x: (sig(x) * (1 - sig(x))) ** 2, q, mu)
