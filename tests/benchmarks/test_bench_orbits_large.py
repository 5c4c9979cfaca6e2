"""Issue 17: the orbit search at real sizes — dense against Krylov-subspace Levenberg–Marquardt.

Run: python -m pytest -o addopts="" tests/benchmarks/test_bench_orbits_large.py -s

A GRU(32, 512) at PyTorch's initialisation (N = 512), float64, one torch thread: the same 8
starts refined by the dense solver (an N×N monodromy per start and iteration) and by the
matrix-free one (:mod:`dynprobe.orbits.krylov`); reported as the CPU-time ratio, with the check
that both land on the same points. Then the ``fixedpoints`` and ``period3`` probes with the
parameters their ``suggest`` picks, CPU seconds (min of 2).
"""

from __future__ import annotations

import time

import torch
from torch import nn

import dynprobe
from dynprobe.orbits import PeriodMap, draw_starts, refine, search_system, visited_states


def _cpu(fn, repeats: int = 2):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def test_dense_vs_krylov_at_n_512(benchmark):
    torch.manual_seed(0)
    system = search_system(dynprobe.wrap(nn.GRU(32, 512), dtype=torch.float64))
    pmap = PeriodMap(system, 1)
    h, _ = draw_starts(visited_states(system), 8, seed=0)
    t_dense, dense = _cpu(lambda: refine(pmap, h, max_iter=15, solver="dense"), 1)
    t_kry, kry = _cpu(lambda: refine(pmap, h, max_iter=15, solver="krylov"))
    both = dense.converged & kry.converged
    gap = float((dense.h - kry.h)[both].abs().max()) if bool(both.any()) else float("nan")
    info = {"dense_s": t_dense, "krylov_s": t_kry, "speedup": t_dense / t_kry, "max_gap": gap,
            "converged_dense": int(dense.converged.sum()), "converged_krylov": int(kry.converged.sum())}
    for name in ("fixedpoints", "period3"):
        wrapped = dynprobe.wrap(nn.GRU(32, 512), dtype=torch.float64)
        params = dynprobe.registry.registry().probe(name).suggest(wrapped)
        info[f"{name}_s"], _ = _cpu(lambda n=name, s=wrapped, kw=params: dynprobe.run(n, s, **kw))
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\nGRU N=512, 8 starts: dense {t_dense:.2f} s, krylov {t_kry:.2f} s ({info['speedup']:.1f}x), "
          f"max gap {gap:.1e}; fixedpoints {info['fixedpoints_s']:.2f} s, period3 {info['period3_s']:.2f} s")
    assert info["converged_krylov"] >= info["converged_dense"] and gap < 1e-10
