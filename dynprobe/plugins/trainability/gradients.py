"""The ``gradient_propagation`` probe: ‖∂L/∂h_t‖ for every t, with exponential rates fitted.

Backpropagation through time carries ∂L/∂h_t = J_tᵀ ∂L/∂h_{t+1} (+ a direct term when there is a
target at every step), so the gradient norms grow or decay like the product of Jacobians: their
exponential rate per step, read backwards from the readout, approaches the largest Lyapunov
exponent (fading-memory paper eq. 15: for a WCRNN, log|eig(R)|). Subcritical networks show
vanishing, supercritical ones exploding gradients at a constant rate (Fig. 2D).

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.2 (eq. 10), §3 (eq. 15), §4.1
and Fig. 2D; Pascanu, Mikolov & Bengio (2013); Arjovsky et al. (2016) for gradient norms.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.tangent import qr_iterate
from dynprobe.tasks import SequenceData

from .objective import LossName, Objective, ReadoutChoice, build_objective

__all__ = ["gradient_propagation", "state_gradients", "fit_rate", "finite_time_lyapunov"]


def state_gradients(objective: Objective) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(∂L/∂h_t for t = 0..T as [time, *lead, batch, N], loss [*lead], states [time, *lead, batch, N])``
    by one backward pass through the rollout; L is the batch-mean loss of each network."""
    with torch.enable_grad():
        states = objective.rollout(track_h0=True)
        loss = objective.loss_from_states(states)
        grads = torch.autograd.grad(loss.sum(), states)
    return torch.stack(grads).detach(), loss.detach(), torch.stack(states).detach()


