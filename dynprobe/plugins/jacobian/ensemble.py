"""The share of random networks whose Jacobian expands, as a function of the weight scale σ
(the scrambling paper's Fig. 5), over stacked ensembles.

For every σ, ``networks`` modules from ``factory(sigma, seed)`` are stacked into one ensemble
System (parameters with a leading ``network`` axis, one ``vmap``-ed step) and the ``jacobian``
probe is run on it once — not once per network.

References
----------
Scrambling paper §5, Fig. 5 ("% of RNNs having large Jacobian norm" against σ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from dynprobe.drives import Drive

__all__ = ["norm_fraction"]


def norm_fraction(
    factory: Callable[[float, int], Any],
    sigmas: Sequence[float],
    *,
    networks: int = 100,
    horizons: Sequence[int] = (1, 10),
    samples: int = 1,
    burn_in: int = 0,
    drive: Drive | None = None,
    seed: int = 0,
    name: str = "sigma",
) -> xr.Dataset:
    """Fraction of networks with ‖∂h_T/∂h_0‖₂ > 1 (per horizon) and with one-step spectral norm
    and spectral radius above 1, for each σ in ``sigmas``.

    Parameters
    ----------
    factory
        ``factory(sigma, seed) -> nn.Module`` (or System) — one random network.
    sigmas
        The weight scales; the result's ``param`` coordinate, named ``name``.
    networks, horizons, samples, burn_in, drive, seed
        Ensemble size, horizons T, trajectories per network, burn-in, input drive, seed.

    Returns
    -------
    xarray.Dataset
        ``fraction_norm_exceeds_one[param, horizon]``, ``fraction_step_norm_exceeds_one[param]``,
        ``fraction_step_radius_exceeds_one[param]`` (both at the first step), and
        ``median_log_spectral_norm[param, horizon]``.

    References
    ----------
    Scrambling paper Fig. 5.
    """
    import dynprobe

    from .probe import jacobian

    frac, step_norm, step_radius, median = [], [], [], []
    for i, sigma in enumerate(sigmas):
        members = [factory(float(sigma), seed + 100_003 * i + k) for k in range(networks)]
        system = dynprobe.wrap(members, drive=drive, dtype=torch.float64)
        ds = jacobian(system, horizons=tuple(horizons), samples=samples, burn_in=burn_in, gradient=False, seed=seed)
        frac.append(ds.fraction_norm_exceeds_one.values)
        first = ds.isel(step=0)
        step_norm.append(float((first.step_spectral_norm > 1).mean()))
        step_radius.append(float((first.step_spectral_radius > 1).mean()))
        median.append(ds.log_spectral_norm.median(("network", "sample")).values)
    coords = {
        "param": ("param", np.asarray(sigmas, dtype=np.float64), {"long_name": name, "units": "1"}),
        "horizon": ("horizon", np.asarray(sorted(set(int(t) for t in horizons)), dtype=np.int64),
                    {"long_name": "horizon T", "units": "step"}),
    }
    return xr.Dataset(
        {
            "fraction_norm_exceeds_one": (["param", "horizon"], np.asarray(frac),
                                          {"long_name": "fraction of networks with ||dh_T/dh_0||_2 > 1", "units": "1"}),
            "fraction_step_norm_exceeds_one": (["param"], np.asarray(step_norm),
                                               {"long_name": "fraction with one-step ||J_1||_2 > 1", "units": "1"}),
            "fraction_step_radius_exceeds_one": (["param"], np.asarray(step_radius),
                                                 {"long_name": "fraction with one-step spectral radius > 1",
                                                  "units": "1"}),
            "median_log_spectral_norm": (["param", "horizon"], np.asarray(median),
                                         {"long_name": "median log ||dh_T/dh_0||_2", "units": "1"}),
        },
        coords=coords,
        attrs={"networks": int(networks), "samples": int(samples)},
    )
