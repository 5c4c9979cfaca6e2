"""period3 / find_periodic_orbits on n-D maps: Levenberg–Marquardt from many starts.

Oracles: a linear contraction (only the fixed point 0, multipliers = eigenvalues of A); the
Hénon map (fixed points and period-2 orbit in closed form, product of multipliers = b^p, no
period-3 orbit at a = 1.4, b = 0.3); an LSTM's full (h, c) state, every orbit re-checked with
the module's own forward and its multipliers against an autograd Jacobian of that forward.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from systems import henon_system as henon
from systems import linear_system, logistic_system

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.periodic import find_periodic_orbits
from dynprobe.testing import check_probe

D = torch.float64


def test_linear_contraction_has_only_the_origin():
    A = torch.tensor([[0.5, 0.3, 0.0], [-0.2, 0.4, 0.1], [0.0, 0.1, -0.6]], dtype=D)
    system = linear_system(A)
    ds = check_probe("period3", system, period=(1, 2, 4), starts=16, rounds=2)
    assert list(ds.orbits.values) == [1, 0, 0]
    np.testing.assert_allclose(ds.orbit_state.values[0, 0], 0.0, atol=1e-14)
    mu = ds.multiplier_real.values[0] + 1j * ds.multiplier_imag.values[0]
    eig = np.linalg.eigvals(A.numpy())
    np.testing.assert_allclose(np.sort_complex(mu), np.sort_complex(eig), atol=1e-12)
    assert bool(ds.stable.values[0]) and "li_yorke" not in ds


def test_henon_closed_forms():
    a, b = 1.4, 0.3
    ds = check_probe("period3", henon(a, b), period=(1, 2, 3), starts=32, rounds=2)
    assert list(ds.orbits.values) == [2, 1, 0]  # no period-3 orbit at the classic parameters
    fixed = np.sort(ds.orbit_state.values[ds.orbit_period.values == 1][:, 0, 0])
    disc = math.sqrt((1 - b) ** 2 + 4 * a)
    np.testing.assert_allclose(fixed, [(-(1 - b) - disc) / (2 * a), (-(1 - b) + disc) / (2 * a)], atol=1e-13)
    two = ds.orbit_state.values[ds.orbit_period.values == 2][0, :2]  # phase 0: smaller x
    s = (1 - b) / a  # x1 + x2
    prod = (s * (1 - b) - 2 + a * s**2) / (2 * a)  # x1 * x2
    x1, x2 = (s - math.sqrt(s**2 - 4 * prod)) / 2, (s + math.sqrt(s**2 - 4 * prod)) / 2
    np.testing.assert_allclose(two, [[x1, b * x2], [x2, b * x1]], atol=1e-13)
    mu = ds.multiplier_real.values + 1j * ds.multiplier_imag.values
    det = np.prod(mu, axis=1).real
    np.testing.assert_allclose(det, (-b) ** ds.orbit_period.values, rtol=1e-10)
    assert (ds.residual.values < 1e-13).all() and not ds.stable.any()


def test_lstm_orbits_are_orbits_of_the_module_itself():
    lstm = dynprobe.model("lstm2d_chaotic")
    system = dynprobe.wrap(lstm).with_init(dynprobe.InitialState(scale=1.0))
    orbits = [find_periodic_orbits(system, p, 48, seed=1, rounds=3) for p in (1, 2, 3)]
    assert sum(o.states.shape[0] for o in orbits) >= 2
    zero = torch.zeros(1, 1, 1, dtype=D)

    def module_step(state: torch.Tensor) -> torch.Tensor:
        _, (h, c) = lstm(zero, (state[:2].reshape(1, 1, 2), state[2:].reshape(1, 1, 2)))
        return torch.cat([h.reshape(2), c.reshape(2)])

    for found in orbits:
        p = found.period
        for states, mu in zip(found.states, found.multipliers, strict=True):
            x = states[0]
            for i in range(p):
                torch.testing.assert_close(x, states[i], atol=1e-10, rtol=0)
                x = module_step(x)
            torch.testing.assert_close(x, states[0], atol=1e-10, rtol=0)

            def p_steps(v: torch.Tensor, p: int = p) -> torch.Tensor:
                for _ in range(p):
                    v = module_step(v)
                return v

            M = torch.autograd.functional.jacobian(p_steps, states[0])
            ref = torch.linalg.eigvals(M)
            np.testing.assert_allclose(np.sort_complex(mu.numpy()), np.sort_complex(ref.numpy()), atol=1e-8)


def test_newton_finds_the_logistic_three_cycles():
    logistic = logistic_system(3.835)
    found = find_periodic_orbits(logistic, 3, 32, rounds=3)
    assert found.states.shape[0] == 2 and found.stable.tolist().count(True) == 1
    attractor = logistic.trajectory(torch.tensor([[0.3]], dtype=D), 3000)[-3:, 0, 0]
    stable = found.states[found.stable][0, :, 0]
    torch.testing.assert_close(torch.sort(stable).values, torch.sort(attractor).values, atol=1e-12, rtol=0)


def test_ensemble_of_maps_is_one_batched_search():
    system = henon().with_params(a=torch.tensor([1.0, 1.2, 1.4], dtype=D), b=torch.full((3,), 0.3, dtype=D))
    ds = dynprobe.run("period3", system, period=2, starts=32, rounds=3)
    assert ds.orbits.sel(period=2).values.tolist() == [1, 1, 1]
    for n, a in enumerate([1.0, 1.2, 1.4]):
        s = 0.7 / a
        prod = (s * 0.7 - 2 + a * s**2) / (2 * a)
        two = ds.orbit_state.values[(ds.orbit_network.values == n) & (ds.orbit_period.values == 2)][0, 0, 0]
        assert two == pytest.approx((s - math.sqrt(s**2 - 4 * prod)) / 2, abs=1e-12)


def test_time_varying_drive_does_not_apply():
    rnn = torch.nn.RNN(2, 4).double()
    system = dynprobe.wrap(rnn, drive=dynprobe.sequence(torch.randn(10, 2, dtype=D)))
    probe = dynprobe.list_probes()
    period3 = next(p for p in probe if p.name == "period3")
    assert "time-invariant" in period3.applies(system)
    with pytest.raises(ProbeParameterError, match="time-invariant"):
        dynprobe.run("period3", system)


def test_period_two_asked_is_period_two_computed():
    """``period=(2,)`` computes period 2 only (the flip-flop report: it computed 1 and 3 too)."""
    ds = dynprobe.run("period3", henon(), period=(2,), starts=16, rounds=2)
    assert ds.period.values.tolist() == [2] and set(ds.orbit_period.values.tolist()) == {2}
    assert ds.orbits.values.tolist() == [1] and int(ds.basin_starts.sum()) == int(ds.converged_starts.sum())
    assert ds.new_orbits.dims == ("period", "round") and ds.starts_used.values.tolist() == [16 * ds.sizes["round"]]


def test_rotated_bistable_map_all_27_fixed_points_and_the_8_stable_ones():
    """The issue's first case: period3(period=(1,)) found 19 of 27 and 4 of the 8 stable ones."""
    from fixedpoint_systems import bistable

    system, points, eig = bistable(2.0)
    ds = dynprobe.run("period3", system, period=(1,))
    found = ds.orbit_state.values[:, 0]
    assert len(found) == 27 and int(ds.stable.sum()) == 8 and bool(ds.complete)
    assert np.linalg.norm(found[:, None] - points[None], axis=-1).min(1).max() < 1e-12
