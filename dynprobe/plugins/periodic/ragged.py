"""Ragged per-network data: points ↔ padded rows (a System's ``map`` wants the same batch size
for every network of an ensemble), and ``searchsorted`` of ragged queries in per-network rows."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["by_network", "search", "CHUNK"]

CHUNK = 1 << 22
"""Largest number of (point × knot) comparisons done in one batched step (memory bound)."""


def search(rows: Tensor, values: Tensor, net: Tensor, *, right: bool = False) -> Tensor:
    """``searchsorted(rows[net[i]], values[i])`` for ragged queries, without materializing a
    ``[len(values), K]`` gather: the queries of each network are laid out in a padded block row,
    networks grouped by their query count (within a factor 2) so that padding stays cheap, and
    each group is one batched ``searchsorted``."""
    B, K = rows.shape
    if values.shape[0] * K <= CHUNK:  # small enough to gather one row per query
        return torch.searchsorted(rows[net], values[:, None], right=right)[:, 0]
    dev = values.device
    counts = torch.bincount(net, minlength=B)
    group = torch.floor(torch.log2(counts.clamp(min=1).to(torch.float64))).to(torch.long)  # count in [2^g, 2^(g+1))
    by_group = torch.argsort(group * B + torch.arange(B, device=dev))  # networks ordered by (group, index)
    slot = torch.empty_like(by_group)
    slot[by_group] = torch.arange(B, device=dev)
    groups = torch.bincount(group, minlength=int(group.max()) + 1)
    group_start = torch.cumsum(groups, 0) - groups
    row = slot - group_start[group]  # row of each network inside its group's block
    order = torch.argsort(group[net] * B + net, stable=True)  # queries by (group, network), kept in order
    q_net = net[order]
    before = torch.cumsum(counts[by_group], 0) - counts[by_group]  # queries of earlier networks
    col_sorted = torch.arange(net.shape[0], device=dev) - before[slot[q_net]]
    out_sorted = torch.empty_like(q_net)
    q_group = group[q_net]
    bounds = torch.cumsum(torch.bincount(q_group, minlength=groups.shape[0]), 0).tolist()
    lo = 0
    for g, hi in enumerate(bounds):
        if hi == lo:
            continue
        members = by_group[int(group_start[g]): int(group_start[g]) + int(groups[g])]
        width = int(counts[members].max())
        step = max(1, CHUNK // max(width, 1))
        for r0 in range(0, members.shape[0], step):  # very large groups in chunks of rows
            sel = slice(lo, hi)
            rr = row[q_net[sel]]
            part = (rr >= r0) & (rr < r0 + step)
            block = torch.zeros(min(step, members.shape[0] - r0), width, dtype=values.dtype, device=dev)
            idx_r, idx_c = rr[part] - r0, col_sorted[sel][part]
            block[idx_r, idx_c] = values[order[sel]][part]
            found = torch.searchsorted(rows[members[r0: r0 + step]], block, right=right)
            out_sorted[lo:hi][part] = found[idx_r, idx_c]
        lo = hi
    out = torch.empty_like(out_sorted)
    out[order] = out_sorted
    return out


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
