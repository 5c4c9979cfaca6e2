"""Result conventions: provenance attrs, validation, and exact netCDF / Zarr round trips.

The schema is written down in ``docs/RESULTS.md``; :func:`make_attrs` builds every Dataset's
provenance attrs in one place and :func:`validate` checks a Dataset against the rules.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from . import accessor as _accessor  # noqa: F401 - every result path registers ds.dynprobe
from .errors import DynprobeError
from .extras import require
from .schema import check_dims

if TYPE_CHECKING:
    from .specs import Probe

__all__ = [
    "PROVENANCE_ATTRS",
    "make_attrs",
    "validate",
    "to_json",
    "save",
    "write_tree",
    "extend_tree",
    "check_output_path",
    "open_result",
    "attach",
    "netcdf_attr",
]

PROVENANCE_ATTRS = (
    "dynprobe_version",
    "probe",
    "params",
    "system",
    "model_fingerprint",
    "seed",
    "dtype",
    "device",
    "torch_version",
    "elapsed_s",
    "created_utc",
    "plugin",
    "plugin_version",
)
"""Attrs every probe result carries (see docs/RESULTS.md)."""

VOLATILE_ATTRS = ("elapsed_s", "created_utc")
"""Attrs that differ between otherwise bit-identical runs."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if callable(value):
        return getattr(value, "__qualname__", None) or repr(value)
    return repr(value)


def to_json(value: Any) -> str:
    """JSON text for attrs: tensors and arrays become lists, callables their names."""
    return json.dumps(value, default=_jsonable, sort_keys=True)


def make_attrs(
    *,
    probe: str,
    params: Mapping[str, Any],
    system: Any | None,
    elapsed_s: float,
    plugin: str = "",
    plugin_version: str = "",
) -> dict[str, Any]:
    """The provenance attrs of one probe result (the list in docs/RESULTS.md, "Metadata")."""
    from . import __version__

    seed = params.get("seed", -1)
    return {
        "dynprobe_version": __version__,
        "probe": probe,
        "params": to_json(dict(params)),
        "system": system.describe() if system is not None else "none",
        "model_fingerprint": system.fingerprint() if system is not None else "",
        "seed": int(seed) if isinstance(seed, (int, np.integer)) else -1,
        "dtype": str(system.dtype).removeprefix("torch.") if system is not None else "",
        "device": str(system.device) if system is not None else "",
        "torch_version": str(torch.__version__),
        "elapsed_s": float(elapsed_s),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "plugin": plugin,
        "plugin_version": plugin_version,
    }


