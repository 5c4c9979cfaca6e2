"""Batch scale-out: 100 checkpoints × (lyapunov k = 8[, jacobian]) on 1 vs 2 Dask workers.

Run with ``python -m pytest tests/benchmarks/test_batch_speed.py -s -p no:cacheprovider``.
Reported, all measured in this process (warm workers: cluster start-up is reported apart):

* speed-up = wall(1 worker) / wall(2 workers)                          (target >= 1.7 on 2 cores)
* overhead per checkpoint = (wall(1 worker) - wall(in-process loop)) / n, where the loop calls
  the same worker function on the same files in this process, split into the store's share
  (a second loop that also writes each result to a store) and the scheduler's (the rest)

The ``jacobian`` probe is included when installed (another plugin provides it).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.batch.store import BatchStore, checkpoint_key
from dynprobe.batch.work import LoadOptions, analyse_checkpoint
from dynprobe.registry import registry

distributed = pytest.importorskip("distributed")

N_CHECKPOINTS = int(os.environ.get("DYNPROBE_BENCH_CHECKPOINTS", "100"))
HIDDEN = 32  # LSTM state N = 64


def probes() -> dict[str, dict]:
    chosen = {"lyapunov": {"k": 8, "steps": 300, "burn_in": 50}}
    if "jacobian" in registry().probes():
        chosen["jacobian"] = {}
    return chosen


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("bench")
    paths = []
    for i in range(N_CHECKPOINTS):
        torch.manual_seed(i)
        paths.append(str(folder / f"epoch_{i:03d}.pt"))
        torch.save({"model": nn.LSTM(1, HIDDEN).state_dict(), "epoch": i}, paths[-1])
    return paths


def _cluster(n: int) -> tuple[distributed.LocalCluster, distributed.Client, float]:
    start = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    return cluster, client, time.perf_counter() - start


def test_batch_scale_out(benchmark, checkpoints: list[str], tmp_path: Path) -> None:  # noqa: ANN001 - fixture
    chosen, n = probes(), len(checkpoints)
    torch.set_num_threads(1)
    analyse_checkpoint(checkpoints[0], chosen, LoadOptions())  # warm this process like the workers
    start = time.perf_counter()
    for path in checkpoints:
        analyse_checkpoint(path, chosen, LoadOptions())
    t_loop = time.perf_counter() - start
    store = tmp_path / "loop.zarr"
    BatchStore(store).create(chosen)
    start = time.perf_counter()
    for path in checkpoints:
        analyse_checkpoint(path, chosen, LoadOptions(), str(store), checkpoint_key(path), {})
    t_loop_store = time.perf_counter() - start

    walls, starts = {}, {}
    for workers in (1, 2):
        cluster, client, starts[workers] = _cluster(workers)
        try:
            client.run(analyse_checkpoint, checkpoints[0], chosen, LoadOptions())  # warm-up, as the loop's
            out = tmp_path / f"w{workers}.zarr"

            def job(out: Path = out, client: distributed.Client = client) -> dynprobe.BatchSummary:
                return dynprobe.batch(checkpoints, list(chosen), out, probe_params=chosen, scheduler=client)

            if workers == 2:
                summary = benchmark.pedantic(job, rounds=1, iterations=1)
            else:
                summary = job()
            assert (summary.ok, summary.failed) == (n, 0)
            walls[workers] = summary.wall_s
        finally:
            client.close()
            cluster.close()

    speedup = walls[1] / walls[2]
    overhead, store_share = (walls[1] - t_loop) / n, (t_loop_store - t_loop) / n
    info = {
        "checkpoints": n,
        "probes": ",".join(chosen),
        "in_process_loop_s": round(t_loop, 2),
        "wall_1_worker_s": round(walls[1], 2),
        "wall_2_workers_s": round(walls[2], 2),
        "speedup_2_vs_1": round(speedup, 3),
        "in_process_loop_with_store_s": round(t_loop_store, 2),
        "overhead_per_checkpoint_ms": round(1e3 * overhead, 1),
        "  of which store writes_ms": round(1e3 * store_share, 1),
        "  of which scheduler_ms": round(1e3 * (overhead - store_share), 1),
        "cluster_start_s": f"{starts[1]:.1f} (1 worker), {starts[2]:.1f} (2 workers)",
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"  {k:30s} {v}" for k, v in info.items()))
