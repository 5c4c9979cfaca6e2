"""Mean-field theory: published numbers, closed forms, identities, and independent integrators."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from meanfield_reference import E, reference_minimal, reference_vanilla
from scipy import optimize, special

from dynprobe.plugins.meanfield.theory import Grid, cosine_trajectory, predict


def grid(cell="vanilla", phi="tanh", **kw):
    base = {"sigma_w": 1.0, "sigma_v": 0.0, "sigma_b": 0.0, "mu_b": 0.0, "R": 1.0, "sigma12": 1.0}
    return Grid.of(cell, phi, **{**base, **kw})


def test_chi1_tends_to_one_as_sigma_w_tends_to_one_for_tanh_without_bias():
    sw = np.array([0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1])
    out = predict(grid(sigma_w=sw))
    assert out["converged"].all()
    np.testing.assert_allclose(out["chi_1"][:3], sw[:3] ** 2, rtol=1e-12)  # q* = 0 below: χ₁ = σ_w² φ'(0)²
    gap = np.abs(out["chi_1"] - 1.0)
    # at σ_w = 1 exactly q* = 0 is a double root, approached linearly: q* ~ 1e-11 when the residual stalls
    assert gap[3] < 1e-9 and np.all(np.diff(gap[3:]) > 0) and np.all(np.diff(gap[:4]) < 0)
    assert out["tau"][3] > 1e9  # the critical point: signal propagates (practically) without limit


def test_critical_sigma_w_squared_at_sigma_b_squared_005_is_176():
    """Schoenholz et al. (2017): the order-to-chaos line of tanh at σ_b² = 0.05 is σ_w² ≈ 1.76."""
    def chi(sw2: float) -> float:
        return float(predict(grid(sigma_w=math.sqrt(sw2), sigma_b=math.sqrt(0.05)), correlations=False)["chi_1"]) - 1

    assert optimize.brentq(chi, 1.0, 3.0, xtol=1e-12) == pytest.approx(1.76, abs=0.005)


@pytest.mark.parametrize("cell", ["vanilla", "minimalrnn"])
def test_fixed_points_and_chi1_match_scipy_across_the_whole_grid(cell):
    """σ_w up to 10 (q* up to ~50), both signs of μ_b: where plain Gauss–Hermite breaks down."""
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(0.5, 10, 8), rng.uniform(0, 2, 8), rng.uniform(0, 1, 8),
                           rng.uniform(-4, 6, 8), rng.uniform(0.1, 2, 8)])
    out = predict(Grid.of(cell, "tanh", sigma_w=pts[:, 0], sigma_v=pts[:, 1], sigma_b=pts[:, 2], mu_b=pts[:, 3],
                          R=pts[:, 4], sigma12=1.0), correlations=False)
    ref = reference_vanilla if cell == "vanilla" else reference_minimal
    for i, row in enumerate(pts):
        q, chi = ref(*row)
        assert out["q_star"][i] == pytest.approx(q, rel=1e-10), row
        assert out["chi_1"][i] == pytest.approx(chi, rel=1e-9), row


def test_linear_network_closed_forms():
    """φ(x) = x: q* = c0/(1 − σ_w²), χ₁ = χ_c* = σ_w², c* = (σ_v²RΣ + σ_b²)/(σ_v²R + σ_b²)."""
    sw, sv, sb, R, s12 = 0.8, 0.7, 0.3, 1.5, 0.4
    out = predict(grid(phi="linear", sigma_w=sw, sigma_v=sv, sigma_b=sb, R=R, sigma12=s12))
    c0 = sv**2 * R + sb**2
    assert out["q_star"] == pytest.approx(c0 / (1 - sw**2), rel=1e-10)
    assert out["chi_1"] == pytest.approx(sw**2, rel=1e-12)
    assert out["chi_c"] == pytest.approx(sw**2, rel=1e-9)
    assert out["c_star"] == pytest.approx((sv**2 * R * s12 + sb**2) / c0, rel=1e-9)
    assert out["tau"] == pytest.approx(-1 / math.log(sw**2), rel=1e-9)


def test_relu_closed_form_and_reported_divergence():
    """ReLU, μ_b = 0: E[relu²] = q/2, so q* = c0/(1 − σ_w²/2) and χ₁ = σ_w²/2; no finite q* for σ_w² > 2."""
    sw = np.array([0.5, 1.0, 1.3, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = predict(grid(phi="relu", sigma_w=sw, sigma_v=0.5), correlations=False)
    ok = sw**2 < 2
    np.testing.assert_allclose(out["q_star"][ok], 0.25 / (1 - sw[ok] ** 2 / 2), rtol=1e-11)
    np.testing.assert_allclose(out["chi_1"][ok], sw[ok] ** 2 / 2, rtol=1e-11)
    assert not out["converged"][~ok].any() and np.isnan(out["q_star"][~ok]).all()
    assert "no finite fixed point" in out["reason"][-1]


def test_minimal_Q_star_solves_the_transcendental_equation_of_app_c():
    """App. C eq. (24): F(Q*) = E[(1−σ)²]/E[1−σ²] − Q*/R = 0 (by scipy quad)."""
    sw, sv, mu, R = 3.0, 1.2, 0.7, 0.6
    out = predict(grid("minimalrnn", sigma_w=sw, sigma_v=sv, mu_b=mu, R=R), correlations=False)
    Q, q = float(out["Q_star"]), float(out["q_star"])
    assert q == pytest.approx(sw**2 * Q + sv**2 * R, rel=1e-14)
    num = E(lambda x: (1 - special.expit(x)) ** 2, q, mu)
    den = E(lambda x: 1 - special.expit(x) ** 2, q, mu)
    assert num / den - Q / R == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("cell", ["vanilla", "minimalrnn"])
def test_chi_c_at_c_one_is_chi_1(cell):
    """App. E: at c* = 1 the correlation map's slope (eq. 4 / 9) equals χ₁ (eq. 4 / 13)."""
    from dynprobe.plugins.meanfield import minimal, vanilla
    from dynprobe.plugins.meanfield.activations import activation

    sw, sv, sb, mu, R = 2.5, 1.0, 0.3, 0.5, 0.7
    out = predict(grid(cell, sigma_w=sw, sigma_v=sv, sigma_b=sb, mu_b=mu, R=R), correlations=False)
    q = np.array([float(out["q_star"])])
    one, idx = np.ones(1), np.arange(1)
    if cell == "vanilla":
        cmap = vanilla.correlation_map(activation("tanh"), q, np.array([mu]), np.array([sw**2]),
                                       np.array([sv**2 * R + sb**2]))
    else:
        a, b = minimal.step_coefficients(q, sw**2, sv**2, sb**2, R, 1.0, 1.0, np.array([float(out["mean_gate"])]))
        cmap = minimal.correlation_map(q, np.array([mu]), a, b)
    m, slope = cmap(one, idx)
    assert m[0] == pytest.approx(1.0, abs=1e-9)  # c = 1 is a fixed point when Σ₁₂ = 1
    assert slope[0] == pytest.approx(float(out["chi_1"]), rel=1e-8)


