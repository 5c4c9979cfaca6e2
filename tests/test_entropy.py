"""The ``entropy`` probe: change of variables, the brackets of eq. 4, Lipschitz bounds,
contractivity (Def. 1), the Kozachenko–Leonenko estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dynprobe
from dynprobe import InitialState, System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import jacobian
from dynprobe.plugins.entropy import (
    DuplicatePointsError,
    entropy,
    jacobian_stats,
    kl_entropy,
    lstm_bound,
    spectral_norms,
    suggest,
    weight_norm_bound,
)
from dynprobe.testing import check_probe

F64 = torch.float64


def linear(A: torch.Tensor) -> System:
    return System.from_step(lambda h, u, p: h @ p["A"].T, state_dim=A.shape[0], params={"A": A},
                            init=InitialState(scale=1.0))


@pytest.fixture(scope="module")
def A() -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(3, 3, generator=gen, dtype=F64) * 0.8


def test_linear_map_rate_is_log_det_exactly(A) -> None:
    ds = entropy(linear(A), samples=16, steps=4)
    sv = torch.linalg.svdvals(A)
    np.testing.assert_allclose(ds.rate.values, math.log(abs(float(torch.det(A)))), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.rate_lower.values, 3 * math.log(sv[-1]), atol=1e-12)
    np.testing.assert_allclose(ds.rate_upper.values, 3 * math.log(sv[0]), atol=1e-12)
    assert (ds.rate_lower <= ds.rate).all() and (ds.rate <= ds.rate_upper).all()
    np.testing.assert_allclose(ds.entropy_change.values, np.arange(1, 5) * math.log(abs(float(torch.det(A)))), atol=1e-12)
    assert float(ds.lipschitz_lower) == pytest.approx(float(sv[0]), rel=1e-10)
    assert float(ds.co_lipschitz) == pytest.approx(float(sv[-1]), rel=1e-10)
    assert bool(ds.invertible) and not bool(ds.has_upper_bound) and np.isnan(float(ds.lipschitz_upper))


def test_knn_estimate_follows_the_exact_change(A) -> None:
    ds = entropy(linear(A), samples=1500, steps=4, power_iters=1, knn=True, knn_times=[0, 2, 4])
    np.testing.assert_allclose(ds.knn_change.values, [0.0, *ds.entropy_change.sel(step=[2, 4]).values], atol=0.12)


def _gauss_legendre(a: float, b: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(m)
    return 0.5 * (x + 1) * (b - a) + a, 0.5 * w * (b - a)


def expected_kl_gaussian(n: int, k: int, d: int, m: int = 120) -> float:
    """E[Ĥ] of the Kozachenko–Leonenko estimator on n standard-normal points in d dimensions,
    bias included, by quadrature over the law of the k-th neighbour distance ε.

    Given a point x, P(ε ≤ r) = P(Binomial(n − 1, p) ≥ k) = I_p(k, n − k) with p the Gaussian
    mass of the ball B(x, r), a non-central χ² probability; E[log ε | x] = ∫ (1[u > 0] − F(eᵘ)) du,
    and |x| is χ_d-distributed. Agrees with nested scipy.integrate.quad to 1e-12."""
    from scipy import special, stats

    s, w_s = _gauss_legendre(0.0, 8 + math.sqrt(d), m)
    w_s = w_s * stats.chi.pdf(s, d)

    def cdf(u: np.ndarray) -> np.ndarray:
        return special.betainc(k, n - k, stats.ncx2.cdf(np.exp(2 * u)[None, :], d, (s * s)[:, None]))

    u1, w1 = _gauss_legendre(-25.0, 0.0, m)
    u2, w2 = _gauss_legendre(0.0, 3.0, m // 2)
    mean_log_eps = w_s @ (-cdf(u1) @ w1 + (1 - cdf(u2)) @ w2)
    log_vd = 0.5 * d * math.log(math.pi) - special.gammaln(d / 2 + 1)
    return float(special.digamma(n) - special.digamma(k) + log_vd + d * mean_log_eps)


@pytest.mark.parametrize(("n", "k", "d"), [(100, 3, 1), (200, 3, 3), (200, 1, 2)], ids=["d1", "d3", "d2-k1"])
def test_kozachenko_leonenko_matches_its_expectation_on_gaussians(n: int, k: int, d: int) -> None:
    """The mean over replicates lies within 4 standard errors of the estimator's exact
    expectation at this (n, k, d) — bias included, which exceeds that tolerance at d = 3."""
    rng = np.random.default_rng(0)
    est = np.array([kl_entropy(rng.standard_normal((n, d)), k=k) for _ in range(300)])
    stderr = est.std(ddof=1) / math.sqrt(len(est))
    expected = expected_kl_gaussian(n, k, d)
    assert abs(est.mean() - expected) < 4 * stderr
    exact = 0.5 * d * math.log(2 * math.pi * math.e)
    assert expected < exact  # the known negative finite-n bias of the estimator on a Gaussian
    if d == 3:
        assert exact - expected > 4 * stderr  # the test would see an estimator without that bias


def test_kozachenko_leonenko_on_a_correlated_gaussian() -> None:
    gen = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=F64)
    x = torch.randn(3000, 3, generator=gen, dtype=F64) @ torch.linalg.cholesky(cov).T
    exact = 0.5 * math.log(float(torch.det(2 * math.pi * math.e * cov)))
    assert kl_entropy(x, k=3) == pytest.approx(exact, abs=0.06)


def _kl_by_ball_tree(x: np.ndarray, k: int) -> float:
    """A second implementation: scikit-learn's ball tree for the neighbours."""
    from scipy.special import digamma, gammaln
    from sklearn.neighbors import BallTree

    n, d = x.shape
    eps = BallTree(x).query(x, k=k + 1)[0][:, k]
    return float(digamma(n) - digamma(k) + 0.5 * d * math.log(math.pi) - gammaln(d / 2 + 1) + d * np.log(eps).mean())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(5, 60), d=st.integers(1, 5), k=st.integers(1, 4), log_scale=st.floats(-10, 2),
       offset=st.floats(-5, 5), seed=st.integers(0, 2**16))
