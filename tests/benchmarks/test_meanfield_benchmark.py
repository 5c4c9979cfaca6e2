"""A 200 x 200 mean-field phase diagram of χ₁, for either cell, in about a second.

Run: python -m pytest -o addopts="" tests/benchmarks/test_meanfield_benchmark.py --benchmark-columns=mean,stddev

Timed through the public probe (``dynprobe.run("meanfield", None, ..., correlations=False)``,
Dataset included). Two baselines run in the same process, so that a loaded machine moves both
sides alike; their ratios go to ``extra_info`` and are printed:

* ``loop`` — the same solver called point by point from a Python loop (20 x 20 points, scaled
  by 100): what vectorization over the grid buys;
* ``hermite_pass`` — one vectorized pass of plain 201-node Gauss–Hermite quadrature of
  E[φ′(√q z)²] over the 40 000 points (the unit of work of the naive, and inaccurate, approach
  measured in the design phase): how many such passes the whole accurate solve costs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import median_time

import dynprobe
from dynprobe.plugins.meanfield.theory import Grid, predict

SIGMA_W = np.linspace(0.5, 4.0, 200)
MU_B = np.linspace(-2.0, 2.0, 200)
HYPER = {"sigma_v": 1.0, "sigma_b": 0.1, "R": 0.5}


def _loop(cell: str) -> None:
    for sw in SIGMA_W[::10]:
        for mu in MU_B[::10]:
            predict(Grid.of(cell, "tanh", sigma_w=sw, mu_b=mu, sigma12=1.0, **HYPER), correlations=False)


def _hermite_pass() -> None:
    x, w = np.polynomial.hermite_e.hermegauss(201)
    q = np.outer(SIGMA_W**2, np.ones(200)).ravel()
    d = 1 - np.tanh(np.sqrt(q)[:, None] * x + np.repeat(MU_B, 200)[:, None]) ** 2
    (d * d) @ (w / np.sqrt(2 * np.pi))


@pytest.mark.parametrize("cell", ["vanilla", "minimalrnn"])
def test_phase_diagram_200x200(benchmark, cell):
    torch.set_num_threads(1)

    def diagram():
        return dynprobe.run("meanfield", None, cell=cell, sigma_w=list(SIGMA_W), mu_b=list(MU_B), correlations=False,
                            horizons=(1, 100), **HYPER)

    loop = median_time(lambda: _loop(cell), repeats=1, warmup=0) * 100
    hermite = median_time(_hermite_pass, repeats=3)
    ds = benchmark.pedantic(diagram, rounds=3, iterations=1, warmup_rounds=1)
    ours = benchmark.stats.stats.median
    assert ds.chi_1.shape == (200, 200) and bool(ds.converged.all())
    benchmark.extra_info.update({"seconds": ours, "speedup_vs_python_loop": loop / ours,
                                 "hermite_passes": ours / hermite})
    print(f"\n{cell}: 200x200 chi_1 in {ours:.2f} s; {loop / ours:.0f}x faster than a Python loop over points; "
          f"= {ours / hermite:.1f} plain Gauss-Hermite passes")
    assert loop / ours > 10
