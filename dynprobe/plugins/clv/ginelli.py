"""The backward half of Ginelli's method, and the angles between the resulting subspaces.

With the forward factorizations J_t Q_t = Q_{t+1} R_t, the covariant Lyapunov vectors are
V_t = Q_t C_t with C_t upper triangular: a random upper-triangular C at the end of the tail,
iterated backwards as C_t ∝ R_t⁻¹ C_{t+1} (columns renormalised), converges to the CLVs'
coefficients at rate exp(−(λ_j − λ_{j+1}) t), because backwards in time the j-th vector's
direction is the most expanding one within span(q_1 … q_j). Then J_t v_t,j = v_{t+1},j / d_t,j
with d_t,j the column norm of R_t⁻¹ C_{t+1}: −log d_t,j are the covariant local growth rates.

Because Q_t has orthonormal columns, angles between spans of the v's equal angles between the
spans of the corresponding columns of C_t, so the hyperbolicity angle is computed from the k × k
coefficients at every time without storing any Q.

References
----------
Ginelli, Poggi, Turchi, Chaté, Livi & Politi (2007), PRL 99, 130601; Ginelli, Chaté, Livi &
Politi (2013), J. Phys. A 46, 254005, §3 (the method) and §5 (angles and hyperbolicity);
Kuptsov & Parlitz (2012), J. Nonlinear Sci. 22, 727 (covariant vectors and local rates);
Björck & Golub (1973), Math. Comp. 27, 579, and Knyazev & Argentati (2002), SIAM J. Sci.
Comput. 23, 2008 (principal angles, small angles from sines).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Covariant", "backward", "min_principal_angle", "split_angles"]


@dataclass
class Covariant:
    """The backward pass's result at the window times. ``lead`` as in :class:`ForwardRun`."""

    C: Tensor  # [window, *lead, k, k] float64: coefficients of the CLVs in the Q basis (unit columns)
    growth: Tensor  # [window, *lead, k] float64: log‖J_t v_t,j‖, the covariant local rates
    defined: Tensor  # [*lead] int64: vectors 0 … defined−1 are determined (no annihilated direction)


def backward(R: Tensor, window: int, *, seed: int = 0) -> Covariant:
    """Iterate the coefficient matrix backwards through ``R: [stored, *lead, k, k]``.

    ``R[t]`` belongs to the t-th stored step; the first ``window`` of them are the window, the rest
    the tail over which C converges. ``R`` is overwritten (its window part by C): the caller's
    buffer is reused so that no second ``[stored, *lead, k, k]`` array is allocated.

    A direction annihilated somewhere (R_jj = 0, e.g. a saturated ReLU unit with k = N) leaves the
    vectors j, j+1, … undetermined; the triangular structure keeps the earlier ones exact, so
    zero pivots are replaced by 1 for the solve and ``defined`` marks where validity ends.
    """
    stored, lead, k = R.shape[0], tuple(R.shape[1:-2]), R.shape[-1]
    diag = torch.diagonal(R, dim1=-2, dim2=-1)
    bad_col = ((diag == 0) | ~torch.isfinite(R).all(-2)).any(0)  # [*lead, k]
    eye = torch.eye(k, dtype=R.dtype, device=R.device).bool()
    R.masked_fill_(eye & (diag == 0).unsqueeze(-1), 1.0)
    gen = torch.Generator().manual_seed(int(seed))
    C = torch.triu(torch.rand(k, k, generator=gen, dtype=torch.float64) + 0.5).to(R.device)
    C = (C / torch.linalg.vector_norm(C, dim=-2, keepdim=True)).expand(*lead, k, k)
    growth = torch.empty(window, *lead, k, dtype=torch.float64, device=R.device)
    for t in range(stored - 1, -1, -1):
        C = torch.linalg.solve_triangular(R[t], C, upper=True)
        norms = torch.linalg.vector_norm(C, dim=-2)
        C = C / norms.unsqueeze(-2)
        if t < window:
            growth[t] = -torch.log(norms)
            R[t] = C
    coeff = R[:window]
    bad_col |= ~torch.isfinite(coeff).all(-2).all(0)
    any_bad = bad_col.any(-1)
    first_bad = torch.where(any_bad, bad_col.to(torch.int64).argmax(-1), torch.full_like(any_bad, k, dtype=torch.int64))
    return Covariant(coeff, growth, first_bad)


def min_principal_angle(A: Tensor, B: Tensor) -> Tensor:
    """Smallest principal angle between span(A) and span(B), ``A: [..., k, p]``, ``B: [..., k, q]``.

    θ = atan2(sin, cos) with sin θ the smallest singular value of (I − P_A) Q_B and cos θ the
    largest of Q_Aᵀ Q_B: accurate for small angles too, where arccos of a cosine alone loses half
    the digits. Inputs must be finite and of full column rank.
    """
    QA = torch.linalg.qr(A).Q
    QB = torch.linalg.qr(B).Q
    cos = torch.linalg.svdvals(QA.mT @ QB).amax(-1)
    sin = torch.linalg.svdvals(QB - QA @ (QA.mT @ QB)).amin(-1)
    return torch.atan2(sin, cos)


def split_angles(C: Tensor, unstable: Tensor, defined: Tensor) -> Tensor:
    """Angle between span(v_1 … v_u) and span(v_{u+1} … v_d) at every time.

    ``C: [time, *lead, k, k]`` coefficients, ``unstable: [*lead]`` (u), ``defined: [*lead]`` (d).
    NaN where the split is empty (u = 0 or u >= d) or C is not finite. Grouped by (u, d) so that
    every group is one batched call.
    """
    out = torch.full(C.shape[:-2], float("nan"), dtype=torch.float64, device=C.device)
    flat_u, flat_d = unstable.reshape(-1), defined.reshape(-1)
    Cf = C.reshape(C.shape[0], -1, *C.shape[-2:])
    of = out.reshape(C.shape[0], -1)
    for u, d in sorted({(int(a), int(b)) for a, b in zip(flat_u.tolist(), flat_d.tolist())}):
        if u < 1 or u >= d:
            continue
        idx = torch.nonzero((flat_u == u) & (flat_d == d)).squeeze(-1)
        block = Cf[:, idx]
        finite = torch.isfinite(block[..., :d]).all(-1).all(-1)
        safe = torch.where(finite[..., None, None], block, torch.eye(C.shape[-1], dtype=C.dtype, device=C.device))
        angle = min_principal_angle(safe[..., :u], safe[..., u:d])
        of[:, idx] = torch.where(finite, angle, torch.nan)
    return out
