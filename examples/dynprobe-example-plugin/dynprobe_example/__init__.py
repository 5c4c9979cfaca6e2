"""A complete third-party probe in ~30 lines: per-unit mean and spread of the state on the
attractor, and the one-step contraction ‖J‖₂ averaged along the trajectory. Works on single
networks and on ensembles (a leading ``network`` dimension), on any device."""

from __future__ import annotations

import torch
import xarray as xr

import dynprobe
from dynprobe.labels import lead_dims, network_coords, unit_coords, variable
from dynprobe.linearize import jacobian


def state_stats(system: dynprobe.System, *, steps: int = 500, burn_in: int = 100, seed: int = 0) -> xr.Dataset:
    """Mean and standard deviation of every unit after a burn-in, and the mean ‖J‖₂ at ~20 states.

    Parameters
    ----------
    steps
        Steps recorded after the burn-in.
    burn_in
        Discarded transient.
    seed
        Seeds the initial state.
    """
    traj = system.trajectory(system.initial_state(1, seed=seed), burn_in + steps)[burn_in:]  # [T, *lead, 1, N]
    traj = traj.squeeze(-2).movedim(0, -2)  # [*lead, T, N]: time as the batch axis
    norms = torch.linalg.matrix_norm(jacobian(system, traj[..., :: max(1, steps // 20), :]), ord=2)  # [*lead, ~20]
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
    return [dynprobe.Probe("state_stats", state_stats, reference="example plugin", dims=("unit",))]
