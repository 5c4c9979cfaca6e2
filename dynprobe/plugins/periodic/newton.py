"""Periodic orbits of any period of an n-D map: batched Levenberg–Marquardt on Fᵖ(h) − h.

From many starting states at once (random ones and states visited by a trajectory), solve
G(h) = Fᵖ(h) − h = 0 with Levenberg–Marquardt steps (AᵀA + μI) δ = −Aᵀ G, A = ∏J − I, the
Jacobians J along the p steps coming from ``torch.func`` (:func:`dynprobe.linearize.jvp_columns`
with identity tangents). Converged solutions are classified by least period, deduplicated up
to cyclic shift (two solutions are the same orbit when one's first point lies on the other's
orbit), rotated to start at the point with the smallest first coordinate, and given their
Floquet multipliers: the eigenvalues of the monodromy matrix ∏J along the orbit; the orbit is
stable (attracting) when all have modulus < 1. Works for any System with a time-invariant
closed-loop map — an LSTM's full (h, c) state included — and for ensembles (leading
``network`` axis), everything batched.

References
----------
Scrambling paper §3 (Def. 3.1, periodic points); attractors paper §3.3 (attractors of trained
RNNs); Sussillo & Barak (2013) for fixed points of RNNs by optimization; Floquet theory of
maps: e.g. Strogatz, *Nonlinear Dynamics and Chaos*, §10.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.linearize import jvp_columns

from .ragged import by_network

__all__ = ["PeriodicOrbits", "find_periodic_orbits", "default_tol", "starting_states", "POLISH"]

POLISH = 2
"""Gauss–Newton steps after convergence (quadratic convergence: residuals reach rounding)."""


@dataclass(frozen=True)
class PeriodicOrbits:
    """Distinct orbits of least period ``period``: ``states[o, phase, unit]``, ``net[o]``,
    Floquet ``multipliers[o, i]`` (complex, by decreasing modulus), ``residual[o]``
    (‖Fᵖ(h) − h‖∞ at phase 0), ``stable[o]``; per network the number of starts that
    ``converged`` and how many of those landed on an orbit of a smaller period (``collapsed``)."""

    period: int
    states: Tensor
    net: Tensor
    multipliers: Tensor
    residual: Tensor
    stable: Tensor
    converged: Tensor
    collapsed: Tensor


def default_tol(dtype: torch.dtype) -> float:
    """Residual tolerance for ‖Fᵖ(h) − h‖∞ / (1 + ‖h‖∞): 1e-10 in float64, 1e-5 in float32."""
    return 1e-10 if dtype == torch.float64 else 1e-5


def starting_states(system: System, starts: int, *, seed: int = 0, burn_in: int = 200) -> Tensor:
    """``starts`` states per network: half drawn from the System's ``init``, half visited by a
    trajectory (after ``burn_in`` steps, one every 7 steps); non-finite ones re-drawn."""
    n_traj = starts // 2
    random = system.initial_state(starts - n_traj, seed=seed)
    if n_traj == 0:
        return random
    h0 = system.initial_state(1, seed=seed + 1)
    traj = system.trajectory(h0, burn_in + 7 * n_traj)[burn_in + 7::7][:n_traj]  # [n_traj, *lead, 1, N]
    visited = traj.squeeze(-2).movedim(0, -2)
    bad = ~torch.isfinite(visited).all(-1, keepdim=True)
    spare = system.initial_state(n_traj, seed=seed + 2)
    return torch.cat([random, torch.where(bad, spare, visited)], dim=-2)


def _flow(system: System, h: Tensor, p: int, jac: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """Fᵖ(h), the monodromy ∏J (if ``jac``), and the orbit points ``[..., p, N]``."""
    n = h.shape[-1]
    x, M, pts = h, None, []
    for _ in range(p):
        pts.append(x)
        if jac:
            eye = torch.eye(n, dtype=h.dtype, device=h.device).expand(*h.shape[:-1], n, n)
            x, J = jvp_columns(system, x, eye)
            M = J if M is None else J @ M
        else:
            with torch.no_grad():
                x = system.map(x)
    return x, M, torch.stack(pts, dim=-2)


def _lm_step(
    system: System, p: int, state: tuple[Tensor, ...], frozen: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One Levenberg–Marquardt step for every start not ``frozen``; a step is taken only
    where it lowers ‖Fᵖ(h) − h‖∞ (μ shrinks ×3), else μ grows ×4."""
    h, M, r, err, lam = state
    eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
    A = M - eye
    AtA = A.transpose(-1, -2) @ A
    scale = torch.diagonal(AtA, dim1=-2, dim2=-1).amax(-1).clamp(min=1e-30)
    rhs = -(A.transpose(-1, -2) @ torch.nan_to_num(r)[..., None])[..., 0]
    lhs = torch.nan_to_num(AtA + (lam * scale)[..., None, None] * eye) + 1e-300 * eye
    trial = h + torch.linalg.solve(lhs, rhs)
    fp_t, M_t, _ = _flow(system, trial, p, jac=True)
    err_t = _norm(fp_t - trial)
    better = (err_t < err) & ~frozen
    return (
        torch.where(better[..., None], trial, h),
        torch.where(better[..., None, None], M_t, M),
        torch.where(better[..., None], fp_t - trial, r),
        torch.where(better, err_t, err),
        torch.where(better, (lam / 3).clamp(min=1e-12), (lam * 4).clamp(max=1e12)),
    )


