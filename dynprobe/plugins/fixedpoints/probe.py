"""The ``fixedpoints`` probe: fixed and slow points of a network's map, with their linearizations.

For each held input (the System's own time-invariant drive, or each of ``inputs``): the
batched search of :func:`dynprobe.orbits.find_orbits` — rounds of starts (states the network
visits plus noise, broad random states, points between the ones found, and ``extra_starts``),
Adam on q(h) = ½‖F(h) − h‖², Levenberg–Marquardt to ‖F(h) − h‖ ≤ 1e-10 in float64, slow points
kept apart, duplicates merged within ``dedup`` × the visited states' spread — then at every
point the Jacobian's spectrum and the input Jacobian ∂F/∂u. Dataset layout: :mod:`.dataset`.

A sequence drive supplies the *starting states* (the driven trajectories, as FixedPointFinder
samples them) while the fixed points are those of the map with the input held at ``inputs``
(0 by default): the network's behaviour between input pulses.

References
----------
Sussillo & Barak (2013), "Opening the black box", Neural Computation 25(3), §2–3; Golub &
Sussillo (2018), FixedPointFinder, JOSS 3(31): 1003; attractors paper
(``attractors-and-smoothness-rnn-training.txt``) §2 (the induced dynamical system at a constant input).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System
from dynprobe.drives import SequenceDrive
from dynprobe.errors import ProbeParameterError
from dynprobe.orbits import OrbitSearch, find_orbits, input_jacobian, resolve_solver, search_system, visited_states

from .dataset import build_dataset

__all__ = ["fixedpoints", "Condition", "resolve_inputs"]

@dataclass(frozen=True)
class Condition:
    """One held input: its value ``[M]`` (None: the System's own drive), what the search found,
    and ∂F/∂u at every point found (flat, ``[K, N, M]``)."""

    value: Tensor | None
    found: OrbitSearch
    input_jacobian: Tensor

def resolve_inputs(system: System, inputs: Any) -> tuple[list[Tensor | None], bool]:
    """``(values, grid)``: the held inputs as ``[M]`` tensors (``[None]``: the System's own drive)
    and whether they form a ``condition`` dimension (a list was given)."""
    if inputs is None:
        if isinstance(system.drive, SequenceDrive):
            return [torch.zeros(system.input_dim, dtype=torch.float64)], False
        return [None], False
    if system.input_dim == 0:
        raise ProbeParameterError(
            f"probe 'fixedpoints': inputs={inputs!r} given but {system.name} takes no input (M=0); leave inputs unset"
        )
    grid = not isinstance(inputs, (int, float))
    rows = [inputs] if not grid else list(inputs)
    if not rows:
        raise ProbeParameterError("probe 'fixedpoints': inputs is an empty list; give at least one input level")
    out = []
    for row in rows:
        value = torch.as_tensor(row, dtype=torch.float64).reshape(-1)
        if value.numel() == 1:
            value = value.expand(system.input_dim).clone()
        if value.numel() != system.input_dim or not bool(torch.isfinite(value).all()):
            raise ProbeParameterError(
                f"probe 'fixedpoints': input {row!r} does not fit M={system.input_dim}; give one finite number "
                f"(the same on every input) or {system.input_dim} of them per condition"
            )
        out.append(value)
    return out, grid

def _given(system: System, extra: Any) -> Tensor | None:
    if extra is None:
        return None
    h = torch.as_tensor(np.asarray(extra, dtype=np.float64))
    want = (system.state_dim,) if system.networks is None else (system.networks, system.state_dim)
    if h.ndim == 1:
        h = h[None]
    if system.networks is not None and h.ndim == 2:
        h = h.expand(system.networks, *h.shape)
    if h.shape[-1] != system.state_dim or h.ndim != len(want) + 1 or not bool(torch.isfinite(h).all()):
        raise ProbeParameterError(
            f"probe 'fixedpoints': extra_starts of shape {list(h.shape)} do not fit {system.name}; give finite "
            f"states [G, {system.state_dim}]" + (f" or [{system.networks}, G, {system.state_dim}]" if system.networks else "")
        )
    return h

def fixedpoints(
    system: System,
    *,
    inputs: float | Sequence[float] | Sequence[Sequence[float]] | None = None,
    batch: int = 128,
    rounds: int = 8,
    patience: int = 2,
    extra_starts: Any = None,
    noise: float = 0.5,
    samples: int = 128,
    steps: int = 32,
    descent_iters: int = 100,
    max_iter: int = 50,
    tol: float = 1e-10,
    dedup: float = 1e-6,
    slow: float = 1e-2,
    seed: int = 0,
    solver: str = "auto",
) -> xr.Dataset:
    """Fixed points and slow points of the network's map, their stability and linearization.

    Parameters
    ----------
    system
        Any System (an ensemble is searched in one batch). A sequence drive supplies the starting
        states; the map is searched with the input held (at ``inputs``, 0 by default).
    inputs
        Held constant input(s): a number (held on every input) for one condition; a list for
        input-conditioned fixed points along a ``condition`` dimension, each entry a number or a
        vector of M (``[(0.1, 0.2), (0.3, 0.4)]``; on the command line ``--inputs 0,0.5,1`` gives
        three levels, ``--inputs '[(0.1, 0.2), (0.3, 0.4)]'`` two vectors). Default: the System's
        own drive (autonomous, constant or feedback).
    batch, rounds, patience
        Starts per round, the most rounds, and the rounds in a row that must find nothing new
        (with no point reached by a single start) before the search stops.
    extra_starts
        More starts ``[G, N]`` (or ``[network, G, N]``), e.g. orbit points another probe found.
    noise
        Noise on visited-state starts, in units of the visited states' spread.
    samples, steps
        Trajectories (from the System's initial states) whose visited states seed the starts
        (with a sequence drive at most as long as the sequence).
    descent_iters, max_iter
        Adam iterations on q (for visited-state starts), Levenberg–Marquardt iterations.
    tol
        ‖F(h) − h‖₂ ≤ tol·(1 + ‖h‖∞) for a fixed point (float64).
    dedup
        Points closer than ``dedup`` × spread are one.
    slow
        Largest speed ‖F(h) − h‖ of a slow point (a local minimum of q above zero), in units of
        the spread; 0 keeps none.
    seed
        Seeds the trajectories and every round's starts.
    solver
        Levenberg–Marquardt steps from the dense N×N Jacobian (``"dense"``), matrix-free in a
        Krylov subspace (``"krylov"``, O(N²) per product instead of O(N³) per Jacobian), or
        ``"auto"`` (Krylov from N = 128); the same iteration and tolerances either way.

    Returns
    -------
    xarray.Dataset
        Dims ``[network,] [condition,] point, unit, mode``: ``state``, ``kind`` (fixed / slow),
        ``speed``, ``q``, ``stable``, ``unstable_dims``, ``eigenvalue_real/imag``, ``timescale``,
        ``input_jacobian``, ``start_index``/``start_source``, ``basin_starts``, ``valid``; per
        search ``fixed_points``, ``stable_points``, ``slow_points``, ``new_points[round]``,
        ``unseen``, ``complete``; the visited states in their principal components for the
        plot. See docs/RESULTS.md.

    References
    ----------
    Sussillo & Barak (2013) §2–3; Golub & Sussillo (2018).

    Example
    -------
    >>> ds = dynprobe.run("fixedpoints", dynprobe.wrap(trained_rnn))
    >>> int(ds.stable_points)          # 8 for a 3-bit flip-flop
    """
    if min(batch, rounds, patience, samples, steps, max_iter) < 1 or descent_iters < 0:
        raise ProbeParameterError(
            "probe 'fixedpoints': batch, rounds, patience, samples, steps and max_iter must be >= 1 and "
            f"descent_iters >= 0 (got {batch}, {rounds}, {patience}, {samples}, {steps}, {max_iter}, {descent_iters})"
        )
    if not (tol > 0 and dedup > 0 and slow >= 0 and noise >= 0 and math.isfinite(tol + dedup + slow + noise)):
        raise ProbeParameterError(
            f"probe 'fixedpoints': need tol > 0, dedup > 0, slow >= 0, noise >= 0 (got {tol}, {dedup}, {slow}, {noise})"
        )
    values, grid = resolve_inputs(system, inputs)
    given = _given(system, extra_starts)
    if isinstance(system.drive, SequenceDrive):  # the trajectories can be no longer than the sequence
        steps = max(1, min(int(steps), system.drive.steps - 1))
    own = visited_states(system, samples=samples, steps=steps, seed=seed)  # under the System's own drive
    conditions = []
    for value in values:
        target = search_system(system, inputs=value)
        seeded = isinstance(system.drive, SequenceDrive) or value is None
        visited = own if seeded else visited_states(target, samples=samples, steps=steps, seed=seed)
        found = find_orbits(target, 1, visited=visited, batch=batch, rounds=rounds, patience=patience, given=given,
                            seed=seed, tol=tol, dedup=dedup, noise=noise, descent_iters=descent_iters,
                            max_iter=max_iter, slow=slow, solver=solver)
        conditions.append(Condition(value, found, _input_jacobian(target, found)))
    attrs = {
        "search_dtype": "float64", "tol": float(tol), "dedup": float(dedup), "slow_threshold": float(slow),
        "batch": int(batch), "rounds": int(rounds), "patience": int(patience), "noise": float(noise),
        "descent_iters": int(descent_iters), "max_iter": int(max_iter),
        "solver": resolve_solver(solver, system.state_dim),
        "held_input": "own drive" if values[0] is None else ("per condition" if grid else
                                                            ", ".join(f"{v:.6g}" for v in values[0].tolist())),
        "start_drive": system.drive.describe(),
    }
    return build_dataset(system, conditions, own, grid=grid, attrs=attrs)

def _input_jacobian(target: System, found: OrbitSearch) -> Tensor:
    """∂F/∂u at every point found, flat ``[K, N, M]`` (rows padded per network for the batch)."""
    K, n = found.states.shape[0], target.state_dim
    if target.input_dim == 0 or K == 0:
        return torch.zeros(K, n, target.input_dim, dtype=torch.float64)
    B = target.networks or 1
    counts = torch.bincount(found.net, minlength=B)
    col = torch.arange(K) - (torch.cumsum(counts, 0) - counts)[found.net]
    rows = found.states[:1, 0].expand(B, int(counts.max()), n).clone()
    rows[found.net, col] = found.states[:, 0]
    jac = input_jacobian(target, rows)
    return jac[found.net, col]

