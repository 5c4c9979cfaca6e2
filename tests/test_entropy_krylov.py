"""The large-N path of the ``entropy`` probe (N > EXACT_SVD_MAX): σ_max and σ_min of dense
Jacobians by Lanczos with Rayleigh–Ritz, log|det J| from the same LU — checked against the
exact ``svdvals`` / ``slogdet`` they replace, on systems small enough to compute both."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dynprobe
import dynprobe.plugins.entropy.probe as probe_module
import dynprobe.plugins.entropy.rate as rate_module
from dynprobe.plugins.entropy import entropy
from dynprobe.plugins.entropy.rate import extreme_singular_values, log_abs_det

F64 = torch.float64


def _matrices(seed: int, n: int = 40, batch: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    J = torch.randn(batch, n, n, generator=gen, dtype=F64) / math.sqrt(n)
    # spread the singular values over four decades, as in a contracting network's Jacobian
    U, _, Vh = torch.linalg.svd(J)
    s = torch.logspace(0.5, -3.5, n, dtype=F64)
    return U @ torch.diag_embed(s.expand(batch, n)) @ Vh + 0.3 * J


@pytest.mark.parametrize("seed", range(3))
def test_full_krylov_space_gives_the_exact_extreme_singular_values(seed: int) -> None:
    J = _matrices(seed)
    exact = torch.linalg.svdvals(J)
    lo, hi = extreme_singular_values(J, exact=False, iters=J.shape[-1])
    torch.testing.assert_close(hi, exact[:, 0], rtol=1e-10, atol=0)
    # σ_min through the LU solves: rounding of order cond(J)·ε relative
    cond = exact[:, 0] / exact[:, -1]
    assert ((lo - exact[:, -1]).abs() <= 1e2 * cond * torch.finfo(F64).eps * exact[:, -1]).all()


@pytest.mark.parametrize("steps", [2, 4, 8, 16])
def test_fewer_krylov_steps_bound_from_the_documented_side(steps: int) -> None:
    J = _matrices(7, n=60)
    exact = torch.linalg.svdvals(J)
    lo, hi = extreme_singular_values(J, exact=False, iters=steps)
    assert (hi <= exact[:, 0] * (1 + 1e-12)).all()  # Ritz values never exceed sigma_max ...
    cond = exact[:, 0] / exact[:, -1]
    assert (lo >= exact[:, -1] * (1 - 1e2 * cond * torch.finfo(F64).eps)).all()  # ... nor undercut sigma_min


def test_invariant_krylov_space_and_singular_matrices() -> None:
    gen = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(3, 30, 30, generator=gen, dtype=F64))
    lo, hi = extreme_singular_values(2.5 * Q, exact=False)  # all sigma = 2.5: the space is invariant at once
    torch.testing.assert_close(hi, torch.full((3,), 2.5, dtype=F64), rtol=1e-12, atol=0)
    torch.testing.assert_close(lo, torch.full((3,), 2.5, dtype=F64), rtol=1e-12, atol=0)
    singular = torch.randn(2, 30, 30, generator=gen, dtype=F64)
    singular[:, :, 0] = 0.0
    lu = torch.linalg.lu_factor_ex(singular)
    lo, hi = extreme_singular_values(singular, exact=False, lu=lu)
    assert (lo == 0).all()
    torch.testing.assert_close(hi, torch.linalg.svdvals(singular)[:, 0], rtol=1e-10, atol=0)
    assert torch.isneginf(log_abs_det(lu)).all()
    mixed = torch.cat([singular, 2.5 * Q])  # singular and regular Jacobians in one batch
    lo, hi = extreme_singular_values(mixed, exact=False)
    assert (lo[:2] == 0).all()
    torch.testing.assert_close(lo[2:], torch.full((3,), 2.5, dtype=F64), rtol=1e-12, atol=0)
    torch.testing.assert_close(hi, torch.linalg.svdvals(mixed)[:, 0], rtol=1e-10, atol=0)


def test_log_abs_det_from_the_lu_equals_slogdet() -> None:
    J = _matrices(4, n=50) * 3.0
    torch.testing.assert_close(log_abs_det(torch.linalg.lu_factor_ex(J)), torch.linalg.slogdet(J)[1],
                               rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("make", [lambda: nn.GRU(2, 12), lambda: nn.LSTM(1, 7, num_layers=2)], ids=["gru", "lstm2"])
def test_probe_on_the_krylov_path_matches_the_exact_path(make, monkeypatch) -> None:
    torch.manual_seed(0)
    system = dynprobe.wrap(make().double()).with_drive(dynprobe.constant(0.3))
    exact = entropy(system, samples=10, steps=3, seed=2)
    monkeypatch.setattr(rate_module, "EXACT_SVD_MAX", 0)
    monkeypatch.setattr(probe_module, "EXACT_SVD_MAX", 0)
    krylov = entropy(system, samples=10, steps=3, power_iters=200, seed=2)  # N < KRYLOV_STEPS: the full space
    assert krylov.attrs["singular_values"].startswith("Lanczos") and exact.attrs["singular_values"].startswith("exact")
    np.testing.assert_allclose(krylov.log_det.values, exact.log_det.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(krylov.sigma_max.values, exact.sigma_max.values, rtol=1e-10)
    np.testing.assert_allclose(krylov.sigma_min.values, exact.sigma_min.values, rtol=1e-8)
    for name in ("rate", "rate_lower", "rate_upper", "lipschitz_visited", "co_lipschitz"):
        np.testing.assert_allclose(krylov[name].values, exact[name].values, rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(float(krylov.lipschitz_lower), float(exact.lipschitz_lower), rtol=1e-6)
