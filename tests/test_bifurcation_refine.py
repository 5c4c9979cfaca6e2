"""Newton refinement of the bifurcation probe's periodic samples, network by network beyond
``STACKED_MAX_N``: the same orbits, attractor ids and result as on the stacked ensemble."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import dynprobe
import dynprobe.plugins.bifurcation.verify as verify


def test_network_by_network_refinement_matches_the_stacked_one(monkeypatch) -> None:
    torch.manual_seed(0)
    system = dynprobe.wrap(nn.GRU(2, 20).double()).with_drive(dynprobe.constant(0.4))
    kw = dict(values="0.3:0.9:4", burn_in=60, steps=40, samples=3, spread=2.0, verify=0)
    monkeypatch.setattr(verify, "STACKED_MAX_N", 10 ** 6)
    stacked = dynprobe.run("bifurcation", system, **kw)
    monkeypatch.setattr(verify, "STACKED_MAX_N", 0)
    looped = dynprobe.run("bifurcation", system, **kw)
    assert (stacked.sample_period.values > 0).all()  # every sample was refined (fixed points)
    assert (stacked.orbits_refined.values == 1).all()
    for name in ("regime", "period", "attractors", "attractor", "orbits_refined", "converged"):
        np.testing.assert_array_equal(looped[name].values, stacked[name].values, err_msg=name)


def test_refined_orbits_agree_to_rounding(monkeypatch) -> None:
    from dynprobe.orbits import search_system
    from dynprobe.plugins.bifurcation import Scale

    torch.manual_seed(1)
    system = dynprobe.wrap(nn.GRU(2, 20).double()).with_drive(dynprobe.constant(0.4))
    target = search_system(Scale().build(system, np.array([0.4, 0.6, 0.8])))
    rows = np.array([0, 2])
    sub = target.take(rows)
    h = torch.randn(2, 3, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.3
    monkeypatch.setattr(verify, "STACKED_MAX_N", 10 ** 6)
    a = verify._refine(target, sub, rows, 1, h)
    monkeypatch.setattr(verify, "STACKED_MAX_N", 0)
    b = verify._refine(target, sub, rows, 1, h)
    assert bool(a.converged.all()) and torch.equal(a.converged, b.converged)
    torch.testing.assert_close(b.h, a.h, rtol=0, atol=1e-12)
