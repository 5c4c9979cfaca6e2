"""The ``meanfield`` probe: mean-field predictions over a hyper-parameter grid, and — given a
System — the same estimated from its weights next to what the network actually does.

Any hyper-parameter may be a 1-D array; the result is a Dataset over those dimensions (in the
order sigma_w, sigma_v, sigma_b, mu_b, R, sigma12), computed in one vectorized call. Scalar
hyper-parameters become 0-d coordinates. With a System, omitted hyper-parameters are estimated
from its weights and drive (:mod:`dynprobe.plugins.meanfield.estimate`); ``measure=True`` adds the
measured largest Lyapunov exponent (the ``lyapunov`` probe), the measured mean squared singular
value and JJᵀ variance of the end-to-end Jacobian (the ``jacobian`` probe), and the Monte-Carlo
cosine similarity of the paper's Fig. 1 protocol, tied and untied — see :mod:`.compare`.

References
----------
Mean-field paper §3.1–3.2, eq. (2)–(13), App. B–E, Fig. 1.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError

from .theory import Grid, predict

__all__ = ["meanfield", "theory_dataset", "GRID_PARAMS", "VARIABLES"]

GRID_PARAMS = ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R", "sigma12")
_AXIS = {
    "sigma_w": ("recurrent weight scale sigma_w (W ~ N(0, sigma_w^2/N))", "1"),
    "sigma_v": ("input weight scale sigma_v (V ~ N(0, sigma_v^2/fan_in))", "1"),
    "sigma_b": ("bias standard deviation sigma_b", "1"),
    "mu_b": ("bias mean mu_b", "1"),
    "R": ("input second moment R", "1"),
    "sigma12": ("input cosine similarity Sigma_12", "1"),
}
VARIABLES = {
    "q_star": ("pre-activation variance at the fixed point q* (eq. 2 / 6)", "1"),
    "Q_star": ("hidden-state second moment at the fixed point Q* (eq. 7; vanilla: E[phi^2])", "1"),
    "c_star": ("pre-activation correlation at the stable fixed point c* (eq. 2 / 8)", "1"),
    "chi_1": ("chi_1: mean squared singular value of one step's Jacobian (eq. 4 / 13)", "1"),
    "chi_c": ("chi_c*: slope of the correlation map at c* (eq. 4 / 9)", "1"),
    "chi_q": ("slope of the variance map at q* (App. D; xi_q = -1/log chi_q)", "1"),
    "tau": ("signal-propagation timescale tau = -1/log|chi_c*|", "step"),
    "lambda_max": ("largest Lyapunov exponent predicted for a wide network, (1/2) log chi_1", "1/step"),
    "mu_1": ("mu_1 of eq. 13 (E[u^2]; 0 for vanilla)", "1"),
    "sigma_1_sq": ("sigma_1^2 of eq. 13 (0 for vanilla)", "1"),
    "mu_2": ("mu_2 of eq. 13", "1"),
    "sigma_2_sq": ("sigma_2^2 of eq. 13", "1"),
    "mean_sq_sv": ("mean squared singular value of the T-step Jacobian, chi_1^T", "1"),
    "var_jjt": ("variance of the spectrum of J J^T after T steps (moment recursion; eq. 12 corrected)", "1"),
    "normalized_var_jjt": ("variance of the J J^T spectrum over its squared mean", "1"),
    "jjt_second_moment_eq12": ("eq. 12 as printed (the second moment of the J J^T spectrum)", "1"),
    "converged": ("the fixed points were found (else NaN, see reason)", "1"),
    "reason": ("why a grid point has no solution ('' where converged)", "1"),
}


def _axis(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1:
        raise ProbeParameterError(f"probe 'meanfield': {name} must be a number or a 1-D list, got shape {arr.shape}")
    if arr.ndim == 1 and (arr.size == 0 or len(np.unique(arr)) != arr.size):
        raise ProbeParameterError(f"probe 'meanfield': {name} must be a non-empty list of distinct values")
    return arr


def theory_dataset(cell: str, phi: str, hyper: dict[str, Any], *, weights: str, horizons: Sequence[int],
                   correlations: bool = True) -> xr.Dataset:
    """The theory part of the ``meanfield`` result: every quantity over the grid of ``hyper``
    (values for the keys of :data:`GRID_PARAMS`; 1-D arrays become dimensions)."""
    horizons = [int(h) for h in horizons]
    if not horizons or min(horizons) < 1:
        raise ProbeParameterError(f"probe 'meanfield': horizons must be positive step counts, got {horizons}")
    axes = {k: _axis(k, hyper[k]) for k in GRID_PARAMS}
    dims = [k for k in GRID_PARAMS if axes[k].ndim == 1]
    mesh = np.meshgrid(*(axes[d] for d in dims), indexing="ij") if dims else []
    values = {k: (mesh[dims.index(k)] if k in dims else axes[k]) for k in GRID_PARAMS}
    grid = Grid.of(cell, phi, **values)
    out = predict(grid, weights=weights, horizons=horizons, correlations=correlations)
    data = {}
    for key, (long_name, units) in VARIABLES.items():
        if key not in out:
            continue
        value = out[key]
        extra = ["horizon"] if np.ndim(value) == len(dims) + 1 else []
        data[key] = (dims + extra, value, {"long_name": long_name, "units": units})
    coords: dict[str, Any] = {
        "horizon": ("horizon", np.asarray(horizons, dtype=np.int64), {"long_name": "horizon T", "units": "step"})
    }
    for k in GRID_PARAMS:
        long_name, units = _AXIS[k]
        coords[k] = ((k,) if k in dims else (), axes[k], {"long_name": long_name, "units": units})
    ds = xr.Dataset(data, coords=coords)
    bad = ~out["converged"]
    if bad.any():
        reasons = sorted(set(np.asarray(out["reason"])[bad].ravel()))
        warnings.warn(f"meanfield: {int(bad.sum())} of {bad.size} grid points have no solution ({'; '.join(reasons)}); "
                      "they are NaN and flagged in 'converged'", RuntimeWarning, stacklevel=3)
    ds.attrs.update({"cell": cell, "phi": phi if cell == "vanilla" else "sigmoid (gate)", "weights": weights,
                     "s1": -1.0 if weights == "gaussian" else 0.0, "grid_dims": ",".join(dims)})
    return ds


def meanfield(
    system: System | None = None,
    *,
    cell: Literal["vanilla", "minimalrnn"] | None = None,
    phi: str | None = None,
    sigma_w: float | list[float] | None = None,
    sigma_v: float | list[float] | None = None,
    sigma_b: float | list[float] | None = None,
    mu_b: float | list[float] | None = None,
    R: float | list[float] | None = None,
    sigma12: float | list[float] | None = None,
    horizons: tuple[int, ...] = (1, 10, 100),
    weights: Literal["gaussian", "orthogonal"] | None = None,
    correlations: bool = True,
    measure: bool = True,
    steps: int = 500,
    samples: int = 4,
    mc_networks: int = 8,
    mc_steps: int = 40,
    seed: int = 0,
) -> xr.Dataset:
    """Mean-field theory of a vanilla RNN or minimalRNN: q*, Q*, c*, χ₁, χ_c*, τ, σ²_JJᵀ(T).

    Without a System: a pure prediction at the given hyper-parameters (``sigma_w`` and
    ``sigma_v`` are then required). Any hyper-parameter may be a 1-D list: the result is a grid
    over those dimensions, computed in one vectorized call (a 200 x 200 phase diagram of χ₁ in
    about a second). With a System, omitted hyper-parameters are estimated from its weights
    and drive, and ``measure=True`` adds what the network actually does.

    Parameters
    ----------
    system
        Optional: a ``VanillaRNN`` / ``MinimalRNN`` / one-layer ``nn.RNN`` System.
    cell, phi
        ``vanilla`` (activation ``phi``: tanh, relu, linear, erf, sigmoid) or ``minimalrnn``.
    sigma_w, sigma_v, sigma_b, mu_b
        Weight and bias scales (standard deviations) and the bias mean.
    R, sigma12
        Input second moment and the cosine similarity Σ₁₂ of the two input sequences.
    horizons
        T for the Jacobian statistics χ₁^T and σ²_JJᵀ(T).
    weights
        ``gaussian`` (s₁ = −1) or ``orthogonal`` (s₁ = 0) recurrent weights (eq. 12).
    correlations
        ``False`` skips c*, χ_c* and τ, which need 2-D integrals (~100x the work of χ₁): for
        large phase diagrams of χ₁ alone.
    measure, steps, samples, mc_networks, mc_steps, seed
        With a System: measure λ_max (``steps`` QR steps, ``samples`` initial states), the
        Jacobian spectrum at ``horizons``, and the Fig. 1 Monte-Carlo (``mc_networks`` networks
        or input pairs, ``mc_steps`` steps, Σ₁₂ = 0 before step 10 and 1 after).

    Returns
    -------
    xarray.Dataset
        Over the grid dims (and ``horizon``): ``q_star``, ``Q_star``, ``c_star``, ``chi_1``,
        ``chi_c``, ``chi_q``, ``tau`` (c*, χ_c*, τ only with ``correlations``), ``lambda_max``, ``mu_1``,
        ``sigma_1_sq``, ``mu_2``,
        ``sigma_2_sq``, ``mean_sq_sv``, ``var_jjt``, ``jjt_second_moment_eq12``, ``converged``,
        ``reason``; with a System also the ``estimated_*`` hyper-parameters, ``*_measured``
        quantities and ``cos_sim_theory/tied/untied[time]``. See docs/RESULTS.md.

    References
    ----------
    Mean-field paper §3.1–3.2, eq. (2)–(13), Algorithm 1, App. B–E, Fig. 1.

    Example
    -------
    >>> ds = dynprobe.run("meanfield", None, sigma_w=list(np.linspace(0.5, 3, 200)),
    ...                   mu_b=list(np.linspace(-2, 2, 200)), sigma_v=1.0, sigma_b=0.1)
    >>> ds.chi_1.plot()
    """
    given = {"sigma_w": sigma_w, "sigma_v": sigma_v, "sigma_b": sigma_b, "mu_b": mu_b, "R": R, "sigma12": sigma12}
    est = None
    if system is not None:
        from .estimate import estimate

        est = estimate(system, R=None if R is None or np.ndim(R) else float(R), phi=phi)
        if cell is not None and cell != est.cell:
            raise ProbeParameterError(f"probe 'meanfield': cell={cell!r} but the System is a {est.cell} network")
        cell, phi = est.cell, phi or est.phi
        weights = weights or est.weights
        given = {k: (getattr(est, k) if v is None else v) for k, v in given.items()}
    else:
        missing = [k for k in ("sigma_w", "sigma_v") if given[k] is None]
        if missing:
            raise ProbeParameterError(
                f"probe 'meanfield': without a system, pass {' and '.join(missing)} (or a System to estimate them from)"
            )
        defaults = {"sigma_b": 0.0, "mu_b": 0.0, "R": 1.0, "sigma12": 1.0}
        given = {k: (defaults[k] if v is None else v) for k, v in given.items()}
    cell = cell or "vanilla"
    phi = phi or "tanh"
    weights = weights or "gaussian"
    ds = theory_dataset(cell, phi, given, weights=weights, horizons=horizons, correlations=correlations)
    if est is not None:
        from .compare import measured

        ds = ds.merge(measured(system, est, horizons=horizons, measure=measure, steps=steps, samples=samples,
                               mc_networks=mc_networks, mc_steps=mc_steps, seed=seed))
        ds.attrs["estimate"] = json.dumps({k: v for k, v in est.hyper().items()}, sort_keys=True)
        ds.attrs["estimate_notes"] = "; ".join(est.notes)
    return ds
