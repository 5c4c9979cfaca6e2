"""Read a batch store back: :func:`open_batch`, each probe's results side by side along
``checkpoint``.

Only complete results whose checksum matches are read; a damaged one is named in one line
(a warning) and listed in the index as ``damaged``, and one damaged group never hides the
others. A store whose root metadata is damaged is still read (the next run repairs it).
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DynprobeError
from .records import Record
from .store import BatchStore

__all__ = ["open_batch"]


def _order(records: list[Record]) -> list[int]:
    """Checkpoints by epoch, then step, then path with numbers compared as numbers."""

    def natural(path: str) -> list[Any]:
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path) if t]

    def rank(value: int) -> tuple[int, int]:
        return (0, value) if value >= 0 else (1, 0)

    return sorted(range(len(records)), key=lambda i: (rank(records[i].epoch), rank(records[i].step),
                                                      natural(records[i].path)))


def _stack(datasets: list[xr.Dataset], records: list[Record]) -> xr.Dataset:
    """Concatenate one probe's results along ``checkpoint``; attrs that differ between
    checkpoints (fingerprint, elapsed time, ...) become coordinates along it."""
    varying = {}
    for key in datasets[0].attrs:
        values = [ds.attrs.get(key) for ds in datasets]
        if any(not np.array_equal(np.asarray(v, dtype=object), np.asarray(values[0], dtype=object)) for v in values):
            if all(np.ndim(v) == 0 and v is not None for v in values):
                varying[key] = values
    paths = [r.path for r in records]
    coords: dict[str, Any] = {
        "checkpoint": ("checkpoint", np.array(paths, dtype=object), {"long_name": "checkpoint file", "units": "1"}),
        "checkpoint_sha256": ("checkpoint", np.array([r.sha256 for r in records], dtype=object),
                              {"long_name": "sha256 of the checkpoint file", "units": "1"}),
    }
    for what in ("epoch", "step"):
        values = [getattr(r, what) for r in records]
        if all(v >= 0 for v in values):
            # a result with a dim of the same name (jacobian's, entropy's ``step``) keeps it
            taken = what in datasets[0].variables or what in datasets[0].dims
            coords[f"checkpoint_{what}" if taken else what] = (
                "checkpoint", np.array(values, dtype=np.int64), {"long_name": f"training {what} of the checkpoint",
                                                                 "units": "1"})
    for key, values in varying.items():
        name = key if key not in datasets[0].variables and key not in coords else f"attr_{key}"
        coords[name] = ("checkpoint", np.array(values, dtype=object if isinstance(values[0], str) else None),
                        {"long_name": f"{key} of each checkpoint's result",
                         "units": "s" if key == "elapsed_s" else "1"})
    try:
        out = xr.concat(datasets, dim="checkpoint", join="exact", combine_attrs="drop_conflicts",
                        coords="minimal", compat="override", data_vars="all")
    except ValueError as err:
        warnings.warn(f"open_batch: probe {datasets[0].attrs.get('probe', '?')!r}: checkpoints differ in size "
                      f"({err}); padding with NaN (\"\" for text) along the differing dimensions", RuntimeWarning,
                      stacklevel=3)
        text = {k: "" for k, v in datasets[0].variables.items() if v.dtype.kind in "OUST"}  # NaN is no string
        out = xr.concat(datasets, dim="checkpoint", join="outer", combine_attrs="drop_conflicts",
                        coords="minimal", compat="override", data_vars="all", fill_value=text)
    out = out.assign_coords(coords)
    out.attrs.update({k: f"per checkpoint: see coordinate {k if k in out.coords else 'attr_' + k}" for k in varying})
    return out


def open_batch(store: str | Path) -> xr.DataTree:
    """Read a batch store: one child per probe with its results along ``checkpoint``.

    The ``checkpoint`` coordinate holds the file paths; ``epoch`` / ``step`` coordinates are
    added when every checkpoint has one (from the file or its name; ``checkpoint_step`` when
    the result has a ``step`` dimension of its own); ``checkpoint_sha256``
    identifies the exact file analysed. Only complete, successful results are included; the
    ``index`` child lists every checkpoint and probe with its status and error text.

    Parameters
    ----------
    store
        The ``out`` of :func:`dynprobe.batch` (a ``.zarr`` directory).

    Returns
    -------
    xarray.DataTree
        Children ``PROBE`` (dims ``checkpoint`` + the probe's own) and ``index``
        (dims ``checkpoint``, ``probe``).

    Example
    -------
    >>> tree = dynprobe.open_batch("runs.zarr")
    >>> tree["lyapunov"].ds.exponent_mean.sel(exponent=1).plot(x="epoch")
    """
    bs = BatchStore(store)
    if not bs.looks_like_batch_store():
        raise DynprobeError(f"no batch store at {str(bs.path)!r}; write one with dynprobe batch ... --out {bs.path}")
    attrs = bs.root_attrs()
    if attrs is None:
        warnings.warn(f"batch store {str(bs.path)!r}: its root metadata is damaged; reading the results anyway "
                      "(the next batch run into it repairs the metadata)", RuntimeWarning, stacklevel=2)
        attrs = {}
    elif attrs.get("dynprobe_batch") is None:
        raise DynprobeError(f"{str(bs.path)!r} is a Zarr store but not a dynprobe batch store")
    scan = bs.scan()
    children: dict[str, xr.Dataset] = {}
    for probe in sorted({p for _, p in scan.records}):
        done = [(k, r) for (k, p), r in scan.records.items() if p == probe and r.status == "ok"]
        done = [done[i] for i in _order([r for _, r in done])]
        with ThreadPoolExecutor(max_workers=8) as pool:  # reads wait on Zarr's I/O loop, not the CPU
            loaded = list(pool.map(lambda item, probe=probe: _read(bs, item[0], probe, item[1]), done))
        for (key, record), (ds, reason) in zip(done, loaded):
            if ds is None:
                scan.records.pop((key, probe))
                scan.damaged[(key, probe)] = f"{record.path}: {reason}"
        kept = [(ds, r) for (ds, _), (_, r) in zip(loaded, done) if ds is not None]
        if kept:
            children[probe] = _stack([ds for ds, _ in kept], [r for _, r in kept])
    scan.warn(bs.path)
    derived = _across(children)
    children["index"] = scan.index()
    tree = xr.DataTree.from_dict({**children, **derived})
    tree.attrs = dict(attrs)
    return tree


def _across(children: dict[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """Each installed probe's ``across`` results (:class:`~dynprobe.specs.Probe`), as nodes
    ``PROBE/NAME``; one that fails is a warning, never a lost read."""
    from ..api import error_line
    from ..registry import registry

    out: dict[str, xr.Dataset] = {}
    for probe, ds in children.items():
        try:
            spec = registry().probe(probe)
        except DynprobeError:  # no longer installed: its results are read all the same
            continue
        for name, fn in dict(spec.across).items():
            try:
                result = fn(ds)
                if not isinstance(result, xr.Dataset):
                    raise TypeError(f"returned {type(result).__name__}, not an xarray.Dataset")
                xr.DataTree.from_dict({probe: ds, f"{probe}/{name}": result})  # aligned with the probe's node
            except Exception as err:  # noqa: BLE001 - a derived result must not cost the read
                warnings.warn(f"open_batch: {probe}'s {name!r} across the checkpoints failed ({error_line(err)}); "
                              "the results are read without it", RuntimeWarning, stacklevel=3)
                continue
            out[f"{probe}/{name}"] = result
    return out


def _read(bs: BatchStore, key: str, probe: str, record: Record) -> tuple[xr.Dataset | None, str]:
    """One result, verified again after it was read (a run rewriting it meanwhile would
    otherwise hand over half of the new one), or why it cannot be read."""
    try:
        ds = bs.open_result(key, probe)
    except Exception as err:  # noqa: BLE001 - damage found while reading: this result only
        return None, f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    reason = bs.verify(key, probe, record)
    return (ds, "") if not reason else (None, f"{reason} (while it was read)")

