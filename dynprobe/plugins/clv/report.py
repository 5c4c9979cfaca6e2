"""What ``diagnose`` asks of the two probes: size-scaled defaults, summary rows and verdicts.

References
----------
Ginelli et al. (2007), PRL 99, 130601 and (2013), J. Phys. A 46, 254005 §5 (the angle between
the expanding and contracting subspaces; tangencies mean the splitting is not hyperbolic);
Grassberger, Badii & Politi (1988), J. Stat. Phys. 51, 135 (finite-time fluctuations).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe import System, Verdict

from .probe import HYPERBOLIC_ANGLE, TANGENCY_ANGLE

__all__ = ["suggest_clv", "suggest_finite_time", "clv_summary", "clv_verdicts", "finite_time_summary",
           "finite_time_verdicts", "CLV_REF", "FTLE_REF"]

CLV_REF = "Ginelli et al. (2007) PRL 99, 130601; (2013) J. Phys. A 46, 254005 §5"
FTLE_REF = "Grassberger, Badii & Politi (1988) J. Stat. Phys. 51, 135; Kuptsov & Parlitz (2012)"
REF_TAU = 16
"""Window length (steps) the finite-time verdict quotes, or the nearest τ of the run."""


def suggest_clv(system: System) -> dict[str, Any]:
    """All vectors up to N = 16, the top 16 beyond; a 300-step window with 200-step transients."""
    n = system.state_dim
    return {"k": None if n <= 16 else 16, "steps": 300, "forward_transient": 200, "backward_transient": 200,
            "samples": 2, "vector_times": 3}


def suggest_finite_time(system: System) -> dict[str, Any]:
    """The top 4 exponents over 1000 steps of 2 samples (windows of 1 … 64 steps)."""
    return {"k": min(system.state_dim, 4), "steps": 1000, "samples": 2}


def clv_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Exponents, the minimum splitting angle and the verdict."""
    rows = [(f"lambda_{i}", f"{float(ds.exponent_mean.sel(exponent=i).median()):+.5f} 1/step")
            for i in ds.exponent.values[:4]]
    rows.append(("expanding dimensions (per sample)", ", ".join(str(int(u)) for u in np.ravel(ds.unstable_dim.values))))
    rows.append(("minimum splitting angle", f"{float(ds.min_angle.min()):.3g} rad"))
    rows.append(("hyperbolicity", ", ".join(np.unique(np.ravel(ds.hyperbolicity.values)))))
    return rows


