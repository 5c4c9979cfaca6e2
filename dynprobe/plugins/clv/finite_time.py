"""The ``finite_time`` probe: local (per-step) Lyapunov rates and the distribution of finite-time
exponents over windows of length τ.

With one QR per step, ℓ_j(t) = log|R_t,jj| is the local rate of the j-th Gram–Schmidt direction
and Λ_j(t, τ) = (1/τ) Σ_{s=t}^{t+τ−1} ℓ_j(s) the finite-time exponent of the window. Its mean over
windows is λ_j for every τ; its variance shrinks as τ grows. When the local rates decorrelate
with a finite integrated autocorrelation, var Λ ≈ 2D/τ (the "diffusion" of the exponent, D the
diffusion coefficient; a central limit theorem for log‖J‖). When log|f'| is a coboundary — the
logistic map at r = 4, conjugate to the tent map — D = 0 and var Λ ∝ 1/τ² instead. The slope of
log var against log τ tells the two apart.

References
----------
Grassberger, Badii & Politi (1988), J. Stat. Phys. 51, 135 (fluctuations of finite-time
exponents, generalized exponents); Kuptsov & Parlitz (2012), J. Nonlinear Sci. 22, 727 (local
rates of backward and covariant vectors); Ginelli et al. (2013), J. Phys. A 46, 254005 §4;
fading-memory paper App. A (the QR method).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.labels import lead_dims, network_coords, variable

from .forward import forward_qr, initial_tangents

__all__ = ["finite_time", "window_stats", "WindowStats", "QUANTILES", "default_taus"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Quantiles of the finite-time exponents reported for every τ."""
BLOCKS = 10
"""Contiguous window blocks per sample, the groups of the jackknife standard errors."""


@dataclass
class WindowStats:
    """Statistics of the finite-time exponents for one τ; arrays ``[*net, k]`` (``net`` = [network] or [])."""

    mean: np.ndarray
    mean_stderr: np.ndarray
    var: np.ndarray
    var_stderr: np.ndarray
    quantiles: np.ndarray  # [*net, quantile, k]
    positive: np.ndarray
    windows: int  # windows per sample


