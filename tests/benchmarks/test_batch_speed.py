"""Batch scale-out: 100 checkpoints × (lyapunov k = 8[, jacobian]) on 1 vs 2 Dask workers.

Run with ``python -m pytest tests/benchmarks/test_batch_speed.py -s -p no:cacheprovider``.
Reported, all measured in this process (warm workers: cluster start-up is reported apart):

* speed-up = wall(1 worker) / wall(2 workers)                          (target >= 1.7 on 2 cores)
* ratio wall(1 worker) / wall(in-process loop), the loop calling the same worker function on
  the same files in this process (no Dask, no store), and the overhead per checkpoint
  (wall(1 worker) - wall(loop)) / n
* worker utilization = sum of in-task analysis time / (workers x wall): near 1 means the
  scheduler keeps the workers busy, so a speed-up below 2 comes from cores taken by others
  (the machine is shared: the 1-minute load average is reported too)
* the store's CPU cost per checkpoint (process time of 20 analyses with and without writing)

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
from dynprobe.batching.store import BatchStore, checkpoint_key
from dynprobe.batching.work import LoadOptions, analyse_checkpoint
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
    subset = checkpoints[:20]  # the store's CPU cost per checkpoint, from a subset
    start = time.process_time()
    for path in subset:
        analyse_checkpoint(path, chosen, LoadOptions())
    cpu_sub = time.process_time() - start
    start = time.process_time()
    for path in subset:
        analyse_checkpoint(path, chosen, LoadOptions(), str(store), checkpoint_key(path), {})
    cpu_sub_store = time.process_time() - start

    walls, starts, busy = {}, {}, {}
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
            busy[workers] = float(summary.index.elapsed_s.sum()) / (workers * summary.wall_s)
        finally:
            client.close()
            cluster.close()

    speedup = walls[1] / walls[2]
    overhead, store_cpu = (walls[1] - t_loop) / n, (cpu_sub_store - cpu_sub) / len(subset)
    info = {
        "checkpoints": n,
        "probes": ",".join(chosen),
        "in_process_loop_s": round(t_loop, 2),
        "wall_1_worker_s": round(walls[1], 2),
        "wall_2_workers_s": round(walls[2], 2),
        "speedup_2_vs_1": round(speedup, 3),
        "ratio_1_worker_vs_loop": round(walls[1] / t_loop, 3),
        "overhead_per_checkpoint_ms": round(1e3 * overhead, 1),
        "store_write_cpu_per_checkpoint_ms": round(1e3 * store_cpu, 1),
        "worker_utilization": f"{busy[1]:.2f} (1 worker), {busy[2]:.2f} (2 workers)",
        "cluster_start_s": f"{starts[1]:.1f} (1 worker), {starts[2]:.1f} (2 workers)",
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"  {k:30s} {v}" for k, v in info.items()))
