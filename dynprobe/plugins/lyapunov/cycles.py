"""Trajectories stuck on an unstable orbit only because floating point cannot leave it.

In exact arithmetic a generic trajectory never lands *exactly* on an unstable periodic orbit.
In floating point it can: the logistic map x ↦ 4x(1 − x) in float32 rounds onto x = 0.5 → 1 → 0
and stays on the fixed point 0 for ever, where the tangent dynamics stretch by 4 per step — the
run then reports ln 4 for that sample instead of the attractor's ln 2. Such a sample is caught
after the QR run by three facts checked together:

1. its final state returns to itself *bitwise* within ``MAX_PERIOD`` steps (an exact cycle);
2. its initial state did not already lie on such a cycle (a user who starts on a fixed point,
   e.g. a linear map at its origin, asks for the exponents there);
3. the tangent dynamics along the cycle expand: the largest growth rate of a tangent vector,
   measured over ``4 * MAX_PERIOD`` steps on the cycle, exceeds ``EXPANDING`` per step.

A stable fixed point or cycle reached to machine precision fails 3 and is left alone. Only
time-invariant drives are checked (with a time-varying input a repeated state is no cycle).

References
----------
Fading-memory paper App. A (the QR run this checks); Grebogi, Ott & Yorke (1988) on
round-off and periodic orbits of chaotic maps on a finite grid of numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.drives import FeedbackDrive
from dynprobe.linearize import jvp_columns

__all__ = ["cycle_period", "stuck_on_cycles", "MAX_PERIOD", "EXPANDING"]

MAX_PERIOD = 64
"""Longest exact floating-point cycle looked for."""
EXPANDING = 1e-2
"""Growth rate (1/step) along the cycle above which it counts as unstable (the regime tolerance)."""


@torch.no_grad()
def cycle_period(system: System, h: Tensor, *, start: int, max_period: int = MAX_PERIOD) -> Tensor:
    """Least p <= ``max_period`` with F^p(h) == h exactly (bitwise equal values), per state; 0 if none."""
    finite = torch.isfinite(h).all(-1)  # -inf maps to -inf: divergence, not a cycle
    x = h
    fixed_u = None if system.drive.time_varying or isinstance(system.drive, FeedbackDrive) else system.inputs(start, h)
    hits: list[Tensor] = []  # hits[p - 1]: F^p(h) == h
    for p in range(1, max_period + 1):
        x = system.map(x, start + p - 1) if fixed_u is None else system.step(x, fixed_u)
        hits.append((x == h).all(-1))
        if p % 8 == 0 and bool((torch.stack(hits).any(0) | ~finite).all()):  # a host sync every 8 steps
            break
    hit = torch.stack(hits) & finite  # [p, *lead]
    first = hit.to(torch.int64).argmax(0) + 1  # least p (argmax: the first maximal entry)
    return torch.where(hit.any(0), first, torch.zeros_like(first))


@torch.no_grad()
def _cycle_rate(system: System, h: Tensor, v: Tensor, *, start: int, steps: int) -> Tensor:
    """Mean log growth per step of the tangent vectors ``v: [*lead, N, 1]`` along h's orbit."""
    total = torch.zeros(h.shape[:-1], dtype=torch.float64, device=h.device)
    for t in range(start, start + steps):
        h, v = jvp_columns(system, h, v, t)
        norm = v.norm(dim=-2, keepdim=True)
        total += torch.log(norm[..., 0, 0]).double()
        v = v / torch.where(norm > 0, norm, torch.ones_like(norm))
    return total / steps


def stuck_on_cycles(
    system: System, h0: Tensor, h_final: Tensor, q_final: Tensor, *, start: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Flags of trajectories that landed on an exact, expanding floating-point cycle.

    Parameters
    ----------
    system
        The System the QR run iterated.
    h0
        ``[*lead, N]`` initial states (before the burn-in).
    h_final, q_final
        ``[*lead, N]`` final states and ``[*lead, N, k]`` final orthonormal tangent blocks of the run.
    start
        Time index of ``h_final``.

    Returns
    -------
    (stuck, period, rate)
        ``stuck[*lead]`` bool; ``period[*lead]`` of the exact cycle the final state lies on
        (0: none within ``MAX_PERIOD``); ``rate[*lead]`` growth rate along it (NaN where no cycle).
    """
    lead = h_final.shape[:-1]
    nan = torch.full(lead, float("nan"), dtype=torch.float64, device=h_final.device)
    if system.drive.time_varying:
        return torch.zeros(lead, dtype=torch.bool, device=h_final.device), torch.zeros_like(nan, dtype=torch.int64), nan
    period = cycle_period(system, h_final, start=start)
    if not bool((period > 0).any()):
        return torch.zeros(lead, dtype=torch.bool, device=h_final.device), period, nan
    started_on = cycle_period(system, h0, start=0) > 0
    rate = _cycle_rate(system, h_final, q_final[..., :1].clone(), start=start, steps=4 * MAX_PERIOD)
    rate = torch.where(period > 0, rate, nan)
    stuck = (period > 0) & ~started_on & (rate > EXPANDING)
    return stuck, period, rate
