"""Theory next to the network: what the ``meanfield`` probe adds when given a System.

At the hyper-parameters estimated from the network's weights: the predicted χ₁, τ, λ_max =
½ log χ₁ and χ₁^T / σ²_JJᵀ(T); next to them the measured largest Lyapunov exponent (``lyapunov``
probe, k = 1, along the System's own drive), the measured mean squared singular value and JJᵀ
variance of the end-to-end Jacobian (``jacobian`` probe), and the Fig. 1 Monte-Carlo of the
pre-activation cosine similarity — with the network's own (tied) weights and with untied weights
drawn fresh from the estimated distributions — beside the theory's c^t. The other probes are
found through the registry (no import of their plugins), so each keeps its own conventions.

References
----------
Mean-field paper §3, Fig. 1; Haagerup & Larsen (2000) (λ_max = ½ log χ₁ for wide networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.drives import SequenceDrive

from .estimate import Estimate, network_weights, predict_point
from .montecarlo import cosine_mc, fig1_schedule
from .theory import Grid, cosine_trajectory

__all__ = ["measured", "SWITCH"]

SWITCH = 10
"""Step at which the Fig. 1 protocol switches the input similarity from 0 to 1."""


def _var(dims: Sequence[str], value, long_name: str, units: str = "1") -> tuple:
    return (list(dims), np.asarray(value), {"long_name": long_name, "units": units})


def measured(system: System, est: Estimate, *, horizons: Sequence[int], measure: bool, steps: int, samples: int,
             mc_networks: int, mc_steps: int, seed: int) -> xr.Dataset:
    """The estimate, the theory at it, and (``measure``) the measurements; see the module docstring."""
    import dynprobe

    pred = predict_point(est, horizons=horizons)
    v = pred.values
    h = ["horizon"]
    data = {
        f"estimated_{k}": _var([], getattr(est, k), f"{k} estimated from the network's weights"
                               + (" and drive" if k in ("R", "sigma12") else ""))
        for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R", "sigma12")
    }
    data.update({
        "chi_1_estimate": _var([], v["chi_1"], "chi_1 predicted at the estimated hyper-parameters"),
        "tau_estimate": _var([], v["tau"], "tau predicted at the estimated hyper-parameters", "step"),
        "lambda_max_estimate": _var([], v["lambda_max"], "largest Lyapunov exponent predicted, (1/2) log chi_1",
                                    "1/step"),
        "mean_sq_sv_estimate": _var(h, v["mean_sq_sv"], "chi_1^T predicted at the estimated hyper-parameters"),
        "var_jjt_estimate": _var(h, v["var_jjt"], "variance of the J J^T spectrum predicted at the estimate"),
    })
    coords = {}
    if isinstance(system.drive, SequenceDrive) and system.drive.inputs.ndim >= 3:
        samples = int(system.drive.inputs.shape[-2])  # one trajectory per input sequence of the drive
    if measure:
        lyap = dynprobe.run("lyapunov", system, k=1, steps=steps, samples=samples, seed=seed)
        lam = lyap.exponent_mean.isel(exponent=0)
        err = lyap.exponent_stderr.isel(exponent=0)
        if "network" in lam.dims:
            lam, err = lam.mean("network"), err.mean("network")
        data["lambda_max_measured"] = _var([], float(lam), "largest Lyapunov exponent measured (QR method)", "1/step")
        data["lambda_max_measured_stderr"] = _var([], float(err), "standard error of lambda_max_measured", "1/step")
        jac = dynprobe.run("jacobian", system, horizons=tuple(int(t) for t in horizons), samples=samples, seed=seed,
                           gradient=False, step_stats=False)
        over = [d for d in ("network", "sample") if d in jac.log_mean_sq_sv.dims]
        data["mean_sq_sv_measured"] = _var(h, np.exp(jac.log_mean_sq_sv.mean(over)).values,
                                           "mean squared singular value of the end-to-end Jacobian, measured")
        data["var_jjt_measured"] = _var(h, jac.var_jjt.mean(over).values,
                                        "variance of the J J^T spectrum, measured")
        schedule = fig1_schedule(mc_steps, SWITCH)
        grid = Grid.of(est.cell, est.phi, sigma_w=est.sigma_w, sigma_v=est.sigma_v, sigma_b=est.sigma_b,
                       mu_b=est.mu_b, R=est.R, sigma12=1.0)
        mean_term = v.get("mean_gate", v.get("mean_phi"))
        theory = cosine_trajectory(grid, schedule, np.asarray(v["q_star"]), np.asarray(mean_term))
        hyper = {k: getattr(est, k) for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R")}
        common = dict(q_star=float(v["q_star"]), Q_star=float(v["Q_star"]), phi=est.phi, weights=est.weights,
                      networks=mc_networks, seed=seed)
        one = system if system.networks is None else system.network(0)
        _, _, weights, _ = network_weights(one)
        own = {k: torch.as_tensor(weights[k]) for k in ("W", "V", "b")}
        tied = cosine_mc(est.cell, hyper, schedule, tied=True, params=own, **common)
        untied = cosine_mc(est.cell, hyper, schedule, tied=False, width=est.hidden_size, input_size=est.input_size,
                           **common)
        t = ["time"]
        data["cos_sim_theory"] = _var(t, theory, "pre-activation cosine similarity c^t, mean-field theory (eq. 2 / 8)")
        data["cos_sim_tied"] = _var(t, tied, "pre-activation cosine similarity c^t, this network (Monte-Carlo)")
        data["cos_sim_untied"] = _var(t, untied, "pre-activation cosine similarity c^t, untied weights (Monte-Carlo)")
        data["sigma12_schedule"] = _var(t, schedule, "input cosine similarity Sigma_12^t of the two copies")
        coords["time"] = ("time", np.arange(1, mc_steps + 1), {"long_name": "step", "units": "step"})
    return xr.Dataset(data, coords=coords)
