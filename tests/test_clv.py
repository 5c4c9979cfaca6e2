"""The clv probe against exact answers: eigenvectors of linear maps, lyapynov on the Hénon map,
covariance under the tangent map, exponents equal to lyapunov's, angles against scipy."""

from __future__ import annotations

import math
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from systems import linear_system

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import jacobian
from dynprobe.plugins.clv.ginelli import min_principal_angle

DATA = Path(__file__).parent / "data"
SHORT = {"burn_in": 0, "steps": 12, "forward_transient": 60, "backward_transient": 60}


def _at_origin(system: dynprobe.System) -> dynprobe.System:
    """Start on the fixed point 0: the state stays put and the tangents see A at every step."""
    return system.with_init(dynprobe.InitialState(center=torch.zeros(system.state_dim), scale=0.0))


def _eigvecs(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and unit eigenvectors by decreasing modulus."""
    w, E = np.linalg.eig(A)
    order = np.argsort(-np.abs(w))
    return w[order].real, E[:, order].real / np.linalg.norm(E[:, order].real, axis=0)


def _abs_cos(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """|cos| of the angles between matching columns (1 = parallel up to sign)."""
    return np.abs(np.sum(U * V, axis=-2)) / (np.linalg.norm(U, axis=-2) * np.linalg.norm(V, axis=-2))


def test_non_normal_triangular_map_gives_eigenvectors_not_gram_schmidt_vectors():
    A = np.array([[0.9, 5.0, 1.0], [0.0, -0.5, 3.0], [0.0, 0.0, 1.2]])
    w, E = _eigvecs(A)
    ds = dynprobe.run("clv", _at_origin(linear_system(torch.tensor(A))), vector_times=(0, 11), **SHORT)
    V = ds.vectors.isel(sample=0).values  # [vector_time, unit, exponent]
    np.testing.assert_allclose(_abs_cos(V, E[None]), 1.0, atol=1e-12)
    # the Gram-Schmidt (backward Lyapunov) vectors are the orthonormalized eigenvectors: far from them
    gram_schmidt = np.linalg.qr(E)[0]
    assert _abs_cos(gram_schmidt, E)[1:].max() < 0.9
    # a covariant vector of a linear map stretches by exactly |eigenvalue| at every step
    np.testing.assert_allclose(ds.covariant_rate.isel(sample=0).values, np.log(np.abs(w))[None].repeat(12, 0), atol=1e-12)
    # exponents are O(1/T) from log|w| (the random initial tangents' transient)
    np.testing.assert_allclose(ds.exponents.values[0], np.log(np.abs(w)), atol=0.05)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.floats(-1.5, 0.5), st.lists(st.floats(0.3, 1.0), min_size=1, max_size=3))
def test_diagonalizable_maps_give_their_eigenvectors(seed, lowest, gaps):
    rng = np.random.default_rng(seed)
    n = len(gaps) + 1
    E = rng.standard_normal((n, n))
    mu = np.exp(lowest + np.concatenate([[0.0], np.cumsum(gaps)])) * rng.choice([-1.0, 1.0], n)
    A = E @ np.diag(mu) @ np.linalg.inv(E)
    transient = int(math.ceil(40 / min(gaps)))  # e^-40: converged to rounding
    ds = dynprobe.run("clv", _at_origin(linear_system(torch.tensor(A))), burn_in=0, steps=3, forward_transient=transient,
                      backward_transient=transient, vector_times=1)
    _, want = _eigvecs(A)
    assert np.linalg.cond(E) < 1e6
    np.testing.assert_allclose(_abs_cos(ds.vectors.isel(sample=0, vector_time=0).values, want), 1.0, atol=1e-9)


def test_angle_is_the_angle_between_the_eigenspaces():
    rng = np.random.default_rng(1)
    E = rng.standard_normal((4, 4))
    A = E @ np.diag([1.8, 1.3, 0.6, -0.3]) @ np.linalg.inv(E)
    # gaps log(1.8/1.3) = 0.33: 150-step transients converge to e^-49
    ds = dynprobe.run("clv", _at_origin(linear_system(torch.tensor(A))), splits=True, vector_times=1,
                      **{**SHORT, "forward_transient": 150, "backward_transient": 150})
    assert ds.unstable_dim.item() == 2
    for j in (1, 2, 3):
        want = min(scipy.linalg.subspace_angles(E[:, :j], E[:, j:]))
        np.testing.assert_allclose(ds.splitting_angle.sel(split=j).values, want, rtol=1e-10)
    np.testing.assert_allclose(ds.angle.values, ds.splitting_angle.sel(split=2).values, rtol=0)


def test_small_angles_keep_their_digits():
    for theta in (1e-3, 1e-9, 1e-14):
        a = torch.tensor([[1.0], [0.0], [0.0]], dtype=torch.float64)
        b = torch.tensor([[math.cos(theta)], [math.sin(theta)], [0.0]], dtype=torch.float64)
        assert abs(float(min_principal_angle(a, b)) - theta) <= 1e-15 * theta + 1e-30
        ab = torch.cat([a, torch.tensor([[0.0], [0.0], [1.0]], dtype=torch.float64)], -1)  # 2-D span vs a line
        assert abs(float(min_principal_angle(ab, b)) - theta) <= 1e-15 * theta + 1e-30


def _henon_step(h, u, p):
    """x' = 1 - a x x + y, y' = b x, evaluated in exactly the fixture script's order."""
    x, y = h[..., 0], h[..., 1]
    return torch.stack([1.0 - p["a"] * x * x + y, p["b"] * x], dim=-1)


def _henon(a: float, b: float, x0) -> dynprobe.System:
    f64 = torch.float64
    params = {"a": torch.tensor(a, dtype=f64), "b": torch.tensor(b, dtype=f64)}
    return dynprobe.System.from_step(_henon_step, state_dim=2, params=params,
                                     init=dynprobe.InitialState(center=torch.as_tensor(x0, dtype=f64), scale=0.0), name="henon")


def test_henon_vectors_equal_the_stored_lyapynov_vectors():
    """CLVs of the Hénon map at t = 2000 … 2040 from x_0 = (0.1, 0.1), against lyapynov 1.0.1's
    (fixture tests/data/henon_clv.npz, regenerated by tests/data/make_henon_clv.py). The orbit is
    reproduced bit for bit; the vectors agree up to sign to rounding. The exponents' sum is ln b
    exactly (det J = −b at every step)."""
    ref = np.load(DATA / "henon_clv.npz")
    times = ref["times"]
    system = _henon(float(ref["a"]), float(ref["b"]), ref["x0"])
    ds = dynprobe.run("clv", system, burn_in=int(times[0]) - 100, forward_transient=100, steps=len(times),
                      backward_transient=100, vector_times=tuple(range(len(times))))
    np.testing.assert_array_equal(ds.vector_time.values, times)
    np.testing.assert_array_equal(ds.state.isel(sample=0).values, ref["orbit"])
    np.testing.assert_allclose(ds.vectors.isel(sample=0).values, ref["clv"], atol=1e-13)
    assert abs(float(ds.exponents.sum()) - math.log(float(ref["b"]))) < 1e-12
    assert ds.unstable_dim.item() == 1


def test_henon_vectors_equal_lyapynov_run_here():
    """The same comparison against lyapynov itself on a fresh orbit (optional: needs lyapynov)."""
    lyapynov = pytest.importorskip("lyapynov")
    a, b, x0 = 1.4, 0.3, np.array([0.3, -0.2])

    def f(x, t=0.0):
        return np.array([1.0 - a * x[0] * x[0] + x[1], b * x[0]])

    def jac(x, t=0.0):
        return np.array([[-2.0 * a * x[0], 1.0], [b, 0.0]])

    saved = np.random.get_state()  # lyapynov draws its backward start from numpy's global generator
    try:
        np.random.seed(7)
        want, orbit = lyapynov.CLV(lyapynov.DiscreteDS(x0.copy(), 0, f, jac), 2, 150, 80, 30, 80, traj=True)
    finally:
        np.random.set_state(saved)
    ds = dynprobe.run("clv", _henon(a, b, x0), burn_in=150, forward_transient=80, steps=31, backward_transient=80,
                      vector_times=tuple(range(31)))
    np.testing.assert_array_equal(ds.state.isel(sample=0).values, orbit)
    got = ds.vectors.isel(sample=0).values
    np.testing.assert_allclose(_abs_cos(got, np.stack(want)), 1.0, atol=1e-13)


def _lstm() -> dynprobe.System:
    """The attractors paper's chaotic 2-unit LSTM (state h and c: N = 4), exponents about
    0.18, -0.37, -1.7, -4.7: chaotic, with gaps that 100-step transients resolve to e^-55."""
    return dynprobe.load_system("lstm2d_chaotic")


def test_vectors_are_covariant_and_grow_at_their_local_rates():
    system = _lstm()
    ds = dynprobe.run("clv", system, steps=20, burn_in=50, forward_transient=100, backward_transient=100,
                      vector_times=(7, 8), samples=2)
    assert (ds.unstable_dim.values == 1).all()
    t = int(ds.vector_time[0])
    for s in range(2):
        h = torch.tensor(ds.state.isel(sample=s, vector_time=0).values)[None]
        J = jacobian(system, h, t)[0].numpy()
        V0, V1 = ds.vectors.isel(sample=s, vector_time=0).values, ds.vectors.isel(sample=s, vector_time=1).values
        np.testing.assert_allclose(_abs_cos(J @ V0, V1), 1.0, atol=1e-12)
        np.testing.assert_allclose(np.log(np.linalg.norm(J @ V0, axis=0)),
                                   ds.covariant_rate.isel(sample=s).sel(time=t).values, atol=1e-12)


def test_exponents_equal_lyapunov_on_the_same_settings():
    system = _lstm()
    ds = dynprobe.run("clv", system, steps=30, burn_in=20, forward_transient=40, backward_transient=50, samples=3, seed=4)
    # the same settings: a QR every step, as clv does (lyapunov's default reorth_every is "auto")
    ly = dynprobe.run("lyapunov", system, steps=120, burn_in=20, samples=3, seed=4, reorth_every=1)
    np.testing.assert_allclose(np.sort(ds.exponents.values, -1)[:, ::-1], ly.exponents.values, rtol=1e-12, atol=1e-14)
    top = dynprobe.run("clv", system, k=2, steps=30, burn_in=20, forward_transient=40, backward_transient=50, seed=4)
    ly2 = dynprobe.run("lyapunov", system, k=2, steps=120, burn_in=20, seed=4, reorth_every=1)
    np.testing.assert_allclose(top.exponents.values, ly2.exponents.values, rtol=1e-12, atol=1e-14)


def test_top_k_vectors_equal_the_first_k_of_all():
    system = _lstm()
    run = {"steps": 10, "burn_in": 30, "forward_transient": 150, "backward_transient": 150, "vector_times": 2}
    full, top = dynprobe.run("clv", system, **run), dynprobe.run("clv", system, k=2, **run)
    np.testing.assert_allclose(top.vectors.values, full.vectors.isel(exponent=slice(0, 2)).values, atol=1e-10)


def test_an_annihilated_direction_leaves_the_others_exact():
    A = np.array([[2.0, 1.0, 0.5], [0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])  # eigenvalue 0: R_33 = 0
    ds = dynprobe.run("clv", _at_origin(linear_system(torch.tensor(A))), vector_times=1, **SHORT)
    assert ds.defined_vectors.item() == 2
    V = ds.vectors.isel(sample=0, vector_time=0).values
    assert np.isnan(V[:, 2]).all() and np.isfinite(V[:, :2]).all()
    np.testing.assert_allclose(_abs_cos(V[:, :2], _eigvecs(A)[1][:, :2]), 1.0, atol=1e-12)
    assert ds.exponents.values[0, 2] == -np.inf
    np.testing.assert_allclose(ds.angle.values, min(scipy.linalg.subspace_angles(_eigvecs(A)[1][:, :1],
                                                                                 _eigvecs(A)[1][:, 1:2])), rtol=1e-10)


def test_divergence_is_flagged_never_averaged():
    system = dynprobe.System.from_step(lambda h, u, p: h * h + 1.0, state_dim=1, params={},
                                       init=dynprobe.InitialState(low=1.0, high=2.0), dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="diverged"):
        ds = dynprobe.run("clv", system, **SHORT)
    assert bool(ds.diverged.all())
    assert np.isnan(ds.exponents.values).all() and np.isnan(ds.vectors.values).all() and np.isnan(ds.angle.values).all()
    assert str(ds.hyperbolicity.values) == "no_splitting"


@pytest.mark.parametrize("kw, match", [
    ({"k": 4}, "k=4 is outside 1..N=3"),
    ({"vector_times": (0, 12)}, "offsets in 0..steps-1=11"),
    ({"vector_times": 0}, "vector_times=0 must be >= 1"),
    ({"unstable": 5}, "unstable=5 must lie in 0..k=3"),
    ({"memory_limit_gb": 1e-9}, "needs .* GB .* raise the limit"),
], ids=["k", "offsets", "count", "unstable", "memory"])
def test_bad_parameters_get_one_line_errors(kw, match):
    system = linear_system(torch.eye(3))
    with pytest.raises(ProbeParameterError, match=match) as info:
        dynprobe.run("clv", system, **{**SHORT, **kw})
    assert "\n" not in str(info.value)
