"""Figures of the ``meanfield`` probe: phase diagrams with the χ₁ = 1 line and a marked network,
1-D sweeps, and theory-vs-network comparisons.

:func:`phase_diagram` stands on its own (a 2-D ``meanfield`` result in, an Axes out), for a
report that shows where a trained network sits: pass ``mark=prediction.point(dims)``.
:func:`plot` is the probe's figure; its panels (``view=``) depend on the result: ``chi_1`` and
``tau`` for a grid (phase diagram or sweep; ``tau`` only when correlations were computed);
``neighbourhood``, ``cosine`` and ``jacobian`` for one network; ``trend`` for a result stacked
along ``checkpoint``/``network``. The convention is :meth:`dynprobe.accessor.DynprobeAccessor.plot`.

References
----------
Mean-field paper Fig. 1 (c–e) and Fig. 2 (τ over hyper-parameter planes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from dynprobe.plotting import (
    integer_ticks,
    lead_dims,
    lead_note,
    legend_outside,
    median_band,
    panel_axes,
    resolve_views,
    stack_coordinate,
)

__all__ = ["plot", "phase_diagram", "sweep", "neighbourhood", "TEX"]

TEX = {"sigma_w": r"$\sigma_w$", "sigma_v": r"$\sigma_v$", "sigma_b": r"$\sigma_b$", "mu_b": r"$\mu_b$",
       "R": "$R$", "sigma12": r"$\Sigma_{12}$", "chi_1": r"$\chi_1$", "tau": r"$\tau$ (steps)",
       "chi_c": r"$\chi_{c^*}$", "q_star": "$q^*$"}
"""Mathtext names of the hyper-parameters and predictions, for axis labels."""


def _label(da: xr.DataArray) -> str:
    return TEX.get(str(da.name), str(da.attrs.get("long_name", da.name)))


def phase_diagram(ds: xr.Dataset, ax: Any = None, *, var: str = "chi_1", mark: Mapping[str, float] | None = None,
                  log: bool = True, **kwargs: Any) -> Any:
    """Draw ``var`` over the two grid dimensions of a ``meanfield`` result, the χ₁ = 1 line, and
    (optionally) a marked point ``{dim: value}`` — e.g. a network's estimated hyper-parameters.
    ``kwargs`` go to ``pcolormesh``."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    dims = [d for d in ds[var].dims if d != "horizon"]
    if len(dims) != 2:
        raise ValueError(f"phase_diagram needs a result over two grid dimensions, {var} has {dims}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), layout="constrained")
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
    mesh = ax.pcolormesh(ds[x].values, ds[y].values, np.ma.masked_invalid(values),
                         **{"norm": norm, "cmap": cmap, "shading": "nearest", **kwargs})
    ax.figure.colorbar(mesh, ax=ax, label=TEX.get(var, var))
    if "chi_1" in ds:
        chi = ds["chi_1"].transpose(y, x).values
        if np.nanmin(chi) < 1 < np.nanmax(chi):
            ax.contour(ds[x].values, ds[y].values, chi, levels=[1.0], colors="k", linewidths=1.5)
            ax.plot([], [], "k-", label=r"$\chi_1 = 1$")
    if mark is not None and x in mark and y in mark:
        ax.plot([mark[x]], [mark[y]], marker="*", ms=14, color="gold", mec="k", ls="", label="this network")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.set(xlabel=TEX.get(x, x), ylabel=TEX.get(y, y))
    return ax


def sweep(ds: xr.Dataset, axes: Any = None, **kwargs: Any) -> Any:
    """χ₁ and (when computed) τ along the one grid dimension of a ``meanfield`` result;
    ``kwargs`` go to ``plot``."""
    import matplotlib.pyplot as plt

    (dim,) = [d for d in ds["chi_1"].dims]
    panels = 1 + ("tau" in ds)
    if axes is None:
        _, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.5), layout="constrained", squeeze=False)
        axes = axes[0]
    axes[0].plot(ds[dim].values, ds["chi_1"].values, **kwargs)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set(xlabel=_label(ds[dim]), ylabel=TEX["chi_1"], yscale="log")
    if "tau" in ds and len(axes) > 1:
        axes[1].plot(ds[dim].values, ds["tau"].values, **kwargs)
        axes[1].set(xlabel=_label(ds[dim]), ylabel=TEX["tau"], yscale="log")
    return axes


