"""The ``fixedpoints`` probe against oracles.

* the rotated bistable map (27 fixed points, 8 stable, eigenvalues a(1 − y²) in closed form), also
  sheared (non-normal Jacobians) and with points outside the tanh box;
* linear maps: one fixed point (I − A)⁻¹Bu, eigenvalues of A, input Jacobian B — per held input;
* a saddle-node ghost: no fixed point, one slow point with speed 0.5·tanh(μ) exactly;
* the attractors paper's chaotic 2-D LSTM: its fixed points by a second method (a dense grid in h
  and a root polish of the reduced 2-D equation);
* a 3-bit flip-flop trained in the test: the 8 stable points equal the attractors plain iteration
  reaches, and all 27 points of the cube (8 / 12 / 6 / 1 by unstable dimension) are found;
* conformance (``check_probe``) on a single system and a two-network ensemble.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixedpoint_systems import bistable, flipflop_batch, iterate_attractors, trained_flipflop
from scipy.optimize import fsolve
from systems import linear_system

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.testing import check_probe

F64 = torch.float64


def _match(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Index of the true point nearest to each found one, and assert each is used once."""
    d = np.linalg.norm(found[:, None] - truth[None], axis=-1)
    idx = d.argmin(1)
    assert len(set(idx.tolist())) == len(idx), "two found points map to one true point"
    return idx


@pytest.mark.parametrize("shear", [0.0, 0.4], ids=["rotation", "sheared"])
def test_rotated_bistable_closed_form(shear: float) -> None:
    system, points, eig = bistable(2.0, shear)
    ds = check_probe("fixedpoints", system) if shear == 0 else dynprobe.run("fixedpoints", system)
    assert int(ds.fixed_points) == 27 and int(ds.stable_points) == 8 and int(ds.slow_points) == 0
    state = ds.state.values
    idx = _match(state, points)
    np.testing.assert_allclose(state, points[idx], atol=1e-12)
    assert np.abs(points).max() > 1.6  # some points lie outside [-1, 1]^3: no clipping to the tanh box
    lam = ds.eigenvalue_real.values + 1j * ds.eigenvalue_imag.values
    np.testing.assert_allclose(np.sort(lam.real, axis=1), np.sort(eig[idx], axis=1), atol=1e-12)
    np.testing.assert_allclose(lam.imag, 0.0, atol=1e-12)
    assert np.all(np.diff(np.abs(lam), axis=1) <= 1e-12)  # sorted by decreasing modulus
    np.testing.assert_array_equal(ds.unstable_dims.values, (eig[idx] > 1).sum(1))
    assert np.bincount(ds.unstable_dims.values).tolist() == [8, 12, 6, 1]
    np.testing.assert_array_equal(ds.stable.values, ds.unstable_dims.values == 0)
    assert (ds.speed.values <= 1e-10).all() and bool(ds.complete)
    stable_lambda = 2.0 * (1 - 0.9575040240772688 ** 2)  # the report's x* for a = 2
    tau = ds.timescale.values[ds.stable.values]
    np.testing.assert_allclose(tau, -1 / np.log(stable_lambda), rtol=1e-10)
    assert np.isinf(ds.timescale.values[~ds.stable.values][:, 0]).all()
    assert int(ds.basin_starts.sum()) == int(ds.converged_starts)
    assert set(ds.start_source.values) <= {"trajectory", "random", "between"}


def test_plain_iteration_reaches_exactly_the_stable_points() -> None:
    system, points, eig = bistable(1.5)
    ds = dynprobe.run("fixedpoints", system, seed=3)
    attract = iterate_attractors(system, starts=400, steps=300)[:, 0]
    stable = ds.state.values[ds.stable.values]
    assert len(attract) == 8 == len(stable)
    np.testing.assert_allclose(np.sort(stable, axis=0), np.sort(attract, axis=0), atol=1e-12)


