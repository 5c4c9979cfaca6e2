"""The linearization at a fixed point or periodic orbit: eigenvalues (Floquet multipliers),
stability, unstable directions, time constants, and the input Jacobian ∂F/∂u.

At a fixed point h* the perturbation δ evolves as δ_{t+1} = J δ_t, J = ∂F/∂h(h*): a mode with
eigenvalue λ decays (|λ| < 1) or grows (|λ| > 1) by |λ| per step, with time constant
τ = −1/ln|λ| steps for a decaying mode; for a period-p orbit the same holds for the monodromy
matrix ∏J over p steps (its eigenvalues are the Floquet multipliers). ∂F/∂u says how an input
pulse moves the state near h* — with the slow modes, what the network does with its inputs there.

References
----------
Sussillo & Barak (2013), Neural Computation 25(3), §3 (linearization around fixed and slow
points); Strogatz, *Nonlinear Dynamics and Chaos* (2015), §10.3 (stability of fixed points of
maps) and §10 (Floquet multipliers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jvp, vmap

from ..system import System
from .maps import PeriodMap

__all__ = ["Linearization", "linearize", "input_jacobian", "timescales", "UNIT_CIRCLE_TOL"]

UNIT_CIRCLE_TOL = 1e-9
"""|λ| within this of 1 counts as neither stable nor unstable (a marginal mode)."""


@dataclass(frozen=True)
class Linearization:
    """``eigenvalues [..., N]`` (complex, by decreasing modulus), ``stable [...]`` (all |λ| < 1),
    ``unstable [...]`` (number of |λ| > 1: the dimension of the unstable manifold),
    ``marginal [...]`` (number of |λ| within the band around 1 that the point's accuracy allows)
    and ``timescale [..., N]`` (steps; −1/ln|λ| for |λ| < 1, +inf otherwise)."""

    eigenvalues: Tensor
    stable: Tensor
    unstable: Tensor
    marginal: Tensor
    timescale: Tensor


def timescales(eigenvalues: Tensor) -> Tensor:
    """−1/ln|λ| (steps) for decaying modes, +inf for |λ| ≥ 1 (0 for λ = 0)."""
    mod = eigenvalues.abs().to(torch.float64)
    tau = -1.0 / torch.log(mod)
    return torch.where(mod < 1, tau, torch.full_like(tau, float("inf")))


def linearize(pmap: PeriodMap, h: Tensor, error: Tensor | None = None) -> Linearization:
    """The spectrum of ∂Fᵖ/∂h at the points ``h [B, K, N]`` (fixed points of Fᵖ).

    ``error [B, K]``: how far each point may be from the exact one. An eigenvalue moves by about
    that much when the point does (‖∂J/∂h‖ = O(1) for the networks here), so a mode with
    ||λ| − 1| within max(error, :data:`UNIT_CIRCLE_TOL`) is *marginal*: neither stable nor
    unstable. (At a degenerate fixed point Newton stops ~1e-4 away, where λ = 1 − 1e-8.)
    """
    with torch.no_grad():
        _, M, _ = pmap.monodromy(h)
    lam = torch.linalg.eigvals(M)
    order = torch.argsort(-lam.abs(), dim=-1, stable=True)
    lam = torch.gather(lam, -1, order)
    mod = lam.abs()
    band = torch.full(mod.shape[:-1], UNIT_CIRCLE_TOL, dtype=mod.dtype, device=mod.device)
    if error is not None:
        band = torch.maximum(band, torch.nan_to_num(error.to(mod), nan=0.0, posinf=1.0))
    inside, outside = mod < 1 - band[..., None], mod > 1 + band[..., None]
    return Linearization(
        eigenvalues=lam,
        stable=inside.all(-1),
        unstable=outside.sum(-1),
        marginal=(~inside & ~outside).sum(-1),
        timescale=timescales(lam),
    )


def input_jacobian(system: System, h: Tensor) -> Tensor:
    """∂F(h, u)/∂u at the input the drive applies at ``h [B, K, N]``: ``[B, K, N, M]``.

    For a feedback drive u = g(h) this is the raw step's input Jacobian at that u (the path
    through the readout is part of ∂F/∂h, not of this).
    """
    B, K, n = h.shape
    m = system.input_dim
    if m == 0:
        return h.new_zeros(B, K, n, 0)
    x = h[0] if system.networks is None else h
    with torch.no_grad():
        u = system.drive.close(system, x, system.drive.external(system, 0, tuple(x.shape[:-1]))).contiguous().clone()
    eye = torch.eye(m, dtype=h.dtype, device=h.device).expand(*u.shape, m)

    def column(e: Tensor) -> Tensor:
        return jvp(lambda v: system.step(x, v), (u,), (e,))[1]

    out = vmap(column, in_dims=-1, out_dims=-1)(eye)
    return out[None] if system.networks is None else out