@pytest.mark.parametrize("cell", ["vanilla", "minimalrnn"])
def test_chi_c_is_the_derivative_of_the_correlation_map(cell):
    """Price's theorem: d/dc E_c[f(u₁)g(u₂)] = q E_c[f′g′] — against a central difference."""
    from dynprobe.plugins.meanfield import minimal, vanilla
    from dynprobe.plugins.meanfield.activations import activation

    sw, sv, sb, mu, R, s12 = 2.0, 1.0, 0.2, -0.3, 0.8, 0.3
    out = predict(grid(cell, sigma_w=sw, sigma_v=sv, sigma_b=sb, mu_b=mu, R=R, sigma12=s12))
    q = np.array([float(out["q_star"])])
    if cell == "vanilla":
        cmap = vanilla.correlation_map(activation("tanh"), q, np.array([mu]), np.array([sw**2]),
                                       np.array([sv**2 * R * s12 + sb**2]))
    else:
        a, b = minimal.step_coefficients(q, sw**2, sv**2, sb**2, R, s12, s12, np.array([float(out["mean_gate"])]))
        cmap = minimal.correlation_map(q, np.array([mu]), a, b)
    c, h, idx = float(out["c_star"]), 1e-4, np.arange(1)
    assert cmap(np.array([c]), idx)[0][0] == pytest.approx(c, abs=1e-12)  # c* is a fixed point
    numeric = (cmap(np.array([c + h]), idx)[0][0] - cmap(np.array([c - h]), idx)[0][0]) / (2 * h)
    assert float(out["chi_c"]) == pytest.approx(numeric, rel=1e-6)


def test_gating_gives_long_memory_for_large_bias_whatever_the_input_similarity():
    """§3.2.1: as μ_b → ∞, χ_c* → 1 independent of Σ₁₂ (τ grows without bound)."""
    mu = np.array([0.0, 4.0, 8.0])
    s12 = np.array([0.0, 0.99, 1.0])
    out = predict(Grid.of("minimalrnn", "tanh", sigma_w=6.88, sigma_v=1.39, sigma_b=0.0, mu_b=mu[:, None], R=0.46,
                          sigma12=s12[None, :]))
    assert np.all(out["chi_c"][2] > 0.995) and np.all(out["tau"][2] > 200)
    assert np.all(np.diff(out["tau"][1:], axis=0) > 0)
    # the vanilla RNN has no such escape: input noise (Σ₁₂ < 1) limits τ at every σ_w
    van = predict(Grid.of("vanilla", "tanh", sigma_w=np.linspace(0.5, 3, 26), sigma_v=0.5, sigma_b=0.0, mu_b=0.0,
                          R=1.0, sigma12=0.0))
    assert np.nanmax(van["tau"]) < 20


