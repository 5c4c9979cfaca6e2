"""Batched solvers for Fᵖ(h) = h: a descent on q(h) = ½‖Fᵖ(h) − h‖², then Levenberg–Marquardt.

* :func:`descend` — Adam on q for every start at once (per coordinate, so starts do not
  interact), the learning rate decaying geometrically; a start stops once its speed
  ‖Fᵖ(h) − h‖ is small. Descent on q flows into *every* zero of G = Fᵖ − id — saddles
  included — and into the local minima of q with q > 0 (slow points), which is why it comes
  first (Sussillo & Barak 2013, §2): Newton's method started on trajectory states converges
  almost only to the attractors those trajectories approach.
* :func:`refine` — Levenberg–Marquardt on G: (AᵀA + μ·s·I) δ = −AᵀG with A = ∏J − I, a step
  taken only where it lowers ‖G‖ (μ ÷3), else μ ×4; then a few Gauss–Newton polishing steps,
  so converged residuals reach rounding level. Memory is bounded by doing starts in chunks.
  From N = :data:`KRYLOV_MIN` on, the same iteration runs matrix-free
  (:mod:`dynprobe.orbits.krylov`: the step in a Krylov subspace built from products A·v, O(N²)
  each, instead of the N×N matrix A, O(N³) per start and iteration).

Both work on ``[B, S, N]`` batches (B networks, S starts), with no Python loop over starts.

References
----------
Sussillo & Barak (2013), Neural Computation 25(3); Kingma & Ba (2015), "Adam"; Levenberg (1944),
Marquardt (1963); Nocedal & Wright, *Numerical Optimization* (2006), §10.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ProbeParameterError
from .krylov import krylov_lm
from .maps import PeriodMap, finite_norm

__all__ = ["Descent", "Refined", "descend", "refine", "resolve_solver", "POLISH", "CHUNK_ELEMENTS", "KRYLOV_MIN"]

POLISH = 2
"""Gauss–Newton steps after convergence (quadratic convergence: residuals reach rounding)."""
CHUNK_ELEMENTS = 1 << 23
"""Largest number of monodromy-matrix entries (starts × N²) held at once by :func:`refine`."""
KRYLOV_MIN = 128
"""State dimension from which ``solver="auto"`` takes Krylov-subspace steps: below it the dense
N×N step costs little (and is what the small-system tests pin down), above it its O(N³) per
start and iteration dominates (seconds per iteration at N = 512 with 16 starts)."""
BETA1, BETA2 = 0.9, 0.999
STALL = 5
"""Levenberg–Marquardt stops early when no unconverged start gained 10 % over this many steps."""


@dataclass(frozen=True)
class Descent:
    """Where the descent ended: states ``h [B, S, N]``, their speed ``[B, S]`` and the
    iterations it took (the most any start needed)."""

    h: Tensor
    speed: Tensor
    iterations: int


@dataclass(frozen=True)
class Refined:
    """Levenberg–Marquardt result: ``h [B, S, N]``, ``speed [B, S]`` = ‖Fᵖ(h) − h‖₂,
    ``converged [B, S]`` (speed ≤ tol·(1 + ‖h‖∞)), ``stationary [B, S]``: the normalised
    gradient ‖Aᵀ G‖ / ‖G‖ — near 0 at a local minimum of q that is not a zero (a slow point) —
    and ``error [B, S]``: 3 × the length of one more Newton step ‖A⁻¹G‖, the distance to the exact
    zero that is still uncertain. It is at rounding level at a simple zero; at a degenerate one
    (an eigenvalue of ∂Fᵖ/∂h at 1, e.g. at a pitchfork) Newton converges only linearly and a
    residual of 1e-10 leaves the point uncertain by much more, which the error says."""

    h: Tensor
    speed: Tensor
    converged: Tensor
    stationary: Tensor
    error: Tensor


def descend(pmap: PeriodMap, h: Tensor, *, scale: Tensor, iters: int = 300, lr: float = 0.05,
            lr_final: float = 1e-3, stop: float = 1e-6) -> Descent:
    """Adam on q from every start of ``h [B, S, N]``.

    Parameters
    ----------
    scale
        Length scale per network ``[B]`` (the visited states' spread): the step size is
        ``lr·scale``, decaying geometrically to ``lr_final·scale`` over ``iters`` iterations,
        and a start stops once its speed is below ``stop·scale``.
    """
    h = h.clone()
    m = torch.zeros_like(h)
    v = torch.zeros_like(h)
    s = scale.to(h)[:, None, None]
    eps = 1e-12 * s
    active = torch.isfinite(h).all(-1)
    done = 0
    for k in range(int(iters)):
        q, g = pmap.q_grad(h)
        speed = torch.sqrt(2 * q)
        ok = torch.isfinite(q) & torch.isfinite(g).all(-1)
        active &= ok & (speed > stop * s[..., 0])
        if not bool(active.any()):
            break
        done = k + 1
        g = torch.where(active[..., None], g, torch.zeros_like(g))
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        rate = lr * (lr_final / lr) ** (k / max(int(iters) - 1, 1))
        step = rate * s * (m / (1 - BETA1 ** (k + 1))) / (torch.sqrt(v / (1 - BETA2 ** (k + 1))) + eps)
        h = torch.where(active[..., None], h - step, h)
    return Descent(h=h.detach(), speed=pmap.speed(h), iterations=done)


def _lm(pmap: PeriodMap, h: Tensor, *, max_iter: int, tol: float) -> Refined:
    eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with torch.no_grad():
            fp, M, _ = pmap.monodromy(x)
        r = fp - x
        return M - eye, r, finite_norm(r)

    def target(x: Tensor) -> Tensor:
        return tol * (1 + x.abs().amax(-1))

    A, r, err = evaluate(h)
    lam = torch.full(err.shape, 1e-3, dtype=h.dtype, device=h.device)

    def step(frozen: Tensor) -> None:
        nonlocal h, A, r, err, lam
        AtA = A.transpose(-1, -2) @ A
        diag = torch.diagonal(AtA, dim1=-2, dim2=-1).amax(-1).clamp(min=1e-30)
        rhs = -(A.transpose(-1, -2) @ torch.nan_to_num(r)[..., None])[..., 0]
        lhs = torch.nan_to_num(AtA + (lam * diag)[..., None, None] * eye) + 1e-300 * eye
        trial = h + torch.linalg.solve(lhs, rhs)
        A_t, r_t, err_t = evaluate(trial)
        better = (err_t < err) & ~frozen
        h = torch.where(better[..., None], trial, h)
        A = torch.where(better[..., None, None], A_t, A)
        r = torch.where(better[..., None], r_t, r)
        err = torch.where(better, err_t, err)
        lam = torch.where(better, (lam / 3).clamp(min=1e-12), (lam * 4).clamp(max=1e12))

    before = err.clone()
    for k in range(int(max_iter)):
        done = err <= target(h)
        if bool(done.all()):
            break
        if k and k % STALL == 0:  # stop when no unconverged start gained 10 % over the last STALL steps
            moving = ~done & torch.isfinite(err) & (err < 0.9 * before)
            if not bool(moving.any()):
                break
            before = err.clone()
        step(done | ~torch.isfinite(err))
    lam = torch.full_like(lam, 1e-12)
    for _ in range(POLISH):
        step(~torch.isfinite(err))
    grad = (A.transpose(-1, -2) @ torch.nan_to_num(r)[..., None])[..., 0]
    stationary = finite_norm(grad) / err.clamp(min=1e-300)
    newton = torch.linalg.lstsq(torch.nan_to_num(A), -torch.nan_to_num(r)[..., None]).solution[..., 0]
    error = 3 * finite_norm(newton)
    return Refined(h=h, speed=err, converged=torch.isfinite(err) & (err <= target(h)), stationary=stationary,
                   error=torch.where(torch.isfinite(err), error, torch.full_like(error, float("inf"))))


def resolve_solver(solver: str, n: int) -> str:
    """``"dense"`` or ``"krylov"`` for ``solver`` (``"auto"``: krylov from N = :data:`KRYLOV_MIN`)."""
    if solver == "auto":
        return "krylov" if n >= KRYLOV_MIN else "dense"
    if solver not in ("dense", "krylov"):
        raise ProbeParameterError(f"orbit search: solver={solver!r}; use 'auto', 'dense' or 'krylov'")
    return solver


def refine(pmap: PeriodMap, h: Tensor, *, max_iter: int = 50, tol: float = 1e-10, solver: str = "auto") -> Refined:
    """Levenberg–Marquardt on Fᵖ(h) − h from ``h [B, S, N]``, in chunks of starts.

    Parameters
    ----------
    max_iter
        Iterations (each: p Jacobians, or one Krylov basis, and one or more trial steps per start).
    tol
        Converged where ‖Fᵖ(h) − h‖₂ ≤ tol·(1 + ‖h‖∞).
    solver
        ``"dense"`` (the N×N monodromy matrix per start), ``"krylov"`` (matrix-free,
        :func:`dynprobe.orbits.krylov.krylov_lm`) or ``"auto"`` (:func:`resolve_solver`).

    References
    ----------
    Levenberg (1944); Marquardt (1963); Brown & Saad (1990) for the Krylov-subspace variant.
    """
    B, S, n = h.shape
    if resolve_solver(solver, n) == "krylov":
        return Refined(*krylov_lm(pmap, h, max_iter=max_iter, tol=tol, stall=STALL, polish=POLISH))
    chunk = max(1, CHUNK_ELEMENTS // max(B * n * n, 1))
    parts = [_lm(pmap, h[:, lo:lo + chunk], max_iter=max_iter, tol=tol) for lo in range(0, S, chunk)]
    if len(parts) == 1:
        return parts[0]
    fields = ("h", "speed", "converged", "stationary", "error")
    return Refined(*(torch.cat([getattr(p, f) for p in parts], dim=1) for f in fields))
