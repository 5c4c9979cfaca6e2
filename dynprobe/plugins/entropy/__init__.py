"""Bundled plugin: the ``entropy`` probe (entropy change of an ensemble, the brackets of eq. 4,
Lipschitz bounds and the contractivity verdict), with its plot, summary and size-scaled defaults.

Reference: attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.1–3.2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe, System, Verdict
from dynprobe.plotting import integer_ticks, lead_dims, lead_note, legend_outside, median_band, panel_axes, resolve_views

from .knn import DuplicatePointsError, kl_entropy, knn_distances
from .lipschitz import WeightBound, contractivity, lstm_bound, spectral_norms, weight_norm_bound
from .probe import entropy
from .rate import jacobian_stats

__all__ = [
    "entropy",
    "kl_entropy",
    "knn_distances",
    "DuplicatePointsError",
    "spectral_norms",
    "weight_norm_bound",
    "lstm_bound",
    "WeightBound",
    "contractivity",
    "jacobian_stats",
    "suggest",
    "verdicts",
    "dynprobe_probes",
]


def suggest(system: System) -> dict[str, Any]:
    """Defaults scaled to the state size N. A visited state costs a full Jacobian (N tangent
    passes of the step) and one LU (log|det J|, and σ_min through it); at N = 1024 that is about
    0.2 s of one core, so beyond N = 512 the ensemble is halved to 4 samples."""
    n = system.state_dim
    if n <= 64:
        return {"samples": 128, "steps": 20}
    if n <= 256:
        return {"samples": 32, "steps": 10, "power_iters": 20}
    return {"samples": 8 if n <= 512 else 4, "steps": 4, "power_iters": 10}


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Mean entropy rate with its brackets, Lipschitz bounds and the verdict."""
    rows = [
        ("entropy rate (mean over steps)", f"{float(ds.rate.mean()):+.4g} nats/step"),
        ("eq. 4 brackets (mean over steps)", f"[{float(ds.rate_lower.mean()):+.4g}, {float(ds.rate_upper.mean()):+.4g}] "
                                             "nats/step"),
        ("H_T - H_0", f"{float(ds.entropy_change[-1]):+.4g} nats after {ds.sizes['step']} steps"),
        ("Lipschitz constant L_f", f">= {float(ds.lipschitz_lower):.4g}"
         + (f", <= {float(ds.lipschitz_upper):.4g} ({ds.attrs.get('lipschitz_upper_norm', '')})"
            if bool(ds.has_upper_bound) else "")),
        ("co-Lipschitz (min sigma_min visited)", f"{float(ds.co_lipschitz):.4g}"),
        ("invertible at visited states", "yes" if bool(ds.invertible) else "no (det J = 0 somewhere)"),
        ("contractivity (Def. 1)", f"{ds.contractivity.item()}: {ds.attrs.get('contractivity_reason', '')}"),
    ]
    if "knn_change" in ds:
        last = float(ds.knn_change[-1])
        rows.append(("k-NN estimate of H_T - H_0", f"{last:+.4g} nats" if np.isfinite(last) else
                     "undefined: states coincide (see knn_duplicates)"))
    return rows


VIEWS = ("change", "rate")


def _band(ax: Any, x: np.ndarray, da: xr.DataArray, kwargs: dict[str, Any], prepend: bool = False, **style: Any) -> Any:
    mid, lo, hi = median_band(da)
    if prepend:  # H_0 - H_0 = 0 at t = 0
        mid = np.concatenate([[0.0], mid])
        lo, hi = (None, None) if lo is None else (np.concatenate([[0.0], lo]), np.concatenate([[0.0], hi]))
    line, = ax.plot(x, mid, **{**style, **kwargs})
    if lo is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    return line


def plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
         view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Panels ``change`` (H_t − H_0 with the cumulative brackets of eq. 4 and the k-NN
    estimate) and ``rate`` (the per-step rate between N log σ_min and N log σ_max). Stacked
    results: medians with 10–90 % bands. Convention: :meth:`dynprobe.accessor.DynprobeAccessor.plot`."""
    views = resolve_views("entropy", VIEWS, view, ax)
    fig, axes = panel_axes("entropy", views, ax, figsize, panel_size=(5.2, 3.8))
    t = np.concatenate([[0], ds.step.values])
    note = lead_note(ds)
    if "change" in axes:
        a = axes["change"]
        lower, _, _ = median_band(ds.change_lower)
        upper, _, _ = median_band(ds.change_upper)
        a.fill_between(t, np.concatenate([[0.0], lower]), np.concatenate([[0.0], upper]), color="0.85", lw=0,
                       label=r"eq. 4 brackets ($N\log\sigma_{\min}$, $N\log\sigma_{\max}$)")
        _band(a, t, ds.entropy_change, kwargs, prepend=True, color="k", lw=1.5,
              label=r"exact: $\sum_t \mathrm{E}[\log|\det J|]$")
        if "knn_change" in ds:
            mid, lo, hi = median_band(ds.knn_change)
            a.errorbar(ds.time.values, mid, yerr=None if lo is None else [mid - lo, hi - mid], fmt="o",
                       color="C3", capsize=2, label="k-NN estimate")
        a.set(xlabel="step $t$", ylabel="$H_t - H_0$ (nats)", title="entropy change of the ensemble" + note)
        integer_ticks(a)
        legend_outside(a)
    if "rate" in axes:
        a = axes["rate"]
        x = ds.step.values
        _band(a, x, ds.rate, kwargs, color="k", marker=".", label=r"rate $\mathrm{E}[\log|\det J|]$")
        _band(a, x, ds.rate_lower, kwargs, color="C0", ls="--", label=r"$N\log\min\sigma_{\min}$")
        _band(a, x, ds.rate_upper, kwargs, color="C3", ls="--", label=r"$N\log\max\sigma_{\max}$")
        a.axhline(0, color="0.5", lw=0.6)
        if lead_dims(ds):
            title = "entropy rate" + note
        else:
            title = rf"$L_f \geq {float(ds.lipschitz_lower):.3g}$; {ds.contractivity.item().replace('_', ' ')}"
        a.set(xlabel="step $t$", ylabel="nats/step", title=title)
        integer_ticks(a)
        legend_outside(a)
    return fig


_WORDS = {"contractive": "contractive: one fixed point attracts everything, information fades",
          "not_contractive": "not contractive: room for attractors beyond a single fixed point",
          "undetermined": "contractivity undetermined"}


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Contractivity (Def. 1) and how fast the ensemble's entropy changes (eq. 4)."""
    verdict = ds.contractivity.item()
    bound = f", ≤ {float(ds.lipschitz_upper):.3g}" if bool(ds.has_upper_bound) else ""
    out = [Verdict("entropy", _WORDS.get(verdict, verdict),
                   f"L_f ≥ {float(ds.lipschitz_lower):.3g}{bound}; {ds.attrs.get('contractivity_reason', '')}",
                   "attractors paper §3.2 (Def. 1)")]
    rate = float(ds.rate.mean())
    change = "gains" if rate > 0 else "loses"
    out.append(Verdict("entropy", f"the state ensemble {change} {abs(rate):.3g} nats/step",
                       f"E[log|det J|] within the eq. 4 brackets [{float(ds.rate_lower.mean()):+.3g}, "
                       f"{float(ds.rate_upper.mean()):+.3g}] nats/step"
                       + ("" if bool(ds.invertible) else "; the step is not invertible at some visited state"),
                       "attractors paper §3.1 (eq. 4)"))
    return out


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="entropy",
            run=entropy,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="attractors paper §3.1-3.2 (eq. 4, Def. 1), supplement B",
            ensemble="none",
            dims=("step", "sample", "time"),
        )
    ]
