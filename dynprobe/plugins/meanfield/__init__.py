"""Bundled plugin: the ``meanfield`` probe and critical initialization.

Public API: :func:`meanfield` (the probe), :func:`predict` (theory on a grid),
:func:`predict_point` / :func:`estimate` (what theory predicts for a given network, and where
to mark it), :func:`critical_init` (Algorithm 1),
:func:`cosine_mc` (the Fig. 1 Monte-Carlo), :func:`phase_diagram` (the plot).

Reference: mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §3, App. B–E.
"""

from __future__ import annotations

import dynprobe
from dynprobe import Probe

from .critical import critical_hyper, critical_init
from .estimate import Estimate, Prediction, estimate, predict_point
from .montecarlo import cosine_mc, fig1_schedule
from .plot import phase_diagram, plot
from .probe import GRID_PARAMS, meanfield
from .report import applies, suggest, summary, verdicts
from .theory import Grid, cosine_trajectory, predict

__all__ = [
    "meanfield",
    "predict",
    "Grid",
    "predict_point",
    "estimate",
    "Estimate",
    "Prediction",
    "critical_init",
    "critical_hyper",
    "cosine_mc",
    "cosine_trajectory",
    "fig1_schedule",
    "phase_diagram",
    "plot",
    "dynprobe_probes",
]


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="meanfield",
            run=meanfield,
            plot=plot,
            applies=applies,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="mean-field paper §3, eq. (2)-(13), Algorithm 1, App. B-E",
            ensemble="pooled",
            dims=(*GRID_PARAMS, "horizon", "time"),
        )
    ]
