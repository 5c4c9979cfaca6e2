"""The ``bifurcation`` probe: oracles (logistic map, Hénon, rotation maps), vectorization,
parameter paths, projections, the chaotic LSTM of the attractors paper, conformance."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
from dynprobe import InitialState, System
from dynprobe.errors import ProbeParameterError, UnknownNameError
from dynprobe.plugins.bifurcation import (
    BiasMean,
    Checkpoints,
    Custom,
    InputLevel,
    NamedScalar,
    Scale,
    bifurcation,
    least_periods,
    suggest,
)
from dynprobe.testing import check_probe

F64 = torch.float64


def logistic() -> System:
    return System.from_step(lambda h, u, p: p["r"] * h * (1 - h), state_dim=1,
                            params={"r": torch.tensor(3.0, dtype=F64)}, init=InitialState(low=0.05, high=0.95))


def henon() -> System:
    def step(h, u, p):
        x, y = h[..., 0], h[..., 1]
        return torch.stack([1 - p["a"] * x * x + y, p["b"] * x], dim=-1)

    return System.from_step(step, state_dim=2, params={"a": torch.tensor(1.4, dtype=F64), "b": torch.tensor(0.3, dtype=F64)},
                            init=InitialState(scale=0.1))


def circle(omega: float) -> System:
    """r' = r + 0.3 r (1 − r²), θ' = θ + ω: an attracting invariant circle rotated by ω."""

    def step(h, u, p):
        r = torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        c, s = torch.cos(p["w"]), torch.sin(p["w"])
        rot = torch.stack([c * h[..., 0] - s * h[..., 1], s * h[..., 0] + c * h[..., 1]], dim=-1)
        return rot * (1 + 0.3 * (1 - r * r))

    return System.from_step(step, state_dim=2, params={"w": torch.tensor(omega, dtype=F64)},
                            init=InitialState(center=torch.tensor([0.5, 0.0], dtype=F64), scale=0.2))


def test_logistic_oracles() -> None:
    """Fixed point at r = 2.9, period 2 at 3.2, period 4 at 3.5, chaos at 3.9, period 3 at 3.835."""
    ds = bifurcation(logistic(), path="scalar:r", values=[2.9, 3.2, 3.5, 3.9, 3.835], burn_in=500, steps=200)
    assert list(ds.regime.values) == ["fixed_point", "periodic", "periodic", "chaotic", "periodic"]
    assert list(ds.period.values) == [1, 2, 4, 0, 3]
    assert list(ds.attractors.values) == [1] * 5 and ds.converged.values.all()
    lam = ds.max_exponent.values
    assert lam[0] == pytest.approx(math.log(0.9), abs=1e-6)  # |f'(x*)| = |2 - r|
    r = 3.2  # period-2 points in closed form
    root = math.sqrt((r - 3) * (r + 1))
    xs = [(r + 1 + root) / (2 * r), (r + 1 - root) / (2 * r)]
    assert lam[1] == pytest.approx(0.5 * math.log(abs(r * (1 - 2 * xs[0]) * r * (1 - 2 * xs[1]))), abs=1e-6)
    orbit = np.sort(np.unique(ds.orbit.sel(param=3.2).values.round(9)))
    np.testing.assert_allclose(orbit, sorted(xs), atol=1e-8)
    assert lam[2] < 0 and lam[4] < 0 and 0.4 < lam[3] < 0.6  # λ(3.9) ≈ 0.49


def test_henon_period_doubling_chaos_and_escape() -> None:
    """Hénon map, b = 0.3: fixed point, period 2, period 4, chaos (λ₁ = 0.419 at a = 1.4), escape."""
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = bifurcation(henon(), path="scalar:a", values=[0.2, 0.6, 1.0, 1.4, 2.0], steps=100, samples=4)
    assert list(ds.regime.values) == ["fixed_point", "periodic", "periodic", "chaotic", "divergent"]
    assert list(ds.period.values[:3]) == [1, 2, 4]
    # fixed point of the Hénon map: x* solves a x² + (1 - b) x - 1 = 0; λ = log of the larger |eigenvalue|
    a, b = 0.2, 0.3
    x = (-(1 - b) + math.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a)
    eig = np.linalg.eigvals(np.array([[-2 * a * x, 1.0], [b, 0.0]]))
    assert ds.max_exponent.values[0] == pytest.approx(math.log(np.abs(eig).max()), abs=1e-6)
    assert 0.3 < ds.max_exponent.values[3] < 0.55
    assert bool(ds.diverged.sel(param=2.0).all()) and np.isnan(ds.orbit.sel(param=2.0)).all()


def test_quasi_periodic_invariant_circle() -> None:
    """An attracting circle rotated by the golden angle: λ_max = 0 exactly, no period."""
    golden = 2 * math.pi * (math.sqrt(5) - 1) / 2
    ds = bifurcation(circle(golden), path="scalar:w", values=[golden], steps=200, exponent_steps=400, samples=4)
    assert ds.regime.values[0] == "quasi_periodic" and ds.attractors.values[0] == 1
    assert abs(ds.max_exponent.values[0]) < 0.01 and (ds.sample_period.values == 0).all()


@pytest.mark.parametrize("steps", [100, 200])
def test_slowly_rotating_circle_is_one_attractor(steps) -> None:
    """Rotation by 2π/20.98: each sample visits 21 tight phase clusters of its own, between the other
    samples' clusters; they are still one invariant circle (the trained sine LSTM's case)."""
    omega = 2 * math.pi / 20.98
    ds = bifurcation(circle(omega), path="scalar:w", values=[omega], steps=steps, exponent_steps=400, samples=8)
    assert ds.attractors.values[0] == 1 and ds.regime.values[0] == "quasi_periodic"


def test_two_nested_circles_stay_two_attractors() -> None:
    """r' = r + 0.3 r (1 − r²)(4 − r²)·…: attracting circles at r = 1 and r = 2 — two attractors."""

    def step(h, u, p):
        r = torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        c, s = torch.cos(p["w"]), torch.sin(p["w"])
        rot = torch.stack([c * h[..., 0] - s * h[..., 1], s * h[..., 0] + c * h[..., 1]], dim=-1)
        r_new = r - 0.05 * (r - 1) * (r - 1.5) * (r - 2)  # stable at 1 and 2, unstable at 1.5
        return rot * r_new / r

    omega = 2 * math.pi / 20.9
    system = System.from_step(step, state_dim=2, params={"w": torch.tensor(omega, dtype=F64)},
                              init=InitialState(low=-1.9, high=1.9))
    ds = bifurcation(system, path="scalar:w", values=[omega], steps=100, burn_in=600, exponent_steps=400, samples=8)
    radii = ds.attractor.values[0]
    assert ds.attractors.values[0] == 2 and ds.regime.values[0] == "multistable", radii


