"""The ``period3`` probe: periodic orbits, the Li–Yorke witness, and Sharkovsky's implications.

Three methods, one result layout (:mod:`.dataset`):

* ``exact`` — 1-D piecewise-linear maps (ReLU networks 1 → k → … → 1, with or without
  clipping, built by ``feedforward_system``: the ``rn`` and ``fig3`` models): the linear pieces
  of f, f², …, fᵖ are enumerated from breakpoints (:mod:`.pwl`) and fᵖ(x) = x is solved on
  every piece, end rays included — all orbits on the whole real line (or in an interval).
* ``grid`` — any 1-D map on an interval: grid + bisection (:mod:`.grid`), with the grid step
  as stated resolution and a warning where orbits could hide between grid points.
* ``newton`` — any dimension: the core orbit search (:mod:`dynprobe.orbits`, via :mod:`.newton`):
  rounds of starts, descent on q and Levenberg–Marquardt in float64, deduplicated, with Floquet
  multipliers and coverage statistics; finds orbits, cannot prove there are no others.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 3.1, Fact 1, Lemma 4.2,
§5 and Fig. 3, 7; Li & Yorke (1975); Sharkovsky (1964).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.orbits import resolve_solver, search_system, visited_states

from .certificate import lemma42, rn_weights
from .dataset import Found, build_dataset
from .feedforward import dense_map, feedforward_spec
from .grid import grid_roots, system_evaluator
from .newton import default_tol, find_periodic_orbits
from .orbits1d import classify_roots
from .pwl import compose, fixed_points

__all__ = ["period3", "resolve_method", "periods_of", "one_d_interval"]

Method = Literal["auto", "exact", "grid", "newton"]

def periods_of(period: int | tuple[int, ...] | list[int], *, one_d: bool = True) -> list[int]:
    """The periods a run checks, sorted: exactly those asked for (``newton``), plus 1 and 3 for
    maps of the line (``exact`` / ``grid``), where the fixed points and the period-3 orbits are
    what the Li–Yorke witness and Sharkovsky's order are read from (and cost little)."""
    asked = [period] if isinstance(period, int) else list(period)
    if not asked or any(int(p) < 1 for p in asked):
        raise ProbeParameterError(f"probe 'period3': period must be an integer >= 1 or a list of them, got {period!r}")
    return sorted({*((1, 3) if one_d else ()), *(int(p) for p in asked)})

def resolve_method(system: System, method: str, interval: tuple[float, float] | None = None) -> str:
    """``exact`` for piecewise-linear 1-D feedforward maps, ``grid`` for other 1-D maps with an
    interval (given or the model's ``arch.domain``), ``newton`` otherwise (``method="auto"``);
    an explicit choice is checked."""
    pwl = feedforward_spec(system) is not None
    bounded = interval is not None or system.arch.domain is not None
    auto = "exact" if pwl else ("grid" if system.state_dim == 1 and bounded else "newton")
    if method == "auto":
        return auto
    if method not in ("exact", "grid", "newton"):
        raise ProbeParameterError(f"probe 'period3': method={method!r}; use auto, exact, grid or newton")
    if method == "exact" and not pwl:
        raise ProbeParameterError(
            f"probe 'period3': method='exact' needs a piecewise-linear 1-D map built by feedforward_system "
            f"(ReLU/identity layers), got {system.name}; use method='grid' (1-D) or 'newton'"
        )
    if method == "grid" and system.state_dim != 1:
        raise ProbeParameterError(
            f"probe 'period3': method='grid' needs a 1-D map, {system.name} has N={system.state_dim}; use 'newton'"
        )
    return method

