"""The ``linear_regions`` probe: exact numbers of linear pieces of fᵗ for 1-D ReLU maps.

The iterates f, f², …, f^T of a piecewise-linear feedforward map are built exactly
(:mod:`.pwl`; knots whose two sides have equal slopes are merged), and the pieces meeting an
interval are counted. Their growth rate, the least-squares slope of log(pieces) over the
second half of t, estimates the topological entropy (Misiurewicz–Szlenk: lap numbers grow like
e^{h t}); a map with a point of period 3 has h ≥ ln φ = 0.4812, φ the golden ratio (Cor. 4.4).

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §2 (Fig. 2), Cor. 4.4;
Chatziafratis et al. (2020b); Misiurewicz & Szlenk (1980).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError

from .feedforward import dense_map, feedforward_spec
from .pwl import RaggedMap, compose

__all__ = ["linear_regions", "count_pieces", "LN_PHI"]

LN_PHI = math.log((1 + math.sqrt(5)) / 2)
"""ln φ = 0.4812: the least topological entropy of an interval map with a point of period 3."""


def count_pieces(h: RaggedMap, interval: tuple[float, float] | None) -> torch.Tensor:
    """Linear pieces of every network's map meeting ``interval`` (the whole line if None)."""
    inside = torch.ones_like(h.x, dtype=torch.bool) if interval is None else (h.x > interval[0]) & (h.x < interval[1])
    trivial = h.slope_left() == h.s  # the one knot kept for a linear map
    return 1 + torch.bincount(h.net[inside & ~trivial], minlength=h.networks)


def linear_regions(
    system: System,
    *,
    steps: int = 12,
    interval: tuple[float, float] | None = None,
    max_knots: int = 5_000_000,
) -> xr.Dataset:
    """Exact counts of linear pieces of fᵗ, t = 1..``steps``, and their growth rate.

    Parameters
    ----------
    system
        A piecewise-linear 1-D feedforward System (``rn``, ``fig3`` or ``feedforward_system``);
        ensembles are counted in one batched pass.
    steps
        Largest t.
    interval
        Count pieces meeting this interval; default the model's ``arch.domain``, else the
        whole real line.
    max_knots
        Stop early (with a warning) once the iterates hold this many knots in all.

    Returns
    -------
    xarray.Dataset
        ``pieces[network?, horizon]`` and ``growth_rate[network?]`` (nats/step).

    References
    ----------
    Scrambling paper Fig. 2, Cor. 4.4.
    """
    if feedforward_spec(system) is None:
        raise ProbeParameterError(
            f"probe 'linear_regions': needs a piecewise-linear 1-D map built by feedforward_system "
            f"(ReLU/identity layers), got {system.name}"
        )
    if steps < 1:
        raise ProbeParameterError(f"probe 'linear_regions': steps must be >= 1, got {steps}")
    if interval is None and system.arch.domain is not None:
        interval = system.arch.domain
    if interval is not None and not float(interval[0]) < float(interval[1]):
        raise ProbeParameterError(f"probe 'linear_regions': interval={interval} must have a < b")
    span = None if interval is None else (float(interval[0]), float(interval[1]))
    f = dense_map(system)
    h = f.ragged()
    counts = [count_pieces(h, span)]
    for t in range(2, steps + 1):
        if h.x.shape[0] > max_knots:
            warnings.warn(f"linear_regions: stopped at t = {t - 1}: the iterates hold {h.x.shape[0]} knots "
                          f"(max_knots={max_knots})", RuntimeWarning, stacklevel=3)
            break
        h = compose(f, h)
        counts.append(count_pieces(h, span))
    pieces = torch.stack(counts, dim=1).numpy()  # [B, T]
    T = pieces.shape[1]
    t = np.arange(1, T + 1, dtype=np.float64)
    tail = slice(T // 2, T) if T >= 4 else slice(0, T)
    logs = np.log(pieces[:, tail].astype(np.float64))
    tt = t[tail] - t[tail].mean()
    rate = (logs - logs.mean(1, keepdims=True)) @ tt / max(float(tt @ tt), 1e-300) if T > 1 else np.zeros(len(pieces))
    ens = system.networks is not None
    lead = ["network"] if ens else []
    pick = (lambda a: a) if ens else (lambda a: a[0])
    coords = {"horizon": ("horizon", np.arange(1, T + 1), {"long_name": "iterate t of f^t", "units": "step"})}
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    return xr.Dataset(
        {
            "pieces": ([*lead, "horizon"], pick(pieces), {"long_name": "linear pieces of f^t", "units": "1"}),
            "growth_rate": (lead, pick(rate), {"long_name": "growth rate of log(pieces), second half of t",
                                               "units": "nats/step"}),
        },
        coords=coords,
        attrs={"interval": "whole real line" if span is None else str(list(span)), "ln_phi": LN_PHI},
    )
