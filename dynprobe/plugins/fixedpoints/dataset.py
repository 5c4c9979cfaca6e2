"""The ``fixedpoints`` result: points padded to one ``point`` length per network and condition
(``valid`` says which are real; NaN, −1, "" and False fill the rest), the search's coverage
statistics, and the visited states in their first principal components for the plot.
Contract: docs/RESULTS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System
from dynprobe.orbits import SOURCES, Visited

if TYPE_CHECKING:
    from .probe import Condition

__all__ = ["build_dataset", "principal_components", "PCS", "SHOWN_TRAJECTORIES", "KINDS"]

PCS = 3
"""Principal components of the visited states kept for the plot."""
SHOWN_TRAJECTORIES = 24
"""Visited trajectories stored (projected) for the plot."""
KINDS = ("fixed", "slow")


GRAM_MIN = 128
"""From this state dimension on (with more visited states than units), the components come from
the eigenvectors of the N×N Gram matrix xᵀx instead of the SVD of x itself: the same leading
components (to about ε·‖x‖²/gap, far below what a plot shows), a third of the cost at N = 1024."""


def principal_components(visited: Visited) -> tuple[Tensor, Tensor]:
    """``(components [B, pc, N], explained [B, pc])`` of the visited states (SVD of the centred
    states, or for N ≥ :data:`GRAM_MIN` the eigendecomposition of their Gram matrix; each
    component's sign fixed so its largest entry is positive)."""
    x = visited.states - visited.mean[:, None]
    if x.shape[-1] >= GRAM_MIN and x.shape[-2] > x.shape[-1]:
        lam, vec = torch.linalg.eigh(x.transpose(-1, -2) @ x)  # ascending
        k = min(PCS, vec.shape[-1])
        vh = vec.flip(-1)[..., :k].transpose(-1, -2)
        s2 = lam.flip(-1)[..., :k].clamp(min=0)
    else:
        _, s, vh = torch.linalg.svd(x, full_matrices=False)
        k = min(PCS, vh.shape[-2])
        vh, s2 = vh[:, :k], s[:, :k] ** 2
    big = torch.gather(vh, -1, vh.abs().argmax(-1, keepdim=True))
    vh = vh * torch.where(big < 0, -1.0, 1.0).to(vh)
    total = (x * x).sum((-1, -2)).clamp(min=1e-300)
    return vh, s2 / total[:, None]


def _pad(values: list[list[Tensor]], width: int, fill: Any, dtype: Any) -> np.ndarray:
    """``[B][C]`` lists of ``[K_bc, ...]`` arrays → ``[B, C, width, ...]`` padded with ``fill``."""
    B, C = len(values), len(values[0])
    tail = next((v.shape[1:] for row in values for v in row if v.ndim), ())
    out = np.full((B, C, width, *tail), fill, dtype=dtype)
    for b in range(B):
        for c in range(C):
            v = values[b][c].cpu().numpy()
            out[b, c, : v.shape[0]] = v
    return out


def _per_point(system: System, conditions: list[Condition]) -> dict[str, list[list[Tensor]]]:
    B = system.networks or 1
    cols: dict[str, list[list[Tensor]]] = {}
    for c, cond in enumerate(conditions):
        f = cond.found
        fields = {
            "state": f.states[:, 0], "kind": f.kind, "speed": f.speed, "error": f.error, "stable": f.linear.stable,
            "unstable_dims": f.linear.unstable, "marginal_dims": f.linear.marginal, "eig": f.linear.eigenvalues,
            "timescale": f.linear.timescale,
            "start_index": f.start, "start_source": f.source, "found_round": f.round + 1, "basin_starts": f.basin,
            "input_jacobian": cond.input_jacobian,
        }
        for key, value in fields.items():
            rows = cols.setdefault(key, [[None] * len(conditions) for _ in range(B)])
            for b in range(B):
                rows[b][c] = value[f.net == b]
    return cols


def _var(dims: list[str], values: Any, long_name: str, units: str = "1") -> tuple:
    return (dims, np.asarray(values), {"long_name": long_name, "units": units})


def _history(dims: list[str], values: Any, long_name: str) -> tuple:
    """A variable of how the search went, not of what it found: an ensemble searches in shared
    rounds (until every network's search is complete), so these describe that joint search and
    may differ from a separate run's; ``scope = "search"`` (docs/RESULTS.md rule 7)."""
    dims_, array, attrs = _var(dims, values, long_name)
    return (dims_, array, {**attrs, "scope": "search"})


def build_dataset(system: System, conditions: list[Condition], visited: Visited, *, grid: bool,
                  attrs: dict[str, Any]) -> xr.Dataset:
    """Lay the searches out as the ``fixedpoints`` Dataset (see docs/RESULTS.md)."""
    m = system.input_dim
    cols = _per_point(system, conditions)
    width = max(max(v.shape[0] for row in cols["state"] for v in row), 1)
    valid = _pad([[torch.ones(v.shape[0], dtype=torch.bool) for v in row] for row in cols["state"]], width, False, bool)
    eig = _pad(cols["eig"], width, np.nan + 0j, np.complex128)
    kind = _pad(cols["kind"], width, -1, np.int64)
    source = _pad(cols["start_source"], width, -1, np.int64)
    lead = (["network"] if system.networks is not None else []) + (["condition"] if grid else [])

    def cut(arr: np.ndarray) -> np.ndarray:  # [B, C, ...] -> the lead dims in use
        arr = arr if grid else arr[:, 0]
        return arr if system.networks is not None else arr[0]

    pt = [*lead, "point"]
    data = {
        "state": _var([*pt, "unit"], cut(_pad(cols["state"], width, np.nan, np.float64)), "state at the point"),
        "valid": _var(pt, cut(valid), "a point is stored here (false: padding)"),
        "kind": _var(pt, cut(np.where(kind >= 0, np.array(KINDS, dtype=object)[kind.clip(0)], "")).astype(str),
                     "fixed (F(h) = h) or slow (a local minimum of q above zero)"),
        "speed": _var(pt, cut(_pad(cols["speed"], width, np.nan, np.float64)), "speed |F(h) - h| (2-norm)", "1/step"),
        "position_error": _var(pt, cut(_pad(cols["error"], width, np.nan, np.float64)),
                               "estimated distance to the exact fixed point (3 x one more Newton step)"),
        "stable": _var(pt, cut(_pad(cols["stable"], width, False, bool)), "all |eigenvalues of J| < 1"),
        "unstable_dims": _var(pt, cut(_pad(cols["unstable_dims"], width, -1, np.int64)),
                              "eigenvalues of J outside the unit circle (unstable directions)"),
        "marginal_dims": _var(pt, cut(_pad(cols["marginal_dims"], width, -1, np.int64)),
                              "eigenvalues of J on the unit circle within the point's accuracy"),
        "eigenvalue_real": _var([*pt, "mode"], cut(eig.real), "eigenvalue of J = dF/dh, real part"),
        "eigenvalue_imag": _var([*pt, "mode"], cut(eig.imag), "eigenvalue of J = dF/dh, imaginary part"),
        "timescale": _var([*pt, "mode"], cut(_pad(cols["timescale"], width, np.nan, np.float64)),
                          "time constant -1/ln|eigenvalue| (inf: not decaying)", "step"),
        "start_index": _history(pt, cut(_pad(cols["start_index"], width, -1, np.int64)),
                            "number of the first start that reached the point (-1: padding)"),
        "start_source": _history(pt, cut(np.where(source >= 0, np.array(SOURCES, dtype=object)[source.clip(0)], "")).astype(str),
                             "where that start came from"),
        "found_round": _history(pt, cut(_pad(cols["found_round"], width, -1, np.int64)), "search round that found it"),
        "basin_starts": _history(pt, cut(_pad(cols["basin_starts"], width, -1, np.int64)), "starts that converged to it"),
    }
    speed = data["speed"][1]
    data["q"] = _var(pt, 0.5 * speed * speed, "q = |F(h) - h|^2 / 2", "1")
    if m:
        data["input_jacobian"] = _var([*pt, "unit", "input"], cut(_pad(cols["input_jacobian"], width, np.nan, np.float64)),
                                      "input Jacobian dF/du at the point")
    data.update(_search_vars(system, conditions, lead, cut))
    data.update(_pca_vars(system, conditions, visited, lead, cut, cols, width))
    coords = _coords(system, conditions, visited, width, grid)
    return xr.Dataset(data, coords=coords, attrs={**attrs, "kinds": ",".join(KINDS), "start_sources": ",".join(SOURCES)})


def _search_vars(system: System, conditions: list[Condition], lead: list[str], cut: Any) -> dict[str, tuple]:
    def stack(fn: Any) -> np.ndarray:  # [B, C, ...]
        return np.stack([np.asarray(fn(c.found)) for c in conditions], axis=1)

    R = max(c.found.new_per_round.shape[1] for c in conditions)
    new = np.full((system.networks or 1, len(conditions), R), -1, dtype=np.int64)
    for i, c in enumerate(conditions):
        new[:, i, : c.found.new_per_round.shape[1]] = c.found.new_per_round.numpy()

    def count(f: Any, mask: Any) -> Tensor:
        return torch.bincount(f.net[mask], minlength=system.networks or 1)

    return {
        "fixed_points": _var(lead, cut(stack(lambda f: count(f, f.kind == 0))), "fixed points found"),
        "stable_points": _var(lead, cut(stack(lambda f: count(f, (f.kind == 0) & f.linear.stable))),
                              "stable fixed points found (attractors)"),
        "slow_points": _var(lead, cut(stack(lambda f: count(f, f.kind == 1))), "slow points found"),
        "starts_used": _history(lead, cut(stack(lambda f: f.starts)), "starts tried"),
        "converged_starts": _history(lead, cut(stack(lambda f: f.converged)), "starts that converged to a fixed point"),
        "new_points": _history([*lead, "round"], cut(new), "fixed points first found in the round (-1: round not run)"),
        "unseen": _history(lead, cut(stack(lambda f: f.unseen)),
                       "Good-Turing estimate of the chance that one more start finds a new point"),
        "complete": _history(lead, cut(stack(lambda f: f.complete)),
                         "the last rounds (patience) found nothing new and no point was reached only once"),
        "spread": _var(lead, cut(stack(lambda f: f.spread)), "RMS spread of the visited states (the length scale)"),
        "dedup_tol": _var(lead, cut(stack(lambda f: f.dedup_tol)), "distance within which two points are one"),
    }


def _pca_vars(system: System, conditions: list[Condition], visited: Visited, lead: list[str], cut: Any,
              cols: dict[str, list[list[Tensor]]], width: int) -> dict[str, tuple]:
    comps, explained = principal_components(visited)  # [B, pc, N]
    net = ["network"] if system.networks is not None else []
    one = (lambda a: a) if system.networks is not None else (lambda a: a[0])
    shown = visited.traj[:, :SHOWN_TRAJECTORIES]  # [B, S, T, N]
    traj_pc = torch.einsum("bstn,bkn->bstk", shown - visited.mean[:, None, None], comps)
    state = _pad(cols["state"], width, np.nan, np.float64)  # [B, C, K, N]
    point_pc = np.einsum("bckn,bpn->bckp", state - visited.mean.numpy()[:, None, None], comps.numpy())
    return {
        "pc_component": _var([*net, "pc", "unit"], one(comps.numpy()), "principal direction of the visited states"),
        "pc_variance": _var([*net, "pc"], one(explained.numpy()), "fraction of the visited states' variance"),
        "pc_center": _var([*net, "unit"], one(visited.mean.numpy()), "mean of the visited states"),
        "trajectory_pc": _var([*net, "sample", "time", "pc"], one(traj_pc.numpy()),
                              "visited trajectory in principal components (NaN where it diverged)"),
        "state_pc": _var([*lead, "point", "pc"], cut(point_pc), "point in principal components of the visited states"),
    }


def _coords(system: System, conditions: list[Condition], visited: Visited, width: int, grid: bool) -> dict[str, tuple]:
    n, m = system.state_dim, system.input_dim
    R = max(c.found.new_per_round.shape[1] for c in conditions)
    coords: dict[str, tuple] = {
        "point": ("point", np.arange(width), {"long_name": "point (fixed or slow)", "units": "1"}),
        "unit": ("unit", np.arange(n), {"long_name": "state coordinate", "units": "1"}),
        "mode": ("mode", np.arange(1, n + 1), {"long_name": "eigenvalue index (1 = largest modulus)", "units": "1"}),
        "round": ("round", np.arange(1, R + 1), {"long_name": "search round", "units": "1"}),
        "pc": ("pc", np.arange(1, min(PCS, n) + 1), {"long_name": "principal component", "units": "1"}),
        "sample": ("sample", np.arange(min(SHOWN_TRAJECTORIES, visited.traj.shape[1])),
                   {"long_name": "visited trajectory", "units": "1"}),
        "time": ("time", np.arange(visited.traj.shape[2]), {"long_name": "step of the visited trajectory", "units": "step"}),
    }
    for key, values in system.layout.coords().items():
        coords[key] = ("unit", values, {"long_name": key.replace("_", " "), "units": "1"})
    if m:
        coords["input"] = ("input", np.arange(m), {"long_name": "input coordinate", "units": "1"})
    if grid:
        coords["condition"] = ("condition", np.arange(len(conditions)), {"long_name": "held input condition", "units": "1"})
        coords["input_value"] = (("condition", "input"), np.stack([c.value.numpy() for c in conditions]),
                                 {"long_name": "held input u", "units": "1"})
    if system.networks is not None:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    return coords
