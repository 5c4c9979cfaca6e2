"""Periodic orbits of any period of an n-D map, by the core orbit search on Fᵖ(h) − h.

:func:`find_periodic_orbits` is a thin layer over :func:`dynprobe.orbits.find_orbits`: rounds
of starts (visited states plus noise — descended on q first —, broad random states, points
between the orbits found, orbits of the divisors of p), Levenberg–Marquardt on Fᵖ(h) − h in
float64, least periods, deduplication up to cyclic shift within a tolerance scaled to the
visited states' spread, and Floquet multipliers (eigenvalues of the monodromy matrix ∏J along
the orbit; stable when all have modulus < 1). Rounds continue until ``patience`` rounds in a
row find nothing new, so how many starts converged, to what, and whether the last rounds still
found orbits are part of the answer. Works for any System with a time-invariant closed-loop map
— an LSTM's full (h, c) state included — and for ensembles (leading ``network`` axis), batched.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) §3 (Def. 3.1, periodic
points); attractors paper §3.3 (attractors of trained RNNs); Sussillo & Barak (2013) for the
search by minimising q; Floquet theory of maps: Strogatz, *Nonlinear Dynamics and Chaos*, §10.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.orbits import Visited, find_orbits, search_system

__all__ = ["PeriodicOrbits", "find_periodic_orbits", "default_tol"]


@dataclass(frozen=True)
class PeriodicOrbits:
    """Distinct orbits of least period ``period``: ``states[o, phase, unit]`` (phase 0 = the
    point with the smallest first coordinate), ``net[o]``, Floquet ``multipliers[o, i]``
    (complex, by decreasing modulus), ``residual[o]`` (‖Fᵖ(h) − h‖₂ at phase 0, float64),
    ``stable[o]``, ``basin[o]`` (starts that converged to it); per network the ``starts``
    tried, how many ``converged`` to an orbit of least period p and how many to an orbit of a
    proper divisor (``collapsed``), the orbits each round added (``new_per_round [B, R]``), the
    Good–Turing estimate ``unseen`` and ``complete`` (see :mod:`dynprobe.orbits.search`)."""

    period: int
    states: Tensor
    net: Tensor
    multipliers: Tensor
    residual: Tensor
    stable: Tensor
    basin: Tensor
    starts: Tensor
    converged: Tensor
    collapsed: Tensor
    new_per_round: Tensor
    unseen: Tensor
    complete: Tensor


def default_tol(dtype: torch.dtype) -> float:
    """Residual tolerance ‖Fᵖ(h) − h‖₂ / (1 + ‖h‖∞): the search runs in float64 whatever the
    System's dtype (the float64 map of the same weights), so 1e-10 for every dtype."""
    del dtype
    return 1e-10


def find_periodic_orbits(
    system: System,
    period: int,
    starts: Tensor | int = 128,
    *,
    rounds: int = 8,
    patience: int = 2,
    max_iter: int = 50,
    tol: float | None = None,
    dedup: float = 1e-6,
    seed: int = 0,
    solver: str = "auto",
    descent_iters: int = 100,
    visited: Visited | None = None,
) -> PeriodicOrbits:
    """Orbits of least period ``period`` of ``system``'s closed-loop map (time-invariant drive).

    Parameters
    ----------
    system
        Any System with an autonomous, constant or feedback drive; ensembles are batched.
    period
        p ≥ 1.
    starts
        Starts per round (an int), or the starting states ``[*lead, S, N]`` themselves (then one
        round from exactly those).
    rounds, patience
        The most rounds, and the rounds in a row that must find nothing new before stopping.
    max_iter
        Levenberg–Marquardt iterations (each: p Jacobians and one trial step).
    tol
        Converged: ‖Fᵖ(h) − h‖₂ ≤ tol·(1 + ‖h‖∞) in float64; default :func:`default_tol`.
    dedup
        Two orbit points are the same when closer than ``dedup`` × the visited states' spread.
    seed
        Seeds the starting states.
    solver
        ``"dense"``, ``"krylov"`` or ``"auto"`` Levenberg–Marquardt steps
        (:func:`dynprobe.orbits.solve.refine`).
    descent_iters
        Adam iterations on q for the visited-state starts before Levenberg–Marquardt.
    visited
        The visited states that seed the starts (default: :func:`dynprobe.orbits.visited_states`
        of the float64 System; pass them to share one set between periods).

    Returns
    -------
    PeriodicOrbits

    Example
    -------
    >>> orbits = find_periodic_orbits(henon, 2)
    >>> orbits.states[0]   # the period-2 orbit, 2 x 2
    """
    p = int(period)
    if p < 1:
        raise ProbeParameterError(f"find_periodic_orbits: period must be >= 1, got {period}")
    tol = default_tol(system.dtype) if tol is None else float(tol)
    target = search_system(system)
    given = None if isinstance(starts, int) else torch.as_tensor(starts)
    batch = int(starts) if isinstance(starts, int) else 0
    if given is None and batch < 1:
        raise ProbeParameterError(f"find_periodic_orbits: starts must be >= 1, got {starts}")
    found = find_orbits(target, p, batch=batch, rounds=rounds if given is None else 1,
                        patience=patience if given is None else 1, given=given, seed=seed, tol=tol, dedup=dedup,
                        max_iter=max_iter, slow=0.0, solver=solver,
                        descent_iters=descent_iters, visited=visited)
    order = torch.argsort(found.states[:, 0, 0], stable=True) if found.states.shape[0] else torch.zeros(0, dtype=torch.long)
    order = order[torch.argsort(found.net[order], stable=True)]
    return PeriodicOrbits(
        period=p, states=found.states[order], net=found.net[order], multipliers=found.linear.eigenvalues[order],
        residual=found.speed[order], stable=found.linear.stable[order], basin=found.basin[order],
        starts=found.starts, converged=found.converged, collapsed=found.collapsed,
        new_per_round=found.new_per_round, unseen=found.unseen, complete=found.complete,
    )