def test_kl_entropy_agrees_with_a_ball_tree_and_scales_exactly(n, d, k, log_scale, offset, seed) -> None:
    """Against a second neighbour search, and Ĥ(a·x + b) = Ĥ(x) + d log a down to a = 1e-10 —
    where a dense distance matrix rounded the distances of a contracted ensemble to 0."""
    k = min(k, n - 1)
    a = 10.0**log_scale
    y = a * np.random.default_rng(seed).standard_normal((n, d)) + offset
    assert kl_entropy(y, k=k) == pytest.approx(_kl_by_ball_tree(y, k), abs=1e-9)
    x_stored = (y - offset) / a  # exact up to one rounding: y - offset is exact near the offset (Sterbenz)
    assert kl_entropy(y, k=k) == pytest.approx(kl_entropy(x_stored, k=k) + d * math.log(a), abs=1e-9)


def test_contracted_lstm_ensemble_is_finite_and_matches_a_second_tree() -> None:
    """The case of issue 18: an LSTM ensemble contracted to distances ~1e-10 around |h| ~ 0.4
    read −inf with a dense cdist; the tree gives the finite value a ball tree gives."""
    torch.manual_seed(0)
    system = dynprobe.wrap(nn.LSTM(1, 4), dtype=F64)
    ds = entropy(system, samples=64, steps=40, power_iters=1, knn=True, knn_times=[0, 20, 40])
    states = jacobian_stats(system, system.initial_state(64, seed=0), 40).states
    for i, t in enumerate(ds.time.values):
        assert float(ds.knn_entropy[i]) == pytest.approx(_kl_by_ball_tree(states[t].numpy(), 3), abs=1e-9)
    assert np.isfinite(ds.knn_entropy.values).all() and float(ds.knn_entropy[-1]) < -150
    assert (ds.knn_duplicates.values == 0).all()
    assert (np.diff(ds.knn_entropy.values) < 0).all()  # contracting, as the exact change says


