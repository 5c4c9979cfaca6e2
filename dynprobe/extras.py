"""Optional dependencies: import them, or fail with one line naming the extra that provides them.

Dask (``distributed``) and Zarr serve batch work only, so they are the ``[batch]`` extra
(``pip install 'dynprobe[batch]'``); a single diagnosis or probe run needs neither.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import DynprobeError

__all__ = ["MissingExtraError", "require", "available"]

_EXTRA = {"zarr": ("zarr", "batch"), "distributed": ("dask[distributed]", "batch"), "dask": ("dask", "batch")}


class MissingExtraError(DynprobeError, ImportError):
    """An optional dependency is not installed."""


def available(module: str) -> bool:
    """Whether ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (e.g. ``"dynprobe batch"``), or raise :class:`MissingExtraError`
    with the install command of the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package, extra = _EXTRA.get(module, (module, ""))
        hint = f"pip install 'dynprobe[{extra}]'" if extra else f"pip install {package}"
        raise MissingExtraError(f"{what} needs {package}, which is not installed; {hint}") from err
