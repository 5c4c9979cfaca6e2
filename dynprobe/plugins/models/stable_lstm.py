"""``stable_lstm``: an LSTM projected back into a contractive region after every update.

Miller & Hardt (2019) train "stable" recurrent models by projecting the weights, after each
gradient step, onto a set where the state-transition map is a contraction; the attractors paper
(§5) compares such an sLSTM with the LSTM and the oRNN. This module uses a sufficient condition
derived for PyTorch's LSTM (gates i, f, g, o) in the norm max(‖Δh‖∞, ‖Δc‖∞): with inputs
bounded by |u|∞ ≤ ``input_bound``,

1. every forget-gate pre-activation stays below a_max = logit(``forget_max``):
   ‖W_f,j‖₁ + input_bound·‖U_f,j‖₁ + b_f,j ≤ a_max (the bias is lowered when needed);
2. every unit's recurrent rows satisfy ‖W_o,j‖₁/4 + C‖W_f,j‖₁/4 + ‖W_i,j‖₁/4 + ‖W_g,j‖₁
   ≤ ``lipschitz`` − forget_max, C = 1/(1 − forget_max) (the four rows are scaled down together).

Then the step is a contraction with constant ≤ ``lipschitz`` < 1 on the invariant box |h| ≤ 1,
|c| ≤ C — the bound :func:`dynprobe.plugins.entropy.lstm_bound` evaluates (it certifies the result).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dynprobe import ModelSpec
from dynprobe.errors import ProbeParameterError

__all__ = ["StableLSTM", "stable_lstm", "MODELS"]


class StableLSTM(nn.LSTM):
    """A one-layer ``nn.LSTM`` with :meth:`project_` (call after each optimizer step, or
    :meth:`attach` an optimizer to do it automatically). Projected at construction."""

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, lipschitz: float = 0.95,
                 forget_max: float = 0.5, input_bound: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, num_layers=1, bias=bias)
        if not 0 < forget_max < lipschitz < 1:
            raise ProbeParameterError(
                f"stable_lstm: need 0 < forget_max < lipschitz < 1 (got forget_max={forget_max}, lipschitz={lipschitz})"
            )
        if input_bound < 0:
            raise ProbeParameterError(f"stable_lstm: input_bound must be >= 0, got {input_bound}")
        self.lipschitz, self.forget_max, self.input_bound = float(lipschitz), float(forget_max), float(input_bound)
        self.project_()

    @torch.no_grad()
    def project_(self) -> StableLSTM:
        """Project the weights onto the contractive set (in place); returns self."""
        H = self.hidden_size
        W, U = self.weight_hh_l0, self.weight_ih_l0
        C = 1.0 / (1.0 - self.forget_max)
        budget = self.lipschitz - self.forget_max
        rows = [W[k * H:(k + 1) * H].abs().sum(dim=1) for k in range(4)]  # i, f, g, o
        need = rows[3] / 4 + C * rows[1] / 4 + rows[0] / 4 + rows[2]
        shrink = torch.where(need > budget, budget / need, torch.ones_like(need))
        for k in range(4):
            W[k * H:(k + 1) * H] *= shrink.unsqueeze(1)
        a_max = math.log(self.forget_max / (1.0 - self.forget_max))
        pre = W[H:2 * H].abs().sum(dim=1) + self.input_bound * U[H:2 * H].abs().sum(dim=1)
        if self.bias:
            excess = (pre + self.bias_ih_l0[H:2 * H] + self.bias_hh_l0[H:2 * H] - a_max).clamp_min(0)
            self.bias_ih_l0[H:2 * H] -= excess
        else:
            scale = torch.where(pre > a_max, a_max / pre.clamp_min(1e-300), torch.ones_like(pre)).clamp_min(0)
            W[H:2 * H] *= scale.unsqueeze(1)
            U[H:2 * H] *= scale.unsqueeze(1)
        return self

    def attach(self, optimizer: torch.optim.Optimizer) -> StableLSTM:
        """Project after every ``optimizer.step()``; returns self."""
        optimizer.register_step_post_hook(lambda *args, **kwargs: self.project_())
        return self


def stable_lstm(
    input_size: int = 1,
    hidden_size: int = 64,
    bias: bool = True,
    lipschitz: float = 0.95,
    forget_max: float = 0.5,
    input_bound: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> StableLSTM:
    """A one-layer LSTM kept contractive by projection (Miller & Hardt 2019; attractors paper §5).

    Returns a :class:`StableLSTM` (an ``nn.LSTM``, so the bundled adapter wraps it); call
    ``model.attach(optimizer)`` when training so each update is followed by the projection.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = StableLSTM(input_size, hidden_size, bias=bias, lipschitz=lipschitz, forget_max=forget_max,
                           input_bound=input_bound).to(dtype)
    return model.project_()


MODELS = [
    ModelSpec(
        name="stable_lstm",
        factory=stable_lstm,
        doc="LSTM projected onto a contractive region after every update (sLSTM, Miller & Hardt 2019)",
        reference="attractors paper §5; Miller & Hardt (2019) §4",
        defaults={"input_size": 1, "hidden_size": 64},
        system_defaults={"init_scale": 0.5, "drive": "autonomous"},
    )
]
