"""Checksums of stored results: a damaged result is found, never read as data.

Zarr's chunks carry no checksum of their own (zstd frames here have none), a missing chunk
reads as the fill value (NaN), and a flipped byte can decode to other numbers. So when a
result has been written, its checksum goes into the record that marks it complete:
:func:`result_digest` is a sha256 over every file of the result's group — each array's
metadata and chunks, by relative path, so a deleted chunk or array changes it too — and over
the group's own attrs except the ``batch_*`` record (the result's provenance). The same digest
is recomputed whenever the result is read or a rerun considers skipping it; a mismatch means
the result is damaged: it reads as absent, is named in one line, and the next run recomputes
it.

The digest is taken of what is on disk after the write, so it depends on nothing but bytes
(no decoding, no dtype round trip) and costs one read of a result that is small.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["result_digest", "group_attrs", "DIGEST_PREFIX"]

DIGEST_PREFIX = "sha256:"
_GROUP_META = "zarr.json"  # zarr format 3: a node's metadata and attrs (the store is written by zarr >= 3)


def group_attrs(folder: Path) -> dict:
    """The attrs of the group stored in ``folder`` (``ValueError`` / ``OSError`` if damaged)."""
    meta = json.loads((folder / _GROUP_META).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("node_type") != "group":
        raise ValueError(f"{folder / _GROUP_META} is not a group's metadata")
    attrs = meta.get("attributes", {})
    if not isinstance(attrs, dict):
        raise ValueError(f"{folder / _GROUP_META}: attributes are not a mapping")
    return attrs


def result_digest(folder: Path) -> str:
    """``"sha256:<hex>"`` of the result group stored in ``folder`` (see the module doc);
    ``OSError`` / ``ValueError`` when its files cannot be read."""
    digest = hashlib.sha256()
    provenance = {k: v for k, v in group_attrs(folder).items() if not str(k).startswith("batch_")}
    digest.update(json.dumps(provenance, sort_keys=True, default=str).encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / _GROUP_META)
    for path in files:
        data = path.read_bytes()
        digest.update(b"\0" + path.relative_to(folder).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return DIGEST_PREFIX + digest.hexdigest()
