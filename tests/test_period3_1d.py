"""period3 on 1-D maps: exact piecewise-linear enumeration, grid + bisection, Sharkovsky, Lemma 4.2.

Oracles: the tent map's orbits (2ᵖ fixed points of fᵖ, necklace counts of orbits, {2/9, 4/9,
8/9}); the logistic map at r = 3.835 (attracting 3-cycle, checked against a long simulation and
against the roots of the degree-8 polynomial f³(x) − x); Sharkovsky's theorem as a property of
what the exact finder returns; the exact and grid methods against each other (hypothesis).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from systems import logistic_system as logistic
from systems import tent_system

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.models.feedforward1d import feedforward_system
from dynprobe.plugins.periodic.certificate import lemma42
from dynprobe.plugins.periodic.feedforward import dense_map
from dynprobe.plugins.periodic.orbits1d import sharkovsky_key
from dynprobe.plugins.periodic.pwl import compose
from dynprobe.testing import check_probe

D = torch.float64


def necklaces(p: int) -> int:
    """Orbits of least period p of the doubling / tent map: (1/p) sum_{d | p} mu(d) 2^(p/d)."""
    def mu(n: int) -> int:
        out, k = 1, 2
        while k * k <= n:
            if n % k == 0:
                n //= k
                if n % k == 0:
                    return 0
                out = -out
            k += 1
        return -out if n > 1 else out
    return sum(mu(d) * 2 ** (p // d) for d in range(1, p + 1) if p % d == 0) // p


def test_tent_map_orbits_are_the_closed_form_ones():
    ds = check_probe("period3", tent_system(), period=(2, 4, 5))
    assert ds.attrs["method"] == "exact"
    periods = list(ds.period.values)
    assert list(ds.fixed_points.values) == [2**p for p in periods]
    assert list(ds.orbits.values) == [necklaces(p) for p in periods]
    three = ds.orbit_state.sel(unit=0).values[ds.orbit_period.values == 3][:, :3]
    np.testing.assert_allclose(three, [[2 / 9, 4 / 9, 8 / 9], [2 / 7, 4 / 7, 6 / 7]], atol=1e-15)
    mult = np.abs(ds.multiplier_real.values[:, 0])
    np.testing.assert_allclose(mult, 2.0 ** ds.orbit_period.values)
    assert not ds.stable.any() and bool(ds.li_yorke) and int(ds.sharkovsky_leader) == 3


def test_grid_and_newton_find_the_tent_orbit_too():
    grid = dynprobe.run("period3", tent_system(), method="grid", interval=(-0.5, 1.5), grid=2001)
    assert list(grid.orbits.values) == [2, 2]
    tent = dynprobe.System.from_step(lambda h, u, p: torch.where(h <= 0.5, 2 * h, 2 * (1 - h)), state_dim=1,
                                     init=dynprobe.InitialState(low=0.0, high=1.0), name="tent")
    newton = dynprobe.run("period3", tent, starts=256)
    assert newton.attrs["method"] == "newton"  # 1-D, not piecewise-linear by declaration, no interval
    pts = newton.orbit_state.sel(unit=0).values[newton.orbit_period.values == 3][:, :3]
    assert any(np.allclose(row, [2 / 9, 4 / 9, 8 / 9], atol=1e-12) for row in pts)


def test_logistic_3835_has_an_attracting_three_cycle():
    system = logistic(3.835)
    ds = check_probe("period3", system, interval=(0.0, 1.0))
    assert ds.attrs["method"] == "grid" and int(ds.grid_suspect_cells.sum()) == 0
    np.testing.assert_allclose(sorted(ds.orbit_state.values[ds.orbit_period.values == 1][:, 0, 0]),
                               [0.0, 1 - 1 / 3.835], atol=1e-14)
    three = ds.orbit_period.values == 3
    assert three.sum() == 2 and ds.stable.values[three].sum() == 1
    stable = ds.orbit_state.values[three & ds.stable.values][0, :, 0]
    # second method: the attractor reached by simulation
    x = torch.tensor([[0.3]], dtype=D)
    traj = system.trajectory(x, 3000)[-3:, 0, 0].numpy()
    np.testing.assert_allclose(np.sort(traj), np.sort(stable), atol=1e-12)
    # third: all roots of the degree-8 polynomial f^3(x) - x
    f = np.polynomial.Polynomial([0.0, 3.835, -3.835])
    roots = (f(f(f)) - np.polynomial.Polynomial([0, 1])).roots()
    real = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
    np.testing.assert_allclose(np.sort(ds.orbit_state.values[:, :, 0][np.isfinite(ds.orbit_state.values[:, :, 0])]),
                               real, atol=1e-10)


def test_sharkovsky_order_and_theorem_hold_for_what_the_exact_finder_returns():
    assert sorted(range(1, 17), key=sharkovsky_key) == [3, 5, 7, 9, 11, 13, 15, 6, 10, 14, 12, 16, 8, 4, 2, 1]
    ds = dynprobe.run("period3", dynprobe.model("rn", k=8, sigma2=40.0, networks=3000, seed=1), period=(2, 4, 5, 6))
    found = ds.has_period
    three = ds.li_yorke.values
    assert three.sum() > 20  # enough chaotic networks for the test to mean something
    assert found.values[three].all()  # period 3 implies every period
    five = found.sel(period=5).values
    assert found.sel(period=[1, 2, 4, 6]).values[five].all()  # 5 implies 6, 4, 2, 1
    two = found.sel(period=2).values
    assert found.sel(period=1).values[two].all()
    assert (ds.sharkovsky_leader.values[three] == 3).all()
    for variant in ({"row": 1, "depth": 3}, {"row": 4, "depth": 3}, {"row": 3, "k": 4, "clip": True}):
        found = dynprobe.run("period3", dynprobe.model("fig3", networks=3000, seed=4, **variant),
                             period=(2, 4, 5)).has_period
        for strong, weaker in ((3, [1, 2, 4, 5]), (5, [1, 2, 4]), (4, [1, 2]), (2, [1])):
            assert found.sel(period=weaker).values[found.sel(period=strong).values].all(), (variant, strong)


def test_roots_next_to_far_knots_are_exact():
    """f = 0.3 for x < 200, then slope 1e-3: f^p has knots near 1e8; the fixed point is 0.3 exactly."""
    far = feedforward_system([torch.tensor([[1.0]], dtype=D), torch.tensor([[1e-3]], dtype=D)],
                             [torch.tensor([-200.0], dtype=D), torch.tensor([0.3], dtype=D)], ["relu", "identity"])
    ds = dynprobe.run("period3", far, period=(2, 4))
    assert list(ds.orbits.values) == [1, 0, 0, 0] and float(ds.orbit_state[0, 0, 0]) == 0.3


def test_lemma42_certificate_matches_a_loop_and_implies_period_three():
    system = dynprobe.model("rn", k=32, sigma2=400.0, networks=4000, seed=2)
    ds = dynprobe.run("period3", system)
    cert, ly = ds.lemma42_certificate.values, ds.li_yorke.values
    assert cert.sum() > 50 and (ly[cert]).all() and ly.sum() >= cert.sum()
    a = system.params["w1"][:, 0, :].numpy()
    b = -system.params["b0"].numpy()
    for n in range(40):
        order = np.argsort(b[n])
        bs, as_ = b[n][order], a[n][order]
        y = [sum(as_[l] * (bs[i] - bs[l]) for l in range(i)) for i in range(len(bs))]
        pairs = [(i, l) for i in range(len(y)) for l in range(i + 1, len(y)) if y[i] > 1 and y[l] < 0]
        assert bool(pairs) == bool(cert[n])
        if pairs:
            i = min(p[0] for p in pairs)
            assert (ds.lemma42_i.values[n], ds.lemma42_l.values[n]) == (i + 1, min(l for j, l in pairs if j == i) + 1)
    np.testing.assert_allclose(lemma42(torch.tensor(a[:3]), torch.tensor(b[:3])).y[:, 0], 0.0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 12), sigma2=st.floats(0.5, 60.0), seed=st.integers(0, 10_000),
       row=st.integers(0, 5), clip=st.booleans())
@example(k=4, sigma2=36.21172438871294, seed=4652, row=0, clip=False)  # two 3-cycles within 6e-4: one grid cell
def test_exact_and_grid_agree_on_random_relu_maps(k, sigma2, seed, row, clip):
    """The grid finds what it can resolve: wherever it flags no suspect cell and the exact roots
    of f^p(x) = x lie more than two grid steps apart (two roots in one cell are what a grid cannot
    see, module docstring of grid.py), it counts exactly the exact method's roots; it never
    counts more."""
    system = (dynprobe.model("rn", k=k, sigma2=sigma2, networks=30, seed=seed) if row == 0
              else dynprobe.model("fig3", row=row, k=k, clip=clip, networks=30, seed=seed))
    span = (-2.0, 2.0)
    exact = dynprobe.run("period3", system, interval=span)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grid = dynprobe.run("period3", system, method="grid", interval=span, grid=4001)
    quiet = grid.grid_suspect_cells.sum("period").values == 0
    quiet &= _roots_apart(exact, system.networks, 2 * (span[1] - span[0]) / 4000)
    same = (exact.fixed_points == grid.fixed_points).all("period").values
    assert same[quiet].all()
    assert (grid.fixed_points <= exact.fixed_points).all()
    assert (exact.li_yorke.values[quiet] == grid.li_yorke.values[quiet]).all()


def _roots_apart(ds, networks: int, gap: float) -> np.ndarray:
    """Per network: every two points of its orbits (the roots of f^p(x) = x) lie > ``gap`` apart."""
    out = np.ones(networks, dtype=bool)
    points = ds.orbit_state.values[..., 0]  # [orbit, phase]
    for n in range(networks):
        x = np.sort(points[ds.orbit_network.values == n].ravel())
        x = x[np.isfinite(x)]
        out[n] = x.size < 2 or np.diff(x).min() > gap
    return out


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 10), depth=st.sampled_from([2, 3]), row=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_composed_pieces_evaluate_like_the_network_everywhere(k, depth, row, seed):
    system = dynprobe.model("fig3", row=row, k=k, depth=depth, networks=8, seed=seed)
    f = dense_map(system)
    h = compose(f, compose(f, f.ragged()))
    x = torch.cat([torch.linspace(-5, 5, 301, dtype=D), torch.tensor([-1e4, 1e4], dtype=D)])
    want = system.map(system.map(system.map(x.expand(8, -1)[..., None].contiguous())))[..., 0]
    for b in range(8):
        sl = slice(int(h.start[b]), int(h.start[b + 1]))
        j = torch.searchsorted(h.x[sl], x)
        a = (j - 1).clamp(min=0)
        slope = torch.where(j == 0, h.s_left[b], h.s[sl][a])
        got = h.y[sl][a] + slope * (x - h.x[sl][a])
        torch.testing.assert_close(got, want[b], rtol=1e-9, atol=1e-9)


def test_ensemble_equals_its_networks_one_by_one():
    system = dynprobe.model("fig3", row=2, k=4, networks=6, seed=3)
    ds = dynprobe.run("period3", system, period=4)
    for n in range(6):
        one = dynprobe.run("period3", system.network(n), period=4)
        np.testing.assert_array_equal(one.fixed_points.values, ds.fixed_points.values[n])
        mine = ds.orbit_network.values == n
        np.testing.assert_allclose(one.orbit_state.values, ds.orbit_state.values[mine], atol=1e-12)


def test_bad_input_gets_one_line_errors():
    with pytest.raises(ProbeParameterError, match="needs a finite interval"):
        dynprobe.run("period3", logistic(3.9), method="grid")
    with pytest.raises(ProbeParameterError, match="method='exact' needs a piecewise-linear"):
        dynprobe.run("period3", logistic(3.9), method="exact")
    with pytest.raises(ProbeParameterError, match="period must be"):
        dynprobe.run("period3", tent_system(), period=0)
    with pytest.raises(ProbeParameterError, match="a < b"):
        dynprobe.run("period3", tent_system(), interval=(1.0, 0.0))
