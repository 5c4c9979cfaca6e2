"""Figures of a ``bifurcation`` result: the orbit diagram coloured by regime with λ_max(s)
beneath it (attractors paper Fig. 1a), and the 2-D view (y_t, y_t − y_{t−1}) (Fig. 4, 7, 8).

Panels (``view=``): ``orbit``, ``exponent``, ``2d``; the convention is
:meth:`dynprobe.accessor.DynprobeAccessor.plot`. A result stacked along ``checkpoint``
(``dynprobe.open_batch``) is drawn along the checkpoints instead — epoch on the x axis, at one
value of the path (``at=``; default the only one, or s = 1 on a scale path): Fig. 4 of the paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe.errors import DynprobeError
from dynprobe.plotting import integer_ticks, legend_outside, panel_axes, resolve_views, stack_coordinate

__all__ = ["plot", "plot_orbit_diagram", "plot_2d", "REGIME_COLORS", "VIEWS"]

REGIME_COLORS = {
    "fixed_point": "#1f77b4",
    "periodic": "#2ca02c",
    "quasi_periodic": "#9467bd",
    "chaotic": "#d62728",
    "divergent": "#7f7f7f",
    "multistable": "#ff7f0e",
}

VIEWS = ("orbit", "exponent", "2d")

_MATH = (("theta(s) = s*theta", r"$\theta(s) = s\,\theta$"), ("u = s*u_bar", r"$u = s\,\bar{u}$"),
         ("scale s", "scale $s$"), ("level s", "level $s$"))


def _param_label(ds: xr.Dataset) -> str:
    label = str(ds.param.attrs.get("long_name", "param"))
    for ascii_form, tex in _MATH:
        label = label.replace(ascii_form, tex)
    return label


def _integer_param(ds: xr.Dataset, ax: Any) -> None:
    if np.issubdtype(ds.param.dtype, np.integer):  # epochs or steps along checkpoints
        integer_ticks(ax)


def _points(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    orbit = ds.orbit.transpose("param", "sample", "time").values  # [S, B, T]
    S, B, T = orbit.shape
    x = np.repeat(ds.param.values.astype(np.float64), B * T)
    y = orbit.reshape(-1)
    regime = np.repeat(np.array([str(r) for r in ds.regime.values.ravel()]), B * T)  # str, object or StringDType
    keep = np.isfinite(y)
    return x[keep], y[keep], regime[keep]


def _orbit(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    x, y, regime = _points(ds)
    size = max(0.05, min(6.0, 4e4 / max(len(y), 1)))
    for name, color in REGIME_COLORS.items():
        sel = regime == name
        if sel.any():
            ax.scatter(x[sel], y[sel], **{"s": size, "c": color, "marker": ".", "linewidths": 0,
                                          "label": name.replace("_", " "), "rasterized": True, **kwargs})
    ax.set_ylabel(ds.orbit.attrs.get("long_name", "orbit"))
    ax.set_title(f"bifurcation diagram — path {ds.attrs.get('path', '')}, "
                 f"burn-in {ds.attrs.get('burn_in', '?')}, {ds.sizes['time']} steps shown", fontsize=10)
    legend_outside(ax, markerscale=12 / max(size, 0.05) ** 0.5)
    ax.set_xlabel(_param_label(ds))
    _integer_param(ds, ax)


def _exponent(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    s = ds.param.values.astype(np.float64)
    lam = ds.max_exponent.values
    ax.plot(s, lam, **{"lw": 0.8, "color": "k", **kwargs})
    ax.fill_between(s, 0, np.where(np.isfinite(lam), lam, 0), where=np.nan_to_num(lam) > 0,
                    color=REGIME_COLORS["chaotic"], alpha=0.3, lw=0)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel(r"$\lambda_\mathrm{max}$ (1/step)")
    ax.set_xlabel(_param_label(ds))
    _integer_param(ds, ax)


def _two_d(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any], max_values: int = 400) -> None:
    import matplotlib.pyplot as plt

    orbit = ds.orbit.transpose("param", "sample", "time").values
    pick = np.unique(np.linspace(0, orbit.shape[0] - 1, min(max_values, orbit.shape[0])).round().astype(int))
    y = orbit[pick, :, 1:]
    dy = orbit[pick, :, 1:] - orbit[pick, :, :-1]
    c = np.broadcast_to(ds.param.values[pick].astype(np.float64)[:, None, None], y.shape)
    keep = np.isfinite(y) & np.isfinite(dy)
    art = ax.scatter(y[keep], dy[keep], **{"c": c[keep], "s": 1.0, "cmap": "viridis", "linewidths": 0,
                                           "rasterized": True, **kwargs})
    ax.figure.colorbar(art, ax=ax, label=_param_label(ds))
    ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    ax.set_xlabel("$y_t$")
    ax.set_ylabel("$y_t - y_{t-1}$")
    ax.set_title(f"2-D view of {ds.orbit.attrs.get('long_name', 'the projection')}", fontsize=9)


def plot_orbit_diagram(ds: xr.Dataset, axes: Any = None, **kwargs: Any) -> Any:
    """Orbit diagram (tiny points, param on x, coloured by regime) over λ_max(s); ``axes`` is a
    pair (orbit, exponent) or ``None`` for a new figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 1.3), layout="constrained")
    ax1, ax2 = axes
    _orbit(ds, ax1, kwargs)
    _exponent(ds, ax2, {})
    return ax1.figure


