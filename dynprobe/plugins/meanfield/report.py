"""What a ``meanfield`` result says, for terminals and ``diagnose``: summary rows, verdicts,
size-scaled defaults, and whether the probe applies to a System.

References: mean-field paper §3.1–3.2 (χ₁ separates order from chaos, eq. 4 / 13; τ, eq. 4 / 9),
§3.2.2 (χ₁^T is the gradient variance over T steps, eq. 11).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe import System, Verdict
from dynprobe.drives import FeedbackDrive
from dynprobe.errors import NotApplicable

from .estimate import mean_field_cell

__all__ = ["summary", "verdicts", "suggest", "applies", "CRITICAL_BAND"]

CRITICAL_BAND = 0.01
"""|χ₁ − 1| below this counts as critical (the edge of chaos)."""
_REF = "mean-field paper §3, eq. (4), (9), (13)"


def _phase(chi: float) -> str:
    if not np.isfinite(chi):
        return "unsolved"
    if abs(chi - 1.0) < CRITICAL_BAND:
        return "critical"
    return "chaotic" if chi > 1 else "ordered"


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """χ₁, τ and the phase at a single point; ranges over a grid; theory next to measurement."""
    rows: list[tuple[str, str]] = []
    chi = ds["chi_1"].values
    if chi.ndim == 0:
        rows.append(("chi_1", f"{float(chi):.6g} ({_phase(float(chi))})"))
        rows += [(label, f"{float(ds[key]):.6g}") for key, label in (("tau", "tau (steps)"), ("q_star", "q*"),
                                                                      ("c_star", "c*")) if key in ds]
    else:
        rows += [("grid", " x ".join(f"{d}[{ds.sizes[d]}]" for d in ds["chi_1"].dims)),
                 ("chi_1 range", f"{np.nanmin(chi):.4g} .. {np.nanmax(chi):.4g}"),
                 ("points with chi_1 > 1", f"{int(np.nansum(chi > 1))} of {chi.size}")]
        if not bool(ds.converged.all()):
            rows.append(("unsolved points", str(int((~ds.converged).sum()))))
    if "chi_1_estimate" in ds:
        est = ", ".join(f"{float(ds[f'estimated_{k}']):.4g}" for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R"))
        rows += [("estimated (sigma_w, sigma_v, sigma_b, mu_b, R)", est),
                 ("chi_1 predicted", f"{float(ds.chi_1_estimate):.5g}"),
                 ("lambda_max predicted (1/2 log chi_1)", f"{float(ds.lambda_max_estimate):+.4f} 1/step")]
        if "lambda_max_measured" in ds:
            rows.append(("lambda_max measured", f"{float(ds.lambda_max_measured):+.4f} "
                                                f"± {float(ds.lambda_max_measured_stderr):.1g} 1/step"))
    return rows


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """The predicted phase, memory timescale and gradient scaling at the network's own point."""
    if "chi_1_estimate" in ds:
        chi, tau, lam = float(ds.chi_1_estimate), float(ds.tau_estimate), float(ds.lambda_max_estimate)
        where = ", ".join(f"{k} = {float(ds[f'estimated_{k}']):.3g}" for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b",
                                                                                   "R"))
    elif ds["chi_1"].ndim == 0 and "tau" in ds:
        chi, tau, lam = float(ds.chi_1), float(ds.tau), float(ds.lambda_max)
        where = ", ".join(f"{k} = {float(ds[k]):.3g}" for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R"))
    else:
        return []
    phase = _phase(chi)
    measured = ""
    if "lambda_max_measured" in ds:
        measured = f"; measured λ_max = {float(ds.lambda_max_measured):+.4f}"
    out = [Verdict("regime", f"mean-field theory: {phase} (χ₁ = {chi:.4g})",
                   f"{where} → λ_max ≈ ½ log χ₁ = {lam:+.4f}/step{measured}", _REF)]
    if np.isfinite(tau):
        out.append(Verdict("memory", f"mean-field theory: input correlations decay over τ ≈ {tau:.3g} steps",
                           "τ = −1/log|χ_c*|, χ_c* at c* for the inputs' Σ₁₂ (eq. 4 / 9)", _REF))
    T = 100
    out.append(Verdict("gradients", "mean-field theory: " + ("gradient variance stays O(1) (dynamical isometry "
                                                              "possible)" if phase == "critical" else
                                                              f"gradient variance scales as χ₁^T = {chi**T:.3g} at "
                                                              f"T = {T}"),
                       "(1/N) E tr JJᵀ = χ₁^T (eq. 11)", _REF))
    return out


def suggest(system: System) -> dict[str, Any]:
    """Theory at the network's point without re-measuring (``diagnose`` runs ``lyapunov`` and
    ``jacobian`` itself); a feedback drive leaves R unknown."""
    if isinstance(system.drive, FeedbackDrive):
        raise NotApplicable("the input second moment R is unknown under a feedback drive; pass --param meanfield.R=...")
    return {"measure": False, "horizons": (1, 10, 100)}


def applies(system: System) -> str | None:
    """Only networks whose weights map onto the theory's parameters."""
    if mean_field_cell(system.arch) is not None:
        return None
    return "needs a VanillaRNN, MinimalRNN or one-layer nn.RNN (or no system: pass sigma_w=..., sigma_v=...)"