def test_multistable_double_well() -> None:
    """x' = tanh(k x): two stable fixed points ±x* for k > 1, one (0) for k < 1."""
    system = System.from_step(lambda h, u, p: torch.tanh(p["k"] * h), state_dim=1,
                              params={"k": torch.tensor(2.0, dtype=F64)}, init=InitialState(scale=1.0))
    ds = bifurcation(system, path="scalar:k", values=[0.5, 2.0], samples=8, steps=50)
    assert ds.regime.values[0] == "fixed_point" and ds.attractors.values[0] == 1
    assert ds.regime.values[1] == "multistable" and ds.attractors.values[1] == 2
    ids = ds.attractor.sel(param=2.0).values
    final = ds.orbit.sel(param=2.0).isel(time=-1).values
    assert set(np.sign(final[ids == 0])) != set(np.sign(final[ids == 1]))


def test_divergent_is_flagged_and_warned() -> None:
    system = System.from_step(lambda h, u, p: p["a"] * h, state_dim=1, params={"a": torch.tensor(1.5, dtype=F64)})
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = bifurcation(system, path="scalar:a", values=[0.5, 1.5], samples=3, steps=20)
    assert list(ds.regime.values) == ["fixed_point", "divergent"]
    assert np.isnan(ds.max_exponent.values[1]) and ds.diverged.sel(param=1.5).all()


