"""Products of Jacobians J_T ⋯ J_1 and their singular values, exactly and in the log domain.

Two representations of the product are carried along a trajectory:

* **explicit** — P_t = J_t P_{t−1} in the System's dtype. Its SVD gives the singular values
  exactly (to ε·σ₁) as long as float64 represents P: no overflow, and σᵢ ≥ ε·σ₁ for the ones kept.
* **scaled QR** — P_t Q₀ = Q_t D_t R̂_t with Q_t orthogonal, D_t = diag(exp ℓ_t) kept as logs and
  R̂_t unit upper triangular with bounded entries (Q₀ random orthogonal, so that ℓ comes out
  sorted, largest first — the Lyapunov ordering). One step: J_t Q_{t−1} = Q_t R_B (QR), then
  ℓ_t = ℓ_{t−1} + log diag R_B and R̂_t = [D_t⁻¹ R_B D_{t−1}] R̂_{t−1}, whose entries
  (R_B)_ij/(R_B)_ii · exp(ℓ_j − ℓ_i) never overflow for sorted ℓ. This is the QR (Benettin)
  accumulation of the Lyapunov method, kept exact instead of averaged.

:func:`log_singular_values` then gets every singular value of D R̂ to relative accuracy, at any
dynamic range, by "transpose-QR sweeps": (D R̂)ᵀ = R̂ᵀ D = Q_C (R_C D) and R_C D is again of the
form D′R̂′ with R̂′ᵢⱼ ∝ exp(ℓⱼ − ℓᵢ) → 0 above the diagonal (the unshifted QR algorithm for the
SVD, run on the graded factor: the column-wise backward stability of Householder QR makes the
error relative to each σᵢ, Demmel & Veselić 1992). Clusters of nearly equal σ, which sweeps do
not separate, are finished by a dense SVD of their (small-range) diagonal block.

References
----------
Mean-field paper §3.2.2 (the end-to-end Jacobian J = ∏ J_t); fading-memory paper App. A and
Benettin et al. (1980) (QR accumulation); Demmel & Veselić (1992) (relative accuracy of graded
SVDs); Stewart (1997) (products of matrices via graded QR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe.linearize import qr_positive

__all__ = ["ScaledProduct", "log_singular_values", "explicit_singular_values", "factor_singular_values",
           "triangular_product", "spectrum", "SV_RESOLUTION",
           "DENSE_RANGE", "MAX_SWEEPS"]

SV_RESOLUTION = 1e-8
"""An explicit singular value below SV_RESOLUTION·σ₁ carries a relative rounding error above
~ε/SV_RESOLUTION ≈ 2e-8 (the SVD's error is ε·σ₁ in absolute terms): reported unresolved."""
DENSE_RANGE = 1e-3
"""A product whose dense SVD has σ_N ≥ DENSE_RANGE·σ₁ takes its log spectrum from that SVD: its
error ≲ ε·σ₁ is then ≤ ε/DENSE_RANGE ≈ 2e-13 relative to every σᵢ, the accuracy the sweeps give."""
MAX_SWEEPS = 60
_SWEEP_TOL = 1e-16
_EXP_CAP = 700.0


_TRI_BLOCK = 128


def triangular_product(A: Tensor, B: Tensor) -> Tensor:
    """A·B for upper-triangular ``A, B [*lead, N, N]``, by 2×2 blocks: the two diagonal blocks
    recursively, the off-diagonal one as A₁₁B₁₂ + A₁₂B₂₂ (two half-size products), the lower one
    zero — about half the flops of a dense product at N = 1024, and the same float64 result up
    to the order of the rounded sums."""
    n = A.shape[-1]
    if n <= _TRI_BLOCK:
        return A @ B
    m = n // 2
    out = torch.empty(torch.broadcast_shapes(A.shape, B.shape), dtype=A.dtype, device=A.device)
    out[..., :m, :m] = triangular_product(A[..., :m, :m], B[..., :m, :m])
    out[..., m:, m:] = triangular_product(A[..., m:, m:], B[..., m:, m:])
    out[..., m:, :m] = 0
    out[..., :m, m:] = A[..., :m, :m] @ B[..., :m, m:] + A[..., :m, m:] @ B[..., m:, m:]
    return out


def _scaled_triangle(R: Tensor, log_d_old: Tensor, log_d_new: Tensor) -> Tensor:
    """D_new⁻¹ · R · D_old for upper-triangular R, computed without forming D.

    A direction the product annihilates exactly (ℓ_new,i = −∞: a singular factor, e.g. a dead
    ReLU unit) keeps the unit row eᵢ — row i of D R̂ is zero whatever R̂'s row i holds — and a
    column already annihilated (ℓ_old,j = −∞) contributes nothing."""
    diff = log_d_old.unsqueeze(-2) - log_d_new.unsqueeze(-1)  # [.., i, j] = ℓ_old_j − ℓ_new_i
    scale = diff.clamp_(max=_EXP_CAP).exp_().nan_to_num_(nan=0.0)  # in place: N² passes dominate at large N
    out = (R * scale).masked_fill_(scale == 0, 0.0).triu_()
    dead = torch.isneginf(log_d_new)
    if bool(dead.any()):
        eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device).expand_as(R)
        out = torch.where(dead.unsqueeze(-1), eye, out)
    return out


