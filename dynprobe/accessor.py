"""The ``.dynprobe`` accessor on Datasets and DataTrees: ``.plot()`` and ``.summary()``.

xarray prefers accessors to subclassing; the accessor finds the probe that made a result by
its ``probe`` attr and calls that probe's ``plot`` / ``summary``. :meth:`DynprobeAccessor.plot`
documents the plotting convention (``ax=``, ``figsize=``, ``view=``, ``**kwargs``) once for
every probe; :mod:`dynprobe.plotting` holds the helpers that implement it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import xarray as xr

from . import lazydask
from .errors import DynprobeError

lazydask.install()  # every result path imports this module before it makes a Dataset

__all__ = ["DynprobeAccessor", "DynprobeTreeAccessor"]


def _probe_of(ds: xr.Dataset) -> Any:
    from .registry import registry

    name = ds.attrs.get("probe")
    if not name:
        raise DynprobeError("this Dataset has no 'probe' attr; it was not made by dynprobe.run")
    return registry().probe(str(name))


@xr.register_dataset_accessor("dynprobe")
class DynprobeAccessor:
    """``ds.dynprobe.plot()`` draws the probe's figure; ``ds.dynprobe.summary()`` gives rows."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def plot(self, ax: Any = None, *, figsize: tuple[float, float] | None = None,
             view: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
        """The probe's figure, drawn by the probe that made the result.

        The convention, the same for every bundled probe (after xarray's and ArviZ's plots):

        Parameters
        ----------
        ax
            Where to draw: ``None`` makes a new figure with every panel of the probe; one
            ``matplotlib.axes.Axes`` draws one panel into it (the first, or the one ``view``
            names); a sequence or array of Axes draws one panel into each, in order.
        figsize
            Size of the new figure in inches (ignored with ``ax``).
        view
            Which panels: a name or a list of names; an unknown name is an error that lists the
            probe's panels (e.g. lyapunov: ``"spectrum"``, ``"convergence"``).
        **kwargs
            Passed to the matplotlib call that draws each panel's data (``color=``, ``lw=``,
            ``alpha=``, ``marker=`` ...).

        Returns
        -------
        matplotlib.figure.Figure
            The new figure, or the one holding ``ax``.

        Results stacked along ``checkpoint`` (``dynprobe.open_batch``) or ``network`` (an
        ensemble) are drawn as the median over them with a 10–90 % band, or, where a probe has
        one, a panel along the stacked axis (e.g. lyapunov's exponents against the epoch).
        Axis labels use mathtext; integer axes have integer ticks; legends sit beside the axes.

        Example
        -------
        >>> fig, (a, b) = plt.subplots(1, 2)
        >>> ds.dynprobe.plot(ax=[a, b], color="k")
        >>> tree["lyapunov"].ds.dynprobe.plot(view="checkpoints")
        """
        probe = _probe_of(self._ds)
        if probe.plot is None:
            raise DynprobeError(f"probe {probe.name!r} has no plot")
        options = {"ax": ax, "figsize": figsize, "view": view, **kwargs}
        given = {k: v for k, v in options.items() if v is not None}
        if not given:
            return probe.plot(self._ds)
        accepted = inspect.signature(probe.plot).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            missing = [k for k in given if k not in accepted]
            if missing:
                raise DynprobeError(f"probe {probe.name!r}: its plot function takes no {', '.join(missing)}; "
                                    f"call ds.dynprobe.plot() without them")
        return probe.plot(self._ds, **given)

    def summary(self) -> list[tuple[str, str]]:
        """(label, value) rows describing the result."""
        probe = _probe_of(self._ds)
        if probe.summary is None:
            return [(str(v.attrs.get("long_name", k)), f"{v.values.item():.6g} {v.attrs.get('units', '')}".strip()
                     if v.dtype.kind in "fiu" else str(v.values.item()))
                    for k, v in self._ds.data_vars.items() if v.size == 1]
        return probe.summary(self._ds)


@xr.register_datatree_accessor("dynprobe")
class DynprobeTreeAccessor:
    """``tree.dynprobe.summary()`` concatenates the children's summaries."""

    def __init__(self, tree: xr.DataTree) -> None:
        self._tree = tree

    def summary(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for name, child in self._tree.children.items():
            ds = child.to_dataset()
            if ds.attrs.get("status") == "error":
                rows.append((name, f"error: {ds.attrs.get('error', '')}"))
            elif "probe" in ds.attrs:
                rows += [(f"{name}: {label}", value) for label, value in ds.dynprobe.summary()]
        return rows
