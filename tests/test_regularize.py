"""Differentiable finite-time exponents: values against an explicit-Jacobian QR loop, gradients
against finite differences (float64, the same trajectory and initial tangents), gradients that
reach a module's own parameters, and the penalty moving λ₁ toward its target."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import jacobian
from dynprobe.regularize import LyapunovRegularizer, finite_time_exponents, lyapunov_loss, module_params


def _rnn(n: int = 6, gain: float = 1.6, seed: int = 0) -> nn.RNN:
    torch.manual_seed(seed)
    rnn = nn.RNN(1, n).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(gain * torch.randn(n, n, dtype=torch.float64) / math.sqrt(n))
    return rnn


def test_values_equal_a_qr_loop_over_explicit_jacobians():
    system = dynprobe.wrap(_rnn(), drive=dynprobe.constant(0.2))
    h0 = system.initial_state(2, seed=1)
    Q0 = torch.linalg.qr(torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)).Q
    got = finite_time_exponents(system, h0, steps=25, k=3, tangents=Q0)
    # second implementation: materialized Jacobians along the trajectory, numpy QR
    traj = system.trajectory(h0, 25)
    want = np.zeros((2, 3))
    for s in range(2):
        Q = Q0[s].numpy()
        for t in range(25):
            Q, R = np.linalg.qr(jacobian(system, traj[t, s][None], t)[0].numpy() @ Q)
            want[s] += np.log(np.abs(np.diag(R)))
    np.testing.assert_allclose(got.detach().numpy(), want / 25, rtol=1e-11)


@pytest.mark.parametrize("module, name, index", [
    (_rnn(), "weight_hh_l0", (2, 3)),
    (nn.LSTM(1, 3).double(), "weight_hh_l0", (5, 1)),
], ids=["rnn", "lstm"])
def test_gradient_matches_finite_differences(module, name, index):
    system = dynprobe.wrap(module, drive=dynprobe.constant(0.3))
    h0 = system.initial_state(2, seed=2)

    def lam(W: torch.Tensor) -> torch.Tensor:
        return finite_time_exponents(system, h0, steps=20, k=2, params={name: W}, seed=3)

    W = system.params[name].clone().requires_grad_(True)
    lam(W)[:, 0].sum().backward()
    grad = float(W.grad[index])

    def central(eps: float) -> float:
        up, down = W.detach().clone(), W.detach().clone()
        up[index] += eps
        down[index] -= eps
        with torch.no_grad():
            return float((lam(up)[:, 0].sum() - lam(down)[:, 0].sum()) / (2 * eps))

    coarse, fine = central(1e-4), central(5e-5)
    # the central difference errs by O(eps^2): fine is off by about |coarse - fine| / 3; rounding ~1e-16/eps
    tol = abs(coarse - fine) + 1e-16 / 5e-5 * 10
    assert abs(grad - fine) <= tol, (grad, fine, coarse)
    assert abs(grad) > 10 * tol  # a gradient that is not just noise


def test_gradients_reach_the_modules_parameters():
    rnn = _rnn(seed=1)
    reg = LyapunovRegularizer(rnn, k=2, steps=15, target=0.0)
    x = torch.rand(15, 3, 1, dtype=torch.float64)
    loss = reg(x)
    loss.backward()
    assert rnn.weight_hh_l0.grad is not None and float(rnn.weight_hh_l0.grad.norm()) > 0
    # the same number from the functional API with the module's live parameters
    system = reg.system.with_drive(dynprobe.sequence(x))
    lam = finite_time_exponents(system, torch.zeros(3, 6, dtype=torch.float64), steps=15, k=2,
                                params=module_params(rnn, reg.system))
    torch.testing.assert_close(lam.detach(), reg.last_exponents)
    np.testing.assert_allclose(float(loss.detach()), float((lam.detach() ** 2).mean()), rtol=1e-14)


def test_the_penalty_moves_lambda_1_toward_its_target():
    rnn = _rnn(gain=0.6, seed=0)  # ordered: lambda_1 about -0.25 over 20-step windows
    reg = LyapunovRegularizer(rnn, k=1, steps=20, target=0.0, batch=3)
    opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
    history = []
    for _ in range(10):
        opt.zero_grad()
        reg().backward()
        opt.step()
        history.append(float(reg.last_exponents.mean()))
    end = float(reg.exponents().detach().mean())
    assert history[0] < -0.15 and abs(end) < 0.6 * abs(history[0]), history


def test_float32_module_with_a_float64_system():
    rnn = nn.RNN(1, 4)
    reg = LyapunovRegularizer(rnn, k=1, steps=5, dtype=torch.float64)
    reg().backward()
    assert reg.system.dtype == torch.float64 and rnn.weight_hh_l0.grad.dtype == torch.float32


def test_an_ensemble_gives_one_exponent_set_per_network():
    systems = [dynprobe.wrap(_rnn(seed=s)) for s in (0, 1)]
    stacked = dynprobe.System.stack(systems)
    h0 = stacked.initial_state(2, seed=0)
    lam = finite_time_exponents(stacked, h0, steps=10, k=2, seed=1)
    for i, single in enumerate(systems):
        torch.testing.assert_close(lam[i], finite_time_exponents(single, h0[i], steps=10, k=2, seed=1))
    loss = lyapunov_loss(stacked, h0, target=torch.tensor([0.0, -0.5], dtype=torch.float64), steps=10, k=2, seed=1)
    np.testing.assert_allclose(float(loss), float(((lam - torch.tensor([0.0, -0.5], dtype=torch.float64)) ** 2).mean()))


def test_clear_errors():
    rnn = _rnn()
    system = dynprobe.wrap(rnn)
    with pytest.raises(ProbeParameterError, match="unknown parameters"):
        finite_time_exponents(system, system.initial_state(1), steps=3, params={"W": torch.zeros(1)})
    with pytest.raises(ProbeParameterError, match="Linear has no attribute 'weight_ih_l0'"):
        module_params(nn.Linear(2, 2), system)
    with pytest.raises(ProbeParameterError, match="inputs must be"):
        LyapunovRegularizer(rnn, steps=3)(torch.zeros(3, 1))


class _LeakyCell(nn.Module):
    """A user's own cell, forward(x, h) -> (y, h), wrapped by the generic adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_size, self.input_size = 4, 1
        self.inner = nn.Linear(4, 4).double()
        self.inp = nn.Linear(1, 4).double()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = 0.5 * h + 0.5 * torch.tanh(self.inner(h) + self.inp(x))
        return h, h


def test_a_custom_cell_gets_gradients_under_its_dotted_names():
    torch.manual_seed(0)
    cell = _LeakyCell()
    reg = LyapunovRegularizer(cell, k=2, steps=6, target=0.0)
    assert "inner.weight" in reg.system.params
    reg(torch.rand(6, 2, 1, dtype=torch.float64)).backward()
    assert float(cell.inner.weight.grad.norm()) > 0 and cell.inp.weight.grad is not None