def plot_2d(ds: xr.Dataset, ax: Any = None, *, max_values: int = 400, **kwargs: Any) -> Any:
    """The 2-D view: y_t against y_t − y_{t−1}, coloured by the swept value."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    _two_d(ds, ax, kwargs, max_values=max_values)
    return ax.figure


def along_checkpoints(ds: xr.Dataset, at: float | None = None) -> xr.Dataset:
    """A result stacked along ``checkpoint`` seen as a sweep over the checkpoints at one value
    of the path: ``param`` becomes the epoch (or step, or position)."""
    dim, x, label = stack_coordinate(ds)
    values = ds.param.values.astype(np.float64)
    if at is None:
        path = str(ds.attrs.get("path", ""))
        at = 1.0 if path.startswith("scale") and values.min() <= 1.0 <= values.max() else values[len(values) // 2]
    elif not values.min() <= at <= values.max():
        raise DynprobeError(f"bifurcation plot: at={at} is outside the swept values [{values.min():g}, {values.max():g}]")
    one = ds.isel(param=int(np.argmin(np.abs(values - at))))
    one = one.drop_vars([c for c in one.coords if dim in one[c].dims or c == "param"]).rename({dim: "param"})
    one = one.assign_coords(param=("param", np.asarray(x), {"long_name": label, "units": "1"}))
    one.attrs = {**ds.attrs, "path": f"{ds.attrs.get('path', '')} at s = {values[np.argmin(np.abs(values - at))]:.3g}, "
                                     f"along {dim}"}
    return one


def plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
         view: str | list[str] | None = None, at: float | None = None, **kwargs: Any) -> Any:
    """The probe's figure: the orbit diagram with λ_max(s) beneath it and the 2-D view beside
    them (default), or the panels ``view`` names. ``at``: for a result stacked along
    ``checkpoint``, the value of the path to follow across checkpoints."""
    import matplotlib.pyplot as plt

    if "checkpoint" in ds.dims:
        ds = along_checkpoints(ds, at)
    views = resolve_views("bifurcation", VIEWS, view, ax)
    draw = {"orbit": _orbit, "exponent": _exponent, "2d": _two_d}
    if ax is None and views == list(VIEWS):
        fig = plt.figure(figsize=figsize or (14, 6), layout="constrained")
        grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1), height_ratios=(3, 1.3))
        ax1 = fig.add_subplot(grid[0, 0])
        axes = {"orbit": ax1, "exponent": fig.add_subplot(grid[1, 0], sharex=ax1), "2d": fig.add_subplot(grid[:, 1])}
        ax1.tick_params(labelbottom=False)
    else:
        fig, axes = panel_axes("bifurcation", views, ax, figsize, panel_size=(5.5, 4.5))
    for name, target in axes.items():
        draw[name](ds, target, kwargs if name != "exponent" or len(views) == 1 else {})
    if ax is None and views == list(VIEWS):
        axes["orbit"].set_xlabel("")
    return fig
