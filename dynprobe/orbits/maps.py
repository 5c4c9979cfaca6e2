"""The map whose fixed points an orbit search looks for: Fᵖ of a System's closed-loop step,
on state batches ``[B, S, N]`` (B networks — 1 for a single System — times S starts).

:class:`PeriodMap` evaluates Fᵖ(h), the residual G(h) = Fᵖ(h) − h, the speed ‖G(h)‖, the
objective q(h) = ½‖G(h)‖² with its gradient (one backward pass over the batch),
and the monodromy matrix ∏J along the p steps (forward mode, :func:`dynprobe.linearize.jvp_columns`).
Only the System API is used, so any cell — an LSTM's (h, c) state, a feedback loop through a
readout, an ensemble stepped by ``vmap`` — works the same way.

References
----------
Sussillo & Barak (2013), "Opening the black box", Neural Computation 25(3): q(h) = ½‖F(h) − h‖²;
scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 3.1 (periodic points).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..drives import ConstantDrive, SequenceDrive, constant
from ..errors import ProbeParameterError
from ..linearize import jvp_columns
from ..system import System

__all__ = ["PeriodMap", "search_system", "held_input", "finite_norm", "lead", "unlead"]


def lead(system: System, h: Tensor) -> Tensor:
    """``[*lead, S, N]`` → ``[B, S, N]`` (B = 1 for a single System)."""
    return h.unsqueeze(0) if system.networks is None else h


def unlead(system: System, h: Tensor) -> Tensor:
    """``[B, S, ...]`` → the System's own leading shape (drops B = 1 for a single System)."""
    return h[0] if system.networks is None else h


def search_system(system: System, *, inputs: Tensor | None = None, dtype: torch.dtype = torch.float64) -> System:
    """The System whose map is searched: cast to ``dtype`` (float64 by default: the weights are
    the network's, the arithmetic exact enough for residuals of 1e-10), with the input held at
    ``inputs`` (``[M]``) when given. A time-varying drive needs ``inputs`` (fixed points of a
    driven map are those of the map at one held input); its own sequence may still supply the
    starting states (:func:`dynprobe.orbits.starts.visited_states`)."""
    out = system.to(dtype=dtype)
    if inputs is not None:
        value = torch.as_tensor(inputs, dtype=torch.float64).reshape(-1)
        if value.numel() not in (1, system.input_dim) or system.input_dim == 0:
            raise ProbeParameterError(
                f"orbit search: input of {value.numel()} values does not fit {system.name} with M={system.input_dim} "
                "inputs; pass one value per input (or one for all)"
            )
        return out.with_drive(constant(value if value.numel() > 1 else value[0]))
    if isinstance(out.drive, SequenceDrive):
        return out.with_drive(constant(torch.zeros(system.input_dim, dtype=torch.float64)))
    return out


def held_input(system: System) -> Tensor:
    """The input u applied by a time-invariant drive, ``[B, 1, M]`` (zeros when autonomous)."""
    B = system.networks or 1
    if isinstance(system.drive, ConstantDrive):
        u = system.drive.level(system)
    else:
        u = torch.zeros(system.input_dim, dtype=system.dtype, device=system.device)
    return u.reshape(1, 1, -1).expand(B, 1, system.input_dim)


@dataclass(frozen=True)
class PeriodMap:
    """Fᵖ of ``system``'s closed-loop map (time-invariant drive), on states ``[B, S, N]``."""

    system: System
    period: int = 1

    def __post_init__(self) -> None:
        if self.system.drive.time_varying:
            raise ProbeParameterError(
                f"orbit search: {self.system.name} has the time-varying drive {self.system.drive.describe()}; "
                "hold the input fixed (search_system(system, inputs=u)) to search its fixed points"
            )
        if int(self.period) < 1:
            raise ProbeParameterError(f"orbit search: period must be >= 1, got {self.period}")

    def step(self, h: Tensor) -> Tensor:
        """One step F(h) on ``[B, S, N]``."""
        if self.system.networks is None:
            return self.system.map(h[0])[None]
        return self.system.map(h)

    def __call__(self, h: Tensor) -> Tensor:
        for _ in range(self.period):
            h = self.step(h)
        return h

    def residual(self, h: Tensor) -> Tensor:
        """G(h) = Fᵖ(h) − h."""
        return self(h) - h

    def speed(self, h: Tensor) -> Tensor:
        """‖Fᵖ(h) − h‖₂ per start, ``[B, S]`` (+inf where non-finite)."""
        with torch.no_grad():
            return finite_norm(self.residual(h))

    def q_grad(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(q [B, S], ∇q [B, S, N])`` with q = ½‖Fᵖ(h) − h‖²: rows are independent, so one
        backward pass of Σq gives every start's gradient."""
        with torch.enable_grad():
            x = h.detach().requires_grad_(True)
            r = self.residual(x)
            q = 0.5 * (r * r).sum(-1)
            (g,) = torch.autograd.grad(q.sum(), x)
        return q.detach(), g

    def monodromy(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(Fᵖ(h), M, points)``: M = ∂Fᵖ/∂h ``[B, S, N, N]`` (the product of the p Jacobians)
        and the orbit points h, F(h), …, Fᵖ⁻¹(h) as ``[B, S, p, N]``."""
        n = h.shape[-1]
        M = torch.eye(n, dtype=h.dtype, device=h.device).expand(*h.shape, n).clone()
        x, pts = h, []
        for _ in range(self.period):
            pts.append(x)
            if self.system.networks is None:
                x1, M1 = jvp_columns(self.system, x[0], M[0])
                x, M = x1[None], M1[None]
            else:
                x, M = jvp_columns(self.system, x, M)
        return x, M, torch.stack(pts, dim=-2)

    def points(self, h: Tensor, count: int | None = None) -> Tensor:
        """h, F(h), …: ``count`` (default p) points of the orbit through h, ``[B, S, count, N]``."""
        pts = []
        with torch.no_grad():
            for _ in range(self.period if count is None else count):
                pts.append(h)
                h = self.step(h)
        return torch.stack(pts, dim=-2)


def finite_norm(v: Tensor) -> Tensor:
    """‖v‖₂ over the last axis, +inf where any entry is non-finite."""
    norm = torch.linalg.vector_norm(torch.nan_to_num(v), dim=-1)
    return torch.where(torch.isfinite(v).all(-1), norm, torch.full_like(norm, float("inf")))
