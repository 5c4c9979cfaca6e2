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
measured spread of the local rates so that the condition number stays below
:data:`dynprobe.qr.KAPPA_MAX`, and so that no column grows or shrinks beyond e^{±ln(max)/4}
of the dtype (no overflow, also not in CholeskyQR2's Gram matrix).

The loop is written for speed at every size: the tangent map is called through its
shape-specialized runner, the log rates are added in place into preallocated per-block sums,
and the host synchronizes only while ``"auto"`` calibrates its interval (a few QRs), at the end
of each of the ``blocks`` time blocks, and at the end — never per step, so a GPU stays busy.
Intervals end exactly at block edges, so every block covers exactly its share of the steps, and at
the checkpoints, so the running estimates are taken at the same step counts whatever the
intervals (an ensemble's joint intervals and a single network's own give the same trace).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import ProbeParameterError
from .linearize import TangentMap, qr_positive
from .qr import KAPPA_MAX, QRMethod, choose_qr, orthonormalize

__all__ = ["QRRun", "qr_iterate", "checkpoint_times", "MAX_INTERVAL"]

MAX_INTERVAL = 64
"""Longest interval between QRs under ``reorth_every="auto"``."""
CALIBRATION_QRS = 6
"""Under ``"auto"`` the interval is re-chosen after each of the first QRs (doubling towards the
target), then once per time block from that block's rates."""

Step = Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]]


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
    qr: str = "householder"  # the factorization used (after any fallback)
    fallbacks: int = 0  # time blocks replayed with Householder after CholeskyQR2 broke down


def checkpoint_times(steps: int, count: int = 40) -> list[int]:
    """About ``count`` log-spaced step counts in [1, steps], ending at ``steps``."""
    pts = {max(1, round(math.exp(x))) for x in torch.linspace(0.0, math.log(steps), count).tolist()}
    return sorted(pts | {steps})


def _interval(track: Tensor, kappa: float, cap: float) -> int:
    """The longest interval keeping the condition number below ``kappa`` and the column growth
    below e^cap, from ``track = [max spread rate, max |rate|]`` per step (one host sync)."""
    spread, growth = track.tolist()
    m = MAX_INTERVAL
    if spread > 0:
        m = min(m, int(math.log(kappa) / spread))
    if growth > 0:
        m = min(m, int(cap / growth))
    return max(1, m)


class _Loop:
    """The state of one QR run between time blocks (see :func:`qr_iterate`)."""

    def __init__(self, step: Step, h: Tensor, Q: Tensor, *, steps: int, start: int, reorth_every: int | str,
                 blocks: int, checkpoints: list[int]) -> None:
        lead, k = tuple(h.shape[:-1]), Q.shape[-1]
        self.step, self.h, self.Q, self.start = step, h, Q, start
        self.auto = reorth_every == "auto"
        self.m = 1 if self.auto else int(reorth_every)
        self.calibrating = CALIBRATION_QRS if self.auto else 0
        self.edges = [round(steps * (b + 1) / blocks) for b in range(blocks)]
        self.sums = torch.zeros(blocks, *lead, k, dtype=torch.float64, device=h.device)
        self.checkpoints = checkpoints
        self.trace: list[Tensor] = []
        self.trace_steps: list[int] = []
        self.intervals: list[int] = []
        self.done = self.next_cp = 0
        self.track = torch.zeros(2, dtype=torch.float64, device=h.device)
        self.cap = math.log(torch.finfo(h.dtype).max) / 4

    def snapshot(self) -> tuple:
        return (self.h, self.Q, self.done, self.next_cp, len(self.trace), len(self.intervals), self.m, self.calibrating)

    def restore(self, saved: tuple, block: int) -> None:
        self.h, self.Q, self.done, self.next_cp, n_trace, n_int, self.m, self.calibrating = saved
        del self.trace[n_trace:], self.trace_steps[n_trace:], self.intervals[n_int:]
        self.sums[block].zero_()
        self.track.zero_()

    def block(self, b: int, method: QRMethod) -> Tensor | None:
        """Propagate through time block ``b``; returns CholeskyQR2's breakdown flag (a device
        tensor, not synchronized) or ``None`` for Householder."""
        acc, edge, step = self.sums[b], self.edges[b], self.step
        h, Q, done = self.h, self.Q, self.done
        bad = torch.zeros((), dtype=torch.bool, device=h.device) if method == "cholesky" else None
        kappa = KAPPA_MAX[method].get(h.dtype, 1e3)
        while done < edge:
            # an interval ends at the block edge and at the next checkpoint, so the running sums are
            # recorded at exactly the checkpoint times whatever intervals "auto" picked
            stop = edge
            if self.next_cp < len(self.checkpoints):
                stop = min(stop, self.checkpoints[self.next_cp])
            n = min(self.m, stop - done)
            t = self.start + done
            for i in range(n):
                h, Q = step(h, Q, t + i)
            Q, lr, ok = orthonormalize(Q, method)
            if bad is not None:  # rows whose state diverged are flagged by the caller instead
                bad |= ~(ok | ~torch.isfinite(h).all(-1)).all()
            acc.add_(lr)
            done += n
            self.intervals.append(n)
            if self.auto:
                rates = torch.where(torch.isfinite(lr).all(-1, keepdim=True), lr, 0.0) / n
                now = torch.stack([(rates.amax(-1) - rates.amin(-1)).amax(), rates.abs().amax()]).to(torch.float64)
                torch.maximum(self.track, now, out=self.track)
                if self.calibrating:
                    self.calibrating -= 1
                    self.m = min(2 * self.m, _interval(self.track, kappa, self.cap))
            while self.next_cp < len(self.checkpoints) and done >= self.checkpoints[self.next_cp]:
                if not self.trace_steps or self.trace_steps[-1] != done:
                    self.trace.append(self.sums.sum(0))
                    self.trace_steps.append(done)
                self.next_cp += 1
        self.h, self.Q, self.done = h, Q, done
        if self.auto:  # the next block's interval, from this block's rates (one sync per block)
            self.m = _interval(self.track, kappa, self.cap)
            self.track.zero_()
        return bad


