"""Re-orthonormalizing a tangent block: ``A = Q R`` with ``log|diag R|``, the QR chosen by shape.

Two factorizations, both returning the orthonormal factor and the log stretching rates:

* **Householder** (``torch.linalg.qr``, LAPACK ``geqrf`` + ``orgqr``): backward stable for any
  conditioning; the choice on the CPU, where it beat CholeskyQR2 at every shape measured
  (N = 256…1024, k = 8…N, one thread: ``tests/benchmarks/test_bench_qr.py``).
* **CholeskyQR2** (Yamamoto, Nakatsukasa, Yanagisawa & Fukaya 2015): ``R₁ = chol(AᵀA)ᵀ``,
  ``Q₁ = A R₁⁻¹``, repeated once on ``Q₁``; three BLAS-3 calls per pass, which is what GPUs do
  fast for tall-skinny blocks (k ≪ N) where Householder is latency-bound. It is accurate when
  κ(A) ≲ ε^{-1/2} (≈ 7e7 in float64) and *fails loudly* otherwise — the Cholesky factorization
  reports it (``info > 0``) or the factors are not finite — and the caller then falls back to
  Householder (:func:`dynprobe.tangent.qr_iterate` replays the time block).

diag(R) = diag(R₂)·diag(R₁) for the product of the two triangular factors, so the log rates of
CholeskyQR2 are ``log diag L₁ + log diag L₂``. Column signs are irrelevant to |R_ii|.

References
----------
Yamamoto et al. (2015), "Roundoff error analysis of the CholeskyQR2 algorithm", ETNA 44;
Fukaya et al. (2014), "CholeskyQR2: a simple and communication-avoiding algorithm for computing
a tall-skinny QR factorization on a large-scale parallel system".
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["QRMethod", "choose_qr", "orthonormalize", "KAPPA_MAX"]

QRMethod = Literal["householder", "cholesky"]

KAPPA_MAX: dict[str, dict[torch.dtype, float]] = {
    "householder": {torch.float64: 1e8, torch.float32: 1e3},
    "cholesky": {torch.float64: 1e6, torch.float32: 1e2},
}
"""Largest tangent-block condition number allowed between QRs (``reorth_every="auto"``):
Householder loses ~log10(κ) digits of the weakest column; CholeskyQR2 needs κ well below ε^{-1/2}."""


SECOND_PASS_TOL = 0.1
"""|log diag R₂| above this means the first pass was far from orthonormal (κ(A)²ε ≳ 0.2)."""


def choose_qr(method: str, n: int, k: int, device: torch.device) -> QRMethod:
    """The factorization for an ``[n, k]`` block: ``method`` itself unless it is ``"auto"``, which
    takes CholeskyQR2 for tall-skinny blocks (4k <= n) on accelerators and Householder otherwise."""
    if method in ("householder", "cholesky"):
        return method  # type: ignore[return-value]
    if method != "auto":
        raise ValueError(f"qr must be 'auto', 'householder' or 'cholesky', got {method!r}")
    return "cholesky" if device.type != "cpu" and 4 * k <= n else "householder"


def orthonormalize(A: Tensor, method: QRMethod = "householder") -> tuple[Tensor, Tensor, Tensor | None]:
    """Factor a batch of blocks ``A: [..., n, k]`` (n >= k) as ``Q R``.

    Returns ``(Q, log_r, ok)``: ``Q [..., n, k]`` with orthonormal columns, ``log_r [..., k]`` =
    log|R_ii|, and ``ok [...]`` (CholeskyQR2 only; ``None`` for Householder) — False where the
    factorization broke down, whose ``Q`` and ``log_r`` must then be recomputed by Householder.
    No host synchronization: ``ok`` stays a device tensor.
    """
    if method == "householder":
        Q, R = torch.linalg.qr(A)
        return Q, torch.diagonal(R, dim1=-2, dim2=-1).abs().log(), None
    L1, info1 = torch.linalg.cholesky_ex(A.mT @ A)
    Q1 = torch.linalg.solve_triangular(L1.mT, A, upper=True, left=False)
    L2, info2 = torch.linalg.cholesky_ex(Q1.mT @ Q1)
    Q = torch.linalg.solve_triangular(L2.mT, Q1, upper=True, left=False)
    second = torch.diagonal(L2, dim1=-2, dim2=-1).log()
    log_r = torch.diagonal(L1, dim1=-2, dim2=-1).log() + second
    # Q₁ must already be nearly orthonormal (‖Q₁ᵀQ₁ − I‖ ~ κ²ε): else κ(A) was beyond CholeskyQR2
    ok = (info1 == 0) & (info2 == 0) & torch.isfinite(log_r).all(-1) & (second.abs().amax(-1) < SECOND_PASS_TOL)
    return Q, log_r, ok
