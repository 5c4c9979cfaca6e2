"""The exact piecewise-linear form of a 1-D ReLU network, for every network of an ensemble.

A System built by ``dynprobe.plugins.models.feedforward1d.feedforward_system`` (the ``rn`` and ``fig3``
models, or a user's own weights) records its layers in ``system.arch`` (family ``feedforward_1d``). For
ReLU / identity layers with an optional output clip, the map is continuous and piecewise
linear; :func:`dense_map` finds all its breakpoints layer by layer (layer-1 kinks at
−b/w, then the zero crossings of each later pre-activation on every piece found so far, then
the clip levels) and returns a :class:`~dynprobe.plugins.periodic.pwl.DenseMap` whose values and
slopes come from the network itself.

References
----------
Scrambling paper Def. 2.3 and §5 (the networks); Montúfar et al. (2014) for linear regions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from dynprobe import System

from .pwl import DenseMap

__all__ = ["feedforward_spec", "dense_map", "network_forward"]

_PWL = ("relu", "identity")


def feedforward_spec(system: System) -> dict[str, Any] | None:
    """``{"activations": [...], "clip": (lo, hi) | None, "layers": L}`` for a feedforward 1-D
    System whose map is piecewise linear, else ``None``."""
    arch = system.arch
    if arch.family != "feedforward_1d" or system.state_dim != 1 or system.input_dim != 0:
        return None
    acts = list(arch.activations)
    if not acts or any(a not in _PWL for a in acts):
        return None
    return {"activations": acts, "clip": arch.clip, "layers": len(acts)}


def _layers(params: Mapping[str, Tensor], count: int, networks: int | None) -> list[tuple[Tensor, Tensor]]:
    out = []
    for layer in range(count):
        w, b = params[f"w{layer}"].to(torch.float64), params[f"b{layer}"].to(torch.float64)
        if networks is None:
            w, b = w[None], b[None]
        out.append((w, b))
    return out


def _affine(h: Tensor, dh: Tensor | None, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``h @ wᵀ + b`` and its derivative for ``h: [B, M, in]``, ``w: [B, out, in]`` — by
    broadcasting when ``in`` or ``out`` is 1 (the first and last layers of a 1-D map)."""
    if w.shape[-1] == 1:
        wt = w[:, None, :, 0]
        z = h * wt + b[:, None, :]
        return z, (wt.expand_as(z) if dh is None else dh * wt)
    if w.shape[-2] == 1:
        wt = w[:, None, 0, :]
        return (h * wt).sum(-1, keepdim=True) + b[:, None, :], (dh * wt).sum(-1, keepdim=True)
    return torch.einsum("bmi,boi->bmo", h, w) + b[:, None, :], torch.einsum("bmi,boi->bmo", dh, w)


