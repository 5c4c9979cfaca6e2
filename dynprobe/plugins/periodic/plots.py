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

from .regions import LN_PHI

__all__ = ["plot_period3", "plot_scrambling", "plot_linear_regions"]


def _orbits(ds: xr.Dataset, period: int) -> np.ndarray:
    sel = ds.orbit_period.values == period
    return ds.orbit_state.values[sel][:, :period, 0]


def _cobweb(ax: Any, ds: xr.Dataset) -> None:
    x, f = ds.graph.values, ds.graph_f.values
    ax.plot(x, f, color="C0", lw=1.2, label="f")
    ax.plot(x, x, color="k", lw=0.8, ls="--", label="y = x")
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
    ax.set(xlabel="x", ylabel="f(x)", title="cobweb")
    ax.legend(fontsize=7)


def plot_period3(ds: xr.Dataset) -> Any:
    """The ``period3`` figure (see the module docstring)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    if "network" in ds.dims:
        frac = ds.has_period.mean("network")
        labels = [f"p={p}" for p in ds.period.values]
        ax1.bar(labels, frac.values, color="C0")
        extra = {"Li-Yorke": float(ds.li_yorke.mean())} if "li_yorke" in ds else {}
        if "lemma42_certificate" in ds:
            extra["Lemma 4.2"] = float(ds.lemma42_certificate.mean())
        ax1.bar(list(extra), list(extra.values()), color="C3")
        ax1.set(ylabel="fraction of networks", title=f"{ds.sizes['network']} networks ({ds.attrs['method']})")
        counts = ds.orbits.sel(period=3).values
        ax2.hist(counts[counts > 0], bins=30, color="C3")
        ax2.set(xlabel="period-3 orbits per network (networks with any)", ylabel="networks", yscale="log")
        return fig
    if "graph" in ds.dims:
        _cobweb(ax1, ds)
        x = ds.graph.values
        ax2.plot(x, ds.graph_f3.values, color="C1", lw=1.0, label="f³")
        ax2.plot(x, ds.graph_f.values, color="C0", lw=0.8, alpha=0.6, label="f")
        ax2.plot(x, x, color="k", lw=0.8, ls="--")
        three = _orbits(ds, 3).reshape(-1)
        ax2.plot(three, three, "o", color="C3", ms=4, label="period-3 points")
        fixed = _orbits(ds, 1).reshape(-1)
        ax2.plot(fixed, fixed, "s", color="C2", ms=4, label="fixed points of f")
        lo, hi = x.min(), x.max()
        ax2.set(xlim=(lo, hi), ylim=(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)), xlabel="x",
                title="f and f³ against the diagonal (Fig. 7)")
        ax2.legend(fontsize=7)
        return fig
    for p in ds.period.values:
        sel = ds.orbit_period.values == p
        for st, stable in zip(ds.orbit_state.values[sel], ds.stable.values[sel], strict=True):
            pts = np.concatenate([st[:p], st[:1]])  # closed polygon
            yy = pts[:, 1] if pts.shape[1] > 1 else np.roll(pts[:, 0], -1)
            ax1.plot(pts[:, 0], yy, "o-" if stable else "o--", mfc=None if stable else "none",
                     color=f"C{int(p) % 10}", ms=5, lw=0.8)
        ax1.plot([], [], "o", color=f"C{int(p) % 10}", label=f"period {p}")
    ax1.set(xlabel="unit 0", ylabel="unit 1", title="orbits (filled: stable)")
    ax1.legend(fontsize=7)
    t = np.linspace(0, 2 * np.pi, 200)
    ax2.plot(np.cos(t), np.sin(t), "k", lw=0.8)
    ax2.scatter(ds.multiplier_real.values.ravel(), ds.multiplier_imag.values.ravel(), s=12,
                c=np.repeat(ds.orbit_period.values, ds.sizes["floquet"]), cmap="tab10", vmin=0, vmax=9)
    ax2.set(xlabel="Re μ", ylabel="Im μ", title="Floquet multipliers", aspect="equal")
    return fig


def plot_scrambling(ds: xr.Dataset) -> Any:
    """Distances of nearby trajectories over time, with the running inf / sup of pair 0."""
    import matplotlib.pyplot as plt

    sub = ds.isel(network=0) if "network" in ds.dims else ds
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    t = sub.time.values
    for i in range(min(4, sub.sizes["sample"])):
        ax1.plot(t, np.maximum(sub.distance.values[i], 1e-300), lw=0.8, label=f"pair {i}")
    ax1.plot(t, sub.tail_inf.values[0], "k:", lw=1, label="inf over the future (pair 0)")
    ax1.plot(t, sub.tail_sup.values[0], "k--", lw=1, label="sup over the future (pair 0)")
    ax1.set(yscale="log", xlabel="t", ylabel="|f^t(x) - f^t(y)|", title=f"scrambling (δ = {ds.attrs['delta']:.0e})")
    ax1.legend(fontsize=7)
    rate, lam = ds.separation_rate.values.ravel(), ds.lyapunov_max.values.ravel()
    ok = np.isfinite(rate) & np.isfinite(lam)
    ax2.scatter(lam[ok], rate[ok], s=10)
    if ok.any():
        lo, hi = min(lam[ok].min(), rate[ok].min()), max(lam[ok].max(), rate[ok].max())
        ax2.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax2.set(xlabel="largest Lyapunov exponent (1/step)", ylabel="separation rate (1/step)", title="rate vs λ₁")
    return fig


def plot_linear_regions(ds: xr.Dataset) -> Any:
    """Pieces of fᵗ against t on a log axis, with φᵗ for reference."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    t = ds.time.values
    pieces = ds.pieces.values.reshape(-1, len(t))
    for row in pieces[:20]:
        ax.plot(t, row, color="C0", lw=0.6, alpha=0.5)
    ax.plot(t, np.median(pieces, 0), color="C0", lw=2, label="median" if len(pieces) > 1 else "pieces")
    ax.plot(t, np.exp(LN_PHI * t), "k--", lw=1, label="φ^t (period 3 forces at least this growth)")
    ax.set(yscale="log", xlabel="t", ylabel="linear pieces of f^t", title="linear regions")
    ax.legend(fontsize=7)
    return fig
