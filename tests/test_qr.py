"""The QR kernels and the QR loop: CholeskyQR2 against Householder, its breakdown and fallback,
the adaptive interval (overflow cap, host syncs), each against an exact answer."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from systems import henon_system, linear_system

import dynprobe
from dynprobe import tangent as tangent_module
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.qr import choose_qr, orthonormalize
from dynprobe.tangent import qr_iterate


def _graded(n: int, k: int, log_cond: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A = U diag(s) with orthonormal U: its R is diag(s) up to signs, so log|R_ii| = log s_i exactly."""
    gen = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))[0]
    s = torch.logspace(0, -log_cond, k, dtype=torch.float64)
    return U * s, s.log()


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.integers(1, 8), st.floats(0.0, 4.0), st.integers(0, 10_000))
def test_cholesky_qr2_agrees_with_householder_and_the_exact_rates(n_extra, k, log_cond, seed):
    n = k + n_extra
    A, exact = _graded(n, k, log_cond, seed)
    Qh, lh, ok_h = orthonormalize(A, "householder")
    Qc, lc, ok_c = orthonormalize(A, "cholesky")
    assert ok_h is None and bool(ok_c)
    torch.testing.assert_close(lh, exact, rtol=0, atol=1e-11)
    torch.testing.assert_close(lc, exact, rtol=0, atol=1e-11)
    eye = torch.eye(k, dtype=torch.float64)
    torch.testing.assert_close(Qc.mT @ Qc, eye, rtol=0, atol=1e-13)
    torch.testing.assert_close(Qc @ Qc.mT, Qh @ Qh.mT, rtol=0, atol=1e-12)  # the same column space


def _mixed(n: int, k: int, log_cond: float, seed: int) -> torch.Tensor:
    """U diag(s) Vᵀ with random orthogonal U, V: condition number 10^log_cond, columns mixed."""
    A, _ = _graded(n, k, log_cond, seed)
    V = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64))[0]
    return A @ V.T


def test_cholesky_qr2_reports_a_breakdown_instead_of_a_wrong_number():
    A = _mixed(50, 6, 12.0, seed=1)  # κ = 1e12 ≫ ε^{-1/2}: AᵀA is numerically singular
    _, _, ok = orthonormalize(A, "cholesky")
    assert not bool(ok)
    Q, log_r, _ = orthonormalize(A, "householder")  # Householder is right at any conditioning
    torch.testing.assert_close(log_r.sum(), torch.linalg.svdvals(A).log().sum(), rtol=0, atol=1e-6)  # |det R| = Π s


def test_batched_breakdown_flags_only_the_bad_block():
    good = _mixed(30, 4, 1.0, seed=2)
    bad = _mixed(30, 4, 13.0, seed=3)
    _, _, ok = orthonormalize(torch.stack([good, bad, good]), "cholesky")
    assert ok.tolist() == [True, False, True]


def test_the_qr_is_chosen_by_shape_and_device():
    assert choose_qr("auto", 256, 8, torch.device("cpu")) == "householder"
    assert choose_qr("auto", 256, 8, torch.device("meta")) == "cholesky"  # tall-skinny off the CPU
    assert choose_qr("auto", 256, 128, torch.device("meta")) == "householder"  # square-ish: Householder
    assert choose_qr("cholesky", 4, 4, torch.device("cpu")) == "cholesky"
    with pytest.raises(ValueError, match="qr must be 'auto', 'householder' or 'cholesky'"):
        choose_qr("givens", 4, 4, torch.device("cpu"))


def _run(system, k, steps, **kw):
    h = system.initial_state(2, seed=0)
    Q0 = qr_positive(torch.randn(2, system.state_dim, k, generator=torch.Generator().manual_seed(1),
                                 dtype=torch.float64))[0]
    with torch.no_grad():
        return qr_iterate(TangentMap(system, trace=True), h, Q0, steps=steps, **kw)


def _at_origin(system):
    return system.with_init(dynprobe.InitialState(center=torch.zeros(system.state_dim), scale=0.0))


def test_cholesky_loop_falls_back_to_householder_and_replays_the_block():
    # h' = A h with rates 3, 0, -30 per step: one step already has κ(AQ) ≈ e^33, beyond CholeskyQR2
    system = _at_origin(linear_system(torch.diag(torch.tensor([math.exp(3.0), 1.0, math.exp(-30.0)]))))
    chol = _run(system, 3, 200, qr="cholesky")
    house = _run(system, 3, 200, qr="householder")
    assert chol.fallbacks == 1 and chol.qr == "householder"
    # the replay starts from the block's saved state, so the whole run is the Householder run
    assert torch.equal(chol.log_r, house.log_r) and torch.equal(chol.trace_log_r, house.trace_log_r)
    assert chol.intervals == house.intervals and chol.trace_steps == house.trace_steps
    np.testing.assert_allclose(house.log_r[0].numpy() / 200, [3.0, 0.0, -30.0], atol=0.02)


def test_cholesky_loop_on_a_well_conditioned_map_matches_householder():
    A = torch.tensor([[0.9, 0.3, 0.0], [0.0, -0.8, 0.2], [0.1, 0.0, 0.7]], dtype=torch.float64)
    system = _at_origin(linear_system(A))
    chol = _run(system, 2, 500, qr="cholesky")
    house = _run(system, 2, 500, qr="householder")
    assert chol.fallbacks == 0 and chol.qr == "cholesky"
    torch.testing.assert_close(chol.log_r, house.log_r, rtol=1e-12, atol=1e-10)


def test_auto_interval_never_overflows_float32():
    # h' = 20 h: one exponent (spread 0), growth e^3 per step; float32 overflows past e^88
    system = _at_origin(dynprobe.System.from_step(lambda h, u, p: 20.0 * h, state_dim=1, dtype=torch.float32))
    ds = dynprobe.run("lyapunov", system, steps=640, burn_in=0, reorth_every="auto")
    np.testing.assert_allclose(ds.exponent_mean.values, [math.log(20.0)], rtol=1e-5)
    cap = math.log(torch.finfo(torch.float32).max) / 4
    assert ds.attrs["reorth_interval_max"] <= cap / math.log(20.0)


def test_auto_interval_keeps_the_henon_sum_exact():
    # Σλ = ln b at every QR whatever the interval: det is multiplicative
    ds = dynprobe.run("lyapunov", henon_system(), steps=4000, burn_in=100, samples=2, reorth_every="auto")
    np.testing.assert_allclose(ds.exponents.values.sum(-1), math.log(0.3), rtol=0, atol=1e-10)
    assert ds.attrs["reorth_interval_max"] > 1 and ds.attrs["reorth_interval_min"] >= 1


def test_auto_synchronizes_per_block_not_per_step(monkeypatch):
    calls = []
    real = tangent_module._interval
    monkeypatch.setattr(tangent_module, "_interval", lambda *a: calls.append(1) or real(*a))
    A = torch.diag(torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64))
    run = _run(_at_origin(linear_system(A)), 3, 3000, reorth_every="auto", blocks=10)
    assert len(calls) <= tangent_module.CALIBRATION_QRS + 10
    assert max(run.intervals) > 1 and sum(run.intervals) == 3000
    assert run.block_steps == [300] * 10  # intervals end at block edges


def test_bad_qr_name_is_a_one_line_error():
    system = linear_system(torch.eye(2))
    with pytest.raises(ProbeParameterError, match="qr_iterate: qr must be"):
        _run(system, 1, 10, qr="givens")