def test_linear_map_has_one_fixed_point_per_held_input() -> None:
    A = torch.tensor([[0.5, 0.3, 0.0], [-0.2, 0.4, 0.1], [0.0, 0.1, -0.6]], dtype=F64)
    Bm = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]], dtype=F64)
    system = dynprobe.System.from_step(lambda h, u, p: h @ p["A"].T + u @ p["B"].T, state_dim=3, input_dim=2,
                                       params={"A": A, "B": Bm})
    levels = [(0.0, 0.0), (1.0, -0.5), (2.0, 3.0)]
    ds = dynprobe.run("fixedpoints", system, inputs=levels, rounds=3)
    assert ds.state.dims == ("condition", "point", "unit")
    np.testing.assert_array_equal(ds.fixed_points.values, [1, 1, 1])
    for c, u in enumerate(levels):
        want = np.linalg.solve(np.eye(3) - A.numpy(), Bm.numpy() @ np.array(u))
        np.testing.assert_allclose(ds.state.values[c, 0], want, atol=1e-12)
        np.testing.assert_allclose(ds.input_jacobian.values[c, 0], Bm.numpy(), atol=1e-14)
        np.testing.assert_allclose(ds.input_value.values[c], u)
    lam = ds.eigenvalue_real.values[0, 0] + 1j * ds.eigenvalue_imag.values[0, 0]
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(np.linalg.eigvals(A.numpy())), atol=1e-12)
    assert ds.stable.values[:, 0].all()
    expanding = dynprobe.run("fixedpoints", linear_system(3 * A), rounds=3)
    assert int(expanding.fixed_points) == 1 and int(expanding.unstable_dims[0]) == 3
    assert not bool(expanding.stable[0])
    assert dynprobe.plugins.fixedpoints.verdicts(expanding)[0].verdict == "no stable fixed point; 1 unstable"


def test_a_saddle_node_ghost_is_a_slow_point() -> None:
    """x' = x + 0.5 tanh(x² + μ), μ > 0: just past a saddle-node, no fixed point; q is smallest at
    x = 0 with speed 0.5 tanh(μ) — the slow point Sussillo & Barak look for."""
    mu = 0.01
    ghost = dynprobe.System.from_step(lambda h, u, p: h + 0.5 * torch.tanh(h * h + p["mu"]), state_dim=1,
                                      params={"mu": torch.tensor(mu, dtype=F64)})
    ds = dynprobe.run("fixedpoints", ghost, rounds=3)
    assert int(ds.fixed_points) == 0 and int(ds.slow_points) == 1
    assert str(ds.kind.values[0]) == "slow"
    assert float(ds.state.values[0, 0]) == pytest.approx(0.0, abs=1e-5)
    assert float(ds.speed.values[0]) == pytest.approx(0.5 * np.tanh(mu), rel=1e-8)
    none = dynprobe.run("fixedpoints", ghost, rounds=3, slow=0.0)
    assert int(none.slow_points) == 0 and none.sizes["point"] == 1 and not none.valid.values.any()


def _lstm_fixed_points_by_grid() -> np.ndarray:
    """Fixed points of the bias-free 2-D LSTM from the reduced equation in h alone: at a fixed
    point c = i g / (1 − f) and h = o tanh(c), the gates being functions of h. A dense grid in
    (−1, 1)² seeds fsolve; distinct roots are returned as full states (h, c)."""
    from dynprobe.plugins.models.lstm2d import W_HH

    W = np.array(W_HH).reshape(8, 2)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731

    def gates(h):
        a = W @ h
        return sig(a[0:2]), sig(a[2:4]), np.tanh(a[4:6]), sig(a[6:8])

    def reduced(h):
        i, f, g, o = gates(h)
        return o * np.tanh(i * g / (1 - f)) - h

    roots = []
    for h0 in np.stack(np.meshgrid(np.linspace(-0.99, 0.99, 41), np.linspace(-0.99, 0.99, 41)), -1).reshape(-1, 2):
        with np.errstate(all="ignore"):  # fsolve may step where f = 1 (c unbounded)
            h, _, ok, _ = fsolve(reduced, h0, full_output=True, xtol=1e-14)
        if ok == 1 and np.abs(reduced(h)).max() < 1e-12 and not any(np.abs(h - r).max() < 1e-8 for r in roots):
            roots.append(h)
    out = []
    for h in roots:
        i, f, g, _ = gates(h)
        out.append(np.concatenate([h, i * g / (1 - f)]))
    return np.array(out)


def test_chaotic_lstm_fixed_points_by_a_second_method() -> None:
    lstm = dynprobe.load_system("lstm2d_chaotic")
    ds = dynprobe.run("fixedpoints", lstm, rounds=4)
    truth = _lstm_fixed_points_by_grid()
    found = ds.state.values[ds.kind.values == "fixed"]
    assert len(found) == len(truth) >= 1
    np.testing.assert_allclose(found[_match(truth, found)], truth, atol=1e-10)
    assert not ds.stable.values.any()  # the attractor is chaotic: no stable fixed point
    assert list(ds.unit_part.values) == ["h", "h", "c", "c"]


