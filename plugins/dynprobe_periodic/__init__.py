"""Bundled plugin: periodic orbits and Li–Yorke chaos (``period3``), ``scrambling`` and
``linear_regions`` — the scrambling paper's measurements, for 1-D maps and beyond.

Reference: scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §3–5.
"""

from __future__ import annotations

from typing import Any

import dynprobe
from dynprobe import Probe, System

from .newton import PeriodicOrbits, find_periodic_orbits
from .period3 import period3

__all__ = ["period3", "find_periodic_orbits", "PeriodicOrbits", "dynprobe_probes"]


def applies(system: System) -> str | None:
    """Periodic orbits need a time-invariant map."""
    if system.drive.time_varying:
        return f"needs a time-invariant map (autonomous, constant or feedback drive), got {system.drive.describe()}"
    return None


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="period3",
            run=period3,
            applies=applies,
            reference="scrambling paper Def. 3.1, Fact 1, Lemma 4.2, §5 (Li & Yorke 1975; Sharkovsky 1964)",
        )
    ]
