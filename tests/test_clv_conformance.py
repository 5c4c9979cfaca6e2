"""The clv and finite_time probes pass the conformance kit on a single network and, network by
network, on a two-network ensemble (the same rule ``dynprobe.testing.check_probe`` checks for
``Probe.ensemble = "per_network"``): network i of a stacked run equals a separate run of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.testing import check_probe

CASES = {
    "clv": {"steps": 8, "burn_in": 5, "forward_transient": 20, "backward_transient": 20, "samples": 2, "splits": True},
    "finite_time": {"steps": 40, "burn_in": 5, "forward_transient": 5, "samples": 2, "taus": (1, 4)},
}


def _rnn() -> dynprobe.System:
    torch.manual_seed(0)
    rnn = nn.RNN(2, 4)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.5)  # contracting: batched and separate arithmetic stay within rounding
    return dynprobe.wrap(rnn, dtype=torch.float64, drive=dynprobe.constant(0.3))


def _two_networks(system: dynprobe.System) -> dynprobe.System:
    other = system.with_params({k: 0.95 * v for k, v in system.params.items()})
    return dynprobe.System.stack([system, other])


@pytest.mark.parametrize("name", sorted(CASES))
def test_conforms_on_one_network(name):
    check_probe(name, _rnn(), **CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_network_of_an_ensemble_equals_its_separate_run(name):
    stacked = _two_networks(_rnn())
    ds = check_probe(name, stacked, **CASES[name])
    assert ds.sizes["network"] == 2
    for i in range(2):
        alone = dynprobe.run(name, stacked.network(i), **CASES[name])
        for var in alone.data_vars:
            if "network" not in ds[var].dims:  # ensemble-level (e.g. windows per tau): nothing per network
                continue
            got, want = ds[var].isel(network=i).transpose(*alone[var].dims).values, alone[var].values
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-11, err_msg=f"{name}.{var}, network {i}")
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{name}.{var}, network {i}")