def _norm(v: Tensor) -> Tensor:
    return torch.where(torch.isfinite(v).all(-1), v.abs().amax(-1), torch.full_like(v[..., 0], float("inf")))


def find_periodic_orbits(
    system: System,
    period: int,
    starts: Tensor | int = 64,
    *,
    max_iter: int = 50,
    tol: float | None = None,
    dedup_tol: float | None = None,
    seed: int = 0,
) -> PeriodicOrbits:
    """Orbits of least period ``period`` of ``system``'s closed-loop map (time-invariant drive).

    Parameters
    ----------
    system
        Any System with an autonomous, constant or feedback drive; ensembles are batched.
    period
        p ≥ 1.
    starts
        Starting states ``[*lead, S, N]``, or a count S for :func:`starting_states`.
    max_iter
        Levenberg–Marquardt iterations (each: p Jacobians and one trial step).
    tol
        Convergence: ‖Fᵖ(h) − h‖∞ ≤ tol·(1 + ‖h‖∞); default :func:`default_tol`.
    dedup_tol
        Two points are the same when closer than dedup_tol·(1 + ‖h‖∞) (∞-norm); default
        ``max(1e3·tol, 1e-7)``.
    seed
        Seeds the starting states.

    Returns
    -------
    PeriodicOrbits

    Example
    -------
    >>> orbits = find_periodic_orbits(henon, 2, starts=64)
    >>> orbits.states[0]   # the period-2 orbit, 2 x 2
    """
    p = int(period)
    if p < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    tol = default_tol(system.dtype) if tol is None else float(tol)
    dedup = max(1e3 * tol, 1e-7) if dedup_tol is None else float(dedup_tol)
    h = starting_states(system, int(starts), seed=seed) if isinstance(starts, int) else starts
    h = h.to(device=system.device, dtype=system.dtype)
    fp, M, _ = _flow(system, h, p, jac=True)
    state = (h, M, fp - h, _norm(fp - h), 1e-3 * torch.ones(h.shape[:-1], dtype=h.dtype, device=h.device))
    for _ in range(max_iter):
        done = state[3] <= tol * (1 + _norm(state[0]))
        if bool(done.all()):
            break
        state = _lm_step(system, p, state, frozen=done)
    # polish: a few Gauss-Newton steps on the converged ones, kept only where they help
    for _ in range(POLISH):
        h, M, r, err, lam = state
        state = _lm_step(system, p, (h, M, r, err, torch.full_like(lam, 1e-12)), frozen=~torch.isfinite(err))
    h, err = state[0], state[3]
    converged = torch.isfinite(err) & (err <= tol * (1 + _norm(h)))
    return _orbits(system, h, converged, p, dedup)


def _flow_b(system: System, h: Tensor, p: int, jac: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """:func:`_flow` on ``[B, S, N]`` states whether or not the System is an ensemble."""
    if system.networks is not None:
        return _flow(system, h, p, jac)
    fp, M, pts = _flow(system, h[0], p, jac)
    return fp[None], None if M is None else M[None], pts[None]


def _orbits(system: System, h: Tensor, converged: Tensor, p: int, dedup: float) -> PeriodicOrbits:
    if system.networks is None:
        h, converged = h[None], converged[None]
    B, S, n = h.shape
    _, _, pts = _flow_b(system, h, p + 1, jac=False)
    scale = dedup * (1 + _norm(pts[:, :, 0]))
    least = torch.full((B, S), p, dtype=torch.long)
    for d in sorted((d for d in range(1, p) if p % d == 0), reverse=True):
        back = _norm(pts[:, :, d] - pts[:, :, 0]) <= scale
        least = torch.where(back, torch.full_like(least, d), least)
    valid = converged & (least == p)
    ring = pts[:, :, :p]
    dist = torch.cdist(pts[:, :, 0], ring.reshape(B, S * p, n), p=float("inf")).reshape(B, S, S, p).amin(-1)
    same = (dist <= scale[:, :, None]) & valid[:, :, None] & valid[:, None, :]
    same |= torch.eye(S, dtype=torch.bool)[None] & valid[:, :, None]
    first = same.to(torch.int8).argmax(-1)
    keep = valid & (first == torch.arange(S)[None])
    net, idx = keep.nonzero(as_tuple=True)
    orbit = ring[net, idx]  # [O, p, n]
    shift = orbit[..., 0].argmin(-1)
    roll = (torch.arange(p)[None] + shift[:, None]) % p
    orbit = torch.gather(orbit, 1, roll[..., None].expand(-1, -1, n))
    order = torch.argsort(orbit[:, 0, 0], stable=True)
    order = order[torch.argsort(net[order], stable=True)]
    orbit, net = orbit[order], net[order]
    rows, col = by_network(orbit[:, 0], net, B)
    fp, M, _ = _flow_b(system, rows, p, jac=True)
    fp, M = fp[net, col], M[net, col]
    mult = torch.linalg.eigvals(M)
    mult = torch.gather(mult, 1, torch.argsort(-mult.abs(), dim=1, stable=True))
    return PeriodicOrbits(
        period=p, states=orbit, net=net, multipliers=mult, residual=_norm(fp - orbit[:, 0]),
        stable=mult.abs().amax(1) < 1 if orbit.shape[0] else torch.zeros(0, dtype=torch.bool),
        converged=converged.sum(1), collapsed=(converged & (least < p)).sum(1),
    )
