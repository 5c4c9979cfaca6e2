"""One-dimensional feedforward maps x ↦ σ_L(W_L … σ_1(W_1 x + b_1) … + b_L), iterated as RNNs.

The scrambling paper's models are 1 → k → … → 1 networks fed back into themselves: RN(k, σ²)
(Def. 2.3) and the width-2 networks of its Fig. 3 table. :func:`feedforward_system` turns the
layer weights (optionally stacked along a leading ``network`` axis) into a :class:`System` and
records the architecture in ``system.arch`` (family ``feedforward_1d``, activations, output clip, domain)
so that probes can treat piecewise-linear networks (ReLU / identity layers, clipping) exactly
(the ``period3`` probe enumerates their linear pieces) and fall back to numerics otherwise.

Parameters are named ``w0, b0, w1, b1, …``: ``w_l`` has shape ``[out, in]`` and ``b_l``
``[out]`` (``[network, out, in]`` / ``[network, out]`` for an ensemble), as in ``nn.Linear``.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 2.3, §5 and Fig. 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from dynprobe import InitialState, System
from dynprobe.architecture import Architecture, WeightRole
from dynprobe.errors import ProbeParameterError

__all__ = ["feedforward_system", "ACTIVATIONS", "PIECEWISE_LINEAR"]

ACTIVATIONS = ("relu", "identity", "tanh")
"""Activations a layer may use."""

PIECEWISE_LINEAR = ("relu", "identity")
"""Activations that keep the map piecewise linear."""



def _activation(name: str, z: Tensor) -> Tensor:
    if name == "relu":
        return torch.relu(z)
    if name == "tanh":
        return torch.tanh(z)
    return z


def _make_step(activations: tuple[str, ...], clip: tuple[float, float] | None):
    def feedforward_1d(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        z = h
        for layer, act in enumerate(activations):
            z = _activation(act, z @ p[f"w{layer}"].transpose(-1, -2) + p[f"b{layer}"])
        if clip is not None:
            z = z.clamp(clip[0], clip[1])
        return z

    return feedforward_1d


def feedforward_system(
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    activations: Sequence[str],
    *,
    clip: tuple[float, float] | None = None,
    networks: int | None = None,
    name: str = "feedforward_1d",
    domain: tuple[float, float] | None = None,
    model: str = "",
    meta: Mapping[str, object] | None = None,
) -> System:
    """The map x ↦ clip(σ_L(W_L … σ_1(W_1 x + b_1) … + b_L)) as a 1-D System.

    Parameters
    ----------
    weights, biases
        ``W_l: [out, in]`` and ``b_l: [out]`` per layer, the first ``in`` and last ``out``
        being 1; with ``networks=n`` each carries a leading axis of size n.
    activations
        One of :data:`ACTIVATIONS` per layer (the last one acts on the output).
    clip
        ``(lo, hi)`` to clamp the output (RN(k, σ²) uses ``(0, 1)``), or ``None``.
    networks
        Ensemble size when the parameters are stacked, else ``None``.
    name, domain, model, meta
        Display name; the interval the map is meant to act on (recorded in ``arch.domain``
        and used for initial states); the bundled model it is (``arch.model``, e.g. ``"rn"``);
        extra facts for people (``meta``).

    Returns
    -------
    System
        ``state_dim = 1``, ``input_dim = 0``; ``arch`` describes the layers.

    Example
    -------
    >>> tent = feedforward_system([torch.tensor([[1.0], [1.0]]), torch.tensor([[2.0, -4.0]])],
    ...     [torch.tensor([0.0, -0.5]), torch.tensor([0.0])], ["relu", "identity"])
    """
    acts = tuple(str(a) for a in activations)
    if len(weights) != len(biases) or len(weights) != len(acts) or not acts:
        raise ProbeParameterError(
            f"feedforward_system: got {len(weights)} weights, {len(biases)} biases and {len(acts)} activations; "
            "pass one of each per layer"
        )
    bad = [a for a in acts if a not in ACTIVATIONS]
    if bad:
        raise ProbeParameterError(
            f"feedforward_system: unknown activation {bad[0]!r}; use one of {', '.join(ACTIVATIONS)}"
        )
    lead = 0 if networks is None else 1
    if weights[0].shape[-1] != 1 or weights[-1].shape[-2] != 1:
        raise ProbeParameterError(
            f"feedforward_system: the map must be 1 -> ... -> 1, got first layer {list(weights[0].shape[lead:])} "
            f"and last layer {list(weights[-1].shape[lead:])}"
        )
    params = {}
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        params[f"w{layer}"] = w
        params[f"b{layer}"] = b
    roles = [WeightRole(f"{kind}{layer}", role, layer) for layer in range(len(acts))
             for kind, role in (("w", "layer_weight"), ("b", "layer_bias"))]
    arch = Architecture(
        family="feedforward_1d", layers=len(acts), hidden_size=int(weights[0].shape[-2]), input_size=0, bias=True,
        weights=tuple(roles), activations=acts, clip=None if clip is None else (float(clip[0]), float(clip[1])),
        domain=None if domain is None else (float(domain[0]), float(domain[1])), model=model,
        source="dynprobe.plugins.models.feedforward1d",
    )
    lo, hi = domain if domain is not None else (-1.0, 1.0)
    return System(
        _make_step(acts, None if clip is None else (float(clip[0]), float(clip[1]))),
        params,
        state_dim=1,
        networks=networks,
        name=name,
        kind=f"feedforward_1d:{','.join(acts)}:clip={clip}",
        arch=arch,
        meta=dict(meta or {}),
        init=InitialState(low=float(lo), high=float(hi)),
    )
