"""Bundled plugin: the ``meanfield`` probe, critical initialization, and the mean-field cells'
adapter.

Public API: :func:`meanfield` (the probe), :func:`predict` (theory on a grid),
:func:`predict_point` / :func:`estimate` (what theory predicts for a given network, and where
to mark it), :func:`critical_init` (Algorithm 1; ``dynprobe.critical_init`` delegates here),
:func:`cosine_mc` (the Fig. 1 Monte-Carlo), :func:`phase_diagram` (the plot).

Reference: mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §3, App. B–E.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe

from .adapter import dynprobe_adapt
from .critical import critical_hyper, critical_init
from .estimate import Estimate, Prediction, estimate, predict_point
from .montecarlo import cosine_mc, fig1_schedule
from .plot import phase_diagram, plot
from .probe import meanfield
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
    "dynprobe_adapt",
]


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """χ₁, τ and the phase at a single point; ranges over a grid; theory vs measurement."""
    rows: list[tuple[str, str]] = []
    chi = ds["chi_1"].values
    if chi.ndim == 0:
        phase = "critical" if abs(float(chi) - 1) < 1e-3 else ("chaotic" if chi > 1 else "ordered")
        rows += [("chi_1", f"{float(chi):.6g} ({phase})"), ("tau", f"{float(ds.tau):.4g} steps"),
                 ("q*", f"{float(ds.q_star):.6g}"), ("c*", f"{float(ds.c_star):.6g}")]
    else:
        rows += [("grid", " x ".join(f"{d}[{ds.sizes[d]}]" for d in ds["chi_1"].dims)),
                 ("chi_1 range", f"{np.nanmin(chi):.4g} .. {np.nanmax(chi):.4g}"),
                 ("points with chi_1 > 1", f"{int(np.nansum(chi > 1))} of {chi.size}")]
        if not bool(ds.converged.all()):
            rows.append(("unsolved points", str(int((~ds.converged).sum()))))
    if "chi_1_estimate" in ds:
        rows += [("estimated (sigma_w, sigma_v, sigma_b, mu_b, R)",
                  ", ".join(f"{float(ds[f'estimated_{k}']):.4g}" for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R"))),
                 ("chi_1 predicted", f"{float(ds.chi_1_estimate):.5g}"),
                 ("lambda_max predicted (1/2 log chi_1)", f"{float(ds.lambda_max_estimate):+.4f} 1/step")]
        if "lambda_max_measured" in ds:
            rows.append(("lambda_max measured", f"{float(ds.lambda_max_measured):+.4f} "
                                                f"± {float(ds.lambda_max_measured_stderr):.1g} 1/step"))
    return rows


def suggest(system: dynprobe.System) -> dict[str, Any]:
    """Short runs for large networks (the measurement is the costly part)."""
    n = system.state_dim
    return {"horizons": (1, 10, 50) if n > 256 else (1, 10, 100), "steps": 300 if n > 256 else 500}


def applies(system: dynprobe.System) -> str | None:
    """Only networks whose weights map onto the theory's parameters."""
    meta, kind = system.meta, system.kind
    if meta.get("cell") in ("vanilla", "minimalrnn") or "RNN_TANH', layers=1" in kind or "RNN_RELU', layers=1" in kind:
        return None
    return "needs a VanillaRNN, MinimalRNN or one-layer nn.RNN (or no system: pass sigma_w=..., sigma_v=...)"


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
            reference="mean-field paper §3, eq. (2)-(13), Algorithm 1, App. B-E",
        )
    ]