def qr_iterate(
    tangent: TangentMap | Step,
    h: Tensor,
    Q: Tensor,
    *,
    steps: int,
    start: int = 0,
    reorth_every: int | str = 1,
    blocks: int = 10,
    checkpoints: list[int] | None = None,
    qr: str = "auto",
) -> QRRun:
    """Run the QR method for ``steps`` steps from state ``h`` with orthonormal tangents ``Q``.

    Parameters
    ----------
    tangent
        The tangent map ``(h, Q, t) -> (F(h), J(h) Q)``: a :class:`~dynprobe.linearize.TangentMap`
        (whose shape-specialized :meth:`~dynprobe.linearize.TangentMap.runner` is then used) or
        any function of that signature.
    h, Q
        State ``[*lead, N]`` at time index ``start`` (the drive's clock) and orthonormal tangents
        ``[*lead, N, k]``.
    steps
        Steps to propagate.
    reorth_every
        An int m >= 1 (QR every m steps; 1 is exact for every exponent) or ``"auto"``.
    blocks
        Time blocks (for standard errors); every interval ends at a block edge.
    checkpoints
        Step counts at which to record the running sums (default: log-spaced).
    qr
        ``"auto"`` (by shape and device, :func:`dynprobe.qr.choose_qr`), ``"householder"`` or
        ``"cholesky"`` (CholeskyQR2; a time block where it breaks down is replayed with Householder).

    Returns
    -------
    QRRun

    References
    ----------
    Benettin et al. (1980); Sandri (1996); fading-memory paper App. A.
    """
    if reorth_every != "auto" and (not isinstance(reorth_every, int) or reorth_every < 1):
        raise ProbeParameterError(f"probe 'lyapunov': reorth_every must be an int >= 1 or 'auto', got {reorth_every!r}")
    try:
        method: QRMethod = choose_qr(qr, Q.shape[-2], Q.shape[-1], Q.device)
    except ValueError as err:
        raise ProbeParameterError(f"qr_iterate: {err}") from err
    blocks = max(1, min(int(blocks), steps))
    step = tangent.runner(h, Q, start) if isinstance(tangent, TangentMap) else tangent
    loop = _Loop(step, h, Q, steps=steps, start=start, reorth_every=reorth_every, blocks=blocks,
                 checkpoints=checkpoints or checkpoint_times(steps))
    diverged = torch.zeros(tuple(h.shape[:-1]), dtype=torch.bool, device=h.device)
    fallbacks = 0
    for b in range(blocks):
        saved = loop.snapshot()
        bad = loop.block(b, method)
        if bad is not None and bool(bad):  # CholeskyQR2 broke down in this block: replay it with Householder
            loop.restore(saved, b)
            method, fallbacks = "householder", fallbacks + 1
            loop.block(b, method)
        diverged |= ~torch.isfinite(loop.h).all(-1)
    counts = [e - (loop.edges[b - 1] if b else 0) for b, e in enumerate(loop.edges)]
    used = [b for b in range(blocks) if counts[b] > 0]
    block_sums = loop.sums[used]
    total = block_sums.sum(0)
    overflow = ~diverged & (torch.isnan(total) | torch.isposinf(total)).any(-1)
    if bool(overflow.any()):
        raise ProbeParameterError(
            "probe 'lyapunov': tangent vectors overflowed between re-orthonormalizations "
            f"(intervals up to {max(loop.intervals)} steps); use a smaller reorth_every (or 'auto')"
        )
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=h.device)
    mask = diverged.unsqueeze(-1)
    return QRRun(
        log_r=torch.where(mask, nan, total),
        block_log_r=torch.where(mask, nan, block_sums),
        block_steps=[counts[b] for b in used],
        trace_log_r=torch.where(mask, nan, torch.stack(loop.trace)),
        trace_steps=loop.trace_steps,
        diverged=diverged,
        h=loop.h,
        Q=qr_positive(loop.Q)[0],
        intervals=loop.intervals,
        qr=method,
        fallbacks=fallbacks,
    )