@dataclass
class ScaledProduct:
    """P·Q₀ = Q · diag(exp(log_d)) · R̂ for a batch of products (float64 throughout)."""

    Q: Tensor  # [*lead, N, N]
    log_d: Tensor  # [*lead, N]
    Rhat: Tensor  # [*lead, N, N], unit upper triangular

    @classmethod
    def start(cls, Q0: Tensor) -> ScaledProduct:
        lead, n = Q0.shape[:-2], Q0.shape[-1]
        eye = torch.eye(n, dtype=torch.float64, device=Q0.device).expand(*lead, n, n).clone()
        return cls(Q0.to(torch.float64), torch.zeros(*lead, n, dtype=torch.float64, device=Q0.device), eye)

    def update(self, JQ: Tensor, keep: Tensor | None = None) -> Tensor:
        """Absorb one factor: ``JQ`` = J_t @ Q (the tangent map applied to the current Q).
        Products where ``keep [*lead]`` is False (a diverged trajectory) are left as they were.

        Returns the step's triangular factor R_t of J_t Q_{t−1} = Q_t R_t (the identity for the
        frozen ones), so that J_t = Q_t R_t Q_{t−1}ᵀ can be replayed without the tangent map."""
        JQ = JQ.to(torch.float64)
        if keep is not None and not bool(keep.all()):
            JQ = torch.where(keep[..., None, None], JQ, self.Q)  # an identity step for the frozen ones
        Q, R = qr_positive(JQ)
        diag = torch.diagonal(R, dim1=-2, dim2=-1)
        log_new = self.log_d + torch.log(diag)
        step = _scaled_triangle(R, self.log_d, log_new)
        self.Rhat = triangular_product(step, self.Rhat)
        self.Q, self.log_d = Q, log_new
        return R


def _blocks(coupled: Tensor) -> list[tuple[int, int]]:
    """Contiguous index blocks [a, b) of a strictly-upper coupling pattern ``coupled [N, N]``."""
    n = coupled.shape[-1]
    reach = torch.arange(n)
    rows = coupled.any(-1)
    last = torch.where(rows, n - 1 - torch.flip(coupled, dims=[-1]).to(torch.int64).argmax(-1), reach)
    out, start, end = [], 0, 0
    for i in range(n):
        end = max(end, int(last[i]))
        if end <= i:
            out.append((start, i + 1))
            start, end = i + 1, i + 1
    return out


def log_singular_values(log_d: Tensor, Rhat: Tensor, *, max_sweeps: int = MAX_SWEEPS) -> tuple[Tensor, Tensor]:
    """Log singular values of diag(exp(log_d))·R̂, sorted descending, ``[*lead, N]`` (float64);
    −∞ for a singular value that is exactly 0.

    Returns ``(log_sv, sweeps)`` with the number of transpose-QR sweeps each product needed.
    """
    log_d = log_d.to(torch.float64).clone()
    R = Rhat.to(torch.float64).clone()
    lead, n = log_d.shape[:-1], log_d.shape[-1]
    sweeps = torch.zeros(lead, dtype=torch.int64)
    off = torch.triu(torch.ones(n, n, dtype=torch.bool, device=R.device), diagonal=1)
    previous = torch.full(lead, float("inf"), dtype=torch.float64)
    for _ in range(max_sweeps):
        size = R.abs().masked_fill(~off, 0).amax(dim=(-2, -1))
        todo = (size > _SWEEP_TOL) & (size < 0.9 * previous)  # stalled: a cluster, left to the block SVD
        previous = torch.where(todo, size, torch.zeros_like(size))
        if not bool(todo.any()):
            break
        sweeps += todo.to(torch.int64).cpu()
        RC = torch.linalg.qr(R.mT, mode="r").R  # only R: LAPACK's geqrf, no Q formed (half the cost)
        diag = torch.diagonal(RC, dim1=-2, dim2=-1)
        RC = RC * torch.where(diag < 0, -1.0, 1.0).to(RC.dtype).unsqueeze(-1)  # qr_positive's signs
        diag = diag.abs()
        log_new = log_d + torch.log(diag)
        R_new = _scaled_triangle(RC, log_d, log_new)
        R = torch.where(todo[..., None, None], R_new, R)
        log_d = torch.where(todo[..., None], log_new, log_d)
    out = log_d.clone()
    flat_R, flat_d, flat_out = R.reshape(-1, n, n), log_d.reshape(-1, n), out.reshape(-1, n)
    for k in range(flat_R.shape[0]):
        coupled = (flat_R[k].abs() > _SWEEP_TOL) & off
        if not bool(coupled.any()):
            continue
        for a, b in _blocks(coupled.cpu()):
            if b - a == 1:
                continue
            top = flat_d[k, a:b].max()
            if torch.isneginf(top):
                continue  # every singular value of the block is exactly 0
            block = torch.exp(flat_d[k, a:b] - top).unsqueeze(-1) * flat_R[k, a:b, a:b]
            flat_out[k, a:b] = torch.log(torch.linalg.svdvals(block)) + top
    out = flat_out.reshape(*lead, n)
    return torch.sort(out, dim=-1, descending=True).values, sweeps


