"""Linearization: J@Q and full Jacobians against autograd, positive QR, the traced graph."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from systems import henon_system
from torch import nn

import dynprobe
from dynprobe.linearize import TangentMap, jacobian, jvp_columns, qr_positive
from dynprobe.tracing import trace


def _autograd_jacobian(system, h, t=0):
    return torch.stack([torch.autograd.functional.jacobian(lambda x: system.map(x[None], t)[0], row) for row in h])


def test_henon_jacobian_closed_form():
    s = henon_system()
    h = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=torch.float64)
    J = jacobian(s, h)
    expected = torch.tensor([[[-2 * 1.4 * 0.3, 1.0], [0.3, 0.0]], [[-2 * 1.4 * 1.0, 1.0], [0.3, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(J, expected)


@pytest.mark.parametrize("module", [nn.LSTM(2, 3, num_layers=2), nn.GRU(2, 4), nn.RNN(2, 5, nonlinearity="relu")],
                         ids=["LSTM2", "GRU", "RNNrelu"])
def test_jvp_columns_equal_materialized_jacobian_times_Q(module):
    torch.manual_seed(0)
    s = dynprobe.wrap(module.double(), drive=dynprobe.constant(torch.randn(2)))
    h = 0.5 * torch.randn(4, s.state_dim, dtype=torch.float64)
    Q = torch.randn(4, s.state_dim, 3, dtype=torch.float64)
    h1, JQ = jvp_columns(s, h, Q)
    J = _autograd_jacobian(s, h)
    torch.testing.assert_close(JQ, J @ Q, rtol=0, atol=1e-12)
    torch.testing.assert_close(h1, s.map(h))


def test_feedback_jacobian_includes_the_readout_path():
    module = nn.RNN(3, 3).double()
    s = dynprobe.wrap(module, drive=dynprobe.feedback())  # output (= h) fed back as input
    h = 0.3 * torch.randn(2, 3, dtype=torch.float64)
    J = jacobian(s, h)
    W = s.params["weight_ih_l0"] + s.params["weight_hh_l0"]
    pre = h @ W.T + s.params["bias_ih_l0"] + s.params["bias_hh_l0"]
    expected = (1 - torch.tanh(pre) ** 2)[..., None] * W
    torch.testing.assert_close(J, expected)


def test_ensemble_tangents_are_per_network():
    torch.manual_seed(0)
    modules = [nn.GRU(2, 3).double() for _ in range(3)]
    ens = dynprobe.wrap(modules)
    h = ens.initial_state(2)
    J = jacobian(ens, h)
    for i, m in enumerate(modules):
        torch.testing.assert_close(J[i], jacobian(dynprobe.wrap(m), h[i]))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
                  elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False)))
def test_qr_positive_is_a_qr_with_nonnegative_diagonal(a):
    A = torch.from_numpy(a)
    if A.shape[-1] > A.shape[-2]:
        A = A.transpose(-1, -2)
    Q, R = qr_positive(A)
    torch.testing.assert_close(Q @ R, A, rtol=1e-10, atol=1e-10)
    assert (torch.diagonal(R, dim1=-2, dim2=-1) >= 0).all()
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    full_rank = torch.linalg.matrix_rank(A) == A.shape[-1]
    torch.testing.assert_close((Q.mT @ Q)[full_rank], eye.expand_as(Q.mT @ Q)[full_rank], rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.triu(R), R)


def test_traced_tangent_drops_zero_tangents_and_folds_the_column_bmm():
    torch.manual_seed(0)
    W = torch.randn(8, 8, dtype=torch.float64)
    s = dynprobe.System.from_step(lambda h, u, p: torch.tanh(torch.nn.functional.linear(h, p["W"])), state_dim=8,
                                  params={"W": W})
    tangent = TangentMap(s, trace=True)
    h = torch.randn(2, 8, dtype=torch.float64)
    Q = torch.randn(2, 8, 3, dtype=torch.float64)
    h1, JQ = tangent(h, Q)
    assert tangent.mode == "traced"
    targets = [ins.op for ins in tangent.program(h, Q).body]
    assert not {"aten.zeros.default", "aten._efficientzerotensor.default"} & set(targets), targets
    assert not any("bmm" in t for t in targets), targets
    assert sum("mm" in t for t in targets) == 2, targets  # one primal GEMM, one for all tangent columns
    eager = jvp_columns(s, h, Q)
    torch.testing.assert_close(JQ, eager[1], rtol=0, atol=1e-13)


def test_data_dependent_step_falls_back_to_eager_and_stays_right():
    s = dynprobe.System.from_step(lambda h, u, p: h * 2 if h.sum() > 0 else h * 0.5, state_dim=2, dtype=torch.float64)
    tangent = TangentMap(s, trace=True)
    eye = torch.eye(2, dtype=torch.float64).expand(1, 2, 2)
    assert tangent(torch.ones(1, 2, dtype=torch.float64), eye)[1][0, 0, 0] == 2.0
    assert tangent.mode.startswith("eager:")
    assert tangent(-torch.ones(1, 2, dtype=torch.float64), eye)[1][0, 0, 0] == 0.5


def test_trace_reports_failure_instead_of_raising():
    fn, mode = trace(lambda x: x * float(x.sum()), torch.ones(3))
    assert mode.startswith("eager:")
    torch.testing.assert_close(fn(torch.ones(3)), torch.full((3,), 3.0))
