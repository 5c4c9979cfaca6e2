"""Bundled plugin: the ``lyapunov`` probe (QR method), with its plot and summary.

Reference: fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.1 and App. A.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe, System, Verdict

from .probe import kaplan_yorke, lyapunov, regime_of

__all__ = ["lyapunov", "kaplan_yorke", "regime_of", "verdicts", "dynprobe_probes"]


def suggest(system: System) -> dict[str, Any]:
    """Defaults scaled to the state size: the full spectrum up to N = 64, the top 32 beyond."""
    n = system.state_dim
    return {"k": None if n <= 64 else 32, "steps": 2000 if n <= 64 else 1000, "samples": 4 if n <= 64 else 2}


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Largest exponents with standard errors, K–Y dimension, entropy rate and the verdict."""
    if "network" in ds.dims:
        lam = ds.exponent_mean.sel(exponent=1).values
        return [
            ("networks", str(ds.sizes["network"])),
            ("lambda_1 over networks (min / median / max)",
             f"{np.nanmin(lam):+.4g} / {np.nanmedian(lam):+.4g} / {np.nanmax(lam):+.4g} 1/step"),
            ("regimes", ", ".join(f"{r}: {int((ds.regime.values == r).sum())}" for r in np.unique(ds.regime.values))),
        ]
    rows = []
    for i in ds.exponent.values[:4]:
        mean = float(ds.exponent_mean.sel(exponent=i))
        se = float(ds.exponent_stderr.sel(exponent=i))
        rows.append((f"lambda_{i}", f"{mean:+.5f} ± {se:.1g} 1/step"))
    rows.append(("Kaplan-Yorke dimension", f"{float(ds.kaplan_yorke_dimension.mean()):.3f}"))
    rows.append(("entropy rate (sum lambda_i > 0)", f"{float(ds.entropy_rate.mean()):.4f} nats/step"))
    if bool(ds.diverged.any()):
        rows.append(("diverged samples", str(int(ds.diverged.sum()))))
    if "stuck" in ds and bool(ds.stuck.any()):
        rows.append(("stuck on a floating-point cycle", f"{int(ds.stuck.sum())} samples (left out of the mean)"))
    if "attractors" in ds and int(ds.attractors) > 1:
        rows.append(("attractors (by lambda_1)", f"{int(ds.attractors)}: {_groups(ds)}"))
    rows.append(("verdict", str(ds.regime.values)))
    return rows


def _groups(ds: xr.Dataset) -> str:
    """``λ₁ = +0.69 (5 samples), -0.69 (3 samples)``: the attractor groups of a single network."""
    lam, label = ds.exponents.sel(exponent=1).values, ds.attractor.values
    parts = [f"{np.mean(lam[label == g]):+.4g} ({int((label == g).sum())} samples)" for g in range(int(ds.attractors))]
    return "lambda_1 = " + ", ".join(parts)


def plot(ds: xr.Dataset) -> Any:
    """Spectrum (mean ± stderr) and the convergence of the running estimates."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    mean = ds.exponent_mean
    if "network" in mean.dims:
        mean = mean.median("network")
    ax1.errorbar(ds.exponent.values, mean.values, yerr=ds.exponent_stderr.values if "network" not in ds.dims else None,
                 fmt="o-", ms=3)
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set(xlabel="exponent index", ylabel="λ (1/step)", title="Lyapunov spectrum (mean ± stderr)")
    ax1.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    conv = ds.convergence.isel(sample=0)
    if "network" in conv.dims:
        conv = conv.isel(network=0)
    show = conv.exponent.values[: min(8, conv.sizes["exponent"])]
    for i in show:
        ax2.plot(ds.time.values, conv.sel(exponent=i).values, lw=1, label=f"λ{i}")
    ax2.set_xscale("log")
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set(xlabel="steps averaged", ylabel="running estimate (1/step)", title="convergence (sample 0)")
    if len(show) <= 8:
        ax2.legend(fontsize=7, ncol=2)
    return fig


_REF = "fading-memory paper §2.1 (exponents as memory timescales), App. A"
_WORDS = {"chaotic": "chaotic", "ordered": "ordered", "marginal": "near the edge of chaos", "undetermined": "undetermined"}


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Regime from λ₁ ± stderr; memory timescales of the slowest directions."""
    if "network" in ds.dims:
        return []
    lam = ds.exponent_mean.values
    se = float(ds.exponent_stderr.values[0])
    l1 = float(lam[0])
    regime = str(ds.regime.values)
    out = [Verdict("regime", _WORDS.get(regime, regime),
                   f"λ₁ = {l1:+.4f} ± {se:.1g} /step (edge band ±max(3·stderr, {ds.attrs['regime_tolerance']:g}))", _REF)]
    if "attractors" in ds and int(ds.attractors) > 1:
        out.append(Verdict("attractors", f"initial conditions reach {int(ds.attractors)} attractors with different λ₁; "
                           "the mean averages over them", _groups(ds).replace("lambda_1", "λ₁"), _REF))
    if regime == "marginal":
        scale = f"≈ {1 / abs(l1):.3g} steps" if l1 != 0 else "indefinitely"
        out.append(Verdict("memory", f"long memory: perturbations neither grow nor fade e-fold within {scale}",
                           f"|λ₁| = {abs(l1):.2g} /step inside the edge band; next timescales −1/λᵢ = "
                           f"{', '.join(f'{-1 / v:.3g}' for v in lam[1:4] if v < 0) or '∞'} steps", _REF))
    elif np.isfinite(l1) and l1 > 0:
        out.append(Verdict("memory", f"initial conditions forgotten e-fold every {1 / l1:.1f} steps",
                           f"λ₁ = {l1:+.4f} /step > 0; Kaplan–Yorke dimension "
                           f"{float(ds.kaplan_yorke_dimension.mean()):.2f}", _REF))
    elif np.isfinite(l1):
        slow = [f"{-1 / v:.3g}" for v in lam[:3] if v < 0]
        horizon = np.log(100.0) / -l1 if l1 < 0 else np.inf
        out.append(Verdict("memory", f"fading memory: perturbations fall to 1% in ≈ {horizon:.3g} steps",
                           f"slowest timescales −1/λᵢ = {', '.join(slow) or '∞'} steps", _REF))
    return out


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="lyapunov",
            run=lyapunov,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="fading-memory paper §2.1, App. A (QR method; Sandri 1996)",
        )
    ]
