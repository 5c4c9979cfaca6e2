"""The ``jacobian`` probe's fast paths against the exact computations they replace (issue 17):
Lanczos σ₁ against the dense SVD, the factor's SVD against the explicit product's, the blocked
triangular product against the dense one, and the replayed backward pass against recomputed
one-step Jacobians and an independent explicit oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.linearize import jacobian as one_step_jacobian
from dynprobe.linearize import qr_positive
from dynprobe.plugins.jacobian import ScaledProduct, explicit_singular_values, gradient_norms, norms, probe
from dynprobe.plugins.jacobian.product import factor_singular_values, triangular_product

EPS = np.finfo(np.float64).eps


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _with_spectrum(n: int, sv: torch.Tensor, seed: int) -> torch.Tensor:
    U, _ = qr_positive(torch.randn(n, n, generator=_gen(seed), dtype=torch.float64))
    V, _ = qr_positive(torch.randn(n, n, generator=_gen(seed + 1), dtype=torch.float64))
    return (U * sv) @ V.mT


@pytest.mark.parametrize("kind", ["gaussian", "near_tie", "exact_tie", "orthogonal", "rank_one", "graded"])
def test_lanczos_spectral_norm_is_the_dense_svds_to_machine_precision(kind):
    n = norms.LANCZOS_MIN_N + 13
    if kind == "gaussian":
        A = torch.randn(2, n, n, generator=_gen(0), dtype=torch.float64)
    else:
        sv = {"near_tie": torch.cat([torch.tensor([1.0, 1.0 - 1e-9]), torch.rand(n - 2, generator=_gen(3)) * 0.99]),
              "exact_tie": torch.cat([torch.tensor([2.0, 2.0, 2.0]), torch.rand(n - 3, generator=_gen(3))]),
              "orthogonal": torch.ones(n),
              "rank_one": torch.cat([torch.tensor([3.0]), torch.zeros(n - 1)]),
              "graded": torch.exp(-torch.arange(n, dtype=torch.float64) * 0.3)}[kind].to(torch.float64)
        A = torch.stack([_with_spectrum(n, sv, 5), _with_spectrum(n, sv, 9)])
    exact = torch.linalg.matrix_norm(A, ord=2)
    fast = norms.spectral_norm(A)
    np.testing.assert_allclose(fast.numpy(), exact.numpy(), rtol=50 * EPS, atol=0)


def test_lanczos_warm_start_carries_the_top_left_singular_vector():
    n = norms.LANCZOS_MIN_N + 1
    A = torch.randn(n, n, generator=_gen(1), dtype=torch.float64)
    start = [None]
    first = norms.spectral_norm(A[None], start)
    U, S, _ = torch.linalg.svd(A)
    assert abs(abs(float(torch.from_numpy(start[0]) @ U[:, 0])) - 1) < 1e-10
    # a second, perturbed matrix starts from that vector and still gets its own σ₁
    B = A + 1e-3 * torch.randn(n, n, generator=_gen(2), dtype=torch.float64)
    second = norms.spectral_norm(B[None], start)
    assert float(first[0]) == pytest.approx(float(S[0]), rel=50 * EPS)
    assert float(second[0]) == pytest.approx(float(torch.linalg.matrix_norm(B, ord=2)), rel=50 * EPS)


def test_spectral_norm_of_zero_and_non_finite_matrices():
    n = norms.LANCZOS_MIN_N
    A = torch.zeros(3, n, n, dtype=torch.float64)
    A[1, 0, 0] = float("nan")
    A[2] = torch.eye(n, dtype=torch.float64) * 0.5
    out = norms.spectral_norm(A)
    assert float(out[0]) == 0.0 and np.isnan(float(out[1])) and float(out[2]) == pytest.approx(0.5, rel=50 * EPS)


@pytest.mark.parametrize("n", [5, 129, 257, 300])
def test_triangular_product_is_the_dense_product(n):
    A = torch.randn(2, n, n, generator=_gen(n), dtype=torch.float64).triu()
    B = torch.randn(n, n, generator=_gen(n + 1), dtype=torch.float64).triu()
    dense = A @ B
    fast = triangular_product(A, B)
    assert torch.equal(torch.tril(fast, -1), torch.zeros_like(fast))
    # entry (i, j) sums n terms of size |A||B|: the two summation orders agree to ~n ε |A||B|
    bound = n * EPS * (A.abs() @ B.abs())
    assert bool(((fast - dense).abs() <= bound).all())


@pytest.mark.parametrize("scale", [0.7, 3.0])
def test_factor_svd_is_the_explicit_products_svd(scale):
    """Σ of D·R̂ against Σ of P = J_T ⋯ J_1 formed explicitly; both are ε·σ₁-accurate in absolute terms."""
    n, T = 12, 9
    Js = [scale * torch.randn(n, n, generator=_gen(10 + t), dtype=torch.float64) / np.sqrt(n) for t in range(T)]
    Q0, _ = qr_positive(torch.randn(n, n, generator=_gen(99), dtype=torch.float64))
    prod = ScaledProduct.start(Q0)
    P = torch.eye(n, dtype=torch.float64)
    for J in Js:
        prod.update(J @ prod.Q)
        P = J @ P
    sv_f, ok_f = factor_singular_values(prod.log_d, prod.Rhat)
    sv_e, ok_e = explicit_singular_values(P)
    both = ok_f & ok_e
    assert both[0] and int(both.sum()) >= int(ok_e.sum()) - 1  # the same ones resolved, bar one at the threshold
    tol = 100 * T * EPS * float(sv_e[0])
    assert float((sv_f - sv_e)[both].abs().max()) <= tol


def test_factor_svd_resolves_nothing_where_the_product_overflows():
    log_d = torch.tensor([800.0, 10.0, -5.0], dtype=torch.float64)
    sv, ok = factor_singular_values(log_d, torch.eye(3, dtype=torch.float64))
    assert not bool(ok.any())
    sv, ok = factor_singular_values(torch.full((3,), -float("inf"), dtype=torch.float64), torch.eye(3))
    assert not bool(ok.any()) and bool((sv == 0).all())


def _trajectory_jacobians(system, samples, seed, T):
    h = system.initial_state(samples, seed=seed)
    Js = []
    for t in range(T):
        Js.append(one_step_jacobian(system, h, t).to(torch.float64))
        h = system.advance(h, 1, start=t)
    return Js


@pytest.fixture(scope="module")
def wide_rnn():
    n = norms.LANCZOS_MIN_N + 10  # the Lanczos path
    net = dynprobe.model("vanilla", input_size=2, hidden_size=n, sigma_w=1.4, sigma_v=0.5, dtype=torch.float64, seed=3)
    u = torch.randn(12, 2, 2, dtype=torch.float64, generator=_gen(4))
    return dynprobe.wrap(net, drive=dynprobe.sequence(u))


def test_replayed_backward_pass_equals_recomputed_jacobians_and_an_explicit_oracle(wide_rnn, monkeypatch):
    T = 8
    fast = dynprobe.run("jacobian", wide_rnn, horizons=(2, T), samples=2, step_stats=False)
    monkeypatch.setattr(probe, "REPLAY_BYTES", 0)  # recompute every J_t from the stored states
    slow = dynprobe.run("jacobian", wide_rnn, horizons=(2, T), samples=2, step_stats=False)
    np.testing.assert_allclose(fast.log_grad_norm.values, slow.log_grad_norm.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.log_grad_rms.values, slow.log_grad_rms.values, rtol=0, atol=1e-12)
    # independent oracle: dense products of the one-step Jacobians, their SVD and Frobenius norms
    Js = _trajectory_jacobians(wide_rnn, 2, 0, T)
    n = wide_rnn.state_dim
    G = torch.eye(n, dtype=torch.float64).expand(2, n, n)
    for t in range(T, -1, -1):
        np.testing.assert_allclose(fast.log_grad_norm.isel(time=t).values,
                                   np.log(torch.linalg.matrix_norm(G, ord=2).numpy()), rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.log_grad_rms.isel(time=t).values,
                                   np.log(torch.linalg.matrix_norm(G).numpy() / np.sqrt(n)), rtol=0, atol=1e-12)
        if t:
            G = G @ Js[t - 1]


def test_probe_singular_values_equal_the_explicit_product_of_its_jacobians(wide_rnn):
    T = 6
    ds = dynprobe.run("jacobian", wide_rnn, horizons=(1, 3, T), samples=2, gradient=False, step_stats=False)
    Js = _trajectory_jacobians(wide_rnn, 2, 0, T)
    P = torch.eye(wide_rnn.state_dim, dtype=torch.float64)
    for t, J in enumerate(Js, start=1):
        P = J @ P
        if t in (1, 3, T):
            sv, ok = explicit_singular_values(P)
            got = ds.singular_values.sel(horizon=t).values
            resolved = ds.sv_resolved.sel(horizon=t).values
            both = resolved & ok.numpy()
            assert both[:, 0].all() and both.sum() >= ok.numpy().sum() - 2
            tol = 100 * T * EPS * sv[:, :1].numpy()
            assert np.all(np.abs(got - sv.numpy())[both] <= np.broadcast_to(tol, got.shape)[both])
            # and the log-domain spectrum agrees with it to the explicit SVD's own resolution
            log_qr = ds.log_singular_values.sel(horizon=t).values
            assert np.all(np.abs(np.exp(log_qr) - sv.numpy())[both] <= np.broadcast_to(tol, got.shape)[both])


def test_gradient_norms_public_function_is_unchanged(wide_rnn):
    """``gradient_norms`` (recomputing J_t) agrees with the dense oracle at N above the Lanczos threshold."""
    T = 4
    h = wide_rnn.initial_state(1, seed=0)
    states = [h]
    for t in range(T):
        states.append(wide_rnn.advance(states[-1], 1, start=t))
    spec, rms = gradient_norms(wide_rnn, states, 0)
    Js = _trajectory_jacobians(wide_rnn, 1, 0, T)
    G = Js[-1]
    for J in reversed(Js[:-1]):
        G = G @ J
    assert float(spec[0, 0]) == pytest.approx(float(torch.log(torch.linalg.matrix_norm(G, ord=2))[0]), abs=1e-12)
    assert float(rms[0, 0]) == pytest.approx(float(torch.log(torch.linalg.matrix_norm(G)[0] / np.sqrt(G.shape[-1]))),
                                             abs=1e-12)


@pytest.mark.parametrize("scale", [0.9, 1.1])
def test_spectrum_takes_narrow_products_from_the_dense_svd_and_agrees_with_the_sweeps(scale):
    """Short horizons (a narrow spectrum) skip the sweeps; the logs agree with the sweeps' to
    ε/DENSE_RANGE, and a batch mixing narrow and wide products gives each what it gives alone."""
    from dynprobe.plugins.jacobian.product import DENSE_RANGE, log_singular_values, spectrum

    n = 30
    Q0, _ = qr_positive(torch.randn(3, n, n, generator=_gen(7), dtype=torch.float64))
    prod = ScaledProduct.start(Q0)
    steps = [1, 1, 40]  # sample 2 runs 40 steps of a contraction: a range far beyond DENSE_RANGE
    for t in range(40):
        mix = torch.eye(n, dtype=torch.float64) + 0.1 * torch.randn(n, n, generator=_gen(100 + t), dtype=torch.float64)
        J = scale * torch.linspace(0.5, 1.0, n, dtype=torch.float64)[:, None] * mix
        JQ = J @ prod.Q
        keep = torch.tensor([t < s for s in steps])
        prod.update(JQ, keep=keep)
    log_sv, sv, ok = spectrum(prod.log_d, prod.Rhat)
    swept, _ = log_singular_values(prod.log_d, prod.Rhat)
    narrow = (sv[:, -1] >= DENSE_RANGE * sv[:, 0]).numpy()
    assert narrow[:2].all() and not narrow[2]
    np.testing.assert_allclose(log_sv.numpy(), swept.numpy(), rtol=0, atol=10 * EPS / DENSE_RANGE)
    alone, _, _ = spectrum(prod.log_d[2:], prod.Rhat[2:])
    assert torch.equal(alone[0], log_sv[2])
    # the wide product's dense values are exp(log_sv): within the dense SVD's error, same mask bar the threshold
    dense, dense_ok = factor_singular_values(prod.log_d, prod.Rhat)
    both = ok & dense_ok
    assert int(both.sum()) >= int(dense_ok.sum()) - 1 and int(both.sum()) >= int(ok.sum()) - 1
    assert bool(((sv - dense).abs()[both] <= (100 * EPS * dense[:, :1]).expand_as(dense)[both]).all())
    assert int(ok[2].sum()) < n  # a product whose spread float64 cannot hold in a dense SVD


def test_suggest_shrinks_the_work_with_n_and_keeps_small_systems_as_they_were():
    from dynprobe.plugins.jacobian import report

    def sized(n):
        return dynprobe.System.from_step(lambda h, u, p: h, state_dim=n, params={}, name="identity")

    assert report.suggest(sized(64)) == {"horizons": (1, 10, 100), "samples": 4, "step_stats": True}
    assert report.suggest(sized(256)) == {"horizons": (1, 10, 50), "samples": 2, "step_stats": True}
    sample_steps, work = [], []
    for n in (64, 128, 256, 512, 1024, 2048):
        s = report.suggest(sized(n))
        assert s["horizons"][0] == 1 and s["step_stats"] == (n <= 256)
        sample_steps.append(s["samples"] * max(s["horizons"]))
        work.append(sample_steps[-1] * n**3)
    assert sample_steps == sorted(sample_steps, reverse=True)
    # the O(N³) work of one run stays within a factor 6 from N = 256 to 1024 (the 1024 one is ~5 s)
    assert max(work[2:5]) <= 6 * min(work[2:5])


def test_spectral_norm_falls_back_to_the_dense_svd_when_arpack_fails(monkeypatch):
    import scipy.sparse.linalg as sla

    def fail(*args, **kwargs):
        raise sla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(sla, "eigsh", fail)
    n = norms.LANCZOS_MIN_N
    A = torch.randn(1, n, n, generator=_gen(4), dtype=torch.float64)
    start = [None]
    np.testing.assert_allclose(norms.spectral_norm(A, start).numpy(), torch.linalg.matrix_norm(A, ord=2).numpy(),
                               rtol=4 * EPS)
    assert start[0].shape == (n,)
