"""Bundled plugin: the ``lyapunov`` probe (QR method), with its plot and summary.

Reference: fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.1 and App. A.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe, System, Verdict
from dynprobe.plotting import (
    integer_ticks,
    lead_dims,
    lead_note,
    legend_outside,
    median_band,
    panel_axes,
    resolve_views,
    stack_coordinate,
)

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


VIEWS = ("spectrum", "convergence", "trend")


def plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
         view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Panels ``spectrum`` (λᵢ, mean ± stderr), ``convergence`` (running estimates) and, for a
    result stacked along ``checkpoint``/``network``, ``trend`` (the top exponents against epoch
    or position; the default there, with the median spectrum). Convention:
    :meth:`dynprobe.accessor.DynprobeAccessor.plot`."""
    stacked = bool(lead_dims(ds))
    default = ("trend", "spectrum") if stacked else ("spectrum", "convergence")
    views = resolve_views("lyapunov", default if view is None else VIEWS, view, ax)
    fig, axes = panel_axes("lyapunov", views, ax, figsize)
    for name, target in axes.items():
        {"spectrum": _spectrum, "convergence": _convergence, "trend": _trend}[name](ds, target, kwargs)
    return fig


def _spectrum(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    index = ds.exponent.values
    mid, lo, hi = median_band(ds.exponent_mean)
    if lo is None:
        ax.errorbar(index, mid, yerr=ds.exponent_stderr.values, **{"fmt": "o-", "ms": 3, "capsize": 2, **kwargs})
    else:
        line, = ax.plot(index, mid, **{"marker": "o", "ms": 3, **kwargs})
        ax.fill_between(index, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="exponent index $i$", ylabel=r"$\lambda_i$ (1/step)",
           title="Lyapunov spectrum" + (lead_note(ds) or r" (mean $\pm$ stderr)"))
    integer_ticks(ax)


def _convergence(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    conv = ds.convergence
    show = conv.exponent.values[: min(6, conv.sizes["exponent"])]
    for i in show:
        mid, lo, hi = median_band(conv.sel(exponent=i), over=("sample",))
        line, = ax.plot(ds.avg_steps.values, mid, **{"lw": 1, "label": rf"$\lambda_{{{i}}}$", **kwargs})
        if lo is not None:
            ax.fill_between(ds.avg_steps.values, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.axhline(0, color="k", lw=0.8)
    over = "median over samples" + (" and " + ", ".join(f"{d}s" for d in lead_dims(ds)) if lead_dims(ds) else "")
    ax.set(xlabel="steps averaged", ylabel="running estimate (1/step)", title=f"convergence ({over})")
    legend_outside(ax)


def _trend(ds: xr.Dataset, ax: Any, kwargs: dict[str, Any]) -> None:
    dim, x, label = stack_coordinate(ds)
    mean = ds.exponent_mean
    other = [d for d in lead_dims(ds) if d != dim]
    if other:
        mean = mean.median(other)
    for i in mean.exponent.values[: min(4, mean.sizes["exponent"])]:
        one = mean.sel(exponent=i).transpose(dim)
        ax.plot(x, one.values, **{"marker": "o", "ms": 3, "label": rf"$\lambda_{{{i}}}$", **kwargs})
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel=label, ylabel=r"$\lambda_i$ (1/step)", title=f"top exponents along {dim}")
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        integer_ticks(ax)
    legend_outside(ax)


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
            dims=("sample", "exponent", "avg_steps"),
        )
    ]
