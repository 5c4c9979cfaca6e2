"""Where a second torch thread pays (``dynprobe.threads.PARALLEL_MIN_N``): the wall time of one
``lyapunov`` run with two threads against one, interleaved in one process, at state sizes on
both sides of the threshold. Threads are about wall time (CPU time adds over threads), so this is
the one benchmark that reads wall clocks: run it on a quiet machine, and read the ratio only —
``two_over_one`` < 1 means the second thread helped.
"""

from __future__ import annotations

import math
import os
import time

import pytest
import torch
from harness import record
from torch import nn

import dynprobe
from dynprobe.threads import PARALLEL_MIN_N

SIZES = [64, PARALLEL_MIN_N // 2, PARALLEL_MIN_N, 2 * PARALLEL_MIN_N]


def _system(n: int) -> dynprobe.System:
    gen = torch.Generator().manual_seed(0)
    W = 2.0 * torch.randn(n, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
    system = dynprobe.wrap(nn.RNN(1, n, bias=False), dtype=torch.float64)
    return system.with_params(weight_hh_l0=W, weight_ih_l0=torch.zeros(n, 1, dtype=torch.float64))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
@pytest.mark.parametrize("n", SIZES)
def test_two_threads_against_one(n):
    system = _system(n)
    steps = max(50, 200_000 // n)

    def run(threads: int) -> float:
        dynprobe.set_threads(threads)
        try:
            start = time.perf_counter()
            ds = dynprobe.run("lyapunov", system, k=min(n, 32), steps=steps, burn_in=0, samples=2, seed=0)
            assert ds.attrs["threads"] == threads
            return time.perf_counter() - start
        finally:
            dynprobe.set_threads(None)

    run(1), run(2)  # trace and warm up
    best = {1: math.inf, 2: math.inf}
    for _ in range(3):
        for threads in (1, 2):
            best[threads] = min(best[threads], run(threads))
    record("threads", N=n, k=min(n, 32), steps=steps, name="two_over_one", two_over_one=best[2] / best[1],
           wall_s_one=best[1], wall_s_two=best[2])
