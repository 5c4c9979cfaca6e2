"""Random weight laws shared by reference models and initializers.

The mean-field parameterization (mean-field paper §3): recurrent weights W ~ N(0, σ_w²/N) or
σ_w·(Haar orthogonal), input weights V ~ N(0, σ_v²/fan_in), biases b ~ N(μ_b, σ_b²). Every draw
is made in float64 on the CPU from an explicit generator (so a seed gives the same weights on
every device and dtype), then cast.

References
----------
Mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §3.1–3.2 and Algorithm 1;
Mezzadri (2007) for Haar-random orthogonal matrices via QR with sign-fixed diag R.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["generator_for", "draw_gaussian", "draw_recurrent"]


def generator_for(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (fresh entropy when ``None``)."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def draw_gaussian(shape: tuple[int, ...], std: float, generator: torch.Generator, dtype: torch.dtype,
                  mean: float = 0.0) -> Tensor:
    """``mean + std · N(0, 1)`` of ``shape`` (drawn in float64 on the CPU, then cast)."""
    return (mean + std * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def draw_recurrent(lead: tuple[int, ...], n: int, sigma_w: float, weights: str, generator: torch.Generator,
                   dtype: torch.dtype) -> Tensor:
    """``[*lead, N, N]`` recurrent matrices: entries N(0, σ_w²/N) (``weights="gaussian"``), or
    σ_w times a Haar-random orthogonal matrix (``"orthogonal"``: QR of a Gaussian matrix with the
    signs of diag R fixed)."""
    g = torch.randn(*lead, n, n, generator=generator, dtype=torch.float64)
    if weights == "gaussian":
        return (sigma_w / math.sqrt(n) * g).to(dtype)
    q, r = torch.linalg.qr(g)
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    return (sigma_w * q * sign.unsqueeze(-2)).to(dtype)
