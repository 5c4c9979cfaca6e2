"""What a ``jacobian`` result says, for terminals and ``diagnose``: summary rows, verdicts and
size-scaled defaults.

References: mean-field paper §3.2.2 (dynamical isometry: all singular values of J near 1);
fading-memory paper §4.1 (exploding and vanishing gradients); scrambling paper Fig. 5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe import System, Verdict

__all__ = ["summary", "verdicts", "suggest", "RATE_TOL", "ISOMETRY_FACTOR"]

RATE_TOL = 0.01
"""|log ‖J_T‖₂| / T below this per step counts as neither exploding nor vanishing."""
ISOMETRY_FACTOR = 10.0
"""Dynamical isometry: every singular value of J_T within this factor of 1."""
_REF = "mean-field paper §3.2.2; fading-memory paper §4.1"


def _over(da: xr.DataArray) -> list[str]:
    return [d for d in ("network", "sample") if d in da.dims]


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Per horizon: median log spectral norm, log condition number, tr(JJᵀ)/N; share with ‖J‖₂ > 1."""
    rows = []
    over = _over(ds.log_spectral_norm)
    for T in ds.horizon.values:
        sel = ds.sel(horizon=T)
        norm, cond = float(sel.log_spectral_norm.median(over)), float(sel.log_condition_number.median(over))
        rows.append((f"T={int(T)}: log ||J||_2, log cond, tr(JJ^T)/N",
                     f"{norm:+.4g}, {cond:.4g}, {float(np.exp(sel.log_mean_sq_sv).median(over)):.4g}"))
    fractions = ", ".join(f"{v:.2f}" for v in ds.fraction_norm_exceeds_one.values)
    rows.append(("fraction with ||J||_2 > 1 (by T)", fractions))
    if "step_spectral_norm" in ds:
        rows.append(("one-step ||J_t||_2 / spectral radius (median)",
                     f"{float(ds.step_spectral_norm.median()):.4g} / {float(ds.step_spectral_radius.median()):.4g}"))
    if bool(ds.diverged.any()):
        rows.append(("diverged trajectories", str(int(ds.diverged.sum()))))
    return rows


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Exploding / vanishing / stable gradients over the longest horizon; dynamical isometry;
    transient (non-normal) amplification."""
    if "network" in ds.dims or bool(ds.diverged.all()):
        return []
    last = ds.isel(horizon=-1)
    T = int(last.horizon)
    over = _over(last.log_spectral_norm)
    rate = float(last.log_spectral_norm.median(over)) / T
    rms = 0.5 * float(last.log_mean_sq_sv.median(over)) / T
    if rate > RATE_TOL:
        word = f"gradients explode: ‖∂h_T/∂h_0‖₂ grows ×e every {1 / rate:.3g} steps"
    elif rate < -RATE_TOL:
        word = f"gradients vanish: ‖∂h_T/∂h_0‖₂ shrinks ×e every {-1 / rate:.3g} steps"
    else:
        word = "gradients neither explode nor vanish (|log ‖J‖₂|/T < 0.01)"
    out = [Verdict("gradients", word, f"T = {T}: log ‖J‖₂ / T = {rate:+.4f}, "
                                      f"½ log(tr JJᵀ/N) / T = {rms:+.4f} per step", _REF)]
    log_sv = last.log_singular_values.median(over).values
    spread = float(np.nanmax(np.abs(log_sv[np.isfinite(log_sv)]))) if np.isfinite(log_sv).any() else np.inf
    if spread < np.log(ISOMETRY_FACTOR):
        out.append(Verdict("gradients", f"dynamical isometry: all singular values of ∂h_{T}/∂h_0 within ×"
                                        f"{ISOMETRY_FACTOR:g} of 1", f"max |log σᵢ| = {spread:.3g}", _REF))
    else:
        cond = float(last.log_condition_number.median(over))
        out.append(Verdict("gradients", f"ill-conditioned over {T} steps: condition number e^{cond:.3g}",
                           f"max |log σᵢ| = {spread:.3g}", _REF))
    if "step_spectral_norm" in ds:
        norm, radius = float(ds.step_spectral_norm.median()), float(ds.step_spectral_radius.median())
        if norm > 1 > radius:
            out.append(Verdict("gradients", "transient amplification: one step can stretch (‖J_t‖₂ > 1) though "
                                            "every eigenvalue contracts (ρ(J_t) < 1)",
                               f"median ‖J_t‖₂ = {norm:.3g}, median ρ(J_t) = {radius:.3g}",
                               "scrambling paper §5 (norm, not radius, bounds growth)"))
    return out


def suggest(system: System) -> dict[str, Any]:
    """Defaults for ``diagnose``, scaled so that the probe stays within a few CPU seconds.

    Every step of every trajectory costs one tangent map on N columns, one N×N QR and one
    triangular product (plus, for the gradient pass, one more triangular product and a Lanczos
    σ₁): O(N³), about 0.1 s at N = 512 and 0.5 s at N = 1024 on one core, the QR alone
    0.035 s and 0.19 s. Each horizon adds its spectrum (a few transpose-QR sweeps and one dense
    SVD). Hence, by state size N:

    * N ≤ 128: horizons (1, 10, 100), 4 samples, per-step statistics;
    * N ≤ 256: horizons (1, 10, 50), 2 samples, per-step statistics;
    * N ≤ 512: horizons (1, 10, 20), 1 sample, no per-step statistics (an eigenvalue problem
      per step: ``eigvals`` alone is 0.3 s at N = 512);
    * N ≤ 1024: horizons (1, 8), 1 sample;
    * beyond: horizons (1, 4), 1 sample (the cost still grows as N³: pass ``horizons=`` to
      look further).

    With one sample nothing is averaged: ``fraction_norm_exceeds_one`` is that trajectory's 0 or
    1, and the verdicts read a single trajectory (pass ``samples=`` for spread). The rates in the
    verdicts are log ‖J_T‖₂ / T at the longest horizon, so a shorter T reads the transient more
    than the asymptotic rate — the ``lyapunov`` probe gives that one at any N.
    """
    n = system.state_dim
    if n <= 128:
        return {"horizons": (1, 10, 100), "samples": 4, "step_stats": True}
    if n <= 256:
        return {"horizons": (1, 10, 50), "samples": 2, "step_stats": True}
    if n <= 512:
        return {"horizons": (1, 10, 20), "samples": 1, "step_stats": False}
    if n <= 1024:
        return {"horizons": (1, 8), "samples": 1, "step_stats": False}
    return {"horizons": (1, 4), "samples": 1, "step_stats": False}
