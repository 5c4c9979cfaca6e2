"""``wcrnn_init``: the weakly coupled residual initialization of a standard Elman RNN.

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §4.4: a type-B WCRNN,
h' = tanh(R h + ε ⊙ (W h + V x + b)), *is* an Elman RNN h' = tanh(W_hh h + W_ih x + b_ih + b_hh)
with W_hh = R + diag(ε) W, W_ih = diag(ε) V, b_ih = ε ⊙ b and b_hh = 0. Writing these weights
into ``nn.RNN`` / ``nn.RNNCell`` gives a module that trains with PyTorch's fused kernels and
starts exactly where the type-B WCRNN with the same seed starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dynprobe.errors import UnsupportedModuleError

from .wcrnn import draw_wcrnn

__all__ = ["wcrnn_init"]


def wcrnn_init(
    module: nn.RNN | nn.RNNCell | type,
    *,
    input_size: int | None = None,
    hidden_size: int | None = None,
    residual: str = "diagonal",
    alpha: float = 1.0,
    beta: float | None = None,
    omega: float | Sequence[float] | None = None,
    eps: float | Sequence[float] = 0.01,
    eps_beta: float | None = None,
    seed: int = 0,
) -> nn.RNN | nn.RNNCell:
    """Write the type-B weakly coupled residual initialization into an Elman RNN; return it.

    ``module`` is an ``nn.RNN`` / ``nn.RNNCell`` instance (changed in place, every layer), or the
    class itself together with ``input_size`` and ``hidden_size`` (a tanh module is built).
    W, V, b are drawn like ``nn.Linear`` and R, ε as for ``dynprobe.model("wcrnn", form="B", ...)``
    with the same ``seed`` — layer 0 matches that model exactly; layer l uses ``seed + l``.

    Parameters
    ----------
    module
        The module (or class) to initialize. Bidirectional modules are refused.
    residual, alpha, beta, omega, eps, eps_beta
        As for :func:`dynprobe.plugins.models.wcrnn.wcrnn`.
    seed
        Seeds the draws.

    References
    ----------
    Fading-memory paper §4.4, eq. 19 ("weakly coupled residual initialization").

    Example
    -------
    >>> rnn = wcrnn_init(nn.RNN(1, 64), residual="diagonal", alpha=1.0, eps=0.01)
    """
    if isinstance(module, type):
        if not issubclass(module, (nn.RNN, nn.RNNCell)) or input_size is None or hidden_size is None:
            raise UnsupportedModuleError(
                f"wcrnn_init: got the class {module.__name__}; pass an nn.RNN/nn.RNNCell instance, or the class "
                "with input_size= and hidden_size="
            )
        module = module(input_size, hidden_size)
    if not isinstance(module, (nn.RNN, nn.RNNCell)):
        raise UnsupportedModuleError(
            f"wcrnn_init: {type(module).__name__} is not an Elman RNN; pass nn.RNN or nn.RNNCell (the type-B form needs "
            "h' = σ(W_hh h + W_ih x + b))"
        )
    if getattr(module, "bidirectional", False):
        raise UnsupportedModuleError("wcrnn_init: bidirectional RNNs are not supported; pass bidirectional=False")
    layers = getattr(module, "num_layers", 1)
    cell = isinstance(module, nn.RNNCell)
    n = module.hidden_size
    with torch.no_grad():
        for layer in range(layers):
            m = module.input_size if layer == 0 else n
            gen = torch.Generator().manual_seed(int(seed) + layer)
            p = draw_wcrnn(m, n, residual=residual, alpha=alpha, beta=beta, omega=omega, eps=eps,
                           eps_beta=eps_beta, generator=gen)
            e = p["eps"].unsqueeze(-1)
            values = {"weight_hh": p["R"] + e * p["weight_hh"], "weight_ih": e * p["weight_ih"],
                      "bias_ih": p["eps"] * p["bias"], "bias_hh": torch.zeros(n, dtype=torch.float64)}
            for name, value in values.items():
                key = name if cell else f"{name}_l{layer}"
                target = getattr(module, key, None)
                if target is None:
                    if name.startswith("bias") and not bool(value.any()):
                        continue
                    raise UnsupportedModuleError(
                        f"wcrnn_init: the module has no {key} (bias=False?); the type-B bias b needs bias=True"
                    )
                target.copy_(value.to(target.dtype))
    return module
