"""The ``period3`` result: what the three methods found, collected and laid out as a Dataset.

Orbits of all periods and networks share one flat ``orbit`` dimension (``orbit_period`` and,
for ensembles, ``orbit_network`` say whose they are), with ``phase`` padded to the largest
period (NaN beyond an orbit's period — ``orbit_period`` says why). Contract: docs/RESULTS.md.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System

from .certificate import Lemma42
from .newton import PeriodicOrbits
from .orbits1d import Orbits1D, sharkovsky_leader

__all__ = ["Found", "build_dataset", "GRAPH_POINTS"]

GRAPH_POINTS = 801
"""Points of the graphs of f and f³ stored for plots (single 1-D systems only)."""

_NOTE_ND = ("Li-Yorke's theorem (period 3 implies chaos) and Sharkovsky's order hold for maps of the line; "
            "in n-D a period-3 orbit is no chaos witness")


@dataclass
class Found:
    """Everything a run found, per period (rows of the count tables follow ``periods``)."""

    method: str
    periods: list[int]
    networks: int
    interval: tuple[float, float] | None
    tol: float
    orbits: list[tuple[int, Tensor, Tensor, Tensor, Tensor, Tensor]] = field(default_factory=list)
    counts: Tensor | None = None
    fixed: Tensor | None = None
    continuum: Tensor | None = None
    suspect: Tensor | None = None
    converged: Tensor | None = None
    collapsed: Tensor | None = None
    search: dict[int, PeriodicOrbits] = field(default_factory=dict)
    certificate: Lemma42 | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, method: str, periods: list[int], B: int, interval, tol: float) -> Found:
        zeros = torch.zeros(B, len(periods), dtype=torch.long)
        one_d = method != "newton"
        return cls(method, periods, B, interval, tol, counts=zeros.clone(),
                   fixed=zeros.clone() if one_d else None,
                   continuum=torch.zeros(B, dtype=torch.bool) if method == "exact" else None,
                   converged=None if one_d else zeros.clone(), collapsed=None if one_d else zeros.clone())

    def add_1d(self, p: int, x: Tensor, net: Tensor, orb: Orbits1D) -> None:
        """Roots ``x`` of fᵖ = id and the orbits of least period p among them."""
        i = self.periods.index(p)
        self.fixed[:, i] = torch.bincount(net, minlength=self.networks)
        self.counts[:, i] = torch.bincount(orb.net, minlength=self.networks)
        if self.interval is None:
            bad = orb.least_p_roots != p * self.counts[:, i]
            if bool(bad.any()):
                warnings.warn(
                    f"period3: {int(bad.sum())} network(s) have a number of period-{p} points that is not {p} x "
                    "their orbit count (roots closer than tol, or a tangency); their counts may be off",
                    RuntimeWarning, stacklevel=4,
                )
        mult = orb.multiplier.to(torch.complex128)[:, None]
        self.orbits.append((p, orb.points[..., None], orb.net, mult, orb.residual, mult.abs()[:, 0] < 1))

    def add_nd(self, orb: PeriodicOrbits) -> None:
        i = self.periods.index(orb.period)
        self.counts[:, i] = torch.bincount(orb.net, minlength=self.networks)
        self.converged[:, i] = orb.converged
        self.collapsed[:, i] = orb.collapsed
        self.search[orb.period] = orb
        self.orbits.append((orb.period, orb.states, orb.net, orb.multipliers, orb.residual, orb.stable))


def _var(dims: list[str], values: Any, long_name: str, units: str = "1", **extra: Any) -> tuple:
    return (dims, np.asarray(values), {"long_name": long_name, "units": units, **extra})


def _orbit_arrays(found: Found, n: int, ens: bool) -> dict[str, tuple]:
    pmax = max(found.periods)
    states, period, net, mre, mim, stable, res = [], [], [], [], [], [], []
    for p, st, nt, mu, r, s in found.orbits:
        pad = torch.full((st.shape[0], pmax, n), float("nan"), dtype=torch.float64)
        pad[:, :p] = st.to(torch.float64)
        states.append(pad)
        period.append(torch.full((st.shape[0],), p, dtype=torch.long))
        net.append(nt)
        mre.append(mu.real.to(torch.float64))
        mim.append(mu.imag.to(torch.float64))
        stable.append(s)
        res.append(r.to(torch.float64))
    cat = lambda xs: torch.cat(xs).numpy()  # noqa: E731
    out = {
        "orbit_state": _var(["orbit", "phase", "unit"], cat(states),
                            "state on the periodic orbit (phase 0: smallest first coordinate)"),
        "orbit_period": _var(["orbit"], cat(period), "least period of the orbit", "step"),
        "multiplier_real": _var(["orbit", "mode"], cat(mre),
                                "Floquet multiplier, real part (eigenvalue of the monodromy matrix)"),
        "multiplier_imag": _var(["orbit", "mode"], cat(mim), "Floquet multiplier, imaginary part"),
        "stable": _var(["orbit"], cat(stable), "orbit is attracting (all |multipliers| < 1)"),
        "residual": _var(["orbit"], cat(res), "max |f^p(x) - x| over the orbit (n-D: at phase 0, inf-norm)"),
    }
    if ens:
        out["orbit_network"] = _var(["orbit"], cat(net), "network the orbit belongs to")
    return out


def _coverage(found: Found, lead: list[str], pick: Any) -> dict[str, tuple]:
    """n-D: starts per orbit, starts tried, orbits added per round, Good–Turing unseen, complete —
    the history of the search (``scope = "search"``: an ensemble searches in shared rounds)."""
    runs = [found.search[p] for p in found.periods]
    R = max(r.new_per_round.shape[1] for r in runs)
    new = torch.full((found.networks, len(runs), R), -1, dtype=torch.long)
    for i, r in enumerate(runs):
        new[:, i, : r.new_per_round.shape[1]] = r.new_per_round
    stack = lambda f: torch.stack([f(r) for r in runs], dim=1)  # noqa: E731
    history = {"scope": "search"}
    return {
        "basin_starts": _var(["orbit"], torch.cat([r.basin for r in runs]).numpy(), "starts that converged to the orbit",
                             **history),
        "starts_used": _var([*lead, "period"], pick(stack(lambda r: r.starts)), "starts tried", **history),
        "new_orbits": _var([*lead, "period", "round"], pick(new), "orbits first found in the round (-1: round not run)",
                           **history),
        "unseen": _var([*lead, "period"], pick(stack(lambda r: r.unseen)),
                       "Good-Turing estimate of the chance that one more start finds a new orbit", **history),
        "complete": _var([*lead, "period"], pick(stack(lambda r: r.complete)),
                         "the last two rounds found nothing new and no orbit was reached by a single start", **history),
    }


def build_dataset(system: System, found: Found) -> xr.Dataset:
    """Lay out ``found`` as the ``period3`` Dataset (see docs/RESULTS.md)."""
    ens = system.networks is not None
    lead = ["network"] if ens else []
    pick = (lambda t: t.numpy()) if ens else (lambda t: t[0].numpy())
    n = system.state_dim
    data = _orbit_arrays(found, n, ens)
    data["orbits"] = _var([*lead, "period"], pick(found.counts), "number of distinct orbits of least period p found")
    data["has_period"] = _var([*lead, "period"], pick(found.counts > 0), "an orbit of least period p was found")
    one_d = found.method != "newton"
    if one_d:
        data["fixed_points"] = _var([*lead, "period"], pick(found.fixed), "number of points x with f^p(x) = x")
        i3 = found.periods.index(3)
        data["li_yorke"] = _var(lead, pick(found.counts[:, i3] > 0),
                                "period-3 orbit exists: Li-Yorke chaotic (witness)")
        data["sharkovsky_leader"] = _var(
            lead, pick(sharkovsky_leader(found.counts > 0, found.periods)),
            "found period first in Sharkovsky's order (0: none); it implies every later period", "step")
    if found.continuum is not None:
        data["continuum"] = _var(lead, pick(found.continuum), "f^p(x) = x on a whole interval (not isolated)")
    if found.suspect is not None:
        data["grid_suspect_cells"] = _var([*lead, "period"], pick(found.suspect),
                                          "grid cells where a pair of orbits could hide")
    if found.converged is not None:
        data["converged_starts"] = _var([*lead, "period"], pick(found.converged), "starts that converged", scope="search")
        data["collapsed_starts"] = _var([*lead, "period"], pick(found.collapsed),
                                        "converged starts whose least period is a proper divisor of p", scope="search")
        data.update(_coverage(found, lead, pick))
    if found.certificate is not None:
        c = found.certificate
        data["lemma42_certificate"] = _var(lead, pick(c.holds), "Lemma 4.2 certificate of period 3 holds")
        data["lemma42_i"] = _var(lead, pick(c.i), "Lemma 4.2 index i (y_i > 1), sorted-bias order, 1-based; 0: none")
        data["lemma42_l"] = _var(lead, pick(c.l),
                                 "Lemma 4.2 index l > i (y_l < 0), sorted-bias order, 1-based; 0: none")
    coords: dict[str, tuple] = {
        "period": ("period", np.asarray(found.periods), {"long_name": "period p", "units": "step"}),
        "phase": ("phase", np.arange(max(found.periods)), {"long_name": "position along the orbit", "units": "step"}),
        "unit": ("unit", np.arange(n), {"long_name": "state coordinate", "units": "1"}),
        "mode": ("mode", np.arange(1, n + 1), {"long_name": "Floquet multiplier index (1 = largest modulus)", "units": "1"}),
        "orbit": ("orbit", np.arange(data["orbit_period"][1].shape[0]), {"long_name": "orbit", "units": "1"}),
    }
    for key, values in system.layout.coords().items():
        coords[key] = ("unit", values, {"long_name": key.replace("_", " "), "units": "1"})
    if "new_orbits" in data:
        rounds = data["new_orbits"][1].shape[-1]
        coords["round"] = ("round", np.arange(1, rounds + 1), {"long_name": "search round", "units": "1"})
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    attrs = {
        "method": found.method,
        "periods": np.asarray(found.periods, dtype=np.int64),
        "tol": found.tol,
    }
    if one_d:
        attrs["interval"] = "whole real line" if found.interval is None else json.dumps(list(found.interval))
    attrs.update(found.attrs)
    if not one_d:
        attrs["li_yorke_note"] = _NOTE_ND
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if one_d and not ens:
        ds = ds.merge(_graphs(system, found, ds))
    return ds


def _graphs(system: System, found: Found, ds: xr.Dataset) -> xr.Dataset:
    """f and f³ on a window around the interval / the orbits, for the Fig. 7-style plot."""
    if found.interval is not None:
        lo, hi = found.interval
    else:
        pts = ds.orbit_state.values
        pts = pts[np.isfinite(pts)]
        lo, hi = (float(pts.min()), float(pts.max())) if pts.size else (-1.0, 1.0)
        pad = 0.15 * max(hi - lo, 1.0)
        lo, hi = lo - pad, hi + pad
    x = torch.linspace(lo, hi, GRAPH_POINTS, dtype=system.dtype)[:, None]
    with torch.no_grad():
        f1 = system.map(x)
        f3 = system.map(system.map(f1))
    return xr.Dataset(
        {
            "graph_f": (["graph"], f1[:, 0].double().numpy(), {"long_name": "f(x)", "units": "1",
                                                               "scope": "single network"}),
            "graph_f3": (["graph"], f3[:, 0].double().numpy(), {"long_name": "f^3(x)", "units": "1",
                                                                "scope": "single network"}),
        },
        coords={"graph": ("graph", x[:, 0].double().numpy(), {"long_name": "x", "units": "1"})},
    )
