"""Residual matrices R of weakly coupled residual RNNs, and the nn.Linear-style coupling weights.

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``):

* ``diagonal`` — R = α·I (§4.1): subcritical α < 1, critical α = 1, supercritical α > 1;
* ``rotational`` — block-diagonal 2×2 rotations by angles ωᵢ, scaled by α (§4.2, eq. 16);
* ``heterogeneous`` — diag(a) with aᵢ ~ U(α − β, α + β) (§4.3, eq. 17);
* ``orthogonal`` — a Haar-random orthogonal matrix (``scipy.stats.ortho_group``), scaled by α (§4.2);
* ``product`` — rotational × heterogeneous diagonal (§4.3, "informed heterogeneity").

The paper's own ranges for β, ω and the per-unit ε of §4.3 are not in our copy; the defaults here
(β = 0.1, ωᵢ ~ U(0, π)) are this package's choices and are documented as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from dynprobe.errors import ProbeParameterError

__all__ = ["RESIDUALS", "Residual", "residual_matrix", "rotation_blocks", "linear_init", "DEFAULT_BETA"]

Residual = Literal["diagonal", "rotational", "heterogeneous", "orthogonal", "product"]
RESIDUALS: tuple[str, ...] = ("diagonal", "rotational", "heterogeneous", "orthogonal", "product")
DEFAULT_BETA = 0.1
"""Half-width of the heterogeneous diagonal's U(α − β, α + β) when ``beta`` is not given."""

_USES_BETA = {"heterogeneous", "product"}
_USES_OMEGA = {"rotational", "product"}


def linear_init(
    out_features: int, in_features: int, generator: torch.Generator, *, bias: bool = True
) -> tuple[Tensor, Tensor | None]:
    """Weight ``[out, in]`` and bias ``[out]`` drawn as ``nn.Linear.reset_parameters`` draws them.

    Kaiming-uniform with a = √5 gives the bound gain·√(3/fan_in) = 1/√fan_in for the weight,
    and the bias is U(−1/√fan_in, 1/√fan_in) (fading-memory paper §4: "Kaiming uniform ...
    default implementation of torch.nn.Linear"). Float64, from ``generator``.
    """
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    weight = (torch.rand(out_features, in_features, generator=generator, dtype=torch.float64) * 2 - 1) * bound
    b = (torch.rand(out_features, generator=generator, dtype=torch.float64) * 2 - 1) * bound if bias else None
    return weight, b


def rotation_blocks(omegas: Tensor, n: int, alpha: float = 1.0) -> Tensor:
    """α·diag(Rot(ω₁), …, Rot(ω_{n//2})) with Rot(ω) = [[cos ω, −sin ω], [sin ω, cos ω]];
    for odd n the last unit keeps the 1×1 block α. Eigenvalues α·e^{±iωⱼ} (and α)."""
    R = torch.zeros(n, n, dtype=torch.float64)
    c, s = torch.cos(omegas), torch.sin(omegas)
    idx = torch.arange(n // 2) * 2
    R[idx, idx], R[idx, idx + 1] = c, -s
    R[idx + 1, idx], R[idx + 1, idx + 1] = s, c
    if n % 2:
        R[-1, -1] = 1.0
    return alpha * R


def _omegas(omega: float | Sequence[float] | None, blocks: int, generator: torch.Generator) -> Tensor:
    if omega is None:
        return torch.rand(blocks, generator=generator, dtype=torch.float64) * math.pi
    values = torch.as_tensor(omega, dtype=torch.float64).reshape(-1)
    if values.numel() == 1:
        return values.expand(blocks).clone()
    if values.numel() != blocks:
        raise ProbeParameterError(
            f"wcrnn: omega has {values.numel()} angles but the network has {blocks} rotation blocks (hidden_size // 2); "
            "pass one angle (homogeneous) or one per block"
        )
    return values


def residual_matrix(
    residual: str,
    n: int,
    *,
    alpha: float = 1.0,
    beta: float | None = None,
    omega: float | Sequence[float] | None = None,
    generator: torch.Generator,
) -> Tensor:
    """The ``[n, n]`` float64 residual R named ``residual`` (see the module docstring).

    ``beta`` (heterogeneity half-width, default :data:`DEFAULT_BETA`) only applies to
    ``heterogeneous`` and ``product``; ``omega`` (one angle, one per 2×2 block, or ``None`` for
    ωⱼ ~ U(0, π) drawn from ``generator``) only to ``rotational`` and ``product``. Giving one to a
    residual that does not use it is an error rather than silently ignored.

    References
    ----------
    Fading-memory paper §4.1 (α·I), §4.2 (eq. 16, random orthogonal), §4.3 (eq. 17, product).
    """
    if residual not in RESIDUALS:
        from dynprobe.errors import did_you_mean

        raise ProbeParameterError(
            f"wcrnn: unknown residual {residual!r}; residuals: {', '.join(RESIDUALS)}{did_you_mean(residual, RESIDUALS)}"
        )
    if n < 1:
        raise ProbeParameterError(f"wcrnn: hidden_size must be >= 1, got {n}")
    if beta is not None and residual not in _USES_BETA:
        raise ProbeParameterError(f"wcrnn: beta applies to the heterogeneous and product residuals, not {residual!r}")
    if omega is not None and residual not in _USES_OMEGA:
        raise ProbeParameterError(f"wcrnn: omega applies to the rotational and product residuals, not {residual!r}")
    beta = DEFAULT_BETA if beta is None else float(beta)
    if beta < 0:
        raise ProbeParameterError(f"wcrnn: beta must be >= 0, got {beta}")
    if residual == "diagonal":
        return alpha * torch.eye(n, dtype=torch.float64)
    if residual == "orthogonal":
        if n < 2:
            raise ProbeParameterError("wcrnn: an orthogonal residual needs hidden_size >= 2")
        from scipy.stats import ortho_group

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return alpha * torch.as_tensor(ortho_group.rvs(n, random_state=np.random.default_rng(seed)), dtype=torch.float64)
    rotation = rotation_blocks(_omegas(omega, n // 2, generator), n) if residual in _USES_OMEGA else None
    if residual == "rotational":
        return alpha * rotation
    diag = alpha + beta * (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1)
    if residual == "heterogeneous":
        return torch.diag(diag)
    return rotation * diag  # product: Rot @ diag(a) scales column j by a_j
