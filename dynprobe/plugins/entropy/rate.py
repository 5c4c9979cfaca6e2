"""Volume change along an ensemble's trajectories: log|det J| and the extreme singular values.

For an injective differentiable step h ↦ F(h) and states with density p_t, the change of
variables gives H_{t+1} = H_t + E_t[log|det J(h_t)|] exactly. Every log|det J| = Σᵢ log σᵢ lies in
[N log σ_min, N log σ_max], which is where the two brackets of eq. 4 come from.

:func:`jacobian_stats` iterates the System from an ensemble of states and records, at every
visited state, log|det J| (LU, ``slogdet``) and σ_min, σ_max — exactly (``svdvals``) up to
N = :data:`EXACT_SVD_MAX`; beyond that by Lanczos with Rayleigh–Ritz on JᵀJ (σ_max, never above
the true value) and on (JJᵀ)⁻¹ through the LU factors that also give log|det J| (σ_min, never
below), each on a Krylov space of at most :data:`KRYLOV_STEPS` dimensions.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.1 and supplement B (eq. 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.linearize import jacobian

__all__ = ["JacobianStats", "jacobian_stats", "extreme_singular_values", "log_abs_det", "EXACT_SVD_MAX", "KRYLOV_STEPS"]

EXACT_SVD_MAX = 256
"""Largest state size for which singular values are computed exactly."""
KRYLOV_STEPS = 40
"""Largest Krylov dimension of the Lanczos estimates of σ_max and σ_min beyond EXACT_SVD_MAX."""
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


def _top_ritz(apply: Callable[[Tensor], Tensor], shape: torch.Size, like: Tensor, steps: int,
              gen: torch.Generator) -> Tensor:
    """Largest Ritz value of the symmetric positive semi-definite operators ``apply`` (one per
    batch entry, acting on ``[B, N]``) on a Krylov space of ``steps`` dimensions.

    Lanczos with full (twice-applied Gram–Schmidt) re-orthogonalization, then Rayleigh–Ritz on the
    orthonormal basis Q: the largest eigenvalue of QᵀAQ is never above λ_max (Cauchy interlacing,
    up to rounding of order ε‖A‖), however few the steps, and equals it once the space is all of
    R^N. A Krylov space that becomes invariant is continued with a fresh random direction (Q stays
    orthonormal). Stops early once the estimate has stopped moving (relative change < 1e-14 on
    every entry, twice running).
    """
    B, n = shape
    k = min(steps, n)
    Q = like.new_zeros(B, k, n)  # basis vectors as rows: the slices Q[:, :j] stay contiguous
    AQ = like.new_zeros(B, k, n)
    q = torch.randn(B, n, generator=gen, dtype=torch.float64).to(like)

    def orthogonalize(x: Tensor, j: int) -> Tensor:  # twice: one classical Gram-Schmidt pass loses orthogonality
        for _ in range(2):
            x = x - ((x.unsqueeze(-2) @ Q[:, :j].mT) @ Q[:, :j]).squeeze(-2)
        return x

    top = like.new_zeros(B)
    still = 0
    for j in range(k):
        before = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
        q = orthogonalize(q, j)
        norm = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
        lost = norm <= 1e-10 * before  # the Krylov space is (numerically) invariant
        if bool(lost.any()):  # continue with a random direction
            fresh = orthogonalize(torch.randn(B, n, generator=gen, dtype=torch.float64).to(like), j)
            q = torch.where(lost, fresh, q)
            norm = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
        Q[:, j] = q / norm
        AQ[:, j] = apply(Q[:, j])
        T = AQ[:, :j + 1] @ Q[:, :j + 1].mT
        new = torch.linalg.eigvalsh(0.5 * (T + T.mT))[..., -1]
        still = still + 1 if bool(((new - top).abs() <= 1e-14 * new.abs()).all()) else 0
        top = new
        if still >= 2:
            break
        q = AQ[:, j]
    return top.clamp_min(0)


def extreme_singular_values(J: Tensor, *, exact: bool, iters: int = KRYLOV_STEPS,
                            lu: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """``(σ_min, σ_max)`` of a batch ``J: [B, N, N]``.

    ``exact``: from ``svdvals``. Otherwise by Lanczos with Rayleigh–Ritz (:func:`_top_ritz`,
    ``iters`` Krylov dimensions at most): σ_max from JᵀJ, never above the true value; σ_min as
    1/‖J⁻¹‖ from (JJᵀ)⁻¹ applied through the LU factors (``lu``, from ``torch.linalg.lu_factor_ex``;
    computed when not given), never below the true value; 0 where J is singular.
    """
    if exact:
        s = torch.linalg.svdvals(J)
        return s[..., -1], s[..., 0]
    gen = torch.Generator().manual_seed(0)
    Jt = J.mT.contiguous()  # row-vector products with J and Jᵀ both read memory in order

    def gram(v: Tensor) -> Tensor:  # JᵀJ v
        jv = (v.unsqueeze(-2) @ Jt).squeeze(-2)
        return (jv.unsqueeze(-2) @ J).squeeze(-2)

    smax = _top_ritz(gram, J.shape[:-1], J, iters, gen).sqrt()
    LU, piv, info = torch.linalg.lu_factor_ex(J) if lu is None else lu
    singular = info > 0

    def inverse_gram(v: Tensor) -> Tensor:  # (J Jᵀ)⁻¹ v = J⁻ᵀ J⁻¹ v; the identity for a singular J (σ_min = 0)
        x = torch.linalg.lu_solve(LU, piv, v.unsqueeze(-1))
        y = torch.linalg.lu_solve(LU, piv, x, adjoint=True).squeeze(-1)
        return torch.where(singular.unsqueeze(-1), v, y)

    if bool(singular.all()):
        return torch.zeros_like(smax), smax
    inv = _top_ritz(inverse_gram, J.shape[:-1], J, iters, gen).sqrt()
    smin = torch.where(singular | ~torch.isfinite(inv) | (inv <= 0), 0.0, 1.0 / inv)
    return smin, smax


def log_abs_det(lu: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """log|det J| from ``torch.linalg.lu_factor_ex(J)`` (Σ log|U_ii|, −inf where J is singular):
    what ``torch.linalg.slogdet`` computes, without a second factorization."""
    LU, _, info = lu
    lad = torch.log(torch.diagonal(LU, dim1=-2, dim2=-1).abs()).sum(-1)
    return torch.where(info > 0, torch.full_like(lad, -math.inf), lad)


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
            if exact:
                _, lad = torch.linalg.slogdet(J)
                a, b = extreme_singular_values(J, exact=True)
            else:
                lu = torch.linalg.lu_factor_ex(J)
                lad = log_abs_det(lu)
                a, b = extreme_singular_values(J, exact=False, lu=lu)
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
        svd_method="exact (svdvals)" if exact else f"Lanczos-Rayleigh-Ritz, at most {KRYLOV_STEPS} Krylov dimensions "
        "(sigma_max from J^T J, from below; sigma_min from (J J^T)^-1 via LU, from above)",
    )
