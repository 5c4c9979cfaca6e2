"""Ragged per-network points ↔ padded rows, so that a System's ``map`` (which wants the same
batch size for every network of an ensemble) can evaluate them in one call."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["by_network"]


def by_network(x: Tensor, net: Tensor, networks: int) -> tuple[Tensor, Tensor]:
    """Points ``x[i, ...]`` of networks ``net[i]`` (sorted by network) → ``rows[networks, M, ...]``
    (padding repeats a real point, so it stays finite) and each point's column: ``rows[net, col] == x``."""
    counts = torch.bincount(net, minlength=networks)
    M = max(int(counts.max()) if counts.numel() else 0, 1)
    col = torch.arange(x.shape[0], device=x.device) - (torch.cumsum(counts, 0) - counts)[net]
    fill = x[:1] if x.shape[0] else torch.zeros(1, *x.shape[1:], dtype=x.dtype, device=x.device)
    rows = fill.expand(networks, M, *x.shape[1:]).clone()
    rows[net, col] = x
    return rows, col
