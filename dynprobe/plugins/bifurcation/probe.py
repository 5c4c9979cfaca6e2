"""The ``bifurcation`` probe: orbit diagrams of a System along a parameter path, classified.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.3 (bifurcation diagrams:
steady-state values under a constant input against a parameter s), §4.1 and Fig. 1 (the chaotic
LSTM along θ(s) = s·θ_true, 200 steps with the first 100 discarded), §5 and Fig. 4, 7, 8
(diagrams over training epochs; the 2-D view (y_t, y_t − y_{t−1})).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.tangent import qr_iterate

from .classify import REGIMES, classify
from .orbit import make_projection, record_orbits, signature_basis
from .paths import ParamPath, resolve_path
from .stacked import Checkpoints
from .verify import refine_attractors, verify_periods

__all__ = ["bifurcation", "parse_values", "ATTRACTOR_TOL"]

ATTRACTOR_TOL = 1e-3
"""Relative distance within which two converged periodic orbits count as one attractor."""
QR_INTERVAL = 8
TRACE_PARAM_STEPS = 1e8
"""Parameters (all swept networks) × tangent steps from which the exponent run is traced."""
LOOPED_NOTE = ("looped: the path's Systems have different step functions, so each value is stepped with its own "
               "System in a Python loop (same results as vmap, slower); return system.with_params(...) to vmap them")


def parse_values(values: Sequence[float] | str | np.ndarray) -> np.ndarray:
    """Swept values from a sequence, or the text ``"start:stop:num"`` (a linspace)."""
    if isinstance(values, str):
        parts = values.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError as err:
            raise ProbeParameterError(
                f"probe 'bifurcation': values {values!r}: expected 'start:stop:num' or a list of numbers"
            ) from err
        return np.linspace(start, stop, num)
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ProbeParameterError("probe 'bifurcation': values must be a non-empty list of finite numbers")
    return arr


def _initial_states(system: System, samples: int, spread: float, seed: int) -> torch.Tensor:
    """``samples`` states from the System's init; with ``spread`` > 0 the second half is drawn
    from N(center, spread²) instead (the paper's very spread initial states, std 100)."""
    h = system.initial_state(samples, seed=seed)
    n_wide = samples // 2 if spread > 0 else 0
    if n_wide:
        gen = torch.Generator().manual_seed(int(seed) + 104729)
        center = system.init.center
        base = torch.zeros(system.state_dim, dtype=torch.float64) if center is None else center.to("cpu", torch.float64)
        wide = base.reshape(1, -1) + spread * torch.randn(n_wide, system.state_dim, generator=gen, dtype=torch.float64)
        h = torch.cat([h[: samples - n_wide], wide.to(dtype=h.dtype, device=h.device)])
    return h


def _largest_exponent(
    ensemble: System, h: torch.Tensor, *, steps: int, start: int, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Largest Lyapunov exponent per trajectory by a short QR run (k = 1), and divergence flags."""
    gen = torch.Generator().manual_seed(int(seed) + 1)
    q = torch.randn(*h.shape, 1, generator=gen, dtype=torch.float64).to(dtype=h.dtype, device=h.device)
    q, _ = qr_positive(q)
    rows = int(np.prod(h.shape[:-1]))
    warm = max(2, steps // 4)
    # trace when the run is long in rows or heavy in parameters: an eager tangent step of a stacked
    # sweep costs ~3x the traced one (LSTM, N = 1024, 3 values: 23 vs 7 ms), a trace ~0.5 s once
    weights = sum(int(v.numel()) for v in ensemble.params.values())
    heavy = rows * (warm + steps) >= 20000 or weights * (warm + steps) >= TRACE_PARAM_STEPS
    tangent = TangentMap(ensemble, trace=True if heavy else None, expected_calls=warm + steps)
    # align the tangent vector with the most expanding direction first (removes the log|c₁|/T bias)
    pre = qr_iterate(tangent, h, q, steps=warm, start=start, reorth_every=min(QR_INTERVAL, max(1, warm // 2)))
    out = qr_iterate(tangent, pre.h, pre.Q, steps=steps, start=start + warm,
                     reorth_every=min(QR_INTERVAL, max(1, steps // 2)))
    lam = (out.log_r[..., 0] / steps).cpu().numpy()
    return lam, (pre.diverged | out.diverged).cpu().numpy(), tangent.mode


def _defaults() -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(bifurcation).parameters.items() if p.default is not p.empty}


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    return isinstance(value, (int, float, str)) and type(value) is type(default) and value == default


def _sweep_preset(name: str) -> dict[str, Any]:
    from dynprobe.registry import registry

    spec = registry().model(name)
    preset = dict(spec.system_defaults.get("bifurcation", {}) or {})
    if not preset:
        have = [m.name for m in registry().models().values() if m.system_defaults.get("bifurcation")]
        raise ProbeParameterError(
            f"probe 'bifurcation': model {name!r} registers no sweep; models with one: {', '.join(have) or '(none)'}"
        )
    return preset


def bifurcation(
    system: System | None,
    *,
    path: str | ParamPath | Callable[[System, float], System] = "scale",
    values: Sequence[float] | str | None = None,
    burn_in: int = 100,
    steps: int = 100,
    samples: int = 8,
    projection: str | Callable[[torch.Tensor], torch.Tensor] = "mean",
    spread: float = 0.0,
    exponent_steps: int | None = None,
    max_period: int | None = None,
    period_tol: float | None = None,
    exponent_tol: float = 0.01,
    escape: float = 1e6,
    verify: int = 3,
    sweep: str | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """Orbit diagram along a parameter path, each value classified (fixed point … chaos).

    For each swept value s the System θ(s) is iterated from ``samples`` initial states;
    ``burn_in`` steps are discarded and ``steps`` states recorded as a scalar projection. All
    values are stepped at once: the path stacks θ(s₁…s_S) along a leading axis and the step is
    ``vmap``-ed over it. A short QR run (k = 1, ``exponent_steps`` steps) gives the largest
    Lyapunov exponent of every trajectory; periods, attractor counts and regimes follow the
    rules of :mod:`dynprobe.plugins.bifurcation.classify`. (The QR run first spends ``exponent_steps // 4``
    steps aligning its tangent vector, so the estimate carries no log|c₁|/T start-up bias.)

    Parameters
    ----------
    system
        A single (non-ensemble) System; ``None`` only with a :class:`Checkpoints` path.
    path
        ``"scale"`` (θ(s) = s·θ), ``"scale:NAME,..."``, ``"input"`` (u = s·ū), ``"bias_mean"``,
        ``"scalar:NAME"``, a :class:`~dynprobe.plugins.bifurcation.paths.ParamPath` (e.g.
        ``Checkpoints(modules, labels=epochs)``), or a function ``(system, s) -> System``.
    values
        The swept values, or ``"start:stop:num"``; default: the path's own range.
    burn_in, steps
        Discarded transient and recorded steps (the paper: 100 and 100).
    samples
        Initial states per value, from the System's ``init``.
    projection
        ``"mean"`` (state mean), ``"unit:K"``, ``"readout"`` / ``"readout:J"``, or a function
        ``h [..., N] -> [...]``. The 2-D view (y_t, y_t − y_{t−1}) is drawn from it.
    spread
        When > 0, half of the samples start from N(center, spread²) — the paper's very spread
        initial states (std 100) that reveal coexisting attractors.
    exponent_steps
        Steps of the QR run for the largest exponent (default: ``steps``).
    max_period
        Longest period looked for (default: min(steps // 2, 64)).
    period_tol
        Relative tolerance of the period test (default 1e-6 in float64, 1e-4 in float32).
    exponent_tol
        |λ| below this (1/step) counts as zero: quasi-periodic rather than chaotic.
    escape
        A state beyond this magnitude counts as diverged.
    verify
        Cross-check up to this many periodic values with the ``period3`` probe's orbit finder
        when one is installed (looked up at run time; 0 = off).
    sweep
        Fill the options left at their defaults from the sweep a model registers (e.g.
        ``"lstm2d_chaotic"``: the paper's Fig. 1 sweep).
    seed
        Seeds the initial states, the tangent vector and the signature basis.

    Returns
    -------
    xarray.Dataset
        ``orbit[param, sample, time]``, ``regime[param]`` (fixed_point / periodic /
        quasi_periodic / chaotic / divergent / multistable), ``period[param]``,
        ``max_exponent[param]`` (1/step), ``attractors[param]``, ``converged[param]``,
        ``period_verified[param]`` (1 confirmed, 0 not found, −1 not checked),
        ``sample_exponent``, ``sample_period``, ``attractor`` and ``diverged`` per
        ``[param, sample]``. Attrs name the path and the projection.

    References
    ----------
    Attractors paper §3.3, §4.1 (Fig. 1), §5 (Fig. 4, 7, 8).

    Example
    -------
    >>> ds = dynprobe.run("bifurcation", dynprobe.load_system("lstm2d_chaotic"), sweep="lstm2d_chaotic")
    >>> ds.regime.sel(param=1.0, method="nearest").item()
    'chaotic'
    """
    if sweep is not None:
        given = dict(path=path, values=values, burn_in=burn_in, steps=steps, samples=samples, projection=projection,
                     spread=spread, exponent_steps=exponent_steps)
        defaults = _defaults()
        for key, value in _sweep_preset(sweep).items():
            if key not in given:
                raise ProbeParameterError(f"probe 'bifurcation': sweep {sweep!r} sets unknown option {key!r}")
            if _is_default(given[key], defaults[key]):
                given[key] = value
        path, values, burn_in, steps, samples = given["path"], given["values"], given["burn_in"], given["steps"], given["samples"]
        projection, spread, exponent_steps = given["projection"], given["spread"], given["exponent_steps"]
    the_path = resolve_path(path)
    if system is None:
        if not isinstance(the_path, Checkpoints) or not the_path.items:
            raise ProbeParameterError("probe 'bifurcation': needs a System (or a Checkpoints path to take one from)")
        import dynprobe

        first = the_path.items[0]
        system = first if isinstance(first, System) else dynprobe.wrap(first)
    if system.networks is not None:
        raise ProbeParameterError(
            f"probe 'bifurcation': {system.name} is an ensemble of {system.networks}; sweep one network "
            "(system.network(i)) or pass the members as a Checkpoints path"
        )
    exponent_steps = steps if exponent_steps is None else int(exponent_steps)
    if burn_in < 0 or steps < 2 * 8 or samples < 1 or exponent_steps < 2:
        raise ProbeParameterError(
            f"probe 'bifurcation': need burn_in >= 0, steps >= 16, samples >= 1, exponent_steps >= 2 "
            f"(got {burn_in}, {steps}, {samples}, {exponent_steps})"
        )
    if not spread >= 0 or not escape > 0:
        raise ProbeParameterError(f"probe 'bifurcation': spread must be >= 0 and escape > 0 (got {spread}, {escape})")
    pmax = min(steps // 2, 64) if max_period is None else int(max_period)
    if not 1 <= pmax <= steps // 2:
        raise ProbeParameterError(f"probe 'bifurcation': max_period={pmax} must lie in 1..steps/2={steps // 2}")
    tol = (1e-6 if system.dtype == torch.float64 else 1e-4) if period_tol is None else float(period_tol)
    vals = parse_values(the_path.default_values(system) if values is None else values)

    ensemble = the_path.build(system, vals)
    if ensemble.networks != len(vals):
        raise ProbeParameterError(
            f"probe 'bifurcation': path {the_path.describe()!r} built {ensemble.networks} networks for {len(vals)} values"
        )
    ensemble.check_run(burn_in + steps + exponent_steps + max(2, exponent_steps // 4))
    project, proj_name, proj_units = make_projection(ensemble, projection)
    h0 = _initial_states(system, samples, spread, seed).to(device=ensemble.device, dtype=ensemble.dtype)
    h0 = h0.expand(len(vals), *h0.shape).contiguous()
    basis = signature_basis(system.state_dim, seed=seed, dtype=ensemble.dtype, device=ensemble.device)
    rec = record_orbits(ensemble, h0, burn_in=burn_in, steps=steps, project=project, basis=basis, escape=escape)
    lam, lam_diverged, mode = _largest_exponent(ensemble, rec.final, steps=exponent_steps, start=burn_in + steps, seed=seed)
    diverged = rec.diverged.cpu().numpy() | lam_diverged
    lam = np.where(diverged, np.nan, lam)
    z = rec.signature.cpu().numpy().astype(np.float64)
    cls = classify(z, lam, diverged, pmax=pmax, period_tol=tol, attractor_tol=ATTRACTOR_TOL, exponent_tol=exponent_tol)
    scale = np.abs(z[-2 * max(pmax, 8):]).max(axis=(0, -1))  # [S, B], as least_periods measures it
    cls, checked, refine_note = refine_attractors(ensemble, rec.final, cls, scale, ATTRACTOR_TOL)
    verified, finder_note = verify_periods(ensemble, rec.final, cls, limit=int(verify), tol=ATTRACTOR_TOL)
    if diverged.any():
        import warnings

        warnings.warn(
            f"bifurcation: {int(diverged.sum())} of {diverged.size} trajectories diverged (|h| > {escape:g} or "
            "non-finite); they are flagged in 'diverged' and their orbits are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    orbit = rec.orbit.cpu().numpy().astype(np.float64)
    return _dataset(
        the_path, vals, orbit, lam, diverged, cls, verified, checked,
        attrs={
            "path": the_path.describe(),
            "path_stacking": LOOPED_NOTE if ensemble.looped else "vmap",
            "projection": projection if isinstance(projection, str) else f"function {getattr(projection, '__qualname__', '')}",
            "burn_in": int(burn_in),
            "steps": int(steps),
            "exponent_steps": int(exponent_steps),
            "state_dim": system.state_dim,
            "max_period": pmax,
            "period_tol": tol,
            "exponent_tol": float(exponent_tol),
            "attractor_tol": ATTRACTOR_TOL,
            "escape": float(escape),
            "spread": float(spread),
            "linearization": mode,
            "period_finder": finder_note,
            "attractor_check": refine_note,
            "regimes": ",".join(REGIMES),
        },
        proj=(proj_name, proj_units), burn_in=burn_in,
    )


def _dataset(path: ParamPath, vals: np.ndarray, orbit: np.ndarray, lam: np.ndarray, diverged: np.ndarray, cls: Any,
             verified: np.ndarray, checked: np.ndarray, *, attrs: dict[str, Any], proj: tuple[str, str],
             burn_in: int) -> xr.Dataset:
    S, B, T = orbit.shape
    pd = ("param", "sample")
    coords = {
        "param": ("param", vals, {"long_name": path.long_name, "units": path.units}),
        "sample": ("sample", np.arange(B), {"long_name": "initial condition", "units": "1"}),
        "time": ("time", np.arange(burn_in, burn_in + T), {"long_name": "step", "units": "step"}),
    }
    data = {
        "orbit": (("param", "sample", "time"), orbit, {"long_name": proj[0], "units": proj[1]}),
        "regime": ("param", cls.regime, {"long_name": "dynamical regime", "units": "1"}),
        "period": ("param", cls.period, {"long_name": "least period (0: none or several attractors)", "units": "step"}),
        "max_exponent": ("param", cls.max_exponent, {"long_name": "largest Lyapunov exponent (max over attractors)",
                                                     "units": "1/step"}),
        "attractors": ("param", cls.attractors, {"long_name": "distinct attractors reached (escape counts as one)",
                                                 "units": "1"}),
        "converged": ("param", cls.converged, {"long_name": "periodic attractors met the period tolerance", "units": "1"}),
        "period_verified": ("param", verified, {"long_name": "period confirmed by the period3 orbit finder "
                                                "(1 yes, 0 no, -1 not checked)", "units": "1"}),
        "orbits_refined": ("param", checked, {"long_name": "periodic samples grouped by the orbit Newton refines them "
                                              "to (1 all, 0 some, -1 none periodic or not checked)", "units": "1"}),
        "sample_exponent": (pd, lam, {"long_name": "largest Lyapunov exponent of the trajectory", "units": "1/step"}),
        "sample_period": (pd, cls.sample_period, {"long_name": "least period of the trajectory (0: none)", "units": "step"}),
        "attractor": (pd, cls.attractor, {"long_name": "attractor id at this value (-1: diverged)", "units": "1"}),
        "diverged": (pd, diverged, {"long_name": "trajectory escaped (non-finite or beyond escape)", "units": "1"}),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)

