"""The ``wcrnn`` reference model: residuals, step forms, adapter, ``wcrnn_init``, and the paper's
property that with small ε the Lyapunov exponents approach log|eig(R)| (fading-memory eq. 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.errors import ProbeParameterError, UnsupportedModuleError
from dynprobe.plugins.models.residuals import residual_matrix
from dynprobe.plugins.models.wcrnn import WCRNN
from dynprobe.plugins.models.wcrnn_init import wcrnn_init
from dynprobe.testing import check_adapter


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_model_by_name_as_in_the_issue():
    m = dynprobe.model("wcrnn", hidden_size=64, input_size=1, residual="diagonal", alpha=1.0, eps=0.01, seed=0)
    assert isinstance(m, WCRNN)
    assert torch.equal(m.R, torch.eye(64)) and "R" in dict(m.named_buffers()) and "R" not in dict(m.named_parameters())
    assert {n for n, _ in m.named_parameters()} == {"weight_hh", "weight_ih", "bias"}
    assert torch.allclose(m.eps, torch.full((64,), 0.01))


def test_weights_are_drawn_like_nn_linear():
    m = WCRNN(3, 64, seed=5)
    for w, fan_in in ((m.weight_hh.detach(), 64), (m.weight_ih.detach(), 3), (m.bias.detach(), 64)):
        bound = 1 / math.sqrt(fan_in)
        assert float(w.abs().max()) <= bound
        if w.numel() > 1000:  # U(-b, b) has variance b^2 / 3
            assert abs(float(w.var()) / (bound**2 / 3) - 1) < 0.1
    assert not torch.equal(WCRNN(3, 64, seed=6).weight_hh, m.weight_hh)
    assert torch.equal(WCRNN(3, 64, seed=5).weight_hh, m.weight_hh)


def test_residual_spectra():
    n = 8
    rot = residual_matrix("rotational", n, alpha=0.9, omega=0.3, generator=_gen()).numpy()
    eig = np.linalg.eigvals(rot)
    assert np.allclose(np.abs(eig), 0.9) and np.allclose(np.sort(np.abs(np.angle(eig))), 0.3)
    angles = [0.1, 0.2, 0.4, 0.8]
    rot = residual_matrix("rotational", n, omega=angles, generator=_gen()).numpy()
    assert np.allclose(np.sort(np.angle(np.linalg.eigvals(rot)))[n // 2:], angles)
    het = residual_matrix("heterogeneous", 400, alpha=0.95, beta=0.05, generator=_gen()).numpy()
    d = np.diag(het)
    assert np.allclose(het, np.diag(d)) and d.min() >= 0.9 and d.max() <= 1.0 and d.max() - d.min() > 0.09
    orth = residual_matrix("orthogonal", n, alpha=1.2, generator=_gen()).numpy()
    assert np.allclose(orth.T @ orth, 1.44 * np.eye(n))
    prod = residual_matrix("product", n, alpha=0.95, beta=0.05, generator=_gen()).numpy()
    blocks = [prod[i:i + 2, i:i + 2] for i in range(0, n, 2)]
    assert np.allclose(prod, np.kron(np.eye(n // 2), np.ones((2, 2))) * prod)  # block diagonal
    for b in blocks:  # Rot(ω) @ diag(a1, a2): column norms are a1, a2
        assert np.all((np.linalg.norm(b, axis=0) > 0.9 - 1e-12) & (np.linalg.norm(b, axis=0) < 1.0 + 1e-12))
    odd = residual_matrix("rotational", 5, alpha=0.5, omega=1.0, generator=_gen()).numpy()
    assert odd[4, 4] == 0.5 and np.allclose(np.abs(np.linalg.eigvals(odd)), 0.5)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"residual": "diagonl"}, "did you mean 'diagonal'"),
        ({"residual": "diagonal", "beta": 0.1}, "beta applies"),
        ({"residual": "heterogeneous", "omega": 0.1}, "omega applies"),
        ({"residual": "rotational", "omega": [0.1, 0.2]}, "one per block"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"form": "C"}, "form must be"),
    ],
    ids=["typo", "beta", "omega", "omega-count", "eps", "form"],
)
def test_bad_options_fail_in_one_line(kwargs, fragment):
    with pytest.raises(ProbeParameterError, match=fragment) as info:
        dynprobe.model("wcrnn", hidden_size=8, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("form", ["linear", "A", "B"])
def test_step_forms_match_the_equations(form):
    m = WCRNN(2, 6, form=form, residual="orthogonal", alpha=0.9, eps=0.05, eps_beta=0.02, dtype=torch.float64, seed=3)
    g = _gen(1)
    h, x = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
    R, W, V, b, e = (t.detach().numpy() for t in (m.R, m.weight_hh, m.weight_ih, m.bias, m.eps))
    hn, xn = h.numpy(), x.numpy()
    pre = hn @ W.T + xn @ V.T + b
    expected = {"linear": hn @ R.T + e * np.tanh(pre), "A": np.tanh(hn @ R.T) + e * np.tanh(pre),
                "B": np.tanh(hn @ R.T + e * pre)}[form]
    states, last = m(x.unsqueeze(0), h)
    assert np.allclose(last.detach().numpy(), expected, atol=1e-14)
    system = dynprobe.wrap(m)
    assert torch.allclose(system.step(h, x), last, atol=1e-14)


def test_adapter_is_the_specific_one_and_passes_the_conformance_kit():
    m = dynprobe.model("wcrnn", hidden_size=6, input_size=2, residual="rotational", omega=0.4, eps=0.1, output_size=3)
    system = check_adapter(m)
    assert system.arch.family == "wcrnn" and system.arch.param("residual") == "R" and system.dtype == torch.float64
    assert set(system.params) == {"weight_hh", "weight_ih", "bias", "R", "eps"}
    h = torch.randn(5, 6, dtype=torch.float64)
    expected = h @ m.readout.weight.detach().double().T + m.readout.bias.detach().double()
    assert torch.allclose(system.output(h), expected)
    x = torch.randn(7, 5, 2, dtype=torch.float64)
    traj = dynprobe.wrap(m).with_drive(dynprobe.sequence(x)).trajectory(torch.zeros(5, 6, dtype=torch.float64), 7)
    assert torch.allclose(traj[1:], m(x)[0], atol=1e-12)


def test_ensemble_of_seeds_stacks():
    system = dynprobe.wrap([dynprobe.model("wcrnn", hidden_size=4, seed=s) for s in range(3)])
    assert system.networks == 3 and system.params["weight_hh"].shape == (3, 4, 4)


@pytest.mark.parametrize("residual", ["diagonal", "rotational", "product"])
def test_wcrnn_init_gives_nn_rnn_the_type_b_dynamics(residual):
    kw = {"residual": residual, "alpha": 0.95, "eps": 0.05, "seed": 4}
    if residual == "rotational":
        kw["omega"] = 0.3
    rnn = wcrnn_init(nn.RNN(3, 10).double(), **kw)
    ref = WCRNN(3, 10, form="B", dtype=torch.float64, **kw)
    x = torch.randn(30, 2, 3, dtype=torch.float64, generator=_gen(2))
    out, h_n = rnn(x)
    states, last = ref(x)
    assert torch.allclose(out, states, atol=1e-12) and torch.allclose(h_n[0], last, atol=1e-12)
    e = ref.eps.detach().unsqueeze(-1)
    assert torch.allclose(rnn.weight_hh_l0.detach(), ref.R + e * ref.weight_hh.detach())


def test_wcrnn_init_class_form_layers_and_refusals():
    rnn = wcrnn_init(nn.RNN, input_size=2, hidden_size=8, alpha=0.9, eps=0.01)
    assert isinstance(rnn, nn.RNN) and torch.allclose(torch.diag(rnn.weight_hh_l0.detach()), torch.full((8,), 0.9), atol=0.01)
    deep = wcrnn_init(nn.RNN(2, 8, num_layers=2), alpha=1.0, eps=0.01)
    assert torch.allclose(torch.diag(deep.weight_hh_l1.detach()), torch.ones(8), atol=0.01)
    cell = wcrnn_init(nn.RNNCell(2, 8), eps=0.01)
    assert float((cell.weight_hh.detach() - torch.eye(8)).abs().max()) <= 0.01 / math.sqrt(8) + 1e-7
    for bad in (nn.GRU(2, 8), nn.RNN):
        with pytest.raises(UnsupportedModuleError):
            wcrnn_init(bad)


# ---------------------------------------------------------------- eq. 13 through the lyapunov probe
def _exponents(model: WCRNN, steps: int) -> np.ndarray:
    ds = dynprobe.run("lyapunov", dynprobe.wrap(model, dtype=torch.float64), steps=steps, burn_in=20)
    return ds.exponent_mean.values


def _log_abs_eig(model: WCRNN) -> np.ndarray:
    return np.sort(np.log(np.abs(np.linalg.eigvals(model.R.double().numpy()))))[::-1]


@pytest.mark.parametrize("alpha", [0.9, 1.0, 1.1], ids=["subcritical", "critical", "supercritical"])
def test_alpha_identity_gives_all_exponents_log_alpha(alpha):
    m = WCRNN(1, 12, alpha=alpha, eps=1e-3, seed=1)
    lam = _exponents(m, 300)
    bound = 2e-3 * float(torch.linalg.matrix_norm(m.weight_hh.detach().double(), ord=2)) / alpha
    assert np.all(np.abs(lam - math.log(alpha)) < bound), (lam, math.log(alpha))


def test_exponent_error_shrinks_linearly_with_eps():
    errors = [np.abs(_exponents(WCRNN(1, 12, alpha=0.9, eps=eps, seed=1), 300) - math.log(0.9)).max()
              for eps in (1e-2, 1e-3)]
    assert errors[1] < errors[0] / 5, errors


@pytest.mark.parametrize(
    "residual, kwargs, steps",
    [("rotational", {"alpha": 0.95, "omega": 0.7}, 300), ("orthogonal", {"alpha": 1.0}, 300),
     ("heterogeneous", {"alpha": 0.95, "beta": 0.05}, 3000)],
)
def test_exponents_approach_log_abs_eig_of_normal_residuals(residual, kwargs, steps):
    m = WCRNN(1, 8, residual=residual, eps=1e-3, seed=2, **kwargs)
    lam, ref = _exponents(m, steps), _log_abs_eig(m)
    assert np.abs(lam - ref).max() < 2e-3, (lam, ref)
    if residual == "rotational":  # a rotation block keeps log|alpha| for both of its exponents
        assert np.allclose(ref, math.log(0.95))
