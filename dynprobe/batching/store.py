"""The Zarr store of a batch run: one group per checkpoint per probe, each written then marked
complete, an index, and :func:`open_batch` reading it all back along ``checkpoint``.

Layout (Zarr; each checkpoint's groups are written by the one task that analyses it, the root
and the index by the process that drives the run — no group has two writers, so no locks)::

    STORE/                          root attrs: dynprobe_batch (format version), dynprobe_version
      checkpoints/KEY/              attrs: path
      checkpoints/KEY/PROBE/        the probe's Dataset (arrays + its attrs), then the record
                                    attrs batch_* — batch_complete = 1 is written last
      index/                        the index as a Dataset over (checkpoint, probe), rebuilt from
                                    the records at the end of every run

A group without ``batch_complete = 1`` (a run killed while writing it) reads as absent and is
recomputed by the next run. The records in the groups are the truth; ``index/`` is a view of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DynprobeError
from ..results import _vlen_strings

__all__ = ["Record", "BatchStore", "open_batch", "checkpoint_key", "index_dataset", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_RECORD_FIELDS = ("path", "size", "sha256", "status", "error", "elapsed_s", "epoch", "step", "params", "warnings")


def checkpoint_key(path: str) -> str:
    """A stable group name for a checkpoint path: its file name made safe, plus a short hash of
    the absolute path (two ``model.pt`` in different folders get different keys)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).name).lstrip("._") or "checkpoint"
    return f"{name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Record:
    """What the store knows about one (checkpoint, probe): file identity, outcome, cost.

    ``status`` is ``ok`` or ``error``; ``epoch`` / ``step`` are -1 when unknown; ``params`` is
    the JSON of everything that determines the result (probe parameters and loading options).
    """

    path: str
    size: int
    sha256: str
    status: str
    error: str = ""
    elapsed_s: float = 0.0
    epoch: int = -1
    step: int = -1
    params: str = ""
    warnings: str = ""

    def attrs(self) -> dict[str, Any]:
        return {f"batch_{k}": getattr(self, k) for k in _RECORD_FIELDS} | {"batch_complete": 1}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Record | None:
        if attrs.get("batch_complete") != 1:
            return None
        try:
            return cls(**{k: attrs[f"batch_{k}"] for k in _RECORD_FIELDS})
        except (KeyError, TypeError):
            return None