def test_sweep_is_vectorized_and_equals_single_runs() -> None:
    system = dynprobe.load_system("lstm2d_chaotic")
    values = [0.7, 1.0, 1.3, 1.8]
    together = bifurcation(system, values=values, samples=3, steps=40, burn_in=30)
    for v in values:
        alone = bifurcation(system, values=[v], samples=3, steps=40, burn_in=30)
        np.testing.assert_allclose(together.orbit.sel(param=v).values, alone.orbit.isel(param=0).values, atol=1e-12)
        assert together.regime.sel(param=v).item() == alone.regime.item()


def test_chaotic_lstm_matches_fig1() -> None:
    """Attractors paper Fig. 1: chaos for roughly 0.9 ≲ s ≲ 1.45 along θ(s) = s·θ_true."""
    system = dynprobe.load_system("lstm2d_chaotic")
    ds = bifurcation(system, sweep="lstm2d_chaotic", values="0.5:2.0:31", samples=4)
    s = ds.param.values
    chaotic = s[ds.regime.values == "chaotic"]
    assert chaotic.size >= 5 and chaotic.min() > 0.85 and chaotic.max() < 1.5
    assert (ds.max_exponent.values[(s > 0.95) & (s < 1.4)] > 0).mean() > 0.6
    assert set(ds.regime.values[s < 0.7]) == {"fixed_point"}
    assert set(ds.regime.values[s > 1.6]) == {"periodic"}
    assert ds.attrs["projection"] == "unit:0" and ds.attrs["spread"] == 100.0 and ds.sizes["time"] == 100


def test_scale_paths_build_stacked_parameters() -> None:
    system = dynprobe.wrap(nn.RNN(2, 3), dtype=F64)
    ens = Scale().build(system, np.array([0.5, 2.0]))
    assert ens.networks == 2
    for i, s in enumerate([0.5, 2.0]):
        for k, v in system.params.items():
            torch.testing.assert_close(ens.network(i).params[k], s * v)
    only = Scale(names=("weight_hh_l0",)).build(system, np.array([3.0]))
    torch.testing.assert_close(only.network(0).params["weight_hh_l0"], 3 * system.params["weight_hh_l0"])
    torch.testing.assert_close(only.network(0).params["bias_hh_l0"], system.params["bias_hh_l0"])
    with pytest.raises(ProbeParameterError, match="no parameters"):
        Scale(names=("nope",)).build(system, np.array([1.0]))


def test_bias_mean_and_named_scalar() -> None:
    system = dynprobe.wrap(nn.GRU(1, 4), dtype=F64)
    ens = BiasMean().build(system, np.array([-1.0, 2.0]))
    for i, s in enumerate([-1.0, 2.0]):
        p = ens.network(i).params
        assert float(torch.cat([p["bias_ih_l0"], p["bias_hh_l0"]]).mean()) == pytest.approx(s)
        torch.testing.assert_close(p["bias_ih_l0"] - p["bias_ih_l0"].mean(),
                                   system.params["bias_ih_l0"] - system.params["bias_ih_l0"].mean())
    ens = NamedScalar(param="weight_hh_l0", index=(2, 1)).build(system, np.array([7.0]))
    w = ens.network(0).params["weight_hh_l0"]
    assert float(w[2, 1]) == 7.0 and torch.equal(w[0], system.params["weight_hh_l0"][0])


