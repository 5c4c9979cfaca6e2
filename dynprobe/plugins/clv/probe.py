"""The ``clv`` probe: covariant Lyapunov vectors by Ginelli's forward–backward method, and the
angle between the expanding and the contracting subspaces along the trajectory (hyperbolicity).

Phases, in steps after the state's burn-in (Ginelli et al. 2013 §3.1):
``forward_transient`` QR steps (Q converges to the backward Lyapunov vectors), the ``steps``
window (R_t kept; Q_t kept only at ``vector_times``), ``backward_transient`` more steps (R_t kept)
over which the backward iteration converges; then backwards through the tail and the window.

References
----------
Ginelli et al. (2007), PRL 99, 130601; Ginelli, Chaté, Livi & Politi (2013), J. Phys. A 46,
254005; Kuptsov & Parlitz (2012), J. Nonlinear Sci. 22, 727; fading-memory paper App. A (QR).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.labels import lead_dims, network_coords, unit_coords, variable

from .forward import forward_qr, initial_tangents
from .ginelli import backward, split_angles

__all__ = ["clv", "CLVRun", "compute_clv", "canonical_signs", "hyperbolicity_of", "HYPERBOLICITY", "TANGENCY_ANGLE",
           "HYPERBOLIC_ANGLE"]

TANGENCY_ANGLE = 0.01
"""A minimum angle below this (rad, ≈ 0.6°) counts as a near tangency: not uniformly hyperbolic."""
HYPERBOLIC_ANGLE = 0.1
"""A minimum angle at or above this (rad, ≈ 6°) counts as hyperbolic along the run; between the two
thresholds the subspaces make close approaches."""


@dataclass
class CLVRun:
    """What :func:`compute_clv` returns (tensors on the System's device; ``lead`` = [sample] or
    [network, sample])."""

    exponents: Tensor  # [*lead, k] float64: Σ log|R_jj| / (all forward steps), column order
    growth: Tensor  # [window, *lead, k]: covariant local rates log‖J_t v_t,j‖
    angles: Tensor  # [window, *lead]: unstable/stable splitting angle
    split_angles: Tensor | None  # [window, *lead, k−1]: every splitting j | j+1 (with splits=True)
    vectors: Tensor  # [times, *lead, N, k]: CLVs at the vector times (unit columns, canonical signs)
    states: Tensor  # [times, *lead, N]
    unstable: Tensor  # [*lead] int64
    defined: Tensor  # [*lead] int64
    diverged: Tensor  # [*lead] bool
    mode: str


def _vector_offsets(vector_times: int | tuple[int, ...], steps: int) -> list[int]:
    if isinstance(vector_times, int):
        if vector_times < 1:
            raise ProbeParameterError(f"probe 'clv': vector_times={vector_times} must be >= 1 (a count of evenly "
                                      "spaced window times, at most steps) or a tuple of offsets")
        return sorted({int(round(x)) for x in np.linspace(0, steps - 1, min(vector_times, steps))})
    offsets = sorted({int(x) for x in vector_times})
    if not offsets or offsets[0] < 0 or offsets[-1] >= steps:
        raise ProbeParameterError(f"probe 'clv': vector_times {tuple(vector_times)} must be offsets in 0..steps-1={steps - 1}")
    return offsets


def canonical_signs(V: Tensor) -> Tensor:
    """Each column's sign fixed so that its largest-magnitude entry is positive (CLVs are
    defined up to sign)."""
    idx = V.abs().argmax(-2, keepdim=True)
    return V * torch.where(torch.gather(V, -2, idx) < 0, -1.0, 1.0).to(V.dtype)


def compute_clv(
    system: System, h: Tensor, Q: Tensor, *, steps: int, start: int, forward_transient: int,
    backward_transient: int, offsets: list[int], unstable: int | None, splits: bool, seed: int,
) -> CLVRun:
    """The low-level run: from state ``h`` at time ``start`` and tangents ``Q`` (``[*lead, N, k]``)."""
    k = Q.shape[-1]
    total = forward_transient + steps + backward_transient
    fwd = forward_qr(system, h, Q, steps=total, start=start, stored=steps + backward_transient,
                     keep_q=[forward_transient + o for o in offsets])
    exponents = fwd.log_r.sum(0) / total
    cov = backward(fwd.R, steps, seed=seed)
    defined = torch.where(fwd.diverged, 0, cov.defined)
    cols = torch.arange(k, device=defined.device)
    lam = torch.where(cols < defined.unsqueeze(-1), exponents, torch.nan)
    n_unstable = (lam > 0).sum(-1) if unstable is None else torch.full_like(defined, int(unstable))
    angles = split_angles(cov.C, n_unstable, defined)
    every = None
    if splits:
        every = torch.stack([split_angles(cov.C, torch.full_like(defined, j), defined) for j in range(1, k)], -1)
    coeff = cov.C[offsets]
    V = canonical_signs(fwd.Q @ coeff)
    invalid = (cols >= defined.unsqueeze(-1))  # [*lead, k]
    V = V.masked_fill(invalid.unsqueeze(-2), torch.nan)
    growth = cov.growth.masked_fill(invalid, torch.nan)
    return CLVRun(exponents, growth, angles, every, V, fwd.states, n_unstable, defined, fwd.diverged, fwd.mode)


def clv(
    system: System,
    *,
    steps: int = 300,
    burn_in: int = 100,
    forward_transient: int = 200,
    backward_transient: int = 200,
    k: int | None = None,
    samples: int = 1,
    vector_times: int | tuple[int, ...] = 3,
    unstable: int | None = None,
    splits: bool = False,
    memory_limit_gb: float = 2.0,
    seed: int = 0,
) -> xr.Dataset:
    """Covariant Lyapunov vectors (Ginelli's method) and the hyperbolicity of the splitting.

    After ``burn_in`` steps, ``forward_transient`` QR steps converge the tangent basis; over the
    next ``steps`` steps (the window) the R factors are kept, and ``backward_transient`` further
    steps give the backward iteration its transient. The vectors v_t,1 … v_t,k are covariant
    (J_t v_t,j ∝ v_{t+1},j) and v_t,j grows at the rate λ_j; they are returned at
    ``vector_times``, the angle between span(v_1 … v_u) (expanding, λ > 0) and span(v_{u+1} … v_k)
    at every window time.

    Parameters
    ----------
    system
        Any System; an ensemble adds a leading ``network`` dimension.
    steps
        Window length: times at which angles (and covariant rates) are reported.
    burn_in
        State transient, discarded before any tangent is propagated.
    forward_transient, backward_transient
        QR steps before the window, and after it: both convergences are exponential in the gaps
        between exponents, exp(−(λ_j − λ_{j+1}) t); lengthen them for nearly degenerate spectra.
    k
        Number of vectors (the k most expanding); ``None`` for all N. With k < N the stable side
        of the angle is the computed part of the stable subspace only, so the angle is an upper
        bound of the true one: a tangency found is real, its absence is no proof.
    samples
        Initial conditions, drawn from the System's ``init`` with ``seed``.
    vector_times
        Where to return the vectors: a count of evenly spaced window times, or a tuple of
        offsets into the window (0 … steps−1). Each costs ``N·k`` floats per sample.
    unstable
        Dimension u of the expanding subspace; ``None``: the number of positive exponents of
        each sample.
    splits
        Also report the angle of every splitting span(v_1 … v_j) | span(v_{j+1} … v_k).
    memory_limit_gb
        Refuse runs whose stored R factors and vectors would exceed this (float64 bytes).
    seed
        Seeds the initial states, the initial tangents (as ``lyapunov`` does) and the random
        start of the backward iteration.

    Notes
    -----
    Degenerate exponents (a complex pair, e.g. near a spiral) have a covariant *plane*, not two
    covariant lines: the span of the pair is covariant, the single vectors in it are not. A neutral
    direction (λ ≈ 0, quasi-periodic motion) is counted as expanding or contracting by the sign of
    its estimate; pass ``unstable`` to place the split yourself.

    Returns
    -------
    xarray.Dataset
        ``vectors[sample, vector_time, unit, exponent]``, ``state[sample, vector_time, unit]``,
        ``angle[sample, time]`` (rad), ``min_angle[sample]``, ``unstable_dim[sample]``,
        ``covariant_rate[sample, time, exponent]`` (log‖J_t v_t,j‖), ``exponents[sample,
        exponent]`` (equal to ``lyapunov``'s with ``steps = forward_transient + steps +
        backward_transient``, same ``burn_in``, ``k``, ``samples``, ``seed``), ``exponent_mean``,
        ``defined_vectors``, ``diverged``, ``hyperbolicity`` (per network); with ``splits``,
        ``splitting_angle[sample, time, split]``. Contract: docs/RESULTS.md.

    References
    ----------
    Ginelli et al. (2007), PRL 99, 130601; Ginelli et al. (2013), J. Phys. A 46, 254005 §3, §5;
    Kuptsov & Parlitz (2012), J. Nonlinear Sci. 22, 727.

    Example
    -------
    >>> ds = dynprobe.run("clv", henon, steps=1000, vector_times=(0, 500))
    >>> float(ds.min_angle.min())     # small: the Hénon map has homoclinic tangencies
    """
    n = system.state_dim
    k = n if k is None else int(k)
    if not 1 <= k <= n:
        raise ProbeParameterError(f"probe 'clv': k={k} is outside 1..N={n}; pass 1 <= k <= {n} or k=None")
    if steps < 1 or burn_in < 0 or forward_transient < 0 or backward_transient < 0 or samples < 1:
        raise ProbeParameterError(
            "probe 'clv': need steps >= 1, samples >= 1 and burn_in, forward_transient, backward_transient >= 0 "
            f"(got {steps}, {samples}, {burn_in}, {forward_transient}, {backward_transient})"
        )
    if unstable is not None and not 0 <= unstable <= k:
        raise ProbeParameterError(f"probe 'clv': unstable={unstable} must lie in 0..k={k} (or be None)")
    offsets = _vector_offsets(vector_times, steps)
    lead = int(np.prod(system.lead_shape(samples)))
    need = 8 * lead * ((steps + backward_transient) * k * k + len(offsets) * n * k) / 1e9
    if need > memory_limit_gb:
        raise ProbeParameterError(
            f"probe 'clv': storing the R factors and vectors needs {need:.2g} GB "
            f"((steps + backward_transient) x {lead} trajectories x k^2 + vector_times x N x k floats) "
            f"> memory_limit_gb={memory_limit_gb:g}; lower k, steps, backward_transient or samples, or raise the limit"
        )
    total = forward_transient + steps + backward_transient
    system.check_run(burn_in + total)
    h = system.advance(system.initial_state(samples, seed=seed), burn_in)
    Q0 = initial_tangents(system, samples, k, seed)
    start = burn_in + forward_transient
    out = compute_clv(system, h, Q0, steps=steps, start=burn_in, forward_transient=forward_transient,
                      backward_transient=backward_transient, offsets=offsets, unstable=unstable,
                      splits=splits, seed=seed)
    times = np.arange(start, start + steps)
    return _dataset(system, out, times=times, vector_times=times[offsets], k=k, total=total)


HYPERBOLICITY = ("hyperbolic", "close_approaches", "near_tangency", "no_splitting")
"""Values of the ``hyperbolicity`` verdict variable."""


def hyperbolicity_of(min_angle: np.ndarray) -> str:
    """The splitting verdict from the minimum angles of one network's samples: ``near_tangency``
    (some angle < :data:`TANGENCY_ANGLE`), ``hyperbolic`` (all >= :data:`HYPERBOLIC_ANGLE`),
    ``close_approaches`` (between), ``no_splitting`` (no sample has both an expanding and a
    computed contracting direction). Hyperbolicity is a property of the whole attractor: a finite
    run can find a tangency, never prove there is none."""
    a = np.asarray(min_angle, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return "no_splitting"
    low = float(a.min())
    if low < TANGENCY_ANGLE:
        return "near_tangency"
    return "hyperbolic" if low >= HYPERBOLIC_ANGLE else "close_approaches"


def _dataset(system: System, out: CLVRun, *, times: np.ndarray, vector_times: np.ndarray, k: int, total: int) -> xr.Dataset:
    lead = lead_dims(system)
    per = [*lead, "sample"]
    diverged = out.diverged.cpu().numpy()
    if diverged.any():
        warnings.warn(f"clv: {int(diverged.sum())} of {diverged.size} trajectories diverged (non-finite state); "
                      "they are flagged in 'diverged' and their vectors and angles are NaN", RuntimeWarning, stacklevel=3)
    lam = out.exponents.cpu().numpy()
    lam[diverged] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: every sample diverged
        mean = np.nanmean(np.where(diverged[..., None], np.nan, lam), axis=-2)
    angle = np.moveaxis(out.angles.cpu().numpy(), 0, -1)  # [*lead, time]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        min_angle = np.nanmin(angle, axis=-1)
    flat = min_angle.reshape(-1, min_angle.shape[-1])
    verdict = np.array([hyperbolicity_of(row) for row in flat], dtype=str).reshape(min_angle.shape[:-1])
    rate = np.moveaxis(out.growth.cpu().numpy(), 0, -2)  # [*lead, time, k]
    vectors = np.moveaxis(out.vectors.cpu().numpy(), 0, len(per))  # [*lead, vector_time, unit, exponent]
    states = np.moveaxis(out.states.cpu().numpy(), 0, len(per))
    data = {
        "vectors": variable([*per, "vector_time", "unit", "exponent"], vectors,
                            "covariant Lyapunov vector (unit length, largest entry positive)"),
        "state": variable([*per, "vector_time", "unit"], states, "state h_t at the vector times"),
        "angle": variable([*per, "time"], angle, "angle between the expanding and contracting subspaces", "rad"),
        "min_angle": variable(per, min_angle, "minimum splitting angle over the window", "rad"),
        "unstable_dim": variable(per, out.unstable.cpu().numpy(), "dimension of the expanding subspace"),
        "covariant_rate": variable([*per, "time", "exponent"], rate, "covariant local growth rate log|J_t v_t|",
                                   "1/step"),
        "exponents": variable([*per, "exponent"], lam, "Lyapunov exponent (QR, all forward steps)", "1/step"),
        "exponent_mean": variable([*lead, "exponent"], mean, "Lyapunov exponent, mean over samples", "1/step"),
        "defined_vectors": variable(per, out.defined.cpu().numpy(), "vectors 1..d determined (no annihilated direction)"),
        "diverged": variable(per, diverged, "trajectory became non-finite"),
        "hyperbolicity": variable(lead, verdict, "splitting verdict from the minimum angle"),
    }
    coords = {
        "sample": ("sample", np.arange(diverged.shape[-1]), {"long_name": "initial condition", "units": "1"}),
        "exponent": ("exponent", np.arange(1, k + 1), {"long_name": "exponent index (1 = largest)", "units": "1"}),
        "time": ("time", times, {"long_name": "time index t of the state h_t", "units": "step"}),
        "vector_time": ("vector_time", vector_times, {"long_name": "time index t of the vectors", "units": "step"}),
        **network_coords(system),
        **unit_coords(system),
    }
    if out.split_angles is not None:
        every = np.moveaxis(out.split_angles.cpu().numpy(), 0, -2)  # [*lead, time, split]
        data["splitting_angle"] = variable([*per, "time", "split"], every,
                                           "angle between span(v_1..v_j) and span(v_j+1..v_k)", "rad")
        coords["split"] = ("split", np.arange(1, k), {"long_name": "splitting index j (first j vectors | the rest)",
                                                     "units": "1"})
    attrs = {"k": k, "state_dim": system.state_dim, "forward_steps": total, "linearization": out.mode,
             "tangency_angle": TANGENCY_ANGLE, "hyperbolic_angle": HYPERBOLIC_ANGLE}
    return xr.Dataset(data, coords=coords, attrs=attrs)
