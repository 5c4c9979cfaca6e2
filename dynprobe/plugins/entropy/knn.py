"""Kozachenko–Leonenko k-nearest-neighbour estimate of differential entropy.

Ĥ = ψ(n) − ψ(k) + log V_d + (d/n) Σᵢ log εᵢ, with εᵢ the Euclidean distance from sample i to its
k-th nearest neighbour and V_d = π^{d/2} / Γ(d/2 + 1) the volume of the unit d-ball (nats).

References
----------
Kozachenko & Leonenko (1987), "Sample estimate of the entropy of a random vector";
Kraskov, Stögbauer & Grassberger (2004), eq. (20).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["kl_entropy"]


def kl_entropy(x: torch.Tensor | np.ndarray, k: int = 3) -> float:
    """Differential entropy (nats) of the samples ``x: [n, d]``; −inf when points coincide
    (a collapsed ensemble has no density)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    n, d = x.shape
    if not 1 <= k < n:
        raise ValueError(f"kl_entropy: need 1 <= k < n samples, got k={k}, n={n}")
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(math.inf)
    eps = torch.kthvalue(dist, k, dim=1).values
    from scipy.special import digamma, gammaln  # on first use: scipy costs start-up time

    log_vd = 0.5 * d * math.log(math.pi) - float(gammaln(0.5 * d + 1.0))
    with np.errstate(divide="ignore"):
        mean_log = float(np.mean(np.log(eps.numpy())))
    return float(digamma(n) - digamma(k) + log_vd + d * mean_log)
