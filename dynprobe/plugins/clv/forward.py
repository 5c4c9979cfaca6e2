"""The forward half of Ginelli's method: QR along a trajectory, keeping what the backward half needs.

One QR per step, J_t Q_t = Q_{t+1} R_t (Benettin et al. 1980; Shimada & Nagashima 1979). The
columns of Q_t converge to the backward (Gram–Schmidt) Lyapunov vectors, and log|R_t,jj| are the
local stretching rates whose time means are the exponents. Ginelli's backward pass needs every R_t
of the window and the tail (k × k each) but Q_t only where vectors are wanted, so Q is kept at
those times alone: memory is ``stored·lead·k²`` for the R's plus ``len(keep_q)·lead·N·k`` for
the Q's (8 bytes each, float64), never ``steps·lead·N·k``.

References
----------
Ginelli, Poggi, Turchi, Chaté, Livi & Politi (2007), PRL 99, 130601; Ginelli, Chaté, Livi &
Politi (2013), J. Phys. A 46, 254005, §3.1 (the forward phase); fading-memory paper App. A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.linearize import TangentMap, qr_positive

__all__ = ["ForwardRun", "forward_qr", "initial_tangents", "DIVERGENCE_CHECK"]

DIVERGENCE_CHECK = 16
"""Steps between checks of the state for non-finite values (once it is NaN it stays NaN)."""


@dataclass
class ForwardRun:
    """What the forward QR pass kept. ``lead`` is ``[sample]`` or ``[network, sample]``."""

    log_r: Tensor  # [steps, *lead, k] float64: log|R_t,jj| of every step (the local rates)
    R: Tensor  # [stored, *lead, k, k] float64: R_t of the last ``stored`` steps
    Q: Tensor  # [len(keep_q), *lead, N, k] float64: the orthonormal basis at the kept times
    states: Tensor  # [len(keep_q), *lead, N]: the state h_t at the kept times
    diverged: Tensor  # [*lead] bool: the state became non-finite
    mode: str  # how the tangent map ran (TangentMap.mode)


def initial_tangents(system: System, samples: int, k: int, seed: int) -> Tensor:
    """The random orthonormal start block ``[*lead, N, k]`` — exactly the ``lyapunov`` probe's
    (a generator seeded with ``seed + 1``, one block per sample, the same for every network of an
    ensemble), so that the exponents of a run here equal ``lyapunov``'s on the same settings."""
    n = system.state_dim
    gen = torch.Generator().manual_seed(int(seed) + 1)
    Q0 = torch.randn(samples, n, k, generator=gen, dtype=torch.float64).to(device=system.device, dtype=system.dtype)
    return qr_positive(Q0)[0].expand(*system.lead_shape(samples), n, k).clone()


def forward_qr(
    system: System,
    h: Tensor,
    Q: Tensor,
    *,
    steps: int,
    start: int,
    stored: int = 0,
    keep_q: Sequence[int] = (),
) -> ForwardRun:
    """Run ``steps`` QR steps from state ``h`` (time index ``start``) with orthonormal tangents ``Q``.

    Step i maps h at time ``start + i`` to ``start + i + 1`` and factors J Q = Q' R. ``stored``:
    keep R of the last that many steps; ``keep_q``: step indices i in 0..steps at which to keep
    Q and h (the basis at time ``start + i``, before step i).
    """
    lead, k = tuple(h.shape[:-1]), Q.shape[-1]
    dev, f64 = h.device, torch.float64
    keep = {int(i): j for j, i in enumerate(sorted(set(keep_q)))}
    tangent = TangentMap(system, expected_calls=steps)
    log_r = torch.empty(steps, *lead, k, dtype=f64, device=dev)
    R_store = torch.empty(stored, *lead, k, k, dtype=f64, device=dev)
    Q_keep = torch.empty(len(keep), *lead, system.state_dim, k, dtype=f64, device=dev)
    h_keep = torch.empty(len(keep), *lead, system.state_dim, dtype=h.dtype, device=dev)
    diverged = torch.zeros(lead, dtype=torch.bool, device=dev)
    first_stored = steps - stored
    with torch.no_grad():
        for i in range(steps + 1):
            if i in keep:
                Q_keep[keep[i]] = Q
                h_keep[keep[i]] = h
            if i == steps:
                break
            h, JQ = tangent(h, Q, start + i)
            Q, R = torch.linalg.qr(JQ)
            # log in the system's dtype, then float64: the lyapunov probe's arithmetic exactly
            log_r[i] = torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
            if i >= first_stored:
                R_store[i - first_stored] = R
            if i % DIVERGENCE_CHECK == 0:
                diverged |= ~torch.isfinite(h).all(-1)
    diverged |= ~torch.isfinite(h).all(-1)
    return ForwardRun(log_r, R_store, Q_keep, h_keep, diverged, tangent.mode)
