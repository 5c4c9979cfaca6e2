"""The scrambling paper's Lemma 4.2: a cheap certificate of period 3 for RN(k, σ²) networks.

For f(x) = clip(Σ aᵢ ReLU(x − bᵢ)) with b₁ < … < b_k, let yᵢ = Σ_{ℓ<i} a_ℓ (bᵢ − b_ℓ) (so that
f(bᵢ) = clip(yᵢ)). If some i < ℓ have yᵢ > 1 and y_ℓ < 0, f has a point of period 3: f maps
both [0, bᵢ] and [bᵢ, b_ℓ] onto [0, 1]. The certificate is sufficient, not necessary.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Lemma 4.2 and its proof.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System

__all__ = ["Lemma42", "lemma42", "rn_weights"]


@dataclass(frozen=True)
class Lemma42:
    """Per network: ``holds``; the 1-based indices ``i < l`` in increasing-bias order (0 when the
    certificate does not hold) and the pre-clip values ``y`` at the sorted biases."""

    holds: Tensor
    i: Tensor
    l: Tensor
    y: Tensor


def rn_weights(system: System) -> tuple[Tensor, Tensor] | None:
    """``(a, b)`` as ``[network, k]`` for an ``rn`` System (``a = w1[0]``, ``b = −b0``), else None."""
    if system.arch.model != "rn":
        return None
    p = system.params
    a, b = p["w1"][..., 0, :].to(torch.float64), -p["b0"].to(torch.float64)
    if system.networks is None:
        a, b = a[None], b[None]
    return a, b


def lemma42(a: Tensor, b: Tensor) -> Lemma42:
    """Evaluate the certificate for weights ``a`` and biases ``b`` (``[network, k]``)."""
    order = torch.argsort(b, dim=1, stable=True)
    b = torch.gather(b, 1, order)
    a = torch.gather(a, 1, order)
    a_before = torch.cumsum(a, 1) - a
    ab_before = torch.cumsum(a * b, 1) - a * b
    y = b * a_before - ab_before
    k = y.shape[1]
    pos = torch.arange(k)[None].expand_as(y)
    big = torch.where(y > 1, pos, torch.full_like(pos, k)).amin(1)  # first i with y_i > 1
    neg = torch.where((y < 0) & (pos > big[:, None]), pos, torch.full_like(pos, k)).amin(1)
    holds = neg < k
    zero = torch.zeros_like(big)
    return Lemma42(holds, torch.where(holds, big + 1, zero), torch.where(holds, neg + 1, zero), y)
