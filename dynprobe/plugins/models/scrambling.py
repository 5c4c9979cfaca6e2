"""``rn`` and ``fig3``: the random 1-D recurrent maps of the scrambling paper, as ensembles.

* ``rn`` — RN(k, σ²) of Def. 2.3: f(x) = clip(Σᵢ aᵢ ReLU(x − bᵢ)) on [0, 1] with
  bᵢ ~ U[0, 1] and aᵢ ~ N(0, σ²/k); presets for the three regimes of Thm 2.5.
* ``fig3`` — the five initialization schemes of the Fig. 3 table,
  f(x) = σ₂(w₂ᵀ σ₁(w₁ x + b₁) + b₂), 1 → k → 1, plus the paper's "additional experiments"
  (tanh, clipping, wider, depth 3).

Both return one :class:`System`; with ``networks=n`` its parameters carry a leading
``network`` axis of size n, so ``dynprobe.run("period3", system)`` treats all n at once.
As an RN(k) network, ``a = w1[..., 0, :]`` and ``b = −b0``.

References
----------
Scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 2.3, Thm 2.5, §5, Fig. 3.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynprobe import ModelSpec, System
from dynprobe.errors import ProbeParameterError

from .feedforward1d import feedforward_system

__all__ = ["rn", "fig3", "rn_sigma2", "FIG3_ROWS", "SCHEMES", "MODELS"]

SCHEMES = ("he", "one", "uniform", "normal_k", "glorot")
"""Initialization schemes of the Fig. 3 table."""

FIG3_ROWS = {
    1: (("one", "he", "relu"), ("he", "he", "identity")),
    2: (("he", "uniform", "relu"), ("he", "uniform", "relu")),
    3: (("he", "he", "relu"), ("he", "he", "relu")),
    4: (("normal_k", "normal_k", "relu"), ("normal_k", "normal_k", "relu")),
    5: (("glorot", "glorot", "relu"), ("glorot", "glorot", "relu")),
}
"""Rows of Fig. 3: ((w₁, b₁, σ₁), (w₂, b₂, σ₂)) in the table's order."""


def rn_sigma2(sigma2: float | str, k: int) -> float:
    """σ² for RN(k, σ²): a number, or a regime of Thm 2.5 — ``"order"`` (1/(4 ln k)),
    ``"he"`` / ``"edge"`` (2), ``"chaos"`` (k, i.e. σ = √k → ∞ with the width)."""
    if isinstance(sigma2, str):
        table = {"order": 1.0 / (4.0 * math.log(k)) if k > 1 else None, "he": 2.0, "edge": 2.0, "chaos": float(k)}
        if sigma2 not in table or table[sigma2] is None:
            raise ProbeParameterError(
                f"model 'rn': sigma2={sigma2!r} is not a number or one of order, he, edge, chaos (order needs k >= 2)"
            )
        return float(table[sigma2])
    if not float(sigma2) > 0:
        raise ProbeParameterError(f"model 'rn': sigma2 must be > 0, got {sigma2}")
    return float(sigma2)


def _lead(networks: int | None) -> tuple[int, ...]:
    if networks is not None and int(networks) < 1:
        raise ProbeParameterError(f"networks must be >= 1 or None, got {networks}")
    return () if networks is None else (int(networks),)


def rn(
    k: int = 64,
    sigma2: float | str = 2.0,
    *,
    networks: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> System:
    """RN(k, σ²) of Def. 2.3: f(x) = clip(Σᵢ aᵢ ReLU(x − bᵢ)) to [0, 1].

    Parameters
    ----------
    k
        Width (number of ReLU units).
    sigma2
        Weight variance factor: aᵢ ~ N(0, σ²/k); or a regime name (see :func:`rn_sigma2`).
    networks
        Draw this many independent networks as one ensemble System (``None``: a single one).
    seed
        Seeds the draw (biases first, then weights, for all networks at once).

    Returns
    -------
    System
        A 1-D System on [0, 1] with ``arch.model == "rn"``.

    References
    ----------
    Scrambling paper Def. 2.3 and Thm 2.5.
    """
    if int(k) < 1:
        raise ProbeParameterError(f"model 'rn': k must be >= 1, got {k}")
    k = int(k)
    s2 = rn_sigma2(sigma2, k)
    lead = _lead(networks)
    gen = torch.Generator().manual_seed(int(seed))
    b = torch.rand(*lead, k, generator=gen, dtype=torch.float64)
    a = torch.randn(*lead, k, generator=gen, dtype=torch.float64) * math.sqrt(s2 / k)
    weights = [torch.ones(*lead, k, 1, dtype=torch.float64), a.unsqueeze(-2)]
    biases = [-b, torch.zeros(*lead, 1, dtype=torch.float64)]
    return feedforward_system(
        [w.to(dtype) for w in weights], [v.to(dtype) for v in biases], ["relu", "identity"],
        clip=(0.0, 1.0), networks=networks, name=f"rn(k={k}, sigma2={s2:.4g})", domain=(0.0, 1.0),
        model="rn", meta={"sigma2": s2},
    )


def _draw(scheme: str, shape: tuple[int, ...], fan_in: int, fan_out: int, k: int, gen: torch.Generator) -> Tensor:
    if scheme == "one":
        return torch.ones(shape, dtype=torch.float64)
    if scheme == "uniform":
        return torch.rand(shape, generator=gen, dtype=torch.float64)
    if scheme == "he":
        return torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in)
    if scheme == "glorot":
        return torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "normal_k":  # N(0, 1/k) truncated to [-1, 1], by the inverse CDF
        std = math.sqrt(1.0 / k)
        edge = torch.special.ndtr(torch.tensor(1.0 / std, dtype=torch.float64))
        u = torch.rand(shape, generator=gen, dtype=torch.float64)
        return std * torch.special.ndtri((1 - edge) + u * (2 * edge - 1))
    raise ProbeParameterError(f"model 'fig3': unknown scheme {scheme!r}; schemes: {', '.join(SCHEMES)}")


