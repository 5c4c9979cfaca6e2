"""Independent references for the mean-field tests (``from meanfield_reference import E``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import integrate


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
