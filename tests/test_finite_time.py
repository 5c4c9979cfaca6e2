"""The finite_time probe against exact answers: a constant Jacobian (no fluctuations), a map whose
local rates are i.i.d. by construction (var = σ²/τ), the logistic map at r = 4 (a coboundary:
var = π²/(6τ²) at large τ, var = π²/12 at τ = 1), and the Hénon map's constant Jacobian determinant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from systems import henon_system, linear_system, logistic_system

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.registry import registry


def _within(got, want, se, sigmas=4.0):
    got, want, se = np.asarray(got), np.asarray(want), np.asarray(se)
    assert np.all(np.abs(got - want) <= sigmas * se), (got, want, se)


def test_constant_jacobian_has_exact_rates_and_no_fluctuations():
    A = torch.tensor([[0.9, 5.0, 1.0], [0.0, -0.5, 3.0], [0.0, 0.0, 1.2]], dtype=torch.float64)
    system = linear_system(A).with_init(dynprobe.InitialState(center=torch.zeros(3), scale=0.0))
    ds = dynprobe.run("finite_time", system, steps=64, burn_in=0, forward_transient=120, taus=(1, 4, 16))
    want = np.log([1.2, 0.9, 0.5])
    np.testing.assert_allclose(ds.local_rate.isel(sample=0).values, np.broadcast_to(want, (64, 3)), atol=1e-13)
    np.testing.assert_allclose(ds.ftle_mean.values, np.broadcast_to(want, (3, 3)), atol=1e-13)
    assert float(ds.ftle_var.max()) < 1e-25
    np.testing.assert_array_equal(ds.ftle_positive.values, np.broadcast_to([1.0, 0.0, 0.0], (3, 3)))


def _gain_map(mu: float, sigma: float, steps: int, samples: int, seed: int = 0) -> tuple[dynprobe.System, torch.Tensor]:
    """x' = (e^{μ + σ u_t} x) mod 1 driven by i.i.d. u_t ~ N(0, 1): the local rate is exactly
    μ + σ u_t, so Λ(τ) ~ N(μ, σ²/τ)."""
    U = torch.randn(steps, samples, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    f64 = torch.float64
    system = dynprobe.System.from_step(
        lambda h, u, p: torch.remainder(torch.exp(p["mu"] + p["sigma"] * u) * h, 1.0), state_dim=1, input_dim=1,
        params={"mu": torch.tensor(mu, dtype=f64), "sigma": torch.tensor(sigma, dtype=f64)},
        init=dynprobe.InitialState(low=0.1, high=0.9), drive=dynprobe.sequence(U), name="gain_map")
    return system, U


def test_iid_local_rates_give_exact_windows_and_variance_sigma2_over_tau():
    mu, sigma, burn, steps, samples = -0.2, 0.7, 10, 320, 12
    system, U = _gain_map(mu, sigma, burn + steps, samples=samples)
    taus = (1, 2, 4, 8, 16, 32)
    ds = dynprobe.run("finite_time", system, steps=steps, burn_in=burn, forward_transient=0, samples=samples, taus=taus)
    rates = (mu + sigma * U[burn:, :, 0]).numpy()  # [step, sample]
    np.testing.assert_allclose(ds.local_rate.sel(exponent=1).values, rates.T, atol=1e-12)
    for tau in taus:
        windows = rates.reshape(steps // tau, tau, samples).mean(1)
        one = ds.sel(tau=tau, exponent=1)
        np.testing.assert_allclose(float(one.ftle_mean), windows.mean(), atol=1e-12)
        np.testing.assert_allclose(float(one.ftle_var), windows.var(ddof=1), rtol=1e-9)
    one = ds.sel(exponent=1)
    _within(one.ftle_var.values, sigma**2 / np.asarray(taus), one.ftle_var_stderr.values)
    _within(one.ftle_mean.values, mu, one.ftle_mean_stderr.values)
    # coarse, given the per-tau checks above: diffusive decay, D = sigma^2 / 2
    assert -1.4 < float(one.var_decay_slope) < -0.6
    assert abs(float(one.diffusion) / (sigma**2 / 2) - 1) < 0.4


def test_logistic_r4_is_a_coboundary_variance_falls_like_one_over_tau_squared():
    """log|f'(x_t)| = ln 2 + g(θ_{t+1}) − g(θ_t) with g = log|sin πθ| (x = sin²(πθ/2)), so
    τ Λ(τ) − τ ln 2 telescopes: var Λ(τ) → 2 Var g / τ² = π²/(6τ²); at τ = 1 var = π²/12."""
    steps, samples = 4096, 8
    ds = dynprobe.run("finite_time", logistic_system(4.0), steps=steps, samples=samples, k=1, forward_transient=0,
                      taus=(1, 8, 16, 32, 64))
    one = ds.sel(exponent=1)
    _within(one.ftle_mean.values, math.log(2), one.ftle_mean_stderr.values)
    _within(one.ftle_var.sel(tau=1), math.pi**2 / 12, one.ftle_var_stderr.sel(tau=1))
    big = one.sel(tau=[16, 32, 64])
    _within(big.ftle_var.values * big.tau.values**2, math.pi**2 / 6, big.ftle_var_stderr.values * big.tau.values**2)
    assert float(one.var_decay_slope) < -1.6  # -1 would be diffusive
    # windows tile the run: every tau's mean is the run's mean, which is lyapunov's exponent exactly
    ly = dynprobe.run("lyapunov", logistic_system(4.0), steps=steps, samples=samples, k=1)
    np.testing.assert_allclose(ds.exponents.values, ly.exponents.values, rtol=1e-12)
    np.testing.assert_allclose(one.ftle_mean.values, float(ly.exponent_mean[0]), rtol=1e-12)


def test_henon_local_rates_sum_to_log_b_at_every_step():
    ds = dynprobe.run("finite_time", henon_system(), steps=200, samples=2, taus=(1, 5, 10))
    np.testing.assert_allclose(ds.local_rate.sum("exponent").values, math.log(0.3), atol=1e-13)
    np.testing.assert_allclose(ds.ftle_var.sel(exponent=1).values, ds.ftle_var.sel(exponent=2).values, rtol=1e-9)


@pytest.mark.parametrize("mu, sigma, words", [
    (-0.05, 0.5, "transient expansion"), (0.05, 0.5, "intermittent"), (-1.0, 0.1, "steady")])
def test_verdict_tells_transient_expansion_from_intermittency(mu, sigma, words):
    system, _ = _gain_map(mu, sigma, 10 + 320, samples=4)
    ds = dynprobe.run("finite_time", system, steps=320, burn_in=10, forward_transient=0, samples=4)
    (verdict,) = registry().probe("finite_time").verdicts(ds)
    assert verdict.verdict.startswith(words), verdict
    assert "16-step windows" in verdict.verdict and "diffusive" in verdict.evidence


@pytest.mark.parametrize("kw, match", [
    ({"taus": (0, 4)}, r"taus \(0, 4\) must lie in 1..steps/2=20"), ({"taus": (21,)}, "must lie in 1..steps/2=20"),
    ({"k": 2}, "k=2 is outside 1..N=1"), ({"steps": 1}, "need steps >= 2")], ids=["zero", "long", "k", "steps"])
def test_bad_parameters_get_one_line_errors(kw, match):
    with pytest.raises(ProbeParameterError, match=match):
        dynprobe.run("finite_time", logistic_system(4.0), **{"steps": 40, **kw})
