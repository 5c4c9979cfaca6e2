"""``sine_generation``: generate a sine wave whose frequency is given by a constant input.

Attractors paper §5.1 (after Sussillo & Barak 2013): the input is the constant ω, the target
sin(ω(t + 1)); 100 frequencies in [π/16, π/8], sequences of length 400. To solve it the network
must learn a limit cycle — a fixed point has to give way to oscillations (a Neimark–Sacker
bifurcation), which the bifurcation-over-epochs diagram shows (Fig. 4).
"""

from __future__ import annotations

import math

import torch

from dynprobe import DatasetSpec
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData

__all__ = ["sine_generation", "DATASETS"]


def sine_generation(
    samples: int = 100,
    T: int = 400,
    omega_min: float = math.pi / 16,
    omega_max: float = math.pi / 8,
    spacing: str = "linspace",
    seed: int = 0,
) -> SequenceData:
    """Constant-input sine generation.

    Parameters
    ----------
    samples, T
        Number of sequences (one frequency each) and their length.
    omega_min, omega_max
        Frequency interval (rad/step).
    spacing
        ``"linspace"`` (evenly spaced frequencies, the default) or ``"uniform"`` (drawn with ``seed``).
    seed
        Random seed for ``"uniform"``.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=T, channel=1]`` (ω at every step), ``targets [sample, time, output=1]``
        (sin(ω(t + 1)), t = 0 … T−1), ``task="regression"`` (a target at every step).

    References
    ----------
    Attractors paper §5.1; Sussillo & Barak (2013).

    Example
    -------
    >>> data = dynprobe.dataset("sine_generation")
    >>> data.inputs[:, 0, 0]  # the 100 frequencies
    """
    if samples < 1 or T < 1 or not omega_min <= omega_max:
        raise ProbeParameterError(
            f"dataset 'sine_generation': need samples >= 1, T >= 1, omega_min <= omega_max "
            f"(got {samples}, {T}, {omega_min}, {omega_max})"
        )
    if spacing == "linspace":
        omega = torch.linspace(omega_min, omega_max, samples, dtype=torch.float64)
    elif spacing == "uniform":
        gen = torch.Generator().manual_seed(int(seed))
        omega = omega_min + (omega_max - omega_min) * torch.rand(samples, generator=gen, dtype=torch.float64)
    else:
        raise ProbeParameterError(f"dataset 'sine_generation': spacing {spacing!r} is not 'linspace' or 'uniform'")
    t = torch.arange(T, dtype=torch.float64)
    targets = torch.sin(omega[:, None] * (t[None, :] + 1)).unsqueeze(-1)
    inputs = omega[:, None, None].expand(samples, T, 1)
    return SequenceData(inputs.float().contiguous(), targets.float(), "regression", "sine_generation",
                        attrs={"T": int(T), "omega_min": float(omega_min), "omega_max": float(omega_max),
                               "spacing": spacing, "seed": int(seed), "source": "synthetic"})


DATASETS = [
    DatasetSpec(
        name="sine_generation",
        factory=sine_generation,
        doc="constant input omega, target sin(omega (t+1)) at every step; 100 frequencies in [pi/16, pi/8], T=400",
        reference="attractors paper §5.1; Sussillo & Barak (2013)",
    )
]
