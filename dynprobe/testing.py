"""A conformance kit every registered probe and adapter passes — and that third-party plugin
authors run on their own plugins (``from dynprobe.testing import check_probe``).

``check_probe`` runs a probe through :func:`dynprobe.run` and checks the result conventions
(docs/RESULTS.md): labelled variables, a coordinate for every dimension, provenance attrs,
bit-identical results for the same seed, and an exact netCDF round trip.
``check_adapter`` wraps a module and checks the System against the module's own step where
it can, and the traced and eager tangents against a materialized Jacobian.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from .api import run, wrap
from .extras import available
from .linearize import TangentMap, jacobian, jvp_columns
from .results import VOLATILE_ATTRS, open_result, save, validate
from .system import System

__all__ = ["check_probe", "check_adapter", "assert_same_result"]


def assert_same_result(a: xr.Dataset, b: xr.Dataset) -> None:
    """Assert two results are identical except for the volatile attrs (time stamps)."""
    a = a.copy()
    b = b.copy()
    for key in VOLATILE_ATTRS:
        a.attrs.pop(key, None)
        b.attrs.pop(key, None)
    xr.testing.assert_identical(a, b)


def check_probe(name: str, system: System | None, *, roundtrip: bool = True, **params: Any) -> xr.Dataset:
    """Run probe ``name`` twice with the same parameters and check the conventions.

    Returns the first result. Raises ``AssertionError`` naming every broken rule.
    """
    first = run(name, system, **params)
    problems = validate(first)
    assert not problems, f"probe {name!r} breaks the result conventions: " + "; ".join(problems)
    second = run(name, system, **params)
    assert_same_result(first, second)
    if roundtrip:
        with tempfile.TemporaryDirectory() as tmp:
            for suffix in (".nc", ".zarr") if available("zarr") else (".nc",):
                path = Path(tmp) / f"result{suffix}"
                save(first, path)
                back = open_result(path).to_dataset()
                xr.testing.assert_identical(back, first)
    return first


def check_adapter(module: Any, *, batch: int = 3, atol: float = 1e-10, **wrap_kwargs: Any) -> System:
    """Wrap ``module`` in float64 and check its tangents: ``jvp_columns``, the traced
    :class:`TangentMap` and :func:`jacobian` against ``torch.autograd.functional.jacobian``
    of one row, at random states and inputs. Returns the System."""
    if isinstance(module, torch.nn.Module):
        module = module.double()
    system = wrap(module, dtype=torch.float64, **wrap_kwargs)
    gen = torch.Generator().manual_seed(0)
    n, m = system.state_dim, system.input_dim
    h = 0.5 * torch.randn(*system.lead_shape(batch), n, generator=gen, dtype=torch.float64)
    u = torch.randn(*system.lead_shape(batch), m, generator=gen, dtype=torch.float64)
    from .drives import constant

    if m:
        system = system.with_drive(constant(u.reshape(-1, m)[0]))
    Q = torch.randn(*system.lead_shape(batch), n, 3, generator=gen, dtype=torch.float64)
    idx = (0,) * (h.ndim - 1)

    def row(x: torch.Tensor) -> torch.Tensor:
        full = h.clone()
        full[idx] = x
        return system.map(full)[idx]

    J_ref = torch.autograd.functional.jacobian(row, h[idx])
    J = jacobian(system, h)[idx]
    assert torch.allclose(J, J_ref, atol=atol), f"jacobian differs from autograd by {(J - J_ref).abs().max():.3g}"
    h1, JQ = jvp_columns(system, h, Q)
    assert torch.allclose(JQ[idx], J_ref @ Q[idx], atol=atol), "jvp_columns differs from J @ Q"
    assert torch.allclose(h1, system.map(h), atol=atol), "jvp_columns' primal differs from map"
    tangent = TangentMap(system, trace=True)
    h2, JQ2 = tangent(h, Q)
    assert torch.allclose(JQ2, JQ, atol=atol) and torch.allclose(h2, h1, atol=atol), (
        f"traced tangent differs from eager ({tangent.mode})"
    )
    return system
