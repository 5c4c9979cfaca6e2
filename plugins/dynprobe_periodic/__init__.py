"""Bundled plugin: periodic orbits and Li–Yorke chaos (``period3``), ``scrambling`` and
``linear_regions`` — the scrambling paper's measurements, for 1-D maps and beyond.

``find_periodic_orbits(system, p, starts)`` is the n-D orbit finder as a plain function (for
other probes, e.g. to verify periods seen in a bifurcation sweep).

Reference: scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §3–5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

import dynprobe
from dynprobe import Probe, System

from .feedforward import feedforward_spec
from .newton import PeriodicOrbits, find_periodic_orbits
from .orbits1d import implied_text
from .period3 import period3
from .plots import plot_linear_regions, plot_period3, plot_scrambling
from .regions import LN_PHI, linear_regions
from .scrambling import scrambling

__all__ = ["period3", "scrambling", "linear_regions", "find_periodic_orbits", "PeriodicOrbits", "dynprobe_probes"]


def applies(system: System) -> str | None:
    """Periodic orbits need a time-invariant map."""
    if system.drive.time_varying:
        return f"needs a time-invariant map (autonomous, constant or feedback drive), got {system.drive.describe()}"
    return None


def suggest(system: System) -> dict[str, Any]:
    """Exact for piecewise-linear 1-D maps; a grid over the visited range (±50 %) for other 1-D
    maps; Levenberg–Marquardt for periods 1–3 (1–2 beyond N = 256) with fewer starts as N grows."""
    n = system.state_dim
    if feedforward_spec(system) is not None:
        return {"period": 3, "method": "exact"}
    if n == 1:
        if system.meta.get("domain") is not None:
            return {"period": 3, "method": "grid", "grid": 20001}
        h = system.trajectory(system.initial_state(64, seed=0), 200)[100:]
        h = h[torch.isfinite(h)]
        lo, hi = (float(h.min()), float(h.max())) if h.numel() else (-1.0, 1.0)
        pad = 0.5 * max(hi - lo, 1e-3)
        return {"period": 3, "method": "grid", "interval": (lo - pad, hi + pad), "grid": 20001}
    return {"period": (1, 2, 3) if n <= 256 else (1, 2), "method": "newton",
            "starts": 64 if n <= 64 else (16 if n <= 256 else 8), "max_iter": 50 if n <= 64 else 25}


def summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Counts per period, stability, the Li–Yorke witness and what Sharkovsky implies."""
    rows = [("method", f"{ds.attrs['method']} ({ds.attrs['interval']})" if "interval" in ds.attrs else ds.attrs["method"])]
    if "network" in ds.dims:
        n = ds.sizes["network"]
        rows.append(("networks", str(n)))
        for p in ds.period.values:
            frac = float(ds.has_period.sel(period=p).mean())
            rows.append((f"period {p} found", f"{frac:.4f} of networks (± {np.sqrt(frac * (1 - frac) / n):.4f})"))
        if "li_yorke" in ds:
            rows.append(("Li-Yorke (period 3)", f"{float(ds.li_yorke.mean()):.4f} of networks"))
        if "lemma42_certificate" in ds:
            rows.append(("Lemma 4.2 certificate", f"{float(ds.lemma42_certificate.mean()):.4f} of networks"))
        return rows
    for p in ds.period.values:
        sel = ds.orbit_period.values == p
        rows.append((f"period {p}", f"{int(sel.sum())} orbit(s), {int(ds.stable.values[sel].sum())} stable"))
    if "li_yorke" in ds:
        rows.append(("Li-Yorke chaos", "yes: a period-3 orbit exists" if bool(ds.li_yorke) else "no period-3 orbit"))
        rows.append(("Sharkovsky", implied_text(int(ds.sharkovsky_leader))))
    elif "li_yorke_note" in ds.attrs:
        rows.append(("note", ds.attrs["li_yorke_note"]))
    return rows


def regions_applies(system: System) -> str | None:
    if feedforward_spec(system) is None:
        return "needs a piecewise-linear 1-D map (feedforward_system with ReLU/identity layers)"
    return None


def regions_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    rate = np.atleast_1d(ds.growth_rate.values)
    last = np.atleast_2d(ds.pieces.values)[:, -1]
    return [
        (f"pieces of f^{int(ds.time.values[-1])}", f"median {np.median(last):.0f}, max {last.max():.0f}"),
        ("growth rate (nats/step)", f"median {np.median(rate):.4f}; >= ln phi = {LN_PHI:.4f} in "
                                    f"{float((rate >= LN_PHI).mean()):.3f} of networks"),
    ]


def scrambling_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    return [
        ("scrambled pairs (proximal, not asymptotic)", f"{float(ds.scrambled.mean()):.3f}"),
        ("asymptotic pairs", f"{float(ds.asymptotic.mean()):.3f}"),
        ("separation rate (median)", f"{float(np.nanmedian(ds.separation_rate.values)):+.4f} 1/step"),
        ("largest Lyapunov exponent (median)", f"{float(np.nanmedian(ds.lyapunov_max.values)):+.4f} 1/step"),
    ]


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="period3",
            run=period3,
            plot=plot_period3,
            applies=applies,
            suggest=suggest,
            summary=summary,
            reference="scrambling paper Def. 3.1, Fact 1, Lemma 4.2, §5 (Li & Yorke 1975; Sharkovsky 1964)",
        ),
        Probe(
            name="scrambling",
            run=scrambling,
            plot=plot_scrambling,
            summary=scrambling_summary,
            reference="scrambling paper Def. 2.1-2.2, Fig. 1",
        ),
        Probe(
            name="linear_regions",
            run=linear_regions,
            plot=plot_linear_regions,
            applies=regions_applies,
            summary=regions_summary,
            reference="scrambling paper Fig. 2, Cor. 4.4",
        ),
    ]