def test_repeated_points_make_the_estimate_undefined_not_minus_inf() -> None:
    with pytest.raises(DuplicatePointsError, match="2 of 10 samples coincide") as err:
        kl_entropy(np.vstack([np.zeros((2, 2)), np.random.default_rng(0).standard_normal((8, 2))]), k=3)
    assert err.value.duplicates == 2
    with pytest.raises(DuplicatePointsError):
        kl_entropy(torch.zeros(10, 2), k=1)
    with pytest.raises(ValueError, match="not finite"):
        kl_entropy(np.array([[0.0], [np.inf], [1.0]]), k=1)
    # a map that sends every state to one point: the estimate is NaN, counted and warned about
    collapse = System.from_step(lambda h, u, p: 0.0 * h + 0.25, state_dim=2, init=InitialState(scale=1.0))
    with pytest.warns(RuntimeWarning, match="coincide exactly"):
        ds = entropy(collapse, samples=16, steps=2, knn=True, knn_times=[0, 1])
    assert np.isfinite(ds.knn_entropy.values[0]) and np.isnan(ds.knn_entropy.values[1])
    assert ds.knn_duplicates.values.tolist() == [0, 16]
    ds.attrs["probe"] = "entropy"
    assert "undefined" in dict(ds.dynprobe.summary())["k-NN estimate of H_T - H_0"]


@pytest.mark.parametrize("make", [lambda: nn.RNN(2, 6, num_layers=2), lambda: nn.GRU(2, 5), lambda: nn.LSTM(1, 4)],
                         ids=["rnn2", "gru", "lstm"])
def test_rate_within_the_brackets_and_power_iteration_matches_svd(make) -> None:
    torch.manual_seed(0)
    system = dynprobe.wrap(make().double()).with_drive(dynprobe.constant(0.3))
    ds = entropy(system, samples=24, steps=6)
    assert (ds.rate_lower.values <= ds.rate.values + 1e-12).all() and (ds.rate.values <= ds.rate_upper.values + 1e-12).all()
    assert (ds.log_det.values <= system.state_dim * np.log(ds.sigma_max.values) + 1e-10).all()
    h = system.initial_state(5, seed=1)
    exact = torch.linalg.svdvals(jacobian(system, h))[..., 0]
    torch.testing.assert_close(spectral_norms(system, h, iters=200), exact, rtol=1e-6, atol=0)
    assert float(ds.lipschitz_lower) >= float(ds.lipschitz_visited) - 1e-9


def test_exact_lipschitz_norms_agree_with_power_iteration_from_above(monkeypatch) -> None:
    # up to N = 256 the probe takes ||J||_2 from svdvals; power iteration converges to it from below
    import dynprobe.plugins.entropy.probe as module

    torch.manual_seed(0)
    system = dynprobe.wrap(nn.GRU(2, 12).double()).with_drive(dynprobe.constant(0.3))
    exact = entropy(system, samples=16, steps=4, power_iters=300, seed=3)
    monkeypatch.setattr(module, "EXACT_SVD_MAX", 0)
    power = entropy(system, samples=16, steps=4, power_iters=300, seed=3)
    assert float(exact.lipschitz_lower) >= float(power.lipschitz_lower) * (1 - 1e-12)
    np.testing.assert_allclose(float(exact.lipschitz_lower), float(power.lipschitz_lower), rtol=1e-6)
    assert float(exact.lipschitz_lower) >= float(exact.lipschitz_visited)