def test_input_level_path_equals_constant_drive() -> None:
    torch.manual_seed(0)
    rnn = nn.RNN(2, 5).double()
    system = dynprobe.wrap(rnn)
    ds = bifurcation(system, path=InputLevel(direction=(1.0, -0.5)), values=[0.3, 1.2], samples=2, steps=20, burn_in=5)
    for s in (0.3, 1.2):
        driven = system.with_drive(dynprobe.constant([s, -0.5 * s]))
        traj = driven.trajectory(system.initial_state(2, seed=0), 24)[5:25]  # [time, sample, N]
        np.testing.assert_allclose(ds.orbit.sel(param=s).values, traj.mean(-1).T.numpy(), atol=1e-12)
    # the same sweep through a user function that changes the drive: lifted, not looped
    fn = Custom(fn=lambda sys_, s: sys_.with_drive(dynprobe.constant([s, -0.5 * s])))
    other = bifurcation(system, path=fn, values=[0.3, 1.2], samples=2, steps=20, burn_in=5)
    np.testing.assert_allclose(other.orbit.values, ds.orbit.values, atol=1e-12)
    with pytest.raises(ProbeParameterError, match="takes no input"):
        bifurcation(logistic(), path="input", values=[1.0])


def test_checkpoints_path_keeps_each_readout() -> None:
    torch.manual_seed(1)
    rnns = [nn.RNN(1, 3).double() for _ in range(3)]
    heads = [nn.Linear(3, 1).double() for _ in range(3)]
    systems = [dynprobe.wrap(r, readout=lambda h, head=hd: head(h)) for r, hd in zip(rnns, heads)]
    path = Checkpoints(items=systems, labels=[10, 20, 30])
    ds = bifurcation(None, path=path, projection="readout", samples=2, steps=20, burn_in=3)
    assert list(ds.param.values) == [10, 20, 30]
    h0 = systems[0].initial_state(2, seed=0)
    for i, system in enumerate(systems):
        traj = system.trajectory(h0, 22)[3:23]
        with torch.no_grad():
            want = heads[i](traj)[..., 0].T.numpy()
        np.testing.assert_allclose(ds.orbit.isel(param=i).values, want, atol=1e-12)
    with pytest.raises(ProbeParameterError, match="not a checkpoint label"):
        bifurcation(None, path=path, values=[15])


def test_projections_and_errors() -> None:
    system = dynprobe.load_system("lstm2d_chaotic")
    ds = bifurcation(system, values=[1.8], projection="unit:3", samples=1, steps=16, burn_in=2)
    assert "c0[1]" in ds.orbit.attrs["long_name"]
    ds2 = bifurcation(system, values=[1.8], projection=lambda h: h[..., 3], samples=1, steps=16, burn_in=2)
    np.testing.assert_array_equal(ds.orbit.values, ds2.orbit.values)
    with pytest.raises(ProbeParameterError, match="unknown projection"):
        bifurcation(system, values=[1.0], projection="median")
    with pytest.raises(ProbeParameterError, match="unit index"):
        bifurcation(system, values=[1.0], projection="unit:9")
    with pytest.raises(ProbeParameterError, match="did you mean 'scale'"):
        bifurcation(system, path="scal", values=[1.0])
    with pytest.raises(ProbeParameterError, match="ensemble"):
        bifurcation(System.stack([system, system]), values=[1.0])
    with pytest.raises(ProbeParameterError, match="start:stop:num"):
        bifurcation(system, values="0.5:2")
    with pytest.raises(UnknownNameError):
        bifurcation(system, sweep="no_such_model")


def test_least_period_tolerance() -> None:
    t = np.arange(60)
    z = np.stack([np.cos(2 * np.pi * t / 6), np.sin(2 * np.pi * t / 6)], -1)[:, None, :]
    period, candidate, shrinking, _ = least_periods(z, pmax=20, tol=1e-9)
    assert period[0] == 6 and candidate[0] == 6 and not shrinking[0]
    period, *_ = least_periods(z + 1e-3 * np.random.default_rng(0).normal(size=z.shape), pmax=20, tol=1e-9)
    assert period[0] == 0


