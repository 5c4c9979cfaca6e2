"""The Zarr store of a batch run: one group per checkpoint per probe, each written, checksummed,
then marked complete; an index; damage found and named, never read as data.

Layout (Zarr format 3)::

    STORE/                          root attrs: dynprobe_batch (format version), dynprobe_version, probes
      .dynprobe.lock                held by the run writing the store (:mod:`.lock`)
      checkpoints/KEY/              attrs: path
      checkpoints/KEY/PROBE/        the probe's Dataset (arrays + its attrs), then the record
                                    attrs batch_* with the checksum — batch_complete = 1 last
      index/                        the index as a Dataset over (checkpoint, probe), rebuilt from
                                    the records at the end of every run

A result counts only when its record is complete *and* its checksum matches what is on disk
(:mod:`.integrity`). A group without the mark (a run killed while writing it), with a
mismatching checksum (a deleted or altered chunk, a truncated array ``zarr.json``), or whose
metadata cannot be parsed reads as absent; :meth:`BatchStore.scan` names it, and the next run
recomputes it. Results are found by listing the folders, so a damaged ``checkpoints/KEY`` or
root ``zarr.json`` hides nothing below it, and :meth:`BatchStore.create` rewrites such group
metadata (never the results under it). The records are the truth; ``index/`` is a view.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import xarray as xr

from ..errors import DynprobeError
from ..results import _vlen_strings
from .integrity import group_attrs, result_digest
from .records import FORMAT_VERSION, Record, checkpoint_key, index_dataset

__all__ = ["BatchStore", "Scan", "Record", "checkpoint_key", "index_dataset", "FORMAT_VERSION"]

_NAMED = 5  # damaged results named one by one in a warning; the rest are counted


@dataclass
class Scan:
    """The results found in a store: verified records, and damaged results with the reason."""

    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    damaged: dict[tuple[str, str], str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    """Checkpoint path of every group key seen (damaged results included)."""

    def index(self) -> xr.Dataset:
        """The index of everything found: complete records, and damaged results as such."""
        paths = {**self.paths, **{k: r.path for (k, _), r in self.records.items()}}
        return index_dataset(self.records, paths=paths, damaged=self.damaged,
                             probes={p for _, p in self.records} | {p for _, p in self.damaged})

    def warn(self, store: Path, stacklevel: int = 3) -> None:
        """One line per damaged result (the first few; the rest counted)."""
        items = sorted(self.damaged.items())
        for (key, probe), reason in items[:_NAMED]:
            warnings.warn(f"batch store {str(store)!r}: result {key}/{probe} is damaged ({reason}); it reads as absent "
                          "and the next run recomputes it", RuntimeWarning, stacklevel=stacklevel)
        if len(items) > _NAMED:
            warnings.warn(f"batch store {str(store)!r}: {len(items) - _NAMED} more damaged results read as absent "
                          "(see the index)", RuntimeWarning, stacklevel=stacklevel)


def _write_group_meta(folder: Path, attrs: Mapping[str, Any]) -> None:
    """(Re)write one group's own metadata file, atomically, leaving what is below it alone."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".zarr.json.{os.getpid()}"
    tmp.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": dict(attrs)}), encoding="utf-8")
    os.replace(tmp, folder / "zarr.json")