def test_trained_flipflop_has_eight_memories_and_the_cube_of_saddles() -> None:
    model = trained_flipflop(0)
    system = dynprobe.wrap(model.rnn)  # float32 weights: the search runs on their float64 map
    ds = dynprobe.run("fixedpoints", system)
    attract = iterate_attractors(system, starts=1000, steps=500)[:, 0]
    stable = ds.state.values[ds.stable.values]
    assert len(attract) == 8 and len(stable) == 8
    np.testing.assert_allclose(stable, attract[_match(stable, attract)], atol=1e-9)
    assert np.bincount(ds.unstable_dims.values[ds.valid.values]).tolist() == [8, 12, 6, 1]
    assert bool(ds.complete) and (ds.speed.values <= 1e-10).all()
    verdict = dynprobe.plugins.fixedpoints.verdicts(ds)[0]
    assert verdict.topic == "attractors" and verdict.verdict == "8 stable fixed points: a 3-bit memory"
    # the readout at each stable point is a corner of the cube: the network's 8 memories
    out = model.readout(torch.tensor(stable, dtype=torch.float32)).detach().numpy()
    assert sorted(map(tuple, np.sign(out).astype(int).tolist())) == sorted(
        (a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1))


def test_sequence_drive_supplies_the_starts_of_the_held_input_map() -> None:
    """FixedPointFinder's set-up: states sampled along input-driven trajectories, fixed points of
    the map with the input at zero."""
    model = trained_flipflop(0)
    x, _ = flipflop_batch(torch.Generator().manual_seed(5), batch=16, T=40)
    driven = dynprobe.wrap(model.rnn, drive=dynprobe.sequence(x))
    ds = dynprobe.run("fixedpoints", driven, samples=16)  # steps: as long as the 40-step sequence allows
    auto = dynprobe.run("fixedpoints", dynprobe.wrap(model.rnn))
    assert int(ds.fixed_points) == int(auto.fixed_points) == 27 and int(ds.stable_points) == 8
    assert ds.attrs["held_input"] == "0, 0, 0" and ds.attrs["start_drive"].startswith("sequence")
    np.testing.assert_allclose(np.sort(ds.state.values, axis=0), np.sort(auto.state.values, axis=0), atol=1e-10)


def test_ensemble_pads_points_and_equals_single_runs() -> None:
    one, _, _ = bistable(2.0)
    ens = one.with_params(a=torch.tensor([2.0, 0.8], dtype=F64))  # a < 1: only h = 0, stable
    ds = check_probe("fixedpoints", ens, rounds=4)
    assert ds.state.dims == ("network", "point", "unit") and ds.sizes["point"] == 27
    assert ds.fixed_points.values.tolist() == [27, 1]
    assert ds.valid.values.sum(1).tolist() == [27, 1]
    pad = ~ds.valid.values[1]
    assert np.isnan(ds.state.values[1][pad]).all() and (ds.kind.values[1][pad] == "").all()
    alone = dynprobe.run("fixedpoints", ens.network(0), rounds=4)
    np.testing.assert_allclose(np.sort(ds.state.values[0], axis=0), np.sort(alone.state.values, axis=0), atol=1e-12)
    assert "stable fixed points: 1 to 8" in dynprobe.plugins.fixedpoints.verdicts(ds)[0].verdict


def test_plot_and_summary(tmp_path) -> None:
    system, _, _ = bistable(2.0)
    ds = dynprobe.run("fixedpoints", system, rounds=3)
    fig = ds.dynprobe.plot()
    assert len(fig.axes) == 2
    fig.savefig(tmp_path / "fp.png")
    assert (tmp_path / "fp.png").stat().st_size > 10_000
    rows = dict(ds.dynprobe.summary())
    assert rows["fixed points"].startswith("27 (8 stable; 12 with 1 unstable direction")


def test_bad_input_is_refused_in_one_line() -> None:
    system, _, _ = bistable(2.0)
    with pytest.raises(ProbeParameterError, match="takes no input"):
        dynprobe.run("fixedpoints", system, inputs=0.5)
    with pytest.raises(ProbeParameterError, match="extra_starts of shape"):
        dynprobe.run("fixedpoints", system, extra_starts=np.zeros((4, 2)))
    with pytest.raises(ProbeParameterError, match="batch, rounds"):
        dynprobe.run("fixedpoints", system, batch=0)
    rnn = dynprobe.wrap(torch.nn.RNN(2, 3))
    with pytest.raises(ProbeParameterError, match="does not fit M=2"):
        dynprobe.run("fixedpoints", rnn, inputs=[(1.0, 2.0, 3.0)])


