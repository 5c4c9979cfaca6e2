"""The reference cells ``vanilla`` and ``minimalrnn``: real modules, their Systems, their statistics."""

from __future__ import annotations

import math

import pytest
import torch

import dynprobe
from dynprobe.errors import ProbeParameterError, UnsupportedModuleError
from dynprobe.plugins.meanfield import estimate
from dynprobe.testing import check_adapter


@pytest.mark.parametrize("name", ["vanilla", "minimalrnn"])
def test_sequence_forward_is_the_iterated_cell_and_the_system_step(name):
    net = dynprobe.model(name, input_size=3, hidden_size=16, sigma_w=1.3, sigma_b=0.2, mu_b=0.4, dtype=torch.float64)
    x = torch.randn(7, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h0 = 0.3 * torch.ones(5, 16, dtype=torch.float64)
    out, hT = net(x, h0)
    h = h0
    system = dynprobe.wrap(net)
    for t in range(7):
        h_sys = system.step(h, x[t])
        h = net(x[t], h)[1]
        torch.testing.assert_close(h_sys, h, rtol=0, atol=1e-14)
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close(hT, h)
    assert system.arch.family == {"vanilla": "elman", "minimalrnn": "minimalrnn"}[name] and system.kind.startswith("meanfield:")


@pytest.mark.parametrize("name", ["vanilla", "minimalrnn"])
def test_conformance_of_the_adapter_and_of_the_generic_path(name):
    net = dynprobe.model(name, input_size=2, hidden_size=8, dtype=torch.float64)
    check_adapter(net)
    from dynprobe.plugins.adapters.generic import dynprobe_adapt as generic

    specific, fallback = dynprobe.wrap(net), generic(net, {"state_dim": None, "input_dim": None, "name": None})
    h = torch.randn(3, 8, dtype=torch.float64)
    u = torch.randn(3, 2, dtype=torch.float64)
    torch.testing.assert_close(specific.step(h, u), fallback.step(h, u), rtol=0, atol=1e-14)


def test_the_cells_train():
    net = dynprobe.model("minimalrnn", input_size=2, hidden_size=8)
    x = torch.randn(5, 4, 2)
    loss = net(x)[1].pow(2).sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_untied_networks_draw_fresh_weights_per_step_and_refuse_to_be_one_map():
    net = dynprobe.model("vanilla", input_size=2, hidden_size=6, tied=False, steps=4)
    assert net.W.shape == (4, 6, 6) and not torch.equal(net.W[0], net.W[1])
    out, _ = net(torch.randn(4, 1, 2))
    assert out.shape == (4, 1, 6)
    with pytest.raises(UnsupportedModuleError, match="different weights at every step"):
        dynprobe.wrap(net)
    with pytest.raises(ProbeParameterError, match="weights for 4 steps"):
        net(torch.randn(5, 1, 2))


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_weight_statistics_follow_the_mean_field_parameterization(weights):
    net = dynprobe.model("vanilla", input_size=50, hidden_size=400, sigma_w=1.7, sigma_v=0.6, sigma_b=0.3, mu_b=-0.5,
                         weights=weights, dtype=torch.float64, seed=11)
    est = estimate(dynprobe.wrap(net), R=1.0)
    assert est.weights == weights
    assert est.sigma_w == pytest.approx(1.7, rel=0.01 if weights == "gaussian" else 1e-12)
    assert est.sigma_v == pytest.approx(0.6, rel=0.02)
    assert est.sigma_b == pytest.approx(0.3, rel=0.1) and est.mu_b == pytest.approx(-0.5, abs=0.05)
    if weights == "orthogonal":
        torch.testing.assert_close(net.W @ net.W.T, 1.7**2 * torch.eye(400, dtype=torch.float64))


def test_estimate_reads_torch_rnns_and_the_drive():
    rnn = torch.nn.RNN(4, 32, nonlinearity="relu").double()
    u = torch.randn(100, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    est = estimate(dynprobe.wrap(rnn, drive=dynprobe.sequence(u)))
    W, V = rnn.weight_hh_l0.detach(), rnn.weight_ih_l0.detach()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    assert est.phi == "relu" and est.cell == "vanilla"
    assert est.sigma_w == pytest.approx(math.sqrt(32 * float((W * W).mean())), rel=1e-12)
    assert est.sigma_v == pytest.approx(math.sqrt(4 * float((V * V).mean())), rel=1e-12)
    assert est.sigma_b == pytest.approx(float(b.std(unbiased=False)), rel=1e-12)
    assert est.R == pytest.approx(float((u * u).mean()), rel=1e-12)
    assert estimate(dynprobe.wrap(rnn)).R == 0.0  # autonomous: no input
    assert estimate(dynprobe.wrap(rnn, drive=dynprobe.constant(0.5))).R == pytest.approx(0.25)
    with pytest.raises(ProbeParameterError, match="feedback.*pass R="):
        estimate(dynprobe.wrap(torch.nn.RNN(4, 4).double(), drive=dynprobe.feedback()))


def test_estimate_of_minimalrnn_input_moment_uses_the_embedding():
    net = dynprobe.model("minimalrnn", input_size=3, hidden_size=20, dtype=torch.float64)
    u = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    est = estimate(dynprobe.wrap(net, drive=dynprobe.sequence(u)))
    with torch.no_grad():
        assert est.R == pytest.approx(float(net.embed(u).pow(2).mean()), rel=1e-12)


def test_unsupported_networks_get_a_one_line_error():
    for module in (torch.nn.GRU(2, 4), torch.nn.RNN(2, 4, num_layers=2)):
        with pytest.raises(UnsupportedModuleError, match="sigma_w=..., sigma_v=... explicitly"):
            estimate(dynprobe.wrap(module.double()), R=1.0)
