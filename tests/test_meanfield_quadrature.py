"""Gaussian expectations of the mean-field theory against independent integrators and closed forms.

Measured in the design phase: plain Gauss–Hermite is off by up to 0.5 in χ₁ once q* is large; the
panelled rule is checked against ``scipy.integrate.quad`` over q ∈ [1e-5, 1e4] (σ_w up to ~100),
not only near σ_w = 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from meanfield_reference import E
from scipy import special, stats

from dynprobe.plugins.meanfield.activations import activation, sigmoid_parts
from dynprobe.plugins.meanfield.quadrature import COARSE, FINE, CachedRule1D, expect_1d, expect_2d

QS = np.geomspace(1e-5, 1e4, 7)
MUS = np.array([-6.0, -1.0, 0.0, 2.0, 5.0])


@pytest.fixture(scope="module")
def references() -> dict:
    out = {}
    for name in ("tanh", "sigmoid", "relu", "erf"):
        parts = activation(name).parts
        for key, fn in {"f2": lambda x, p=parts: p(x)[0] ** 2, "d2": lambda x, p=parts: p(x)[1] ** 2,
                        "d4": lambda x, p=parts: p(x)[1] ** 4}.items():
            out[name, key] = (fn, np.array([[E(fn, q, m) for m in MUS] for q in QS]))
    return out


@pytest.mark.parametrize("name,tol", [("tanh", 2e-9), ("sigmoid", 2e-9), ("relu", 2e-9), ("erf", 1e-8)])
def test_fine_rule_matches_scipy_quad_over_the_whole_grid(references, name, tol):
    Q, M = np.meshgrid(QS, MUS, indexing="ij")
    act = activation(name)
    for key in ("f2", "d2", "d4"):
        fn, ref = references[name, key]
        (got,) = expect_1d(Q.ravel(), M.ravel(), act.breakpoints, lambda x, fn=fn: (fn(x),), FINE)
        # relative error, with an absolute floor of ~1e-15 for values in the far tail (E ≲ 1e-6)
        err = np.abs(got.reshape(Q.shape) - ref) / (np.abs(ref) + 1e-6)
        assert err[QS <= 1e3].max() < tol, f"{name} E[{key}]: worst relative error {err.max():.2e}"
        assert err.max() < 2e-8, f"{name} E[{key}] at q = 1e4: worst relative error {err.max():.2e}"


def test_coarse_rule_is_a_good_start(references):
    Q, M = np.meshgrid(QS, MUS, indexing="ij")
    fn, ref = references["tanh", "d2"]
    (got,) = expect_1d(Q.ravel(), M.ravel(), (0.0,), lambda x: (fn(x),), COARSE)
    assert np.max(np.abs(got.reshape(Q.shape) - ref) / (ref + 1e-13)) < 1e-3


def test_plain_gauss_hermite_would_fail_at_large_q():
    """The failure plain Gauss–Hermite shows at σ_w² = 16, so that the panels are known to matter."""
    x, w = np.polynomial.hermite_e.hermegauss(64)
    q = 16.0
    hermite = np.sum(w / np.sqrt(2 * np.pi) * (1 - np.tanh(np.sqrt(q) * x) ** 2) ** 2)
    (ours,) = expect_1d(np.array([q]), np.array([0.0]), (0.0,), lambda x: ((1 - np.tanh(x) ** 2) ** 2,))
    truth = E(lambda x: (1 - np.tanh(x) ** 2) ** 2, q, 0.0)
    assert abs(ours[0] - truth) < 1e-10 * truth
    assert abs(hermite - truth) > 1e-3 * truth


def test_q_zero_is_the_limit_from_above():
    """At q = 0 the expectation is f(μ); ReLU's kink at μ = 0 averages its two sides (φ′ = ½)."""
    got = expect_1d(np.array([0.0, 0.0]), np.array([0.7, 0.0]), (0.0,), lambda x: (np.tanh(x), (x > 0) * 1.0))
    assert got[0, 0] == pytest.approx(np.tanh(0.7), abs=1e-15)
    assert got[1, 1] == pytest.approx(0.5, abs=1e-15)


def test_cached_rule_reuses_panels_and_stays_accurate():
    rule = CachedRule1D((0.0,))
    idx = np.arange(3)
    q, mu = np.array([0.5, 16.0, 400.0]), np.array([0.0, -1.0, 2.0])
    first = rule.expect(q, mu, idx, lambda x: (sigmoid_parts(x)[1] ** 2,))
    z_id = id(rule._z)
    moved = rule.expect(q[1:] * (1 + 1e-5), mu[1:], idx[1:], lambda x: (sigmoid_parts(x)[1] ** 2,))
    assert id(rule._z) == z_id  # reused, not rebuilt
    for i, k in enumerate((1, 2)):
        ref = E(lambda x: sigmoid_parts(x)[1] ** 2, q[k] * (1 + 1e-5), mu[k])
        assert moved[0, i] == pytest.approx(ref, rel=1e-9)
    assert first.shape == (1, 3)


def _closed_forms(q: float, c: float) -> list[float]:
    """Zero-mean closed forms: erf (Williams 1997), erf′, ReLU and its step (arc-cosine kernel)."""
    return [
        2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q)),
        4 / np.pi / np.sqrt((1 + 2 * q) ** 2 - 4 * q * q * c * c),
        q / (2 * np.pi) * (np.sqrt(1 - c * c) + c * (np.pi - np.arccos(c))),
        (np.pi - np.arccos(c)) / (2 * np.pi),
    ]


@pytest.mark.parametrize("q,c", [(0.3, 0.2), (2.0, 0.9), (50.0, -0.7), (1e3, 0.999), (0.01, 0.5), (5.0, 0.3),
                                 (100.0, 0.99999), (4.0, 0.9999999)])
def test_2d_rule_matches_closed_forms(q, c):
    got = expect_2d(np.array([q]), np.array([0.0]), np.array([c]), (0.0,), lambda a, b: (
        special.erf(a) * special.erf(b), 4 / np.pi * np.exp(-a * a - b * b), np.maximum(a, 0) * np.maximum(b, 0),
        (a > 0) * (b > 0.0)))[:, 0]
    np.testing.assert_allclose(got, _closed_forms(q, c), rtol=1e-7)


@pytest.mark.parametrize("q,mu,c", [(2.0, 0.5, 0.6), (30.0, -1.0, 0.3), (0.5, 1.0, -0.4)])
def test_2d_rule_with_bias_matches_the_bivariate_normal_cdf(q, mu, c):
    """E[step(u₁) step(u₂)] = P(u₁ > 0, u₂ > 0) for means μ: scipy's bivariate normal CDF."""
    (got,) = expect_2d(np.array([q]), np.array([mu]), np.array([c]), (0.0,), lambda a, b: ((a > 0) * (b > 0.0),))
    ref = stats.multivariate_normal(mean=[-mu, -mu], cov=[[q, q * c], [q * c, q]]).cdf([0.0, 0.0])
    assert got[0] == pytest.approx(ref, abs=1e-7)


def test_2d_rule_at_full_correlation_is_the_1d_rule():
    q, mu = np.array([3.0]), np.array([0.4])
    (two,) = expect_2d(q, mu, np.array([1.0]), (0.0,), lambda a, b: (np.tanh(a) * np.tanh(b),))
    (one,) = expect_1d(q, mu, (0.0,), lambda x: (np.tanh(x) ** 2,))
    assert two[0] == pytest.approx(one[0], rel=1e-8)