def clv_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Hyperbolic, close approaches, or near tangencies — from the minimum angle between the
    expanding and the contracting subspaces."""
    if "network" in ds.dims:
        return []
    verdict = str(ds.hyperbolicity.values)
    k, n = int(ds.attrs["k"]), int(ds.attrs["state_dim"])
    u = np.asarray(ds.unstable_dim.values)
    d = np.asarray(ds.defined_vectors.values)
    angle = ds.angle.values
    run = f"{ds.sizes['time']} steps x {ds.sizes['sample']} samples"
    if verdict == "no_splitting":
        if (u == 0).all():
            return [Verdict("hyperbolicity", "no expanding direction: nothing to split",
                            f"all {k} computed exponents <= 0 (lambda_1 = {float(ds.exponent_mean[0]):+.4f} /step)", CLV_REF)]
        return [Verdict("hyperbolicity", f"undetermined: all {k} computed directions expand",
                        f"u = {int(u.max())} positive exponents of k = {k}; rerun clv with k > {int(u.max())} to see the "
                        "contracting side", CLV_REF)]
    low = float(np.nanmin(angle))
    finite = angle[np.isfinite(angle)]
    below = float(np.mean(finite < TANGENCY_ANGLE)) if finite.size else 0.0
    caveat = "" if k == n else f"; contracting side: the {int(d.max() - u.min())} computed of {n - int(u.min())} " \
                               "directions, so the true minimum can only be smaller"
    evidence = (f"min angle {low:.2g} rad, median {float(np.median(finite)):.2f} rad over {run} "
                f"(u = {', '.join(map(str, sorted(set(u.tolist()))))} expanding of k = {k}); {below:.1%} of times below "
                f"{TANGENCY_ANGLE:g} rad{caveat}")
    words = {
        "near_tangency": f"near tangencies: min angle {low:.1g} rad - the splitting is not uniformly hyperbolic",
        "close_approaches": f"close approaches: the subspaces come within {low:.2g} rad (no tangency below "
                            f"{TANGENCY_ANGLE:g} rad seen; a longer run decides)",
        "hyperbolic": f"hyperbolic along the run: the unstable and stable subspaces stay apart (min angle {low:.2f} rad "
                      f">= {HYPERBOLIC_ANGLE:g})",
    }
    return [Verdict("hyperbolicity", words[verdict], evidence, CLV_REF)]


def _ref_tau(ds: xr.Dataset) -> int:
    taus = ds.tau.values
    return int(taus[np.argmin(np.abs(np.log(taus) - np.log(REF_TAU)))])


def finite_time_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """λ₁'s finite-time mean and spread at one τ, the variance decay and the diffusion coefficient."""
    tau = _ref_tau(ds)
    one = ds.sel(exponent=1)
    if "network" in ds.dims:
        one = one.median("network")
    return [
        ("lambda_1", f"{float(one.exponent_mean):+.5f} 1/step"),
        (f"finite-time lambda_1, tau = {tau}", f"{float(one.ftle_mean.sel(tau=tau)):+.4f} ± "
                                               f"{float(np.sqrt(one.ftle_var.sel(tau=tau))):.3g} (sd over windows)"),
        (f"windows with lambda_1 > 0, tau = {tau}", f"{float(one.ftle_positive.sel(tau=tau)):.1%}"),
        ("variance decay slope (-1: diffusive)", f"{float(one.var_decay_slope):.2f}"),
        ("diffusion coefficient D", f"{float(one.diffusion):.3g} 1/step"),
    ]


def _decay_words(slope: float) -> str:
    if not np.isfinite(slope):
        return "variance decay not measured"
    if slope < -1.5:
        return f"variance falls like tau^{slope:.2f}, faster than 1/tau: no diffusion (log|J| close to a coboundary)"
    if slope > -0.5:
        return f"variance falls like tau^{slope:.2f}, slower than 1/tau: long correlations or samples on different attractors"
    return f"variance falls like tau^{slope:.2f} (diffusive, ~1/tau)"


def finite_time_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Whether λ₁'s sign holds over short windows: transient expansion in an ordered network
    (bursts of gradient growth), intermittency in a chaotic one."""
    if "network" in ds.dims:
        return []
    tau = _ref_tau(ds)
    one = ds.sel(exponent=1, tau=tau)
    lam, pos = float(ds.exponent_mean.sel(exponent=1)), float(one.ftle_positive)
    sd = float(np.sqrt(one.ftle_var))
    if not np.isfinite(lam) or not np.isfinite(pos):
        return []
    if lam < 0 and pos > 0.05:
        word = f"transient expansion: lambda_1 < 0 on average, yet > 0 in {pos:.0%} of {tau}-step windows"
    elif lam > 0 and pos < 0.95:
        word = f"intermittent: lambda_1 > 0 on average, yet < 0 in {1 - pos:.0%} of {tau}-step windows"
    else:
        word = f"steady: lambda_1 keeps its sign in {max(pos, 1 - pos):.0%} of {tau}-step windows"
    evidence = (f"finite-time lambda_1 over {tau} steps: {float(one.ftle_mean):+.4f} ± {sd:.3g} /step (sd over windows); "
                f"{_decay_words(float(ds.var_decay_slope.sel(exponent=1)))}; D = {float(ds.diffusion.sel(exponent=1)):.2g} /step")
    return [Verdict("fluctuations", word, evidence, FTLE_REF)]
