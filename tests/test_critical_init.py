"""Critical initialization: Algorithm 1 (minimalRNN) and the χ₁ = 1 line (vanilla RNN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from meanfield_reference import E
from scipy import special

import dynprobe
from dynprobe.errors import ProbeParameterError, UnsupportedModuleError
from dynprobe.plugins.meanfield import critical_hyper, critical_init, predict_point


@pytest.mark.parametrize("q_star,mu_b,R", [(16.0, 0.0, 0.46), (16.0, 2.0, 0.37), (30.0, -1.0, 1.0), (8.0, 2.0, 0.37)])
def test_algorithm_1_output_gives_chi1_equal_one_in_eq_13(q_star, mu_b, R):
    """Plug the chosen σ's back into eq. (13), with integrals by scipy.integrate.quad: χ₁ = 1 to 1e-10."""
    h = critical_hyper("minimalrnn", q_star=q_star, mu_b=mu_b, R=R)
    sig = special.expit
    sw2, sv2, Q = h["sigma_w"] ** 2, h["sigma_v"] ** 2, h["Q_star"]
    assert sw2 * Q + sv2 * R + h["sigma_b"] ** 2 == pytest.approx(q_star, rel=1e-14)  # eq. (6)
    e_u2, e_1u2 = E(lambda x: sig(x) ** 2, q_star, mu_b), E(lambda x: (1 - sig(x)) ** 2, q_star, mu_b)
    assert Q == pytest.approx(Q * e_u2 + R * e_1u2, rel=1e-10)  # Q* is the fixed point of eq. (7)
    chi_1 = e_u2 + sw2 * (Q + R) * E(lambda x: (sig(x) * (1 - sig(x))) ** 2, q_star, mu_b)
    assert chi_1 == pytest.approx(1.0, abs=1e-10)


def test_vanilla_critical_line_and_the_solver_agree():
    h = critical_hyper("vanilla", q_star=0.5, mu_b=0.0, R=1.0)
    chi = h["sigma_w"] ** 2 * E(lambda x: (1 - np.tanh(x) ** 2) ** 2, 0.5, 0.0)
    assert chi == pytest.approx(1.0, abs=1e-10)
    # re-solving the fixed point from the chosen hyper-parameters finds the requested q* again
    p = predict_point(dynprobe_meanfield_estimate("vanilla", h, R=1.0))
    assert p.values["q_star"] == pytest.approx(0.5, rel=1e-10) and p.chi_1 == pytest.approx(1.0, abs=1e-10)


def dynprobe_meanfield_estimate(cell, h, *, R, mu_b=0.0):
    from dynprobe.plugins.meanfield import Estimate

    return Estimate(cell=cell, phi="tanh", sigma_w=h["sigma_w"], sigma_v=h["sigma_v"], sigma_b=h["sigma_b"], mu_b=mu_b,
                    R=R, weights="orthogonal", hidden_size=1, input_size=1, source="test")


def test_infeasible_requests_are_refused_with_the_reason():
    with pytest.raises(ProbeParameterError, match=r"infeasible.*sigma_v\^2 = -.*choose a larger q_star"):
        critical_hyper("minimalrnn", q_star=2.0, mu_b=1.0, R=0.5)
    with pytest.raises(ProbeParameterError, match="q_star=0.0 must be"):
        critical_hyper("vanilla", q_star=0.0)
    with pytest.raises(ProbeParameterError, match="unknown cell"):
        critical_hyper("lstm", q_star=1.0)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_critical_init_writes_the_module_in_place(weights):
    net = dynprobe.model("vanilla", input_size=4, hidden_size=256, dtype=torch.float64, seed=3)
    h = critical_init(net, q_star=0.5, R=1.0, weights=weights, seed=7)
    assert h["chi_1"] == pytest.approx(1.0, abs=1e-9) and h["weights"] == weights and h["cell"] == "vanilla"
    W = net.W.detach()
    if weights == "orthogonal":
        torch.testing.assert_close(W @ W.T, h["sigma_w"] ** 2 * torch.eye(256, dtype=torch.float64))
    est = predict_point(dynprobe.wrap(net), R=1.0).estimate
    assert est.weights == weights
    assert est.sigma_w == pytest.approx(h["sigma_w"], rel=0.02)
    assert est.sigma_v == pytest.approx(h["sigma_v"], rel=0.1)
    assert est.sigma_b == 0.0


def test_critical_init_on_torch_rnn():
    rnn = torch.nn.RNN(3, 128).double()
    h = critical_init(rnn, q_star=0.4, mu_b=0.0, R=1.0)
    assert rnn.bias_hh_l0.abs().max() == 0
    p = predict_point(dynprobe.wrap(rnn), R=1.0)
    assert p.estimate.phi == "tanh" and p.estimate.weights == "orthogonal"
    assert p.estimate.sigma_w == pytest.approx(h["sigma_w"], rel=1e-12)
    with pytest.raises(UnsupportedModuleError, match="cannot initialize a GRU"):
        critical_init(torch.nn.GRU(3, 8))


def test_critical_init_then_a_wide_network_has_largest_lyapunov_exponent_near_zero():
    """The issue's oracle: after critical_init, a wide input-driven network sits at λ_max ≈ 0
    (mean-field: λ_max = ½ log χ₁ = 0), while the off-critical default (σ_w² = σ_v² = 1, §4.2) does not."""
    N, M = 256, 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(250, 2, M, generator=gen, dtype=torch.float64)
    net = dynprobe.model("vanilla", input_size=M, hidden_size=N, dtype=torch.float64, seed=1)
    critical_init(net, q_star=0.5, R=1.0)
    system = dynprobe.wrap(net, drive=dynprobe.sequence(x))
    lam = dynprobe.run("lyapunov", system, k=1, steps=200, burn_in=40, samples=2)
    assert abs(float(lam.exponent_mean[0])) < 0.02
    off = dynprobe.model("vanilla", input_size=M, hidden_size=N, sigma_w=1.0, sigma_v=1.0, dtype=torch.float64, seed=1)
    off_system = dynprobe.wrap(off, drive=dynprobe.sequence(x))
    lam_off = dynprobe.run("lyapunov", off_system, k=1, steps=200, burn_in=40, samples=2)
    assert float(lam_off.exponent_mean[0]) < -0.1
