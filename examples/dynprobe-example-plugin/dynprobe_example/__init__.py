"""A complete third-party probe in ~30 lines: per-unit mean and spread of the state on the
attractor, and the one-step contraction ‖J‖₂ averaged over states along the trajectory. Works on
single networks and on ensembles (a leading ``network`` dimension), on any device."""

from __future__ import annotations

import torch
import xarray as xr

import dynprobe
from dynprobe.labels import lead_dims, network_coords, unit_coords, variable
from dynprobe.linearize import jacobian


def state_stats(system: dynprobe.System, *, steps: int = 500, burn_in: int = 100, states: int = 20,
                seed: int = 0) -> xr.Dataset:
    """Mean and standard deviation of every unit after a burn-in, and the mean ‖J‖₂ at a few states.

    Parameters
    ----------
    steps
        Steps recorded after the burn-in.
    burn_in
        Discarded transient.
    states
        Evenly spaced recorded states at which ‖J‖₂ is taken (each costs an N×N Jacobian and its SVD).
    seed
        Seeds the initial state.
    """
    traj = system.trajectory(system.initial_state(1, seed=seed), burn_in + steps)[burn_in:]  # [T, *lead, 1, N]
    traj = traj.squeeze(-2).movedim(0, -2)  # [*lead, T, N]: time as the batch axis
    at = torch.linspace(0, steps - 1, min(states, steps)).round().long()
    norms = torch.linalg.matrix_norm(jacobian(system, traj[..., at, :]), ord=2)  # [*lead, states]
    lead = lead_dims(system)
    return xr.Dataset(
        {
            "mean": variable([*lead, "unit"], traj.mean(-2), "time mean of the state"),
            "std": variable([*lead, "unit"], traj.std(-2), "time standard deviation"),
            "jacobian_norm": variable(lead, norms.mean(-1), "mean spectral norm of J"),
        },
        coords={**network_coords(system), **unit_coords(system)},
    )


@dynprobe.hookimpl
def dynprobe_probes() -> list[dynprobe.Probe]:
    # dims: the result's dimensions, from dynprobe.schema.VOCABULARY; an axis of your own is
    # declared as dynprobe.Dimension(name, meaning=..., coordinate=..., units=..., kind=...)
    # suggest: the defaults `dynprobe diagnose` uses, sized so that the Jacobians stay cheap at large N
    return [dynprobe.Probe("state_stats", state_stats, reference="example plugin", dims=("unit",), suggest=suggest)]


def suggest(system: dynprobe.System) -> dict[str, int]:
    """20 states up to N ≈ 380, then fewer (an SVD costs ∝ N³): 11 at N = 512, 3 at N = 1024."""
    return {"states": max(3, min(20, 3_000_000 // system.state_dim ** 2))}
