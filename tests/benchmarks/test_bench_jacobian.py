"""The ``jacobian`` probe at diagnose sizes (issue 17): each fast path against the exact one it
replaced, interleaved in one process (CPU time, minimum over rounds), and the probe with the
defaults ``suggest`` picks.

Run: python -m pytest -o addopts="" tests/benchmarks/test_bench_jacobian.py -s
"""

from __future__ import annotations

import math

import pytest
import torch
from harness import interleaved, record

import dynprobe
from dynprobe.linearize import jacobian as one_step_jacobian
from dynprobe.linearize import qr_positive
from dynprobe.plugins.jacobian import gradient_norms, norms
from dynprobe.plugins.jacobian.probe import _backward
from dynprobe.plugins.jacobian.product import ScaledProduct, explicit_singular_values, spectrum


def _gru(n: int) -> dynprobe.System:
    torch.manual_seed(0)
    return dynprobe.wrap(torch.nn.GRU(8, n), dtype=torch.float64)


@pytest.mark.parametrize("n", [256, 512, 1024])
def test_lanczos_sigma_1_vs_dense_svd(n):
    torch.set_num_threads(1)
    A = torch.randn(1, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    start = [None]
    norms.spectral_norm(A, start)
    B = A + 1e-3 * torch.randn_like(A)  # the next backward step: a nearby matrix, warm start
    best = interleaved({"svd": lambda: torch.linalg.matrix_norm(B, ord=2),
                        "lanczos_cold": lambda: norms.spectral_norm(B),
                        "lanczos_warm": lambda: norms.spectral_norm(B, list(start))}, repeats=3)
    assert float(norms.spectral_norm(B)[0]) == pytest.approx(float(torch.linalg.matrix_norm(B, ord=2)[0]), rel=1e-13)
    record("jacobian_sigma1", N=n, svd_s=best["svd"], cold_s=best["lanczos_cold"], warm_s=best["lanczos_warm"],
           svd_over_warm=best["svd"] / best["lanczos_warm"])


@pytest.mark.parametrize("n", [256, 512])
def test_replayed_backward_vs_recomputed_jacobians(n):
    torch.set_num_threads(1)
    system, T = _gru(n), 10
    h = system.initial_state(1, seed=0)
    states, factors = [h], []
    prod = ScaledProduct.start(qr_positive(torch.randn(1, n, n, dtype=torch.float64))[0])
    P = torch.eye(n, dtype=torch.float64)[None]
    for t in range(T):
        J = one_step_jacobian(system, states[-1], t)
        factors.append(prod.update(J @ prod.Q))
        P = J @ P
        states.append(system.advance(states[-1], 1, start=t))
    best = interleaved({
        "recompute": lambda: gradient_norms(system, states, 0),
        "replay": lambda: _backward(reversed(factors), n, (1,), h.device, triangular=True),
        "explicit_svd": lambda: explicit_singular_values(P),
        "factor_spectrum": lambda: spectrum(prod.log_d, prod.Rhat),
    }, repeats=3)
    fast, slow = _backward(reversed(factors), n, (1,), h.device, triangular=True), gradient_norms(system, states, 0)
    assert torch.allclose(fast[0], slow[0], atol=1e-11) and torch.allclose(fast[1], slow[1], atol=1e-11)
    record("jacobian_backward", N=n, steps=T, recompute_s=best["recompute"], replay_s=best["replay"],
           recompute_over_replay=best["recompute"] / best["replay"])


@pytest.mark.parametrize("n", [64, 512, 1024])
def test_probe_with_suggested_defaults(n):
    torch.set_num_threads(1)
    system = _gru(n)
    params = dynprobe.registry.registry().probe("jacobian").suggest(system)
    dynprobe.run("jacobian", system, **{**params, "horizons": (2,)})  # imports, trace, caches
    best = interleaved({"probe": lambda: dynprobe.run("jacobian", system, **params)}, repeats=2, warmup=0)
    record("jacobian_probe", N=n, name="gru suggest", cpu_s=best["probe"],
           sample_steps=params["samples"] * max(params["horizons"]), per_sample_step_s=best["probe"] / (
               params["samples"] * max(params["horizons"])) if math.isfinite(best["probe"]) else None)
