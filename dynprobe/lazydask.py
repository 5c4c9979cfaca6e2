"""Keep xarray from importing ``dask.array`` before anything uses Dask.

xarray asks "is this a Dask array?" the first time it makes a Variable, and when Dask is
installed (the ``[batch]`` extra) answering that imports ``dask.array`` — about 0.8 s of CPU,
most of a fresh process's first ``dynprobe.run`` (issue 17: under 1 s more than the second).
No Dask array can exist before ``dask.array`` is imported, so until then the honest answer is
"no" without the import. :func:`install` puts an entry in xarray's cache of duck-array modules
that answers so while ``dask.array`` is absent from ``sys.modules`` and becomes xarray's own
answer (the real module, type and version) as soon as anything imports it.

It touches a private xarray cache, so it is defensive: if that cache is not there (another
xarray version), or Dask was already looked up, it does nothing and xarray behaves as always.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["install"]


class _DaskUntilImported:
    """xarray's ``DuckArrayModule("dask")``, resolved only once ``dask.array`` is imported."""

    def __init__(self, real: type) -> None:
        self._real_class = real
        self._real: Any = None

    def _resolve(self) -> Any:
        if self._real is None:
            self._real = self._real_class("dask")
        return self._real

    @property
    def type(self) -> tuple[type, ...]:
        if self._real is None and "dask.array" not in sys.modules:
            return ()  # no dask.array imported: no object can be a Dask array
        return self._resolve().type

    def __getattr__(self, name: str) -> Any:  # module, version, available: xarray's own answer
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)


def install() -> bool:
    """Install the lazy entry; ``True`` if it is in place (also when installed before)."""
    try:
        from xarray.namedarray import pycompat
    except ImportError:  # another xarray layout: leave it alone
        return False
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    real = getattr(pycompat, "DuckArrayModule", None)
    if not isinstance(cache, dict) or real is None:
        return False
    if isinstance(cache.get("dask"), _DaskUntilImported):
        return True
    if "dask" in cache or "dask.array" in sys.modules:  # already looked up or in use: nothing to save
        return False
    cache["dask"] = _DaskUntilImported(real)
    return True
