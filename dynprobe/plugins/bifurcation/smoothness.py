"""The ``smoothness`` probe: the cost V(θ(s)) along a parameter path and its Lipschitz
constants as the sequence length N grows (attractors paper Thm 1, Fig. 1b).

V_N(s) = (1/N) Σ_{t} l(y_t, ŷ_t(θ(s))) over N steps (after an optional burn-in), for a loss l
(squared error, or the sigmoid cross-entropy of the theorem). Thm 1: the Lipschitz constant of
V is O(L_f^{2N}) when L_f > 1, O(N) when L_f = 1 and O(1) when L_f < 1 (and O(L_f^{3N}), O(N³),
O(1) for ∇V). Along the path, finite differences on the grid of s give the directional estimates

    L_V(N) ≈ max_i |V(s_{i+1}) − V(s_i)| / (s_{i+1} − s_i),
    L'_V(N) ≈ max_i |V′_{i+1} − V′_i| / (m_{i+1} − m_i),   V′_i the slope at midpoint m_i,

which are lower bounds on the true constants at the grid's resolution (they saturate at
range(V)/Δs once V varies on scales finer than Δs — refine the grid to see further).

Targets: by default the System's own outputs at θ (s = 1 on the ``scale`` path is θ itself) from
its initial state — the paper's system-identification setting of Fig. 1(b) — or a task
(:class:`dynprobe.tasks.SequenceData`) with a target at every step, such as ``sine_generation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System
from dynprobe.drives import sequence
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData, sequence_data

from .paths import ParamPath, resolve_path
from .probe import parse_values

__all__ = ["smoothness", "lipschitz_estimates"]

LOSSES = ("mse", "bce")
RESOLVED = 0.3
"""An estimate above this fraction of range(V)/Δs is limited by the grid, not by the cost."""


def lipschitz_estimates(s: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(L_V, L'_V, slope)`` from ``V[..., S]`` on the sorted grid ``s[S]`` by finite differences."""
    ds = np.diff(s)
    slope = np.diff(V, axis=-1) / ds
    mid = 0.5 * (s[1:] + s[:-1])
    curvature = np.diff(slope, axis=-1) / np.diff(mid) if len(mid) > 1 else np.zeros((*V.shape[:-1], 0))
    lv = np.abs(slope).max(axis=-1)
    lg = np.abs(curvature).max(axis=-1) if curvature.shape[-1] else np.full(V.shape[:-1], np.nan)
    return lv, lg, slope


def _outputs(system: System, h: Tensor) -> Tensor:
    return system.output(h) if system.readout is not None else h


def _loss(kind: str, y_hat: Tensor, y: Tensor) -> Tensor:
    if kind == "mse":
        return (y_hat - y) ** 2
    return torch.nn.functional.binary_cross_entropy_with_logits(y_hat, y.expand_as(y_hat), reduction="none")


