"""Which solutions are the same orbit: least periods and deduplication up to cyclic shift.

A converged solution h of Fᵖ(h) = h has least period d, the smallest divisor of p with
‖Fᵈ(h) − h‖ within tolerance. Two solutions of least period p are one orbit when the first lies
within ``tol`` of any point of the other's orbit (the orbit visited from another phase).
:func:`cluster` labels every start with its orbit — batched over networks and starts — so a
search knows how many starts reached each orbit and which start found it first. Distances are
Euclidean, so the test is the same in every rotated basis (a network's state coordinates
carry no preferred axes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .maps import PeriodMap, finite_norm

__all__ = ["least_period", "cluster", "canonical_phase"]


def least_period(pmap: PeriodMap, h: Tensor, tol: Tensor) -> Tensor:
    """``[B, S]``: the least period of each solution ``h [B, S, N]`` of Fᵖ(h) = h — the smallest
    divisor d of p with ‖Fᵈ(h) − h‖ ≤ ``tol [B, S]`` (p when none is)."""
    p = pmap.period
    pts = pmap.points(h, p)
    least = torch.full(h.shape[:-1], p, dtype=torch.long, device=h.device)
    for d in sorted((d for d in range(1, p) if p % d == 0), reverse=True):
        back = finite_norm(pts[..., d, :] - h) <= tol
        least = torch.where(back, torch.full_like(least, d), least)
    return least


def cluster(points: Tensor, valid: Tensor, tol: Tensor, radius: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Group solutions by orbit.

    Parameters
    ----------
    points
        ``[B, S, p, N]``: the orbit through each solution (phase 0 = the solution itself).
    valid
        ``[B, S]``: which solutions take part.
    tol
        ``[B]``: distance within which two orbit points are one.
    radius
        ``[B, S]``: each solution's own uncertainty (added to ``tol`` for every pair; default 0).

    Returns
    -------
    (label, first)
        ``label [B, S]``: index of the representative (the earliest start of its orbit; −1 where
        not valid); ``first [B, S]``: true at the representatives.
    """
    B, S, p, n = points.shape
    if S == 0:
        empty = torch.zeros(B, 0, dtype=torch.long, device=points.device)
        return empty, empty.bool()
    head = torch.nan_to_num(points[:, :, 0], nan=0.0, posinf=0.0, neginf=0.0)
    ring = torch.nan_to_num(points, nan=0.0, posinf=0.0, neginf=0.0).reshape(B, S * p, n)
    dist = torch.cdist(head, ring).reshape(B, S, S, p).amin(-1)
    reach = tol[:, None, None] if radius is None else tol[:, None, None] + radius[:, :, None] + radius[:, None, :]
    same = (dist <= reach) & valid[:, :, None] & valid[:, None, :]
    same |= torch.eye(S, dtype=torch.bool, device=points.device)[None] & valid[:, :, None]
    first = same.to(torch.int8).argmax(-1) == torch.arange(S, device=points.device)[None]
    first &= valid
    # each solution joins the earliest representative it matches (itself if none)
    hit = same & first[:, None, :]
    label = torch.where(hit.any(-1), hit.to(torch.int8).argmax(-1), torch.arange(S, device=points.device)[None])
    first |= valid & ~hit.any(-1)
    return torch.where(valid, label, torch.full_like(label, -1)), first


def canonical_phase(orbit: Tensor) -> Tensor:
    """Rotate orbits ``[K, p, N]`` to start at the point with the smallest first coordinate."""
    K, p, n = orbit.shape
    if p == 1 or K == 0:
        return orbit
    shift = orbit[..., 0].argmin(-1)
    roll = (torch.arange(p, device=orbit.device)[None] + shift[:, None]) % p
    return torch.gather(orbit, 1, roll[..., None].expand(-1, -1, n))
