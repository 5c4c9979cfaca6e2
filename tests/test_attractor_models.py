"""Reference models and tasks of the attractors paper §5: orthogonal_rnn, stable_lstm,
sine_generation, relevant_symbols."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import jacobian
from dynprobe.plugins.entropy import weight_norm_bound
from dynprobe.testing import check_adapter


def test_orthogonal_rnn_stays_orthogonal_through_training() -> None:
    rnn = dynprobe.model("orthogonal_rnn", input_size=2, hidden_size=6, seed=1)
    opt = torch.optim.Adam(rnn.parameters(), lr=0.05)
    x = torch.randn(12, 3, 2, dtype=torch.float64)
    for _ in range(5):
        opt.zero_grad()
        rnn(x)[0].pow(2).sum().backward()
        opt.step()
    W = rnn.weight_hh_l0.detach()
    torch.testing.assert_close(W.T @ W, torch.eye(6, dtype=torch.float64), atol=1e-12, rtol=0)
    system = check_adapter(rnn)  # the System reads the parametrized (orthogonal) weight
    torch.testing.assert_close(system.params["weight_hh_l0"], W)
    eig = torch.linalg.eigvals(system.params["weight_hh_l0"]).abs()
    torch.testing.assert_close(eig, torch.ones(6, dtype=torch.float64), atol=1e-10, rtol=0)
    assert weight_norm_bound(system).value == pytest.approx(1.0, abs=1e-12)


def test_stable_lstm_projection_keeps_it_contractive() -> None:
    model = dynprobe.model("stable_lstm", input_size=1, hidden_size=5, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    model.attach(opt)
    x = torch.rand(20, 4, 1, dtype=torch.float64)
    for _ in range(3):  # huge steps: without the projection the weights would leave the set
        opt.zero_grad()
        (-model(x)[0].pow(2).sum()).backward()
        opt.step()
        system = dynprobe.wrap(model).with_drive(dynprobe.constant(1.0))
        bound = weight_norm_bound(system)
        assert bound.value <= model.lipschitz + 1e-12
    # the certified contraction: trajectories from far-apart states in the box merge geometrically
    system = dynprobe.wrap(model)
    h = torch.rand(2, 10, dtype=torch.float64) * 2 - 1
    traj = system.trajectory(h, 60)
    gap = (traj[:, 0] - traj[:, 1]).abs().amax(-1)
    assert float(gap[-1]) <= model.lipschitz ** 60 * float(gap[0]) * 1.000001
    J = jacobian(system, torch.zeros(1, 10, dtype=torch.float64))
    assert float(J.abs().sum(-1).max()) < 1
    with pytest.raises(ProbeParameterError, match="forget_max"):
        dynprobe.model("stable_lstm", forget_max=0.99)


def test_sine_generation_shapes_and_values() -> None:
    d = dynprobe.dataset("sine_generation")
    assert d.inputs.shape == (100, 400, 1) and d.targets.shape == (100, 400, 1) and d.task == "regression"
    assert d.every_step and d.output_size == 1
    omega = d.inputs[:, 0, 0].double()
    assert float(omega.min()) == pytest.approx(math.pi / 16) and float(omega.max()) == pytest.approx(math.pi / 8)
    t = 37
    np.testing.assert_allclose(d.targets[:, t, 0], np.sin(omega.numpy() * (t + 1)), atol=1e-6)
    assert torch.equal(d.inputs[:, t, 0], d.inputs[:, 0, 0])
    a = dynprobe.dataset("sine_generation", spacing="uniform", seed=3, samples=7, T=5)
    b = dynprobe.dataset("sine_generation", spacing="uniform", seed=3, samples=7, T=5)
    assert torch.equal(a.targets, b.targets) and not torch.equal(a.inputs, d.head(7).inputs[:, :5])


def test_relevant_symbols_task() -> None:
    d = dynprobe.dataset("relevant_symbols", T=60, samples=500, seed=4)
    x, y = d.inputs, d.targets
    assert x.shape == (500, 60, 6) and d.task == "classification" and d.num_classes == 4
    assert torch.equal(x.sum(-1), torch.ones(500, 60))
    relevant = x[..., :2].sum(-1)  # p or q
    assert torch.equal(relevant.sum(1), torch.full((500,), 2.0))
    where = relevant.nonzero()[:, 1].reshape(500, 2)  # (t1, t2) per sequence
    t1, t2 = where[:, 0], where[:, 1]
    assert int(t1.min()) == 10 and int(t1.max()) == 18 and int(t2.min()) == 40 and int(t2.max()) == 49
    rows = torch.arange(500)
    first, second = x[rows, t1, 1], x[rows, t2, 1]  # 1 where the symbol is q
    assert torch.equal(y, (2 * first + second).long())
    assert set(y.tolist()) == {0, 1, 2, 3}
    again = dynprobe.dataset("relevant_symbols", T=60, samples=500, seed=4)
    assert torch.equal(again.inputs, x)
    with pytest.raises(ProbeParameterError, match="T must be >= 50"):
        dynprobe.dataset("relevant_symbols", T=49)
