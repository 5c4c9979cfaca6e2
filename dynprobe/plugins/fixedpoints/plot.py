"""The ``fixedpoints`` figure: the points in the first two principal components of the visited
states, over the trajectories, coloured by stability (stable filled, saddles by their number of
unstable directions, slow points hollow); beside it every point's eigenvalues against the unit
circle. An ensemble shows its first network; held-input conditions get one panel each (up to 3).

References
----------
Sussillo & Barak (2013), Neural Computation 25(3), Fig. 3–5 (fixed points in PC space).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot", "COLORS"]

COLORS = {0: "C0", 1: "C1", 2: "C3", 3: "C4"}
"""Colour by number of unstable directions (3 and more share the last)."""
_MARKERS = {0: "o", 1: "^", 2: "s", 3: "D"}


def _panel(ax: Any, ds: xr.Dataset, title: str) -> None:
    traj = ds.trajectory_pc.values
    two = traj.shape[-1] >= 2
    for line in traj:
        ax.plot(line[:, 0], line[:, 1] if two else np.zeros(len(line)), color="0.75", lw=0.6, zorder=1)
        ax.plot(line[:1, 0], (line[:1, 1] if two else [0.0]), ".", color="0.6", ms=3, zorder=1)
    valid = ds.valid.values.astype(bool)
    pc = ds.state_pc.values
    kinds, dims = ds.kind.values, ds.unstable_dims.values
    for k in sorted({int(d) for d in dims[valid & (kinds == "fixed")]}):
        sel = valid & (kinds == "fixed") & (dims == k)
        c = min(k, 3)
        label = "stable" if k == 0 else f"{k} unstable dir."
        ax.scatter(pc[sel, 0], pc[sel, 1] if two else np.zeros(sel.sum()), s=46, marker=_MARKERS[c],
                   color=COLORS[c], edgecolor="k", linewidth=0.5, zorder=3, label=f"{label} ({int(sel.sum())})")
    slow = valid & (kinds == "slow")
    if slow.any():
        ax.scatter(pc[slow, 0], pc[slow, 1] if two else np.zeros(slow.sum()), s=46, facecolor="none",
                   edgecolor="0.3", zorder=3, label=f"slow ({int(slow.sum())})")
    var = ds.pc_variance.values
    ax.set(xlabel=f"PC1 ({100 * var[0]:.0f}% of variance)",
           ylabel=f"PC2 ({100 * var[1]:.0f}%)" if two else "", title=title)
    ax.legend(fontsize=7, loc="best")


def _spectrum(ax: Any, ds: xr.Dataset) -> None:
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), color="k", lw=0.8)
    valid = ds.valid.values.astype(bool)
    re, im = ds.eigenvalue_real.values, ds.eigenvalue_imag.values
    for i in np.flatnonzero(valid):
        c = min(int(ds.unstable_dims.values[i]), 3)
        hollow = ds.kind.values[i] == "slow"
        ax.scatter(re[i], im[i], s=10, marker=_MARKERS[c], color="none" if hollow else COLORS[c],
                   edgecolor=COLORS[c] if hollow else "none", alpha=0.7)
    ax.set(xlabel="Re λ", ylabel="Im λ", title="eigenvalues of J at the points", aspect="equal")


def plot(ds: xr.Dataset) -> Any:
    """The figure described in the module docstring; returns a ``matplotlib.figure.Figure``."""
    import matplotlib.pyplot as plt

    if "network" in ds.dims:
        ds = ds.isel(network=0)
    conditions = list(range(ds.sizes["condition"]))[:3] if "condition" in ds.dims else [None]
    fig, axes = plt.subplots(1, len(conditions) + 1, figsize=(4.6 * (len(conditions) + 1), 4.2),
                             constrained_layout=True)
    for ax, c in zip(axes[:-1], conditions):
        one = ds if c is None else ds.isel(condition=c)
        title = "fixed points in PC space" if c is None else \
            f"u = {', '.join(f'{v:.3g}' for v in np.atleast_1d(one.input_value.values))}"
        _panel(ax, one, title)
    _spectrum(axes[-1], ds if conditions[0] is None else ds.isel(condition=0))
    return fig
