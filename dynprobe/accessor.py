"""The ``.dynprobe`` accessor on Datasets and DataTrees: ``.plot()`` and ``.summary()``.

xarray prefers accessors to subclassing; the accessor finds the probe that made a result by
its ``probe`` attr and calls that probe's ``plot`` / ``summary``.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from .errors import DynprobeError

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

    def plot(self) -> Any:
        """The probe's figure (a ``matplotlib.figure.Figure``)."""
        probe = _probe_of(self._ds)
        if probe.plot is None:
            raise DynprobeError(f"probe {probe.name!r} has no plot")
        return probe.plot(self._ds)

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
