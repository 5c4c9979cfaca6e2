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

__all__ = ["sine_generation", "DATASETS"]


def sine_generation(
    n_sequences: int = 100,
    length: int = 400,
    omega_min: float = math.pi / 16,
    omega_max: float = math.pi / 8,
    spacing: str = "linspace",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """Constant-input sine generation.

    Parameters
    ----------
    n_sequences, length
        Number of sequences (one frequency each) and their length T.
    omega_min, omega_max
        Frequency interval (rad/step).
    spacing
        ``"linspace"`` (evenly spaced frequencies) or ``"uniform"`` (drawn with ``seed``).
    seed, dtype
        Random seed for ``"uniform"``; tensor dtype.

    Returns
    -------
    dict
        ``inputs [T, B, 1]`` (ω at every step), ``targets [T, B, 1]`` (sin(ω(t + 1)), t = 0 … T−1),
        ``omega [B]``.

    References
    ----------
    Attractors paper §5.1; Sussillo & Barak (2013).
    """
    if n_sequences < 1 or length < 1 or not omega_min <= omega_max:
        raise ProbeParameterError(
            f"sine_generation: need n_sequences >= 1, length >= 1, omega_min <= omega_max "
            f"(got {n_sequences}, {length}, {omega_min}, {omega_max})"
        )
    if spacing == "linspace":
        omega = torch.linspace(omega_min, omega_max, n_sequences, dtype=torch.float64)
    elif spacing == "uniform":
        gen = torch.Generator().manual_seed(int(seed))
        omega = omega_min + (omega_max - omega_min) * torch.rand(n_sequences, generator=gen, dtype=torch.float64)
    else:
        raise ProbeParameterError(f"sine_generation: spacing {spacing!r} is not 'linspace' or 'uniform'")
    t = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    targets = torch.sin(omega * (t + 1))
    inputs = omega.expand(length, n_sequences)
    return {"inputs": inputs.unsqueeze(-1).to(dtype).contiguous(), "targets": targets.unsqueeze(-1).to(dtype),
            "omega": omega.to(dtype)}


DATASETS = [
    DatasetSpec(
        name="sine_generation",
        factory=sine_generation,
        doc="constant input omega, target sin(omega (t+1)); 100 frequencies in [pi/16, pi/8], length 400",
        reference="attractors paper §5.1; Sussillo & Barak (2013)",
        defaults={"n_sequences": 100, "length": 400},
    )
]