class BatchStore:
    """Read and write a batch store at ``path`` (a directory; created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _zarr(self, mode: str, group: str = "") -> Any:
        import zarr

        return zarr.open_group(str(self.path), path=group, mode=mode)

    def create(self, probes: Iterable[str]) -> None:
        """Make the root group (or check an existing one is a batch store)."""
        from .. import __version__

        if self.path.exists() and any(self.path.iterdir()) and not (self.path / "zarr.json").exists():
            raise DynprobeError(f"batch store {str(self.path)!r} exists and is not a Zarr store; choose another --out")
        root = self._zarr("a")
        version = root.attrs.get("dynprobe_batch")
        if version not in (None, FORMAT_VERSION):
            raise DynprobeError(
                f"batch store {str(self.path)!r} has format {version}, this dynprobe writes {FORMAT_VERSION}")
        known = set(json.loads(root.attrs.get("probes", "[]")))
        root.attrs.update({"dynprobe_batch": FORMAT_VERSION, "dynprobe_version": __version__,
                           "probes": json.dumps(sorted(known | set(probes)))})
        if "checkpoints" not in root:
            root.create_group("checkpoints")

    def records(self) -> dict[tuple[str, str], Record]:
        """Every complete record, by (checkpoint key, probe)."""
        if not (self.path / "zarr.json").exists():
            return {}
        root = self._zarr("r")
        if "checkpoints" not in root:
            return {}
        out = {}
        for key, ck in root["checkpoints"].groups():
            for probe, group in ck.groups():
                try:
                    record = Record.from_attrs(group.attrs.asdict())
                except Exception:  # noqa: BLE001 - a group half-written by a killed run reads as absent
                    record = None
                if record is not None:
                    out[(key, probe)] = record
        return out

    def write(self, key: str, probe: str, record: Record, ds: xr.Dataset | None) -> None:
        """Write one (checkpoint, probe) result — the Dataset first, then the record that marks
        it complete — or only the record for a failure."""
        group = f"checkpoints/{key}/{probe}"
        self._zarr("a", f"checkpoints/{key}").attrs.update({"path": record.path})
        if ds is not None:
            clean = ds.copy()
            clean.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("batch_")}
            _vlen_strings(clean).to_zarr(str(self.path), group=group, mode="w", consolidated=False)
            self._zarr("r+", group).attrs.update(record.attrs())
        else:
            self._zarr("w", group).attrs.update(record.attrs())

    def write_index(self) -> xr.Dataset:
        """Rebuild ``index/`` from the records; return it."""
        index = index_dataset(self.records())
        _vlen_strings(index).to_zarr(str(self.path), group="index", mode="w", consolidated=False)
        return index

    def open_result(self, key: str, probe: str) -> xr.Dataset:
        """The Dataset of one complete (checkpoint, probe), in memory, without batch_* attrs."""
        with xr.open_zarr(str(self.path), group=f"checkpoints/{key}/{probe}", consolidated=False) as ds:
            ds = ds.load()
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("batch_")}
        return ds


def _labelled(values: Any, long_name: str, units: str = "1") -> tuple[Any, dict[str, str]]:
    return values, {"long_name": long_name, "units": units}


def index_dataset(records: Mapping[tuple[str, str], Record], statuses: Mapping[tuple[str, str], str] | None = None,
                  paths: Mapping[str, str] | None = None, probes: Iterable[str] | None = None) -> xr.Dataset:
    """The index as a Dataset over ``checkpoint`` (the path) and ``probe``: file size, sha256,
    epoch, step per checkpoint; status, error, elapsed time per (checkpoint, probe).

    ``paths`` (group key → path) restricts the index to those checkpoints (all recorded ones
    by default); ``statuses`` overrides the status of some entries (``skipped`` in a run's
    summary); entries without a record are ``missing``.
    """
    if paths is None:
        paths = {k: r.path for (k, _), r in records.items()}
    keys = sorted(paths, key=lambda k: paths[k])
    probes = sorted({p for _, p in records} if probes is None else set(probes))
    statuses = statuses or {}
    first = {k: next((records[(k, p)] for p in probes if (k, p) in records), None) for k in keys}

    def per_ck(attr: str, empty: Any) -> list[Any]:
        return [getattr(first[k], attr) if first[k] is not None else empty for k in keys]

    def grid(attr: str, empty: Any, dtype: Any) -> np.ndarray:
        cells = [[getattr(records[(k, p)], attr) if (k, p) in records else empty for p in probes] for k in keys]
        return np.array(cells, dtype=dtype).reshape(len(keys), len(probes))

    status = grid("status", "missing", object)
    for (k, p), value in statuses.items():
        if k in keys and p in probes:
            status[keys.index(k), probes.index(p)] = value
    error, elapsed = grid("error", "", object), grid("elapsed_s", np.nan, np.float64)
    dims = ("checkpoint", "probe")
    return xr.Dataset(
        {
            "status": (dims, *_labelled(status, "ok / error / skipped (unchanged since a complete run) / missing")),
            "error": (dims, *_labelled(error, "error text (empty when ok)")),
            "elapsed_s": (dims, *_labelled(elapsed, "wall time of the probe (NaN: no record)", "s")),
            "file_size": ("checkpoint", *_labelled(np.array(per_ck("size", -1), dtype=np.int64), "file size", "byte")),
            "sha256": ("checkpoint", *_labelled(np.array(per_ck("sha256", ""), dtype=object), "sha256 of the file")),
            "epoch": ("checkpoint", *_labelled(np.array(per_ck("epoch", -1), dtype=np.int64), "epoch (-1: unknown)")),
            "step": ("checkpoint", *_labelled(np.array(per_ck("step", -1), dtype=np.int64), "step (-1: unknown)")),
            "key": ("checkpoint", *_labelled(np.array(keys, dtype=object), "group name in the store")),
        },
        coords={
            "checkpoint": ("checkpoint", *_labelled(np.array([paths[k] for k in keys], dtype=object),
                                                    "checkpoint file")),
            "probe": ("probe", *_labelled(np.array(probes, dtype=object), "probe")),
        },
    )


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
            coords[what] = ("checkpoint", np.array(values, dtype=np.int64), {"long_name": what, "units": "1"})
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
                      f"({err}); padding with NaN (\"\" for text) along the differing dimensions", RuntimeWarning, stacklevel=3)
        text = {k: "" for k, v in datasets[0].variables.items() if v.dtype.kind in "OUST"}  # NaN is no string
        out = xr.concat(datasets, dim="checkpoint", join="outer", combine_attrs="drop_conflicts",
                        coords="minimal", compat="override", data_vars="all", fill_value=text)
    out = out.assign_coords(coords)
    out.attrs.update({k: f"per checkpoint: see coordinate {k if k in out.coords else 'attr_' + k}" for k in varying})
    return out


def open_batch(store: str | Path) -> xr.DataTree:
    """Read a batch store: one child per probe with its results along ``checkpoint``.

    The ``checkpoint`` coordinate holds the file paths; ``epoch`` / ``step`` coordinates are
    added when every checkpoint has one (from the file or its name); ``checkpoint_sha256``
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
    if not (bs.path / "zarr.json").exists():
        raise DynprobeError(f"no batch store at {str(bs.path)!r}; write one with dynprobe batch ... --out {bs.path}")
    root = bs._zarr("r")
    if root.attrs.get("dynprobe_batch") is None:
        raise DynprobeError(f"{str(bs.path)!r} is a Zarr store but not a dynprobe batch store")
    records = bs.records()
    children: dict[str, xr.Dataset] = {}
    for probe in sorted({p for _, p in records}):
        done = [(k, r) for (k, p), r in records.items() if p == probe and r.status == "ok"]
        if not done:
            continue
        order = _order([r for _, r in done])
        done = [done[i] for i in order]
        with ThreadPoolExecutor(max_workers=8) as pool:  # reads wait on Zarr's I/O loop, not the CPU
            datasets = list(pool.map(bs.open_result, [k for k, _ in done], [probe] * len(done)))
        children[probe] = _stack(datasets, [r for _, r in done])
    children["index"] = index_dataset(records)
    tree = xr.DataTree.from_dict(children)
    tree.attrs = {k: v for k, v in root.attrs.asdict().items()}
    return tree
