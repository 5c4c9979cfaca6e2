"""Figures: the splitting angle along the run and its distribution (``clv``); the variance of the
finite-time exponents against τ with the 1/τ and 1/τ² guides, and their quantiles (``finite_time``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot_clv", "plot_finite_time"]


def _first_network(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(network=0) if "network" in ds.dims else ds


def plot_clv(ds: xr.Dataset) -> Any:
    """Angle between the expanding and contracting subspaces over time (log scale) and its histogram."""
    import matplotlib.pyplot as plt

    ds = _first_network(ds)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    angle = ds.angle.values
    for s in range(ds.sizes["sample"]):
        ax1.plot(ds.time.values, angle[s], lw=0.8, label=f"sample {s}")
    ax1.axhline(ds.attrs["tangency_angle"], color="r", lw=0.8, ls="--", label="tangency threshold")
    ax1.set_yscale("log")
    ax1.set(xlabel="time step t", ylabel=r"angle $\theta_t$ (rad)", title="expanding vs contracting subspace")
    ax1.legend(fontsize=7)
    finite = angle[np.isfinite(angle) & (angle > 0)]
    if finite.size:
        bins = np.logspace(np.log10(finite.min()), np.log10(np.pi / 2), 40)
        ax2.hist(finite, bins=bins, density=True)
        ax2.set_xscale("log")
    ax2.set(xlabel=r"angle $\theta$ (rad)", ylabel="density", title=f"distribution ({ds.hyperbolicity.item()})")
    return fig


def plot_finite_time(ds: xr.Dataset) -> Any:
    """var Λ(τ) against τ (log–log) with 1/τ and 1/τ² through the first point; quantiles of Λ₁."""
    import matplotlib.pyplot as plt

    ds = _first_network(ds)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    tau = ds.tau.values.astype(float)
    for i in ds.exponent.values[: min(4, ds.sizes["exponent"])]:
        var = ds.ftle_var.sel(exponent=i).values
        ax1.errorbar(tau, var, yerr=ds.ftle_var_stderr.sel(exponent=i).values, fmt="o-", ms=3, label=rf"$\lambda_{i}$")
    v0 = float(ds.ftle_var.sel(exponent=1).values[0])
    if np.isfinite(v0) and v0 > 0:
        ax1.plot(tau, v0 * tau[0] / tau, "k--", lw=0.8, label=r"$\propto 1/\tau$")
        ax1.plot(tau, v0 * (tau[0] / tau) ** 2, "k:", lw=0.8, label=r"$\propto 1/\tau^2$")
    ax1.set(xscale="log", yscale="log", xlabel=r"window $\tau$ (steps)", ylabel=r"var $\Lambda(\tau)$",
            title="diffusion of the finite-time exponents")
    ax1.legend(fontsize=7)
    q = ds.ftle_quantile.sel(exponent=1)
    ax2.fill_between(tau, q.sel(quantile=0.05).values, q.sel(quantile=0.95).values, alpha=0.25, label="5-95 %")
    ax2.fill_between(tau, q.sel(quantile=0.25).values, q.sel(quantile=0.75).values, alpha=0.45, label="25-75 %")
    ax2.plot(tau, q.sel(quantile=0.5).values, "k-", lw=1, label="median")
    ax2.axhline(float(ds.exponent_mean.sel(exponent=1)), color="r", lw=0.8, ls="--", label=r"$\lambda_1$")
    ax2.set(xscale="log", xlabel=r"window $\tau$ (steps)", ylabel=r"$\Lambda_1(\tau)$ (1/step)",
            title=r"finite-time $\lambda_1$")
    ax2.legend(fontsize=7)
    return fig