def one_d_interval(system: System, interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """The interval for a 1-D run: the one given, else the model's ``arch.domain``, else None."""
    if interval is None:
        return system.arch.domain
    a, b = float(interval[0]), float(interval[1])
    if not a < b:
        raise ProbeParameterError(f"probe 'period3': interval=({a}, {b}) must have a < b")
    return a, b

def period3(
    system: System,
    *,
    period: int | tuple[int, ...] = (1, 3),
    method: Method = "auto",
    interval: tuple[float, float] | None = None,
    grid: int = 20001,
    starts: int = 128,
    rounds: int = 8,
    max_iter: int = 50,
    tol: float | None = None,
    seed: int = 0,
    solver: str = "auto",
    descent_iters: int = 100,
    samples: int = 128,
) -> xr.Dataset:
    """Periodic orbits of least period p (1, 3 and ``period``), Li–Yorke witness, Sharkovsky.

    Parameters
    ----------
    system
        A System with a time-invariant map; an ensemble is handled in one batched call.
    period
        The periods to look for (an int or a list). ``newton`` computes exactly these; for maps
        of the line 1 and 3 are always added (the Li–Yorke witness and Sharkovsky's order need them).
    method
        ``auto`` (``exact`` for piecewise-linear 1-D maps, ``grid`` for other 1-D maps on an
        interval, ``newton`` otherwise), or force one.
    interval
        1-D: restrict to orbits inside ``(a, b)`` (exact: the whole real line when None; grid:
        required unless the model declares a domain).
    grid
        Grid points of the ``grid`` method (resolution (b − a)/(grid − 1)).
    starts, rounds, max_iter
        ``newton``: starting states per round and network, the most rounds (the search stops
        once two rounds in a row find nothing new), and the Levenberg–Marquardt iteration cap.
    tol
        1-D: two orbit points closer than tol·(1 + |x|) count as one (default 1e-9; 1e-4 for
        the grid method in float32); ``newton``: residual tolerance ‖Fᵖ(h) − h‖₂ ≤ tol·(1 + ‖h‖∞),
        default 1e-10 (the n-D search runs in float64 whatever the System's dtype).
    seed
        Seeds the ``newton`` starting states.
    solver
        ``newton``: Levenberg–Marquardt steps from the dense N×N monodromy (``"dense"``),
        matrix-free in a Krylov subspace (``"krylov"``), or ``"auto"`` (Krylov from N = 128).
    descent_iters
        ``newton``: Adam iterations on q for the visited-state starts before Levenberg–Marquardt.
    samples
        ``newton``: trajectories (32 steps, from the System's initial states) whose visited
        states seed the starts of every period.

    Returns
    -------
    xarray.Dataset
        ``orbit_state[orbit, phase, unit]``, ``orbit_period[orbit]``, multipliers, ``stable``,
        ``residual``; ``orbits[network?, period]`` and ``has_period``; for 1-D maps also
        ``fixed_points[network?, period]`` (points with fᵖ(x) = x), ``li_yorke``,
        ``sharkovsky_leader``; see docs/RESULTS.md.

    References
    ----------
    Scrambling paper Def. 3.1, Fact 1, Lemma 4.2, §5; Li & Yorke (1975); Sharkovsky (1964).

    Example
    -------
    >>> ds = dynprobe.run("period3", dynprobe.model("rn", k=8, networks=10000))
    >>> float(ds.li_yorke.mean())
    """
    how = resolve_method(system, str(method), interval)
    periods = periods_of(period, one_d=how != "newton")
    if system.drive.time_varying:
        raise ProbeParameterError(
            f"probe 'period3': needs a time-invariant map, but {system.name} has drive {system.drive.describe()}; "
            "use an autonomous, constant or feedback drive"
        )
    if grid < 3 or starts < 1 or rounds < 1 or max_iter < 1 or descent_iters < 0 or samples < 1:
        raise ProbeParameterError(
            f"probe 'period3': need grid >= 3, starts >= 1, rounds >= 1, max_iter >= 1, descent_iters >= 0, "
            f"samples >= 1 (got {grid}, {starts}, {rounds}, {max_iter}, {descent_iters}, {samples})"
        )
    if how == "newton":
        found = _newton(system, periods, starts=starts, rounds=rounds, max_iter=max_iter, tol=tol, seed=seed,
                        solver=solver, descent_iters=descent_iters, samples=samples)
    else:
        # exact: the whole real line unless an interval is given; grid: the model's domain by default
        span = one_d_interval(system, interval) if how == "grid" or interval is not None else None
        if how == "grid" and span is None:
            raise ProbeParameterError(
                f"probe 'period3': the grid method needs a finite interval for {system.name}; pass interval=(a, b)"
            )
        if tol is None:  # exact works in float64 whatever the System's dtype
            tol = 1e-9 if how == "exact" or system.dtype == torch.float64 else 1e-4
        found = (_exact if how == "exact" else _grid)(system, periods, span, grid=grid, tol=float(tol))
    return build_dataset(system, found)

def _exact(system: System, periods: list[int], span, *, grid: int, tol: float) -> Found:
    f = dense_map(system)
    B = f.networks
    h = f.ragged()
    found = Found.empty("exact", periods, B, span, tol)
    for p in range(1, max(periods) + 1):
        if p > 1:
            h = compose(f, h)
        if p not in periods:
            continue
        x, net, continuum = fixed_points(h, span)
        found.continuum |= continuum
        found.add_1d(p, x, net, classify_roots(x, net, f, p, B, tol=tol, interval=span))
    cert = rn_weights(system)
    if cert is not None:
        found.certificate = lemma42(*cert)
    found.attrs["pieces_of_f"] = int(f.n.max()) + 1
    return found

def _grid(system: System, periods: list[int], span, *, grid: int, tol: float) -> Found:
    B = 1 if system.networks is None else system.networks
    f = system_evaluator(system)
    found = Found.empty("grid", periods, B, span, tol)
    found.suspect = torch.zeros(B, len(periods), dtype=torch.long)
    for i, p in enumerate(periods):
        roots = grid_roots(system, p, span, grid)
        found.suspect[:, i] = roots.suspect
        found.add_1d(p, roots.x, roots.net, classify_roots(roots.x, roots.net, f, p, B, tol=tol, interval=span))
        found.attrs["resolution"] = roots.step
    if bool((found.suspect > 0).any()):
        bad = int((found.suspect > 0).any(1).sum())
        warnings.warn(
            f"period3: on a grid of step {found.attrs['resolution']:.3g}, orbits could have been missed in "
            f"{int(found.suspect.sum())} cells of {bad} network(s) (see grid_suspect_cells); pass a larger grid=",
            RuntimeWarning, stacklevel=3,
        )
    return found

def _newton(system: System, periods: list[int], *, starts: int, rounds: int, max_iter: int, tol: float | None,
            seed: int, solver: str = "auto", descent_iters: int = 100, samples: int = 128) -> Found:
    B = 1 if system.networks is None else system.networks
    tol = default_tol(system.dtype) if tol is None else float(tol)
    found = Found.empty("newton", periods, B, None, tol)
    visited = visited_states(search_system(system), samples=samples, seed=seed)  # one set of seeds for every period
    for p in periods:
        found.add_nd(find_periodic_orbits(system, p, starts, rounds=rounds, max_iter=max_iter, tol=tol, seed=seed,
                                          solver=solver, descent_iters=descent_iters, visited=visited))
    found.attrs["search_dtype"] = "float64"
    found.attrs["solver"] = resolve_solver(solver, system.state_dim)
    found.attrs["descent_iters"] = int(descent_iters)
    found.attrs["samples"] = int(samples)
    return found