def explicit_singular_values(P: Tensor) -> tuple[Tensor, Tensor]:
    """Singular values of explicit products ``P [*lead, N, N]`` (descending, float64) and a mask
    of the ones float64 resolves: P finite, σᵢ ≥ SV_RESOLUTION·σ₁ and σᵢ > 0."""
    P = P.to(torch.float64)
    finite = torch.isfinite(P).all(-1).all(-1)
    safe = torch.where(finite[..., None, None], P, torch.zeros_like(P))
    sv = torch.linalg.svdvals(safe)
    ok = finite[..., None] & (sv >= SV_RESOLUTION * sv[..., :1]) & (sv > 0) & torch.isfinite(sv)
    return sv, ok


def factor_singular_values(log_d: Tensor, Rhat: Tensor) -> tuple[Tensor, Tensor]:
    """What :func:`explicit_singular_values` gives for the product P, without carrying P: the
    dense float64 SVD of its factor diag(exp(log_d))·R̂ (P·Q₀ = Q·D·R̂ with Q, Q₀ orthogonal, so
    the singular values are the same), scaled by the largest exp(ℓᵢ) so that the SVD itself never
    overflows. The error is again ε·σ₁ in absolute terms — no larger than the explicit product's,
    whose T rounded matrix products add to it — and the mask keeps the same rule: σ₁ finite,
    σᵢ ≥ SV_RESOLUTION·σ₁ and σᵢ > 0 (a product that overflows float64 resolves nothing, as P
    would be non-finite)."""
    log_d = log_d.to(torch.float64)
    top = log_d.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # J = 0: every row is 0
    factor = torch.exp(log_d - top).unsqueeze(-1) * torch.triu(Rhat.to(torch.float64))
    with torch.no_grad():
        sv = torch.linalg.svdvals(factor) * torch.exp(top)
    ok = torch.isfinite(sv[..., :1]) & (sv >= SV_RESOLUTION * sv[..., :1]) & (sv > 0) & torch.isfinite(sv)
    return sv, ok


def spectrum(log_d: Tensor, Rhat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(log_sv, sv, ok)`` of the products diag(exp(log_d))·R̂: the log singular values as
    :func:`log_singular_values` gives them, and the singular values a dense float64 SVD resolves
    with their mask, by the rule of :func:`factor_singular_values`.

    A product whose diagonal spans less than DENSE_RANGE (a short horizon, typically) is tried
    with the dense SVD first, and takes its logs from it when its σ_N ≥ DENSE_RANGE·σ₁ holds.
    The others run the transpose-QR sweeps, and their dense values are exp(log_sv) where the
    rule resolves them — the sweeps' values, accurate to a few ε relative to each σᵢ, so within
    the dense SVD's own error ε·σ₁. Each product is handled by itself: the result of one does not
    depend on the batch."""
    log_d = log_d.to(torch.float64)
    lead, n = log_d.shape[:-1], log_d.shape[-1]
    log_sv = torch.empty(*lead, n, dtype=torch.float64, device=log_d.device)
    sv = torch.empty_like(log_sv)
    ok = torch.zeros(*lead, n, dtype=torch.bool, device=log_d.device)
    spread = log_d.amax(-1) - log_d.amin(-1)
    narrow = torch.isfinite(spread) & (spread < -math.log(DENSE_RANGE))
    if bool(narrow.any()):
        sv_n, ok_n = factor_singular_values(log_d[narrow], Rhat[narrow])
        dense = ok_n.all(-1) & (sv_n[..., -1] >= DENSE_RANGE * sv_n[..., 0])
        keep = narrow.clone()
        keep[narrow] = dense
        log_sv[keep], sv[keep], ok[keep] = torch.log(sv_n[dense]), sv_n[dense], ok_n[dense]
        narrow = keep
    wide = ~narrow
    if bool(wide.any()):
        swept, _ = log_singular_values(log_d[wide], Rhat[wide])
        with torch.no_grad():
            values = torch.exp(swept)
        top = values[..., :1]
        ok[wide] = torch.isfinite(top) & (values >= SV_RESOLUTION * top) & (values > 0) & torch.isfinite(values)
        log_sv[wide], sv[wide] = swept, values
    return log_sv, sv, ok
