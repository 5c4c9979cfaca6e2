"""Matrix-free Levenberg–Marquardt for large N: the same iteration as the dense one in
:mod:`dynprobe.orbits.solve`, with the step taken in a Krylov subspace instead of from the N×N
monodromy matrix.

The dense step needs A = ∂Fᵖ/∂h − I for every start: N tangent columns, O(N³) per start and
iteration — seconds per iteration at N = 1024. Here an Arnoldi process builds, from products
A·v alone (one forward-mode pass each, O(N²)), an orthonormal basis V of the Krylov space
span{G, AG, …} with A Vₘ = Vₘ₊₁ H̄ₘ (Saad & Schultz 1986, GMRES). In that space the
Levenberg–Marquardt problem min ‖A δ + G‖² + μ·s‖δ‖² becomes, for δ = Vₘ y, the small problem
min ‖H̄ₘ y − ‖G‖e₁‖² + μ·s‖y‖² (Vₘ has orthonormal columns), so every trial damping μ costs one
(m+1)×m solve and one evaluation of Fᵖ, and a rejected step needs no new products — the hybrid
Krylov method of Brown & Saad (1990). The basis grows until it solves the undamped (Newton)
equation to a relative residual between :data:`ETA` and :data:`ETA_MAX` (Eisenstat & Walker
1996; :data:`ETA_POLISH` when polishing), at most
:data:`MAX_KRYLOV` vectors. With the same acceptance rule (a step only where it lowers ‖G‖), the
same convergence test and the same polishing, the solutions are those of the dense method to
within the tolerance; tests check both on the same starts.

The outputs the search needs from A are computed without it: the normalised gradient
‖AᵀG‖/‖G‖ by one reverse-mode pass (∇q = AᵀG), and the error 3‖A⁻¹G‖ of a converged point from
one more Krylov solve at it — where that solve does not reach :data:`ETA_POLISH` (a nearly
singular A, at a degenerate zero), the dense least-squares step is computed for that start, so
the error is never an underestimate from an unfinished solve.

References
----------
Brown & Saad (1990), "Hybrid Krylov methods for nonlinear systems of equations", SIAM J. Sci.
Stat. Comput. 11(3): 450–481; Saad & Schultz (1986), "GMRES", SIAM J. Sci. Stat. Comput. 7(3):
856–869; Eisenstat & Walker (1996), "Choosing the forcing terms in an inexact Newton method",
SIAM J. Sci. Comput. 17(1): 16–32; Knoll & Keyes (2004), "Jacobian-free Newton–Krylov methods", J. Comput. Phys. 193(2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jvp

from .maps import PeriodMap, finite_norm

__all__ = ["krylov_lm", "KrylovBasis", "arnoldi", "ETA", "ETA_MAX", "ETA_POLISH", "ETA_ERROR", "MAX_KRYLOV", "TRIES"]

ETA, ETA_MAX = 1e-4, 0.1
"""Bounds of the relative residual ‖A δ + G‖/‖G‖ to which the undamped step is solved during
the iteration: Eisenstat & Walker's (1996) choice 2, η = 0.9 (‖Gₖ‖/‖Gₖ₋₁‖)² (safeguarded),
loose while far from a zero — where an exact step is wasted — and tight as it converges."""
ETA_POLISH = 1e-6
"""The same while polishing: a polished start already has ‖G‖ ≤ tol·(1 + ‖h‖∞) (1e-10 by
default), so a step solved to 1e-6 of that leaves a residual at rounding level plus the
quadratic term — what the exact Newton step leaves."""
ETA_ERROR = 1e-3
"""The same for the error estimate 3‖A⁻¹G‖ (a length to two or three digits); a start whose solve
does not get there has its error from the dense least-squares step instead."""
POLISHED = 1e-5
"""A start whose residual is below POLISHED·tol·(1 + ‖h‖∞) is not polished further (it is at
rounding level already; the dense solver's extra step would not move it)."""
MAX_KRYLOV = 120
"""Most basis vectors per solve (capped at N)."""
TRIES = 4
"""Damping values tried per basis (μ ×4 after each rejected trial) before a new basis is built."""
CHECK_EVERY = 1
"""Arnoldi steps between checks of the undamped residual (a tiny least-squares problem: cheap
next to one product A·v, and a contractive map often needs only a handful of vectors)."""


@dataclass(frozen=True)
class KrylovBasis:
    """``V [R, N, m]`` (orthonormal columns), ``H [R, m + 1, m]`` with A V = V₊ H, ``beta [R]`` = ‖G‖,
    ``residual [R]``: the relative residual of the undamped (Newton) solution in the space."""

    V: Tensor
    H: Tensor
    beta: Tensor
    residual: Tensor

    def step(self, damping: Tensor) -> Tensor:
        """δ = V y, y = argmin ‖H y − β e₁‖² + damping·‖y‖², ``damping [R]``; ``[R, N]``."""
        R, m1, m = self.H.shape
        eye = torch.eye(m, dtype=self.H.dtype, device=self.H.device)
        lhs = torch.cat([self.H, damping.clamp(min=0).sqrt()[:, None, None] * eye], dim=1)
        rhs = torch.zeros(R, m1 + m, 1, dtype=self.H.dtype, device=self.H.device)
        rhs[:, 0, 0] = self.beta
        y = _lstsq(lhs, rhs)[..., 0]
        return (self.V @ y[..., None])[..., 0]

    def scale(self) -> Tensor:
        """``[R]``: the largest ‖A vⱼ‖² — the Krylov-space counterpart of max diag(AᵀA)."""
        return (self.H * self.H).sum(1).amax(-1).clamp(min=1e-30)


def _lstsq(A: Tensor, b: Tensor) -> Tensor:
    """Least squares per batch row, robust to rank deficiency (QR with column pivoting)."""
    return torch.linalg.lstsq(torch.nan_to_num(A), torch.nan_to_num(b), driver="gelsy").solution


def _residual(H: Tensor, beta: Tensor) -> Tensor:
    """Relative residual of min ‖H y − β e₁‖ per row (1 where β = 0 is excluded by the caller)."""
    rhs = torch.zeros(*H.shape[:2], 1, dtype=H.dtype, device=H.device)
    rhs[:, 0, 0] = beta
    y = _lstsq(H, rhs)
    res = torch.linalg.vector_norm((H @ y - rhs)[..., 0], dim=-1)
    return res / beta.clamp(min=1e-300)


def arnoldi(matvec, b: Tensor, *, eta: float | Tensor, max_dim: int) -> KrylovBasis:
    """Arnoldi on A from ``b [R, N]`` (classical Gram–Schmidt applied twice, batched over rows)
    until the undamped least-squares residual is ≤ ``eta`` (a number or ``[R]``) in every row
    or ``max_dim`` vectors."""
    R, n = b.shape
    m_max = max(1, min(int(max_dim), n))
    beta = finite_norm(b)
    safe = torch.isfinite(beta) & (beta > 0)
    V = torch.zeros(R, n, m_max + 1, dtype=b.dtype, device=b.device)
    V[:, :, 0] = torch.where(safe[:, None], torch.nan_to_num(b) / beta.clamp(min=1e-300)[:, None], 0.0)
    H = torch.zeros(R, m_max + 1, m_max, dtype=b.dtype, device=b.device)
    res = torch.ones(R, dtype=b.dtype, device=b.device)
    m = m_max
    for k in range(m_max):
        w = torch.nan_to_num(matvec(V[:, :, k]))
        Vk = V[:, :, :k + 1]
        c = (Vk.transpose(1, 2) @ w[..., None])[..., 0]
        w = w - (Vk @ c[..., None])[..., 0]
        c2 = (Vk.transpose(1, 2) @ w[..., None])[..., 0]
        w = w - (Vk @ c2[..., None])[..., 0]
        H[:, :k + 1, k] = c + c2
        norm = torch.linalg.vector_norm(w, dim=-1)
        H[:, k + 1, k] = norm
        alive = norm > 1e-14 * H[:, :k + 2, k].abs().amax(-1).clamp(min=1e-300)
        V[:, :, k + 1] = torch.where(alive[:, None], w / norm.clamp(min=1e-300)[:, None], 0.0)
        H[:, k + 1, k] = torch.where(alive, norm, torch.zeros_like(norm))
        if (k + 1) % CHECK_EVERY == 0 or k + 1 == m_max or not bool(alive.any()):
            res = torch.where(safe, _residual(H[:, :k + 2, :k + 1], beta), torch.zeros_like(res))
            if bool((res <= eta).all()) or not bool(alive.any()):
                m = k + 1
                break
    return KrylovBasis(V=V[:, :, :m], H=H[:, :m + 1, :m], beta=torch.where(safe, beta, torch.zeros_like(beta)),
                       residual=res)


def _matvec(pmap: PeriodMap, h: Tensor):
    """v ↦ (∂Fᵖ/∂h − I) v at the states ``h [B, S, N]``, for flat ``v [B·S, N]``."""
    shape = h.shape

    def apply(v: Tensor) -> Tensor:
        with torch.no_grad():
            _, jv = jvp(pmap, (h,), (v.reshape(shape),))
        return (jv - v.reshape(shape)).reshape(-1, shape[-1])

    return apply


def krylov_lm(pmap: PeriodMap, h: Tensor, *, max_iter: int, tol: float, stall: int, polish: int):
    """Levenberg–Marquardt on G = Fᵖ(h) − h from ``h [B, S, N]`` with Krylov-subspace steps;
    returns ``(h, speed, converged, stationary, error)`` as :class:`dynprobe.orbits.solve.Refined`
    fields. Only the start columns with an unconverged, finite start are worked on."""
    B, S, n = h.shape
    max_dim = min(MAX_KRYLOV, n)

    def target(x: Tensor) -> Tensor:
        return tol * (1 + x.abs().amax(-1))

    with torch.no_grad():
        r = pmap.residual(h)
    err = finite_norm(r)
    lam = torch.full(err.shape, 1e-3, dtype=h.dtype, device=h.device)

    forcing = torch.full_like(err, ETA_MAX)

    def iterate(rows: Tensor, eta: float | None, fixed_lam: float | None) -> None:
        """One basis and up to TRIES damped trials for the start columns ``rows [S]``
        (``eta`` None: each start's Eisenstat–Walker forcing term)."""
        nonlocal h, r, err, lam, forcing
        hc, rc, ec = h[:, rows], r[:, rows], err[:, rows]
        lc = lam[:, rows] if fixed_lam is None else torch.full_like(lam[:, rows], fixed_lam)
        tight = forcing[:, rows].reshape(-1) if eta is None else eta
        basis = arnoldi(_matvec(pmap, hc), -rc.reshape(-1, n), eta=tight, max_dim=max_dim)
        e_old = ec
        s = basis.scale().reshape(ec.shape)
        pending = torch.isfinite(ec)
        for _ in range(TRIES if fixed_lam is None else 1):
            trial = hc + basis.step((lc * s).reshape(-1)).reshape(hc.shape)
            with torch.no_grad():
                r_t = pmap.residual(trial)
            e_t = finite_norm(r_t)
            better = pending & (e_t < ec)
            hc = torch.where(better[..., None], trial, hc)
            rc = torch.where(better[..., None], r_t, rc)
            ec = torch.where(better, e_t, ec)
            lc = torch.where(better, (lc / 3).clamp(min=1e-12), torch.where(pending, (lc * 4).clamp(max=1e12), lc))
            pending &= ~better
            if not bool(pending.any()):
                break
        if eta is None:  # Eisenstat & Walker (1996) choice 2 with their safeguard
            prev = forcing[:, rows]
            ratio = torch.nan_to_num(ec / e_old.clamp(min=1e-300), nan=1.0, posinf=1.0)
            f = 0.9 * ratio ** 2
            f = torch.where(0.9 * prev ** 2 > 0.1, torch.maximum(f, 0.9 * prev ** 2), f)
            forcing = forcing.clone()
            forcing[:, rows] = f.clamp(min=ETA, max=ETA_MAX)
        h, r, err = h.clone(), r.clone(), err.clone()
        h[:, rows], r[:, rows], err[:, rows] = hc, rc, ec
        if fixed_lam is None:
            lam = lam.clone()
            lam[:, rows] = lc

    before = err.clone()
    for k in range(int(max_iter)):
        done = err <= target(h)
        work = ~done & torch.isfinite(err)
        if not bool(work.any()):
            break
        if k and k % stall == 0:
            moving = work & (err < 0.9 * before)
            if not bool(moving.any()):
                break
            before = err.clone()
        iterate(work.any(0), None, None)
    for _ in range(polish):
        rows = (torch.isfinite(err) & (err > POLISHED * target(h))).any(0)
        if bool(rows.any()):
            iterate(rows, ETA_POLISH, 1e-12)
    _, grad = pmap.q_grad(h)
    stationary = finite_norm(grad) / err.clamp(min=1e-300)
    converged = torch.isfinite(err) & (err <= target(h))
    error = torch.full_like(err, float("inf"))
    cols = converged.any(0)
    if bool(cols.any()):
        hc, rc = h[:, cols], r[:, cols]
        basis = arnoldi(_matvec(pmap, hc), -rc.reshape(-1, n), eta=ETA_ERROR, max_dim=max_dim)
        step = basis.step(torch.zeros_like(basis.beta)).reshape(hc.shape)
        ec = 3 * finite_norm(step)
        unsure = (basis.residual.reshape(ec.shape) > ETA_ERROR) & (rc.abs().amax(-1) > 0)
        if bool(unsure.any()):  # the Krylov solve did not finish: the dense least-squares step there
            ec = torch.where(unsure, _dense_error(pmap, hc, rc, unsure), ec)
        error[:, cols] = ec
    error = torch.where(torch.isfinite(err), torch.where(converged, error, _fallback(err)), error)
    return h, err, converged, stationary, error


def _fallback(err: Tensor) -> Tensor:
    """Error of an unconverged start: not used by the search (slow points carry 0, failures are
    dropped); its speed is reported instead of an O(N³) solve."""
    return err


def _dense_error(pmap: PeriodMap, h: Tensor, r: Tensor, which: Tensor) -> Tensor:
    """3‖A⁺G‖ from the dense monodromy, for the start columns where any network is ``which``."""
    cols = which.any(0)
    out = torch.zeros(which.shape, dtype=h.dtype, device=h.device)
    with torch.no_grad():
        _, M, _ = pmap.monodromy(h[:, cols])
    A = M - torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
    step = torch.linalg.lstsq(torch.nan_to_num(A), -torch.nan_to_num(r[:, cols])[..., None]).solution[..., 0]
    out[:, cols] = 3 * finite_norm(step)
    return out
