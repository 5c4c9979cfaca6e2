"""``orthogonal_rnn``: an Elman RNN whose recurrent matrix stays orthogonal during training.

The attractors paper's oRNN (§5; Lezcano-Casado & Martínez-Rubio 2019) keeps W_hh on the
orthogonal group, so all its eigenvalues have modulus one: no Neimark–Sacker or pitchfork
bifurcation can move them, and the network must learn attractors differently (§5.1–5.2). Here the
constraint is PyTorch's own ``torch.nn.utils.parametrizations.orthogonal`` on an ``nn.RNN``; the
bundled adapter reads the weights through ``getattr``, so the System always sees the current
orthogonal matrix.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations

from dynprobe import ModelSpec

__all__ = ["orthogonal_rnn", "MODELS"]


def orthogonal_rnn(
    input_size: int = 1,
    hidden_size: int = 64,
    nonlinearity: str = "tanh",
    bias: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.RNN:
    """An ``nn.RNN`` (one layer) with ``weight_hh_l0`` parametrized to stay orthogonal.

    Parameters
    ----------
    input_size, hidden_size, nonlinearity, bias
        As for ``nn.RNN``.
    seed
        Seeds the initial weights (the global RNG is left untouched).
    dtype
        Parameter dtype.

    Returns
    -------
    nn.RNN
        Train it like any module; ``W = rnn.weight_hh_l0`` satisfies WᵀW = I after every step.

    References
    ----------
    Attractors paper §5 (oRNN); Lezcano-Casado & Martínez-Rubio (2019).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, bias=bias).to(dtype)
        parametrizations.orthogonal(rnn, "weight_hh_l0")
    return rnn


MODELS = [
    ModelSpec(
        name="orthogonal_rnn",
        factory=orthogonal_rnn,
        doc="Elman RNN with an orthogonal recurrent matrix kept orthogonal by torch's parametrization (oRNN)",
        reference="attractors paper §5; Lezcano-Casado & Martinez-Rubio (2019)",
        defaults={"input_size": 1, "hidden_size": 64},
        system_defaults={"init_scale": 0.5, "drive": "autonomous"},
    )
]
