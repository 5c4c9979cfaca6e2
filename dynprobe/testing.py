"""A conformance kit every registered probe and adapter passes — and that third-party plugin
authors run on their own plugins (``from dynprobe.testing import check_probe``).

``check_probe`` runs a probe through :func:`dynprobe.run` and checks the result conventions
(docs/RESULTS.md): labelled variables, a coordinate for every dimension, provenance attrs,
bit-identical results for the same seed, an exact netCDF round trip, and what the probe
declares about ensembles (``Probe.ensemble``): a two-network ensemble gives, network by network,
what separate runs give (``per_network``), runs (``pooled``), or is refused in one line (``none``).
``check_adapter`` wraps a module and checks the System against the module's own step where
it can, and the traced and eager tangents against a materialized Jacobian.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from .api import run, wrap
from .errors import ProbeParameterError
from .extras import available
from .linearize import TangentMap, jacobian, jvp_columns
from .results import VOLATILE_ATTRS, open_result, save, validate
from .system import System

__all__ = ["check_probe", "check_adapter", "assert_same_result", "two_networks"]


def assert_same_result(a: xr.Dataset, b: xr.Dataset) -> None:
    """Assert two results are identical except for the volatile attrs (time stamps)."""
    a = a.copy()
    b = b.copy()
    for key in VOLATILE_ATTRS:
        a.attrs.pop(key, None)
        b.attrs.pop(key, None)
    xr.testing.assert_identical(a, b)


def two_networks(system: System, scale: float = 0.95) -> System:
    """A two-network ensemble: ``system`` and a copy with every floating parameter times ``scale``."""
    other = system.with_params({k: v * scale if v.is_floating_point() else v for k, v in system.params.items()})
    return System.stack([system, other])


def _assert_network_matches(name: str, ens: xr.Dataset, i: int, one: xr.Dataset, rtol: float) -> None:
    """Network ``i`` of an ensemble result equals the separate run ``one`` (padded dims compared
    on the separate run's extent; ensemble-level variables without ``network`` skipped)."""
    for var in one.data_vars:
        if one[var].attrs.get("scope") in ("single network", "rounding", "search"):
            continue  # a display aid only single runs carry (period3's graph of f), a fact of the arithmetic,
            # or the history of a search an ensemble runs jointly (fixedpoints' starts and rounds)
        assert var in ens.data_vars, f"probe {name!r}: variable {var!r} of a single run is missing from the ensemble run"
        got = ens[var]
        if "network" not in got.dims:
            continue
        got = got.isel(network=i)
        want = one[var]
        assert set(got.dims) == set(want.dims), f"probe {name!r}: {var!r} has dims {got.dims} in the ensemble, {want.dims} alone"
        got = got.isel({d: slice(0, want.sizes[d]) for d in want.dims}).transpose(*want.dims).values
        want = want.values
        if want.dtype.kind in "fc":
            ok = np.allclose(got, want, rtol=rtol, atol=rtol * 1e-3, equal_nan=True)
        else:
            ok = np.array_equal(got, want)
        assert ok, f"probe {name!r}: network {i} of the ensemble differs from a separate run in {var!r}"


def _check_ensemble(name: str, system: System, params: dict[str, Any], rtol: float) -> None:
    from .registry import registry

    mode = registry().probe(name).ensemble
    stacked = system if system.networks is not None else two_networks(system)
    if mode == "none":
        try:
            run(name, stacked, **params)
        except ProbeParameterError as err:
            assert "ensemble" in str(err) and "\n" not in str(err), f"probe {name!r}: unclear ensemble refusal: {err}"
            return
        raise AssertionError(f"probe {name!r} declares ensemble='none' but ran on an ensemble")
    ds = run(name, stacked, **params)
    problems = validate(ds)
    assert not problems, f"probe {name!r} on an ensemble breaks the result conventions: " + "; ".join(problems)
    if mode == "per_network":
        assert ds.sizes.get("network") == stacked.networks, f"probe {name!r}: no leading 'network' dimension"
        for i in range(stacked.networks):
            _assert_network_matches(name, ds, i, run(name, stacked.network(i), **params), rtol)


def check_probe(
    name: str,
    system: System | None,
    *,
    roundtrip: bool = True,
    ensemble: bool = True,
    rtol: float = 1e-8,
    **params: Any,
) -> xr.Dataset:
    """Run probe ``name`` twice with the same parameters and check the conventions.

    With ``ensemble`` (and a system), also run it on a two-network ensemble (:func:`two_networks`,
    or ``system`` itself when it is one) and check what the probe declares in ``Probe.ensemble``;
    ``per_network`` results must match separate runs to ``rtol`` — pick a non-chaotic system, or
    short runs, so that rounding differences of batched arithmetic stay small.

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
    if ensemble and system is not None:
        _check_ensemble(name, system, params, rtol)
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