@pytest.mark.parametrize(("text", "levels"), [("0.5", None), ("0,0.5,1", [[0, 0], [0.5, 0.5], [1, 1]]),
                                              ("[(0.1, 0.2), (0.3, 0.4)]", [[0.1, 0.2], [0.3, 0.4]])])
def test_inputs_from_the_command_line(text: str, levels: list | None) -> None:
    """The option's annotation turns command-line text into one held input or a list of conditions."""
    import typing

    from dynprobe.options import coerce
    from dynprobe.plugins.fixedpoints.probe import fixedpoints, resolve_inputs

    value = coerce(text, typing.get_type_hints(fixedpoints)["inputs"], name="inputs")
    held, grid = resolve_inputs(dynprobe.wrap(torch.nn.RNN(2, 3)), value)
    assert grid is (levels is not None)
    np.testing.assert_allclose(torch.stack(held).numpy(), levels or [[0.5, 0.5]])


def test_extra_starts_are_used_and_reported() -> None:
    system, points, _ = bistable(2.0)
    ds = dynprobe.run("fixedpoints", system, extra_starts=points[:1] + 1e-3, rounds=2, batch=4)
    assert "given" in set(ds.start_source.values)


def test_a_degenerate_fixed_point_is_one_point_with_its_uncertainty() -> None:
    """At the pitchfork a = 1, F(h) = Q tanh(Qᵀh) has J = I at h = 0: Newton converges only
    linearly, so a residual of 1e-10 leaves the point uncertain by ~1e-4 — it must be found once
    (not as a cloud of near-copies), marginal, with an error that covers its distance from 0."""
    system, _, _ = bistable(1.0)
    ds = dynprobe.run("fixedpoints", system, rounds=3)
    assert int(ds.fixed_points) == 1 and not bool(ds.stable[0]) and int(ds.unstable_dims[0]) == 0
    assert int(ds.marginal_dims[0]) == 3
    np.testing.assert_allclose(ds.eigenvalue_real.values[0], 1.0, atol=1e-6)
    assert np.linalg.norm(ds.state.values[0]) <= float(ds.position_error[0]) < 1e-2
    sharp, _, _ = bistable(2.0)
    assert float(dynprobe.run("fixedpoints", sharp, rounds=2).position_error.max()) < 1e-12


def test_diagnose_says_what_the_flipflop_remembers_and_draws_it() -> None:
    from html.parser import HTMLParser

    model = trained_flipflop(0)
    result = dynprobe.diagnose(dynprobe.wrap(model.rnn), probes=["fixedpoints"])
    (row,) = [r for r in result.rows() if r[3].startswith("fixedpoints")]
    assert row[0] == "attractors" and row[1] == "8 stable fixed points: a 3-bit memory"
    assert "27 fixed points" in row[2] and "search complete" in row[2]
    alts = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                alts.append(dict(attrs)["alt"])

    Images().feed(dynprobe.report.render_report(result))
    assert "fixedpoints figure 1" in alts


@pytest.mark.slow
def test_clocked_flipflop_memories_are_period_two_orbits() -> None:
    """The clock variant (a 4th output alternating ±1): its 8 memories are stable period-2
    orbits, reached by plain iteration; every fixed point is unstable; period3 with period=(2,)
    finds the 8 (and computes period 2 only), and bifurcation counts the orbits its samples reach."""
    model = trained_flipflop(0, clock=True)
    system = dynprobe.wrap(model.rnn, dtype=F64)
    attract = iterate_attractors(system, starts=1000, steps=600, period=2)
    assert attract.shape == (8, 2, 16)
    ds = dynprobe.run("period3", system, period=(2,))
    assert ds.period.values.tolist() == [2]
    stable = ds.orbit_state.values[ds.stable.values][:, :2]
    assert len(stable) == 8
    for orbit in attract:  # each attractor is one of the stable orbits found (up to phase)
        d = [np.abs(orbit[:, None] - s[None]).max(-1).min(-1).max() for s in stable]
        assert min(d) < 1e-9
    fixed = dynprobe.run("fixedpoints", system)
    assert int(fixed.stable_points) == 0 and int(fixed.fixed_points) == 27
    sweep = dynprobe.run("bifurcation", system, values=[1.0], samples=8, verify=0)
    ends = system.advance(system.initial_state(8, seed=0), 2000)
    nxt = system.map(ends)
    same = (torch.cdist(ends, ends) < 1e-6) | (torch.cdist(ends, nxt) < 1e-6)  # one orbit, either phase
    ids = sweep.attractor.values[0]
    np.testing.assert_array_equal(ids[:, None] == ids[None], same.numpy())
    assert int(sweep.attractors[0]) == len(set(ids.tolist())) >= 2
