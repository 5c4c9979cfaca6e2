"""Small builders for probe results that follow docs/RESULTS.md: labelled variables, the
leading ``network`` dimension of ensembles, and the ``unit`` coordinates of a state layout.

Every probe — bundled or a third party's — builds its Dataset from these, so that a variable
never lacks ``long_name``/``units``, an ensemble always gets its ``network`` coordinate and a
state axis is labelled the same way everywhere (``unit_part`` / ``unit_layer`` / ``unit_index``).

Example
-------
>>> lead = lead_dims(system)                                   # [] or ["network"]
>>> xr.Dataset({"mean": variable([*lead, "unit"], m, "time mean of the state")},
...            coords={**network_coords(system), **unit_coords(system)})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .system import System

__all__ = ["variable", "lead_dims", "network_coords", "unit_coords", "to_numpy"]


def to_numpy(value: Any) -> Any:
    """A tensor as a numpy array (moved to the CPU, detached); anything else unchanged."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
            value = value.float()
        return value.cpu().numpy()
    return value


def variable(dims: Sequence[str], values: Any, long_name: str, units: str = "1", **attrs: Any) -> tuple:
    """``(dims, values, attrs)`` for ``xr.Dataset`` with the two attrs every variable needs;
    tensors are moved to the CPU."""
    return (list(dims), to_numpy(values), {"long_name": long_name, "units": units, **attrs})


def lead_dims(system: System) -> list[str]:
    """``["network"]`` for an ensemble, else ``[]`` — the dims before a probe's own."""
    return [] if system.networks is None else ["network"]


def network_coords(system: System) -> dict[str, tuple]:
    """The ``network`` coordinate of an ensemble (empty for a single network)."""
    if system.networks is None:
        return {}
    return {"network": ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})}


def unit_coords(system: System, dim: str = "unit") -> dict[str, tuple]:
    """The state axis: ``unit`` (0..N−1) and the layout's ``unit_part``, ``unit_layer`` and
    ``unit_index`` along it."""
    coords: dict[str, tuple] = {dim: (dim, np.arange(system.state_dim), {"long_name": "state coordinate", "units": "1"})}
    for key, values in system.layout.coords().items():
        coords[key] = (dim, values, {"long_name": key.replace("_", " "), "units": "1"})
    return coords
