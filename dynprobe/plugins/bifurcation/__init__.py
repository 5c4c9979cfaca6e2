"""Bundled plugin: the ``bifurcation`` probe (orbit diagrams along parameter paths), with its
plot, summary and size-scaled defaults.

Reference: attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.3, §4.1, §5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe, System, Verdict
from dynprobe.plotting import integer_ticks, lead_note, legend_outside, median_band, panel_axes, resolve_views

from .classify import REGIMES, classify, least_periods
from .orbit import make_projection, record_orbits
from .paths import BiasMean, InputLevel, NamedScalar, ParamPath, Scale, resolve_path
from .plot import plot, plot_2d, plot_orbit_diagram
from .probe import bifurcation
from .smoothness import lipschitz_estimates, smoothness
from .stacked import Checkpoints, Custom

__all__ = [
    "bifurcation",
    "smoothness",
    "lipschitz_estimates",
    "ParamPath",
    "Scale",
    "InputLevel",
    "BiasMean",
    "NamedScalar",
    "Custom",
    "Checkpoints",
    "resolve_path",
    "record_orbits",
    "make_projection",
    "classify",
    "least_periods",
    "REGIMES",
    "plot",
    "plot_orbit_diagram",
    "plot_2d",
    "suggest",
    "verdicts",
    "dynprobe_probes",
]

FLOP_BUDGET = 2e10
"""Rough floating-point budget of a suggested sweep (a few seconds on a 2-core CPU)."""
BYTE_BUDGET = 1.2e10
"""Parameter bytes a suggested sweep may read. With a few samples per value a step is bound by
reading every swept network's weights, not by its FLOPs: measured on one core, a step of an
(N = 1024, 0.8 M-parameter) LSTM costs ~1.3 ms per value at 4 samples, ~8x what its FLOPs
predict; the whole probe ~0.7 s per value."""


def suggest(system: System) -> dict[str, Any]:
    """Defaults scaled to the system: θ(s) = s·θ for s around 1, with as many values as a few
    seconds allow — at most what ``FLOP_BUDGET`` pays for (cost ∝ parameters × samples × steps;
    a tangent step counts three) and what ``BYTE_BUDGET`` pays for (every step reads each
    value's parameters once); at least 3 values, odd so that s = 1 is on the grid."""
    n_params = sum(int(v.numel()) for v in system.params.values()) or system.state_dim
    per_row = 2.0 * max(n_params, system.state_dim ** 2 // 4)
    samples = 8 if n_params <= 5000 else 4
    burn_in, steps = 100, 100
    work = samples * (burn_in + steps + 3 * steps)
    reads = system.dtype.itemsize * n_params * (burn_in + steps + 3 * steps)
    count = int(np.clip(min(FLOP_BUDGET / (per_row * work), BYTE_BUDGET / reads), 3, 201))
    count += (count + 1) % 2  # odd: s = 1 is on the grid
    return {"path": "scale", "values": f"0.5:1.5:{count}", "burn_in": burn_in, "steps": steps,
            "samples": samples, "verify": 0}


SMOOTHNESS_BYTE_BUDGET = 2e10
"""Parameter bytes a suggested smoothness scan may read (its batch-1 steps are bound by reading
the weights of every grid value: ~70 ms per value for a 0.8 M-parameter LSTM over 100 steps)."""


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Regime counts, period windows and the chaotic range of the sweep."""
    vals = ds.param.values
    regimes = ds.regime.values.astype(str)
    rows = [("swept", f"{ds.attrs.get('path', '')}: {vals.min():.4g} .. {vals.max():.4g} ({len(vals)} values)"),
            ("projection", str(ds.attrs.get("projection", "")))]
    for name in REGIMES:
        count = int((regimes == name).sum())
        if count:
            rows.append((name.replace("_", " "), f"{count} values"))
    chaotic = vals[regimes == "chaotic"]
    if chaotic.size:
        rows.append(("chaotic between", f"{chaotic.min():.4g} and {chaotic.max():.4g}"))
    periods = ds.period.values[regimes == "periodic"]
    if periods.size:
        found = ", ".join(str(p) for p in np.unique(periods)[:12])
        rows.append(("periods found", found))
    lam = ds.max_exponent.values
    if np.isfinite(lam).any():
        rows.append(("max exponent (largest over the sweep)", f"{np.nanmax(lam):+.4f} 1/step"))
    if bool(ds.diverged.any()):
        rows.append(("diverged trajectories", str(int(ds.diverged.sum()))))
    return rows


def smoothness_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Lipschitz estimates of V and ∇V per sequence length, and their growth."""
    rows = [(f"N = {int(n)}: L_V, L'_V", f"{float(ds.lipschitz_loss.sel(length=n)):.4g}, "
             f"{float(ds.lipschitz_grad.sel(length=n)):.4g}") for n in ds.length.values]
    rows.append(("growth of log L_V with N", f"{float(ds.growth_rate):+.4g} per step"))
    return rows


SMOOTHNESS_VIEWS = ("cost", "lipschitz")


def smoothness_plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                    view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Panels ``cost`` (V_N(s) for each N, Fig. 1b) and ``lipschitz`` (L_V, L'_V against N on a
    log axis, Thm 1). Convention: :meth:`dynprobe.accessor.DynprobeAccessor.plot`."""
    views = resolve_views("smoothness", SMOOTHNESS_VIEWS, view, ax)
    fig, axes = panel_axes("smoothness", views, ax, figsize, panel_size=(5.5, 4.0))
    note = lead_note(ds)
    if "cost" in axes:
        a = axes["cost"]
        for n in ds.length.values:
            mid, lo, hi = median_band(ds.loss.sel(length=n))
            line, = a.plot(ds.param.values, mid, **{"lw": 0.8, "label": f"$N = {int(n)}$", **kwargs})
            if lo is not None:
                a.fill_between(ds.param.values, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        label = str(ds.param.attrs.get("long_name", "param")).replace("theta(s) = s*theta", r"$\theta(s) = s\,\theta$")
        a.set(xlabel=label, ylabel=r"cost $V_N(\theta(s))$", title="cost along the path" + note)
        legend_outside(a)
    if "lipschitz" in axes:
        a = axes["lipschitz"]
        n = ds.length.values
        for key, style, label in (("lipschitz_loss", {"marker": "o"}, "$L_V$"),
                                  ("lipschitz_grad", {"marker": "s"}, r"$L'_V$ (gradient)"),
                                  ("lipschitz_ceiling", {"ls": ":", "color": "0.5"}, "grid ceiling for $L_V$")):
            mid, lo, hi = median_band(ds[key])
            line, = a.semilogy(n, mid, **{**style, "label": label, **kwargs})
            if lo is not None:
                a.fill_between(n, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        a.set(xlabel="sequence length $N$", ylabel="finite-difference estimate", title="Thm 1: smoothness vs $N$" + note)
        integer_ticks(a)
        legend_outside(a)
    return fig


_REF = "attractors paper §3.3 (attractors, Def. 2), §4.1 (Fig. 1)"


def verdicts(ds: xr.Dataset) -> list[Verdict]:
    """What the sweep says: the regime at the network itself (s = 1 on a scale path) and where
    along the path it is chaotic or multistable."""
    vals = ds.param.values.astype(np.float64)
    regimes = ds.regime.values.astype(str)
    path = str(ds.attrs.get("path", ""))
    out = []
    if path.startswith("scale") and vals.min() <= 1.0 <= vals.max():
        i = int(np.argmin(np.abs(vals - 1.0)))
        lam = float(ds.max_exponent.values[i])
        what = regimes[i].replace("_", " ")
        if regimes[i] == "periodic":
            what += f" (period {int(ds.period.values[i])})"
        out.append(Verdict("attractors", f"at θ itself: {what}",
                           f"s = {vals[i]:.3g}: λ_max = {lam:+.3g} /step, {int(ds.attractors.values[i])} attractor(s) "
                           f"from {ds.sizes['sample']} initial states", _REF))
    for name, label in (("chaotic", "chaotic"), ("multistable", "several attractors")):
        hit = vals[regimes == name]
        if hit.size:
            out.append(Verdict("attractors", f"{label} at {hit.size} of {vals.size} values along {path}",
                               f"between s = {hit.min():.3g} and {hit.max():.3g}", _REF))
    if not out:
        kinds = ", ".join(f"{r.replace('_', ' ')}: {int((regimes == r).sum())}" for r in REGIMES if (regimes == r).any())
        out.append(Verdict("attractors", "no chaos or multistability along the path", kinds, _REF))
    return out


def smoothness_suggest(system: System) -> dict[str, Any]:
    """θ(s) = s·θ around s = 1; fewer grid points for large networks (at most what
    ``SMOOTHNESS_BYTE_BUDGET`` pays for: each of the max(lengths) steps reads every grid value's
    parameters once); short lengths first so growth shows before the grid saturates. A coarser
    grid lowers ``lipschitz_ceiling``, and ``resolved`` says where an estimate reaches it."""
    n_params = sum(int(v.numel()) for v in system.params.values()) or system.state_dim
    lengths = (2, 5, 10, 20, 50, 100)
    if n_params <= 5000:
        count = 401
    else:
        count = int(np.clip(SMOOTHNESS_BYTE_BUDGET / (system.dtype.itemsize * n_params * max(lengths)), 11, 61))
        count += (count + 1) % 2  # odd: s = 1 (the targets' own parameters) is on the grid
    return {"values": f"0.5:1.5:{count}", "lengths": lengths}


def smoothness_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Thm 1's regime from how the Lipschitz estimate of the cost grows with N."""
    rate = float(ds.growth_rate)
    lv = ds.lipschitz_loss.values
    n = ds.length.values
    saturated = ~ds.resolved.values.astype(bool)
    evidence = f"L_V = {lv[0]:.3g} at N = {int(n[0])} → {lv[-1]:.3g} at N = {int(n[-1])} along {ds.attrs.get('path', '')}"
    if saturated.any():
        first = int(n[np.argmax(saturated)])
        evidence += f"; from N = {first} the cost varies on scales finer than the grid"
    if (np.isfinite(rate) and rate > 0.02) or saturated.any():
        growth = f"L_V grows ≈ e^({rate:.3g}·N)" if np.isfinite(rate) else "L_V reaches the grid's resolution"
        verdict = f"cost roughens with sequence length: {growth} (Thm 1, L_f > 1)"
    elif lv[-1] > 2 * lv[0]:
        verdict = "cost roughens slowly with sequence length (Thm 1, L_f ≈ 1)"
    else:
        verdict = "cost stays smooth as the sequence grows (Thm 1, L_f < 1)"
    return [Verdict("gradients", verdict, evidence, "attractors paper §4.2 (Thm 1), Fig. 1b")]


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="smoothness",
            run=smoothness,
            plot=smoothness_plot,
            suggest=smoothness_suggest,
            summary=smoothness_summary,
            verdicts=smoothness_verdicts,
            reference="attractors paper §4.1 (Fig. 1b), §4.2 (Thm 1)",
            ensemble="none",
            dims=("length", "param", "midpoint"),
        ),
        Probe(
            name="bifurcation",
            run=bifurcation,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="attractors paper §3.3, §4.1 (Fig. 1), §5 (Fig. 4, 7, 8)",
            ensemble="none",
            dims=("param", "sample", "time"),
        )
    ]
