"""The ``rn`` and ``fig3`` reference models: the distributions they draw, the maps they compute,
and ensembles that behave like their members.

Moments are checked on 20,000 draws against the closed forms (He: 2/fan_in, Glorot:
2/(fan_in + fan_out), N(0, 1/k) truncated to [−1, 1]: σ²(1 − 2βφ(β)/(2Φ(β) − 1)), β = 1/σ), with
tolerances of ~5 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.models.scrambling import FIG3_ROWS, rn_sigma2

N = 20_000


def _var_ok(x: torch.Tensor, want: float) -> None:
    x = x.reshape(-1).numpy()
    se = want * math.sqrt(2.0 / x.size)  # standard error of a Gaussian sample variance
    assert abs(x.var() - want) < 6 * se, (x.var(), want)


def test_rn_draws_and_map():
    system = dynprobe.model("rn", k=16, sigma2=3.0, networks=N, seed=0)
    assert system.networks == N and system.arch.model == "rn" and system.arch.domain == (0.0, 1.0)
    a, b = system.params["w1"][:, 0, :], -system.params["b0"]
    _var_ok(a, 3.0 / 16)
    assert (b >= 0).all() and (b < 1).all() and abs(float(b.mean()) - 0.5) < 0.01
    x = torch.rand(N, 5, 1, dtype=torch.float64)
    want = (a[:, None, :] * torch.relu(x - b[:, None, :])).sum(-1, keepdim=True).clamp(0, 1)
    torch.testing.assert_close(system.map(x), want)


def test_rn_regimes():
    assert rn_sigma2("order", 64) == pytest.approx(1 / (4 * math.log(64)))
    assert rn_sigma2("he", 64) == 2.0 and rn_sigma2("chaos", 64) == 64.0
    order = dynprobe.model("rn", preset="order", k=64)
    assert order.meta["sigma2"] == pytest.approx(1 / (4 * math.log(64)))
    with pytest.raises(ProbeParameterError, match="sigma2"):
        dynprobe.model("rn", sigma2="wild")


@pytest.mark.parametrize("row", sorted(FIG3_ROWS), ids=lambda r: f"row{r}")
def test_fig3_schemes_follow_the_table(row):
    k = 4
    system = dynprobe.model("fig3", row=row, k=k, networks=N, seed=row)
    (w1, b1, s1), (w2, b2, s2) = FIG3_ROWS[row]
    p = system.params
    assert system.arch.activations == (s1, s2)
    drawn = ((w1, p["w0"], 1, k), (b1, p["b0"], 1, k), (w2, p["w1"], k, 1), (b2, p["b1"], k, 1))
    for scheme, value, fan_in, fan_out in drawn:
        if scheme == "one":
            assert (value == 1).all()
        elif scheme == "uniform":
            assert (value >= 0).all() and (value < 1).all() and abs(float(value.mean()) - 0.5) < 0.01
        elif scheme == "he":
            _var_ok(value, 2.0 / fan_in)
        elif scheme == "glorot":
            _var_ok(value, 2.0 / (fan_in + fan_out))
        else:  # normal_k: N(0, 1/k) truncated to [-1, 1]
            sigma = math.sqrt(1 / k)
            beta = 1 / sigma
            phi = math.exp(-beta**2 / 2) / math.sqrt(2 * math.pi)
            Phi = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
            assert value.abs().max() <= 1
            _var_ok(value, sigma**2 * (1 - 2 * beta * phi / (2 * Phi - 1)))


def test_fig3_variants_and_members():
    deep = dynprobe.model("fig3", row=3, k=3, depth=3, activation="tanh", clip=True, networks=5, seed=1)
    assert (deep.arch.activations, deep.arch.clip) == (("tanh", "tanh", "tanh"), (0.0, 1.0))
    x = torch.linspace(-2, 2, 7, dtype=torch.float64)[:, None]
    for n in range(5):
        p = {k: v[n] for k, v in deep.params.items()}
        h = torch.tanh(x @ p["w0"].T + p["b0"])
        h = torch.tanh(h @ p["w1"].T + p["b1"])
        want = torch.tanh(h @ p["w2"].T + p["b2"]).clamp(0, 1)
        torch.testing.assert_close(deep.network(n).map(x), want)
        torch.testing.assert_close(deep.map(x.expand(5, 7, 1))[n], want)
    with pytest.raises(ProbeParameterError, match="row"):
        dynprobe.model("fig3", row=6)
    same = dynprobe.model("fig3", row=2, networks=3, seed=7)
    again = dynprobe.model("fig3", row=2, networks=3, seed=7)
    assert same.fingerprint() == again.fingerprint()


def test_ensemble_period3_returns_li_yorke_per_network():
    ds = dynprobe.run("period3", dynprobe.model("fig3", row=1, k=2, networks=2000, seed=0))
    assert ds.li_yorke.dims == ("network",) and ds.sizes["network"] == 2000
    assert np.isin(ds.orbit_network.values, np.arange(2000)).all()
