"""Every bundled probe passes the conformance kit on a single network and on a two-network
ensemble (dynprobe.testing.check_probe): labelled results, same seed ⇒ same data, exact netCDF
and Zarr round trips, and the ensemble behaviour the probe declares — per network equal to
separate runs, pooled, or refused in one line.

A probe added to the distribution without an entry here fails ``test_every_bundled_probe_is_covered``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.registry import registry
from dynprobe.testing import check_probe


def _rnn() -> dynprobe.System:
    torch.manual_seed(0)
    rnn = nn.RNN(2, 4)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.5)  # contracting: batched and separate arithmetic stay within rounding
    return dynprobe.wrap(rnn, dtype=torch.float64, drive=dynprobe.constant(0.3))


def _wcrnn() -> dynprobe.System:
    return dynprobe.wrap(dynprobe.model("wcrnn", hidden_size=6, input_size=2, output_size=1, seed=0), dtype=torch.float64)


def _rn() -> dynprobe.System:
    return dynprobe.model("rn", k=4, seed=1)


_ADDING = {"data": "adding", "data_options": {"T": 12}, "batch": 4}

CASES = {
    "lyapunov": (_rnn, {"steps": 60, "burn_in": 10, "samples": 2}),
    "jacobian": (_rnn, {"horizons": (1, 4), "samples": 2}),
    "bifurcation": (_rnn, {"values": [0.9, 1.0], "burn_in": 20, "steps": 20, "samples": 2}),
    "entropy": (_rnn, {"steps": 3, "samples": 6}),
    "smoothness": (_rnn, {"values": "0.9:1.1:5", "lengths": (3, 5), "batch": 4}),
    "period3": (_rnn, {"period": (1,), "starts": 6}),
    "scrambling": (_rn, {}),
    "linear_regions": (_rn, {}),
    "meanfield": (_rnn, {"measure": False}),
    "gradient_propagation": (_wcrnn, _ADDING),
    "hessian": (_wcrnn, {**_ADDING, "k": 2}),
    "clv": (_rnn, {"steps": 30, "burn_in": 10, "forward_transient": 20, "backward_transient": 20, "samples": 2,
                   "splits": True}),
    "finite_time": (_rnn, {"steps": 60, "burn_in": 10, "forward_transient": 10, "taus": (5, 10), "samples": 2}),
    "fixedpoints": (_rnn, {"batch": 16, "rounds": 2, "samples": 16, "steps": 8, "descent_iters": 20}),
    "state_stats": (_rnn, {"steps": 40, "burn_in": 10}),  # the example third-party plugin, when installed
}


def test_every_bundled_probe_is_covered():
    bundled = [name for name, p in registry().probes().items() if p.version.startswith("dynprobe ")]
    missing = sorted(set(bundled) - set(CASES))
    assert not missing, f"add a conformance case for {missing}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_probe_conforms_on_a_network_and_an_ensemble(name):
    if name not in registry().probes():
        pytest.skip(f"probe {name!r} is not installed")
    make, params = CASES[name]
    check_probe(name, make(), **params)


def test_check_probe_catches_a_probe_that_ignores_the_ensemble(inline_registry):
    """The kit could fail: a probe that runs network 0 only is caught."""
    import numpy as np
    import xarray as xr

    def first_only(system: dynprobe.System, *, seed: int = 0) -> xr.Dataset:
        one = system if system.networks is None else system.network(0)
        h = one.trajectory(one.initial_state(1, seed=seed), 5)[-1, 0]
        value = np.broadcast_to(h.numpy(), (*([system.networks] if system.networks else []), h.shape[0])).copy()
        dims = (["network"] if system.networks else []) + ["unit"]
        coords = {"unit": ("unit", np.arange(h.shape[0]), {"long_name": "unit", "units": "1"})}
        if system.networks:
            coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
        return xr.Dataset({"h": (dims, value, {"long_name": "state", "units": "1"})}, coords=coords)

    class Plugin:
        @staticmethod
        @dynprobe.hookimpl
        def dynprobe_probes():
            return [dynprobe.Probe("first_only", first_only)]

    system = _rnn()  # wrapped before the hermetic registry, which has no adapters
    inline_registry(Plugin)
    with pytest.raises(AssertionError, match="network 1 of the ensemble differs"):
        check_probe("first_only", system, roundtrip=False)
