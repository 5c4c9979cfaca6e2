"""The spectral norm σ₁ = ‖A‖₂ of a batch of square matrices, without a full SVD where N is large.

``torch.linalg.matrix_norm(A, ord=2)`` computes every singular value (≈ 8/3·N³ flops; 0.35 s at
N = 1024 on one core) to return the largest. For N ≥ :data:`LANCZOS_MIN_N`, σ₁² is instead the
largest eigenvalue of A Aᵀ, found by implicitly restarted Lanczos (ARPACK through
``scipy.sparse.linalg.eigsh``) on the operator x ↦ A(Aᵀx) — two matrix-vector products per
iteration, A Aᵀ never formed — at ARPACK's machine-precision tolerance (``tol=0``: Ritz residual
≤ ε·|θ|, so σ₁ is exact to a few ε relative). A start vector from the previous call (``v0``) makes
a sequence of slowly changing matrices (the backward products ∂h_T/∂h_t) converge in a few
iterations. Below the threshold the dense SVD is as cheap, and is used unchanged.

References
----------
Lehoucq, Sorensen & Yang (1998), *ARPACK Users' Guide*; Golub & Van Loan, *Matrix Computations*
§10.1 (Lanczos for the extreme eigenvalues of a symmetric operator).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["spectral_norm", "LANCZOS_MIN_N"]

LANCZOS_MIN_N = 160
"""From this N on, σ₁ comes from Lanczos on A Aᵀ; below it, from the dense SVD."""
_NCV = 20


def _lanczos_one(A: Tensor, v0: np.ndarray | None) -> tuple[float, np.ndarray]:
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

    n = A.shape[-1]
    At = A.mT.contiguous()

    def gram(x: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(n)).to(A.device)
        return (A @ (At @ v)).cpu().numpy()  # torch's BLAS, under torch's thread setting

    op = LinearOperator((n, n), matvec=gram, dtype=np.float64)
    try:
        vals, vecs = eigsh(op, k=1, which="LA", tol=0, v0=v0, ncv=min(_NCV, n - 1), maxiter=100 * n)
    except (ArpackNoConvergence, ArpackError):  # never seen; the dense SVD is always right
        U, S, _ = torch.linalg.svd(A)
        return float(S[0]), U[:, 0].cpu().numpy()
    return float(np.sqrt(max(vals[0], 0.0))), vecs[:, 0]


def spectral_norm(A: Tensor, start: list[np.ndarray | None] | None = None) -> Tensor:
    """σ₁ of every matrix in ``A [*lead, N, N]`` (float64), shape ``[*lead]``.

    ``start`` (a list with one entry per matrix of the flattened batch, or None) carries left
    singular vector estimates between calls: it is read as the Lanczos start vector and
    overwritten with this call's top left singular vector. Matrices that are zero give 0;
    non-finite ones give NaN.
    """
    n = A.shape[-1]
    if n < LANCZOS_MIN_N:
        return torch.linalg.matrix_norm(A, ord=2)
    flat = A.reshape(-1, n, n)
    fro = torch.linalg.matrix_norm(flat)
    out = torch.empty(flat.shape[0], dtype=torch.float64)
    for k in range(flat.shape[0]):
        scale = float(fro[k])
        if not np.isfinite(scale):
            out[k] = float("nan")
            continue
        if scale == 0.0:
            out[k] = 0.0
            continue
        v0 = start[k] if start is not None else None
        if v0 is None:  # a fixed start: the result does not depend on ARPACK's random state
            v0 = np.random.default_rng(k).standard_normal(n)
        sigma, vec = _lanczos_one(flat[k].to(torch.float64) / scale, v0)
        out[k] = sigma * scale
        if start is not None:
            start[k] = vec
    return out.reshape(A.shape[:-2]).to(A.device)