def test_elman_weight_bound_is_an_upper_bound() -> None:
    torch.manual_seed(1)
    for nonlinearity in ("tanh", "relu"):
        rnn = nn.RNN(3, 7, num_layers=2, nonlinearity=nonlinearity).double()
        system = dynprobe.wrap(rnn)
        bound = weight_norm_bound(system)
        assert bound.available and bound.norm == "euclidean"
        h = 2 * torch.randn(400, system.state_dim, dtype=F64)
        assert float(torch.linalg.svdvals(jacobian(system, h))[:, 0].max()) <= bound.value + 1e-12
    single = dynprobe.wrap(nn.RNN(2, 5, bias=False).double())
    w = single.params["weight_hh_l0"]
    assert weight_norm_bound(single).value == pytest.approx(float(torch.linalg.matrix_norm(w, ord=2)), rel=1e-12)
    # at h = 0 with no bias, J = W exactly: the power-iteration lower bound reaches the upper bound
    assert float(spectral_norms(single, torch.zeros(1, 5, dtype=F64), iters=300)[0]) == pytest.approx(
        weight_norm_bound(single).value, rel=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_lstm_bound_holds_on_its_box(seed: int) -> None:
    """max row sum of |J| over states in the invariant box never exceeds the bound."""
    gen = torch.Generator().manual_seed(seed)
    H = 4
    lstm = nn.LSTM(2, H).double()
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * (0.3 + seed * 0.4))
    u = torch.tensor([0.7, -0.4], dtype=F64)
    system = dynprobe.wrap(lstm).with_drive(dynprobe.constant(u))
    bound = weight_norm_bound(system)
    _, fbar = lstm_bound(lstm.weight_hh_l0, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0, u.reshape(1, 2))
    hc = torch.rand(3000, 2 * H, generator=gen, dtype=F64) * 2 - 1
    hc[:, H:] *= 1 / (1 - fbar)  # |c_j| <= C_j, the box the step maps into itself
    J = jacobian(system, hc)
    assert float(J.abs().sum(-1).amax()) <= bound.value + 1e-12
    assert "LSTM" in bound.method


def test_contractivity_verdicts() -> None:
    torch.manual_seed(2)
    rnn = nn.RNN(2, 6).double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.5 / torch.linalg.matrix_norm(rnn.weight_hh_l0, ord=2))
    assert entropy(dynprobe.wrap(rnn), samples=8, steps=3).contractivity.item() == "contractive"
    chaotic = entropy(dynprobe.load_system("lstm2d_chaotic"), samples=8, steps=5)
    assert chaotic.contractivity.item() == "not_contractive" and float(chaotic.lipschitz_lower) > 1
    stable = entropy(dynprobe.wrap(dynprobe.model("stable_lstm", hidden_size=6)), samples=8, steps=3)
    assert stable.contractivity.item() == "contractive" and float(stable.lipschitz_upper) < 1
    gru = nn.GRU(1, 3).double()
    with torch.no_grad():
        gru.weight_hh_l0.mul_(0.01)
    ds = entropy(dynprobe.wrap(gru), samples=8, steps=3)
    assert ds.contractivity.item() == "undetermined" and "GRU" in ds.attrs["contractivity_reason"]
    fb = dynprobe.wrap(nn.RNN(3, 3).double()).with_drive(dynprobe.feedback())
    assert "feedback" in weight_norm_bound(fb).method


def test_non_invertible_step_is_reported() -> None:
    rnn = nn.RNN(1, 3, nonlinearity="relu").double()
    with torch.no_grad():
        rnn.bias_hh_l0[:] = torch.tensor([0.0, 0.0, -50.0], dtype=F64)  # unit 2 is always dead
    ds = entropy(dynprobe.wrap(rnn), samples=8, steps=3)
    assert not bool(ds.invertible) and np.isneginf(ds.rate.values).all()


def test_divergence_is_flagged() -> None:
    system = System.from_step(lambda h, u, p: 50.0 * h, state_dim=2)
    with pytest.raises(ProbeParameterError, match="every trajectory"):
        entropy(system, samples=4, steps=8)
    half = System.from_step(lambda h, u, p: torch.where(h[..., :1] > 0, 50.0 * h, 0.5 * h), state_dim=2,
                            init=InitialState(scale=1.0))
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = entropy(half, samples=16, steps=8)
    assert ds.diverged.any() and not ds.diverged.all() and np.isfinite(ds.rate.values).all()


def test_conformance_and_suggest() -> None:
    ds = check_probe("entropy", dynprobe.wrap(nn.RNN(1, 3).double()), samples=8, steps=3, knn=True)
    assert ds.contractivity.dtype.kind == "U" and "rate" in ds
    assert suggest(dynprobe.wrap(nn.LSTM(1, 128, num_layers=2)))["samples"] <= 8
    with pytest.raises(ProbeParameterError, match="ensemble"):
        entropy(System.stack([linear(torch.eye(2, dtype=F64))] * 2))
