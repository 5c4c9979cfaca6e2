"""The period-3 Monte-Carlo: 10,000 random RN(k) networks, exact piecewise-linear enumeration
against the grid + bisection baseline (the notebook's 163-point grid on [0, 1]), same process.

Run: python -m pytest -o addopts="" tests/benchmarks/test_bench_period3.py -s
(``DYNPROBE_BENCH_NETWORKS`` changes the ensemble size). Reported: networks per second of both
methods, their ratio, and how often they agree (fixed-point counts of f and f³, Li–Yorke).
Target (issue #4): exact >= 10,000 networks/s for k <= 8, period 3, on this 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import pytest

import dynprobe

NETWORKS = int(os.environ.get("DYNPROBE_BENCH_NETWORKS", "10000"))
NOTEBOOK_GRID = 163


def _grid_baseline(system: dynprobe.System) -> tuple[float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the coarse grid warns about what it may miss
        start = time.perf_counter()
        ds = dynprobe.run("period3", system, method="grid", grid=NOTEBOOK_GRID)
        return time.perf_counter() - start, ds


@pytest.mark.parametrize("k", [2, 8, 64], ids=lambda k: f"k{k}")
def test_rn_monte_carlo_exact_vs_grid(benchmark, k):
    system = dynprobe.model("rn", k=k, sigma2=2.0, networks=NETWORKS, seed=0)
    exact = benchmark.pedantic(lambda: dynprobe.run("period3", system), rounds=3, iterations=1, warmup_rounds=1)
    t_exact = statistics.median(benchmark.stats.stats.data)
    t_grid, grid = _grid_baseline(system)
    agree = float((exact.fixed_points == grid.fixed_points).all("period").mean())
    same_ly = float((exact.li_yorke == grid.li_yorke).mean())
    info = {
        "networks": NETWORKS,
        "exact_networks_per_s": NETWORKS / t_exact,
        "grid_networks_per_s": NETWORKS / t_grid,
        "speedup_vs_grid": t_grid / t_exact,
        "fixed_point_counts_agree": agree,
        "li_yorke_agree": same_ly,
        "li_yorke_fraction_exact": float(exact.li_yorke.mean()),
    }
    benchmark.extra_info.update(info)
    print(f"\nRN(k={k}), {NETWORKS} networks: exact {info['exact_networks_per_s']:.0f}/s, grid({NOTEBOOK_GRID}) "
          f"{info['grid_networks_per_s']:.0f}/s, ratio {info['speedup_vs_grid']:.1f}x; counts agree {agree:.4f}, "
          f"Li-Yorke agrees {same_ly:.4f}")
    assert t_exact < t_grid  # the exact method must beat even a coarse grid
