"""``diagnose`` on real sizes, end to end (issue 17: under 60 s wall on 2 quiet cores):
``nn.LSTM(16, 256, num_layers=2)`` (N = 1024: h and c of two layers) and ``nn.GRU(32, 512)``
(N = 512) state_dicts, loaded from disk as a user's checkpoint would be.

``test_cli_end_to_end`` runs ``dynprobe diagnose CKPT --out … --report …`` in a fresh process
(the traced-program cache cold, as on a new machine) and records its wall and CPU time and
peak RSS. ``test_share_per_probe`` runs the same plan in this process and records each probe's
CPU seconds, so a loaded machine's wall time can be read against the CPU it took.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from harness import record, run_child
from torch import nn

import dynprobe
from dynprobe.api import run_guarded
from dynprobe.planning import plan
from dynprobe.registry import registry

MODELS = {
    "LSTM(16,256,2)": lambda: nn.LSTM(16, 256, num_layers=2),
    "GRU(32,512)": lambda: nn.GRU(32, 512),
}


@pytest.fixture(scope="module")
def checkpoints():
    folder = Path(tempfile.mkdtemp(prefix="dynprobe-bench-"))
    paths = {}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        paths[name] = folder / f"{name.split('(')[0].lower()}.pt"
        torch.save(make().state_dict(), paths[name])
    yield paths
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_cli_end_to_end(checkpoints, name, tmp_path):
    path = checkpoints[name]
    code = f"""
import time
t0 = time.perf_counter()
from dynprobe.cli import main
try:
    main(["diagnose", {str(path)!r}, "--out", {str(tmp_path / "d.nc")!r}, "--report", {str(tmp_path / "r.html")!r}])
except SystemExit as stop:
    assert not stop.code, stop.code
result = {{"inner_wall_s": time.perf_counter() - t0}}
"""
    row = run_child(code, env={"DYNPROBE_CACHE_DIR": str(tmp_path / "cache")})
    tree = dynprobe.open_result(tmp_path / "d.nc")
    shares = {child: float(tree[child].attrs.get("elapsed_s", 0.0)) for child in tree.children}
    record("diagnose", name=name, wall_s=row["wall_s"], cpu_s=row["cpu_s"], peak_rss_mib=row["peak_rss_mib"],
           probes=",".join(f"{k}:{v:.1f}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])))
    assert (tmp_path / "r.html").exists()


@pytest.mark.parametrize("name", list(MODELS))
def test_share_per_probe(checkpoints, name):
    torch.set_num_threads(1)
    system = dynprobe.load_system(str(checkpoints[name]), dtype=torch.float64)
    cpu = {}
    for planned in plan(system, None, {}).runs:
        probe, params = planned.name, dict(planned.params)
        start = time.process_time()
        if "seed" in {p.name for p in registry().probe(probe).params}:
            params = {"seed": 0, **params}
        ds, error = run_guarded("bench", probe, system, params)
        cpu[probe] = time.process_time() - start
        assert ds is not None, error
    total = sum(cpu.values())
    record("diagnose_share", name=name, cpu_s=total, state_dim=system.state_dim,
           probes=",".join(f"{k}:{v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])))
