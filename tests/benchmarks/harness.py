"""Timing on a shared machine: CPU time, contenders interleaved, the minimum over repeats.

A loaded machine slows every contender of a round alike, and the minimum over rounds is the
least disturbed run, so ratios between contenders of one process are what these benchmarks
report (the README's table is :func:`table` of the recorded results: run
``python tests/benchmarks/harness.py``). Results are appended to ``tests/benchmarks/results.jsonl``
(one JSON object per measurement) by :func:`record`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.jsonl")


def interleaved(contenders: Mapping[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Minimum CPU seconds of each contender over ``repeats`` rounds; each round runs every
    contender once, in turn (after ``warmup`` untimed rounds)."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    best = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return best


def record(kind: str, **values: Any) -> dict[str, Any]:
    """Append one measurement (with the machine's load and the date) to :data:`RESULTS`."""
    row = {"kind": kind, **values, "load1": os.getloadavg()[0], "cores": os.cpu_count(),
           "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M")}
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(f"\n{kind}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))
    return row


_EPILOGUE = """
import json as _json, resource as _resource
_ru = _resource.getrusage(_resource.RUSAGE_SELF)
_hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")]  # ru_maxrss survives exec
print(_json.dumps({**globals().get("result", {}), "cpu_s": _ru.ru_utime + _ru.ru_stime,
                   "peak_rss_mib": int(_hwm[0]) / 1024 if _hwm else _ru.ru_maxrss / 1024}))
"""


def run_child(code: str, *, env: Mapping[str, str] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run ``code`` in a fresh Python (it may fill a dict ``result``); return ``result`` plus the
    child's CPU seconds, peak RSS (MiB, from its own ``getrusage``) and wall seconds."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + _EPILOGUE], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    data = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    data["wall_s"] = wall
    return data


def latest(kind: str) -> list[dict[str, Any]]:
    """The recorded rows of ``kind``, the latest per distinct key (``N``/``k``/``steps``/``name``)."""
    if not RESULTS.exists():
        return []
    rows: dict[tuple, dict[str, Any]] = {}
    for line in RESULTS.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == kind:
            rows[tuple(row.get(key) for key in ("N", "k", "steps", "name"))] = row
    return list(rows.values())


def _fmt(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table() -> str:
    """The README's performance table (Markdown) from the latest recorded rows of each kind."""
    lines = ["| N, k | run | dynprobe / hand loop | dynprobe (QR every step) / hand loop | lyapynov / dynprobe |",
             "|---|---|---|---|---|"]
    grid = sorted(latest("lyapunov_grid"), key=lambda r: (r["N"], -r["k"], r["steps"]))
    for r in grid:
        lines.append(f"| {r['N']}, {r['k']} | {r['name']} ({r['steps']} steps) | {_fmt(r['dynprobe_over_hand'])} | "
                     f"{_fmt(r['dynprobe_m1_over_hand'])} | {_fmt(r.get('lyapynov_over_dynprobe'))} |")
    lines += ["", "| start-up, fresh process | CPU s | peak RSS MiB |", "|---|---|---|"]
    lines += [f"| {r['name']} | {_fmt(r['cpu_s'])} | {r['peak_rss_mib']:.0f} |" for r in latest("startup")]
    lines += [f"| first `lyapunov` run − second ({r['name']}) | {_fmt(r['extra_s'])} | {r['peak_rss_mib']:.0f} |"
              for r in latest("first_run")]
    lines += [f"| {r['name']} | {_fmt(r['cpu_s'])} | {r['peak_rss_mib']:.0f} |" for r in latest("memory")]
    ends = latest("diagnose")
    if ends:
        lines += ["", "| `dynprobe diagnose CKPT` (fresh process, report included) | wall s | CPU s | peak RSS MiB | "
                  "1-min load |", "|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['peak_rss_mib']:.0f} | {r['load1']:.1f} |"
                  for r in ends]
    shares = latest("diagnose_share")
    if shares:
        lines += ["", "| `diagnose` (default plan) | N | CPU s | per probe (CPU s) |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['state_dim']} | {r['cpu_s']:.0f} | {r['probes'].replace(',', ', ')} |" for r in shares]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
