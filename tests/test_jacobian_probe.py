"""The ``jacobian`` probe on maps with exact answers, and its two singular-value methods."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.linearize import qr_positive
from dynprobe.plugins.jacobian import ScaledProduct, log_singular_values, norm_fraction
from dynprobe.testing import check_probe


def linear(A: torch.Tensor, **kw) -> dynprobe.System:
    A = torch.as_tensor(A, dtype=torch.float64)
    return dynprobe.System.from_step(lambda h, u, p: h @ p["A"].mT, state_dim=A.shape[-1], params={"A": A},
                                     name="linear", **kw)


def test_orthogonal_linear_map_has_all_singular_values_one():
    Q, _ = qr_positive(torch.randn(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    ds = dynprobe.run("jacobian", linear(Q), horizons=(1, 10, 200), samples=2)
    np.testing.assert_allclose(ds.log_singular_values.values, 0.0, atol=1e-11)
    np.testing.assert_allclose(ds.singular_values.values, 1.0, atol=1e-11)
    np.testing.assert_allclose(ds.log_condition_number.values, 0.0, atol=1e-11)
    np.testing.assert_allclose(ds.normalized_var_jjt.values, 0.0, atol=1e-10)
    np.testing.assert_allclose(ds.log_grad_norm.values, 0.0, atol=1e-11)
    np.testing.assert_allclose(ds.step_spectral_radius.values, 1.0, atol=1e-12)


def test_diagonal_map_gives_powers_of_its_entries_far_beyond_float64():
    a = np.array([1.3, -1.1, 0.9, 0.5, -0.2, 0.05])
    T = (1, 7, 300)
    ds = dynprobe.run("jacobian", linear(torch.diag(torch.tensor(a))), horizons=T, samples=1)
    for k, t in enumerate(T):
        expect = np.sort(t * np.log(np.abs(a)))[::-1]
        np.testing.assert_allclose(ds.log_singular_values.isel(sample=0, horizon=k).values, expect, rtol=1e-12,
                                   atol=1e-10)
    # at T = 300: σ from e^{79} down to e^{-899}; the explicit product cannot hold it, the log domain can
    last = ds.isel(sample=0, horizon=2)
    assert not bool(last.sv_resolved.all()) and np.isnan(last.singular_values.values).any()
    assert float(last.log_condition_number) == pytest.approx(300 * (math.log(1.3) - math.log(0.05)), rel=1e-12)
    # ‖∂h_T/∂h_t‖₂ = 1.3^(T−t)
    np.testing.assert_allclose(ds.log_grad_norm.isel(sample=0).values, (300 - np.arange(301)) * math.log(1.3),
                               rtol=1e-11, atol=1e-9)


def test_non_normal_map_spectral_norm_above_one_radius_below_one():
    """One step: ‖A‖₂ > 1 > ρ(A) — the two numbers a well-known figure labels as one."""
    A = torch.tensor([[0.5, 3.0], [0.0, 0.6]], dtype=torch.float64)
    ds = dynprobe.run("jacobian", linear(A), horizons=(1, 2, 10, 100), samples=1)
    assert float(ds.step_spectral_norm[0, 0]) > 1 > float(ds.step_spectral_radius[0, 0])
    assert float(ds.step_spectral_radius[0, 0]) == pytest.approx(0.6, rel=1e-13)
    for k, t in enumerate((1, 2, 10, 100)):
        exact = np.log(np.linalg.svd(np.linalg.matrix_power(A.numpy(), t), compute_uv=False))
        np.testing.assert_allclose(ds.log_singular_values.isel(sample=0, horizon=k).values, exact, rtol=1e-12,
                                   atol=1e-12)
    # transient growth: ‖A^T‖₂ > 1 for small T even though every eigenvalue is below one
    grows = ds.norm_exceeds_one.isel(sample=0).values
    assert grows[0] and not grows[3]


def test_log_domain_and_explicit_singular_values_agree_where_both_apply():
    net = dynprobe.model("vanilla", input_size=2, hidden_size=24, sigma_w=1.6, sigma_v=0.5, dtype=torch.float64, seed=2)
    u = torch.randn(40, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ds = dynprobe.run("jacobian", dynprobe.wrap(net, drive=dynprobe.sequence(u)), horizons=(1, 5, 20, 40), samples=3)
    ok = ds.sv_resolved.values
    assert ok[:, 0].all() and ok.sum() > 0.6 * ok.size
    log_exact = np.log(ds.singular_values.values[ok])
    log_qr = ds.log_singular_values.values[ok]
    # the explicit SVD's error is ε·σ₁ in absolute terms: relative error ≲ ε σ₁/σᵢ
    rel_floor = 1e-14 * np.exp(ds.log_spectral_norm.values[..., None] - ds.log_singular_values.values)[ok]
    assert np.all(np.abs(log_exact - log_qr) <= 1e-10 + 100 * rel_floor)


def test_scaled_product_survives_what_overflows_the_explicit_product():
    gen = torch.Generator().manual_seed(5)
    n = 10
    Js = [3.0 * torch.randn(n, n, generator=gen, dtype=torch.float64) for _ in range(400)]
    Q0, _ = qr_positive(torch.randn(n, n, generator=gen, dtype=torch.float64))
    prod = ScaledProduct.start(Q0)
    for J in Js:
        prod.update(J @ prod.Q)
    log_sv, _ = log_singular_values(prod.log_d, prod.Rhat)
    assert torch.isfinite(log_sv).all() and float(log_sv[0]) > 709  # beyond float64's range
    # the sum of log singular values is log|det|, exactly the sum of log|det J_t|
    logdet = sum(float(torch.linalg.slogdet(J)[1]) for J in Js)
    assert float(log_sv.sum()) == pytest.approx(logdet, rel=1e-12)


def test_gradient_norms_of_a_linear_map_are_powers():
    A = torch.tensor([[0.9, 0.4], [-0.3, 0.7]], dtype=torch.float64)
    ds = dynprobe.run("jacobian", linear(A), horizons=(12,), samples=1)
    for t in range(13):
        M = np.linalg.matrix_power(A.numpy(), 12 - t)
        assert float(ds.log_grad_norm[0, t]) == pytest.approx(math.log(np.linalg.norm(M, 2)), abs=1e-12)
        assert float(ds.log_grad_rms[0, t]) == pytest.approx(math.log(np.linalg.norm(M) / math.sqrt(2)), abs=1e-12)


def test_mean_squared_singular_value_is_the_frobenius_norm():
    net = dynprobe.model("minimalrnn", input_size=2, hidden_size=16, sigma_w=3.0, dtype=torch.float64)
    ds = dynprobe.run("jacobian", dynprobe.wrap(net, drive=dynprobe.constant(0.7)), horizons=(1, 6), samples=2)
    sv = np.nan_to_num(ds.singular_values.values)  # the unresolved ones are below 1e-8·σ₁: negligible here
    np.testing.assert_allclose(np.exp(ds.log_mean_sq_sv.values), np.mean(sv**2, axis=-1), rtol=1e-10)
    # one step: tr(J₁J₁ᵀ)/N of the per-step record is the same number
    np.testing.assert_allclose(ds.step_mean_sq_sv.isel(step=0).values, np.exp(ds.log_mean_sq_sv.isel(horizon=0).values),
                               rtol=1e-10)


def test_ensemble_is_the_stack_of_its_networks():
    nets = [dynprobe.model("vanilla", input_size=1, hidden_size=8, sigma_w=s, dtype=torch.float64, seed=i)
            for i, s in enumerate((0.5, 1.5, 2.5))]
    start = dynprobe.InitialState(center=torch.linspace(-0.5, 0.5, 8, dtype=torch.float64), scale=0.0)
    whole = dynprobe.run("jacobian", dynprobe.wrap(nets, init=start), horizons=(1, 5), samples=2)
    assert whole.log_spectral_norm.dims == ("network", "sample", "horizon")
    for i, net in enumerate(nets):
        one = dynprobe.run("jacobian", dynprobe.wrap(net, init=start), horizons=(1, 5), samples=2)
        np.testing.assert_allclose(whole.log_singular_values.isel(network=i).values, one.log_singular_values.values,
                                   rtol=1e-12, atol=1e-12)
    frac = whole.norm_exceeds_one.mean(("network", "sample")).values
    np.testing.assert_allclose(whole.fraction_norm_exceeds_one.values, frac)


def test_norm_fraction_rises_with_sigma():
    """Scrambling paper Fig. 5 in miniature: the share of ReLU networks with ‖J‖₂ > 1 grows with σ."""
    def factory(sigma, seed):
        return dynprobe.model("vanilla", input_size=1, hidden_size=16, phi="relu", sigma_w=sigma, sigma_v=0.0,
                              sigma_b=0.1, dtype=torch.float64, seed=seed)

    ds = norm_fraction(factory, [0.3, 1.0, 3.0], networks=12, horizons=(1, 5))
    frac = ds.fraction_norm_exceeds_one.sel(horizon=5).values
    assert frac[0] == 0.0 and frac[-1] == 1.0 and np.all(np.diff(frac) >= 0)
    assert np.all(ds.fraction_step_norm_exceeds_one.values >= ds.fraction_step_radius_exceeds_one.values)


def test_diverging_trajectories_are_flagged_not_averaged():
    sys_ = dynprobe.System.from_step(lambda h, u, p: p["a"] * h**3, state_dim=2,
                                     params={"a": torch.tensor(2.0, dtype=torch.float64)},
                                     init=dynprobe.InitialState(scale=3.0))
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = dynprobe.run("jacobian", sys_, horizons=(30,), samples=2, gradient=False)
    assert ds.diverged.all() and np.isnan(ds.log_spectral_norm.values).all()


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(dynprobe.errors.ProbeParameterError, match="horizons must be positive"):
        dynprobe.run("jacobian", linear(torch.eye(2)), horizons=(0, 3))


@pytest.mark.parametrize("gradient", [True, False])
def test_conformance(gradient):
    net = dynprobe.model("vanilla", input_size=1, hidden_size=6, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        check_probe("jacobian", dynprobe.wrap(net), horizons=(1, 4), samples=2, gradient=gradient)


def test_singular_products_have_log_singular_values_minus_infinity():
    """A nilpotent shift: J^T loses one rank per step; the lost directions are exactly 0 (−∞ in logs)."""
    A = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    ds = dynprobe.run("jacobian", linear(A), horizons=(1, 2, 3), samples=1)
    log_sv = ds.log_singular_values.isel(sample=0).values
    np.testing.assert_allclose(log_sv[0, :2], 0.0, atol=1e-12)
    assert np.isneginf(log_sv[0, 2]) and np.isneginf(log_sv[1, 1:]).all() and np.isneginf(log_sv[2]).all()
    assert np.isposinf(ds.log_condition_number.values).all()
    assert ds.var_jjt.values[0, 2] == 0.0 and not ds.diverged.any()


def test_verdicts_name_isometry_vanishing_and_transient_growth():
    from dynprobe.plugins.jacobian import report

    Q, _ = qr_positive(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    iso = [v.verdict for v in report.verdicts(dynprobe.run("jacobian", linear(Q), horizons=(1, 50), samples=1))]
    assert any("neither explode nor vanish" in v for v in iso) and any("dynamical isometry" in v for v in iso)
    A = torch.tensor([[0.5, 3.0], [0.0, 0.6]], dtype=torch.float64)
    words = [v.verdict for v in report.verdicts(dynprobe.run("jacobian", linear(A), horizons=(1, 60), samples=1))]
    assert any("gradients vanish" in v for v in words) and any("transient amplification" in v for v in words)


def test_linearization_attr_says_how_the_tangents_ran(monkeypatch):
    """The attr is the tangent map's own report, not a constant: eager when tracing is off,
    traced when the run is long enough to trace (threshold lowered here to keep the test short)."""
    import dynprobe.linearize

    system = dynprobe.wrap(torch.nn.RNN(1, 3), dtype=torch.float64, drive=dynprobe.constant(0.2))
    monkeypatch.setenv("DYNPROBE_NO_TRACE", "1")
    assert dynprobe.run("jacobian", system, horizons=(3,)).attrs["linearization"].startswith("eager: tracing off")
    monkeypatch.delenv("DYNPROBE_NO_TRACE")
    monkeypatch.setattr(dynprobe.linearize, "TRACE_MIN_CALLS", 2)
    assert dynprobe.run("jacobian", system, horizons=(3,)).attrs["linearization"] == "traced"