def test_conformance() -> None:
    ds = check_probe("bifurcation", logistic(), path="scalar:r", values=[2.9, 3.5, 3.9], steps=40, samples=3)
    assert ds.attrs["probe"] == "bifurcation" and ds.param.attrs["long_name"] == "parameter r"


def test_suggest_scales_with_size() -> None:
    small = suggest(dynprobe.load_system("lstm2d_chaotic"))
    big = suggest(dynprobe.wrap(nn.LSTM(1, 128, num_layers=2)))
    n_small, n_big = (int(s["values"].split(":")[2]) for s in (small, big))
    assert n_small == 201 and 11 <= n_big < 60 and n_big % 2 == 1 and big["samples"] < small["samples"]
    lo, hi, _ = (float(x) for x in big["values"].split(":"))
    assert lo < 1 < hi and big["path"] == "scale"


def test_plot_draws_both_views(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    ds = dynprobe.run("bifurcation", logistic(), path="scalar:r", values="2.8:4:25", steps=40, samples=2)
    fig = ds.dynprobe.plot()
    assert len(fig.axes) >= 3
    fig.savefig(tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000
    rows = dict(ds.dynprobe.summary())
    assert "chaotic between" in rows and "periods found" in rows


def test_no_warnings_on_regular_sweep() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bifurcation(logistic(), path="scalar:r", values=[3.2], steps=20, samples=2)


def _finder_plugin(shift: float):
    """A stand-in ``period3`` plugin: finds the stable orbit of period p by long iteration
    (an independent method), optionally shifted to play a finder that disagrees."""
    import types

    import xarray as xr

    def period3(system: System, *, period: int = 3, seed: int = 0) -> xr.Dataset:
        h = system.trajectory(system.initial_state(3, seed=seed + 5), 3000)[-period:]
        pts = h.permute(1, 0, 2).numpy() + shift
        return xr.Dataset({"orbit_points": (("orbit", "phase", "unit"), pts)},
                          coords={"orbit": np.arange(3), "phase": np.arange(period), "unit": np.arange(pts.shape[-1])})

    module = types.ModuleType(f"fake_finder_{shift}")
    module.dynprobe_probes = dynprobe.hookimpl(lambda: [dynprobe.Probe(name="period3", run=period3)])
    return module


@pytest.mark.parametrize(("shift", "expected"), [(0.0, 1), (0.05, 0)], ids=["agrees", "disagrees"])
def test_periods_cross_checked_by_an_installed_finder(shift: float, expected: int) -> None:
    import dynprobe.plugins.bifurcation
    from dynprobe.registry import Registry, use_registry

    reg = Registry(plugins=[dynprobe.plugins.bifurcation, _finder_plugin(shift)], entry_points=False)
    with use_registry(reg):
        ds = dynprobe.run("bifurcation", logistic(), path="scalar:r", values=[2.9, 3.5, 3.835], burn_in=300, steps=100)
    assert list(ds.period_verified.values) == [-1, expected, expected]  # fixed points are not sent
    assert ds.attrs["period_finder"].startswith("period3")
    with use_registry(Registry(plugins=[dynprobe.plugins.bifurcation], entry_points=False)):
        none = dynprobe.run("bifurcation", logistic(), path="scalar:r", values=[3.5], steps=40)
    assert none.period_verified.item() == -1 and none.attrs["period_finder"] == "period3 not installed"


# ---------------------------------------------------------------- custom paths that cannot be vmapped


def _new_logistic(system: System, s: float) -> System:
    """What a user writes: a fresh System, and a fresh step capturing s, for every value."""
    return System.from_step(lambda h, u, p: s * h * (1 - h), state_dim=1, init=system.init)


def test_custom_path_with_a_new_step_per_value_runs_value_by_value() -> None:
    values = [2.9, 3.2, 3.5, 3.9]
    looped = bifurcation(logistic(), path=_new_logistic, values=values, samples=3, steps=64, verify=0)
    assert looped.attrs["path_stacking"].startswith("looped")
    # oracles: the fixed point (λ = log|2 - r| = log 0.9), periods 2 and 4, chaos
    assert list(looped.regime.values) == ["fixed_point", "periodic", "periodic", "chaotic"]
    assert list(looped.period.values[:3]) == [1, 2, 4]
    assert float(looped.max_exponent[0]) == pytest.approx(math.log(0.9), abs=1e-6)
    # and exactly what the vmapped path over the parameter r gives
    vmapped = bifurcation(logistic(), path="scalar:r", values=values, samples=3, steps=64, verify=0)
    assert vmapped.attrs["path_stacking"] == "vmap"
    np.testing.assert_array_equal(looped.orbit.values, vmapped.orbit.values)
    np.testing.assert_array_equal(looped.sample_exponent.values, vmapped.sample_exponent.values)


def test_custom_path_returning_new_parameters_is_vmapped() -> None:
    fn = lambda system, s: system.with_params(r=torch.tensor(s, dtype=F64))  # noqa: E731
    ds = bifurcation(logistic(), path=fn, values=[2.9, 3.9], samples=2, steps=32, verify=0)
    assert ds.attrs["path_stacking"] == "vmap" and list(ds.regime.values) == ["fixed_point", "chaotic"]


def test_looped_path_keeps_each_values_own_constant_input() -> None:
    # a new step per value and a new constant input per value: h' = tanh(a h + u), u = c
    pairs = [(0.5, 0.2), (0.9, -0.4), (1.5, 0.1)]

    def fn(system: System, i: float) -> System:
        a, c = pairs[int(i)]
        return System.from_step(lambda h, u, p: torch.tanh(a * h + u), state_dim=1, input_dim=1,
                                init=system.init).with_drive(dynprobe.constant(c))

    base = fn(logistic(), 0)
    ds = bifurcation(base, path=fn, values=[0, 1, 2], samples=2, steps=20, burn_in=4, verify=0)
    assert ds.attrs["path_stacking"].startswith("looped")
    h0 = base.initial_state(2, seed=0)
    for i in range(3):
        traj = fn(base, i).trajectory(h0, 23)[4:24, :, 0]  # [time, sample]
        np.testing.assert_allclose(ds.orbit.isel(param=i).values, traj.T.numpy(), rtol=0, atol=1e-15)


def test_checkpoints_of_one_architecture_are_vmapped() -> None:
    torch.manual_seed(2)
    path = Checkpoints(items=[nn.RNN(1, 3).double() for _ in range(3)])
    ds = bifurcation(None, path=path, samples=2, steps=16, burn_in=2, verify=0)
    assert ds.attrs["path_stacking"] == "vmap"
# --- attractor counting on networks with many attractors (issue 12 item 4) -------------------------


def test_period_two_memories_are_counted_one_by_one() -> None:
    """Four stable period-2 orbits (a clock coordinate and two bistable ones, rotated): the 8
    samples sit on as many orbits as they have sign patterns of the bistable coordinates, which
    the map never changes. The old classifier merged every cycle into one "attractor" because
    the polyline through a period-2 orbit bends by its own diameter."""
    from fixedpoint_systems import clocked_memories, rotation

    system = clocked_memories()
    ds = bifurcation(system, path="scalar:a", values=[2.0], samples=8, verify=0)
    y = system.initial_state(8, seed=0).numpy() @ rotation()
    patterns = [tuple(np.sign(row[1:])) for row in y]
    assert int(ds.attractors[0]) == len(set(patterns)) >= 3 and ds.regime.values[0] == "multistable"
    ids = ds.attractor.values[0]
    for i in range(8):  # same sign pattern <=> same attractor
        for j in range(8):
            assert (ids[i] == ids[j]) == (patterns[i] == patterns[j])
    assert int(ds.orbits_refined[0]) == 1 and ds.sample_period.values[0].tolist() == [2] * 8


def test_trained_flipflop_attractors_are_the_fixed_points_its_samples_reach() -> None:
    from fixedpoint_systems import trained_flipflop

    system = dynprobe.wrap(trained_flipflop(0).rnn, dtype=F64)
    ds = bifurcation(system, values=[1.0], samples=8, verify=0)
    ends = system.advance(system.initial_state(8, seed=0), 2000).numpy()
    distinct = len({tuple(np.round(e, 6)) for e in ends})
    assert int(ds.attractors[0]) == distinct >= 2 and ds.regime.values[0] == "multistable"
    same = np.abs(ends[:, None] - ends[None]).max(-1) < 1e-6
    ids = ds.attractor.values[0]
    np.testing.assert_array_equal(ids[:, None] == ids[None], same)
    # checked against the fixed-point finder: every attractor reached is one of its stable points
    fixed = dynprobe.run("fixedpoints", system)
    stable = fixed.state.values[fixed.stable.values]
    assert len(stable) == 8
    assert (np.abs(ends[:, None] - stable[None]).max(-1).min(-1) < 1e-8).all()


def test_memories_closer_than_the_grouping_floor_are_told_apart_by_newton() -> None:
    """x' = w·tanh(a x / w) with w = 1e-3: two stable fixed points ±0.96e-3 apart by 1.9e-3, less
    than the geometric floor of 3·1e-3·(1 + scale); the samples' orbits refined by Newton's method
    are two distinct fixed points, and the count says so."""
    w = 1e-3
    system = System.from_step(lambda h, u, p: w * torch.tanh(p["a"] * h / w), state_dim=1,
                              params={"a": torch.tensor(2.0, dtype=F64)}, init=InitialState(scale=w))
    ds = bifurcation(system, path="scalar:a", values=[2.0], samples=8, verify=0)
    signs = np.sign(system.initial_state(8, seed=0).numpy()[:, 0])
    assert int(ds.attractors[0]) == 2 and int(ds.orbits_refined[0]) == 1
    ids = ds.attractor.values[0]
    np.testing.assert_array_equal(ids[:, None] == ids[None], signs[:, None] == signs[None])
    z = ds.orbit.values.transpose(2, 0, 1)[..., None]  # the classifier alone merges them
    assert int(_classify(z, ds.sample_exponent.values).attractors[0]) == 1


# --- the classifier's thresholds, each pinned near its value (issue 13) ----------------------------


def _line(offset: float, spacing: float = 0.01, points: int = 128) -> np.ndarray:
    x = spacing * np.arange(points)
    return np.stack([x, np.full(points, offset)], axis=-1)


@pytest.mark.parametrize(("spacings", "same"), [(2.9, True), (3.1, False)], ids=["within-3", "beyond-3"])
def test_grouping_spacing_is_three_local_spacings(spacings: float, same: bool) -> None:
    """Two clouds are one attractor when their points lie within 3 nearest-neighbour spacings
    of each other: parallel lines of points (spacing s) at 2.9 s and 3.1 s apart."""
    from dynprobe.plugins.bifurcation.classify import same_attractor

    assert bool(same_attractor(_line(0.0), _line(spacings * 0.01), 1e-9)) is same


def _classify(z: np.ndarray, exponent: np.ndarray):
    from dynprobe.plugins.bifurcation import classify

    S, B = exponent.shape
    return classify(z, exponent, np.zeros((S, B), dtype=bool), pmax=8, period_tol=1e-6, attractor_tol=1e-3,
                    exponent_tol=0.01)


@pytest.mark.parametrize(("factor", "count"), [(2.9, 1), (3.1, 2)], ids=["within-3-floors", "beyond-3-floors"])
def test_two_cycles_are_one_within_three_floors(factor: float, count: int) -> None:
    """Converged cycles are compared point by point: one attractor when every point lies within
    3·attractor_tol·(1 + scale) of the other cycle."""
    T = 60
    base = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)
    eps = factor * 1e-3 * 2 / (1 - factor * 1e-3)  # factor floors, with the floor taken at scale 1 + eps
    z = np.stack([base, base + eps], axis=-1)[:, None, :, None]  # [T, S=1, B=2, d=1]
    cls = _classify(z, np.full((1, 2), -0.5))
    assert cls.sample_period.tolist() == [[2, 2]] and int(cls.attractors[0]) == count


def test_distinct_cycles_are_not_one_curve() -> None:
    """The classifier alone (before any Newton regrouping): four period-2 cycles of different
    amplitude are four attractors — a cycle is a set of points, not a curve through them."""
    T = 60
    base = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)
    z = np.stack([base * a for a in (0.4, 0.6, 0.8, 1.0)], axis=-1)[:, None, :, None]
    cls = _classify(z, np.full((1, 4), -0.7))
    assert int(cls.attractors[0]) == 4 and cls.regime[0] == "multistable"


