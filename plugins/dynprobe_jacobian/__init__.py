"""Bundled plugin: the ``jacobian`` probe — conditioning of end-to-end Jacobians.

Public API: :func:`jacobian` (the probe), :class:`ScaledProduct` / :func:`log_singular_values`
(the log-domain product SVD), :func:`gradient_norms`, :func:`norm_fraction` (the scrambling
paper's Fig. 5 over an ensemble per σ), :func:`plot`.

References: mean-field paper §3.2.2; scrambling paper Fig. 5; fading-memory paper §4.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe

from .ensemble import norm_fraction
from .plot import plot
from .probe import gradient_norms, jacobian
from .product import ScaledProduct, explicit_singular_values, log_singular_values

__all__ = ["jacobian", "gradient_norms", "ScaledProduct", "log_singular_values", "explicit_singular_values",
           "norm_fraction", "plot", "dynprobe_probes"]


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Per horizon: median log spectral norm, log condition number, share with ||J||_2 > 1."""
    over = [d for d in ("network", "sample") if d in ds.log_spectral_norm.dims]
    rows = []
    for T in ds.horizon.values:
        sel = ds.sel(horizon=T)
        rows.append((f"T={int(T)}: log ||J||_2, log cond, tr(JJ^T)/N",
                     f"{float(sel.log_spectral_norm.median(over)):+.4g}, {float(sel.log_condition_number.median(over)):.4g}, "
                     f"{float(np.exp(sel.log_mean_sq_sv).median(over)):.4g}"))
    rows.append(("fraction with ||J||_2 > 1 (by T)", ", ".join(f"{v:.2f}" for v in ds.fraction_norm_exceeds_one.values)))
    if "step_spectral_norm" in ds:
        rows.append(("one-step ||J_t||_2 / spectral radius (median)",
                     f"{float(ds.step_spectral_norm.median()):.4g} / {float(ds.step_spectral_radius.median()):.4g}"))
    if bool(ds.diverged.any()):
        rows.append(("diverged trajectories", str(int(ds.diverged.sum()))))
    return rows


def suggest(system: dynprobe.System) -> dict[str, Any]:
    """Full spectra are O(N^3) per step: shorter horizons and fewer samples for big networks."""
    n = system.state_dim
    return {"horizons": (1, 10, 100) if n <= 128 else (1, 10, 50), "samples": 4 if n <= 128 else 2,
            "step_stats": n <= 256}


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="jacobian",
            run=jacobian,
            plot=plot,
            suggest=suggest,
            summary=summary,
            reference="mean-field paper §3.2.2 eq. (10)-(12); scrambling paper Fig. 5; fading-memory paper §4.1",
        )
    ]
