"""Hessian-vector products for the ``hessian`` probe: replayed reverse-over-reverse (what the probe
uses) against forward-over-reverse, the baseline, measured in the same process.

Run: python -m pytest -o addopts="" tests/benchmarks/test_bench_hessian.py --benchmark-columns=mean,stddev
"""

from __future__ import annotations

import time

import torch
from torch.func import grad, jvp

import dynprobe
from dynprobe.plugins.trainability import build_objective, hvp_operator


def _setup(hidden: int = 32, T: int = 100, batch: int = 64):
    torch.set_num_threads(1)
    model = dynprobe.model("wcrnn", hidden_size=hidden, input_size=2, alpha=1.0, eps=0.01, output_size=1)
    system = dynprobe.wrap(model, dtype=torch.float64)
    obj = build_objective("hessian", system, data="adding", data_options={"T": T}, batch=batch, loss="auto",
                          readout="system", seed=0)
    return system, obj


def test_hvp_replay_vs_forward_over_reverse(benchmark):
    system, obj = _setup()
    op, theta0, _, _ = hvp_operator(obj, ["weight_hh"])
    base = system.params

    def loss(theta):
        return obj.value({**base, "weight_hh": theta.reshape(base["weight_hh"].shape)})

    g = grad(loss)
    v = torch.randn_like(theta0)
    jvp(g, (theta0,), (v,))  # warm-up
    reps = 5
    start = time.perf_counter()
    for _ in range(reps):
        baseline = jvp(g, (theta0,), (v,))[1]
    per_baseline = (time.perf_counter() - start) / reps
    result = benchmark(op.matvec, v.numpy())
    assert torch.allclose(torch.from_numpy(result), baseline, atol=1e-12)
    ratio = per_baseline / benchmark.stats.stats.mean
    benchmark.extra_info["forward_over_reverse_s"] = per_baseline
    benchmark.extra_info["speedup_vs_forward_over_reverse"] = ratio
    print(f"\nHVP replay {benchmark.stats.stats.mean * 1e3:.1f} ms vs forward-over-reverse {per_baseline * 1e3:.1f} ms: "
          f"{ratio:.1f}x")
    assert ratio > 1
