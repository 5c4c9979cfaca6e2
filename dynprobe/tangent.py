"""Tangent dynamics shared by probes: the QR loop (Benettin et al. 1980; Sandri 1996;
fading-memory paper App. A).

Propagate k tangent vectors along a trajectory, re-orthonormalize them every m steps by QR
with a positive diagonal, and accumulate log diag(R). :func:`qr_iterate` is the loop a power
user calls directly (e.g. over conditions of their own); the ``lyapunov`` probe builds its
inputs and turns its output into a Dataset, ``bifurcation`` and ``gradient_propagation`` use it
for their largest exponents. It lives in the core because several plugins need it and a
plugin never imports another plugin.

With m > 1 the tangent block is propagated unnormalized between QRs: the leading exponents
stay exact while the block's condition number grows like exp((λ₁ − λ_k)·m), and the tail
exponents are lost once it nears 1/eps. ``reorth_every="auto"`` therefore chooses m from the
measured spread of the local rates so that the condition number stays below ``kappa_max``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import ProbeParameterError
from .linearize import TangentMap, qr_positive

__all__ = ["QRRun", "qr_iterate", "checkpoint_times"]

KAPPA_MAX = {torch.float64: 1e8, torch.float32: 1e3}
"""Largest tangent-block condition number allowed between QRs under ``reorth_every="auto"``."""
MAX_INTERVAL = 64


@dataclass
class QRRun:
    """What the QR loop accumulated. Shapes use ``lead`` = ``[sample]`` or ``[network, sample]``."""

    log_r: Tensor  # [*lead, k] float64: Σ log diag R over the run
    block_log_r: Tensor  # [blocks, *lead, k] float64: the same, per (non-empty) time block
    block_steps: list[int]  # steps covered by each block
    trace_log_r: Tensor  # [checkpoints, *lead, k] float64: running Σ at the checkpoint times
    trace_steps: list[int]  # steps elapsed at each checkpoint
    diverged: Tensor  # [*lead] bool: the state became non-finite
    h: Tensor  # [*lead, N]: final state
    Q: Tensor  # [*lead, N, k]: final orthonormal tangent block
    intervals: list[int]  # the re-orthonormalization intervals used


def checkpoint_times(steps: int, count: int = 40) -> list[int]:
    """About ``count`` log-spaced step counts in [1, steps], ending at ``steps``."""
    pts = {max(1, round(math.exp(x))) for x in torch.linspace(0.0, math.log(steps), count).tolist()}
    return sorted(pts | {steps})


def qr_iterate(
    tangent: TangentMap,
    h: Tensor,
    Q: Tensor,
    *,
    steps: int,
    start: int = 0,
    reorth_every: int | str = 1,
    blocks: int = 10,
    checkpoints: list[int] | None = None,
) -> QRRun:
    """Run the QR method for ``steps`` steps from state ``h`` with orthonormal tangents ``Q``.

    ``start`` is the time index of ``h`` (the drive's clock). ``reorth_every`` is an int m >= 1
    or ``"auto"``. ``blocks`` splits the run into that many time blocks (for standard errors).
    """
    auto = reorth_every == "auto"
    if not auto and (not isinstance(reorth_every, int) or reorth_every < 1):
        raise ProbeParameterError(f"probe 'lyapunov': reorth_every must be an int >= 1 or 'auto', got {reorth_every!r}")
    m = 1 if auto else int(reorth_every)
    kappa = KAPPA_MAX.get(h.dtype, 1e3)
    checkpoints = checkpoints or checkpoint_times(steps)
    lead, k = tuple(h.shape[:-1]), Q.shape[-1]
    block_edges = [round(steps * (b + 1) / blocks) for b in range(blocks)]
    # Σ log|R_ii| per block; the running total is their sum (kept off the per-step path)
    block_sums = torch.zeros(blocks, *lead, k, dtype=torch.float64, device=h.device)
    block_counts = [0] * blocks
    trace, trace_steps = [], []
    diverged = torch.zeros(lead, dtype=torch.bool, device=h.device)
    intervals: list[int] = []
    done, block, next_cp = 0, 0, 0
    while done < steps:
        n = min(m, steps - done)
        for i in range(n):
            h, Q = tangent(h, Q, start + done + i)
        # column signs of Q do not change later |R_ii|: no sign fix needed inside the loop
        Q, R = torch.linalg.qr(Q)
        lr = torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
        intervals.append(n)
        done += n
        if block < blocks - 1 and done > block_edges[block]:
            diverged |= ~torch.isfinite(h).all(-1)  # checked once per block, and at the end
            while block < blocks - 1 and done > block_edges[block]:
                block += 1
        block_sums[block] += lr
        block_counts[block] += n
        while next_cp < len(checkpoints) and done >= checkpoints[next_cp]:
            if not trace_steps or trace_steps[-1] != done:
                trace.append(block_sums.sum(0))
                trace_steps.append(done)
            next_cp += 1
        if auto:
            spread = (lr.max(-1).values - lr.min(-1).values)
            spread = spread[torch.isfinite(spread)]
            rate = float(spread.max()) / n if spread.numel() else 0.0
            m = MAX_INTERVAL if rate <= 0 else max(1, min(MAX_INTERVAL, int(math.log(kappa) / rate)))
    diverged |= ~torch.isfinite(h).all(-1)
    used = [b for b in range(blocks) if block_counts[b] > 0]
    block_sums = block_sums[used]
    total = block_sums.sum(0)
    overflow = ~diverged & (torch.isnan(total) | torch.isposinf(total)).any(-1)
    if bool(overflow.any()):
        raise ProbeParameterError(
            "probe 'lyapunov': tangent vectors overflowed between re-orthonormalizations "
            f"(intervals up to {max(intervals)} steps); use a smaller reorth_every (or 'auto')"
        )
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=h.device)
    mask = diverged.unsqueeze(-1)
    return QRRun(
        log_r=torch.where(mask, nan, total),
        block_log_r=torch.where(mask, nan, block_sums),
        block_steps=[block_counts[b] for b in used],
        trace_log_r=torch.where(mask, nan, torch.stack(trace)),
        trace_steps=trace_steps,
        diverged=diverged,
        h=h,
        Q=qr_positive(Q)[0],
        intervals=intervals,
    )
