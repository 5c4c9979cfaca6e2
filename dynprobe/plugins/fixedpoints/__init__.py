"""Bundled plugin: the ``fixedpoints`` probe — what a trained network remembers.

Fixed and slow points of a network's map found by the batched Sussillo–Barak search of the core
(:mod:`dynprobe.orbits`), with eigenvalues, stability, time constants and input Jacobians;
``track_fixed_points`` follows them across the checkpoints of a batch run.

References
----------
Sussillo & Barak (2013), "Opening the black box", Neural Computation 25(3); Golub & Sussillo
(2018), FixedPointFinder, JOSS 3(31): 1003.
"""

from __future__ import annotations

from typing import Any

import dynprobe
from dynprobe import Probe, System

from .plot import plot
from .probe import fixedpoints
from .track import plot_tracks, track_fixed_points
from .verdicts import memory_phrase, summary, verdicts

__all__ = ["fixedpoints", "track_fixed_points", "plot_tracks", "plot", "summary", "verdicts", "memory_phrase",
           "suggest", "dynprobe_probes"]


def suggest(system: System) -> dict[str, Any]:
    """Budgets scaled to the state size: each Levenberg–Marquardt step forms N×N Jacobians per
    start (O(N³)), so large networks get fewer starts and iterations."""
    n = system.state_dim
    if n <= 64:
        return {"batch": 128, "rounds": 8}
    if n <= 256:
        return {"batch": 64, "rounds": 4, "max_iter": 30}
    return {"batch": 16, "rounds": 3, "patience": 1, "descent_iters": 50, "max_iter": 15}


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="fixedpoints",
            run=fixedpoints,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="Sussillo & Barak 2013 (Neural Computation 25(3)) §2-4; Golub & Sussillo 2018 (JOSS 3(31))",
        )
    ]
