"""The ``scrambling`` probe: nearby trajectories that come close and separate again (Fig. 1).

Pairs of states x and x + δu (δ = 1e-7, u a random unit vector) are iterated side by side; the
distance dₜ = ‖fᵗ(x) − fᵗ(x + δu)‖ is recorded with its running tail infimum and supremum
inf_{s≥t} d_s and sup_{s≥t} d_s — the finite-time stand-ins for the lim inf and lim sup of
Def. 2.1. A pair is *proximal* (lim inf small), *asymptotic* (lim sup small) or scrambled
(proximal but not asymptotic), "small" meaning below ``close`` × the attractor's diameter over
the second half of the run. The initial separation rate (mean log growth of dₜ until it
saturates) is reported next to the largest Lyapunov exponent along the same trajectory
(tangent vector propagated with ``torch.func`` Jacobian–vector products).

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 2.1–2.2 and Fig. 1;
Li & Yorke (1975); Laurent & von Brecht (2016) for the 10⁻⁷ experiment.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TangentMap

__all__ = ["scrambling", "SATURATION"]

SATURATION = 0.1
"""The separation rate is measured until dₜ first exceeds SATURATION × the attractor diameter."""


def scrambling(
    system: System,
    *,
    steps: int = 300,
    samples: int = 32,
    delta: float = 1e-7,
    burn_in: int = 100,
    close: float = 1e-2,
    seed: int = 0,
) -> xr.Dataset:
    """Distances between trajectories started δ apart: scrambling evidence and separation rate.

    Parameters
    ----------
    system
        Any System with a time-invariant or given drive; ensembles add a ``network`` axis.
    steps
        Steps recorded after the burn-in.
    samples
        Pairs of trajectories (initial states from the System's ``init``).
    delta
        Initial distance of each pair.
    burn_in
        Steps run before the pair is split, so that x starts on the attractor.
    close
        A distance counts as small below ``close`` × the attractor diameter.
    seed
        Seeds the initial states and the perturbation directions.

    Returns
    -------
    xarray.Dataset
        ``distance[network?, sample, time]``, ``tail_inf`` / ``tail_sup`` (running inf / sup of
        the future), ``liminf`` / ``limsup`` (over the second half), ``proximal``,
        ``asymptotic``, ``scrambled``, ``separation_rate`` and ``lyapunov_max`` (1/step),
        ``diameter``, ``diverged``.

    References
    ----------
    Scrambling paper Def. 2.1–2.2, Fig. 1.
    """
    if steps < 4 or samples < 1 or burn_in < 0 or not delta > 0 or not close > 0:
        raise ProbeParameterError(
            f"probe 'scrambling': need steps >= 4, samples >= 1, burn_in >= 0, delta > 0, close > 0 "
            f"(got {steps}, {samples}, {burn_in}, {delta}, {close})"
        )
    system.check_run(burn_in + steps)
    x = system.advance(system.initial_state(samples, seed=seed), burn_in)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    # the same perturbation directions for every network of an ensemble (common random numbers)
    u = torch.randn(samples, system.state_dim, generator=gen, dtype=torch.float64).to(x).expand_as(x)
    u = u / u.norm(dim=-1, keepdim=True)
    y = x + delta * u
    v = u[..., None]
    tangent = TangentMap(system, expected_calls=steps)
    dist, log_growth = [], torch.zeros(x.shape[:-1], dtype=torch.float64)
    states = []
    for t in range(burn_in, burn_in + steps + 1):
        dist.append((x - y).norm(dim=-1))
        states.append(x)
        if t == burn_in + steps:
            break
        with torch.no_grad():
            y = system.map(y, t)
            x_next, v = tangent(x, v, t)
        norm = v.norm(dim=-2, keepdim=True)
        log_growth += torch.log(norm[..., 0, 0]).double()  # -inf once a flat piece kills the tangent
        v = v / torch.where(norm > 0, norm, torch.ones_like(norm))
        x = x_next.detach()
    d = torch.stack(dist, dim=-1).double().cpu().numpy()  # [*lead, sample, time]
    traj = torch.stack(states, dim=-2).double().cpu().numpy()  # [*lead, sample, time, N]
    return _dataset(system, d, traj, log_growth.cpu().numpy() / steps, steps=steps, delta=delta, close=close,
                    burn_in=burn_in, mode=tangent.mode)


def _dataset(system: System, d: np.ndarray, traj: np.ndarray, lam: np.ndarray, *, steps: int, delta: float,
             close: float, burn_in: int, mode: str) -> xr.Dataset:
    ens = system.networks is not None
    lead = ["network"] if ens else []
    diverged = ~np.isfinite(d).all(-1) | ~np.isfinite(traj).all((-1, -2))
    if diverged.any():
        warnings.warn(f"scrambling: {int(diverged.sum())} of {diverged.size} pairs diverged (non-finite state); "
                      "their statistics are NaN and flagged in 'diverged'", RuntimeWarning, stacklevel=3)
    half = steps // 2
    tail = np.where(diverged[..., None, None], np.nan, traj[..., half:, :])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        span = np.nanmax(tail, axis=(-3, -2)) - np.nanmin(tail, axis=(-3, -2))  # [*lead, N]
    diameter = np.nan_to_num(np.sqrt((span**2).sum(-1)), nan=0.0)  # [*lead]
    ds_ = np.where(diverged[..., None], np.nan, d)
    tail_inf = np.flip(np.minimum.accumulate(np.flip(ds_, -1), axis=-1), -1)
    tail_sup = np.flip(np.maximum.accumulate(np.flip(ds_, -1), axis=-1), -1)
    liminf, limsup = tail_inf[..., half], tail_sup[..., half]
    # a collapsed attractor (a stable fixed point) has diameter 0: never call pairs closer than δ "apart"
    small = np.maximum(close * diameter[..., None], delta)
    proximal = liminf <= small
    asymptotic = limsup <= small
    # mean exponential growth of d until it first exceeds SATURATION x diameter
    sat = ds_ > SATURATION * diameter[..., None, None]
    t_sat = np.where(sat.any(-1), sat.argmax(-1), steps)
    t_sat = np.maximum(t_sat, 1)
    d_sat = np.take_along_axis(ds_, t_sat[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (np.log(d_sat) - math.log(delta)) / t_sat
    rate = np.where(diverged, np.nan, rate)
    lam = np.where(diverged, np.nan, lam)
    per_pair = [*lead, "sample"]
    coords = {
        "sample": ("sample", np.arange(d.shape[-2]), {"long_name": "pair of nearby trajectories", "units": "1"}),
        "time": ("time", np.arange(steps + 1), {"long_name": "steps after the split", "units": "step"}),
    }
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    var = lambda dims, v, name, units="1": (dims, v, {"long_name": name, "units": units})  # noqa: E731
    return xr.Dataset(
        {
            "distance": var([*per_pair, "time"], ds_, "distance |f^t(x) - f^t(x + delta u)|"),
            "tail_inf": var([*per_pair, "time"], tail_inf, "inf of the distance from t on (running lim inf)"),
            "tail_sup": var([*per_pair, "time"], tail_sup, "sup of the distance from t on (running lim sup)"),
            "liminf": var(per_pair, liminf, "inf of the distance over the second half"),
            "limsup": var(per_pair, limsup, "sup of the distance over the second half"),
            "proximal": var(per_pair, proximal & ~diverged, "came within close x diameter in the second half"),
            "asymptotic": var(per_pair, asymptotic & ~diverged, "stayed within close x diameter in the second half"),
            "scrambled": var(per_pair, proximal & ~asymptotic & ~diverged, "proximal but not asymptotic"),
            "separation_rate": var(per_pair, rate, "mean log growth of the distance until saturation", "1/step"),
            "lyapunov_max": var(per_pair, lam, "largest Lyapunov exponent along x (finite time)", "1/step"),
            "diameter": var(lead, diameter, "attractor diameter over the second half (all samples)"),
            "diverged": var(per_pair, diverged, "a trajectory became non-finite"),
        },
        coords=coords,
        attrs={"delta": float(delta), "burn_in": int(burn_in), "close": float(close), "saturation": SATURATION,
               "linearization": mode},
    )
