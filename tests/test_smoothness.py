"""The ``smoothness`` probe (attractors paper Thm 1): closed forms on a linear map, the three
regimes of L_V as N grows, the chaotic LSTM's intricate cost (Fig. 1b)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
from dynprobe import InitialState, System
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.bifurcation import smoothness
from dynprobe.testing import check_probe

F64 = torch.float64


def scalar(a: float) -> System:
    return System.from_step(lambda h, u, p: p["a"] * h, state_dim=1, params={"a": torch.tensor(a, dtype=F64)},
                            init=InitialState(center=torch.tensor([1.0], dtype=F64)))


def closed_form(a: float, s: np.ndarray, N: int) -> np.ndarray:
    t = np.arange(1, N + 1)[:, None]
    return (((s * a) ** t - a ** t) ** 2).mean(axis=0)


def test_linear_map_closed_form_and_finite_differences() -> None:
    vals = np.linspace(0.8, 1.2, 41)
    ds = smoothness(scalar(0.9), values=vals, lengths=(5, 20))
    for N in (5, 20):
        V = closed_form(0.9, vals, N)
        np.testing.assert_allclose(ds.loss.sel(length=N).values, V, rtol=1e-12, atol=1e-15)
        slope = np.diff(V) / np.diff(vals)
        assert float(ds.lipschitz_loss.sel(length=N)) == pytest.approx(np.abs(slope).max(), rel=1e-9)
        curv = np.diff(slope) / np.diff(0.5 * (vals[1:] + vals[:-1]))
        assert float(ds.lipschitz_grad.sel(length=N)) == pytest.approx(np.abs(curv).max(), rel=1e-9)
    assert float(ds.loss.sel(length=20, param=1.0, method="nearest")) == 0.0


def test_three_regimes_of_theorem_1() -> None:
    lengths = (10, 20, 40, 80)
    contracting = smoothness(scalar(0.5), values="0.9:1.1:201", lengths=lengths)
    expanding = smoothness(scalar(1.2), values="0.9:1.1:201", lengths=lengths)
    neutral = smoothness(scalar(1.0), values="0.9:1.0:201", lengths=lengths)  # L_f <= 1 on the path
    lv_c = contracting.lipschitz_loss.values
    assert lv_c[-1] / lv_c[0] < 1.0 + 1e-9  # O(1)
    assert float(contracting.growth_rate) < 0.005  # bounded (the 1/N average even shrinks it)
    # O(L_f^{2N}) with L_f = 1.1 * 1.2 at the end of the path
    assert float(expanding.growth_rate) == pytest.approx(2 * math.log(1.1 * 1.2), rel=0.1)
    lv_n = neutral.lipschitz_loss.values  # O(N): grows, but slower than any exponential
    assert lv_n[-1] > lv_n[0] and lv_n[-1] / lv_n[0] < 8 * 1.5


def test_chaotic_lstm_cost_is_intricate() -> None:
    system = dynprobe.load_system("lstm2d_chaotic")
    ds = smoothness(system, values="0.5:2.0:301", lengths=(5, 40))
    assert float(ds.loss.sel(length=40, param=1.0, method="nearest")) < 1e-2
    lv = ds.lipschitz_loss.values
    assert lv[1] / lv[0] > 10  # the cost roughens as N grows in the chaotic region
    slope = np.abs(ds.slope.sel(length=40).values)
    mid = ds.midpoint.values
    assert slope[(mid > 0.9) & (mid < 1.45)].max() > 5 * slope[mid < 0.7].max()


def test_data_mode_and_errors() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(1, 4).double()
    head = nn.Linear(4, 1).double()
    system = dynprobe.wrap(lstm, readout=lambda h: head(h[..., :4]))
    data = dynprobe.dataset("sine_generation", samples=3, T=30)
    ds = smoothness(system, values="0.5:1.5:11", lengths=(10, 30), data=data)
    assert ds.loss.shape == (2, 11) and np.isfinite(ds.loss.values).all()
    with torch.no_grad():  # a second implementation of V_N at s = 1: the module's own forward
        out, _ = lstm(data.time_major().double())
        V = ((head(out) - data.targets.transpose(0, 1).double()) ** 2).mean()
    assert float(ds.loss.sel(length=30, param=1.0)) == pytest.approx(float(V), rel=1e-6)
    by_name = smoothness(system, values="0.5:1.5:5", lengths=(10,), data="sine_generation", batch=4)
    assert by_name.attrs["targets"] == "sine_generation" and np.isfinite(by_name.loss.values).all()
    with pytest.raises(ProbeParameterError, match="outputs"):
        smoothness(dynprobe.wrap(lstm), values="0.5:1.5:5", lengths=(5,), data=data)
    with pytest.raises(ProbeParameterError, match="need burn_in"):
        smoothness(system, values="0.5:1.5:5", lengths=(40,), data=data)
    with pytest.raises(ProbeParameterError, match="every step"):
        smoothness(system, values="0.5:1.5:5", lengths=(5,), data=dynprobe.dataset("relevant_symbols", samples=4))
    with pytest.raises(ProbeParameterError, match="loss"):
        smoothness(system, loss="hinge")


def test_conformance() -> None:
    check_probe("smoothness", scalar(0.9), values="0.8:1.2:9", lengths=(3, 6))
