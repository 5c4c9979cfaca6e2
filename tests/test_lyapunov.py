"""The lyapunov probe against systems with exact answers (each oracle could fail)."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from systems import henon_system, linear_system, logistic_system
from torch import nn

import dynprobe
from dynprobe.errors import DriveError, ProbeParameterError
from dynprobe.testing import check_probe


def _at_origin(system):
    """Start on the fixed point 0: the state stays finite, the tangents see A at every step."""
    return system.with_init(dynprobe.InitialState(center=torch.zeros(system.state_dim), scale=0.0))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 3.0), st.sampled_from([-1.0, 1.0])), min_size=1, max_size=5,
                unique_by=lambda t: round(t[0], 1)))
def test_diagonal_linear_map_gives_log_abs_diagonal(entries):
    a = torch.tensor([s * d for d, s in entries], dtype=torch.float64)
    ds = dynprobe.run("lyapunov", _at_origin(linear_system(torch.diag(a))), steps=2000, burn_in=0)
    expected = np.sort(np.log(np.abs(a.numpy())))[::-1]
    # O(1/T) transient of the random initial tangent block: log of a cosine, over T steps
    np.testing.assert_allclose(ds.exponent_mean.values, expected, atol=5e-3)


def test_non_normal_linear_map_gives_log_abs_eigenvalues():
    # upper-triangular, strongly non-normal: singular values differ from |eigenvalues|
    A = torch.tensor([[0.9, 5.0, 1.0], [0.0, -0.5, 3.0], [0.0, 0.0, 1.2]], dtype=torch.float64)
    assert not np.allclose(np.linalg.svd(A.numpy())[1], [1.2, 0.9, 0.5], atol=0.1)
    ds = dynprobe.run("lyapunov", _at_origin(linear_system(A)), steps=4000, burn_in=0, samples=2)
    np.testing.assert_allclose(ds.exponent_mean.values, np.log([1.2, 0.9, 0.5]), atol=2e-3)


def test_logistic_map_at_r4_has_exponent_ln2():
    ds = dynprobe.run("lyapunov", logistic_system(4.0), steps=20000, samples=8)
    lam, se = float(ds.exponent_mean[0]), float(ds.exponent_stderr[0])
    assert abs(lam - math.log(2)) < max(4 * se, 5e-3), (lam, se)
    assert ds.regime.item() == "chaotic"


def test_henon_spectrum_and_exact_sum():
    ds = dynprobe.run("lyapunov", henon_system(), steps=20000, burn_in=500, samples=4)
    lam = ds.exponents.values  # [sample, 2]
    assert abs(ds.exponent_mean.values[0] - 0.419) < 0.01
    np.testing.assert_allclose(lam.sum(-1), math.log(0.3), rtol=0, atol=1e-6)
    assert 1.2 < float(ds.kaplan_yorke_dimension.mean()) < 1.3  # published 1.26


def test_sum_of_exponents_equals_mean_log_abs_det_jacobian():
    torch.manual_seed(3)
    module = nn.RNN(2, 6).double()
    with torch.no_grad():
        module.weight_hh_l0.mul_(3.0)
    system = dynprobe.wrap(module, drive=dynprobe.constant([0.3, -0.1]))
    steps, burn_in = 300, 20
    ds = dynprobe.run("lyapunov", system, steps=steps, burn_in=burn_in, seed=5)
    # independent computation: the same trajectory, Jacobians by autograd, slogdet
    traj = system.trajectory(system.initial_state(1, seed=5), burn_in + steps)[burn_in:-1, 0]
    logdet = [torch.linalg.slogdet(torch.autograd.functional.jacobian(lambda x: system.map(x[None])[0], h))[1]
              for h in traj]
    np.testing.assert_allclose(float(ds.exponents.sum()), float(torch.stack(logdet).mean()), rtol=1e-10)


def test_top_k_equals_the_first_k_of_the_full_spectrum():
    torch.manual_seed(0)
    system = dynprobe.wrap(nn.GRU(1, 6).double())
    with torch.no_grad():
        system = system.with_params(weight_hh_l0=3 * system.params["weight_hh_l0"])
    full = dynprobe.run("lyapunov", system, steps=3000, samples=2)
    top = dynprobe.run("lyapunov", system, steps=3000, samples=2, k=3)
    np.testing.assert_allclose(top.exponent_mean.values, full.exponent_mean.values[:3], atol=3e-3)


def test_lstm_spectrum_has_h_and_c_directions():
    system = dynprobe.wrap(nn.LSTM(2, 3, num_layers=2), dtype=torch.float64)
    ds = dynprobe.run("lyapunov", system, steps=50, burn_in=5)
    assert ds.sizes["exponent"] == 2 * 2 * 3


def test_chaotic_lstm_is_chaotic():
    ds = dynprobe.run("lyapunov", dynprobe.load_system("lstm2d_chaotic"), steps=4000, samples=2)
    assert ds.regime.item() == "chaotic"
    assert float(ds.exponent_mean[0]) > 10 * float(ds.exponent_stderr[0]) > 0
    assert float(ds.exponent_mean.sum()) < 0  # dissipative


def test_float32_agrees_with_float64():
    # Two precisions of a chaotic map follow different trajectories after a few dozen steps, so
    # the two estimates are independent draws: their difference is judged by the results' own
    # standard errors (4 sigma of the difference), never by a fixed tolerance.
    system = dynprobe.load_system("lstm2d_chaotic")
    f64 = dynprobe.run("lyapunov", system, steps=3000, samples=4)
    f32 = dynprobe.run("lyapunov", system.to(torch.float32), steps=3000, samples=4)
    diff = f32.exponent_mean.values - f64.exponent_mean.values
    sigma = np.hypot(f32.exponent_stderr.values, f64.exponent_stderr.values)
    assert np.all(np.isfinite(sigma)) and np.all(sigma > 0), sigma
    assert np.all(np.abs(diff) <= 4 * sigma), (diff, sigma)
    assert f32.attrs["dtype"] == "float32"


def test_ensemble_equals_separate_runs():
    systems = [logistic_system(r) for r in (2.9, 3.5, 3.9)]
    ens = dynprobe.run("lyapunov", dynprobe.System.stack(systems), steps=500, samples=2, seed=1)
    assert ens.exponents.dims == ("network", "sample", "exponent")
    for i, s in enumerate(systems):
        one = dynprobe.run("lyapunov", s, steps=500, samples=2, seed=1)
        np.testing.assert_allclose(ens.exponents.values[i], one.exponents.values, rtol=1e-12)
    assert list(ens.regime.values) == ["ordered", "ordered", "chaotic"]


def test_sequence_drive_gives_conditional_exponents():
    # h' = a h + u: the input does not change the linearization, so λ = log|a| exactly
    s = dynprobe.System.from_step(lambda h, u, p: 0.7 * h + u, state_dim=1, input_dim=1, dtype=torch.float64)
    U = torch.randn(400, 2, 1, dtype=torch.float64)
    ds = dynprobe.run("lyapunov", s.with_drive(dynprobe.sequence(U)), steps=300, burn_in=100, samples=2)
    np.testing.assert_allclose(ds.exponents.values, math.log(0.7), rtol=1e-12)
    with pytest.raises(DriveError, match="has 400 steps but the run needs 500"):
        dynprobe.run("lyapunov", s.with_drive(dynprobe.sequence(U)), steps=400, burn_in=100)


def test_reorthonormalizing_less_often_keeps_the_leading_exponents():
    system = dynprobe.load_system("lstm2d_chaotic")
    every = dynprobe.run("lyapunov", system, steps=2000, seed=2)
    sparse = dynprobe.run("lyapunov", system, steps=2000, seed=2, reorth_every=5)
    auto = dynprobe.run("lyapunov", system, steps=2000, seed=2, reorth_every="auto")
    np.testing.assert_allclose(sparse.exponent_mean.values[:2], every.exponent_mean.values[:2], atol=1e-8)
    # 100 blocks of 20 steps: m = 5 sees the same blocks as m = 1, hence the same standard errors
    assert every.attrs["blocks"] == sparse.attrs["blocks"] == 100
    np.testing.assert_allclose(sparse.exponent_stderr.values[:2], every.exponent_stderr.values[:2], rtol=1e-5)
    np.testing.assert_allclose(auto.exponent_mean.values, every.exponent_mean.values, atol=1e-6)
    assert auto.attrs["reorth_every"] == "auto"


def test_diverging_trajectory_is_flagged_not_averaged():
    s = linear_system(torch.tensor([[2.0]])).with_init(dynprobe.InitialState(center=torch.tensor([1.0]), scale=0.1))
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = dynprobe.run("lyapunov", s, steps=1200, burn_in=0, samples=2)
    assert bool(ds.diverged.all())
    assert np.isnan(ds.exponents.values).all() and np.isnan(ds.exponent_mean.values).all()


def test_kaplan_yorke_and_entropy_rate_follow_from_the_spectrum():
    from dynprobe.plugins.lyapunov import kaplan_yorke

    np.testing.assert_allclose(kaplan_yorke(np.array([0.5, -0.2, -1.0])), 2 + 0.3 / 1.0)
    np.testing.assert_allclose(kaplan_yorke(np.array([-0.1, -0.2])), 0.0)
    np.testing.assert_allclose(kaplan_yorke(np.array([0.3, 0.1])), 2.0)
    ds = dynprobe.run("lyapunov", henon_system(), steps=2000, burn_in=200)
    lam = ds.exponents.values[0]
    assert float(ds.entropy_rate[0]) == pytest.approx(lam[lam > 0].sum())
    np.testing.assert_allclose(ds.timescale.values[0][lam < 0], -1 / lam[lam < 0])


def test_bad_parameters_are_one_line_errors():
    s = linear_system(torch.eye(3))
    with pytest.raises(ProbeParameterError, match="k=4 is outside 1..N=3; pass 1 <= k <= 3 or k=None"):
        dynprobe.run("lyapunov", s, k=4)
    with pytest.raises(ProbeParameterError, match="reorth_every=600 must lie in 1..steps/2=500"):
        dynprobe.run("lyapunov", s, reorth_every=600)


def test_conformance_and_reproducibility():
    ds = check_probe("lyapunov", henon_system(), steps=300, samples=3, seed=7)
    assert ds.attrs["seed"] == 7 and ds.attrs["probe"] == "lyapunov"
    other = dynprobe.run("lyapunov", henon_system(), steps=300, samples=3, seed=8)
    assert not np.array_equal(other.exponents.values, ds.exponents.values)


def test_traced_and_eager_runs_agree(monkeypatch):
    system = dynprobe.wrap(nn.LSTM(2, 4), dtype=torch.float64)
    traced = dynprobe.run("lyapunov", system, steps=1000, burn_in=10)
    assert traced.attrs["linearization"] == "traced"
    monkeypatch.setenv("DYNPROBE_NO_TRACE", "1")
    eager = dynprobe.run("lyapunov", system, steps=1000, burn_in=10)
    assert eager.attrs["linearization"].startswith("eager")
    np.testing.assert_allclose(traced.exponents.values, eager.exponents.values, rtol=1e-9)


@pytest.mark.parametrize("r, regime", [(2.9, "ordered"), (3.9, "chaotic")])
def test_verdicts_name_the_regime_and_memory(r, regime):
    from dynprobe.plugins.lyapunov import verdicts

    ds = dynprobe.run("lyapunov", logistic_system(r), steps=2000, samples=2)
    found = {v.topic: v for v in verdicts(ds)}
    assert found["regime"].verdict == regime
    lam = float(ds.exponent_mean[0])
    assert f"{lam:+.4f}" in found["regime"].evidence
    if regime == "ordered":
        assert f"{np.log(100) / -lam:.3g}" in found["memory"].verdict
    else:
        assert f"{1 / lam:.1f}" in found["memory"].verdict


def test_marginal_linear_rotation_is_near_the_edge():
    from dynprobe.plugins.lyapunov import verdicts

    c, s = math.cos(0.3), math.sin(0.3)
    ds = dynprobe.run("lyapunov", linear_system(torch.tensor([[c, -s], [s, c]])), steps=500)
    assert ds.regime.item() == "marginal"
    regime, memory = verdicts(ds)
    assert regime.verdict == "near the edge of chaos"
    assert memory.verdict.startswith("long memory")


# ---------------------------------------------------------------- standard errors and attractors


def _driven_tanh(a: float = 0.9, steps: int = 1200, seed: int = 0) -> dynprobe.System:
    """h' = tanh(a h + u_t), one input sequence for every sample: λ = E log|a (1 - h'²)| < 0, so
    every trajectory converges onto the one the input dictates (a random attractor)."""
    U = torch.randn(steps, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = dynprobe.System.from_step(lambda h, u, p: torch.tanh(p["a"] * h + u), state_dim=1, input_dim=1,
                                  params={"a": torch.tensor(a, dtype=torch.float64)})
    return s.with_drive(dynprobe.sequence(U))


def test_samples_that_follow_one_input_count_as_one():
    # after the burn-in the 8 trajectories coincide: 8 samples carry the information of one, so
    # the error of their mean must not shrink like 1/sqrt(8) (S x B block means are not independent)
    system = _driven_tanh()
    one = dynprobe.run("lyapunov", system, steps=1000, samples=1, seed=4)
    eight = dynprobe.run("lyapunov", system, steps=1000, samples=8, seed=4)
    assert np.ptp(eight.exponents.values) < 1e-6  # they did synchronize
    ratio = float(eight.exponent_stderr[0] / one.exponent_stderr[0])
    assert 0.9 < ratio < 1.1, ratio
    assert int(eight.attractors) == 1


def test_stderr_is_the_larger_of_within_and_between():
    ds = dynprobe.run("lyapunov", henon_system(), steps=1000, samples=6, seed=2)
    w, b, se = (ds[v].values for v in ("exponent_stderr_within", "exponent_stderr_between", "exponent_stderr"))
    np.testing.assert_array_equal(se, np.maximum(w, b))
    # the between term is the plain spread of the per-sample exponents
    np.testing.assert_allclose(b, ds.exponents.std("sample", ddof=1).values / np.sqrt(6), rtol=1e-12)
    one = dynprobe.run("lyapunov", henon_system(), steps=1000, samples=1, seed=2)
    assert np.isnan(one.exponent_stderr_between.values).all()
    np.testing.assert_array_equal(one.exponent_stderr.values, one.exponent_stderr_within.values)


def test_block_steps_add_up_to_the_run_for_any_reorthonormalization_interval():
    from dynprobe.linearize import TangentMap, qr_positive
    from dynprobe.tangent import qr_iterate

    system = dynprobe.load_system("lstm2d_chaotic")
    # the step counts of the blocks add up to the run, also when m does not divide it; intervals
    # end at block edges (an interval shorter than m closes a block), so the blocks split the run
    # evenly whatever m is
    h = system.initial_state(2, seed=1)
    n = system.state_dim
    q = qr_positive(torch.randn(2, n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    for m in (1, 5, 7):
        run = qr_iterate(TangentMap(system, trace=False), h, q, steps=103, reorth_every=m, blocks=10)
        assert sum(run.block_steps) == 103, (m, run.block_steps)
        assert len(run.block_steps) == 10 and max(run.block_steps) - min(run.block_steps) <= 1, (m, run.block_steps)
        assert sum(run.intervals) == 103 and max(run.intervals) <= m, (m, run.intervals)
    # and each block's sum is exactly its steps' worth of growth: log|a_i| per step for diag(a)
    linear = linear_system(torch.diag(torch.tensor([1.5, 0.5], dtype=torch.float64)))
    eye = torch.eye(2, dtype=torch.float64).expand(1, 2, 2).contiguous()
    for m in (1, 5, 7):
        start = torch.ones(1, 2, dtype=torch.float64)
        run = qr_iterate(TangentMap(linear, trace=False), start, eye, steps=103, reorth_every=m, blocks=10)
        rates = torch.log(torch.tensor([1.5, 0.5], dtype=torch.float64))
        expected = torch.tensor(run.block_steps, dtype=torch.float64)[:, None] * rates
        torch.testing.assert_close(run.block_log_r[:, 0], expected, rtol=1e-12, atol=1e-12)


def _two_attractor_map() -> dynprobe.System:
    """x ↦ 4x(1 - x) on [0, 1] (chaos, λ = ln 2) and x ↦ (x - 1)/2 below 0 (the fixed point -1,
    λ = ln ½): the sign of the initial state decides the attractor."""
    return dynprobe.System.from_step(lambda h, u, p: torch.where(h >= 0, 4 * h * (1 - h), 0.5 * h - 0.5), state_dim=1,
                                     init=dynprobe.InitialState(low=-1.0, high=1.0), name="two_attractors")


def test_samples_on_different_attractors_are_labelled_and_warned():
    from dynprobe.plugins.lyapunov import summary, verdicts

    system = _two_attractor_map()
    with pytest.warns(RuntimeWarning, match="reach 2 attractors with different largest exponents"):
        ds = dynprobe.run("lyapunov", system, steps=2000, samples=12, seed=3)
    x0 = system.initial_state(12, seed=3)[:, 0].numpy()
    expected = np.where(x0 >= 0, 0, 1)  # 0 = the group with the largest exponent (the chaotic one)
    assert 0 < expected.sum() < 12
    np.testing.assert_array_equal(ds.attractor.values, expected)
    assert int(ds.attractors) == 2
    lam = ds.exponents.values[:, 0]
    np.testing.assert_allclose(lam[expected == 1], math.log(0.5), atol=1e-3)
    assert abs(lam[expected == 0].mean() - math.log(2)) < 0.02
    # the between-sample spread dominates the error of the mean over both attractors
    assert float(ds.exponent_stderr_between[0]) > 10 * float(ds.exponent_stderr_within[0])
    assert any(v.topic == "attractors" and "2 attractors" in v.verdict for v in verdicts(ds))
    assert dict(summary(ds))["attractors (by lambda_1)"].startswith("2: lambda_1 = +0.69")


def test_one_attractor_is_one_group():
    ds = dynprobe.run("lyapunov", henon_system(), steps=1000, samples=16, seed=5)
    assert int(ds.attractors) == 1 and (ds.attractor.values == 0).all()


# ---------------------------------------------------------------- the regime verdict's band


@pytest.mark.parametrize("lam, se, regime", [
    (0.02, 0.01, "marginal"),      # inside 3·stderr = 0.03
    (0.0299, 0.01, "marginal"),
    (0.0301, 0.01, "chaotic"),
    (-0.0299, 0.01, "marginal"),
    (-0.0301, 0.01, "ordered"),
    (0.75, 0.25, "marginal"),      # exactly on the band (3 x 0.25 is exact): strictly beyond is needed
    (0.7500001, 0.25, "chaotic"),
    (-0.75, 0.25, "marginal"),
    (0.0099, 0.001, "marginal"),   # the floor REGIME_TOL = 0.01 when 3·stderr is smaller
    (0.0101, 0.001, "chaotic"),
    (-0.0101, 0.001, "ordered"),
    (0.0101, float("nan"), "chaotic"),  # an undefined stderr falls back to the floor
    (float("nan"), 0.01, "undetermined"),
    (-math.inf, 0.0, "ordered"),
], ids=str)
def test_regime_band_is_three_standard_errors_or_the_floor(lam, se, regime):
    from dynprobe.plugins.lyapunov import regime_of

    assert regime_of(lam, se) == regime


# ---------------------------------------------------------------- defaults and floating-point cycles


def test_logistic_map_from_step_without_a_dtype_gives_ln2():
    # the README's worst case: no parameters, no dtype, the N(0, 0.5) default init
    system = dynprobe.System.from_step(lambda h, u, p: 4 * h * (1 - h), state_dim=1)
    with pytest.warns(RuntimeWarning, match="diverged"):  # the draws outside [0, 1] escape to -inf
        ds = dynprobe.run("lyapunov", system, steps=5000, samples=16)
    assert ds.attrs["dtype"] == "float64"
    x0 = system.initial_state(16, seed=0)[:, 0].numpy()
    np.testing.assert_array_equal(ds.diverged.values, (x0 < 0) | (x0 > 1))
    lam, se = float(ds.exponent_mean[0]), float(ds.exponent_stderr[0])
    assert abs(lam - math.log(2)) < 4 * se, (lam, se)
    assert not ds.stuck.any()


def test_float32_logistic_map_stuck_on_zero_is_flagged_and_left_out():
    system = dynprobe.System.from_step(lambda h, u, p: 4 * h * (1 - h), state_dim=1, dtype=torch.float32,
                                       init=dynprobe.InitialState(low=0.05, high=0.95))
    with pytest.warns(RuntimeWarning, match=r"exact floating-point cycle \(period 1\) whose tangent dynamics expand"):
        ds = dynprobe.run("lyapunov", system, steps=5000, samples=64, seed=1)
    stuck = ds.stuck.values
    assert stuck.any() and not stuck.all()
    # a stuck sample sits on x = 0 exactly (4x(1-x) = 0, slope 4): its exponent drifts towards ln 4
    assert (ds.cycle_period.values[stuck] == 1).all()
    assert (ds.exponents.values[stuck, 0] > math.log(2) + 0.05).all()
    used = ~stuck & ~ds.diverged.values
    np.testing.assert_allclose(float(ds.exponent_mean[0]), ds.exponents.values[used, 0].mean(), rtol=1e-12)
    assert abs(float(ds.exponent_mean[0]) - math.log(2)) < 4 * float(ds.exponent_stderr[0])
    assert (ds.attractor.values[stuck] == -1).all()


def test_stable_orbits_reached_exactly_are_not_stuck():
    # r = 3.2: a stable 2-cycle, reached to machine precision (an exact floating-point cycle)
    ds = dynprobe.run("lyapunov", logistic_system(3.2), steps=2000, samples=4)
    assert (ds.cycle_period.values % 2 == 0).all() and (ds.cycle_period.values > 0).all()
    assert not ds.stuck.any() and float(ds.exponent_mean[0]) < 0
    # a start on an unstable fixed point is the user's choice, not rounding: not stuck
    ds = dynprobe.run("lyapunov", _at_origin(linear_system(torch.diag(torch.tensor([1.5, 0.5])))), steps=300, burn_in=0)
    assert (ds.cycle_period.values == 1).all() and not ds.stuck.any()
    np.testing.assert_allclose(ds.exponent_mean.values, np.log([1.5, 0.5]), atol=5e-3)


def test_cycle_period_is_the_least_exact_return_time():
    from dynprobe.plugins.lyapunov.cycles import cycle_period

    # a cyclic shift of coordinates is exact in floating point: period 3, or 1 on the diagonal
    shift = dynprobe.System.from_step(lambda h, u, p: torch.roll(h, 1, dims=-1), state_dim=3, dtype=torch.float64)
    h = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.1, 0.1, 0.3], [float("nan"), 0.0, 1.0]],
                     dtype=torch.float64)
    assert cycle_period(shift, h, start=0).tolist() == [3, 1, 3, 0]
    assert cycle_period(shift, h, start=0, max_period=2).tolist() == [0, 1, 0, 0]
    # an exact rotation by 90 degrees: period 4 (also past the first host sync at 8 steps), 1 at the origin
    rotate = dynprobe.System.from_step(lambda h, u, p: torch.stack([-h[..., 1], h[..., 0]], -1), state_dim=2,
                                       dtype=torch.float64)
    assert cycle_period(rotate, torch.tensor([[0.3, -0.7], [0.0, 0.0]], dtype=torch.float64), start=0).tolist() == [4, 1]
