"""Full spectrum and top-32 of nn.RNN(tanh), N = 256, float64: dynprobe's generic path (traced
jvp+vmap tangent step + positive QR, as the lyapunov probe runs it) against (a) a per-step
``torch.autograd.functional.jacobian`` + QR loop and (b) a hand-written analytic-Jacobian loop.
Targets (issue 2): generic ≤ 1.3× (b) at k = N, ≤ 1.5× (b) at k = 32, ≥ 4× faster than (a)."""

from __future__ import annotations

import pytest
import torch
from conftest import median_time
from torch import nn

import dynprobe
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.tangent import qr_iterate

N, STEPS = 256, 100


def _setup(k: int, samples: int = 1):
    torch.manual_seed(0)
    module = nn.RNN(1, N, nonlinearity="tanh", bias=False).double()
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.randn(N, N, dtype=torch.float64) * 1.5 / N**0.5)
    system = dynprobe.wrap(module)
    h = 0.5 * torch.randn(samples, N, dtype=torch.float64)
    Q = qr_positive(torch.randn(samples, N, k, dtype=torch.float64))[0]
    return system, h, Q


def _hand_written(system, h, Q, steps):
    W = system.params["weight_hh_l0"]
    total = torch.zeros(Q.shape[0], Q.shape[-1], dtype=torch.float64)
    for _ in range(steps):
        h = torch.tanh(h @ W.T)
        Q, R = qr_positive((1 - h**2)[:, :, None] * (W @ Q))
        total += torch.log(torch.diagonal(R, dim1=-2, dim2=-1))
    return total


def _autograd(system, h, Q, steps):
    total = torch.zeros(Q.shape[0], Q.shape[-1], dtype=torch.float64)
    for t in range(steps):
        J = torch.stack([torch.autograd.functional.jacobian(lambda x, t=t: system.map(x[None], t)[0], row) for row in h])
        h = system.map(h, t)
        Q, R = qr_positive(J @ Q)
        total += torch.log(torch.diagonal(R, dim1=-2, dim2=-1))
    return total


def _generic(tangent, h, Q, steps, reorth_every=1):
    return qr_iterate(tangent, h, Q, steps=steps, reorth_every=reorth_every).log_r


@pytest.mark.parametrize("k", [N, 32], ids=["full", "top32"])
def test_generic_path_against_baselines(benchmark, k):
    torch.set_num_threads(1)
    system, h, Q = _setup(k)
    tangent = TangentMap(system, trace=True)
    _generic(tangent, h, Q, 2)  # trace once
    assert tangent.mode == "traced"
    # the three compute the same numbers
    ref = _hand_written(system, h, Q, 20)
    torch.testing.assert_close(_generic(tangent, h, Q, 20), ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(_autograd(system, h, Q, 3), _hand_written(system, h, Q, 3), rtol=1e-9, atol=1e-9)

    generic = benchmark.pedantic(_generic, args=(tangent, h, Q, STEPS), rounds=5, warmup_rounds=1)
    del generic
    t_generic = benchmark.stats.stats.median / STEPS
    t_hand = median_time(lambda: _hand_written(system, h, Q, STEPS)) / STEPS
    t_autograd = median_time(lambda: _autograd(system, h, Q, 10), repeats=3) / 10
    qr_flops = 2 * N * k * k - 2 * k**3 / 3
    flops = 2 * N * N + 2 * N * N * k + qr_flops  # primal + J@Q + Householder QR
    benchmark.extra_info.update({
        "ms_per_step_generic": 1e3 * t_generic,
        "ms_per_step_hand_written": 1e3 * t_hand,
        "ms_per_step_autograd": 1e3 * t_autograd,
        "generic_over_hand_written": t_generic / t_hand,
        "autograd_over_generic": t_autograd / t_generic,
        "gflops_generic": flops / t_generic / 1e9,
    })
    print(f"\nk={k}: generic {1e3 * t_generic:.3f} ms/step, hand-written {1e3 * t_hand:.3f}, autograd "
          f"{1e3 * t_autograd:.3f}; generic/hand {t_generic / t_hand:.2f}, autograd/generic {t_autograd / t_generic:.1f}, "
          f"{flops / t_generic / 1e9:.1f} GFLOP/s")
    assert t_generic / t_hand <= (1.3 if k == N else 1.5)
    assert t_autograd / t_generic >= 4


def test_what_reorthonormalizing_less_often_buys_and_costs(benchmark):
    """Full spectrum with m = 1, 10 and auto: speed-up per step and error of every exponent."""
    torch.set_num_threads(1)
    system, h, Q = _setup(N)
    tangent = TangentMap(system, trace=True)
    steps = 400
    exact = _generic(tangent, h, Q, steps) / steps
    rows = {}
    for m in (10, "auto"):
        got = _generic(tangent, h, Q, steps, m) / steps
        rows[m] = (median_time(lambda m=m: _generic(tangent, h, Q, 100, m), repeats=3),
                   float((got - exact)[:, :32].abs().max()), float((got - exact).abs().max()))
    base = benchmark.pedantic(_generic, args=(tangent, h, Q, 100), rounds=3, warmup_rounds=1)
    del base
    t1 = benchmark.stats.stats.median
    for m, (t, err_top, err_all) in rows.items():
        benchmark.extra_info[f"speedup_m={m}"] = t1 / t
        benchmark.extra_info[f"max_err_top32_m={m}"] = err_top
        benchmark.extra_info[f"max_err_all_m={m}"] = err_all
        print(f"\nm={m}: {t1 / t:.2f}x faster than m=1; max error top-32 {err_top:.2e}, all {err_all:.2e}")
    assert rows["auto"][2] < 1e-6  # auto keeps the whole spectrum


def test_batching_samples(benchmark):
    """Per-sample cost of 1 vs 8 samples stepped together (top-32)."""
    torch.set_num_threads(1)
    one = _setup(32, samples=1)
    eight = _setup(32, samples=8)
    t_one = median_time(lambda: _generic(TangentMap(one[0], trace=True), one[1], one[2], 100), repeats=3)
    tangent8 = TangentMap(eight[0], trace=True)
    _generic(tangent8, eight[1], eight[2], 2)
    benchmark.pedantic(_generic, args=(tangent8, eight[1], eight[2], 100), rounds=3, warmup_rounds=1)
    t_eight = benchmark.stats.stats.median
    benchmark.extra_info["per_sample_speedup_8_vs_1"] = 8 * t_one / t_eight
    print(f"\n8 samples together: {8 * t_one / t_eight:.2f}x less time per sample than one at a time")
