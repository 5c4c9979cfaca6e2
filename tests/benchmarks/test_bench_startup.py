"""Start-up costs, each in fresh processes: ``import dynprobe``, ``dynprobe --help``, and the
first ``dynprobe.run("lyapunov", ...)`` of a process against its second (issue 17: under 1 s
more), with the traced program cache cold (first ever) and warm (every later process).
Also the peak RSS of each child."""

from __future__ import annotations

import os
import shutil
import tempfile

from harness import record, run_child

_TIMED = """
import time
t0 = time.process_time()
{body}
result = {{"seconds": time.process_time() - t0}}
"""

_FIRST_RUN = """
import time, torch
torch.set_num_threads(1)
import dynprobe
from torch import nn
torch.manual_seed(0)
system = dynprobe.wrap(nn.RNN(1, 256, bias=False), dtype=torch.float64)
t0 = time.process_time()
first = dynprobe.run("lyapunov", system, k=32, steps=1000)
t1 = time.process_time()
second = dynprobe.run("lyapunov", system, k=32, steps=1000)
t2 = time.process_time()
import sys
result = {"first_s": t1 - t0, "second_s": t2 - t1, "extra_s": (t1 - t0) - (t2 - t1),
          "identical": bool((first.exponents == second.exponents).all()),
          "dynamo_imported": "torch._dynamo" in sys.modules}
"""


def test_import_and_help_cost():
    rows = {}
    for name, body in [("import torch", "import torch"), ("import dynprobe", "import dynprobe"),
                       ("import dynprobe + wrap", "import dynprobe, torch\ndynprobe.wrap(torch.nn.RNN(1, 8))"),
                       ("dynprobe --help", "from dynprobe.cli import main\ntry:\n    main(['--help'])\n"
                                           "except SystemExit:\n    pass")]:
        best = min((run_child(_TIMED.format(body=body)) for _ in range(3)), key=lambda r: r["cpu_s"])
        rows[name] = best
        record("startup", name=name, cpu_s=best["cpu_s"], peak_rss_mib=best["peak_rss_mib"])
    assert rows["import dynprobe"]["cpu_s"] < rows["import torch"]["cpu_s"]  # torch is not imported


def test_first_run_of_a_process_against_the_second():
    cache = tempfile.mkdtemp(prefix="dynprobe-cache-")
    try:
        env = {"DYNPROBE_CACHE_DIR": cache}
        cold = run_child(_FIRST_RUN, env=env)  # nothing cached: traces (torch.func, torch._dynamo)
        warm = min((run_child(_FIRST_RUN, env=env) for _ in range(3)), key=lambda r: r["extra_s"])
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for label, row in (("cold cache", cold), ("warm cache", warm)):
        record("first_run", name=label, first_s=row["first_s"], second_s=row["second_s"], extra_s=row["extra_s"],
               dynamo=str(row["dynamo_imported"]), peak_rss_mib=row["peak_rss_mib"])
        assert row["identical"]
    assert not warm["dynamo_imported"]


def test_peak_memory_of_a_large_run():
    row = run_child("""
import torch, dynprobe
from torch import nn
torch.set_num_threads(1)
system = dynprobe.wrap(nn.LSTM(16, 256, num_layers=2), dtype=torch.float64)
ds = dynprobe.run("lyapunov", system, k=32, steps=300, samples=2)
result = {"state_dim": system.state_dim}
""", env={"PYTHONHASHSEED": "0", **({"DYNPROBE_CACHE_DIR": os.environ["DYNPROBE_CACHE_DIR"]}
                                      if "DYNPROBE_CACHE_DIR" in os.environ else {})})
    record("memory", name="lyapunov LSTM(16,256,2) N=1024 k=32", peak_rss_mib=row["peak_rss_mib"], cpu_s=row["cpu_s"])
