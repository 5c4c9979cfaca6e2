"""Result-building helpers of this plugin: labelled variables, the ensemble's ``network``
coordinate and the state's ``unit`` coordinates (docs/RESULTS.md rules 1–2).

The same four functions, with the same signatures, as the core's planned ``dynprobe.labels``;
once that module is on main this file is replaced by ``from dynprobe.labels import ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dynprobe import System

__all__ = ["variable", "lead_dims", "network_coords", "unit_coords"]


def variable(dims: Sequence[str], values: Any, long_name: str, units: str = "1", **attrs: Any) -> tuple:
    """``(dims, values, attrs)`` for ``xr.Dataset`` with ``long_name`` and ``units``; tensors go to numpy."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return (list(dims), values, {"long_name": long_name, "units": units, **attrs})


def lead_dims(system: System) -> list[str]:
    """``["network"]`` for an ensemble, else ``[]``."""
    return [] if system.networks is None else ["network"]


def network_coords(system: System) -> dict[str, tuple]:
    """The ``network`` coordinate of an ensemble (empty for a single network)."""
    if system.networks is None:
        return {}
    return {"network": ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})}


def unit_coords(system: System, dim: str = "unit") -> dict[str, tuple]:
    """``unit`` (0..N−1) with the layout's ``unit_part``, ``unit_layer``, ``unit_index``."""
    coords: dict[str, tuple] = {dim: (dim, np.arange(system.state_dim), {"long_name": "state coordinate", "units": "1"})}
    for key, values in system.layout.coords().items():
        coords[key] = (dim, values, {"long_name": key.replace("_", " "), "units": "1"})
    return coords