def _data(data: str | SequenceData, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    """Time-major ``(inputs [T, B, M], targets [T, B, P])`` of the first ``batch`` samples."""
    data = sequence_data("smoothness", data, samples=batch, seed=seed)
    if not data.every_step:
        raise ProbeParameterError(
            f"probe 'smoothness': data set {data.name!r} has no target at every step (targets {list(data.targets.shape)}); "
            "the cost of Thm 1 sums a loss over the steps — use a task with targets [sample, time, output]"
        )
    data = data.head(min(batch, data.samples))
    return data.time_major(), data.targets.transpose(0, 1)


@torch.no_grad()
def smoothness(
    system: System,
    *,
    path: str | ParamPath | Callable[[System, float], System] = "scale",
    values: Sequence[float] | str = "0.5:2.0:301",
    lengths: Sequence[int] = (10, 20, 50, 100),
    data: str | SequenceData | None = None,
    batch: int = 16,
    loss: str = "mse",
    burn_in: int = 0,
    seed: int = 0,
) -> xr.Dataset:
    """The cost V_N(θ(s)) along a parameter path and finite-difference Lipschitz estimates of
    V and ∇V as the sequence length N grows (attractors paper Thm 1 and Fig. 1b).

    Parameters
    ----------
    system
        A single System; with a readout its outputs are compared, otherwise its full state.
    path, values
        The parameter path θ(s) and the grid of s (as for ``bifurcation``); sorted ascending.
    lengths
        Sequence lengths N at which V_N is evaluated (all from one simulation of max(N) steps).
    data
        ``None``: targets are the System's own outputs at θ from its initial state (the sample
        drawn first by its ``init`` — the model's start state when it has one), driven by its
        own drive. Otherwise a data set with a target at every step — an installed data set's
        name (built with ``samples=batch`` and ``seed`` when it takes them, e.g.
        ``"sine_generation"``) or a :class:`dynprobe.tasks.SequenceData`: the model is driven by
        its inputs (a ``sequence`` drive) from its start state (the ``init`` center, else zeros —
        what a module's forward starts from) and compared with the targets.
    batch
        Sequences of the data set used (the first ``batch``).
    loss
        ``"mse"`` (squared error) or ``"bce"`` (sigmoid cross-entropy), the losses of Thm 1.
    burn_in
        Steps excluded from the sum before the first of the N counted ones.
    seed
        Seeds the start state.

    Returns
    -------
    xarray.Dataset
        ``loss[length, param]`` (V_N(s)), ``lipschitz_loss[length]`` and ``lipschitz_grad[length]``
        (finite-difference estimates of the Lipschitz constants of V and ∇V along the path),
        ``slope[length, midpoint]`` (dV/ds between grid points), ``lipschitz_ceiling[length]``
        (range(V)/min Δs: estimates near it are limited by the grid), ``growth_rate`` (least-squares
        slope of log L_V against N, 1/step; ≈ 2 log L_f in the expanding regime; NaN when fewer than
        two lengths are resolved) and
        ``diverged[param]``.

    References
    ----------
    Attractors paper §4.1 (Fig. 1b), §4.2 (Thm 1, eq. 6–7); Ribeiro et al. (2019).
    """
    if loss not in LOSSES:
        raise ProbeParameterError(f"probe 'smoothness': loss {loss!r} is not one of {', '.join(LOSSES)}")
    Ns = sorted({int(n) for n in lengths})
    if not Ns or Ns[0] < 1 or burn_in < 0:
        raise ProbeParameterError(f"probe 'smoothness': lengths must be >= 1 and burn_in >= 0 (got {lengths}, {burn_in})")
    vals = parse_values(values)
    if len(vals) < 3 or np.any(np.diff(vals) <= 0):
        raise ProbeParameterError("probe 'smoothness': values must be at least 3 strictly increasing numbers")
    T = burn_in + Ns[-1]
    the_path = resolve_path(path)
    h0 = system.initial_state(1, seed=seed)
    if data is None:
        teacher = system
        inputs = None
        ref = teacher.trajectory(h0, T)[1:]  # [T, 1, N]
        targets = _outputs(teacher, ref)
        base = system
    else:
        inputs, targets = _data(data, batch, seed)
        base = system.with_drive(sequence(inputs.to(system.dtype)))
        center = system.init.center
        start = torch.zeros(system.state_dim) if center is None else center.reshape(-1)
        h0 = start.to(dtype=system.dtype, device=system.device).expand(inputs.shape[1], -1)
        if inputs.shape[0] < T:
            raise ProbeParameterError(
                f"probe 'smoothness': the data have {inputs.shape[0]} steps; need burn_in + max(lengths) = {T}"
            )
    ensemble = the_path.build(base, vals)
    if inputs is not None:
        ensemble = ensemble.with_drive(sequence(inputs.to(ensemble.dtype)))
    traj = ensemble.trajectory(h0.expand(len(vals), *h0.shape).contiguous(), T)[1:]  # [T, S, B, N]
    y_hat = _outputs(ensemble, traj)
    y = targets[:T].to(y_hat.dtype).unsqueeze(1)  # [T, 1, B, P]
    if y.shape[-1] != y_hat.shape[-1]:
        raise ProbeParameterError(
            f"probe 'smoothness': the model gives {y_hat.shape[-1]} outputs but the targets have {y.shape[-1]}; "
            "wrap the model with a readout of the right width"
        )
    per_step = _loss(loss, y_hat, y).mean(dim=(-1, -2)).to(torch.float64).cpu().numpy()  # [T, S]
    diverged = ~np.isfinite(per_step).all(axis=0)
    cums = np.cumsum(per_step[burn_in:], axis=0)
    V = np.stack([cums[n - 1] / n for n in Ns])  # [len, S]
    lv, lg, slope = _finite(vals, V, diverged)
    with np.errstate(invalid="ignore"):
        ceiling = (np.nanmax(V, axis=1) - np.nanmin(V, axis=1)) / np.diff(vals).min()
    resolved = lv < RESOLVED * ceiling
    good = np.isfinite(lv) & (lv > 0) & resolved
    growth = float(np.polyfit(np.asarray(Ns)[good], np.log(lv[good]), 1)[0]) if good.sum() >= 2 else float("nan")
    mid = 0.5 * (vals[1:] + vals[:-1])
    coords = {
        "param": ("param", vals, {"long_name": the_path.long_name, "units": the_path.units}),
        "length": ("length", np.asarray(Ns), {"long_name": "sequence length N", "units": "step"}),
        "midpoint": ("midpoint", mid, {"long_name": f"midpoint of {the_path.long_name}", "units": the_path.units}),
    }
    return xr.Dataset(
        {
            "loss": (("length", "param"), V, {"long_name": f"cost V_N ({loss})", "units": "1"}),
            "lipschitz_loss": ("length", lv, {"long_name": "finite-difference Lipschitz estimate of V along the path",
                                              "units": "1"}),
            "lipschitz_grad": ("length", lg, {"long_name": "finite-difference Lipschitz estimate of dV/ds", "units": "1"}),
            "slope": (("length", "midpoint"), slope, {"long_name": "dV/ds between grid points", "units": "1"}),
            "lipschitz_ceiling": ("length", ceiling, {"long_name": "largest value the grid can resolve: range(V) / min ds",
                                                      "units": "1"}),
            "resolved": ("length", resolved, {"long_name": f"L_V below {RESOLVED} x the grid ceiling (else: the cost "
                                              "varies on scales finer than the grid)", "units": "1"}),
            "growth_rate": ((), growth, {"long_name": "slope of log L_V against N", "units": "1/step"}),
            "diverged": ("param", diverged, {"long_name": "simulation became non-finite", "units": "1"}),
        },
        coords=coords,
        attrs={"path": the_path.describe(), "loss_function": loss, "burn_in": int(burn_in),
               "targets": "own outputs at theta" if data is None else (data if isinstance(data, str) else data.name),
               "state_dim": system.state_dim},
    )


def _finite(vals: np.ndarray, V: np.ndarray, diverged: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if diverged.any():
        import warnings

        warnings.warn(f"smoothness: {int(diverged.sum())} parameter values diverged; they are flagged in 'diverged' "
                      "and left out of the Lipschitz estimates", RuntimeWarning, stacklevel=3)
    keep = ~diverged
    lv, lg, _ = lipschitz_estimates(vals[keep], V[:, keep]) if keep.sum() >= 3 else (
        np.full(V.shape[0], np.nan), np.full(V.shape[0], np.nan), None)
    _, _, slope = lipschitz_estimates(vals, V)
    return lv, lg, slope
