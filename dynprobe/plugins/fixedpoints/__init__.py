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
from .track import plot_tracks, track_events, track_fixed_points
from .verdicts import memory_phrase, summary, verdicts

__all__ = ["fixedpoints", "track_fixed_points", "track_events", "plot_tracks", "plot", "summary", "verdicts", "memory_phrase",
           "suggest", "dynprobe_probes"]


def suggest(system: System) -> dict[str, Any]:
    """Budgets scaled to the problem, and an ensemble searches every network at once, so large
    networks get fewer starts and iterations and large ensembles fewer starts per network (about
    4096 per round).

    Below N = 128 a Levenberg–Marquardt step forms the N×N Jacobian of every start (O(N³));
    from there on it is matrix-free (:mod:`dynprobe.orbits.krylov`, O(N²) per product), and what
    a start costs is a few dozen passes of F and its tangent — about 2.5 s of CPU for the whole
    probe at N = 512 and 4 s at N = 1024 (GRU, 2-layer LSTM) with the budget below (16 starts per
    round, at most 3 rounds, 50 descent steps). With ``patience`` 1 a large search stops after
    one round that adds nothing; ``complete`` still needs that quiet round and no point reached
    by a single start, and ``unseen`` says how likely one more start was to find something new —
    evidence from 32 starts, not from 1000."""
    n, networks = system.state_dim, system.networks or 1
    if n <= 64:
        out: dict[str, Any] = {"batch": 128, "rounds": 8}
    elif n <= 256:
        out = {"batch": 64, "rounds": 4, "max_iter": 30}
    else:
        out = {"batch": 16, "rounds": 3, "patience": 1, "descent_iters": 50, "max_iter": 15}
    if networks > 1:
        out["batch"] = int(max(8, min(out["batch"], 4096 // networks)))
        out["samples"] = int(max(8, min(128, 4096 // networks)))
    if networks > 64:  # a Monte-Carlo ensemble: a count per network, not an exhaustive search of each
        out.update(rounds=2, patience=1, descent_iters=30, max_iter=20)
    return out


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="fixedpoints",
            dims=("point", "unit", "mode", "round", "pc", "sample", "time", "input", "condition"),
            run=fixedpoints,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="Sussillo & Barak 2013 (Neural Computation 25(3)) §2-4; Golub & Sussillo 2018 (JOSS 3(31))",
            across={"tracks": track_fixed_points},  # open_batch: the points followed through training
        )
    ]