def _cosine(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    t = ds["time"].values
    for key, style, label in (("cos_sim_theory", {"color": "k", "ls": "--"}, "theory"),
                              ("cos_sim_tied", {"color": "C0"}, "this network (tied)"),
                              ("cos_sim_untied", {"color": "C1"}, "untied weights")):
        mid, lo, hi = median_band(ds[key])
        ax.plot(t, mid, **{**style, "label": label, **kwargs})
        if lo is not None:
            ax.fill_between(t, lo, hi, color=style["color"], alpha=0.15, lw=0)
    ax.set(xlabel="step $t$", ylabel="pre-activation cosine similarity $c^t$",
           title=r"$\Sigma_{12} = 0$, then 1 from step 10" + lead_note(ds))
    integer_ticks(ax)
    legend_outside(ax)


def _jacobian(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    h = ds["horizon"].values
    compare = "mean_sq_sv_measured" in ds
    curves = ((("mean_sq_sv_estimate", {"color": "k", "ls": "--"}, r"$\chi_1^T$ (theory)"),
               ("mean_sq_sv_measured", {"color": "C0", "marker": "o"}, r"measured $\mathrm{tr}(JJ^\top)/N$"))
              if compare else
              (("mean_sq_sv", {"color": "C0", "marker": "o"}, r"$\chi_1^T$ (mean squared singular value)"),
               ("var_jjt", {"color": "C1", "marker": "s"}, r"variance of the $JJ^\top$ spectrum")))
    for key, style, label in curves:
        mid, lo, hi = median_band(ds[key])
        ax.semilogy(h, mid, **{**style, "label": label, **kwargs})
        if lo is not None:
            ax.fill_between(h, lo, hi, color=style["color"], alpha=0.15, lw=0)
    if compare and not lead_dims(ds):
        title = (rf"$\lambda_\mathrm{{max}}$: theory {float(ds.lambda_max_estimate):+.3f}, "
                 rf"measured {float(ds.lambda_max_measured):+.3f}")
    elif not compare and not lead_dims(ds):
        title = rf"$\chi_1 = {float(ds.chi_1):.4g}$, $\tau = {float(ds.tau):.4g}$" if "tau" in ds else \
            rf"$\chi_1 = {float(ds.chi_1):.4g}$"
    else:
        title = "Jacobian statistics" + lead_note(ds)
    ax.set(xlabel="horizon $T$", ylabel="mean squared singular value" if compare else "", title=title)
    integer_ticks(ax)
    legend_outside(ax)


def _neighbourhood(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    import json

    estimate = json.loads(ds.attrs["estimate"])
    phase_diagram(neighbourhood(estimate), ax, var="chi_1", mark=estimate, **kwargs)
    ax.set_title(rf"$\chi_1$ around this network ({estimate['cell']}, {estimate['weights']} $W$)", fontsize=10)


def _trend(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    dim, x, label = stack_coordinate(ds)
    chi = "chi_1_estimate" if "chi_1_estimate" in ds else "chi_1"
    ax.plot(x, np.log(ds[chi].values.astype(np.float64)) / 2, **{"marker": "o", "ms": 3, "color": "k",
                                                               "label": r"theory $\frac{1}{2}\log\chi_1$", **kwargs})
    if "lambda_max_measured" in ds:
        ax.errorbar(x, ds.lambda_max_measured.values, yerr=ds.get("lambda_max_measured_stderr"), fmt="o", ms=3,
                    color="C0", capsize=2, label=r"measured $\lambda_\mathrm{max}$")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set(xlabel=label, ylabel=r"$\lambda_\mathrm{max}$ (1/step)", title=f"predicted and measured along {dim}")
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        integer_ticks(ax)
    legend_outside(ax)


def plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
         view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """The probe's figure: a phase diagram (2 grid dims), a sweep (1), theory next to the
    network (a System given), or theory alone; the panels are listed in the module docstring."""
    import json

    stacked = lead_dims(ds)
    dims = [d for d in ds["chi_1"].dims if d not in stacked]
    if dims:
        present = ["chi_1"] + (["tau"] if "tau" in ds else [])
        views = resolve_views("meanfield", present, view, ax)
        fig, axes = panel_axes("meanfield", views, ax, figsize, panel_size=(5.0, 4.0))
        sub = ds.isel({d: 0 for d in stacked + dims[:-2]})
        mark = json.loads(ds.attrs["estimate"]) if "estimate" in ds.attrs else None
        for name, target in axes.items():
            if len(dims) >= 2:
                phase_diagram(sub, target, var=name, mark=mark, **kwargs)
            else:
                target.plot(sub[dims[0]].values, sub[name].values, **kwargs)
                if name == "chi_1":
                    target.axhline(1.0, color="k", lw=0.8)
                target.set(xlabel=TEX.get(dims[0], dims[0]), ylabel=TEX[name], yscale="log")
        return fig
    present = (["trend"] if stacked else []) + (["neighbourhood"] if "estimate" in ds.attrs and not stacked else []) \
        + (["cosine"] if "cos_sim_tied" in ds else []) + ["jacobian"]
    views = resolve_views("meanfield", present, view, ax)
    fig, axes = panel_axes("meanfield", views, ax, figsize, panel_size=(5.0, 4.0))
    draw = {"trend": _trend, "neighbourhood": _neighbourhood, "cosine": _cosine, "jacobian": _jacobian}
    for name, target in axes.items():
        draw[name](ds, target, kwargs)
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
