"""The matrix-free (Krylov-subspace) Levenberg–Marquardt against the dense one and closed forms.

* in the full Krylov space (m = N) the damped step is the dense LM step (AᵀA + μI)⁻¹(−AᵀG) and
  the undamped one Newton's −A⁻¹G — an identity, checked to rounding;
* forced on the small systems the dense solver is tested on, it finds the same points: all 27 of
  the rotated (and sheared) bistable map in closed form, the 27 of the trained flip-flop equal
  to the dense search's, the 4 period-2 memories of the clocked map, and at the pitchfork one
  marginal point whose error covers its distance from the exact zero;
* just above N = KRYLOV_MIN (where ``auto`` picks it) refinement from the same starts lands on the same points
  as the dense solver;
* ``period3``'s suggestion beyond N = 256: periods 1 and 2, and a cut search does not claim to
  be complete.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixedpoint_systems import bistable, clocked_memories, trained_flipflop
from torch import nn

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.orbits import KRYLOV_MIN, PeriodMap, refine, resolve_solver, search_system
from dynprobe.orbits.krylov import arnoldi

F64 = torch.float64


def test_full_krylov_space_gives_the_dense_steps() -> None:
    gen = torch.Generator().manual_seed(0)
    n, R = 12, 3
    A = torch.randn(R, n, n, generator=gen, dtype=F64) + 2 * torch.eye(n, dtype=F64)
    G = torch.randn(R, n, generator=gen, dtype=F64)
    basis = arnoldi(lambda v: (A @ v[..., None])[..., 0], -G, eta=0.0, max_dim=n)
    assert basis.V.shape == (R, n, n)
    np.testing.assert_allclose(basis.V.transpose(1, 2) @ basis.V, np.broadcast_to(np.eye(n), (R, n, n)), atol=1e-12)
    newton = torch.linalg.solve(A, -G)
    np.testing.assert_allclose(basis.step(torch.zeros(R, dtype=F64)), newton, rtol=1e-9, atol=1e-11)
    mu = torch.tensor([1e-3, 0.1, 10.0], dtype=F64)
    AtA = A.transpose(1, 2) @ A
    lm = torch.linalg.solve(AtA + mu[:, None, None] * torch.eye(n, dtype=F64), -(A.transpose(1, 2) @ G[..., None])[..., 0])
    np.testing.assert_allclose(basis.step(mu), lm, rtol=1e-9, atol=1e-12)


def test_solver_choice() -> None:
    assert resolve_solver("auto", KRYLOV_MIN - 1) == "dense" and resolve_solver("auto", KRYLOV_MIN) == "krylov"
    assert resolve_solver("dense", 4096) == "dense"
    with pytest.raises(ProbeParameterError, match="solver='newton'"):
        resolve_solver("newton", 3)


@pytest.mark.parametrize("shear", [0.0, 0.4], ids=["rotation", "sheared"])
def test_krylov_finds_all_27_bistable_points_in_closed_form(shear: float) -> None:
    system, points, eig = bistable(2.0, shear)
    ds = dynprobe.run("fixedpoints", system, solver="krylov")
    assert ds.attrs["solver"] == "krylov"
    assert int(ds.fixed_points) == 27 and int(ds.stable_points) == 8 and bool(ds.complete)
    d = np.linalg.norm(ds.state.values[:, None] - points[None], axis=-1)
    idx = d.argmin(1)
    assert len(set(idx.tolist())) == 27 and d.min(1).max() < 1e-12
    lam = ds.eigenvalue_real.values
    np.testing.assert_allclose(np.sort(lam, axis=1), np.sort(eig[idx], axis=1), atol=1e-12)
    assert (ds.speed.values <= 1e-10).all() and float(ds.position_error.max()) < 1e-12


def test_krylov_and_dense_agree_on_the_trained_flipflop() -> None:
    system = dynprobe.wrap(trained_flipflop(0).rnn)
    dense = dynprobe.run("fixedpoints", system, solver="dense")
    kry = dynprobe.run("fixedpoints", system, solver="krylov")
    assert int(kry.fixed_points) == int(dense.fixed_points) == 27
    assert int(kry.stable_points) == int(dense.stable_points) == 8 and bool(kry.complete)
    a = dense.state.values[dense.kind.values == "fixed"]
    b = kry.state.values[kry.kind.values == "fixed"]
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert d.min(1).max() < 1e-10 and d.min(0).max() < 1e-10
    fixed = kry.kind.values == "fixed"
    np.testing.assert_array_equal(np.sort(kry.unstable_dims.values[fixed]),
                                  np.sort(dense.unstable_dims.values[dense.kind.values == "fixed"]))
    assert (kry.speed.values[fixed] <= 1e-10).all()


def test_krylov_period_two_memories_of_the_clocked_map() -> None:
    system = clocked_memories(2.0)
    dense = dynprobe.run("period3", system, period=(2,), solver="dense")
    kry = dynprobe.run("period3", system, period=(2,), solver="krylov")
    assert kry.attrs["solver"] == "krylov" and int(kry.stable.sum()) == int(dense.stable.sum()) == 4
    assert int(kry.orbits.sum()) == int(dense.orbits.sum())
    a, b = dense.orbit_state.values, kry.orbit_state.values
    assert np.abs(a[:, None] - b[None]).max((-1, -2)).min(1).max() < 1e-10


def test_krylov_error_covers_the_distance_at_a_pitchfork() -> None:
    system, _, _ = bistable(1.0)
    ds = dynprobe.run("fixedpoints", system, rounds=3, solver="krylov")
    assert int(ds.fixed_points) == 1 and int(ds.marginal_dims[0]) == 3
    assert np.linalg.norm(ds.state.values[0]) <= float(ds.position_error[0]) < 1e-2


def test_same_starts_same_points_above_krylov_min() -> None:
    torch.manual_seed(1)
    n = KRYLOV_MIN + 2
    W = 2.0 * torch.randn(n, n, dtype=F64) / n ** 0.5
    system = dynprobe.System.from_step(lambda h, u, p: torch.tanh(h @ p["W"].T), state_dim=n, params={"W": W})
    pmap = PeriodMap(search_system(system), 1)
    gen = torch.Generator().manual_seed(0)
    # starts near the fixed points ±h* and 0, found by the dense solver from broad starts
    h0 = 0.5 * torch.randn(1, 6, n, generator=gen, dtype=F64)
    dense = refine(pmap, h0, solver="dense", max_iter=30)
    kry = refine(pmap, h0, solver="krylov", max_iter=30)
    assert bool(dense.converged.any())
    pts = dense.h[dense.converged]
    near = pts[:, None] + 1e-3 * torch.randn(pts.shape[0], 1, n, generator=gen, dtype=F64)
    near = near.reshape(1, -1, n)
    d_ref, k_ref = refine(pmap, near, solver="dense"), refine(pmap, near, solver="krylov")
    assert bool(d_ref.converged.all()) and bool(k_ref.converged.all())
    np.testing.assert_allclose(k_ref.h, d_ref.h, atol=1e-10)
    assert float(k_ref.error.max()) < 1e-9 and float(d_ref.error.max()) < 1e-9
    # every start the Krylov solver converged is a zero the map confirms
    assert (pmap.speed(kry.h)[kry.converged] <= 1e-10 * (1 + kry.h.abs().amax(-1))[kry.converged]).all()


def test_period3_suggestion_beyond_256_is_cut_and_says_so() -> None:
    torch.manual_seed(0)
    system = dynprobe.wrap(nn.GRU(4, 300), dtype=F64)
    spec = dynprobe.registry.registry().probe("period3")
    params = spec.suggest(system)
    assert params["period"] == (1, 2) and params["rounds"] == 2
    ds = dynprobe.run("period3", system, **params)
    assert ds.attrs["solver"] == "krylov"
    one = ds.orbit_period.values == 1
    assert one.sum() >= 1 and (ds.residual.values <= 1e-10 * (1 + np.nanmax(np.abs(ds.orbit_state.values), axis=(1, 2)))).all()
    complete = dict(zip(ds.period.values.tolist(), ds.complete.values.tolist()))
    assert not complete[1]  # found in round 0 of 2 rounds: not two quiet rounds


def test_embedded_bistable_above_krylov_min_in_closed_form() -> None:
    """F(h) = Q tanh(g ⊙ Qᵀh) with N = 150, three bistable coordinates (g = 2) and 147
    contracting ones (g = 0.5): 27 fixed points in closed form, found by the Krylov solver that
    ``auto`` picks here; a search that did not find them all must not say it is complete."""
    from fixedpoint_systems import xstar

    n = 150
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    g = torch.full((n,), 0.5, dtype=F64)
    g[:3] = 2.0
    system = dynprobe.System.from_step(lambda h, u, p: torch.tanh((h @ p["Q"]) * p["g"]) @ p["Q"].T, state_dim=n,
                                       params={"Q": Q, "g": g}, init=dynprobe.InitialState(scale=1.0))
    x = xstar(2.0)
    cube = np.array(np.meshgrid(*[(-x, 0.0, x)] * 3, indexing="ij")).reshape(3, -1).T
    truth = np.concatenate([cube, np.zeros((27, n - 3))], axis=1) @ Q.numpy().T
    ds = dynprobe.run("fixedpoints", system, rounds=8)
    assert ds.attrs["solver"] == "krylov"
    d = np.linalg.norm(ds.state.values[:, None] - truth[None], axis=-1)
    assert d.min(1).max() < 1e-12 and len(set(d.argmin(1).tolist())) == int(ds.fixed_points)
    assert int(ds.stable_points) == 8 and int(ds.fixed_points) >= 25
    assert bool(ds.complete) <= (int(ds.fixed_points) == 27)
    y = ds.state.values @ Q.numpy()  # J = Q diag(g(1 − tanh²(g y))) Qᵀ, and tanh(g y) = y at a fixed point
    want = np.sort(g.numpy() * (1 - y ** 2), axis=1)
    np.testing.assert_allclose(np.sort(ds.eigenvalue_real.values, axis=1), want, atol=1e-10)