def netcdf_attr(value: Any) -> Any:
    """Normalize an attr value to what netCDF stores and gives back unchanged: flags become
    0/1, ``None`` becomes ``""``, a one-element array its element, str subclasses plain str,
    dicts JSON text."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return value.reshape(()).item()
        return value.reshape(-1)
    if isinstance(value, Mapping):
        return to_json(dict(value))
    return value


def attach(ds: xr.Dataset, attrs: Mapping[str, Any]) -> xr.Dataset:
    """Return ``ds`` with ``attrs`` merged in (probe-specific attrs kept, provenance wins),
    every value normalized by :func:`netcdf_attr`."""
    out = ds.copy()
    out.attrs = {k: netcdf_attr(v) for k, v in {**ds.attrs, **attrs}.items()}
    return out


def _attr_ok(value: Any) -> bool:
    if type(value) in (str, int, float) or isinstance(value, (np.integer, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iufU"


def validate(ds: xr.Dataset, *, provenance: bool = True, probe: Probe | str | None = None) -> list[str]:
    """Check ``ds`` against the result conventions; return the list of problems (empty = ok).

    Rules: every data variable and coordinate has ``long_name`` and ``units``; every dimension
    has a coordinate; no variable shares a name with a dimension it does not index; attrs are
    str, number or 1-D array; with ``provenance`` every attr of :data:`PROVENANCE_ATTRS` is there;
    every dimension is one the probe declares (``Probe.dims``) or in the vocabulary
    (:data:`dynprobe.schema.VOCABULARY`), its coordinate in that dimension's units.

    Parameters
    ----------
    probe
        The probe that made ``ds`` (a :class:`~dynprobe.Probe` or a registered name); by default
        the one its ``probe`` attr names, when installed (else only the vocabulary is checked).
    """
    problems = _dim_problems(ds, probe)
    for name, var in {**ds.data_vars, **ds.coords}.items():
        for key in ("long_name", "units"):
            if key not in var.attrs:
                problems.append(f"variable {name!r} has no {key!r} attr")
        for key, value in var.attrs.items():
            if not _attr_ok(value):
                problems.append(f"variable {name!r}: attr {key!r} has type {type(value).__name__}")
    for dim in ds.dims:
        if dim not in ds.coords:
            problems.append(f"dimension {dim!r} has no coordinate")
    for name in ds.data_vars:
        if name in ds.dims:
            problems.append(f"data variable {name!r} shares its name with a dimension")
    for key, value in ds.attrs.items():
        if not _attr_ok(value):
            problems.append(f"attr {key!r} has type {type(value).__name__}; use str, number or 1-D array")
    if provenance:
        problems += [f"missing provenance attr {key!r}" for key in PROVENANCE_ATTRS if key not in ds.attrs]
    return problems


def _dim_problems(ds: xr.Dataset, probe: Probe | str | None) -> list[str]:
    if probe is None or isinstance(probe, str):
        from .registry import registry  # the registry imports this module

        name = probe if probe is not None else ds.attrs.get("probe")
        found = registry().probes().get(name) if isinstance(name, str) else None
        if probe is not None and found is None:
            raise DynprobeError(f"validate: no probe {probe!r} is installed; pass the Probe itself or probe=None")
        probe = found if found is not None else None
        if probe is None:
            return check_dims(ds, None, name if isinstance(name, str) else "")
    return check_dims(ds, probe.dimensions, probe.name)


def _engine(path: Path) -> str:
    if path.suffix in (".nc", ".nc4", ".h5", ".netcdf"):
        return "netcdf"
    if path.suffix == ".zarr" or (path.is_dir() and (path / "zarr.json").exists()):
        return "zarr"
    raise DynprobeError(f"cannot tell the format of {str(path)!r}; use a .nc (netCDF) or .zarr path")


def check_output_path(path: str | Path, *, what: str = "output", formats: bool = True, folder_ok: bool = False) -> Path:
    """Refuse, before any work, an output path that cannot be written: an unknown format
    (with ``formats``: ``.nc`` or ``.zarr``), a missing or read-only folder, or a folder where
    a file belongs (a ``.zarr`` store, and with ``folder_ok`` any path, may be a folder)."""
    path = Path(path)
    if formats:
        folder_ok = _engine(path) == "zarr"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DynprobeError(f"{what} {str(path)!r}: the folder {str(folder)!r} does not exist; create it first "
                            "or choose another path")
    if not os.access(folder, os.W_OK):
        raise DynprobeError(f"{what} {str(path)!r}: the folder {str(folder)!r} is not writable; choose another path")
    if path.is_dir() and not folder_ok:
        raise DynprobeError(f"{what} {str(path)!r} is a folder; choose a file name")
    return path


def _line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _scratch(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write(tree: xr.DataTree, path: Path, engine: str) -> None:
    """Write ``tree`` to a scratch name beside ``path``, then rename it into place: ``path``
    is always either what it was or the complete new result, never half of one."""
    tmp = _scratch(path)
    try:
        if engine == "netcdf":
            tree.to_netcdf(tmp, engine="h5netcdf", mode="w")
        else:
            # fixed-width unicode has no Zarr v3 data type: store variable-length strings
            tree.map_over_datasets(_vlen_strings).to_zarr(tmp, mode="w", consolidated=False)
        _replace_with(tmp, path)
    finally:
        _remove(tmp)


def _replace_with(tmp: Path, path: Path) -> None:
    if tmp.is_dir() and path.exists():  # a directory cannot be renamed over another
        old = _scratch(path)
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)


def extend_tree(tree: xr.DataTree, path: str | Path, added: list[str]) -> dict[str, str]:
    """Bring ``path``, a file :func:`write_tree` wrote from an earlier state of ``tree``, up to
    date: write the children named in ``added`` and the root attrs, leaving the children already
    there untouched (``diagnose`` after each probe — rewriting every finished result each time
    cost it tens of seconds on a big network).

    Atomic like :func:`write_tree`: the file is copied to a scratch name beside it, extended
    there and renamed into place. Returns the children left out (node → one-line reason); when
    anything goes wrong it falls back to :func:`write_tree` of the whole tree.
    """
    path = Path(path)
    engine = _writable_engine(path)
    if not path.exists():
        return write_tree(tree, path)
    tmp = _scratch(path)
    try:
        if path.is_dir():
            shutil.copytree(path, tmp)
        else:
            shutil.copyfile(path, tmp)
        for name in added:
            _add_node(tree[name].to_dataset(inherit=False), tmp, engine, name)
        _add_node(xr.Dataset(attrs=tree.attrs), tmp, engine, None)  # the root's attrs
        _replace_with(tmp, path)
        return {}
    except Exception:  # noqa: BLE001 - a child the format cannot hold: the whole-tree path sorts it out
        return write_tree(tree, path)
    finally:
        _remove(tmp)


def _add_node(ds: xr.Dataset, store: Path, engine: str, group: str | None) -> None:
    """Write ``ds`` as node ``group`` (``None``: the root) into an existing file or store."""
    if engine == "netcdf":
        ds.to_netcdf(store, mode="a", group=group, engine="h5netcdf")
    elif group is None:
        ds.to_zarr(store, mode="a", consolidated=False)
    else:
        _vlen_strings(ds).to_zarr(store, mode="w", group=group, consolidated=False)


def _holds(ds: xr.Dataset, engine: str, folder: Path) -> str:
    """``""`` when ``engine`` can hold ``ds``, else the one-line reason (a trial write)."""
    trial = _scratch(folder / f"trial.{'nc' if engine == 'netcdf' else 'zarr'}")
    try:
        _write(xr.DataTree(dataset=ds), trial, engine)
    except Exception as err:  # noqa: BLE001 - the reason is the answer
        return _line(err)
    finally:
        _remove(trial)
    return ""


def _writable_engine(path: Path) -> str:
    """The engine of ``path``; for Zarr, the extra checked first (one line naming it, not a
    trial write per child)."""
    engine = _engine(path)
    if engine == "zarr":
        require("zarr", f"writing {str(path)!r}")
    return engine


def write_tree(tree: xr.DataTree, path: str | Path) -> dict[str, str]:
    """Write ``tree`` atomically to ``path``; a child the format cannot hold is left out.

    Returns the children left out (node path → one-line reason), also recorded in the
    written root's ``unsaved`` attr (JSON); :class:`DynprobeError` when even the rest cannot
    be written. Used by :func:`save`, and by ``diagnose`` for its first write (then
    :func:`extend_tree` adds each probe's result).
    """
    path = Path(path)
    engine = _writable_engine(path)
    try:
        _write(tree, path, engine)
        return {}
    except Exception as first:  # noqa: BLE001 - find which children the format cannot hold
        error = first
    left_out = {}
    for node in tree.subtree:
        if node is not tree:
            reason = _holds(node.to_dataset(inherit=False), engine, path.parent)
            if reason:
                left_out[node.path.lstrip("/")] = reason
    if not left_out:
        raise DynprobeError(f"cannot write {str(path)!r}: {_line(error)}") from error
    nodes = {"/": tree.to_dataset(inherit=False)}
    nodes.update({node.path: node.to_dataset(inherit=False) for node in tree.subtree
                  if node is not tree and node.path.lstrip("/") not in left_out})
    kept = xr.DataTree.from_dict(nodes)
    kept.attrs = {**tree.attrs, "unsaved": to_json(left_out)}
    try:
        _write(kept, path, engine)
    except Exception as err:  # noqa: BLE001
        raise DynprobeError(f"cannot write {str(path)!r}: {_line(err)}") from err
    return left_out


def save(result: xr.Dataset | xr.DataTree, path: str | Path) -> Path:
    """Write a Dataset or DataTree to ``.nc`` (netCDF via h5netcdf) or ``.zarr``; overwrite.

    The write is atomic (a scratch name beside ``path``, then a rename). A child of a
    DataTree that the format cannot hold is left out with a warning naming it (and listed in
    the root's ``unsaved`` attr) while the rest is written; a Dataset that cannot be written
    at all is a :class:`DynprobeError`.
    """
    path = check_output_path(path, what="save:")
    if isinstance(result, xr.Dataset):
        engine = _writable_engine(path)
        try:
            _write(xr.DataTree(dataset=result), path, engine)
        except Exception as err:  # noqa: BLE001 - one line naming the file
            raise DynprobeError(f"cannot write {str(path)!r}: {_line(err)}") from err
        return path
    for node, reason in write_tree(result, path).items():
        warnings.warn(f"dynprobe.save: {node!r} left out of {str(path)!r}: {reason}", RuntimeWarning, stacklevel=2)
    return path


def _vlen_strings(ds: xr.Dataset) -> xr.Dataset:
    fixed = [name for name, var in ds.variables.items() if var.dtype.kind == "U"]
    if not fixed:
        return ds
    out = ds.copy()
    for name in fixed:
        var = out.variables[name]
        out[name] = var.copy(data=var.values.astype(object)) if name not in out.indexes else var
    if any(name in out.indexes for name in fixed):
        out = out.assign_coords({n: out[n].copy(data=out[n].values.astype(object)) for n in fixed if n in out.indexes})
    return out


def open_result(path: str | Path) -> xr.DataTree:
    """Read a result written by :func:`save` back into memory as a DataTree."""
    path = Path(path)
    if not path.exists():
        raise DynprobeError(f"no result at {str(path)!r}; write one with dynprobe run ... --out {path}")
    if _engine(path) == "netcdf":
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    require("zarr", f"reading {str(path)!r}")
    with xr.open_datatree(path, engine="zarr", consolidated=False) as tree:
        return tree.load()
