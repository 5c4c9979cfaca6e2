"""Bundled plugin: periodic orbits and Li–Yorke chaos (``period3``), ``scrambling`` and
``linear_regions`` — the scrambling paper's measurements, for 1-D maps and beyond.

``find_periodic_orbits(system, p, starts)`` is the n-D orbit finder as a plain function (for
other probes, e.g. to verify periods seen in a bifurcation sweep).

Reference: scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §3–5.
"""

from __future__ import annotations

from typing import Any

import torch

import dynprobe
from dynprobe import Probe, System

from .feedforward import feedforward_spec
from .newton import PeriodicOrbits, find_periodic_orbits
from .period3 import period3
from .plots import plot_linear_regions, plot_period3, plot_scrambling
from .regions import linear_regions
from .scrambling import scrambling
from .verdicts import (
    period3_summary,
    period3_verdicts,
    regions_summary,
    regions_verdicts,
    scrambling_summary,
    scrambling_verdicts,
)

__all__ = ["period3", "scrambling", "linear_regions", "find_periodic_orbits", "PeriodicOrbits", "dynprobe_probes"]


def applies(system: System) -> str | None:
    """Periodic orbits need a time-invariant map."""
    if system.drive.time_varying:
        return f"needs a time-invariant map (autonomous, constant or feedback drive), got {system.drive.describe()}"
    return None


def suggest(system: System) -> dict[str, Any]:
    """Exact for piecewise-linear 1-D maps; a grid over the visited range (±50 %) for other 1-D
    maps; the n-D search for periods 1–3 (1–2 beyond N = 256), with fewer starts per round and
    fewer rounds as N grows.

    From N = 128 the Levenberg–Marquardt steps are matrix-free (Krylov, O(N²) per product), so
    the cost per start is a few dozen passes of Fᵖ and its tangent, and what is left at large N
    is Fᵖ itself. Beyond N = 256 a default diagnosis therefore keeps periods 1 and 2 — a
    period-2 search costs about twice a period-1 search (F² per pass) and finds the clocked
    memories a fixed-point search cannot (stable period-2 orbits) — but drops period 3, with 8
    starts per round, 2 rounds, 30 descent steps and 32 seeding trajectories: about 3–4 s of CPU
    at N = 512–1024. Two rounds with ``patience`` 2 mean a period whose first round found an
    orbit is reported *not* complete: a cut search says so rather than claiming completeness."""
    n = system.state_dim
    if feedforward_spec(system) is not None:
        return {"period": 3, "method": "exact"}
    if n == 1:
        if system.arch.domain is not None:
            return {"period": 3, "method": "grid", "grid": 20001}
        h = system.trajectory(system.initial_state(64, seed=0), 200)[100:]
        h = h[torch.isfinite(h)]
        lo, hi = (float(h.min()), float(h.max())) if h.numel() else (-1.0, 1.0)
        pad = 0.5 * max(hi - lo, 1e-3)
        return {"period": 3, "method": "grid", "interval": (lo - pad, hi + pad), "grid": 20001}
    if n <= 64:
        return {"period": (1, 2, 3), "method": "newton", "starts": 128, "rounds": 8}
    if n <= 256:
        return {"period": (1, 2, 3), "method": "newton", "starts": 32, "rounds": 4, "max_iter": 25}
    return {"period": (1, 2), "method": "newton", "starts": 8, "rounds": 2, "max_iter": 25, "descent_iters": 30,
            "samples": 32}


def regions_applies(system: System) -> str | None:
    if feedforward_spec(system) is None:
        return "needs a piecewise-linear 1-D map (feedforward_system with ReLU/identity layers)"
    return None


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="period3",
            run=period3,
            plot=plot_period3,
            applies=applies,
            suggest=suggest,
            summary=period3_summary,
            verdicts=period3_verdicts,
            reference="scrambling paper Def. 3.1, Fact 1, Lemma 4.2, §5 (Li & Yorke 1975; Sharkovsky 1964)",
            dims=("period", "orbit", "phase", "unit", "mode", "graph", "round"),
        ),
        Probe(
            name="scrambling",
            run=scrambling,
            plot=plot_scrambling,
            summary=scrambling_summary,
            verdicts=scrambling_verdicts,
            reference="scrambling paper Def. 2.1-2.2, Fig. 1",
            dims=("sample", "time"),
        ),
        Probe(
            name="linear_regions",
            run=linear_regions,
            plot=plot_linear_regions,
            applies=regions_applies,
            summary=regions_summary,
            verdicts=regions_verdicts,
            reference="scrambling paper Fig. 2, Cor. 4.4",
            dims=("horizon",),
        ),
    ]
