"""Where an orbit search starts: states the network visits, broad random states, points between
orbits already found, and states the caller supplies.

Sussillo & Barak (2013) start from states sampled along the network's own trajectories, plus
noise: a descent on q from there reaches the saddles the trajectories pass near, not only the
attractors they end on. Trajectories of a multistable network settle within a few dozen steps,
so :func:`visited_states` keeps *every* state of many short runs from the System's initial-state
distribution (transients included) rather than one long settled run. Broad Gaussian starts,
centred on the visited states with 1.5× their spread per coordinate, reach points the
trajectories never approach (they may lie outside the [−1, 1] box of a tanh network);
convex combinations of found points with noise seed the search between known orbits, where
saddles of a multistable network sit (the index-1 saddle between two memories).

References
----------
Sussillo & Barak (2013), Neural Computation 25(3), §2 (starting points along trajectories);
Golub & Sussillo (2018), "FixedPointFinder", JOSS 3(31): 1003 (trajectory samples plus noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..system import System
from .maps import lead

__all__ = ["Visited", "visited_states", "draw_starts", "SOURCES", "TRAJECTORY", "RANDOM", "BETWEEN", "GIVEN"]

SOURCES = ("trajectory", "random", "between", "given")
"""Names of the start sources, indexed by the codes below."""
TRAJECTORY, RANDOM, BETWEEN, GIVEN = range(4)


@dataclass(frozen=True)
class Visited:
    """States visited by the System: ``traj [B, samples, steps + 1, N]`` (finite rows only are
    used), their per-network mean ``[B, N]``, per-coordinate std ``[B, N]`` and ``spread [B]``
    (root-mean-square std over coordinates — the length scale of tolerances and noise)."""

    traj: Tensor
    mean: Tensor
    std: Tensor
    spread: Tensor

    @property
    def states(self) -> Tensor:
        """Every visited state, ``[B, samples·(steps + 1), N]`` (non-finite ones replaced by the mean)."""
        B, n = self.traj.shape[0], self.traj.shape[-1]
        flat = self.traj.reshape(B, -1, n)
        return torch.where(torch.isfinite(flat).all(-1, keepdim=True), flat, self.mean[:, None])


def visited_states(system: System, *, samples: int = 128, steps: int = 32, seed: int = 0,
                   dtype: torch.dtype = torch.float64) -> Visited:
    """Run ``samples`` trajectories of ``steps`` steps from the System's initial states, with its
    own drive (a sequence drive's inputs included), and summarise what they visit.

    Returns
    -------
    Visited
        The trajectories ``[B, samples, steps + 1, N]`` and their statistics; the spread is
        floored at 1e-3·(1 + ‖mean‖∞) so that a network that collapses at once still gets a scale.
    """
    run = system.to(dtype=dtype)
    h0 = run.initial_state(samples, seed=seed)
    run.check_run(steps)
    traj = run.trajectory(h0, steps)  # [steps + 1, *lead, samples, N]
    traj = lead(run, traj.movedim(0, -2))  # [B, samples, steps + 1, N]
    B, n = traj.shape[0], traj.shape[-1]
    flat = traj.reshape(B, -1, n)
    ok = torch.isfinite(flat).all(-1) & (flat.abs().amax(-1) < 1e6)
    w = ok.to(dtype)[..., None]
    count = w.sum(1).clamp(min=1)
    mean = (torch.nan_to_num(flat) * w).sum(1) / count
    var = ((torch.nan_to_num(flat) - mean[:, None]) ** 2 * w).sum(1) / count
    std = var.sqrt()
    spread = var.mean(-1).sqrt()
    spread = torch.maximum(spread, 1e-3 * (1 + mean.abs().amax(-1)))
    traj = torch.where(ok.reshape(B, samples, steps + 1)[..., None], traj, torch.full_like(traj, float("nan")))
    return Visited(traj=traj, mean=mean, std=std, spread=spread)


def _between(found: list[Tensor], count: int, gen: torch.Generator, visited: Visited, noise: float) -> Tensor:
    """``[B, count, N]``: random convex combinations of found points of each network (a random
    subset of 2 … K of them, Dirichlet(1) weights: edges, faces and the middle of the set they
    span), plus noise; where a network has fewer than two points, broad random states instead."""
    B, n = visited.mean.shape
    out = _broad(visited, count, gen)
    for b, pts in enumerate(found):
        K = pts.shape[0]
        if K < 2:
            continue
        size = torch.randint(2, K + 1, (count, 1), generator=gen)
        keys = torch.rand(count, K, generator=gen)
        ranks = torch.argsort(torch.argsort(keys, dim=1), dim=1)  # a random permutation per start
        w = -torch.log(torch.rand(count, K, generator=gen, dtype=torch.float64)) * (ranks < size)
        w = w / w.sum(1, keepdim=True)
        z = torch.randn(count, n, generator=gen, dtype=torch.float64)
        spread = visited.spread[b].cpu().to(torch.float64)
        mix = w @ pts.cpu().to(torch.float64)
        out[b] = (mix + noise * 0.2 * spread * z).to(out)
    return out


def _broad(visited: Visited, count: int, gen: torch.Generator) -> Tensor:
    B, n = visited.mean.shape
    z = torch.randn(B, count, n, generator=gen, dtype=torch.float64).to(visited.mean)
    scale = torch.maximum(visited.std, 0.3 * visited.spread[:, None])
    return visited.mean[:, None] + 1.5 * scale[:, None] * z


def draw_starts(visited: Visited, count: int, *, seed: int, noise: float = 0.5,
                found: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """``count`` starts per network, ``([B, count, N], source [count])``.

    Without ``found`` points: half are visited states (drawn with replacement) plus
    N(0, (noise·spread)²) noise, half broad random states. With ``found`` (one ``[K_b, N]``
    tensor of points per network): a quarter of the budget goes to points between them
    (:func:`_between`), taken from the random half.
    """
    gen = torch.Generator().manual_seed(int(seed))
    B, n = visited.mean.shape
    states = visited.states
    n_traj = count // 2
    n_between = count // 4 if found is not None and any(f.shape[0] >= 2 for f in found) else 0
    n_random = count - n_traj - n_between
    idx = torch.randint(states.shape[1], (B, n_traj), generator=gen)
    z = torch.randn(B, n_traj, n, generator=gen, dtype=torch.float64).to(states)
    traj = torch.gather(states, 1, idx.to(states.device)[..., None].expand(B, n_traj, n))
    traj = traj + noise * visited.spread[:, None, None] * z
    parts = [traj, _broad(visited, n_random, gen)]
    codes = [torch.full((n_traj,), TRAJECTORY), torch.full((n_random,), RANDOM)]
    if n_between:
        parts.append(_between(found, n_between, gen, visited, noise))
        codes.append(torch.full((n_between,), BETWEEN))
    return torch.cat(parts, dim=1), torch.cat(codes)