def fit_rate(lag: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope of log(norm) against ``lag`` along the last axis, and its standard error.

    Points with a zero or non-finite norm are left out; fewer than 3 points give NaN.
    """
    y = np.log(np.where(norms > 0, norms, np.nan))
    ok = np.isfinite(y)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(ok, lag, np.nan)
        xm = np.nanmean(x, -1, keepdims=True)
        ym = np.nanmean(np.where(ok, y, np.nan), -1, keepdims=True)
        sxx = np.nansum((x - xm) ** 2, -1)
        slope = np.nansum((x - xm) * (y - ym), -1) / sxx
        resid = np.where(ok, y - ym - slope[..., None] * (x - xm), 0.0)
        stderr = np.sqrt((resid**2).sum(-1) / np.maximum(n - 2, 1) / sxx)
    bad = n < 3
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, stderr)


def finite_time_lyapunov(objective: Objective, seed: int) -> torch.Tensor:
    """Largest finite-time Lyapunov exponent ``[*lead, batch]`` along the same trajectories (h_0 = 0,
    the batch's inputs), by the QR method with one tangent vector (fading-memory App. A)."""
    import dynprobe

    system = objective.system.with_drive(dynprobe.sequence(objective.inputs))
    lead = system.lead_shape(objective.batch)
    h0 = objective.inputs.new_zeros(*lead, system.state_dim)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    # the same tangent start for every network of an ensemble (common random numbers, as for h_0)
    q0 = torch.randn(objective.batch, system.state_dim, 1, generator=gen, dtype=torch.float64).to(h0)
    q0 = q0.expand(*lead, system.state_dim, 1)
    with torch.no_grad():
        run = qr_iterate(TangentMap(system, expected_calls=objective.steps), h0, qr_positive(q0)[0],
                         steps=objective.steps, blocks=1)
    return run.log_r[..., 0] / objective.steps


def gradient_propagation(
    system: System,
    *,
    data: str | SequenceData = "adding",
    data_options: dict[str, Any] | None = None,
    batch: int = 128,
    loss: LossName = "auto",
    readout: ReadoutChoice = "system",
    fit_skip: int | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """Gradient norms ‖∂L/∂h_t‖ over time, their fitted exponential rate, and λ_max beside it.

    Runs the batch through the model from h_0 = 0, takes the loss of the readout, and backpropagates
    once. The rate is the least-squares slope of log‖∂L/∂h_t‖ against the lag T − t (per step,
    positive: exploding), fitted over lags ``fit_skip`` … T; it is compared with the largest
    finite-time Lyapunov exponent along the same trajectories.

    Parameters
    ----------
    system
        The model (an ensemble adds a leading ``network`` dimension; they share the readout).
    data, data_options, batch, loss, readout
        The task, as described in :mod:`dynprobe.plugins.trainability.objective`: a data-set name (built with
        ``data_options``) or a ``SequenceData``; ``batch`` samples; loss ``auto`` / ``mse`` / ``rms``
        / ``cross_entropy``; readout ``system`` (the System's head) or ``linear_init``.
    fit_skip
        Lags left out at the readout end before fitting (default T // 10: the gradient first
        aligns with the most expanding direction).
    seed
        Seeds the data (when built by name), a ``linear_init`` readout and the tangent vector.

    Returns
    -------
    xarray.Dataset
        ``grad_norm[network?, time]`` = ‖∂L/∂h_t‖ over batch and units, ``grad_norm_sample[network?,
        sample, time]`` (the rows: one sample's share of the batch loss), ``growth_rate`` and
        ``growth_rate_stderr[network?]`` (1/step), ``lyapunov_max[network?]`` (1/step),
        ``loss[network?]``, ``diverged[network?, sample]``; ``time`` is t = 0..T with coordinate ``lag``.

    References
    ----------
    Fading-memory paper §2.2, §3 eq. 15, §4.1 Fig. 2D.

    Example
    -------
    >>> model = dynprobe.model("wcrnn", input_size=2, alpha=0.9, output_size=1)
    >>> ds = dynprobe.run("gradient_propagation", model, data="adding", data_options={"T": 100})
    >>> float(ds.growth_rate)  # ≈ log 0.9
    """
    objective = build_objective("gradient_propagation", system, data=data, data_options=data_options, batch=batch,
                                loss=loss, readout=readout, seed=seed)
    T = objective.steps
    skip = T // 10 if fit_skip is None else int(fit_skip)
    if not 0 <= skip <= T - 3:
        raise ProbeParameterError(f"probe 'gradient_propagation': fit_skip={fit_skip} must lie in 0..T-3={T - 3}")
    grads, loss_val, states = state_gradients(objective)
    per_sample = torch.linalg.vector_norm(grads, dim=-1).to(torch.float64)  # [time, *lead, batch]
    diverged = ~torch.isfinite(states).all(-1).all(0)  # [*lead, batch]
    per_sample = torch.where(diverged.unsqueeze(0), torch.nan, per_sample)
    total = torch.linalg.vector_norm(per_sample, dim=-1)  # [time, *lead]; NaN if any sample diverged
    norm = np.moveaxis(total.cpu().numpy(), 0, -1)  # [*lead, time]
    sample_norm = np.moveaxis(per_sample.cpu().numpy(), 0, -1)  # [*lead, batch, time]
    lag = T - np.arange(T + 1)
    window = lag >= skip
    rate, rate_se = fit_rate(lag[window], norm[..., window])
    lam = finite_time_lyapunov(objective, seed).to(torch.float64)
    lam = torch.where(diverged, torch.nan, lam).cpu().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lam_max = np.nanmean(lam, axis=-1) if lam.size else lam
    d = diverged.cpu().numpy()
    if d.any():
        warnings.warn(f"gradient_propagation: {int(d.sum())} of {d.size} trajectories diverged; flagged in 'diverged', "
                      "their network's grad_norm and rate are NaN", RuntimeWarning, stacklevel=3)
    ens = system.networks is not None
    net = ["network"] if ens else []
    coords: dict[str, Any] = {
        "time": ("time", np.arange(T + 1), {"long_name": "state index t (h_t after t inputs)", "units": "step"}),
        "lag": ("time", lag, {"long_name": "steps before the readout, T - t", "units": "step"}),
        "sample": ("sample", np.arange(objective.batch), {"long_name": "sequence of the batch", "units": "1"}),
    }
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    rate_attrs = {"units": "1/step"}
    ds = xr.Dataset(
        {
            "grad_norm": ([*net, "time"], norm, {"long_name": "gradient norm ||dL/dh_t|| (batch and units)", "units": "1"}),
            "grad_norm_sample": ([*net, "sample", "time"], sample_norm,
                                 {"long_name": "gradient norm of one sample's rows of dL/dh_t", "units": "1"}),
            "growth_rate": (net, rate, {"long_name": "fitted rate d log||dL/dh_t|| / d(T - t)", **rate_attrs}),
            "growth_rate_stderr": (net, rate_se, {"long_name": "standard error of the fitted rate", **rate_attrs}),
            "lyapunov_max": (net, lam_max, {"long_name": "largest finite-time Lyapunov exponent along the batch",
                                            **rate_attrs}),
            "loss": (net, loss_val.to(torch.float64).cpu().numpy(), {"long_name": f"{objective.loss} loss of the batch",
                                                                   "units": "1"}),
            "diverged": ([*net, "sample"], d, {"long_name": "trajectory became non-finite", "units": "1"}),
        },
        coords=coords,
        attrs={**objective.attrs(), "fit_lags": np.array([skip, T], dtype=np.int64)},
    )
    return ds