def default_taus(steps: int) -> tuple[int, ...]:
    """Powers of two from 1 up to steps/16 (at least 16 windows per sample at the largest τ)."""
    top = max(1, steps // 16)
    return tuple(2**i for i in range(int(np.log2(top)) + 1))


def _jackknife(sums: list[np.ndarray], stat: Callable[..., np.ndarray]) -> np.ndarray:
    """Delete-one-group jackknife standard error of ``stat(sum1, sum2, count)`` from the group
    sums ``(s1, s2, n)``, each ``[group, ...]``."""
    s1, s2, n = sums
    t1, t2, tn = s1.sum(0), s2.sum(0), n.sum(0)
    use = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = stat(t1 - s1, t2 - s2, tn - n)
        loo = np.where(use, loo, np.nan)
        g = use.sum(0)
        centre = np.nanmean(loo, axis=0)
        se = np.sqrt((g - 1) / np.maximum(g, 1) * np.nansum((loo - centre) ** 2, axis=0))
    return np.where(g >= 2, se, np.nan)


def _mean(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    return s1 / n


def _var(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (s2 - s1 * s1 / n) / (n - 1)


def window_stats(local: np.ndarray, tau: int) -> WindowStats:
    """Finite-time exponents over non-overlapping windows of ``tau`` steps.

    ``local: [steps, *net, sample, k]`` local rates (NaN / −inf entries drop out of the windows
    that hold them). Standard errors: delete-one-group jackknife over contiguous blocks of
    windows of every sample, which keeps the correlation between neighbouring windows in.
    """
    steps = local.shape[0]
    nw = steps // tau
    W = local[: nw * tau].reshape(nw, tau, *local.shape[1:]).mean(1)  # [nw, *net, sample, k]
    W = np.where(np.isfinite(W), W, np.nan)
    pooled = np.moveaxis(W, -2, 0).reshape(-1, *W.shape[1:-2], W.shape[-1])  # [sample*nw, *net, k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(pooled, axis=0)
        dev = W - mean[None, ..., None, :]
        var = np.nanvar(pooled, axis=0, ddof=1)
        quant = np.moveaxis(np.nanquantile(pooled, QUANTILES, axis=0), 0, -2)
        positive = np.nanmean(np.where(np.isnan(pooled), np.nan, (pooled > 0).astype(float)), axis=0)
    blocks = min(BLOCKS, nw)
    starts = (np.arange(blocks) * nw) // blocks
    ok = ~np.isnan(dev)
    d0 = np.where(ok, dev, 0.0)
    sums = [np.add.reduceat(a, starts, axis=0) for a in (d0, d0 * d0, ok.astype(float))]
    # groups = (block, sample): move sample next to block and flatten
    sums = [np.moveaxis(a, -2, 1).reshape(-1, *a.shape[1:-2], a.shape[-1]) for a in sums]
    return WindowStats(mean, _jackknife(sums, _mean), var, _jackknife(sums, _var), quant, positive, nw)


def decay_fit(taus: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope of log var against log τ over the upper half of the τ's, and the
    diffusion coefficient D = mean of τ·var/2 there. ``var: [tau, *net, k]``."""
    t = np.asarray(taus, dtype=np.float64)
    use = t >= np.exp(0.5 * (np.log(t[0]) + np.log(t[-1]))) if len(t) > 1 else np.ones(1, bool)
    tt, vv = t[use], var[use]
    shape = (-1,) + (1,) * (var.ndim - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where(vv > 0, vv, np.nan))
        x = np.log(tt).reshape(shape) * np.ones_like(y)
        good = np.isfinite(y)
        cnt = good.sum(0)
        xm = np.where(good, x, 0).sum(0) / cnt
        ym = np.where(good, y, 0).sum(0) / cnt
        sxx = np.where(good, (x - xm) ** 2, 0).sum(0)
        sxy = np.where(good, (x - xm) * (y - ym), 0).sum(0)
        slope = np.where((cnt >= 2) & (sxx > 0), sxy / sxx, np.nan)
        diffusion = np.nanmean(tt.reshape(shape) * vv / 2, axis=0) if np.isfinite(vv).any() else np.full(var.shape[1:], np.nan)
    return slope, diffusion


def finite_time(
    system: System,
    *,
    steps: int = 2000,
    burn_in: int = 100,
    forward_transient: int = 100,
    k: int | None = None,
    taus: tuple[int, ...] | None = None,
    samples: int = 1,
    seed: int = 0,
) -> xr.Dataset:
    """Local Lyapunov rates and the distribution of finite-time exponents over windows of τ steps.

    After ``burn_in`` steps of the state and ``forward_transient`` QR steps (the tangent basis
    converging to the backward Lyapunov vectors), record ℓ_j(t) = log|R_t,jj| for ``steps``
    steps, and for each τ the finite-time exponents over the run's non-overlapping windows.

    Parameters
    ----------
    system
        Any System; an ensemble adds a leading ``network`` dimension.
    steps
        Recorded steps per sample.
    burn_in, forward_transient
        State transient; QR transient whose rates are discarded (with 0, ``exponents`` equal
        ``lyapunov``'s on the same ``steps``, ``burn_in``, ``k``, ``samples``, ``seed``).
    k
        Number of exponents (the k largest); ``None`` for all N.
    taus
        Window lengths τ (each 1 … steps/2); ``None``: 1, 2, 4, … up to steps/16.
    samples
        Initial conditions, drawn from the System's ``init`` with ``seed``.
    seed
        Seeds the initial states and tangents (as ``lyapunov`` does).

    Returns
    -------
    xarray.Dataset
        ``local_rate[sample, step, exponent]``, ``ftle_mean``, ``ftle_mean_stderr``,
        ``ftle_var``, ``ftle_var_stderr``, ``ftle_positive`` ``[tau, exponent]``,
        ``ftle_quantile[tau, quantile, exponent]``, ``var_decay_slope[exponent]`` (−1:
        diffusive), ``diffusion[exponent]``, ``exponents[sample, exponent]``, ``exponent_mean``,
        ``windows[tau]``, ``diverged[sample]``. Contract: docs/RESULTS.md.

    References
    ----------
    Grassberger, Badii & Politi (1988), J. Stat. Phys. 51, 135; Kuptsov & Parlitz (2012);
    fading-memory paper App. A.

    Example
    -------
    >>> ds = dynprobe.run("finite_time", logistic, steps=20000, k=1, samples=8)
    >>> ds.ftle_var.sel(exponent=1).values * ds.tau.values**2   # → π²/6 (a coboundary: D = 0)
    """
    n = system.state_dim
    k = n if k is None else int(k)
    if not 1 <= k <= n:
        raise ProbeParameterError(f"probe 'finite_time': k={k} is outside 1..N={n}; pass 1 <= k <= {n} or k=None")
    if steps < 2 or burn_in < 0 or forward_transient < 0 or samples < 1:
        raise ProbeParameterError("probe 'finite_time': need steps >= 2, samples >= 1, burn_in >= 0 and "
                                  f"forward_transient >= 0 (got {steps}, {samples}, {burn_in}, {forward_transient})")
    taus = default_taus(steps) if taus is None else tuple(sorted({int(t) for t in taus}))
    if not taus or taus[0] < 1 or taus[-1] > steps // 2:
        raise ProbeParameterError(f"probe 'finite_time': taus {taus} must lie in 1..steps/2={steps // 2} "
                                  "(at least two windows per sample)")
    system.check_run(burn_in + forward_transient + steps)
    h = system.advance(system.initial_state(samples, seed=seed), burn_in)
    fwd = forward_qr(system, h, initial_tangents(system, samples, k, seed), steps=forward_transient + steps,
                     start=burn_in)
    diverged = fwd.diverged.cpu().numpy()
    local = fwd.log_r[forward_transient:].cpu().numpy()  # [steps, *lead, k]
    local[:, diverged] = np.nan
    if diverged.any():
        warnings.warn(f"finite_time: {int(diverged.sum())} of {diverged.size} trajectories diverged (non-finite state); "
                      "they are flagged in 'diverged' and left out of the statistics", RuntimeWarning, stacklevel=3)
    stats = [window_stats(local, tau) for tau in taus]
    first = burn_in + forward_transient + 1
    return _dataset(system, local, stats, taus, diverged, k=k, first_step=first, mode=fwd.mode)


def _dataset(system: System, local: np.ndarray, stats: list[WindowStats], taus: tuple[int, ...],
             diverged: np.ndarray, *, k: int, first_step: int, mode: str) -> xr.Dataset:
    net = lead_dims(system)
    per = [*net, "sample"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lam = local.mean(0)
        mean = np.nanmean(lam, axis=-2)
    stack = {f: np.stack([getattr(s, f) for s in stats]) for f in ("mean", "mean_stderr", "var", "var_stderr",
                                                                    "quantiles", "positive")}
    slope, diffusion = decay_fit(np.asarray(taus), stack["var"])
    def by_tau(values: np.ndarray, long_name: str, units: str) -> tuple:
        order = [*net, "tau", "exponent"]
        return variable(order, np.moveaxis(values, 0, len(net)), long_name, units)

    data = {
        "local_rate": variable([*per, "step", "exponent"], np.moveaxis(local, 0, -2), "local rate log|R_jj| of step t",
                               "1/step"),
        "ftle_mean": by_tau(stack["mean"], "mean finite-time exponent over windows of tau steps", "1/step"),
        "ftle_mean_stderr": by_tau(stack["mean_stderr"], "standard error of ftle_mean (jackknife)",
                                   "1/step"),
        "ftle_var": by_tau(stack["var"], "variance of the finite-time exponent over windows", "1/step^2"),
        "ftle_var_stderr": by_tau(stack["var_stderr"], "standard error of ftle_var (jackknife)",
                                  "1/step^2"),
        "ftle_positive": by_tau(stack["positive"], "fraction of windows with a positive exponent", "1"),
        "ftle_quantile": variable([*net, "tau", "quantile", "exponent"], np.moveaxis(stack["quantiles"], 0, len(net)),
                                  "quantile of the finite-time exponent over windows", "1/step"),
        "var_decay_slope": variable([*net, "exponent"], slope, "slope of log ftle_var against log tau (-1: diffusive)"),
        "diffusion": variable([*net, "exponent"], diffusion, "diffusion coefficient D = tau*var/2 at large tau",
                              "1/step"),
        "exponents": variable([*per, "exponent"], lam, "Lyapunov exponent (mean local rate)", "1/step"),
        "exponent_mean": variable([*net, "exponent"], mean, "Lyapunov exponent, mean over samples", "1/step"),
        "windows": variable(["tau"], np.array([s.windows for s in stats]), "windows of tau steps per sample"),
        "diverged": variable(per, diverged, "trajectory became non-finite"),
    }
    coords = {
        "sample": ("sample", np.arange(local.shape[-2]), {"long_name": "initial condition", "units": "1"}),
        "exponent": ("exponent", np.arange(1, k + 1), {"long_name": "exponent index (1 = largest)", "units": "1"}),
        "step": ("step", np.arange(first_step, first_step + local.shape[0]), {"long_name": "step t (h_t-1 to h_t)",
                                                                              "units": "step"}),
        "tau": ("tau", np.asarray(taus), {"long_name": "window length tau", "units": "step"}),
        "quantile": ("quantile", np.asarray(QUANTILES), {"long_name": "quantile level", "units": "1"}),
        **network_coords(system),
    }
    attrs = {"k": k, "state_dim": system.state_dim, "linearization": mode, "windows_overlap": 0,
             "stderr_method": f"jackknife over {BLOCKS} window blocks per sample"}
    return xr.Dataset(data, coords=coords, attrs=attrs)
