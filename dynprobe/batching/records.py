"""What a batch store knows about each (checkpoint, probe): the :class:`Record`, and the index.

A record is written into its result group's attrs as ``batch_*`` and is the truth about that
result; the index (:func:`index_dataset`) is a view of all of them. A record accepts whatever
a checkpoint or a damaged store hands it: every field is normalized on construction (an epoch
of ``2**64`` or ``"99999999999999999999"`` becomes "unknown", noted in ``warnings``), and
:meth:`Record.from_attrs` turns anything it cannot read into "no record" instead of raising.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["Record", "checkpoint_key", "index_dataset", "FORMAT_VERSION", "STATUSES"]

FORMAT_VERSION = 2
"""Store format: 2 adds the checksum and the versions that made each result."""

_INT64_MAX = 2**63 - 1

STATUSES = "ok / error / skipped (unchanged since a complete run) / damaged (recomputed next run) / missing"


def checkpoint_key(path: str) -> str:
    """A stable group name for a checkpoint path: its file name made safe, plus a short hash of
    the absolute path (two ``model.pt`` in different folders get different keys)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).name).lstrip("._") or "checkpoint"
    return f"{name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def _count(value: Any) -> int | None:
    """``value`` as a count 0 .. 2**63 - 1 (int64, as the index stores it), else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= _INT64_MAX else None


@dataclass(frozen=True)
class Record:
    """What the store knows about one (checkpoint, probe): file identity, outcome, cost, and
    what made the result.

    ``status`` is ``ok`` or ``error``; ``epoch`` / ``step`` are -1 when unknown; ``params`` is
    the JSON of the probe parameters and loading options; ``dynprobe_version``, ``plugin`` and
    ``plugin_version`` say which code computed it (part of what decides whether a rerun may
    reuse it); ``digest`` is the checksum of the result's stored arrays (empty for errors).
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
    digest: str = ""
    dynprobe_version: str = ""
    plugin: str = ""
    plugin_version: str = ""

    def __post_init__(self) -> None:
        notes = [self.warnings] if isinstance(self.warnings, str) and self.warnings else []
        for name in ("epoch", "step"):
            raw = getattr(self, name)
            value = _count(raw)
            if value is None and raw is not None and raw != -1:
                notes.append(f"{name} {str(raw)[:40]!r} recorded in the file is not a count; stored as unknown")
            object.__setattr__(self, name, -1 if value is None else value)
        size = _count(self.size)
        object.__setattr__(self, "size", -1 if size is None else size)
        try:
            elapsed = float(self.elapsed_s)
        except (TypeError, ValueError):
            elapsed = -1.0
        object.__setattr__(self, "elapsed_s", elapsed if math.isfinite(elapsed) else -1.0)
        for f in fields(self):
            if f.type == "str" and f.name != "warnings":
                value = getattr(self, f.name)
                object.__setattr__(self, f.name, value if isinstance(value, str) else str(value))
        object.__setattr__(self, "warnings", "; ".join(notes))

    def attrs(self) -> dict[str, Any]:
        """The ``batch_*`` attrs, ending with the completion mark."""
        return {f"batch_{f.name}": getattr(self, f.name) for f in fields(self)} | {"batch_complete": 1}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Record | None:
        """The record in a group's attrs; ``None`` when it is not complete, or not readable
        as one (a missing field, a field of the wrong type)."""
        try:
            if attrs.get("batch_complete") != 1:
                return None
            values = {f.name: attrs[f"batch_{f.name}"] for f in fields(cls)}
        except (KeyError, TypeError, AttributeError):
            return None
        text = [f.name for f in fields(cls) if f.type == "str"]
        if any(not isinstance(values[name], str) for name in text) or values["status"] not in ("ok", "error"):
            return None
        try:
            return cls(**values)
        except (TypeError, ValueError):
            return None


def _labelled(values: Any, long_name: str, units: str = "1") -> tuple[Any, dict[str, str]]:
    return values, {"long_name": long_name, "units": units}


def index_dataset(records: Mapping[tuple[str, str], Record], statuses: Mapping[tuple[str, str], str] | None = None,
                  paths: Mapping[str, str] | None = None, probes: Iterable[str] | None = None,
                  damaged: Mapping[tuple[str, str], str] | None = None,
                  errors: Mapping[tuple[str, str], str] | None = None) -> xr.Dataset:
    """The index as a Dataset over ``checkpoint`` (the path) and ``probe``: file size, sha256,
    epoch, step per checkpoint; status, error, elapsed time per (checkpoint, probe).

    ``paths`` (group key → path) restricts the index to those checkpoints (all recorded ones
    by default); ``statuses`` overrides the status of some entries (``skipped`` in a run's
    summary) and ``errors`` their error text; ``damaged`` ((key, probe) → reason) marks
    results that failed verification; entries without a record are ``missing``.
    """
    damaged = dict(damaged or {})
    if paths is None:
        paths = {k: r.path for (k, _), r in records.items()}
        paths.update({k: k for k, _ in damaged if k not in paths})
    keys = sorted(paths, key=lambda k: paths[k])
    probes = sorted({p for _, p in records} | {p for _, p in damaged} if probes is None else set(probes))
    statuses = statuses or {}
    first = {k: next((records[(k, p)] for p in probes if (k, p) in records), None) for k in keys}

    def per_ck(attr: str, empty: Any) -> list[Any]:
        return [getattr(first[k], attr) if first[k] is not None else empty for k in keys]

    def grid(attr: str, empty: Any, dtype: Any) -> np.ndarray:
        cells = [[getattr(records[(k, p)], attr) if (k, p) in records else empty for p in probes] for k in keys]
        return np.array(cells, dtype=dtype).reshape(len(keys), len(probes))

    status, error = grid("status", "missing", object), grid("error", "", object)
    for (k, p), reason in damaged.items():
        if k in keys and p in probes and (k, p) not in records:
            status[keys.index(k), probes.index(p)] = "damaged"
            error[keys.index(k), probes.index(p)] = reason
    for (k, p), value in statuses.items():
        if k in keys and p in probes:
            status[keys.index(k), probes.index(p)] = value
    for (k, p), text in (errors or {}).items():
        if k in keys and p in probes:
            error[keys.index(k), probes.index(p)] = text
    elapsed = grid("elapsed_s", np.nan, np.float64)
    elapsed[elapsed < 0] = np.nan
    dims = ("checkpoint", "probe")
    return xr.Dataset(
        {
            "status": (dims, *_labelled(status, STATUSES)),
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
