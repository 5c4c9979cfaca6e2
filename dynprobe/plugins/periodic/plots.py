"""Figures for the ``period3``, ``scrambling`` and ``linear_regions`` results.

* ``period3``, one 1-D map: a cobweb of the period-3 orbit on the graph of f, and f³ against
  the diagonal with the fixed points of f and the period-3 points marked (the paper's Fig. 7);
  an ensemble: the fraction of networks with each period, Li–Yorke and Lemma 4.2; n-D: the
  orbits in the plane of the first two state coordinates and their Floquet multipliers.
* ``scrambling``: distance against time on a log axis with the running inf / sup (Fig. 1).
* ``linear_regions``: pieces of fᵗ against t on a log axis next to φᵗ.

References
----------
Scrambling paper Fig. 1, 2, 3 and 7.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe.plotting import integer_ticks, lead_dims, legend_outside, panel_axes, resolve_views, stack_coordinate

from .regions import LN_PHI

__all__ = ["plot_period3", "plot_scrambling", "plot_linear_regions"]


def _orbits(ds: xr.Dataset, period: int) -> np.ndarray:
    sel = ds.orbit_period.values == period
    return ds.orbit_state.values[sel][:, :period, 0]


def _cobweb(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    x, f = ds.graph.values, ds.graph_f.values
    ax.plot(x, f, **{"color": "C0", "lw": 1.2, "label": "$f$", **kwargs})
    ax.plot(x, x, color="k", lw=0.8, ls="--", label="$y = x$")
    three = _orbits(ds, 3)
    if len(three):
        stable = ds.stable.values[ds.orbit_period.values == 3]
        pts = three[int(np.argmax(stable))]
        nxt = np.roll(pts, -1)
        xs = np.append(np.repeat(pts, 2), pts[0])  # (x_i, x_i) -> (x_i, x_{i+1}) -> (x_{i+1}, x_{i+1}) ...
        ys = np.append(np.column_stack([pts, nxt]).ravel(), pts[0])
        ax.plot(xs, ys, color="C3", lw=1.2, label="period-3 orbit")
        ax.plot(pts, np.roll(pts, -1), "o", color="C3", ms=4)
    fixed = _orbits(ds, 1)
    if len(fixed):
        ax.plot(fixed[:, 0], fixed[:, 0], "s", color="C2", ms=4, label="fixed points")
    ax.set(xlabel="$x$", ylabel="$f(x)$", title="cobweb")
    legend_outside(ax)


def _iterate(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    x = ds.graph.values
    ax.plot(x, ds.graph_f3.values, **{"color": "C1", "lw": 1.0, "label": "$f^3$", **kwargs})
    ax.plot(x, ds.graph_f.values, color="C0", lw=0.8, alpha=0.6, label="$f$")
    ax.plot(x, x, color="k", lw=0.8, ls="--")
    three = _orbits(ds, 3).reshape(-1)
    ax.plot(three, three, "o", color="C3", ms=4, label="period-3 points")
    fixed = _orbits(ds, 1).reshape(-1)
    ax.plot(fixed, fixed, "s", color="C2", ms=4, label="fixed points of $f$")
    lo, hi = x.min(), x.max()
    ax.set(xlim=(lo, hi), ylim=(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)), xlabel="$x$",
           title="$f$ and $f^3$ against the diagonal (Fig. 7)")
    legend_outside(ax)


def _fractions(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    frac = ds.has_period.mean("network")
    labels = [f"$p = {p}$" for p in ds.period.values]
    ax.bar(labels, frac.values, **{"color": "C0", **kwargs})
    extra = {"Li–Yorke": float(ds.li_yorke.mean())} if "li_yorke" in ds else {}
    if "lemma42_certificate" in ds:
        extra["Lemma 4.2"] = float(ds.lemma42_certificate.mean())
    ax.bar(list(extra), list(extra.values()), **{"color": "C3", **kwargs})
    ax.set(ylabel="fraction of networks", title=f"{ds.sizes['network']} networks ({ds.attrs.get('method', '')})")


def _counts(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    counts = ds.orbits.sel(period=3).values
    ax.hist(counts[counts > 0], **{"bins": 30, "color": "C3", **kwargs})
    ax.set(xlabel="period-3 orbits per network (networks with any)", ylabel="networks", yscale="log")
    integer_ticks(ax)


def _orbit_plane(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    for p in ds.period.values:
        sel = ds.orbit_period.values == p
        for st, stable in zip(ds.orbit_state.values[sel], ds.stable.values[sel], strict=True):
            pts = np.concatenate([st[:p], st[:1]])  # closed polygon
            yy = pts[:, 1] if pts.shape[1] > 1 else np.roll(pts[:, 0], -1)
            ax.plot(pts[:, 0], yy, **{"marker": "o", "ls": "-" if stable else "--", "mfc": None if stable else "none",
                                      "color": f"C{int(p) % 10}", "ms": 5, "lw": 0.8, **kwargs})
        ax.plot([], [], "o", color=f"C{int(p) % 10}", label=f"period {p}")
    ax.set(xlabel="unit 0", ylabel="unit 1", title="orbits (filled: stable)")
    legend_outside(ax)


def _multipliers(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), "k", lw=0.8)
    periods = np.broadcast_to(ds.orbit_period.values[..., None], ds.multiplier_real.shape)
    ok = np.isfinite(ds.multiplier_real.values)
    art = ax.scatter(ds.multiplier_real.values[ok], ds.multiplier_imag.values[ok],
                     **{"s": 12, "c": periods[ok], "cmap": "tab10", "vmin": 0, "vmax": 9, **kwargs})
    for p in np.unique(periods[ok]):
        ax.scatter([], [], s=12, color=art.cmap(art.norm(p)), label=f"period {int(p)}")
    ax.set(xlabel=r"$\mathrm{Re}\,\mu$", ylabel=r"$\mathrm{Im}\,\mu$", title="Floquet multipliers", aspect="equal")
    legend_outside(ax)


def _trend(ax: Any, ds: xr.Dataset, kwargs: dict[str, Any]) -> None:
    dim, x, label = stack_coordinate(ds)
    counts = ds.orbits
    other = [d for d in lead_dims(ds) if d != dim]
    if other:
        counts = counts.mean(other)
    for p in ds.period.values:
        ax.plot(x, counts.sel(period=p).transpose(dim).values, **{"marker": "o", "ms": 3, "label": f"period {p}",
                                                                  **kwargs})
    ax.set(xlabel=label, ylabel="orbits found", title=f"periodic orbits along {dim}")
    integer_ticks(ax, "y")
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        integer_ticks(ax)
    legend_outside(ax)


def plot_period3(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                 view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """The ``period3`` figure (see the module docstring). Panels: ``fractions`` and ``counts``
    (an ensemble), ``cobweb`` and ``iterate`` (one 1-D map), ``orbits`` and ``multipliers``
    (n-D), ``trend`` and ``multipliers`` (stacked along ``checkpoint``)."""
    if "network" in ds.dims and "checkpoint" not in ds.dims:
        present, draw = ("fractions", "counts"), {"fractions": _fractions, "counts": _counts}
    elif "checkpoint" in ds.dims:
        present, draw = ("trend", "multipliers"), {"trend": _trend, "multipliers": _multipliers}
    elif "graph" in ds.dims:
        present, draw = ("cobweb", "iterate"), {"cobweb": _cobweb, "iterate": _iterate}
    else:
        present, draw = ("orbits", "multipliers"), {"orbits": _orbit_plane, "multipliers": _multipliers}
    views = resolve_views("period3", present, view, ax)
    fig, axes = panel_axes("period3", views, ax, figsize, panel_size=(5.0, 4.0))
    for name, target in axes.items():
        draw[name](target, ds, kwargs)
    return fig


def plot_scrambling(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                    view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Panels ``distance`` (distances of nearby trajectories over time, with the running inf /
    sup of pair 0; the first network or checkpoint of a stacked result) and ``rate``
    (separation rate against λ₁, every pair)."""
    views = resolve_views("scrambling", ("distance", "rate"), view, ax)
    fig, axes = panel_axes("scrambling", views, ax, figsize, panel_size=(5.0, 4.0))
    first = {d: 0 for d in lead_dims(ds)}
    sub = ds.isel(first)
    if "distance" in axes:
        a = axes["distance"]
        t = sub.time.values
        for i in range(min(4, sub.sizes["sample"])):
            a.plot(t, np.maximum(sub.distance.values[i], 1e-300), **{"lw": 0.8, "label": f"pair {i}", **kwargs})
        a.plot(t, sub.tail_inf.values[0], "k:", lw=1, label="inf over the future (pair 0)")
        a.plot(t, sub.tail_sup.values[0], "k--", lw=1, label="sup over the future (pair 0)")
        where = ", ".join(f"{d} 0" for d in first)
        a.set(yscale="log", xlabel="$t$", ylabel=r"$|f^t(x) - f^t(y)|$",
              title=rf"scrambling ($\delta$ = {ds.attrs.get('delta', float('nan')):.0e}{', ' + where if where else ''})")
        integer_ticks(a)
        legend_outside(a)
    if "rate" in axes:
        a = axes["rate"]
        rate, lam = ds.separation_rate.values.ravel(), ds.lyapunov_max.values.ravel()
        ok = np.isfinite(rate) & np.isfinite(lam)
        a.scatter(lam[ok], rate[ok], **{"s": 10, **kwargs})
        if ok.any():
            lo, hi = min(lam[ok].min(), rate[ok].min()), max(lam[ok].max(), rate[ok].max())
            a.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="rate = $\\lambda_1$")
        a.set(xlabel=r"largest Lyapunov exponent $\lambda_1$ (1/step)", ylabel="separation rate (1/step)",
              title=r"rate vs $\lambda_1$")
        legend_outside(a)
    return fig


def plot_linear_regions(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                        view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Pieces of fᵗ against t on a log axis, with φᵗ for reference (one panel, ``pieces``)."""
    views = resolve_views("linear_regions", ("pieces",), view, ax)
    fig, axes = panel_axes("linear_regions", views, ax, figsize, panel_size=(6.0, 4.0))
    a = axes["pieces"]
    t = ds.horizon.values
    pieces = ds.pieces.transpose(..., "horizon").values.reshape(-1, len(t))
    for row in pieces[:20]:
        a.plot(t, row, color="C0", lw=0.6, alpha=0.5)
    a.plot(t, np.median(pieces, 0), **{"color": "C0", "lw": 2, "label": "median" if len(pieces) > 1 else "pieces",
                                      **kwargs})
    a.plot(t, np.exp(LN_PHI * t), "k--", lw=1, label=r"$\varphi^t$ (period 3 forces at least this growth)")
    a.set(yscale="log", xlabel="$t$", ylabel="linear pieces of $f^t$", title="linear regions")
    integer_ticks(a)
    legend_outside(a)
    return fig