def _damped_cycle(ratio: float, T: int = 100) -> np.ndarray:
    """z_t = (−1)^t (1 + 0.1 rᵗ) with r such that the period-2 residual at the end of the record
    is ``ratio`` times the one at its start (windows of 8 steps: r^(T−10) = ratio)."""
    r = ratio ** (1 / (T - 10))
    t = np.arange(T)
    return (np.where(t % 2 == 0, 1.0, -1.0) * (1 + 0.1 * r ** t))[:, None, None, None]


@pytest.mark.parametrize(("ratio", "regime"), [(0.75, "periodic"), (0.85, "quasi_periodic")],
                         ids=["shrinking", "not-shrinking"])
def test_still_converging_means_the_residual_fell_below_four_fifths(ratio: float, regime: str) -> None:
    """A marginal orbit (|λ| ≤ exponent_tol) that missed the period test is "still converging" —
    its best period candidate, ``converged`` false — when the candidate's residual fell below 0.8×
    its value at the start of the record; else it is quasi-periodic."""
    cls = _classify(_damped_cycle(ratio), np.zeros((1, 1)))
    assert cls.sample_period.tolist() == [[0]]
    assert cls.regime[0] == regime and bool(cls.converged[0]) is (regime != "periodic")
    assert int(cls.period[0]) == (2 if regime == "periodic" else 0)


