"""Figures of the ``meanfield`` probe: phase diagrams with the χ₁ = 1 line and a marked network,
1-D sweeps, and theory-vs-network comparisons.

:func:`phase_diagram` stands on its own (a 2-D ``meanfield`` result in, an Axes out), for a
report that shows where a trained network sits: pass ``mark=prediction.point(dims)``.

References
----------
Mean-field paper Fig. 1 (c–e) and Fig. 2 (τ over hyper-parameter planes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot", "phase_diagram", "sweep", "neighbourhood"]


def _label(da: xr.DataArray) -> str:
    return str(da.attrs.get("long_name", da.name))


def phase_diagram(ds: xr.Dataset, ax: Any = None, *, var: str = "chi_1", mark: Mapping[str, float] | None = None,
                  log: bool = True) -> Any:
    """Draw ``var`` over the two grid dimensions of a ``meanfield`` result, the χ₁ = 1 line, and
    (optionally) a marked point ``{dim: value}`` — e.g. a network's estimated hyper-parameters."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    dims = [d for d in ds[var].dims if d != "horizon"]
    if len(dims) != 2:
        raise ValueError(f"phase_diagram needs a result over two grid dimensions, {var} has {dims}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    y, x = dims
    da = ds[var].transpose(y, x)
    values = da.values.astype(np.float64)
    finite = values[np.isfinite(values) & (values > 0)]
    if log and finite.size and var in ("chi_1", "tau", "chi_c"):
        if var == "chi_1":
            span = max(abs(np.log10(finite.min())), abs(np.log10(finite.max())), 1e-3)
            norm = LogNorm(10**-span, 10**span)  # symmetric around chi_1 = 1
            cmap = "RdBu_r"
        else:
            norm, cmap = LogNorm(finite.min(), finite.max()), "viridis"
    else:
        norm, cmap = None, "viridis"
    mesh = ax.pcolormesh(ds[x].values, ds[y].values, np.ma.masked_invalid(values), norm=norm, cmap=cmap,
                         shading="nearest")
    ax.figure.colorbar(mesh, ax=ax, label={"tau": "tau (steps)"}.get(var, var))
    if "chi_1" in ds:
        chi = ds["chi_1"].transpose(y, x).values
        if np.nanmin(chi) < 1 < np.nanmax(chi):
            ax.contour(ds[x].values, ds[y].values, chi, levels=[1.0], colors="k", linewidths=1.5)
            ax.plot([], [], "k-", label="chi_1 = 1")
    if mark is not None and x in mark and y in mark:
        ax.plot([mark[x]], [mark[y]], marker="*", ms=14, color="gold", mec="k", ls="", label="this network")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    ax.set(xlabel=x, ylabel=y)  # the coordinate names (sigma_w, mu_b, ...) read best on a small axis
    return ax


def sweep(ds: xr.Dataset, axes: Any = None) -> Any:
    """χ₁ and τ along the one grid dimension of a ``meanfield`` result."""
    import matplotlib.pyplot as plt

    (dim,) = [d for d in ds["chi_1"].dims]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    axes[0].plot(ds[dim].values, ds["chi_1"].values)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set(xlabel=_label(ds[dim]), ylabel="chi_1", yscale="log")
    if "tau" in ds:
        axes[1].plot(ds[dim].values, ds["tau"].values)
        axes[1].set(xlabel=_label(ds[dim]), ylabel="tau (steps)", yscale="log")
    return axes


def _comparison(ds: xr.Dataset, axes: Any) -> None:
    ax1, ax2 = axes
    t = ds["time"].values
    for key, style, label in (("cos_sim_theory", "k--", "theory"), ("cos_sim_tied", "C0-", "this network (tied)"),
                              ("cos_sim_untied", "C1-", "untied weights")):
        ax1.plot(t, ds[key].values, style, label=label)
    ax1.set(xlabel="step", ylabel="pre-activation cosine similarity c^t", title="Sigma_12: 0, then 1 from step 10")
    ax1.legend(fontsize=8)
    h = ds["horizon"].values
    ax2.semilogy(h, ds["mean_sq_sv_estimate"].values, "k--", label="chi_1^T (theory)")
    ax2.semilogy(h, ds["mean_sq_sv_measured"].values, "C0o-", label="measured tr(JJ^T)/N")
    ax2.set(xlabel="horizon T", ylabel="mean squared singular value",
            title=f"lambda_max: theory {float(ds.lambda_max_estimate):+.3f}, "
                  f"measured {float(ds.lambda_max_measured):+.3f}")
    ax2.legend(fontsize=8)


def plot(ds: xr.Dataset) -> Any:
    """The probe's figure: a phase diagram (2 grid dims), a sweep (1), or theory vs network."""
    import json

    import matplotlib.pyplot as plt

    dims = [d for d in ds["chi_1"].dims]
    if len(dims) >= 2:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        sub = ds.isel({d: 0 for d in dims[:-2]}) if len(dims) > 2 else ds
        mark = None
        if "estimate" in ds.attrs:
            mark = json.loads(ds.attrs["estimate"])
        phase_diagram(sub, axes[0], var="chi_1", mark=mark)
        if "tau" in sub:
            phase_diagram(sub, axes[1], var="tau", mark=mark)
        return fig
    if len(dims) == 1:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
        sweep(ds, axes)
        return fig
    compare = "cos_sim_tied" in ds
    panels = (1 if "estimate" in ds.attrs else 0) + (2 if compare else 1)
    fig = plt.figure(figsize=(5.2 * panels, 4), constrained_layout=True)
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if "estimate" in ds.attrs:  # one network: where it sits in its phase diagram
        estimate = json.loads(ds.attrs["estimate"])
        ax = axes.pop(0)
        phase_diagram(neighbourhood(estimate), ax, var="chi_1", mark=estimate)
        ax.set_title(f"chi_1 around this network ({estimate['cell']}, {estimate['weights']} W)", fontsize=10)
    if compare:
        _comparison(ds, axes)
        return fig
    (ax,) = axes
    ax.semilogy(ds["horizon"].values, ds["mean_sq_sv"].values, "o-", label="chi_1^T (mean squared singular value)")
    ax.semilogy(ds["horizon"].values, ds["var_jjt"].values, "s-", label="variance of the JJ^T spectrum")
    ax.set(xlabel="horizon T", title=f"chi_1 = {float(ds.chi_1):.4g}, tau = {float(ds.tau):.4g}")
    ax.legend(fontsize=8)
    return fig


def neighbourhood(estimate: Mapping[str, Any], points: int = 81) -> xr.Dataset:
    """χ₁ over the plane the paper draws for the cell — (σ_b, σ_w) for vanilla, (μ_b, σ_w) for the
    minimalRNN — spanning the network's own estimate, the other hyper-parameters held at it."""
    from .probe import meanfield

    sigma_w = np.linspace(0.05, max(2.5, 1.6 * estimate["sigma_w"]), points)
    fixed = {k: estimate[k] for k in ("sigma_v", "sigma_b", "mu_b", "R", "sigma12")}
    if estimate["cell"] == "minimalrnn":
        fixed["mu_b"] = np.linspace(min(-4.0, estimate["mu_b"] - 1), max(4.0, estimate["mu_b"] + 1), points)
    else:
        fixed["sigma_b"] = np.linspace(0.0, max(1.0, 1.6 * estimate["sigma_b"]), points)
    return meanfield(None, cell=estimate["cell"], phi=estimate["phi"], weights=estimate["weights"],
                     sigma_w=sigma_w, correlations=False, measure=False, **fixed)
