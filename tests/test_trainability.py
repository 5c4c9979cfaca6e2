"""Trainability probes: gradient propagation against closed forms on linear RNNs, the fading-memory
paper's regimes on WCRNNs, and the matrix-free Hessian against a closed form and a dense one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.trainability import build_objective
from dynprobe.tasks import SequenceData
from dynprobe.testing import check_probe


def _linear_system(A: np.ndarray, V: np.ndarray, c: np.ndarray) -> dynprobe.System:
    params = {"weight_hh": torch.tensor(A), "weight_ih": torch.tensor(V)}
    readout_w = torch.tensor(c).reshape(1, -1)
    system = dynprobe.System.from_step(lambda h, u, p: h @ p["weight_hh"].T + u @ p["weight_ih"].T,
                                       state_dim=A.shape[0], input_dim=V.shape[1], params=params, name="linear")
    return system.with_readout(lambda h: h @ readout_w.T)


def _regression(rng: np.random.Generator, B: int, T: int, M: int, every: bool = False) -> SequenceData:
    x = torch.tensor(rng.standard_normal((B, T, M)))
    z = torch.tensor(rng.standard_normal((B, T, 1) if every else (B, 1)))
    return SequenceData(x, z, "regression", "toy")


def _states(A, V, x):  # x [B, T, M] -> h [T+1, B, N]
    h = [np.zeros((x.shape[0], A.shape[0]))]
    for t in range(x.shape[1]):
        h.append(h[-1] @ A.T + x[:, t] @ V.T)
    return np.stack(h)


@pytest.mark.parametrize("loss", ["mse", "rms"])
def test_gradient_norms_match_the_closed_form_of_a_linear_rnn(loss):
    rng = np.random.default_rng(0)
    N, M, B, T = 5, 2, 7, 12
    A, V, c = 0.4 * rng.standard_normal((N, N)), rng.standard_normal((N, M)), rng.standard_normal(N)
    data = _regression(rng, B, T, M)
    ds = dynprobe.run("gradient_propagation", _linear_system(A, V, c), data=data, loss=loss, batch=B, fit_skip=0)
    r = _states(A, V, data.inputs.numpy())[-1] @ c - data.targets.numpy()[:, 0]  # residuals [B]
    scale = 2 * r / B if loss == "mse" else r / (B * math.sqrt(np.mean(r**2)))
    for t in range(T + 1):  # dL/dh_t^(b) = scale_b (A^T)^(T-t) c
        direction = np.linalg.matrix_power(A.T, T - t) @ c
        expected = np.abs(scale) * np.linalg.norm(direction)
        assert np.allclose(ds.grad_norm_sample.sel(time=t).values, expected, rtol=1e-10, atol=1e-300)
    assert np.allclose(ds.grad_norm.values, np.sqrt((ds.grad_norm_sample.values**2).sum(0)))
    loss_ref = np.mean(r**2) if loss == "mse" else math.sqrt(np.mean(r**2))
    assert math.isclose(float(ds.loss), loss_ref, rel_tol=1e-12)


def test_every_step_targets_sum_the_backpropagated_errors():
    rng = np.random.default_rng(1)
    N, M, B, T = 4, 1, 3, 6
    A, V, c = 0.5 * rng.standard_normal((N, N)), rng.standard_normal((N, M)), rng.standard_normal(N)
    data = _regression(rng, B, T, M, every=True)
    ds = dynprobe.run("gradient_propagation", _linear_system(A, V, c), data=data, loss="mse", batch=B, fit_skip=0)
    h = _states(A, V, data.inputs.numpy())
    err = 2 * (h[1:] @ c - data.targets.numpy()[:, :, 0].T) / (B * T)  # dL/dy_s for s = 1..T: [T, B]
    for t in range(T + 1):
        g = sum(np.outer(err[s - 1], np.linalg.matrix_power(A.T, s - t) @ c) for s in range(max(t, 1), T + 1))
        assert np.allclose(ds.grad_norm_sample.sel(time=t).values, np.linalg.norm(g, axis=1), rtol=1e-10)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.25])
def test_rate_and_lyapunov_equal_log_alpha_for_a_scaled_orthogonal_map(alpha):
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    data = _regression(rng, 4, 40, 1)
    ds = dynprobe.run("gradient_propagation", _linear_system(alpha * Q, rng.standard_normal((6, 1)),
                                                             rng.standard_normal(6)), data=data, batch=4)
    assert abs(float(ds.growth_rate) - math.log(alpha)) < 1e-10 and float(ds.growth_rate_stderr) < 1e-10
    assert abs(float(ds.lyapunov_max) - math.log(alpha)) < 1e-10


def test_wcrnn_regimes_vanish_stay_and_explode_at_log_alpha():
    """Fading-memory Fig. 2D: gradient norms change exponentially at the rate log alpha (eq. 15)."""
    alphas = (0.9, 1.0, 1.1)
    system = dynprobe.wrap([dynprobe.model("wcrnn", hidden_size=16, input_size=2, alpha=a, eps=0.01, output_size=1,
                                           seed=3) for a in alphas], dtype=torch.float64)
    ds = check_probe("gradient_propagation", system, data="adding", data_options={"T": 60}, batch=16)
    rates = ds.growth_rate.values
    assert np.all(np.abs(rates - np.log(alphas)) < 0.02), rates
    assert np.all(np.abs(rates - ds.lyapunov_max.values) < 0.02)
    assert ds.sizes["network"] == 3 and not bool(ds.diverged.any())
    assert ds.attrs["data"] == "adding" and ds.attrs["loss"] == "rms"


def test_hessian_matches_the_closed_form_of_a_two_step_linear_rnn():
    """T = 2, h_0 = 0: y = c^T W V x_0 + c^T V x_1, so for MSE H = (2/B) (c c^T) kron (sum_b p_b p_b^T),
    p_b = V x_0^(b): eigenvalues (2/B) |c|^2 eig(P P^T) (and zeros)."""
    rng = np.random.default_rng(4)
    N, M, B = 5, 3, 8
    A, V, c = rng.standard_normal((N, N)), rng.standard_normal((N, M)), rng.standard_normal(N)
    data = _regression(rng, B, 2, M)
    ds = check_probe("hessian", _linear_system(A, V, c), data=data, batch=B, loss="mse", k=3, which="LA")
    P = data.inputs.numpy()[:, 0] @ V.T  # [B, N]
    expected = np.sort(2 / B * (c @ c) * np.linalg.eigvalsh(P.T @ P))[::-1][:3]
    assert np.allclose(ds.eigenvalues.values, expected, rtol=1e-9)
    assert ds.attrs["wrt"] == "weight_hh" and ds.attrs["dimension"] == N * N
    assert float(ds.residual_norm.max()) < 1e-8 * expected[0]


@pytest.mark.parametrize("which", ["LM", "LA", "SA"])
def test_hessian_matches_a_dense_hessian_of_a_small_wcrnn(which):
    m = dynprobe.model("wcrnn", hidden_size=4, input_size=2, alpha=1.05, eps=0.3, output_size=1, seed=1)
    system = dynprobe.wrap(m, dtype=torch.float64)
    kw = {"data": "adding", "data_options": {"T": 8}, "batch": 5}
    ds = dynprobe.run("hessian", system, k=3, which=which, wrt=("weight_hh", "bias"), **kw)
    obj = build_objective("hessian", system, loss="auto", readout="system", seed=0, **kw)
    base = system.params

    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return obj.value({**base, "weight_hh": w, "bias": b})

    blocks = torch.autograd.functional.hessian(loss, (base["weight_hh"], base["bias"]))
    dense = torch.cat([torch.cat([blocks[i][j].reshape(16 if i == 0 else 4, -1) for j in range(2)], 1)
                       for i in range(2)]).numpy()
    eig = np.linalg.eigvalsh(dense)
    pick = {"LM": eig[np.argsort(-np.abs(eig))], "LA": eig[::-1], "SA": eig}[which][:3]
    assert np.allclose(ds.eigenvalues.values, pick, rtol=1e-7, atol=1e-12)


def test_hessian_magnitude_grows_with_alpha():
    """Fading-memory Fig. 2C: |eigenvalues| increase with the residual scale alpha."""
    system = dynprobe.wrap([dynprobe.model("wcrnn", hidden_size=6, input_size=2, alpha=a, eps=0.05, output_size=1,
                                           seed=2) for a in (0.9, 1.0, 1.1)], dtype=torch.float64)
    ds = dynprobe.run("hessian", system, data="adding", data_options={"T": 40}, batch=16, k=2)
    top = np.abs(ds.eigenvalues.values[:, 0])
    assert top[0] < top[1] < top[2], top


def test_readout_choices_and_one_line_errors():
    rng = np.random.default_rng(5)
    bare = dynprobe.wrap(dynprobe.model("wcrnn", hidden_size=4, input_size=2), dtype=torch.float64)
    cases = [
        (dict(probe="gradient_propagation", system=bare), "has no readout"),
        (dict(probe="gradient_propagation", system=bare, data=_regression(rng, 3, 5, 1), readout="linear_init"),
         "takes M=2"),
        (dict(probe="hessian", system=bare, readout="linear_init", wrt=("nope",)), "unknown parameters"),
        (dict(probe="hessian", system=bare, readout="linear_init", k=16), "k=16 must lie in"),
        (dict(probe="gradient_propagation", system=bare, readout="linear_init", loss="cross_entropy"), "does not fit"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(ProbeParameterError, match=fragment) as info:
            dynprobe.run(kwargs.pop("probe"), kwargs.pop("system"), batch=3, data_options=None
                         if "data" in kwargs else {"T": 5}, **kwargs)
        assert "\n" not in str(info.value)
    ds = dynprobe.run("gradient_propagation", bare, readout="linear_init", data_options={"T": 5}, batch=3)
    assert ds.attrs["readout"].startswith("linear_init")


def test_classification_with_cross_entropy_on_digit_then_noise():
    pytest.importorskip("sklearn")
    m = dynprobe.model("wcrnn", hidden_size=8, input_size=64, alpha=0.95, eps=0.05, output_size=10)
    ds = dynprobe.run("gradient_propagation", dynprobe.wrap(m, dtype=torch.float64), data="digit_then_noise",
                      data_options={"T": 20, "source": "sklearn"}, batch=8)
    assert ds.attrs["loss"] == "cross_entropy" and "sklearn" in ds.attrs["data_attrs"]
    assert float(ds.growth_rate) < 0 and float(ds.loss) > 0
