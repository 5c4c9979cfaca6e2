"""Figures of a ``bifurcation`` result: the orbit diagram coloured by regime with λ_max(s)
beneath it (attractors paper Fig. 1a), and the 2-D view (y_t, y_t − y_{t−1}) (Fig. 4, 7, 8)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr

__all__ = ["plot", "plot_orbit_diagram", "plot_2d", "REGIME_COLORS"]

REGIME_COLORS = {
    "fixed_point": "#1f77b4",
    "periodic": "#2ca02c",
    "quasi_periodic": "#9467bd",
    "chaotic": "#d62728",
    "divergent": "#7f7f7f",
    "multistable": "#ff7f0e",
}


def _points(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    orbit = ds.orbit.values  # [S, B, T]
    S, B, T = orbit.shape
    x = np.repeat(ds.param.values.astype(np.float64), B * T)
    y = orbit.reshape(-1)
    regime = np.repeat(ds.regime.values.astype(str), B * T)
    keep = np.isfinite(y)
    return x[keep], y[keep], regime[keep]


def plot_orbit_diagram(ds: xr.Dataset, axes: Any = None) -> Any:
    """Orbit diagram (tiny points, param on x, coloured by regime) over λ_max(s)."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 1.3), constrained_layout=True)
    ax1, ax2 = axes
    x, y, regime = _points(ds)
    size = max(0.05, min(6.0, 4e4 / max(len(y), 1)))
    for name, color in REGIME_COLORS.items():
        sel = regime == name
        if sel.any():
            ax1.scatter(x[sel], y[sel], s=size, c=color, marker=".", linewidths=0, label=name.replace("_", " "),
                        rasterized=True)
    ax1.set_ylabel(ds.orbit.attrs.get("long_name", "orbit"))
    ax1.set_title(f"bifurcation diagram — path {ds.attrs.get('path', '')}, "
                  f"burn-in {ds.attrs.get('burn_in', '?')}, {ds.sizes['time']} steps shown")
    leg = ax1.legend(loc="best", fontsize=7, markerscale=12 / max(size, 0.05) ** 0.5, frameon=True)
    leg.get_frame().set_alpha(0.8)
    lam = ds.max_exponent.values
    ax2.plot(ds.param.values, lam, lw=0.8, color="k")
    ax2.fill_between(ds.param.values, 0, np.where(np.isfinite(lam), lam, 0), where=np.nan_to_num(lam) > 0,
                     color=REGIME_COLORS["chaotic"], alpha=0.3, lw=0)
    ax2.axhline(0, color="0.5", lw=0.6)
    ax2.set_ylabel("λ_max (1/step)")
    ax2.set_xlabel(f"{ds.param.attrs.get('long_name', 'param')}")
    return ax1.figure


def plot_2d(ds: xr.Dataset, ax: Any = None, *, max_values: int = 400) -> Any:
    """The 2-D view: y_t against y_t − y_{t−1}, coloured by the swept value."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    orbit = ds.orbit.values
    pick = np.unique(np.linspace(0, orbit.shape[0] - 1, min(max_values, orbit.shape[0])).round().astype(int))
    y = orbit[pick, :, 1:]
    dy = orbit[pick, :, 1:] - orbit[pick, :, :-1]
    c = np.broadcast_to(ds.param.values[pick].astype(np.float64)[:, None, None], y.shape)
    keep = np.isfinite(y) & np.isfinite(dy)
    art = ax.scatter(y[keep], dy[keep], c=c[keep], s=1.0, cmap="viridis", linewidths=0, rasterized=True)
    ax.figure.colorbar(art, ax=ax, label=ds.param.attrs.get("long_name", "param"))
    ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    ax.set_xlabel("y_t")
    ax.set_ylabel("y_t − y_{t−1}")
    ax.set_title(f"2-D view of {ds.orbit.attrs.get('long_name', 'the projection')}", fontsize=9)
    return ax.figure


def plot(ds: xr.Dataset, *, view: Literal["both", "orbit", "2d"] = "both") -> Any:
    """The probe's figure: orbit diagram with λ_max(s) beneath (``"orbit"``), the 2-D view
    (``"2d"``), or both side by side (default)."""
    import matplotlib.pyplot as plt

    if view == "orbit":
        return plot_orbit_diagram(ds)
    if view == "2d":
        return plot_2d(ds)
    fig = plt.figure(figsize=(13, 6), constrained_layout=True)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1), height_ratios=(3, 1.3))
    ax1 = fig.add_subplot(grid[0, 0])
    ax2 = fig.add_subplot(grid[1, 0], sharex=ax1)
    plot_orbit_diagram(ds, axes=(ax1, ax2))
    plot_2d(ds, ax=fig.add_subplot(grid[:, 1]))
    return fig
