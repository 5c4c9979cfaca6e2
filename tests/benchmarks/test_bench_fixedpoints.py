"""The fixed-point search: starts per second, batched over starts against the same algorithm run
one start at a time, and (optionally) against Golub & Sussillo's FixedPointFinder.

Run: python -m pytest -o addopts="" tests/benchmarks/test_bench_fixedpoints.py -s

The network is a 16-unit tanh ``nn.RNN`` trained on the 3-bit flip-flop (the test suite's fast
recipe, tests/fixedpoint_systems.py). Reported, from one process, one torch thread:

* ``batched`` — :func:`dynprobe.orbits.descend` + :func:`dynprobe.orbits.refine` on S starts at
  once (Adam on q for 100 iterations, then Levenberg–Marquardt);
* ``loop`` — the very same two calls, one start at a time in a Python loop (on a subset, timed
  per start): what a search without batching costs;
* ``fpf`` — FixedPointFinder (github.com/mattgolub/fixed-point-finder; not on PyPI) when
  ``DYNPROBE_FPF_PATH`` points at a checkout, with its example settings (trajectory samples +
  N(0, 0.5²) noise, Adam lr 1 on all starts, stop at q < 1e-12) and the same number of starts; its
  points are then Newton-polished and counted. Skipped when not available.

Also checked: the batched search finds all 27 fixed points (8 stable).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.orbits import PeriodMap, descend, draw_starts, refine, search_system, visited_states

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixedpoint_systems import flipflop_batch, trained_flipflop  # noqa: E402

STARTS = int(os.environ.get("DYNPROBE_BENCH_STARTS", "512"))
LOOP_STARTS = 16


def _search(pmap: PeriodMap, h: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    found = descend(pmap, h, scale=scale, iters=100)
    return refine(pmap, found.h).converged


def test_starts_per_second_batched_vs_loop(benchmark):
    model = trained_flipflop(0)
    system = search_system(dynprobe.wrap(model.rnn))
    visited = visited_states(system)
    h, _ = draw_starts(visited, STARTS, seed=0)
    pmap = PeriodMap(system, 1)
    _search(pmap, h[:, :8], visited.spread)  # warm up forward-mode AD
    converged = benchmark.pedantic(lambda: _search(pmap, h, visited.spread), rounds=3, iterations=1, warmup_rounds=0)
    t_batched = float(np.median(benchmark.stats.stats.data))
    start = time.perf_counter()
    for s in range(LOOP_STARTS):
        _search(pmap, h[:, s:s + 1], visited.spread)
    t_loop = (time.perf_counter() - start) / LOOP_STARTS
    info = {"starts": STARTS, "batched_starts_per_s": STARTS / t_batched, "loop_starts_per_s": 1 / t_loop,
            "speedup": t_loop * STARTS / t_batched, "converged_fraction": float(converged.float().mean())}
    ds = dynprobe.run("fixedpoints", dynprobe.wrap(model.rnn))
    info["fixed_points"], info["stable"] = int(ds.fixed_points), int(ds.stable_points)
    benchmark.extra_info.update(info)
    print(f"\nflip-flop N=16, {STARTS} starts: batched {info['batched_starts_per_s']:.0f} starts/s, "
          f"per-start loop {info['loop_starts_per_s']:.1f} starts/s ({info['speedup']:.0f}x); "
          f"probe: {info['fixed_points']} fixed points, {info['stable']} stable")
    assert info["fixed_points"] == 27 and info["stable"] == 8
    assert info["speedup"] > 10


def _fpf():
    path = os.environ.get("DYNPROBE_FPF_PATH")
    if not path:
        pytest.skip("set DYNPROBE_FPF_PATH to a fixed-point-finder checkout to compare with it")
    sys.path.insert(0, path)
    try:
        from FixedPointFinderTorch import FixedPointFinderTorch
    except ImportError as err:
        pytest.skip(f"FixedPointFinder not importable from {path}: {err}")
    return FixedPointFinderTorch


def test_against_fixed_point_finder(benchmark):
    finder_cls = _fpf()
    model = trained_flipflop(0)
    x, _ = flipflop_batch(torch.Generator().manual_seed(7), batch=128, T=64)
    with torch.no_grad():
        hidden = model.rnn(x)[0].permute(1, 0, 2).numpy().astype(np.float64)
    finder = finder_cls(model.rnn, max_iters=10000, lr_init=1.0, dtype="float32", verbose=False, super_verbose=False)
    init = finder.sample_states(hidden, n_inits=STARTS, noise_scale=0.5).astype("float32")

    def run_fpf():
        with contextlib.redirect_stdout(io.StringIO()):
            return finder.find_fixed_points(init, np.zeros((1, 3), dtype="float32"))[0]

    start = time.perf_counter()
    unique = run_fpf()
    t_fpf = time.perf_counter() - start
    system = dynprobe.wrap(model.rnn)
    ours = benchmark.pedantic(lambda: dynprobe.run("fixedpoints", system), rounds=3, iterations=1, warmup_rounds=1)
    t_ours = float(np.median(benchmark.stats.stats.data))
    # polish FixedPointFinder's points (accurate to ~1e-7) with our Newton step and count them
    target = search_system(system)
    polished = refine(PeriodMap(target, 1), torch.as_tensor(unique.xstar, dtype=torch.float64)[None])
    pts = polished.h[0][polished.converged[0]].numpy()
    distinct = len({tuple(np.round(p, 8)) for p in pts})
    info = {"fpf_s": t_fpf, "fpf_points": int(unique.n), "fpf_points_after_newton": distinct,
            "fpf_starts_per_s": STARTS / t_fpf, "ours_s": t_ours, "ours_points": int(ours.fixed_points),
            "ours_starts_per_s": int(ours.starts_used) / t_ours, "ours_starts": int(ours.starts_used)}
    benchmark.extra_info.update(info)
    print(f"\nFixedPointFinder, {STARTS} starts: {t_fpf:.2f} s, {unique.n} points ({distinct} after Newton); "
          f"fixedpoints probe: {t_ours:.2f} s for {info['ours_starts']} starts, {info['ours_points']} points")
