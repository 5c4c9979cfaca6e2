"""Volume change along an ensemble's trajectories: log|det J| and the extreme singular values.

For an injective differentiable step h ↦ F(h) and states with density p_t, the change of
variables gives H_{t+1} = H_t + E_t[log|det J(h_t)|] exactly. Every log|det J| = Σᵢ log σᵢ lies in
[N log σ_min, N log σ_max], which is where the two brackets of eq. 4 come from.

:func:`jacobian_stats` iterates the System from an ensemble of states and records, at every
visited state, log|det J| (LU, ``slogdet``) and σ_min, σ_max — exactly (``svdvals``) up to
N = :data:`EXACT_SVD_MAX`, beyond that by power iteration on JᵀJ (σ_max, from below) and inverse
iteration through the LU factors (σ_min, from above).

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.1 and supplement B (eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.linearize import jacobian

__all__ = ["JacobianStats", "jacobian_stats", "extreme_singular_values", "EXACT_SVD_MAX"]

EXACT_SVD_MAX = 256
"""Largest state size for which singular values are computed exactly."""
CHUNK_ENTRIES = 2 ** 23
"""Jacobian entries materialized at once (chunks over the ensemble)."""


@dataclass
class JacobianStats:
    """Per visited state; shapes ``[steps, B]`` (state h_t for t = 0 … steps − 1)."""

    log_det: Tensor  # float64, -inf where det J = 0
    sigma_min: Tensor
    sigma_max: Tensor
    states: Tensor  # [steps + 1, B, N]
    diverged: Tensor  # [B] bool
    svd_method: str


def extreme_singular_values(J: Tensor, *, exact: bool, iters: int = 60) -> tuple[Tensor, Tensor]:
    """``(σ_min, σ_max)`` of a batch ``J: [B, N, N]``."""
    if exact:
        s = torch.linalg.svdvals(J)
        return s[..., -1], s[..., 0]
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(J.shape[:-1], generator=gen, dtype=torch.float64).to(J)
    smax = torch.zeros(J.shape[:-2], dtype=J.dtype, device=J.device)
    for _ in range(iters):
        jv = (J @ v.unsqueeze(-1)).squeeze(-1)
        smax = torch.maximum(smax, torch.linalg.vector_norm(jv, dim=-1))
        w = (J.transpose(-1, -2) @ jv.unsqueeze(-1)).squeeze(-1)
        v = w / torch.linalg.vector_norm(w, dim=-1, keepdim=True).clamp_min(1e-300)
    LU, piv, info = torch.linalg.lu_factor_ex(J)
    singular = info > 0
    v = torch.randn(J.shape[:-1], generator=gen, dtype=torch.float64).to(J)
    inv = torch.zeros_like(smax)
    for _ in range(iters):
        y = torch.linalg.lu_solve(LU, piv, v.unsqueeze(-1), adjoint=True)  # J^{-T} v
        x = torch.linalg.lu_solve(LU, piv, y).squeeze(-1)  # J^{-1} J^{-T} v
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        inv = torch.linalg.vector_norm(y.squeeze(-1), dim=-1)
        v = x / norm.clamp_min(1e-300)
    smin = torch.where(singular | ~torch.isfinite(inv), 0.0, 1.0 / inv)
    return smin, smax


@torch.no_grad()
def jacobian_stats(system: System, h0: Tensor, steps: int, *, escape: float = 1e8) -> JacobianStats:
    """Iterate from ``h0: [B, N]`` for ``steps`` steps recording log|det J|, σ_min and σ_max."""
    n = system.state_dim
    exact = n <= EXACT_SVD_MAX
    chunk = max(1, CHUNK_ENTRIES // (n * n))
    h = h0
    bad = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    logdet, smin, smax, states = [], [], [], [h]
    for t in range(steps):
        ld, lo, hi = [], [], []
        for start in range(0, h.shape[0], chunk):
            J = jacobian(system, h[start:start + chunk], t)
            _, lad = torch.linalg.slogdet(J)
            a, b = extreme_singular_values(J, exact=exact)
            ld.append(lad.to(torch.float64))
            lo.append(a.to(torch.float64))
            hi.append(b.to(torch.float64))
        logdet.append(torch.cat(ld))
        smin.append(torch.cat(lo))
        smax.append(torch.cat(hi))
        h = system.map(h, t)
        bad |= ~torch.isfinite(h).all(-1) | (h.abs().amax(-1) > escape)
        h = torch.where(bad.unsqueeze(-1), torch.zeros((), dtype=h.dtype, device=h.device), h)
        states.append(h)
    nan = torch.tensor(math.nan, dtype=torch.float64)
    mask = bad.unsqueeze(0)
    return JacobianStats(
        log_det=torch.where(mask, nan, torch.stack(logdet)),
        sigma_min=torch.where(mask, nan, torch.stack(smin)),
        sigma_max=torch.where(mask, nan, torch.stack(smax)),
        states=torch.stack(states),
        diverged=bad,
        svd_method="exact (svdvals)" if exact else "power iteration (sigma_max, from below) and inverse iteration "
        "(sigma_min, from above)",
    )
