"""The ``scrambling`` and ``linear_regions`` probes, and the plugin's plots, summaries, suggest.

Oracles: the tent map has exactly 2ᵗ linear pieces on [0, 1] (growth ln 2); a linear map has one;
the logistic map at r = 4 separates nearby trajectories at λ = ln 2 and scrambles them; a
contraction makes every pair asymptotic; maps with a period-3 orbit have at least φᵗ-like growth.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from systems import logistic_system as logistic
from systems import tent_system as tent

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.models.feedforward1d import feedforward_system
from dynprobe.plugins.periodic.regions import LN_PHI
from dynprobe.testing import check_probe

matplotlib.use("Agg")
D = torch.float64


def test_tent_has_two_to_the_t_pieces():
    ds = check_probe("linear_regions", tent(), steps=10, interval=(0.0, 1.0))
    np.testing.assert_array_equal(ds.pieces.values, 2 ** np.arange(1, 11))
    assert float(ds.growth_rate) == pytest.approx(math.log(2), abs=1e-12)


def test_linear_map_has_one_piece_and_period_three_forces_growth():
    line = feedforward_system([torch.tensor([[0.5]], dtype=D)], [torch.tensor([0.1], dtype=D)], ["identity"])
    ds = dynprobe.run("linear_regions", line, steps=5)
    np.testing.assert_array_equal(ds.pieces.values, 1)
    rn = dynprobe.model("rn", k=8, sigma2=40.0, networks=300, seed=5)
    regions = check_probe("linear_regions", rn, steps=10)
    ly = dynprobe.run("period3", rn).li_yorke.values
    assert ly.sum() > 10
    # h_top >= ln(phi) for period 3; a 10-step estimate of the rate lands within a few percent
    assert (regions.growth_rate.values[ly] > 0.9 * LN_PHI).all()
    with pytest.raises(ProbeParameterError, match="piecewise-linear"):
        dynprobe.run("linear_regions", logistic(3.9))


def test_logistic_four_scrambles_at_ln_two():
    ds = check_probe("scrambling", logistic(4.0), steps=400, samples=16)
    assert float(np.median(ds.lyapunov_max.values)) == pytest.approx(math.log(2), abs=0.02)
    assert float(np.median(ds.separation_rate.values)) == pytest.approx(math.log(2), abs=0.1)
    assert ds.scrambled.mean() >= 0.75 and not ds.asymptotic.any()
    assert (ds.tail_inf <= ds.distance).all() and (ds.tail_sup >= ds.distance).all()
    assert float(ds.diameter) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("offset", [1.0, 0.0], ids=["fixed-point-at-1", "fixed-point-at-0"])
def test_contraction_pairs_are_asymptotic(offset):
    # with the fixed point at 0 every distance, and the attractor's diameter, shrink to ~1e-60 together
    A = torch.tensor([[0.5, 0.2], [-0.1, 0.3]], dtype=D)
    system = dynprobe.System.from_step(lambda h, u, p: torch.tanh(h @ p["A"].T) + offset, state_dim=2, params={"A": A})
    steps = 300
    ds = dynprobe.run("scrambling", system, steps=steps, samples=4)
    assert ds.asymptotic.all() and not ds.scrambled.any()
    assert (ds.lyapunov_max.values < 0).all()


def test_diverging_pairs_are_flagged_and_kept_out_of_the_statistics():
    # x -> x^2 from [0.5, 1.5]: starts above 1 overflow to inf within ~15 steps (finite at first),
    # starts below 1 fall to the fixed point 0; the sign of x0 - 1 is the oracle
    system = dynprobe.System.from_step(lambda h, u, p: h * h, state_dim=1, init=dynprobe.InitialState(low=0.5, high=1.5))
    with pytest.warns(RuntimeWarning, match=r"scrambling: \d+ of 12 pairs diverged"):
        ds = dynprobe.run("scrambling", system, steps=60, samples=12, burn_in=0, seed=2)
    expected = system.initial_state(12, seed=2)[:, 0].numpy() > 1
    assert 0 < expected.sum() < 12
    np.testing.assert_array_equal(ds.diverged.values, expected)
    assert np.isnan(ds.distance.values[expected]).all()  # the whole record of a diverged pair is NaN
    for name in ("liminf", "limsup", "separation_rate", "lyapunov_max"):
        # (-inf is an answer: x -> 0 is superstable, the tangent underflows to 0)
        assert np.isnan(ds[name].values[expected]).all() and not np.isnan(ds[name].values[~expected]).any(), name
    assert not (ds.proximal | ds.asymptotic | ds.scrambled).values[expected].any()
    assert ds.asymptotic.values[~expected].all() and np.isfinite(float(ds.diameter))


def test_plots_summaries_and_suggest():
    probes = {p.name: p for p in dynprobe.list_probes()}
    p3 = probes["period3"]
    for system in (tent(), dynprobe.model("rn", k=8, sigma2=40.0, networks=200),
                   dynprobe.wrap(dynprobe.model("lstm2d_chaotic"))):
        ds = dynprobe.run("period3", system, **({"starts": 8} if system.state_dim > 1 else {}))
        assert ds.dynprobe.summary() and ds.dynprobe.plot().axes
    assert dynprobe.run("scrambling", logistic(3.9), steps=20).dynprobe.plot().axes
    assert dynprobe.run("linear_regions", tent(), steps=4).dynprobe.plot().axes
    assert p3.suggest(tent()) == {"period": 3, "method": "exact"}
    one_d = p3.suggest(logistic(3.9))
    lo, hi = one_d["interval"]
    assert one_d["method"] == "grid" and lo < 0.1 and hi > 0.9
    big = p3.suggest(dynprobe.wrap(torch.nn.LSTM(2, 200, num_layers=2)))
    assert big["method"] == "newton" and big["period"] == (1, 2)
    assert probes["linear_regions"].applies(logistic(3.9))


def test_diagnose_verdicts_name_orbits_stability_and_the_witness():
    rows = dynprobe.diagnose(logistic(3.835), probes=["period3", "scrambling"]).rows()
    text = [r[1] for r in rows]
    assert "2 fixed points (0 stable); 2 period-3 orbits (1 stable)" in text
    assert "Li-Yorke chaotic: a period-3 orbit exists" in text
    assert "nearby trajectories merge (asymptotic)" in text  # the attracting 3-cycle pulls pairs together
    tent_rows = dynprobe.diagnose(tent(), probes=["linear_regions"]).rows()
    assert tent_rows[0][0] == "entropy" and "0.693" in tent_rows[0][2]
    lstm = dynprobe.diagnose(dynprobe.load_system("lstm2d_chaotic"), probes=["period3"],
                             params={"period3": {"starts": 16}}).rows()
    assert all("Li-Yorke" not in r[1] for r in lstm)  # no period-3 chaos witness in 4-D
