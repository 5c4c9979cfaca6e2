"""Bundled adapters: ``nn.RNN/GRU/LSTM`` and their cells re-expressed as pure steps.

Registered through the ``dynprobe`` entry-point group like any third-party plugin. The generic
``forward(x, h) -> (y, h)`` adapter lives in :mod:`dynprobe.plugins.adapters.generic` (``trylast``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

import dynprobe

from .torch_rnn import wrap_torch_rnn

__all__ = ["dynprobe_adapt"]

_SUPPORTED = (nn.RNN, nn.GRU, nn.LSTM, nn.RNNCell, nn.GRUCell, nn.LSTMCell)


@dynprobe.hookimpl
def dynprobe_adapt(module: Any, options: dict[str, Any]) -> dynprobe.System | None:
    """Adapt the six built-in recurrent modules; ``None`` for anything else."""
    if isinstance(module, _SUPPORTED):
        return wrap_torch_rnn(module, options)
    return None
