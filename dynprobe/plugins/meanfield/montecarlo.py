"""Monte-Carlo of the two-copy experiment behind the mean-field paper's Fig. 1.

Two copies of one network receive inputs whose cosine similarity is Σ₁₂^t at step t (the paper:
0 for t < 10, then 1) and start from independent states at the fixed-point scale (vanilla:
e⁰ ~ N(μ_b, q*), h⁰ = φ(e⁰); minimalRNN: h⁰ ~ N(0, Q*)). Recorded: the cosine similarity of
the two copies' pre-activations centered at μ_b, c^t = Σᵢ(e₁ᵢ−μ_b)(e₂ᵢ−μ_b) / Σᵢ(eᵢ−μ_b)²
(numerator and denominator summed over units, copies and networks first) — the quantity of
eq. (2) and (8). *Untied* draws fresh (W, V, b) at every step from the mean-field distributions
(the theory's assumption); *tied* keeps one draw per network, or uses a given network's weights.
The minimalRNN receives the embedded input x̃ directly (entries N(0, R)), as in the paper.

References
----------
Mean-field paper §3.1, §3.2.1 and Fig. 1 (a–c); App. B (the diagonal recurrence).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from dynprobe.errors import ProbeParameterError

__all__ = ["cosine_mc", "fig1_schedule"]

_PHI = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda x: x, "erf": torch.erf, "sigmoid": torch.sigmoid}


def fig1_schedule(steps: int, switch: int = 10) -> np.ndarray:
    """Σ₁₂^t for t = 1..steps: 0 before ``switch``, 1 from it on (the paper's Fig. 1)."""
    t = np.arange(1, steps + 1)
    return np.where(t < switch, 0.0, 1.0)


def _draw(networks: int, n: int, fan_in: int, hyper: Mapping[str, float], weights: str, gen: torch.Generator,
          dtype: torch.dtype) -> dict[str, Tensor]:
    g = torch.randn(networks, n, n, generator=gen, dtype=dtype)
    if weights == "orthogonal":
        q, r = torch.linalg.qr(g)
        W = hyper["sigma_w"] * q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    else:
        W = hyper["sigma_w"] / math.sqrt(n) * g
    V = hyper["sigma_v"] / math.sqrt(fan_in) * torch.randn(networks, n, fan_in, generator=gen, dtype=dtype)
    b = hyper["mu_b"] + hyper["sigma_b"] * torch.randn(networks, 1, n, generator=gen, dtype=dtype)
    return {"W": W, "V": V, "b": b}


@torch.no_grad()
def cosine_mc(
    cell: str,
    hyper: Mapping[str, float],
    schedule: Sequence[float] | np.ndarray,
    *,
    q_star: float,
    Q_star: float,
    tied: bool,
    networks: int = 8,
    width: int = 512,
    input_size: int | None = None,
    weights: str = "gaussian",
    phi: str = "tanh",
    params: Mapping[str, Tensor] | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """c^t for t = 1..len(schedule) from ``networks`` independent networks of ``width`` units.

    ``hyper`` holds sigma_w, sigma_v, sigma_b, mu_b, R (standard deviations). With ``params``
    (``W [N, N]``, ``V``, ``b``: one given network, tied) the network is that one and ``width`` and
    ``networks`` follow from it (its rows are one network, the copies and inputs are batched).
    Returns ``[time]`` (float64).
    """
    if cell not in ("vanilla", "minimalrnn"):
        raise ProbeParameterError(f"cosine_mc: unknown cell {cell!r}")
    gen = torch.Generator().manual_seed(int(seed))
    sched = torch.as_tensor(np.asarray(schedule, dtype=np.float64), dtype=dtype)
    if params is not None:
        fixed = {k: params[k].to(dtype).unsqueeze(0) for k in ("W", "V", "b")}
        fixed["b"] = fixed["b"].reshape(1, 1, -1)
        n = fixed["W"].shape[-1]
        fan_in = fixed["V"].shape[-1]
        nets, tied = 1, True
        batch = networks  # independent pairs of input sequences through the one network
    else:
        n = int(width)
        fan_in = n if cell == "minimalrnn" else int(input_size or n)
        nets, batch = int(networks), 1
        fixed = _draw(nets, n, fan_in, hyper, weights, gen, dtype) if tied else None
    mu_b, R = float(hyper["mu_b"]), float(hyper["R"])
    phi_fn = _PHI[phi]
    if cell == "vanilla":
        e0 = mu_b + math.sqrt(max(q_star, 0.0)) * torch.randn(nets, 2 * batch, n, generator=gen, dtype=dtype)
        h = phi_fn(e0)
    else:
        h = math.sqrt(max(Q_star, 0.0)) * torch.randn(nets, 2 * batch, n, generator=gen, dtype=dtype)
    out = np.empty(sched.numel())
    for t in range(sched.numel()):
        p = fixed if tied else _draw(nets, n, fan_in, hyper, weights, gen, dtype)
        x1 = math.sqrt(R) * torch.randn(nets, batch, fan_in, generator=gen, dtype=dtype)
        xi = math.sqrt(R) * torch.randn(nets, batch, fan_in, generator=gen, dtype=dtype)
        s = sched[t]
        x2 = s * x1 + torch.sqrt(torch.clamp(1 - s * s, min=0.0)) * xi
        x = torch.cat([x1, x2], dim=1)
        e = h @ p["W"].mT + x @ p["V"].mT + p["b"]
        d = e - mu_b
        d1, d2 = d[:, :batch], d[:, batch:]
        out[t] = float((d1 * d2).sum() / (0.5 * (d1 * d1 + d2 * d2).sum()))
        if cell == "vanilla":
            h = phi_fn(e)
        else:
            u = torch.sigmoid(e)
            h = u * h + (1 - u) * x
    return out
