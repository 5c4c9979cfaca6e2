"""``vanilla``: the Elman RNN of the mean-field paper, h^t = φ(W h^{t−1} + V x^t + b).

A real, trainable ``nn.Module`` in the mean-field parameterization (W ~ N(0, σ_w²/N) or
σ_w·orthogonal, V ~ N(0, σ_v²/M), b ~ N(μ_b, σ_b²)), tied (one W for all steps, the network
people train) or untied (a fresh W, V, b per step, the network the theory describes).

``forward(x, h)``: ``x [batch, M]`` is one step and returns ``(h', h')`` (tied only — this is
what :func:`dynprobe.wrap` calls); ``x [time, batch, M]`` runs the sequence and returns
``(outputs [time, batch, N], h_T)`` like ``nn.RNN``.

References
----------
Mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §3.1, eq. (1); §4.2
(critical and off-critical initializations).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dynprobe import ModelSpec
from dynprobe.weights import draw_gaussian, draw_recurrent, generator_for

from .meanfield_cells import PHI, MeanFieldCell, check_hyper, step_weights

__all__ = ["VanillaRNN", "vanilla", "MODELS"]


class VanillaRNN(MeanFieldCell):
    """Elman RNN h' = φ(W h + V x + b) with mean-field initialization (see the module docstring).

    Parameters
    ----------
    input_size, hidden_size
        M and N.
    phi
        ``tanh``, ``relu``, ``linear``, ``erf`` or ``sigmoid``.
    sigma_w, sigma_v, sigma_b, mu_b
        Standard deviations of W·√N, V·√M and b, and the mean of b.
    weights
        ``gaussian`` or ``orthogonal`` recurrent weights.
    tied, steps
        ``tied=False`` draws ``steps`` independent (W, V, b), one per step.
    seed
        Seeds the draw (``None``: fresh entropy).
    """

    def __init__(self, input_size: int, hidden_size: int, *, phi: str = "tanh", sigma_w: float = 1.0,
                 sigma_v: float = 1.0, sigma_b: float = 0.0, mu_b: float = 0.0, weights: str = "gaussian",
                 tied: bool = True, steps: int | None = None, seed: int | None = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_hyper("vanilla", phi=phi, weights=weights, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b)
        self.phi = phi
        lead = self._setup("VanillaRNN", input_size, hidden_size, tied, steps)
        n, m = self.hidden_size, self.input_size
        self.W = nn.Parameter(torch.empty(*lead, n, n, dtype=dtype))
        self.V = nn.Parameter(torch.empty(*lead, n, m, dtype=dtype))
        self.b = nn.Parameter(torch.empty(*lead, n, dtype=dtype))
        self.reset_parameters(sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b, mu_b=mu_b, weights=weights,
                              seed=seed)

    @torch.no_grad()
    def reset_parameters(self, *, sigma_w: float, sigma_v: float, sigma_b: float = 0.0, mu_b: float = 0.0,
                         weights: str = "gaussian", seed: int | None = 0) -> None:
        """Redraw W, V, b in place from the mean-field distributions (§3.1)."""
        check_hyper("vanilla", weights=weights, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b)
        gen = generator_for(seed)
        lead, n, m, dtype = tuple(self.W.shape[:-2]), self.hidden_size, self.input_size, self.W.dtype
        self.W.copy_(draw_recurrent(lead, n, sigma_w, weights, gen, dtype))
        self.V.copy_(draw_gaussian((*lead, n, m), sigma_v / math.sqrt(max(m, 1)), gen, dtype))
        self.b.copy_(draw_gaussian((*lead, n), sigma_b, gen, dtype, mean=mu_b))
        self.weights = weights

    def cell(self, x: Tensor, h: Tensor, t: int | None = None) -> Tensor:
        """One step h' = φ(W h + V x + b) with the weights of step ``t`` (any ``t`` when tied)."""
        W, V, b = step_weights(self, ("W", "V", "b"), t)
        return PHI[self.phi](h @ W.mT + x @ V.mT + b)


def vanilla(input_size: int = 1, hidden_size: int = 64, *, phi: str = "tanh", sigma_w: float = 1.0,
            sigma_v: float = 1.0, sigma_b: float = 0.0, mu_b: float = 0.0, weights: str = "gaussian",
            tied: bool = True, steps: int | None = None, seed: int | None = 0,
            dtype: torch.dtype = torch.float32) -> VanillaRNN:
    """A :class:`VanillaRNN` (mean-field paper §3.1, eq. 1)."""
    return VanillaRNN(input_size, hidden_size, phi=phi, sigma_w=sigma_w, sigma_v=sigma_v, sigma_b=sigma_b,
                      mu_b=mu_b, weights=weights, tied=tied, steps=steps, seed=seed, dtype=dtype)


MODELS = [
    ModelSpec(
        name="vanilla",
        factory=vanilla,
        doc="Elman RNN h' = phi(W h + V x + b), mean-field parameterization (Gaussian/orthogonal W, tied/untied)",
        reference="mean-field paper §3.1, eq. (1)",
        defaults={"input_size": 1, "hidden_size": 64},
        system_defaults={"init_scale": 0.5, "drive": "autonomous"},
        presets={  # critical ones come from dynprobe.critical_init
            "ordered": {"sigma_w": 0.5, "sigma_v": 0.025},
            "chaotic": {"sigma_w": 2.0, "sigma_v": 0.025},
            "off_critical": {"sigma_w": 1.0, "sigma_v": 1.0},  # the paper's §4.2 baseline
        },
    )
]
