"""Figure of the ``jacobian`` probe: singular-value spectra over T, gradient-norm propagation,
and the one-step spectral norm next to the spectral radius."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot"]


def _median(da: xr.DataArray) -> xr.DataArray:
    over = [d for d in ("network", "sample") if d in da.dims]
    return da.median(over) if over else da


def plot(ds: xr.Dataset) -> Any:
    """Three panels: log σᵢ per unit time for each T; log ‖∂h_T/∂h_t‖ against t; ‖J_t‖₂ and ρ(J_t)."""
    import matplotlib.pyplot as plt

    panels = 1 + ("log_grad_norm" in ds) + ("step_spectral_norm" in ds)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), constrained_layout=True, squeeze=False)
    axes = list(axes[0])
    ax = axes.pop(0)
    log_sv = _median(ds.log_singular_values)
    for T in ds.horizon.values:
        ax.plot(ds.sv.values, log_sv.sel(horizon=T).values / T, label=f"T = {int(T)}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="singular value index i", ylabel="log(sigma_i) / T  (1/step)", title="spectrum of dh_T/dh_0")
    ax.legend(fontsize=8)
    if "log_grad_norm" in ds:
        ax = axes.pop(0)
        ax.plot(ds.time.values, _median(ds.log_grad_norm).values / np.log(10), label="||.||_2")
        ax.plot(ds.time.values, _median(ds.log_grad_rms).values / np.log(10), "--", label="||.||_F / sqrt(N)")
        ax.set(xlabel="t", ylabel="log10 ||dh_T/dh_t||", title=f"gradient propagation (T = {int(ds.time.values[-1])})")
        ax.legend(fontsize=8)
    if "step_spectral_norm" in ds:
        ax = axes.pop(0)
        ax.plot(ds.step.values, _median(ds.step_spectral_norm).values, label="spectral norm ||J_t||_2")
        ax.plot(ds.step.values, _median(ds.step_spectral_radius).values, label="spectral radius max|eig J_t|")
        ax.axhline(1, color="k", lw=0.8)
        ax.set(xlabel="step t", ylabel="(median over samples)", title="one-step Jacobian")
        ax.legend(fontsize=8)
    return fig
