"""``lstm2d_chaotic``: the attractors paper's 2-unit, bias-free chaotic LSTM.

Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §4.1, Fig. 1: an LSTM of
dimension two without bias terms whose induced autonomous system is chaotic at θ_true; the
bifurcation diagram along θ(s) = s·θ_true shows chaos for 0.9 ≲ s ≲ 1.45. Recurrent weights in
PyTorch gate order (i, f, g, o), rows are units; input weights zero; start state h₀ = c₀ = 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

from dynprobe import ModelSpec

__all__ = ["lstm2d_chaotic", "MODELS", "W_HH", "FIG1_SWEEP"]

W_HH = (
    ((-1.0, -4.0), (-3.0, -2.0)),  # W_hi
    ((-2.0, 6.0), (0.0, -6.0)),  # W_hf
    ((-1.0, -6.0), (6.0, -9.0)),  # W_hg
    ((4.0, 1.0), (-9.0, -7.0)),  # W_ho
)


def lstm2d_chaotic(scale: float = 1.0, dtype: torch.dtype = torch.float64) -> nn.LSTM:
    """The chaotic 2-D LSTM at θ(s) = s·θ_true (``scale`` = s; 1 is the paper's θ_true).

    Returns an ``nn.LSTM(input_size=1, hidden_size=2, bias=False)`` with zero input weights.

    References
    ----------
    Attractors paper §4.1 and Fig. 1.
    """
    lstm = nn.LSTM(input_size=1, hidden_size=2, bias=False).to(dtype)
    with torch.no_grad():
        lstm.weight_hh_l0.copy_(scale * torch.tensor(W_HH, dtype=dtype).reshape(8, 2))
        lstm.weight_ih_l0.zero_()
    return lstm


FIG1_SWEEP = {
    "path": "scale",
    "values": "0.5:2.0:301",
    "burn_in": 100,
    "steps": 100,
    "projection": "unit:0",
    "spread": 100.0,
}
"""The paper's Fig. 1 sweep as ``bifurcation`` options: θ(s) = s·θ_true for s ∈ [0.5, 2], 200 steps
with the first 100 discarded, the first output h₁ plotted, plus very spread initial states
(std 100). Run it with ``dynprobe.run("bifurcation", system, sweep="lstm2d_chaotic")``."""

MODELS = [
    ModelSpec(
        name="lstm2d_chaotic",
        factory=lstm2d_chaotic,
        doc="2-unit bias-free LSTM with a chaotic attractor at θ_true (the attractors paper's Fig. 1)",
        reference="attractors paper §4.1, Fig. 1",
        system_defaults={"initial_state": [0.5, 0.5, 0.5, 0.5], "init_scale": 0.5, "drive": "autonomous",
                         "bifurcation": FIG1_SWEEP},
    )
]
