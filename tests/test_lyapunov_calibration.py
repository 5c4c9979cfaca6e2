"""Calibration of the lyapunov probe's standard errors, by repeated runs.

Over R independent estimates of one exponent, a calibrated standard error makes the z-scores
z = (estimate − reference) / stderr spread like a unit normal. The acceptance bands come from R:
the count of |z| ≤ 1 is Binomial(R, 0.6827) and the count of |z| ≤ 2 is Binomial(R, 0.9545)
when the errors are right, and each count must lie inside the band that such a binomial leaves
with probability 1e-6 — so a correct estimator fails on no machine, while one that is 2x
overconfident (the old pooled samples x blocks error on a driven tanh RNN near the edge,
measured: 42 % and 72 % coverage at R = 100) or grossly conservative fails every time.

References: a published exponent (Hénon, λ₁ = 0.41922), or the mean over the R repeats with
the variance accounting for that (the deviations from the mean have variance (1 − 1/R)·σ²).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from systems import henon_system
from torch import nn

import dynprobe

HENON_LAMBDA_1 = 0.41922  # Sprott, "Chaos and Time-Series Analysis" (2003), table of exponents
ALPHA = 1e-6


def band(R: int, p: float, alpha: float = ALPHA) -> tuple[int, int]:
    """Counts a Binomial(R, p) falls outside with probability <= alpha/2 on either side."""
    return int(stats.binom.ppf(alpha / 2, R, p)), int(stats.binom.isf(alpha / 2, R, p))


def assert_calibrated(z: np.ndarray, what: str) -> None:
    z = np.asarray(z, dtype=np.float64)
    assert np.isfinite(z).all(), what
    R = z.size
    for c, p in ((1.0, 0.6827), (2.0, 0.9545)):
        lo, hi = band(R, p)
        count = int(np.sum(np.abs(z) <= c))
        assert lo <= count <= hi, (f"{what}: {count} of {R} |z| <= {c}, band [{lo}, {hi}]; "
                                   f"rms z = {np.sqrt(np.mean(z**2)):.2f}")


def test_band_rejects_a_twice_overconfident_error():
    # the test's own power: 2x too small errors at R = 100 leave the 1-sigma band, right ones stay in
    rng = np.random.default_rng(0)
    assert_calibrated(rng.standard_normal(100), "unit normal")
    with pytest.raises(AssertionError, match="band"):
        assert_calibrated(2 * rng.standard_normal(100), "2x overconfident")
    with pytest.raises(AssertionError, match="band"):
        assert_calibrated(0.3 * rng.standard_normal(100), "3x conservative")


@pytest.mark.parametrize("phi", [0.0, 0.6, 0.9])
def test_long_run_factor_of_an_ar1_series_is_its_closed_form(phi):
    # blocks x_b = φ x_{b-1} + ε_b: the variance of their mean is (1 + φ)/(1 - φ) times the naive one
    from dynprobe.plugins.lyapunov.uncertainty import long_run_factor

    rng = np.random.default_rng(1)
    S, B = 16, 1000
    eps = rng.standard_normal((S, B + 200))
    x = np.zeros_like(eps)
    for b in range(1, B + 200):
        x[:, b] = phi * x[:, b - 1] + eps[:, b]
    x = x[:, 200:]
    y = (x - x.mean(axis=1, keepdims=True))[..., None]  # [sample, block, k = 1]
    # the estimator's noise: ~ sqrt(2·(lags summed)/(S·B)), a few percent here
    assert float(long_run_factor(y)[0]) == pytest.approx((1 + phi) / (1 - phi), rel=0.15)


def test_anticorrelated_blocks_are_never_credited_below_batch_means():
    from dynprobe.plugins.lyapunov.uncertainty import long_run_factor

    y = np.tile([1.0, -1.0], (4, 50))[..., None]  # perfectly alternating: true factor ~ 0
    assert float(long_run_factor(y)[0]) == 1.0


def test_per_sample_errors_are_calibrated_on_the_henon_map():
    # 400 initial conditions, each its own estimate of λ₁ with its own standard error
    ds = dynprobe.run("lyapunov", henon_system(), steps=1000, samples=400, k=1, seed=11)
    z = (ds.exponents.values[:, 0] - HENON_LAMBDA_1) / ds.sample_stderr.values[:, 0]
    assert_calibrated(z, "Hénon, per sample")
    assert abs(float(ds.exponent_mean[0]) - HENON_LAMBDA_1) < 5 * float(ds.exponent_stderr[0])


def _repeat_z(mean: np.ndarray, stderr: np.ndarray) -> np.ndarray:
    R = mean.size
    return (mean - mean.mean()) / stderr * math.sqrt(R / (R - 1))


def _driven_rnn_repeats(n: int, gain: float, R: int, samples: int, steps: int = 1000, burn_in: int = 100):
    """R repeats of a bias-free tanh RNN (W ~ N(0, gain²/N)) under a random input, one independent
    input sequence per repeat (an ensemble of R copies, [time, network, 1, 1] inputs); the samples
    of a repeat share its input, so for λ₁ < 0 they converge onto one trajectory."""
    torch.manual_seed(0)
    module = nn.RNN(1, n, bias=False).double()
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.randn(n, n, dtype=torch.float64) * gain / n**0.5)
    U = torch.randn(steps + burn_in, R, 1, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ens = dynprobe.System.stack([dynprobe.wrap(module)] * R).with_drive(dynprobe.sequence(U))
    return dynprobe.run("lyapunov", ens, steps=steps, burn_in=burn_in, samples=samples, k=1, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("n, samples, sign", [(32, 8, -1), (32, 1, -1), (16, 8, +1)],
                         ids=["edge-ordered-8-samples", "edge-ordered-1-sample", "edge-chaotic-8-samples"])
def test_mean_errors_are_calibrated_near_the_edge(n, samples, sign):
    # g = 1.7: λ₁ ≈ -0.006 (N = 32) and ≈ +0.0065 (N = 16), within the marginal band
    ds = _driven_rnn_repeats(n, 1.7, R=100, samples=samples)
    mean, se = ds.exponent_mean.values[:, 0], ds.exponent_stderr.values[:, 0]
    assert np.sign(mean.mean()) == sign and abs(mean.mean()) < 0.01
    assert_calibrated(_repeat_z(mean, se), f"tanh RNN N={n}, {samples} samples")


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1000, 300], ids=["100-blocks", "30-short-blocks"])
def test_mean_errors_are_calibrated_on_the_henon_map_over_seeds(steps):
    # 300 steps: a short run's 30 blocks of 10 steps (MIN_BLOCK_STEPS) must be as honest as 100 of 10
    runs = [dynprobe.run("lyapunov", henon_system(), steps=steps, samples=4, k=1, seed=100 + r) for r in range(60)]
    assert runs[0].attrs["blocks"] == min(100, steps // 10)
    mean = np.array([float(ds.exponent_mean[0]) for ds in runs])
    se = np.array([float(ds.exponent_stderr[0]) for ds in runs])
    assert_calibrated((mean - HENON_LAMBDA_1) / se, f"Hénon, {steps} steps, mean of 4 samples, 60 seeds")


@pytest.mark.slow
def test_anticorrelated_rates_give_conservative_errors_never_overconfident():
    # on a limit cycle (bias-free tanh RNN, g = 1.45) the local rates oscillate and the exponent's
    # error decays faster than 1/sqrt(T); the batch-means error (factor >= 1) is then conservative
    torch.manual_seed(0)
    module = nn.RNN(2, 32, bias=False).double()
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.randn(32, 32, dtype=torch.float64) * 1.45 / 32**0.5)
    system = dynprobe.wrap(module)
    runs = [dynprobe.run("lyapunov", system, steps=1000, samples=4, k=1, seed=1000 + r) for r in range(40)]
    mean = np.array([float(ds.exponent_mean[0]) for ds in runs])
    se = np.array([float(ds.exponent_stderr[0]) for ds in runs])
    z = _repeat_z(mean, se)
    lo, _ = band(40, 0.9545)
    assert np.sum(np.abs(z) <= 2) >= lo and np.sqrt(np.mean(z**2)) < 1
