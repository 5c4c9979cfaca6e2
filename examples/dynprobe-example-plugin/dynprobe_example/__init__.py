"""A complete third-party probe in ~30 lines: per-unit mean and spread of the state on the
attractor, and the one-step contraction ‖J‖₂ averaged along the trajectory."""

from __future__ import annotations

import torch
import xarray as xr

import dynprobe
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
    traj = system.trajectory(system.initial_state(1, seed=seed), burn_in + steps)[burn_in:, 0]
    norms = torch.linalg.matrix_norm(jacobian(system, traj[:: max(1, steps // 20)]), ord=2)  # at ~20 states
    unit = {"long_name": "state coordinate", "units": "1"}
    coords = {"unit": ("unit", range(system.state_dim), unit),
              **{k: ("unit", v, {"long_name": k, "units": "1"}) for k, v in system.layout.coords().items()}}
    return xr.Dataset(
        {
            "mean": ("unit", traj.mean(0).numpy(), {"long_name": "time mean of the state", "units": "1"}),
            "std": ("unit", traj.std(0).numpy(), {"long_name": "time standard deviation", "units": "1"}),
            "jacobian_norm": ((), float(norms.mean()), {"long_name": "mean spectral norm of J", "units": "1"}),
        },
        coords=coords,
    )


@dynprobe.hookimpl
def dynprobe_probes() -> list[dynprobe.Probe]:
    return [dynprobe.Probe("state_stats", state_stats, reference="example plugin")]
