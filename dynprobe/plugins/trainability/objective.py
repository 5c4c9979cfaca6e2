"""A model, its readout, a batch of task data and a loss — as one function of the parameters.

How a trainability probe receives what it needs (the choice, written down):

* the **model** is the System (its step, with its parameters as a dict — so the loss is a pure
  function of any of them, and ``torch.func`` differentiates it);
* the **readout** is the System's own ``readout`` (``dynprobe.wrap(module, readout=head)`` or
  ``system.with_readout(head)``: the trained affine head), or, with ``readout="linear_init"``, a fresh
  affine map drawn like ``nn.Linear`` from the probe's seed (a network at initialization, as in the
  paper's Fig. 2);
* the **batch** comes from a probe parameter ``data``: the name of an installed data set (built
  through the registry with ``data_options``, ``samples=batch`` and ``seed`` when it takes them) or a
  :class:`dynprobe.tasks.SequenceData` passed from Python; its first ``batch`` samples are used.
  The data's inputs replace the System's drive; every sequence starts from h_0 = 0;
* the **loss** is a name: ``cross_entropy`` (classification), ``mse`` or ``rms`` (regression), or
  ``auto`` — the paper's choice for the task (cross-entropy, or RMS).

A probe thus never opens a file: file-based data sets read their own files when built.

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.2 (an affine readout on the final
state, the loss a function of h_T; cross-entropy for classification, RMS for regression).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData, sequence_data

__all__ = ["Objective", "build_objective", "LossName", "ReadoutChoice", "loss_value"]

LossName = Literal["auto", "mse", "rms", "cross_entropy"]
ReadoutChoice = Literal["system", "linear_init"]


def loss_value(outputs: Tensor, targets: Tensor, loss: str) -> Tensor:
    """Batch-mean loss per network: outputs ``[*lead, batch, (time,) K]`` → ``[*lead]``."""
    lead = outputs.shape[: outputs.ndim - targets.ndim - (1 if loss == "cross_entropy" else 0)]
    if loss == "cross_entropy":
        logits = outputs.reshape(-1, outputs.shape[-1])
        labels = targets.expand(*lead, *targets.shape).reshape(-1)
        return F.cross_entropy(logits, labels, reduction="none").reshape(*lead, -1).mean(-1)
    sq = (outputs - targets).pow(2).reshape(*lead, -1).mean(-1)
    return sq.sqrt() if loss == "rms" else sq


@dataclass(frozen=True)
class Objective:
    """Everything a trainability probe evaluates: see the module docstring.

    ``inputs [time, batch, M]`` in the System's dtype; ``targets`` as in the data; ``loss`` resolved.
    """

    system: System
    inputs: Tensor
    targets: Tensor
    loss: str
    readout: Callable[[Tensor], Tensor]
    readout_kind: str
    data: SequenceData

    @property
    def steps(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def batch(self) -> int:
        return int(self.inputs.shape[1])

    def rollout(self, params: Mapping[str, Tensor] | None = None, *, track_h0: bool = False) -> list[Tensor]:
        """States h_0 = 0, h_1, …, h_T (each ``[*lead, batch, N]``) under the data's inputs
        (``track_h0``: h_0 requires grad, so ∂L/∂h_0 can be asked for)."""
        lead = self.system.lead_shape(self.batch)
        h = self.inputs.new_zeros(*lead, self.system.state_dim)
        if track_h0:
            h.requires_grad_(True)
        states = [h]
        for t in range(self.steps):
            h = self.system.step(h, self.inputs[t].expand(*lead, self.system.input_dim), params)
            states.append(h)
        return states

    def loss_from_states(self, states: list[Tensor]) -> Tensor:
        """Per-network batch loss ``[*lead]`` from the states of :meth:`rollout`."""
        if self.data.every_step:
            outputs = self.readout(torch.stack(states[1:], dim=-2))  # [*lead, batch, time, K]
        else:
            outputs = self.readout(states[-1])
        return loss_value(outputs, self.targets, self.loss)

    def value(self, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """The loss as a function of the System's parameters."""
        return self.loss_from_states(self.rollout(params))

    def attrs(self) -> dict[str, Any]:
        """Facts about the data, loss and readout for the result's attrs."""
        from dynprobe.results import to_json

        return {"data": self.data.name, "data_attrs": to_json(dict(self.data.attrs)), "loss": self.loss,
                "readout": self.readout_kind, "batch": self.batch, "steps": self.steps}


def _readout(probe: str, system: System, data: SequenceData, choice: str, seed: int) -> tuple[Callable[[Tensor], Tensor], str]:
    k, n = data.output_size, system.state_dim
    if choice == "linear_init":
        gen = torch.Generator().manual_seed(int(seed) + 7919)
        bound = 1.0 / math.sqrt(n)
        weight = ((torch.rand(k, n, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(system.dtype)
        bias = ((torch.rand(k, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(system.dtype)
        return (lambda h: F.linear(h, weight, bias)), f"linear_init (nn.Linear({n}, {k}) draw, seed {seed})"
    if choice != "system":
        raise ProbeParameterError(f"probe {probe!r}: readout must be 'system' or 'linear_init', got {choice!r}")
    fix = ("attach the model's trained head with dynprobe.wrap(module, readout=head) or system.with_readout(head), "
           "or pass readout='linear_init' for a fresh nn.Linear-style head")
    if system.readout is None:
        raise ProbeParameterError(f"probe {probe!r}: {system.name} has no readout; {fix}")
    with torch.no_grad():
        got = system.output(torch.zeros(*system.lead_shape(1), n, dtype=system.dtype, device=system.device)).shape[-1]
    if got != k:
        raise ProbeParameterError(f"probe {probe!r}: the readout gives {got} outputs but data {data.name!r} needs {k}; {fix}")
    return system.readout, "system"


def build_objective(
    probe: str,
    system: System,
    *,
    data: str | SequenceData,
    data_options: Mapping[str, Any] | None,
    batch: int,
    loss: str,
    readout: str,
    seed: int,
) -> Objective:
    """Resolve a trainability probe's parameters into an :class:`Objective` (one-line errors)."""
    if batch < 1:
        raise ProbeParameterError(f"probe {probe!r}: batch must be >= 1, got {batch}")
    seq = sequence_data(probe, data, data_options, samples=batch, seed=seed)
    seq = seq.head(min(batch, seq.samples))
    if seq.channels != system.input_dim:
        raise ProbeParameterError(
            f"probe {probe!r}: data {seq.name!r} has {seq.channels} input channels but {system.name} takes "
            f"M={system.input_dim}; use a model with input_size={seq.channels}"
        )
    resolved = {"classification": "cross_entropy", "regression": "rms"}[seq.task] if loss == "auto" else loss
    if resolved not in ("mse", "rms", "cross_entropy"):
        raise ProbeParameterError(f"probe {probe!r}: loss must be auto, mse, rms or cross_entropy, got {loss!r}")
    if (resolved == "cross_entropy") != (seq.task == "classification"):
        raise ProbeParameterError(
            f"probe {probe!r}: loss {resolved!r} does not fit the {seq.task} data {seq.name!r}; use loss='auto'"
        )
    head, kind = _readout(probe, system, seq, readout, seed)
    targets = seq.targets.to(system.device)
    if targets.is_floating_point():
        targets = targets.to(system.dtype)
    inputs = seq.time_major().to(device=system.device, dtype=system.dtype)
    return Objective(system, inputs, targets, resolved, head, kind, seq)
