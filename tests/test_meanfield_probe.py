"""The ``meanfield`` probe: grids, conventions, and theory next to a network."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from meanfield_reference import reference_minimal, reference_vanilla

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.meanfield import cosine_mc, cosine_trajectory, critical_init, fig1_schedule, predict, predict_point
from dynprobe.plugins.meanfield.theory import Grid
from dynprobe.testing import check_probe


def test_conformance_of_a_theory_grid():
    ds = check_probe("meanfield", None, cell="minimalrnn", sigma_w=[1.0, 3.0, 6.88], sigma_v=1.39,
                     mu_b=[-2.0, 0.0, 2.0, 4.0], R=0.46, horizons=(1, 10))
    assert ds.chi_1.dims == ("sigma_w", "mu_b")
    assert ds.var_jjt.dims == ("sigma_w", "mu_b", "horizon")
    assert ds.R.ndim == 0 and float(ds.R) == 0.46 and ds.attrs["grid_dims"] == "sigma_w,mu_b"
    np.testing.assert_allclose(ds.mean_sq_sv.sel(horizon=10).values, ds.chi_1.values**10, rtol=1e-12)


def test_grid_dims_follow_the_parameter_order_and_match_pointwise():
    ds = dynprobe.run("meanfield", None, sigma_w=[0.5, 1.5], sigma_v=0.5, sigma12=[0.0, 1.0], sigma_b=[0.1, 0.2, 0.3])
    assert ds.chi_1.dims == ("sigma_w", "sigma_b", "sigma12")
    one = dynprobe.run("meanfield", None, sigma_w=1.5, sigma_v=0.5, sigma_b=0.2, sigma12=0.0)
    assert float(ds.tau.sel(sigma_w=1.5, sigma_b=0.2, sigma12=0.0)) == pytest.approx(float(one.tau), rel=1e-12)


def test_unsolved_points_are_flagged_and_warned():
    with pytest.warns(RuntimeWarning, match="no solution"):
        ds = dynprobe.run("meanfield", None, phi="relu", sigma_w=[1.0, 1.6], sigma_v=0.5)
    assert ds.converged.values.tolist() == [True, False]
    assert np.isnan(ds.chi_1.values[1]) and ds.reason.values[1] != ""


def test_errors_name_the_fix():
    with pytest.raises(ProbeParameterError, match="without a system, pass sigma_w and sigma_v"):
        dynprobe.run("meanfield", None)
    with pytest.raises(ProbeParameterError, match="distinct values"):
        dynprobe.run("meanfield", None, sigma_w=[1.0, 1.0], sigma_v=1.0)
    net = dynprobe.model("vanilla", input_size=1, hidden_size=8, dtype=torch.float64)
    with pytest.raises(ProbeParameterError, match="cell='minimalrnn' but the System is a vanilla network"):
        dynprobe.run("meanfield", dynprobe.wrap(net), cell="minimalrnn", measure=False)
    with pytest.raises(ProbeParameterError, match="does not apply"):
        dynprobe.run("meanfield", dynprobe.wrap(torch.nn.GRU(1, 4)))


def test_with_a_system_theory_sits_next_to_measurement():
    net = dynprobe.model("vanilla", input_size=4, hidden_size=96, sigma_w=1.4, sigma_v=0.6, sigma_b=0.1,
                         dtype=torch.float64, seed=4)
    u = torch.randn(300, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    system = dynprobe.wrap(net, drive=dynprobe.sequence(u))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = check_probe("meanfield", system, steps=150, horizons=(1, 5), mc_networks=4, mc_steps=15)
    # oracle: the hyper-parameters by their definitions from the weights and the drive (σ_w² = N·E[W²],
    # σ_v² = M·E[V²], b's std and mean, R = E[u²]), then q* and χ₁ by scipy brentq + quad (eq. 2, 4)
    W, V, b = (getattr(net, k).detach().numpy() for k in ("W", "V", "b"))
    hyper = (np.sqrt(96 * np.mean(W**2)), np.sqrt(4 * np.mean(V**2)), np.std(b), np.mean(b), float(np.mean(u.numpy() ** 2)))
    for name, value in zip(("sigma_w", "sigma_v", "sigma_b", "mu_b", "R"), hyper):
        assert float(ds[f"estimated_{name}"]) == pytest.approx(value, rel=1e-12, abs=1e-15), name
    q_star, chi_1 = reference_vanilla(*hyper)
    assert float(ds.chi_1) == pytest.approx(chi_1, rel=1e-9)  # no grid: theory at the network's own point
    assert float(ds.q_star) == pytest.approx(q_star, rel=1e-9)
    assert float(ds.estimated_sigma_w) == pytest.approx(1.4, rel=0.05)  # and the draw honours its σ_w
    # λ_max ≈ ½ log χ₁ for a network this wide (within finite-N and finite-time error)
    assert float(ds.lambda_max_measured) == pytest.approx(float(ds.lambda_max_estimate), abs=0.03)
    # the mean squared singular value of one step is χ₁ (eq. 11) to within finite-N error
    assert float(ds.mean_sq_sv_measured[0]) == pytest.approx(float(ds.mean_sq_sv_estimate[0]), rel=0.1)
    tied = ds.cos_sim_tied.values
    assert ds.cos_sim_tied.dims == ("time",) and tied[-3:].mean() > tied[:9].mean() + 0.5  # Σ₁₂: 0, then 1
    assert "sigma_w" in ds.attrs["estimate"]


def test_with_a_system_and_a_grid_the_network_is_a_point_on_the_diagram():
    net = dynprobe.model("minimalrnn", input_size=2, hidden_size=16, sigma_w=4.0, mu_b=1.0, dtype=torch.float64)
    system = dynprobe.wrap(net, drive=dynprobe.constant(0.5))
    ds = dynprobe.run("meanfield", system, sigma_w=list(np.linspace(1, 8, 5)), mu_b=list(np.linspace(-2, 4, 4)),
                      measure=False)
    assert ds.chi_1.dims == ("sigma_w", "mu_b")
    # oracle: minimalRNN theory (App. C) by scipy at the hyper-parameters read off the weights by their
    # definitions; its input is x̃ = tanh(W_x u) for the constant u = 0.5, so R = E[x̃²]
    W, V, b, W_x = (getattr(net, k).detach().numpy() for k in ("W", "V", "b", "W_x"))
    R = float(np.mean(np.tanh(W_x @ np.full(2, 0.5)) ** 2))
    hyper = (np.sqrt(16 * np.mean(W**2)), np.sqrt(16 * np.mean(V**2)), np.std(b), np.mean(b), R)
    assert float(ds.chi_1_estimate) == pytest.approx(reference_minimal(*hyper)[1], rel=1e-9)
    point = predict_point(system).point(("sigma_w", "mu_b"))
    assert point["sigma_w"] == pytest.approx(4.0, rel=0.1) and point["mu_b"] == pytest.approx(1.0, abs=1e-12)
    fig = ds.dynprobe.plot()
    assert len(fig.axes) >= 2


def test_untied_monte_carlo_follows_the_theory_of_fig_1():
    """Fig. 1 (a): with untied weights the pre-activation cosine similarity c^t of two copies follows eq. (8)."""
    hyper = {"sigma_w": 6.88, "sigma_v": 1.39, "sigma_b": 0.0, "mu_b": 2.0, "R": 0.46}
    g = Grid.of("minimalrnn", "tanh", sigma12=1.0, **hyper)
    out = predict(g)
    schedule = fig1_schedule(20)
    theory = cosine_trajectory(g, schedule, out["q_star"], out["mean_gate"])
    mc = cosine_mc("minimalrnn", hyper, schedule, q_star=float(out["q_star"]), Q_star=float(out["Q_star"]), tied=False,
                   networks=3, width=800, dtype=torch.float32)
    np.testing.assert_allclose(mc, theory, atol=0.06)  # Monte-Carlo noise ~ 1/sqrt(width x networks) per step
    assert theory[8] < 0.5 < theory[-1]  # decorrelated by independent inputs, then pulled together


def test_phase_diagram_plot_marks_a_point():
    import matplotlib

    matplotlib.use("Agg")
    from dynprobe.plugins.meanfield import phase_diagram

    ds = dynprobe.run("meanfield", None, sigma_w=list(np.linspace(0.5, 2.0, 12)), sigma_b=list(np.linspace(0, 0.5, 6)),
                      sigma_v=0.0)
    ax = phase_diagram(ds, mark={"sigma_w": 1.2, "sigma_b": 0.2})
    labels = ax.get_legend_handles_labels()[1]
    assert r"$\chi_1 = 1$" in labels and "this network" in labels


def test_verdicts_state_the_predicted_phase_at_the_network():
    from dynprobe.plugins.meanfield import report

    net = dynprobe.model("vanilla", input_size=32, hidden_size=64, dtype=torch.float64, seed=0)
    critical_init(net, q_star=0.5, R=1.0)  # σ_v from 2048 entries: χ₁ within ~0.002 of 1
    system = dynprobe.wrap(net, drive=dynprobe.sequence(torch.randn(50, 2, 32, dtype=torch.float64)))
    ds = dynprobe.run("meanfield", system, R=1.0, measure=False)
    found = {v.topic: v.verdict for v in report.verdicts(ds)}
    assert "critical" in found["regime"] and "dynamical isometry" in found["gradients"] and "τ" in found["memory"]
    assert report.suggest(system)["measure"] is False
    with pytest.raises(dynprobe.errors.NotApplicable, match="R"):
        report.suggest(dynprobe.wrap(torch.nn.RNN(2, 2).double(), drive=dynprobe.feedback()))
