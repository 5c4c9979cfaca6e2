"""The ``lyapunov`` probe: the Lyapunov spectrum of a System by the QR method.

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.1 (exponents as memory
timescales; the largest one separates order from chaos) and App. A (the QR algorithm);
Sandri (1996); Engelken, Wolf & Abbott (2020) for RNN spectra; Kaplan & Yorke (1979) for the
dimension; Pesin's identity for the entropy rate (sum of positive exponents).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.tangent import QRRun, qr_iterate

from .cycles import MAX_PERIOD, stuck_on_cycles
from .uncertainty import GROUP_Z, Uncertainty, uncertainty

__all__ = ["lyapunov", "kaplan_yorke", "regime_of", "REGIME_TOL"]

REGIME_TOL = 1e-2
"""|λ₁| below max(3·stderr, REGIME_TOL) per step counts as marginal — near the edge of chaos:
perturbations grow or shrink by less than a factor e over 1/REGIME_TOL = 100 steps."""
BLOCKS = 100
"""Time blocks of a run (fewer for short runs): batch means for the within-trajectory error."""
MIN_BLOCK_STEPS = 10
"""Shortest time block. Every block ends with a QR, so 3-step blocks (300 steps in 100 blocks)
would cap ``reorth_every="auto"`` at 3 and spend more on block bookkeeping than on the run; the
batch means of 30 blocks of 10 steps, corrected for their autocorrelation, still estimate the
long-run variance (:mod:`dynprobe.plugins.lyapunov.uncertainty`)."""


def _blocks(steps: int) -> int:
    """:data:`BLOCKS` time blocks, or as many of :data:`MIN_BLOCK_STEPS` steps as a short run has."""
    return max(1, min(BLOCKS, steps // MIN_BLOCK_STEPS))


def kaplan_yorke(exponents: np.ndarray) -> np.ndarray:
    """Kaplan–Yorke dimension of sorted (descending) spectra ``[..., k]``.

    D = j + (λ₁ + … + λ_j) / |λ_{j+1}| with j the largest index whose partial sum is >= 0;
    0 when λ₁ < 0; k when every partial sum is >= 0 (then only a lower bound if k < N).
    """
    lam = np.asarray(exponents, dtype=np.float64)
    csum = np.cumsum(lam, axis=-1)
    k = lam.shape[-1]
    j = np.sum(csum >= 0, axis=-1)  # partial sums are >= 0 up to j, then negative
    out = np.where(j >= k, float(k), 0.0).astype(np.float64)
    inner = (j > 0) & (j < k)
    if inner.any():
        jj = np.clip(j - 1, 0, k - 1)
        s_j = np.take_along_axis(csum, jj[..., None], axis=-1)[..., 0]
        nxt = np.take_along_axis(lam, np.clip(j, 0, k - 1)[..., None], axis=-1)[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            val = j + s_j / np.abs(nxt)
        out = np.where(inner, val, out)
    return np.where(np.isnan(lam).any(-1), np.nan, out)


def regime_of(lam_max: float, stderr: float) -> str:
    """``ordered`` / ``marginal`` / ``chaotic`` from the largest exponent and its standard error."""
    if np.isnan(lam_max):
        return "undetermined"
    if lam_max == -np.inf:
        return "ordered"
    tol = max(3.0 * (stderr if np.isfinite(stderr) else 0.0), REGIME_TOL)
    if lam_max > tol:
        return "chaotic"
    if lam_max < -tol:
        return "ordered"
    return "marginal"


def _sorted(log_r: np.ndarray) -> np.ndarray:
    """Descending order per row, NaN last."""
    key = np.where(np.isnan(log_r), -np.inf, log_r)
    return np.argsort(-key, axis=-1, kind="stable")


def lyapunov(
    system: System,
    *,
    steps: int = 1000,
    burn_in: int = 100,
    k: int | None = None,
    reorth_every: int | Literal["auto"] = "auto",
    samples: int = 1,
    seed: int = 0,
) -> xr.Dataset:
    """Lyapunov spectrum by the QR method, batched over initial conditions.

    Burn in ``burn_in`` steps, then propagate ``k`` tangent vectors (all N by default) for
    ``steps`` steps, re-orthonormalizing every ``reorth_every`` steps (an int, or ``"auto"``:
    the largest interval that keeps the tangent block well conditioned), and average
    log diag(R). For a ``sequence`` drive the exponents are conditional on that input.

    Parameters
    ----------
    system
        Any System; an ensemble adds a leading ``network`` dimension to every output.
    steps, burn_in
        Measured steps and discarded transient.
    k
        Number of exponents (the k largest); ``None`` for the full spectrum.
    reorth_every
        QR interval m (1 = every step) or ``"auto"`` (the default: the longest interval that keeps
        the tangent block's condition number below 1e8 in float64 — every exponent as exact as
        with m = 1 to ~1e-8, at a fraction of the QRs; :func:`dynprobe.tangent.qr_iterate`).
    samples
        Initial conditions, drawn from the System's ``init`` with ``seed``. With one sample the
        standard error covers time averaging along that trajectory only, not which attractor
        other initial conditions reach: use ``samples >= 2`` for the between-sample term.
    seed
        Seeds the initial states and the random initial tangent block.

    Returns
    -------
    xarray.Dataset
        ``exponents[sample, exponent]`` (sorted, 1/step), ``exponent_mean[exponent]`` over the
        samples used, ``exponent_stderr[exponent]`` — the larger of the within-trajectory error
        (batch means over ``BLOCKS`` time blocks, corrected for their autocorrelation and for
        correlation between samples) and the between-sample error (see
        :mod:`dynprobe.plugins.lyapunov.uncertainty`), both also reported
        (``exponent_stderr_within``, ``exponent_stderr_between``), ``sample_stderr[sample,
        exponent]``, ``attractor[sample]`` (groups of samples whose largest exponents differ
        beyond their errors: different attractors) and ``attractors``, ``convergence[sample,
        avg_steps, exponent]`` (running estimates at log-spaced step counts),
        ``kaplan_yorke_dimension``, ``entropy_rate`` (sum of positive exponents, nats/step),
        ``diverged`` and ``stuck`` per sample (a non-finite state; an exact floating-point cycle
        whose tangent dynamics expand, see :mod:`dynprobe.plugins.lyapunov.cycles`: both are left
        out of the mean), ``cycle_period``, ``timescale[sample, exponent]`` (−1/λ for λ < 0,
        +inf otherwise), ``regime``.

    References
    ----------
    Fading-memory paper §2.1 and App. A; Sandri (1996); Engelken et al. (2020).

    Example
    -------
    >>> ds = dynprobe.run("lyapunov", dynprobe.load_system("lstm2d_chaotic"), steps=5000)
    >>> float(ds.exponent_mean[0])  # > 0: chaotic
    """
    n = system.state_dim
    k = n if k is None else int(k)
    if not 1 <= k <= n:
        raise ProbeParameterError(f"probe 'lyapunov': k={k} is outside 1..N={n}; pass 1 <= k <= {n} or k=None")
    if steps < 2 or burn_in < 0 or samples < 1:
        raise ProbeParameterError(
            f"probe 'lyapunov': need steps >= 2, burn_in >= 0, samples >= 1 (got {steps}, {burn_in}, {samples})"
        )
    m = reorth_every if reorth_every == "auto" else int(reorth_every)
    if m != "auto" and not 1 <= m <= steps // 2:
        raise ProbeParameterError(
            f"probe 'lyapunov': reorth_every={m} must lie in 1..steps/2={steps // 2} (or be 'auto')"
        )
    system.check_run(burn_in + steps)

    h0 = system.initial_state(samples, seed=seed)
    h = system.advance(h0, burn_in)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    # the same tangent start for every network of an ensemble, as for its initial states
    Q0 = torch.randn(samples, n, k, generator=gen, dtype=torch.float64).to(device=system.device, dtype=system.dtype)
    Q0 = qr_positive(Q0)[0].expand(*h.shape[:-1], n, k).clone()
    tangent = TangentMap(system, expected_calls=steps)
    with torch.no_grad():
        out = qr_iterate(tangent, h, Q0, steps=steps, start=burn_in, reorth_every=m, blocks=_blocks(steps))
    stuck, period, rate = stuck_on_cycles(system, h0, out.h, out.Q, start=burn_in + steps)
    return _dataset(system, out, stuck & ~out.diverged, period, rate, steps=steps, k=k, mode=tangent.mode, reorth=m)


def _warn(diverged: np.ndarray, stuck: np.ndarray, rate: np.ndarray, period: np.ndarray, unc: Uncertainty,
          lam1: np.ndarray) -> None:
    if diverged.any():
        warnings.warn(
            f"lyapunov: {int(diverged.sum())} of {diverged.size} trajectories diverged (non-finite state); "
            "they are flagged in 'diverged' and left out of exponent_mean",
            RuntimeWarning,
            stacklevel=4,
        )
    if stuck.any():
        warnings.warn(
            f"lyapunov: {int(stuck.sum())} of {stuck.size} trajectories landed on an exact floating-point cycle "
            f"(period {', '.join(map(str, np.unique(period[stuck])))}) whose tangent dynamics expand "
            f"({np.nanmax(rate[stuck]):+.3g}/step): an unstable orbit they stay on only because rounding cannot leave it. "
            "They are flagged in 'stuck' and left out of exponent_mean; analyse in float64 or start elsewhere",
            RuntimeWarning,
            stacklevel=4,
        )
    if (unc.attractors > 1).any():
        groups = unc.attractor.reshape(-1, unc.attractor.shape[-1])
        lam = lam1.reshape(groups.shape)
        row = int(np.argmax(unc.attractors.reshape(-1)))
        means = [float(np.mean(lam[row][groups[row] == g])) for g in range(int(groups[row].max()) + 1)]
        warnings.warn(
            f"lyapunov: the samples reach {len(means)} attractors with different largest exponents "
            f"({', '.join(f'{v:+.4g}' for v in means)} /step); exponent_mean and its stderr average over the "
            "initial conditions — 'attractor' labels each sample",
            RuntimeWarning,
            stacklevel=4,
        )


def _dataset(system: System, out: QRRun, stuck: torch.Tensor, period: torch.Tensor, rate: torch.Tensor, *,
             steps: int, k: int, mode: str, reorth: int | str) -> xr.Dataset:
    ens = system.networks is not None
    lead_dims = ["network", "sample"] if ens else ["sample"]
    net_dims = lead_dims[:-1]
    diverged = out.diverged.cpu().numpy()
    stuck, period, rate = stuck.cpu().numpy(), period.cpu().numpy(), rate.cpu().numpy()
    total = out.log_r.cpu().numpy()
    order = _sorted(total)
    lam = np.take_along_axis(total, order, axis=-1) / steps
    lam[diverged] = np.nan
    blocks = np.take_along_axis(out.block_log_r.cpu().numpy(), order[None], axis=-1)
    unc = uncertainty(np.moveaxis(blocks, 0, -2), np.asarray(out.block_steps), ~diverged & ~stuck)
    trace = out.trace_log_r.cpu().numpy() / np.asarray(out.trace_steps, dtype=np.float64).reshape(-1, *([1] * total.ndim))
    trace = -np.sort(-np.where(np.isnan(trace), -np.inf, trace), axis=-1)
    trace = np.moveaxis(trace, 0, -2)  # [*lead, time, k]
    trace[diverged] = np.nan
    _warn(diverged, stuck, rate, period, unc, lam[..., 0])

    timescale = np.where(lam < 0, -1.0 / np.where(lam < 0, lam, -1.0), np.inf)
    timescale = np.where(np.isnan(lam), np.nan, timescale)
    entropy = np.where(np.isnan(lam).any(-1), np.nan, np.sum(np.where(lam > 0, lam, 0.0), axis=-1))
    ky = kaplan_yorke(lam)
    with np.errstate(invalid="ignore"):
        regimes = np.vectorize(regime_of, otypes=[str])(unc.mean[..., 0], unc.stderr[..., 0])

    coords = {
        "sample": ("sample", np.arange(lam.shape[-2]), {"long_name": "initial condition", "units": "1"}),
        "exponent": ("exponent", np.arange(1, k + 1), {"long_name": "exponent index (1 = largest)", "units": "1"}),
        "avg_steps": ("avg_steps", np.asarray(out.trace_steps), {"long_name": "steps averaged", "units": "step"}),
    }
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    per_exp = {"units": "1/step"}
    exp_dims = [*net_dims, "exponent"]
    ds = xr.Dataset(
        {
            "exponents": ([*lead_dims, "exponent"], lam, {"long_name": "Lyapunov exponent", **per_exp}),
            "exponent_mean": (exp_dims, unc.mean, {"long_name": "Lyapunov exponent, mean over samples", **per_exp}),
            "exponent_stderr": (exp_dims, unc.stderr, {
                "long_name": "standard error of the mean exponent, max(within, between)", **per_exp}),
            "exponent_stderr_within": (exp_dims, unc.within, {
                "long_name": "standard error from time averaging along the trajectories", **per_exp}),
            "exponent_stderr_between": (exp_dims, unc.between, {
                "long_name": "standard error from the spread between samples (NaN for one sample)", **per_exp}),
            "sample_stderr": ([*lead_dims, "exponent"], unc.sample_stderr, {
                "long_name": "standard error of each sample's exponent (time averaging)", **per_exp}),
            "convergence": ([*lead_dims, "avg_steps", "exponent"], trace, {"long_name": "running exponent estimate", **per_exp}),
            "kaplan_yorke_dimension": (lead_dims, ky, {"long_name": "Kaplan-Yorke dimension", "units": "1"}),
            "entropy_rate": (
                lead_dims, entropy, {"long_name": "sum of positive exponents (KS entropy bound)", "units": "nats/step"}
            ),
            "timescale": ([*lead_dims, "exponent"], timescale, {"long_name": "memory timescale -1/lambda", "units": "step"}),
            "diverged": (lead_dims, diverged, {"long_name": "trajectory became non-finite", "units": "1"}),
            "stuck": (lead_dims, stuck, {"long_name": "landed on an exact floating-point cycle that expands", "units": "1"}),
            "cycle_period": (lead_dims, period, {"long_name": "period of the exact floating-point cycle the final state "
                                                 f"lies on (0: none up to {MAX_PERIOD})", "units": "step",
                                                 "scope": "rounding"}),
            "attractor": (lead_dims, unc.attractor, {"long_name": "attractor group by the largest exponent "
                                                     "(0: largest; -1: left out)", "units": "1"}),
            "attractors": (net_dims, unc.attractors, {"long_name": "groups of samples with different largest exponents",
                                                      "units": "1"}),
            "regime": (net_dims, regimes, {"long_name": "regime from the largest exponent", "units": "1"}),
        },
        coords=coords,
        attrs={
            "k": k,
            "state_dim": system.state_dim,
            "steps": steps,
            "reorth_every": str(reorth),
            # scalars, not the array of intervals: a 1-D attr comes back from a Zarr store as a list
            "reorth_interval_min": int(np.min(out.intervals)),
            "reorth_interval_max": int(np.max(out.intervals)),
            "linearization": mode,
            "regime_tolerance": REGIME_TOL,
            "blocks": len(out.block_steps),
            "attractor_z": GROUP_Z,
            "max_cycle_period": MAX_PERIOD,
        },
    )
    return ds