class BatchStore:
    """Read and write a batch store at ``path`` (a directory; created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _zarr(self, mode: str, group: str = "") -> Any:
        from ..extras import require

        zarr = require("zarr", f"the batch store {str(self.path)!r}")

        return zarr.open_group(str(self.path), path=group, mode=mode)

    def looks_like_batch_store(self) -> bool:
        return (self.path / "zarr.json").exists() or (self.path / "checkpoints").is_dir()

    def root_attrs(self) -> dict[str, Any] | None:
        """The root's attrs; ``None`` when its metadata is damaged or missing."""
        try:
            return group_attrs(self.path)
        except (OSError, ValueError):
            return None

    def _ensure_group(self, folder: Path, attrs: Mapping[str, Any]) -> None:
        """Make ``folder`` a group with at least ``attrs``, repairing damaged metadata."""
        try:
            current, repair = group_attrs(folder), False
        except FileNotFoundError:
            current, repair = {}, True
        except (OSError, ValueError):
            where = folder.relative_to(self.path).as_posix() if folder != self.path else "the root"
            warnings.warn(f"batch store {str(self.path)!r}: the metadata of {where} was damaged; rewrote it (the "
                          "results below it are untouched)", RuntimeWarning, stacklevel=3)
            current, repair = {}, True
        if repair or any(current.get(k) != v for k, v in attrs.items()):
            _write_group_meta(folder, {**current, **attrs})

    def check_target(self) -> None:
        """Refuse, before any work, a store in a missing or read-only folder, a path that is a
        file, or a folder holding something else than a batch store."""
        from ..results import check_output_path

        check_output_path(self.path, what="batch store", formats=False, folder_ok=True)
        if self.path.exists() and not self.path.is_dir():
            raise DynprobeError(f"batch store {str(self.path)!r} is a file; choose a folder name for --out")
        if self.path.is_dir() and not self.looks_like_batch_store() and any(self.path.iterdir()):
            raise DynprobeError(f"batch store {str(self.path)!r} exists and is not a Zarr store; choose another --out")
        attrs = self.root_attrs()
        if attrs is not None and "dynprobe_batch" not in attrs and any(
                p.name != "zarr.json" for p in self.path.iterdir()):
            raise DynprobeError(f"{str(self.path)!r} is a Zarr store but not a dynprobe batch store; choose another "
                                "--out")

    def create(self, probes: Iterable[str]) -> None:
        """Make the root group (or check an existing one is a batch store, repairing its metadata)."""
        from .. import __version__

        self.check_target()
        attrs = self.root_attrs() or {}
        version = attrs.get("dynprobe_batch")
        if version not in (None, 1, FORMAT_VERSION):
            raise DynprobeError(
                f"batch store {str(self.path)!r} has format {version}, this dynprobe writes {FORMAT_VERSION}")
        try:
            known = set(json.loads(attrs.get("probes", "[]")))
        except (TypeError, ValueError):
            known = set()
        self._ensure_group(self.path, {"dynprobe_batch": FORMAT_VERSION, "dynprobe_version": __version__,
                                       "probes": json.dumps(sorted(known | set(probes)))})
        self._ensure_group(self.path / "checkpoints", {})
        for _key, folder in self._checkpoint_folders():
            self._ensure_group(folder, {})

    def _checkpoint_folders(self) -> Iterable[tuple[str, Path]]:
        folder = self.path / "checkpoints"
        if folder.is_dir():
            yield from ((p.name, p) for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith("."))

    def _groups(self) -> Iterable[tuple[str, str, Path]]:
        for key, ck in self._checkpoint_folders():
            for group in sorted(p for p in ck.iterdir() if p.is_dir() and not p.name.startswith(".")):
                yield key, group.name, group

    def scan(self, *, verify: bool = True) -> Scan:
        """Every complete record (checksum verified with ``verify``), and the damaged results."""
        out = Scan()
        for key, probe, folder in self._groups():
            self._scan_group(out, key, probe, folder, verify)
        return out

    def scan_one(self, key: str, probe: str) -> Record | None:
        """The complete, verified record of one result, or ``None``."""
        out = Scan()
        folder = self.path / "checkpoints" / key / probe
        if folder.is_dir():
            self._scan_group(out, key, probe, folder, True)
        return out.records.get((key, probe))

    def _scan_group(self, out: Scan, key: str, probe: str, folder: Path, verify: bool) -> None:
        out.paths.setdefault(key, self._path_of(key))
        try:
            attrs = group_attrs(folder)
        except FileNotFoundError:
            return  # an empty folder: a write that never started
        except (OSError, ValueError) as err:
            out.damaged[(key, probe)] = f"{out.paths[key]}: its metadata cannot be read ({type(err).__name__})"
            return
        record = Record.from_attrs(attrs)
        if record is None:
            if attrs.get("batch_complete") == 1:
                out.damaged[(key, probe)] = f"{out.paths[key]}: its record cannot be read"
            return  # no completion mark: a write that did not finish, absent by design
        if verify and record.status == "ok":
            reason = self._verify(folder, record)
            if reason:
                out.damaged[(key, probe)] = f"{record.path}: {reason}"
                return
        out.records[(key, probe)] = record

    def _path_of(self, key: str) -> str:
        try:
            return str(group_attrs(self.path / "checkpoints" / key).get("path", key))
        except (OSError, ValueError):
            return key

    def verify(self, key: str, probe: str, record: Record) -> str:
        """``""`` when the stored result still matches ``record``'s checksum, else why not."""
        return self._verify(self.path / "checkpoints" / key / probe, record)

    def _verify(self, folder: Path, record: Record) -> str:
        if not record.digest:
            return "no checksum (written by an older dynprobe)"
        try:
            found = result_digest(folder)
        except (OSError, ValueError) as err:
            return f"its files cannot be read ({type(err).__name__})"
        return "" if found == record.digest else "checksum mismatch: a chunk or array was changed or lost"

    def records(self) -> dict[tuple[str, str], Record]:
        """Every complete, verified record, by (checkpoint key, probe)."""
        return self.scan().records

    def write(self, key: str, probe: str, record: Record, ds: xr.Dataset | None) -> bool:
        """Write one (checkpoint, probe) result — the Dataset first, then its checksum and the
        record that marks it complete — or only the record for a failure.

        A failure never replaces an intact result of the same file and parameters (a probe
        that timed out this time, a worker that died after writing): that result is kept and
        ``False`` returned."""
        group = f"checkpoints/{key}/{probe}"
        folder = self.path / group
        if ds is None:
            kept = self.scan_one(key, probe)
            if kept is not None and kept.status == "ok" and kept.sha256 == record.sha256 and kept.params == record.params:
                return False
        self._ensure_group(self.path / "checkpoints" / key, {"path": record.path})
        if ds is not None:
            clean = ds.copy()
            clean.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("batch_")}
            _vlen_strings(clean).to_zarr(str(self.path), group=group, mode="w", consolidated=False)
            self._zarr("r+", group).attrs.update(replace(record, digest=result_digest(folder)).attrs())
        else:
            self._zarr("w", group).attrs.update(record.attrs())
        return True

    def write_index(self, scan: Scan | None = None) -> xr.Dataset:
        """Rebuild ``index/`` from the records; return it."""
        index = (scan or self.scan()).index()
        _vlen_strings(index).to_zarr(str(self.path), group="index", mode="w", consolidated=False)
        return index

    def open_result(self, key: str, probe: str) -> xr.Dataset:
        """The Dataset of one complete (checkpoint, probe), in memory, without batch_* attrs."""
        with xr.open_zarr(str(self.path), group=f"checkpoints/{key}/{probe}", consolidated=False) as ds:
            ds = ds.load()
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("batch_")}
        return ds
