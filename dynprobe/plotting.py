"""The conventions every probe's figure follows, as small helpers plugins share.

A probe's plot function is ``plot(ds, *, ax=None, figsize=None, view=None, **kwargs) ->
Figure``; :class:`dynprobe.accessor.DynprobeAccessor.plot` documents it for users. Its panels
have names (``views``); these helpers resolve ``view``/``ax``/``figsize`` into the Axes to draw
on, reduce the lead dimensions of batch and ensemble results (``checkpoint``, ``network``)
to a median with a 10–90 % band, put legends beside the data instead of over it, and give
integer axes integer ticks.

References
----------
xarray's plotting (``ax=``, ``figsize=``, ``**kwargs`` to matplotlib; xarray.pydata.org,
"Plotting") and ArviZ's (``ax=`` an Axes or an array of them; one figure per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .errors import DynprobeError

__all__ = ["LEAD_DIMS", "resolve_views", "panel_axes", "lead_dims", "lead_note", "median_band", "legend_outside",
           "integer_ticks", "stack_coordinate", "TRAINING_AXES"]

LEAD_DIMS = ("checkpoint", "network")
"""Dimensions that stack whole results: a batch store's checkpoints, an ensemble's networks."""

TRAINING_AXES = ("epoch", "step", "checkpoint_epoch", "checkpoint_step")
"""Coordinates along ``checkpoint`` that say where in training it is, in order of preference
(:func:`dynprobe.open_batch` names them ``checkpoint_*`` when the result has a dim of that name)."""


def resolve_views(probe: str, views: Sequence[str], view: str | Sequence[str] | None, ax: Any = None) -> list[str]:
    """The panels to draw: ``view`` (a name or a list of names, checked against ``views``), or
    every panel — but only the first when ``ax`` is a single Axes."""
    if view is None:
        return [views[0]] if _is_single_axes(ax) else list(views)
    chosen = [view] if isinstance(view, str) else list(view)
    unknown = [v for v in chosen if v not in views]
    if unknown or not chosen:
        raise DynprobeError(f"{probe} plot: unknown view {unknown[0] if unknown else view!r}; views: {', '.join(views)}")
    return chosen


def _is_single_axes(ax: Any) -> bool:
    return ax is not None and hasattr(ax, "plot")


def panel_axes(probe: str, names: Sequence[str], ax: Any = None, figsize: tuple[float, float] | None = None, *,
               panel_size: tuple[float, float] = (4.6, 3.6), **subplot_kw: Any) -> tuple[Any, dict[str, Any]]:
    """(figure, {panel name: Axes}) for ``names``: a new row of panels (``figsize``, or
    ``panel_size`` per panel), or the Axes given (one per panel, in order)."""
    import matplotlib.pyplot as plt

    if ax is None:
        width, height = panel_size
        fig, axes = plt.subplots(1, len(names), figsize=figsize or (width * len(names), height), squeeze=False,
                                 layout="constrained", **subplot_kw)
        return fig, dict(zip(names, axes[0], strict=True))
    given = [ax] if _is_single_axes(ax) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(given) != len(names):
        raise DynprobeError(f"{probe} plot: got {len(given)} Axes for {len(names)} panels ({', '.join(names)}); "
                            f"pass one Axes per panel, or view=... to choose the panels")
    return given[0].figure, dict(zip(names, given, strict=True))


def lead_dims(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """The stacking dimensions present (``checkpoint``, ``network``)."""
    return [d for d in LEAD_DIMS if d in obj.dims]


def lead_note(ds: xr.Dataset) -> str:
    """A second title line, ``"median of 12 checkpoints (10–90 % band)"``, for a stacked
    result; ``""`` otherwise."""
    dims = lead_dims(ds)
    if not dims:
        return ""
    count = " × ".join(f"{ds.sizes[d]} {d}s" for d in dims)
    return f"\nmedian of {count} (10–90 % band)"


def median_band(da: xr.DataArray, over: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The median of ``da`` over its lead dimensions (and ``over``), with the 10 % and 90 %
    quantiles — ``None`` when nothing was reduced. NaN entries are left out."""
    dims = lead_dims(da) + [d for d in over if d in da.dims]
    if not dims:
        return np.asarray(da.values, dtype=np.float64), None, None
    values = da.astype(np.float64)
    import warnings

    with warnings.catch_warnings():  # an all-NaN slice is a NaN point, not a warning per panel
        warnings.simplefilter("ignore", RuntimeWarning)
        mid = values.median(dims, skipna=True).values
        lo = values.quantile(0.1, dims, skipna=True).values
        hi = values.quantile(0.9, dims, skipna=True).values
    return mid, lo, hi


def legend_outside(ax: Any, **kwargs: Any) -> Any:
    """A legend beside the axes (right), so it never covers the data; ``None`` if nothing is labelled."""
    if not ax.get_legend_handles_labels()[0]:
        return None
    options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "frameon": False,
               "fontsize": 8, **kwargs}
    return ax.legend(**options)


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Integer-only major ticks on ``axis`` (step counts, indices, periods: no 1.5 or 2.5)."""
    from matplotlib.ticker import MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True))


def stack_coordinate(ds: xr.Dataset) -> tuple[str, np.ndarray, str]:
    """(dim, x values, label) of the stacking axis: ``epoch`` / ``step`` along ``checkpoint``
    when the batch store recorded them, else the position; ``network`` for an ensemble."""
    dims = lead_dims(ds)
    if not dims:
        raise DynprobeError("this result is not stacked along checkpoint or network; there is no trend to draw")
    dim = dims[0]
    for name in TRAINING_AXES:
        if name in ds.coords and ds[name].dims == (dim,):
            return dim, np.asarray(ds[name].values), name
    return dim, np.arange(ds.sizes[dim]), f"{dim} (position)"
