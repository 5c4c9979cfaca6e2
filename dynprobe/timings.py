"""How long probes took before, on this machine: the honest source of ``diagnose``'s estimate.

A probe's cost depends on the system, the parameters, the machine and its load in ways no
formula captures for every plugin, so the estimate shown before a diagnosis is what the same
probe with the same parameters on a system of the same size and dtype took here the last
times (the median of the last five), or, when a probe offers one, its own
``Probe.estimate(system, params)``. Nothing is guessed: a probe with neither has no estimate,
and the line before the run says so.

The history is a small JSON file under ``$DYNPROBE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/dynprobe`` or ``~/.cache/dynprobe``); ``DYNPROBE_CACHE_DIR=""`` turns it
off. Any trouble reading or writing it is ignored: an estimate is never worth a failure.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["history_path", "timing_key", "estimate_s", "remember", "format_duration"]

_KEEP = 5
_MAX_KEYS = 2000


def history_path() -> Path | None:
    """Where the history lives, or ``None`` when turned off."""
    raw = os.environ.get("DYNPROBE_CACHE_DIR")
    if raw is not None:
        return Path(raw) / "timings.json" if raw.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dynprobe" / "timings.json"


def timing_key(probe: str, system: Any, params: Mapping[str, Any]) -> str:
    """What makes two runs comparable: probe, state size, dtype, device, parameters."""
    from .results import to_json

    return to_json([probe, int(system.state_dim), str(system.dtype), str(system.device), dict(params)])


def _load(path: Path) -> dict[str, list[float]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [float(x) for x in v if isinstance(x, (int, float))] for k, v in data.items() if isinstance(v, list)}


def estimate_s(key: str) -> float | None:
    """Median of the recorded times for ``key``; ``None`` without a record."""
    path = history_path()
    times = _load(path).get(key) if path is not None else None
    return statistics.median(times) if times else None


def remember(key: str, elapsed_s: float) -> None:
    """Add one measured time (atomically replacing the file; errors ignored)."""
    path = history_path()
    if path is None or not elapsed_s >= 0:
        return
    try:
        data = _load(path)
        data[key] = (data.get(key, []) + [round(float(elapsed_s), 3)])[-_KEEP:]
        if len(data) > _MAX_KEYS:
            data = dict(list(data.items())[-_MAX_KEYS:])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