def network_forward(
    layers: Sequence[tuple[Tensor, Tensor]], acts: Sequence[str], clip: tuple[float, float] | None,
    x: Tensor, *, upto: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Values and derivatives at points ``x: [B, M]``: of the output, or with ``upto=l`` of
    layer l's pre-activation (``[B, M, out_l]``)."""
    h, dh = x[..., None], None  # dh = None: the derivative is still the first layer's weight
    for layer, ((w, b), act) in enumerate(zip(layers, acts, strict=True)):
        z, dz = _affine(h, dh, w, b)
        if upto == layer:
            return z, dz
        if act == "relu":
            on = (z > 0).to(z.dtype)
            h, dh = z * on, dz * on
        else:
            h, dh = z, dz
    y, dy = h[..., 0], dh[..., 0]
    if clip is not None:
        inside = (y > clip[0]) & (y < clip[1])
        y, dy = y.clamp(clip[0], clip[1]), torch.where(inside, dy, torch.zeros_like(dy))
    return y, dy


def _crossings(z: Tensor, dz_left: Tensor, dz_right: Tensor, X: Tensor, n: Tensor, level: float) -> Tensor:
    """Where a PWL function (values ``z[B, U, K]`` at knots ``X[B, K]``, end-ray slopes
    ``dz_*[B, U]``) crosses ``level``: ``[B, U·(K+1)]`` positions, ``+inf`` where none."""
    B, U, K = z.shape
    inf = torch.tensor(float("inf"), dtype=z.dtype)
    valid = torch.arange(K)[None, None, :-1] < (n[:, None, None] - 1)
    za, zb = z[..., :-1] - level, z[..., 1:] - level
    xa, xb = X[:, None, :-1], X[:, None, 1:]
    hit = valid & (((za < 0) & (zb > 0)) | ((za > 0) & (zb < 0)))
    t = za / torch.where(hit, za - zb, torch.ones_like(za))
    inner = torch.where(hit, xa + t * (xb - xa), inf)
    last = (n - 1)[:, None].expand(B, U)
    z0 = z[..., 0] - level
    zl = torch.gather(z, 2, last[..., None])[..., 0] - level
    x0, xl = X[:, :1], torch.gather(X, 1, (n - 1)[:, None])
    step_l = -z0 / torch.where(dz_left == 0, torch.ones_like(z0), dz_left)
    step_r = -zl / torch.where(dz_right == 0, torch.ones_like(zl), dz_right)
    left = torch.where((dz_left != 0) & (step_l < 0), x0 + step_l, inf)
    right = torch.where((dz_right != 0) & (step_r > 0), xl + step_r, inf)
    return torch.cat([inner.reshape(B, -1), left, right], dim=1)


def _union(X: Tensor, extra: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted union of knot sets (``+inf`` padded), duplicates removed; returns ``(X, n)``."""
    allx = torch.sort(torch.cat([X, extra], dim=1), dim=1).values
    dup = torch.zeros_like(allx, dtype=torch.bool)
    dup[:, 1:] = allx[:, 1:] == allx[:, :-1]
    allx = torch.sort(torch.where(dup, torch.full_like(allx, float("inf")), allx), dim=1).values
    n = torch.isfinite(allx).sum(1)
    width = max(int(n.max()), 1)
    return allx[:, :width], n


def _filled(X: Tensor, n: Tensor) -> Tensor:
    """Knots with the padding replaced by the last valid knot (finite, for evaluation)."""
    last = torch.gather(X, 1, (n - 1).clamp(min=0)[:, None])
    return torch.where(torch.arange(X.shape[1])[None] < n[:, None], X, last)


def _ray_points(X: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    x0 = X[:, :1]
    xl = torch.gather(X, 1, (n - 1)[:, None])
    return x0 - x0.abs().clamp(min=1.0), xl + xl.abs().clamp(min=1.0)


def dense_map(system: System) -> DenseMap:
    """The exact :class:`DenseMap` of a piecewise-linear feedforward 1-D System (float64)."""
    spec = feedforward_spec(system)
    if spec is None:
        raise ValueError(f"{system.name} is not a piecewise-linear feedforward 1-D map")
    acts, clip = spec["activations"], spec["clip"]
    layers = _layers(system.params, spec["layers"], system.networks)
    if len(acts) == 2 and acts[0] == "relu":  # fast path; an output ReLU is a clamp at 0
        lo = None if clip is None else clip[0]
        if acts[1] == "relu":
            lo = 0.0 if lo is None else max(0.0, lo)
        return _one_hidden_layer(layers, lo, None if clip is None else clip[1])
    B = layers[0][0].shape[0]
    X = torch.zeros(B, 1, dtype=torch.float64)  # a trivial anchor knot; dropped at the end
    n = torch.ones(B, dtype=torch.long)
    stages = [(layer, [0.0]) for layer, act in enumerate(acts) if act == "relu"]
    if clip is not None:
        stages.append((None, list(clip)))
    for layer, levels in stages:
        Xf = _filled(X, n)
        ray_l, ray_r = _ray_points(Xf, n)
        if layer is None:
            z, _ = network_forward(layers, acts, clip=None, x=Xf)
            _, dl = network_forward(layers, acts, clip=None, x=ray_l)
            _, dr = network_forward(layers, acts, clip=None, x=ray_r)
            z, dl, dr = z[:, None, :], dl, dr
        else:
            z, _ = network_forward(layers, acts, clip, Xf, upto=layer)
            _, dl = network_forward(layers, acts, clip, ray_l, upto=layer)
            _, dr = network_forward(layers, acts, clip, ray_r, upto=layer)
            z, dl, dr = z.transpose(1, 2), dl[:, 0, :], dr[:, 0, :]
        extra = torch.cat([_crossings(z, dl, dr, Xf, n, lev) for lev in levels], dim=1)
        X, n = _union(X, extra)
    return _finish(layers, acts, clip, X, n)


def _finish(layers, acts, clip, X: Tensor, n: Tensor) -> DenseMap:
    """Values and exact slopes of the network on the knots ``X``; drop knots whose two sides
    have equal slopes (keep at least one per network)."""
    B, K = X.shape
    Xf = _filled(X, n)
    y, _ = network_forward(layers, acts, clip, Xf)
    mids = 0.5 * (Xf[:, :-1] + Xf[:, 1:])
    ray_l, ray_r = _ray_points(Xf, n)
    _, slopes = network_forward(layers, acts, clip, torch.cat([ray_l, mids, ray_r], dim=1))
    # slopes[:, j] = piece left of knot j (j < n), slopes[:, n] = right ray; put the right ray at column n
    cols = torch.arange(K + 1)[None]
    return _compact(Xf, n, y, torch.where(cols < n[:, None], slopes, slopes[:, -1:]))


def _compact(Xf: Tensor, n: Tensor, y: Tensor, s: Tensor) -> DenseMap:
    """Knots ``Xf[:, :n]`` with values ``y`` and piece slopes ``s`` (``[B, K + 1]``: piece j is
    left of knot j, the right ray at column n and beyond) → :class:`DenseMap`, after merging
    repeated knots (zero-length pieces) and dropping knots with equal slopes on both sides."""
    K = Xf.shape[1]
    valid = torch.arange(K)[None] < n[:, None]
    repeat = torch.zeros_like(valid)
    repeat[:, 1:] = Xf[:, 1:] == Xf[:, :-1]
    Xf, n, y, s = _keep(Xf, n, y, s, valid & ~repeat)
    valid = torch.arange(Xf.shape[1])[None] < n[:, None]
    x, m, y, s = _keep(Xf, n, y, s, valid & (s[:, :-1] != s[:, 1:]), final=True)
    return DenseMap(x=x, y=y, s=s, n=m)


def _keep(Xf: Tensor, n: Tensor, y: Tensor, s: Tensor, keep: Tensor, final: bool = False):
    """Keep the knots marked ``keep`` (at least the first one per network): the piece left of
    a kept knot takes the slope left of it, the right ray stays the right ray."""
    B, K = Xf.shape
    keep = keep.clone()
    keep[:, 0] |= keep.sum(1) == 0
    m = keep.sum(1)
    width = max(int(m.max()), 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    inside = torch.arange(width)[None] < m[:, None]
    x_new = torch.gather(Xf, 1, order)
    last = torch.gather(x_new, 1, (m - 1)[:, None])
    x_new = torch.where(inside, x_new, torch.full_like(x_new, float("inf")) if final else last)
    y_new = torch.gather(y, 1, order)
    y_new = torch.where(inside, y_new, torch.gather(y_new, 1, (m - 1)[:, None]))
    right = torch.gather(s, 1, n[:, None])
    s_new = torch.cat([torch.gather(s, 1, order), right], dim=1)
    s_new = torch.where(torch.arange(width + 1)[None] < m[:, None], s_new, right)
    return x_new, m, y_new, s_new


def _one_hidden_layer(layers, lo: float | None, hi: float | None) -> DenseMap:
    """x ↦ clamp(Σⱼ vⱼ ReLU(wⱼ x + cⱼ) + d, lo, hi) in O(k log k) per network: kinks tⱼ = −cⱼ/wⱼ
    sorted, slopes by a cumulative sum (crossing tⱼ adds vⱼ|wⱼ|), values by integrating them
    from one directly evaluated point; then the clamp levels' crossings become knots."""
    (w0, c), (w1, d) = layers
    w, v, d = w0[..., 0], w1[:, 0, :], d[:, 0]
    on = w != 0
    t = torch.where(on, -c / torch.where(on, w, torch.ones_like(w)), torch.full_like(w, float("inf")))
    t, order = torch.sort(t, dim=1)
    delta = torch.gather(torch.where(on, v * w.abs(), torch.zeros_like(w)), 1, order)
    s_left = torch.where(w < 0, v * w, torch.zeros_like(w)).sum(1, keepdim=True)
    s = torch.cat([s_left, s_left + torch.cumsum(delta, 1)], dim=1)
    n = on.sum(1).clamp(min=1)
    X = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
    X = _filled(X, n)
    x1 = X[:, :1]
    y1 = (v * torch.relu(w * x1 + c)).sum(1, keepdim=True) + d[:, None]
    y = torch.cat([y1, y1 + torch.cumsum(s[:, 1:-1] * (X[:, 1:] - X[:, :-1]), 1)], dim=1)
    cols = torch.arange(s.shape[1])[None]
    s = torch.where(cols <= n[:, None], s, torch.gather(s, 1, n[:, None]))
    g = _compact(X, n, y, s)
    levels = [level for level in (lo, hi) if level is not None]
    if not levels:
        return g
    Xg = _filled(g.x, g.n)
    s_r = torch.gather(g.s, 1, g.n[:, None])[:, 0]
    extra = torch.cat([_crossings(g.y[:, None, :], g.s[:, :1], s_r[:, None], Xg, g.n, level) for level in levels], 1)
    Xc, nc = _union(g.x, extra)
    Xc = _filled(Xc, nc)
    B, K = Xc.shape
    rows = torch.arange(B)[:, None].expand(B, K).reshape(-1)
    yc, _ = g(Xc.reshape(-1), rows)
    yc = yc.reshape(B, K)
    ray_l, ray_r = _ray_points(Xc, nc)
    probes = torch.cat([ray_l, 0.5 * (Xc[:, :-1] + Xc[:, 1:]), ray_r], dim=1)
    rows = torch.arange(B)[:, None].expand_as(probes).reshape(-1)
    gm, sm = g(probes.reshape(-1), rows)
    gm, sm = gm.reshape(B, K + 1), sm.reshape(B, K + 1)
    inside = torch.ones_like(gm, dtype=torch.bool)
    if lo is not None:
        inside &= gm > lo
    if hi is not None:
        inside &= gm < hi
    sc = torch.where(inside, sm, torch.zeros_like(sm))
    cols = torch.arange(K + 1)[None]
    sc = torch.where(cols < nc[:, None], sc, sc[:, -1:])
    yc = yc.clamp(min=lo, max=hi)
    return _compact(Xc, nc, yc, sc)