@pytest.mark.parametrize(("exponent", "regime"), [(-0.011, "periodic"), (-0.009, "quasi_periodic")],
                         ids=["contracting", "marginal"])
def test_still_converging_when_the_exponent_is_below_minus_tolerance(exponent: float, regime: str) -> None:
    cls = _classify(_damped_cycle(0.95), np.full((1, 1), exponent))
    assert cls.regime[0] == regime


def _noisy_cycle(T: int = 100, amplitude: float = 1e-4) -> np.ndarray:
    t = np.arange(T)
    return np.where(t % 2 == 0, 1.0, -1.0) + amplitude * np.sin(np.sqrt(2.0) * t)


@pytest.mark.parametrize(("periodic", "regime"), [(2, "periodic"), (1, "quasi_periodic")], ids=["half", "a-quarter"])
def test_period_majority_rule_is_at_least_half(periodic: int, regime: str) -> None:
    """One attractor of 4 samples, some exactly on the 2-cycle, the others jittering around it
    (no period, not converging): it is periodic when at least half its samples met the period test."""
    T = 100
    exact = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)
    rows = [exact] * periodic + [_noisy_cycle(T)] * (4 - periodic)
    z = np.stack(rows, axis=-1)[:, None, :, None]  # [T, 1, 4, 1]
    cls = _classify(z, np.zeros((1, 4)))
    assert int(cls.attractors[0]) == 1
    assert cls.regime[0] == regime and int(cls.period[0]) == (2 if regime == "periodic" else 0)