def test_grid_equals_pointwise_evaluation():
    sw, mu = np.array([0.7, 1.4, 3.0]), np.array([-1.0, 0.5])
    whole = predict(Grid.of("minimalrnn", "tanh", sigma_w=sw[:, None], sigma_v=1.0, sigma_b=0.2, mu_b=mu[None, :],
                            R=0.5, sigma12=0.5))
    for i, j in np.ndindex(3, 2):
        one = predict(Grid.of("minimalrnn", "tanh", sigma_w=sw[i], sigma_v=1.0, sigma_b=0.2, mu_b=mu[j], R=0.5,
                              sigma12=0.5))
        for key in ("q_star", "chi_1", "c_star", "tau"):
            assert whole[key][i, j] == pytest.approx(float(one[key]), rel=1e-11)


@pytest.mark.parametrize("cell", ["vanilla", "minimalrnn"])
def test_cosine_trajectory_settles_at_c_star(cell):
    g = grid(cell, sigma_w=1.8, sigma_v=1.0, sigma_b=0.2, mu_b=0.5, R=0.5, sigma12=0.6)
    out = predict(g)
    mean_term = out["mean_phi"] if cell == "vanilla" else out["mean_gate"]
    traj = cosine_trajectory(g, np.full(80, 0.6), out["q_star"], mean_term)
    assert traj[-1] == pytest.approx(float(out["c_star"]), abs=1e-9)
    # the approach is geometric at rate χ_c* (eq. 4 / 9)
    gaps = np.abs(traj - float(out["c_star"]))
    assert gaps[21] / gaps[20] == pytest.approx(float(out["chi_c"]), rel=1e-3)


def _untied_products(cell: str, out: dict, hyper: dict, T: int, N: int, reps: int, seed: int) -> tuple[float, float]:
    """Monte-Carlo mean and variance of the JJᵀ spectrum after T untied steps at the fixed point."""
    gen = torch.Generator().manual_seed(seed)
    sw, sv, mu, R = hyper["sigma_w"], hyper["sigma_v"], hyper["mu_b"], hyper["R"]
    m1s, vars_ = [], []
    for _ in range(reps):
        P = torch.eye(N, dtype=torch.float64)
        h = math.sqrt(float(out["Q_star"])) * torch.randn(N, generator=gen, dtype=torch.float64)
        q = float(out["q_star"])
        for _ in range(T):
            W = sw / math.sqrt(N) * torch.randn(N, N, generator=gen, dtype=torch.float64)
            if cell == "vanilla":
                e = mu + math.sqrt(q) * torch.randn(N, generator=gen, dtype=torch.float64)
                P = ((1 - torch.tanh(e) ** 2)[:, None] * W) @ P
            else:
                V = sv / math.sqrt(N) * torch.randn(N, N, generator=gen, dtype=torch.float64)
                x = math.sqrt(R) * torch.randn(N, generator=gen, dtype=torch.float64)
                u = torch.sigmoid(W @ h + V @ x + mu)
                P = (torch.diag(u) + (u * (1 - u) * (h - x))[:, None] * W) @ P
                h = u * h + (1 - u) * x
        A = P @ P.T
        m1 = float(torch.trace(A)) / N
        m1s.append(m1)
        vars_.append(float((A * A).sum()) / N - m1 * m1)
    return float(np.mean(m1s)), float(np.mean(vars_))


@pytest.mark.parametrize("cell,hyper", [
    ("vanilla", {"sigma_w": 1.5, "sigma_v": 0.3, "mu_b": 0.0, "R": 1.0}),
    ("minimalrnn", {"sigma_w": 2.0, "sigma_v": 1.0, "mu_b": 2.0, "R": 1.0}),
], ids=["vanilla", "minimalrnn"])
def test_jjt_mean_and_variance_match_untied_monte_carlo(cell, hyper):
    """(1/N) tr JJᵀ = χ₁^T (eq. 11) and the variance of JJᵀ's spectrum — the corrected eq. (12) —
    against products of untied random Jacobians; the printed eq. (12) is off (module docstring)."""
    horizons = (1, 4)
    out = predict(grid(cell, sigma_b=0.0, sigma12=1.0, **hyper), horizons=horizons)
    for k, T in enumerate(horizons):
        m1, var = _untied_products(cell, out, hyper, T, N=500, reps=2, seed=T)
        assert m1 == pytest.approx(out["mean_sq_sv"][k], rel=0.06)
        assert var == pytest.approx(out["var_jjt"][k], rel=0.12)
    printed_var = out["jjt_second_moment_eq12"][0] - out["mean_sq_sv"][0] ** 2
    assert abs(printed_var - out["var_jjt"][0]) > 0.3 * out["var_jjt"][0]


def test_invalid_hyperparameters_are_one_line_errors():
    from dynprobe.errors import ProbeParameterError

    with pytest.raises(ProbeParameterError, match="sigma_w must be >= 0"):
        predict(grid(sigma_w=-1.0))
    with pytest.raises(ProbeParameterError, match="sigma12 is a cosine similarity"):
        predict(grid(sigma12=1.5))
    with pytest.raises(ProbeParameterError, match="unknown activation"):
        Grid.of("vanilla", "tanhh", sigma_w=1, sigma_v=1, sigma_b=0, mu_b=0, R=1, sigma12=1)
    with pytest.raises(ProbeParameterError, match="unknown cell"):
        Grid.of("gru", "tanh", sigma_w=1, sigma_v=1, sigma_b=0, mu_b=0, R=1, sigma12=1)
