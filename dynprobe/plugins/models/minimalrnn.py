"""``minimalrnn``: the gated cell of the mean-field paper, eq. (5) with x̃ = tanh(W_x x).

e = W h + V x̃ + b, u = σ(e), h' = u ⊙ h + (1 − u) ⊙ x̃, x̃ = tanh(W_x x) (footnote 2), with
W ~ N(0, σ_w²/N) or σ_w·orthogonal, V ~ N(0, σ_v²/N), b ~ N(μ_b, σ_b²), W_x ~ N(0, σ_x²/M).
A real, trainable ``nn.Module``; tied (one set of weights) or untied (W, V, b fresh per step;
W_x, the input embedding, is shared).

``forward(x, h)``: ``x [batch, M]`` is one step and returns ``(h', h')`` (tied only);
``x [time, batch, M]`` runs the sequence and returns ``(outputs, h_T)``.

References
----------
Mean-field paper §3.2, eq. (5), footnote 2; App. A–B; Algorithm 1 (critical initialization).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dynprobe import ModelSpec
from dynprobe.weights import draw_gaussian, draw_recurrent, generator_for

from .meanfield_cells import MeanFieldCell, check_hyper, step_weights

__all__ = ["MinimalRNN", "minimalrnn", "MODELS"]


class MinimalRNN(MeanFieldCell):
    """The minimalRNN (see the module docstring); ``sigma_x`` scales the input map W_x."""

    phi = "sigmoid"

    def __init__(self, input_size: int, hidden_size: int, *, sigma_w: float = 1.0, sigma_v: float = 1.0,
                 sigma_b: float = 0.0, mu_b: float = 0.0, sigma_x: float = 1.0, weights: str = "gaussian",
                 tied: bool = True, steps: int | None = None, seed: int | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_hyper("minimalrnn", weights=weights, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b, sigma_x=sigma_x)
        lead = self._setup("MinimalRNN", input_size, hidden_size, tied, steps)
        n, m = self.hidden_size, self.input_size
        self.W = nn.Parameter(torch.empty(*lead, n, n, dtype=dtype))
        self.V = nn.Parameter(torch.empty(*lead, n, n, dtype=dtype))
        self.b = nn.Parameter(torch.empty(*lead, n, dtype=dtype))
        self.W_x = nn.Parameter(torch.empty(n, m, dtype=dtype))
        self.reset_parameters(sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b, mu_b=mu_b, sigma_x=sigma_x,
                              weights=weights, seed=seed)

    @torch.no_grad()
    def reset_parameters(self, *, sigma_w: float, sigma_v: float, sigma_b: float = 0.0, mu_b: float = 0.0,
                         sigma_x: float | None = 1.0, weights: str = "gaussian", seed: int | None = 0) -> None:
        """Redraw W, V, b (and W_x unless ``sigma_x`` is None) from the mean-field distributions."""
        check_hyper("minimalrnn", weights=weights, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b)
        gen = generator_for(seed)
        lead, n, m, dtype = tuple(self.W.shape[:-2]), self.hidden_size, self.input_size, self.W.dtype
        self.W.copy_(draw_recurrent(lead, n, sigma_w, weights, gen, dtype))
        self.V.copy_(draw_gaussian((*lead, n, n), sigma_v / math.sqrt(n), gen, dtype))
        self.b.copy_(draw_gaussian((*lead, n), sigma_b, gen, dtype, mean=mu_b))
        if sigma_x is not None:
            self.W_x.copy_(draw_gaussian((n, m), sigma_x / math.sqrt(max(m, 1)), gen, dtype))
        self.weights = weights

    def embed(self, x: Tensor) -> Tensor:
        """x̃ = tanh(W_x x), the cell's input (footnote 2)."""
        return torch.tanh(x @ self.W_x.mT)

    def cell(self, x: Tensor, h: Tensor, t: int | None = None, *, embedded: bool = False) -> Tensor:
        """One step of eq. (5) with the weights of step ``t``; ``embedded``: ``x`` is already x̃."""
        W, V, b = step_weights(self, ("W", "V", "b"), t)
        xt = x if embedded else self.embed(x)
        u = torch.sigmoid(h @ W.mT + xt @ V.mT + b)
        return u * h + (1 - u) * xt


def minimalrnn(input_size: int = 1, hidden_size: int = 64, *, sigma_w: float = 1.0, sigma_v: float = 1.0,
               sigma_b: float = 0.0, mu_b: float = 0.0, sigma_x: float = 1.0, weights: str = "gaussian",
               tied: bool = True, steps: int | None = None, seed: int | None = 0,
               dtype: torch.dtype = torch.float32) -> MinimalRNN:
    """A :class:`MinimalRNN` (mean-field paper §3.2, eq. 5)."""
    return MinimalRNN(input_size, hidden_size, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b, mu_b=mu_b,
                      sigma_x=sigma_x, weights=weights, tied=tied, steps=steps, seed=seed, dtype=dtype)


MODELS = [
    ModelSpec(
        name="minimalrnn",
        factory=minimalrnn,
        doc="minimalRNN h' = u*h + (1-u)*tanh(W_x x), u = sigmoid(W h + V x~ + b), mean-field parameterization",
        reference="mean-field paper §3.2, eq. (5)",
        defaults={"input_size": 1, "hidden_size": 64},
        system_defaults={"init_scale": 0.5, "drive": "constant:1.0"},
        presets={"fig1": {"sigma_w": 6.88, "sigma_v": 1.39, "mu_b": 0.0}},
    )
]
