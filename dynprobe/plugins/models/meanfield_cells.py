"""Shared pieces of the mean-field reference cells (``vanilla``, ``minimalrnn``).

Both cells are drawn in the mean-field parameterization of the mean-field paper §3: recurrent
weights W ~ N(0, σ_w²/N) or σ_w·(Haar orthogonal), input weights V ~ N(0, σ_v²/fan_in), biases
b ~ N(μ_b, σ_b²); with ``tied=False`` every step has its own (W, V, b) — the untied network the
theory describes — stored as a leading ``step`` axis of length ``steps``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dynprobe.errors import ProbeParameterError

__all__ = ["PHI", "MeanFieldCell", "check_hyper", "UntiedStepError", "step_weights"]

PHI = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda x: x,
    "erf": torch.erf,
    "sigmoid": torch.sigmoid,
}
"""Activations by name (the names :mod:`dynprobe.plugins.meanfield` integrates)."""


class UntiedStepError(ProbeParameterError):
    """A single step h ↦ F(h) was asked of a network whose weights differ at every step."""


def check_hyper(name: str, *, phi: str | None = None, weights: str = "gaussian", **sigmas: float) -> None:
    """One-line errors for an unknown activation, weight law or a negative standard deviation."""
    if phi is not None and phi not in PHI:
        raise ProbeParameterError(f"model {name!r}: unknown phi={phi!r}; use one of {', '.join(PHI)}")
    if weights not in ("gaussian", "orthogonal"):
        raise ProbeParameterError(f"model {name!r}: weights={weights!r}; use 'gaussian' or 'orthogonal'")
    for key, value in sigmas.items():
        if not (value >= 0 and math.isfinite(value)):
            raise ProbeParameterError(f"model {name!r}: {key}={value} must be a finite standard deviation >= 0")


def step_weights(module: nn.Module, names: tuple[str, ...], t: int | None) -> tuple[Tensor, ...]:
    """The parameters ``names`` used at step ``t`` (the same at every step when tied)."""
    params = tuple(getattr(module, n) for n in names)
    if module.tied:
        return params
    if t is None:
        raise UntiedStepError(
            f"{type(module).__name__}(tied=False) has different weights at every step, so it is not one map "
            "h -> F(h); run it on a whole sequence x of shape [time, batch, M], or build it with tied=True"
        )
    if t >= module.steps:
        raise UntiedStepError(
            f"{type(module).__name__}(tied=False, steps={module.steps}) has weights for {module.steps} steps but "
            f"the sequence has more; build it with steps >= the sequence length"
        )
    return tuple(p[t] for p in params)


class MeanFieldCell(nn.Module):
    """What the two cells share: tied/untied bookkeeping, and ``forward(x, h)`` — ``x [batch, M]``
    is one step returning ``(h', h')`` (tied only: what :func:`dynprobe.wrap` calls); ``x [time,
    batch, M]`` runs the sequence and returns ``(outputs [time, batch, N], h_T)`` like ``nn.RNN``.
    Subclasses define ``cell(x, h, t)``."""

    def _setup(self, name: str, input_size: int, hidden_size: int, tied: bool, steps: int | None) -> tuple[int, ...]:
        if not tied and (steps is None or steps < 1):
            raise ValueError(f"{name}(tied=False) needs steps >= 1: one set of weights per step")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.tied, self.steps = bool(tied), (None if tied else int(steps))
        return () if tied else (self.steps,)

    def cell(self, x: Tensor, h: Tensor, t: int | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if h is None:
            h = x.new_zeros(*x.shape[-2:-1], self.hidden_size)
        if x.ndim == 2:
            h = self.cell(x, h)
            return h, h
        outs = []
        for t in range(x.shape[0]):
            h = self.cell(x[t], h, t)
            outs.append(h)
        return torch.stack(outs), h

    def extra_repr(self) -> str:
        tied = "tied" if self.tied else f"untied, steps={self.steps}"
        return f"{self.input_size}, {self.hidden_size}, phi={self.phi}, weights={self.weights}, {tied}"
