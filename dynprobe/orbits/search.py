"""The orbit search: rounds of starts, each descended, refined, deduplicated, until a round
finds nothing new — the completeness check a user can read off the result.

Round r draws ``batch`` starts (:func:`dynprobe.orbits.starts.draw_starts`: visited states plus
noise, broad random states and, once orbits are known, points between them), runs the descent
on q and Levenberg–Marquardt (:mod:`dynprobe.orbits.solve`), keeps the solutions of least
period p, and merges them with what earlier rounds found (:func:`dynprobe.orbits.dedup.cluster`).
It stops when ``patience`` rounds in a row add no orbit in any network, or after ``rounds``
rounds. Two coverage statistics say how far to trust it: ``new_per_round`` (what
each round of fresh starts added) and the Good–Turing estimate ``unseen`` = (orbits reached by
exactly one start) / (starts that converged) of the probability that one more start lands on
an orbit not yet seen. A search is ``complete`` when its last ``patience`` rounds added nothing
and no orbit was reached only once (``unseen`` = 0) — evidence, not proof, that nothing is left; the search
stops there, or when its budget of ``rounds × batch`` starts is spent.

Starts whose refinement did not converge but came to rest — a local minimum of q, where the
normalised gradient ‖Aᵀ G‖/‖G‖ is below :data:`STATIONARY` — with a speed below ``slow``
times the spread are *slow points* (Sussillo & Barak 2013): places the dynamics crawls through,
reported apart from the fixed points with their own speed.

References
----------
Sussillo & Barak (2013), Neural Computation 25(3) (fixed and slow points by minimising q);
Golub & Sussillo (2018), JOSS 3(31): 1003 (FixedPointFinder, the batched recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..system import System
from .dedup import canonical_phase, cluster, least_period
from .maps import PeriodMap
from .solve import Refined, descend, refine
from .spectrum import Linearization, linearize
from .starts import GIVEN, TRAJECTORY, Visited, draw_starts, visited_states

__all__ = ["OrbitSearch", "find_orbits", "STATIONARY", "FIXED", "SLOW"]

STATIONARY = 1e-3
"""Largest normalised gradient ‖Aᵀ G‖/‖G‖ at which an unconverged start counts as resting."""
FIXED, SLOW = 0, 1
DESCEND = (TRAJECTORY, GIVEN)
"""Start sources that descend on q before Levenberg–Marquardt; broad random starts and starts
between known orbits go to Levenberg–Marquardt directly (a second, differently shaped set of
basins: Newton's basins are not those of the descent)."""


@dataclass(frozen=True)
class OrbitSearch:
    """What :func:`find_orbits` found, flat over (network, orbit), sorted by network, kind
    (orbits first, then slow points), unstable dimension, then first coordinate.

    Per orbit (``[K, ...]``): ``states [K, p, N]`` (phase 0 = smallest first coordinate),
    ``net``, ``kind`` (:data:`FIXED` or :data:`SLOW`), ``speed`` (‖Fᵖ(h) − h‖₂ at phase 0),
    ``error`` (estimated distance to the exact orbit, see :class:`dynprobe.orbits.solve.Refined`),
    ``linear`` (spectrum of ∂Fᵖ/∂h), ``start`` (number of the first start that reached it,
    counted over rounds), ``source`` (that start's source code, see
    :data:`dynprobe.orbits.starts.SOURCES`), ``round`` and ``basin`` (starts that ended on it).
    Per network (``[B]``): ``starts`` used, ``converged`` (to an orbit of least period p),
    ``collapsed`` (to a proper divisor of p), ``new_per_round [B, R]``, ``unseen`` (Good–Turing
    estimate of the chance that one more start finds a new orbit), ``complete`` (the last
    ``patience`` rounds added nothing and ``unseen`` = 0), ``spread`` and the deduplication tolerance ``dedup_tol``.
    """

    period: int
    states: Tensor
    net: Tensor
    kind: Tensor
    speed: Tensor
    error: Tensor
    linear: Linearization
    start: Tensor
    source: Tensor
    round: Tensor
    basin: Tensor
    starts: Tensor
    converged: Tensor
    collapsed: Tensor
    new_per_round: Tensor
    unseen: Tensor
    complete: Tensor
    spread: Tensor
    dedup_tol: Tensor


_FIELDS = ("pts", "speed", "error", "start", "source", "round", "basin")
_LINEAR = ("eigenvalues", "stable", "unstable", "marginal", "timescale")


def _compact(store: dict[str, Tensor], valid: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Move the valid columns of ``[B, K, ...]`` arrays to the front and drop the empty tail."""
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    width = int(valid.sum(1).max()) if valid.numel() else 0
    order = order[:, :width]
    out = {}
    for key, arr in store.items():
        idx = order.reshape(*order.shape, *([1] * (arr.ndim - 2))).expand(*order.shape, *arr.shape[2:])
        out[key] = torch.gather(arr, 1, idx)
    return out, torch.gather(valid, 1, order)


class _Found:
    """Orbits found so far, per network, as padded ``[B, K, ...]`` arrays."""

    def __init__(self, B: int, p: int, n: int, like: Tensor) -> None:
        self.store = {"pts": like.new_zeros(B, 0, p, n), "speed": like.new_zeros(B, 0), "error": like.new_zeros(B, 0),
                      **{k: torch.zeros(B, 0, dtype=torch.long) for k in ("start", "source", "round", "basin")}}
        self.valid = torch.zeros(B, 0, dtype=torch.bool)

    def singletons(self) -> Tensor:
        """``[B]``: orbits reached by exactly one start."""
        return ((self.store["basin"] == 1) & self.valid).sum(1)

    def points(self) -> list[Tensor]:
        """Every point of every orbit found, one ``[K_b·p, N]`` tensor per network."""
        pts = self.store["pts"]
        return [pts[b, self.valid[b]].reshape(-1, pts.shape[-1]) for b in range(self.valid.shape[0])]

    def merge(self, pts: Tensor, ok: Tensor, speed: Tensor, error: Tensor, start: Tensor, source: Tensor, r: int,
              tol: Tensor) -> Tensor:
        """Add solutions ``pts [B, S, p, N]`` where ``ok``; return the number of new orbits per network."""
        B, S = ok.shape
        K = self.valid.shape[1]
        all_pts = torch.cat([self.store["pts"], pts], dim=1)
        valid = torch.cat([self.valid, ok], dim=1)
        error = torch.cat([self.store["error"], torch.where(ok, error, torch.zeros_like(error))], dim=1)
        label, first = cluster(all_pts, valid, tol, radius=error)
        new = first[:, K:] & ok
        hits = torch.zeros(B, K + S, dtype=torch.long)
        hits.scatter_add_(1, label.clamp(min=0), torch.cat([torch.zeros(B, K, dtype=torch.long), ok.long()], dim=1))
        self.store = {
            "pts": all_pts,
            "speed": torch.cat([self.store["speed"], speed], dim=1),
            "error": error,
            "start": torch.cat([self.store["start"], start.expand(B, S)], dim=1),
            "source": torch.cat([self.store["source"], source.expand(B, S)], dim=1),
            "round": torch.cat([self.store["round"], torch.full((B, S), r, dtype=torch.long)], dim=1),
            "basin": torch.cat([self.store["basin"], torch.zeros(B, S, dtype=torch.long)], dim=1) + hits,
        }
        self.store, self.valid = _compact(self.store, torch.cat([self.valid, new], dim=1))
        return new.sum(1)


def find_orbits(
    system: System,
    period: int = 1,
    *,
    visited: Visited | None = None,
    batch: int = 128,
    rounds: int = 8,
    patience: int = 2,
    given: Tensor | None = None,
    seed: int = 0,
    tol: float = 1e-10,
    dedup: float = 1e-6,
    noise: float = 0.5,
    descent_iters: int = 100,
    max_iter: int = 50,
    slow: float = 1e-2,
    solver: str = "auto",
) -> OrbitSearch:
    """Fixed points (``period=1``) or periodic orbits of least period p of ``system``'s map.

    Parameters
    ----------
    system
        A System with a time-invariant drive (see :func:`dynprobe.orbits.maps.search_system`),
        an ensemble searched in one batch; use float64 for residuals of 1e-10.
    period
        p ≥ 1.
    visited
        The visited states that seed the starts (default :func:`visited_states` of ``system``).
    batch, rounds, patience
        Starts per round, the most rounds, and how many rounds in a row must add nothing (with
        no orbit reached only once) before the search stops.
    given
        Extra starts ``[*lead, G, N]`` for the first round (e.g. orbit points other probes found).
    seed
        Seeds every round's starts.
    tol
        Converged where ‖Fᵖ(h) − h‖₂ ≤ tol·(1 + ‖h‖∞).
    dedup
        Two orbit points closer than ``dedup`` × spread are one (floored at 1e3·tol).
    noise
        Standard deviation of the noise on visited-state starts, in units of the spread.
    descent_iters, max_iter
        Adam iterations on q; Levenberg–Marquardt iterations.
    slow
        Largest speed ‖Fᵖ(h) − h‖ of a slow point, in units of the spread (0: none kept).
    solver
        Levenberg–Marquardt steps from the dense N×N monodromy (``"dense"``), matrix-free in a
        Krylov subspace (``"krylov"``), or ``"auto"`` (Krylov from N =
        :data:`dynprobe.orbits.solve.KRYLOV_MIN`); see :func:`dynprobe.orbits.solve.refine`.

    Returns
    -------
    OrbitSearch

    References
    ----------
    Sussillo & Barak (2013); Golub & Sussillo (2018).
    """
    p = int(period)
    pmap = PeriodMap(system, p)
    visited = visited_states(system, seed=seed) if visited is None else visited
    B, n = visited.mean.shape
    spread = visited.spread
    dtol = torch.maximum(dedup * spread, 1e3 * tol * (1 + visited.mean.abs().amax(-1)))
    fixed, resting, lower = (_Found(B, p, n, visited.mean) for _ in range(3))
    counts = {k: torch.zeros(B, dtype=torch.long) for k in ("starts", "converged", "collapsed")}
    new_per_round: list[Tensor] = []
    offset = 0
    for r in range(max(int(rounds), 1)):
        pool = [torch.cat(pair) for pair in zip(fixed.points(), lower.points())]  # orbits of any divisor of p
        h0, source = draw_starts(visited, int(batch), seed=seed + 7919 * r, noise=noise, found=pool)
        if r == 0 and given is not None:
            extra = given.to(h0).reshape(B, -1, n) if system.networks is None else given.to(h0)
            h0 = torch.cat([h0, extra], dim=1)
            source = torch.cat([source, torch.full((extra.shape[1],), GIVEN)])
        S = h0.shape[1]
        start = torch.arange(offset, offset + S)
        offset += S
        ref, least = _solve(pmap, h0, source, spread, dtol, descent_iters=descent_iters, max_iter=max_iter, tol=tol,
                            solver=solver)
        ok = ref.converged & (least == p)
        counts["starts"] += S
        counts["converged"] += ok.sum(1)
        counts["collapsed"] += (ref.converged & (least < p)).sum(1)
        pts = pmap.points(ref.h)
        new_per_round.append(fixed.merge(pts, ok, ref.speed, ref.error, start, source, r, dtol))
        if p > 1:
            lower.merge(pts, ref.converged & (least < p), ref.speed, ref.error, start, source, r, dtol)
        if slow > 0:
            rest = (~ref.converged & (ref.stationary <= STATIONARY) & (ref.speed <= slow * spread[:, None]))
            resting.merge(pts, rest, ref.speed, torch.zeros_like(ref.speed), start, source, r,
                          torch.maximum(dtol, 1e-3 * spread))
        quiet = len(new_per_round) >= patience and not any(bool(x.any()) for x in new_per_round[-patience:])
        if quiet and not bool(fixed.singletons().any()):
            break
    unseen = fixed.singletons().to(torch.float64) / counts["converged"].clamp(min=1).to(torch.float64)
    new = torch.stack(new_per_round, dim=1)
    complete = (new[:, -patience:] == 0).all(1) & (unseen == 0) & (new.shape[1] >= patience)
    return _assemble(pmap, fixed, resting, counts, new, unseen, complete, spread, dtol)


def _solve(pmap: PeriodMap, h0: Tensor, source: Tensor, spread: Tensor, dtol: Tensor, *, descent_iters: int,
           max_iter: int, tol: float, solver: str = "auto") -> tuple[Refined, Tensor]:
    """One round's starts ``[B, S, N]``: the :data:`DESCEND` sources descend on q first (Sussillo
    & Barak), then every start is refined; returns the refinement and each solution's least period."""
    h1 = h0.clone()
    down = torch.isin(source, torch.tensor(DESCEND))
    if descent_iters > 0 and bool(down.any()):
        h1[:, down] = descend(pmap, h0[:, down], scale=spread, iters=descent_iters).h
    ref = refine(pmap, h1, max_iter=max_iter, tol=tol, solver=solver)
    return ref, least_period(pmap, ref.h, dtol[:, None].expand(*ref.speed.shape))


def _assemble(pmap: PeriodMap, fixed: _Found, resting: _Found, counts: dict[str, Tensor], new: Tensor,
              unseen: Tensor, complete: Tensor, spread: Tensor, dtol: Tensor) -> OrbitSearch:
    parts = []
    for kind, found in ((0, fixed), (1, resting)):
        net, col = found.valid.nonzero(as_tuple=True)
        s = {k: v[net, col] for k, v in found.store.items()}
        parts.append((kind, net, s))
    net = torch.cat([q[1] for q in parts])
    kind = torch.cat([torch.full_like(q[1], q[0]) for q in parts])
    s = {k: torch.cat([q[2][k] for q in parts]) for k in _FIELDS}
    orbit = canonical_phase(s["pts"])
    lin = _linear_flat(pmap, orbit[:, 0], s["error"], net, spread.shape[0])
    order = torch.argsort(orbit[:, 0, 0], stable=True) if orbit.shape[0] else torch.zeros(0, dtype=torch.long)
    for key in (lin.unstable, kind, net):  # the last key sorts first
        order = order[torch.argsort(key[order], stable=True)]
    pick = lambda t: t[order]  # noqa: E731
    return OrbitSearch(
        period=pmap.period, states=pick(orbit), net=pick(net), kind=pick(kind), speed=pick(s["speed"]), error=pick(s["error"]),
        linear=Linearization(*(pick(getattr(lin, f)) for f in _LINEAR)),
        start=pick(s["start"]), source=pick(s["source"]), round=pick(s["round"]), basin=pick(s["basin"]),
        starts=counts["starts"], converged=counts["converged"], collapsed=counts["collapsed"],
        new_per_round=new, unseen=unseen, complete=complete, spread=spread, dedup_tol=dtol,
    )


def _linear_flat(pmap: PeriodMap, h: Tensor, error: Tensor, net: Tensor, B: int) -> Linearization:
    """:func:`linearize` for flat points ``h [K, N]`` of networks ``net [K]`` (padded per network)."""
    K, n = h.shape
    if K == 0:  # nothing found: no spectrum to compute (an N×N eigenproblem of a dummy row at large N)
        lam = torch.zeros(0, n, dtype=torch.complex128 if h.dtype == torch.float64 else torch.complex64, device=h.device)
        none = torch.zeros(0, dtype=torch.long, device=h.device)
        return Linearization(eigenvalues=lam, stable=none.bool(), unstable=none, marginal=none.clone(),
                             timescale=torch.zeros(0, n, dtype=torch.float64, device=h.device))
    counts = torch.bincount(net, minlength=B)
    width = max(int(counts.max()) if K else 0, 1)
    col = torch.arange(K) - (torch.cumsum(counts, 0) - counts)[net]
    rows = (h[:1] if K else h.new_zeros(1, n)).expand(B, width, n).clone()
    rows[net, col] = h
    err = error.new_zeros(B, width)
    err[net, col] = error
    lin = linearize(pmap, rows, err)
    return Linearization(*(getattr(lin, f)[net, col] for f in _LINEAR))
