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
    """Defaults scaled to the state size N (a full Jacobian per visited state costs ~N forward
    passes plus an O(N³) factorization)."""
    n = system.state_dim
    if n <= 64:
        return {"samples": 128, "steps": 20}
    if n <= 256:
        return {"samples": 32, "steps": 10, "power_iters": 20}
    return {"samples": 8, "steps": 4, "power_iters": 10}


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Mean entropy rate with its brackets, Lipschitz bounds and the verdict."""
    rows = [
        ("entropy rate (mean over steps)", f"{float(ds.rate.mean()):+.4g} nats/step"),
        ("eq. 4 brackets (mean over steps)", f"[{float(ds.rate_lower.mean()):+.4g}, {float(ds.rate_upper.mean()):+.4g}] "
                                             "nats/step"),
        ("H_T - H_0", f"{float(ds.entropy_change[-1]):+.4g} nats after {ds.sizes['time']} steps"),
        ("Lipschitz constant L_f", f">= {float(ds.lipschitz_lower):.4g}"
         + (f", <= {float(ds.lipschitz_upper):.4g} ({ds.attrs.get('lipschitz_upper_norm', '')})"
            if bool(ds.has_upper_bound) else "")),
        ("co-Lipschitz (min sigma_min visited)", f"{float(ds.co_lipschitz):.4g}"),
        ("invertible at visited states", "yes" if bool(ds.invertible) else "no (det J = 0 somewhere)"),
        ("contractivity (Def. 1)", f"{ds.contractivity.item()}: {ds.attrs.get('contractivity_reason', '')}"),
    ]
    if "knn_change" in ds:
        rows.append(("k-NN estimate of H_T - H_0", f"{float(ds.knn_change[-1]):+.4g} nats"))
    return rows


def plot(ds: xr.Dataset) -> Any:
    """H_t − H_0 with the cumulative brackets of eq. 4 (and the k-NN estimate), and the
    per-step rate between N log σ_min and N log σ_max."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    t = np.concatenate([[0], ds.time.values])
    z = np.zeros(1)
    ax1.fill_between(t, np.concatenate([z, ds.change_lower.values]), np.concatenate([z, ds.change_upper.values]),
                     color="0.85", label="eq. 4 brackets (N log sigma_min, N log sigma_max)")
    ax1.plot(t, np.concatenate([z, ds.entropy_change.values]), "k-", lw=1.5, label="exact: sum E[log|det J|]")
    if "knn_change" in ds:
        ax1.plot(ds.knn_time.values, ds.knn_change.values, "o", color="C3", label="k-NN estimate")
    ax1.set(xlabel="step t", ylabel="H_t - H_0 (nats)", title="entropy change of the ensemble")
    ax1.legend(fontsize=8)
    ax2.plot(ds.time.values, ds.rate.values, "k.-", label="rate E[log|det J|]")
    ax2.plot(ds.time.values, ds.rate_lower.values, "--", color="C0", label="N log min sigma_min")
    ax2.plot(ds.time.values, ds.rate_upper.values, "--", color="C3", label="N log max sigma_max")
    ax2.axhline(0, color="0.5", lw=0.6)
    ax2.set(xlabel="step t", ylabel="nats/step",
            title=f"L_f >= {float(ds.lipschitz_lower):.3g}; {ds.contractivity.item()}")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
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
        )
    ]