def fig3(
    row: int = 1,
    k: int = 2,
    *,
    depth: int = 2,
    activation: str = "relu",
    clip: bool = False,
    networks: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> System:
    """A row of the scrambling paper's Fig. 3 table: f(x) = σ₂(w₂ᵀ σ₁(w₁ x + b₁) + b₂).

    Schemes (fan_in / fan_out of each layer): ``he`` = N(0, 2/fan_in) for weights and biases
    alike; ``one`` = all ones; ``uniform`` = U[0, 1); ``normal_k`` = N(0, 1/k) truncated to
    [−1, 1]; ``glorot`` = N(0, 2/(fan_in + fan_out)). Rows 1–5 follow the table's order
    (:data:`FIG3_ROWS`).

    Parameters
    ----------
    row
        1–5.
    k
        Hidden width (the table uses 2; the paper's additional experiments 4).
    depth
        Number of weight layers, 2 or 3. At depth 3 the hidden k → k layer is drawn with the
        row's layer-2 schemes and uses σ₁.
    activation
        ``"relu"`` as in the table, or ``"tanh"`` (replaces every ReLU; identity stays).
    clip
        Clamp the output to [0, 1] (the paper's "with clipping" variant).
    networks, seed, dtype
        Ensemble size (``None``: one network), seed of the draw, parameter dtype.

    References
    ----------
    Scrambling paper §5, Fig. 3 and "Additional Experiments".
    """
    if row not in FIG3_ROWS:
        raise ProbeParameterError(f"model 'fig3': row must be one of 1..5, got {row}")
    if int(k) < 1 or depth not in (2, 3) or activation not in ("relu", "tanh"):
        raise ProbeParameterError(
            f"model 'fig3': need k >= 1, depth 2 or 3, activation relu or tanh (got k={k}, depth={depth}, "
            f"activation={activation!r})"
        )
    k = int(k)
    (w1, b1, s1), (w2, b2, s2) = FIG3_ROWS[row]
    swap = {"relu": activation}
    layers = [(w1, b1, s1, 1, k)]
    if depth == 3:
        layers.append((w2, b2, s1, k, k))
    layers.append((w2, b2, s2, k, 1))
    lead = _lead(networks)
    gen = torch.Generator().manual_seed(int(seed))
    weights, biases, acts = [], [], []
    for w_scheme, b_scheme, act, fan_in, fan_out in layers:
        weights.append(_draw(w_scheme, (*lead, fan_out, fan_in), fan_in, fan_out, k, gen).to(dtype))
        biases.append(_draw(b_scheme, (*lead, fan_out), fan_in, fan_out, k, gen).to(dtype))
        acts.append(swap.get(act, act))
    return feedforward_system(
        weights, biases, acts, clip=(0.0, 1.0) if clip else None, networks=networks,
        name=f"fig3(row={row}, k={k}, depth={depth}, {activation}{', clip' if clip else ''})",
        domain=(0.0, 1.0) if clip else None, model="fig3", meta={"row": int(row)},
    )


MODELS = [
    ModelSpec(
        name="rn",
        factory=rn,
        doc="RN(k, sigma2): f(x) = clip(sum a_i ReLU(x - b_i)) on [0, 1], a random 1-D ReLU RNN (ensembles)",
        reference="scrambling paper Def. 2.3, Thm 2.5",
        defaults={"k": 64, "sigma2": 2.0},
        presets={"order": {"sigma2": "order"}, "edge": {"sigma2": 2.0}, "chaos": {"sigma2": "chaos"}},
        system_defaults={"drive": "autonomous"},
    ),
    ModelSpec(
        name="fig3",
        factory=fig3,
        doc="width-2 1-D ReLU RNNs of the scrambling paper's Fig. 3 table, rows 1-5 (ensembles)",
        reference="scrambling paper §5, Fig. 3",
        defaults={"row": 1, "k": 2},
        presets={f"row{r}": {"row": r} for r in FIG3_ROWS},
        system_defaults={"drive": "autonomous"},
    ),
]
