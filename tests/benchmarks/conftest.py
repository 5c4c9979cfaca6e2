"""Benchmarks: run with ``python -m pytest -o addopts="" tests/benchmarks``.

Each benchmark times dynprobe's path with pytest-benchmark and its baselines in the same
process, and reports ratios (in ``extra_info`` and printed), so that a loaded machine moves
both sides alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    """One thread for torch and for numpy's BLAS (the baselines' numpy would otherwise use every
    core — on a shared machine the comparison would measure contention, not code)."""
    saved = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn in [test]
        yield
    else:
        with threadpool_limits(limits=1):
            yield
    torch.set_num_threads(saved)


def median_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
