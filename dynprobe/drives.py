"""Drives: how the input u_t of a System is produced.

* :func:`autonomous` — u = 0, the induced autonomous system (attractors paper §2);
* :func:`constant` — u_t = ū for every t (the attractors paper's bifurcation diagrams);
* :func:`sequence` — u_t = U[t], input-driven: exponents are then *conditional* on that input
  (fading-memory paper §2.1, App. A);
* :func:`feedback` — u_t = g(h_t), the output fed back as the next input, the inference mode of
  generative RNNs (attractors paper §5.1, sine-wave generation).

A drive is split in two so that linearization sees the right map: :meth:`Drive.external` gives
what comes from outside (computed outside any ``torch.func`` transform), :meth:`Drive.close`
turns it into the input actually applied — which for :func:`feedback` depends on the state and
is therefore differentiated through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .errors import DriveError

if TYPE_CHECKING:
    from .system import System

__all__ = [
    "Drive",
    "AutonomousDrive",
    "ConstantDrive",
    "SequenceDrive",
    "FeedbackDrive",
    "autonomous",
    "constant",
    "sequence",
    "feedback",
    "parse_drive",
]


def _converted(drive: Drive, name: str, system: System) -> Tensor:
    """The drive's tensor ``name`` in the system's dtype and on its device, converted once per
    (device, dtype) and reused while the attribute holds the same tensor (a host-to-device copy
    per step would stall a GPU's hot loop)."""
    source = getattr(drive, name)
    cache = drive.__dict__.setdefault("_converted", {})
    key = (name, system.device, system.dtype)
    hit = cache.get(key)
    if hit is None or hit[0] is not source:
        hit = cache[key] = (source, source.to(device=system.device, dtype=system.dtype))
    return hit[1]


class Drive(ABC):
    """The input protocol of a System. Subclasses are small and immutable."""

    kind: str = "drive"
    time_varying: bool = False

    def __getstate__(self) -> dict:
        """Pickle without the per-device copies (a worker may not have the device)."""
        return {k: v for k, v in self.__dict__.items() if k != "_converted"}

    def check(self, system: System) -> None:  # noqa: B027 - optional hook
        """Raise :class:`DriveError` if this drive does not fit ``system``."""

    def require(self, system: System, steps: int) -> None:  # noqa: B027 - optional hook
        """Raise :class:`DriveError` if the drive cannot supply ``steps`` steps."""

    @abstractmethod
    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        """The externally given input at step ``t``, shape ``[*lead, M]``."""

    def close(self, system: System, h: Tensor, u: Tensor) -> Tensor:
        """The input applied for states ``h`` (depends on ``h`` only for feedback)."""
        return u

    @abstractmethod
    def describe(self) -> str:
        """Short text for provenance, e.g. ``constant(0.5)``."""


class AutonomousDrive(Drive):
    """u_t = 0 (made by :func:`autonomous`)."""

    kind = "autonomous"

    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        return torch.zeros(*lead, system.input_dim, dtype=system.dtype, device=system.device)

    def describe(self) -> str:
        return "autonomous"


class ConstantDrive(Drive):
    """u_t = ū (made by :func:`constant`).

    Attributes
    ----------
    value
        ū as a float64 tensor: a scalar (the same level on every input) or ``[M]``;
        :meth:`level` gives it as ``[M]`` for a given system.
    """

    kind = "constant"

    def __init__(self, value: Tensor) -> None:
        self.value = value

    def level(self, system: System) -> Tensor:
        """ū as ``[M]`` in the system's dtype and device."""
        return self.value.to(device=system.device, dtype=system.dtype).expand(system.input_dim)

    def check(self, system: System) -> None:
        fits = self.value.ndim == 0 or (self.value.ndim == 1 and self.value.shape[0] == system.input_dim)
        if system.input_dim == 0 or not fits:
            raise DriveError(
                f"drive 'constant': input of shape {list(self.value.shape)} does not fit M={system.input_dim} "
                f"inputs of {system.name}; pass a scalar or a vector of length {system.input_dim}"
                + (" (the system takes no input: use autonomous())" if system.input_dim == 0 else "")
            )

    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        u = _converted(self, "value", system)
        return u.expand(*lead, system.input_dim)

    def describe(self) -> str:
        vals = self.value.detach().cpu().reshape(-1).tolist()
        shown = ", ".join(f"{v:.4g}" for v in vals[:4]) + (", ..." if len(vals) > 4 else "")
        return f"constant({shown})"


class SequenceDrive(Drive):
    """u_t = U[t] (made by :func:`sequence`).

    Attributes
    ----------
    inputs
        U as ``[time, batch, M]`` (one row per sample) or ``[time, M]``; :meth:`rows` gives
        every input it holds as ``[K, M]``.
    cycle
        Whether a run longer than U starts it again (u_t = U[t mod time]); refused otherwise.
    """

    kind = "sequence"
    time_varying = True

    def __init__(self, inputs: Tensor, *, cycle: bool = False) -> None:
        self.inputs = inputs
        self.cycle = cycle

    @property
    def steps(self) -> int:
        """How many steps of input the sequence holds."""
        return int(self.inputs.shape[0])

    def rows(self, steps: int | None = None) -> Tensor:
        """Every input row of the first ``steps`` steps (all by default) as ``[K, M]``."""
        return self.inputs[:steps].reshape(-1, self.inputs.shape[-1])

    def check(self, system: System) -> None:
        if self.inputs.ndim not in (2, 3, 4) or self.inputs.shape[-1] != system.input_dim:
            raise DriveError(
                f"drive 'sequence': inputs of shape {list(self.inputs.shape)} do not fit {system.name}; "
                f"pass [time, batch, {system.input_dim}] or [time, {system.input_dim}]"
            )

    def require(self, system: System, steps: int) -> None:
        if self.inputs.shape[0] < steps and not self.cycle:
            raise DriveError(
                f"drive '{self.describe()}': has {self.inputs.shape[0]} steps but the run needs {steps}; "
                "pass a longer sequence, fewer steps (burn_in + steps), or cycle=True (CLI: --cycle-input) "
                "to start it again"
            )

    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        if t >= self.inputs.shape[0]:
            if not self.cycle:
                self.require(system, t + 1)
            t %= self.inputs.shape[0]
        u = _converted(self, "inputs", system)[t]
        rows, samples = (u.shape[-2] if u.ndim >= 2 else 1), (lead[-1] if lead else 1)
        if u.ndim >= 2 and rows not in (1, samples):
            # more (or fewer) samples than rows: sample i is driven by row i mod rows
            u = u.index_select(-2, torch.arange(samples, device=u.device) % rows)
        try:
            return torch.broadcast_to(u, (*lead, system.input_dim))
        except RuntimeError as err:
            raise DriveError(
                f"drive 'sequence': inputs per step have shape {list(u.shape)} but the run's states have "
                f"leading shape {list(lead)}; give one input row per sample (or one for all)"
            ) from err

    def describe(self) -> str:
        return f"sequence({'x'.join(map(str, self.inputs.shape))}{', cycled' if self.cycle else ''})"


class FeedbackDrive(Drive):
    """u_t = g(h_t) (made by :func:`feedback`); ``readout`` is g, or ``None`` for the System's own."""

    kind = "feedback"

    def __init__(self, readout: Callable[[Tensor], Tensor] | None) -> None:
        self.readout = readout

    def _readout(self, system: System) -> Callable[[Tensor], Tensor]:
        readout = self.readout or system.readout
        if readout is None:
            raise DriveError(
                f"drive 'feedback': {system.name} has no readout; pass feedback(readout) with a map "
                "from the state [*, N] to the next input [*, M]"
            )
        return readout

    def check(self, system: System) -> None:
        probe = torch.zeros(1, system.state_dim, dtype=system.dtype, device=system.device)
        with torch.no_grad():
            y = self._readout(system)(probe)
        if y.shape[-1] != system.input_dim:
            raise DriveError(
                f"drive 'feedback': readout gives {y.shape[-1]} outputs but {system.name} takes "
                f"M={system.input_dim} inputs; use a readout with {system.input_dim} outputs"
            )

    def external(self, system: System, t: int, lead: tuple[int, ...]) -> Tensor:
        return torch.zeros(*lead, system.input_dim, dtype=system.dtype, device=system.device)

    def close(self, system: System, h: Tensor, u: Tensor) -> Tensor:
        return self._readout(system)(h)

    def describe(self) -> str:
        return "feedback"


def autonomous() -> Drive:
    """u_t = 0: the autonomous system induced by the RNN (attractors paper §2)."""
    return AutonomousDrive()


def constant(u: float | Tensor | np.ndarray | list[float]) -> Drive:
    """u_t = ū for every step: a scalar (the same level on every input) or a vector of length M."""
    value = torch.as_tensor(u, dtype=torch.float64)
    if not torch.isfinite(value).all():
        raise DriveError("drive 'constant': input contains NaN or inf; pass finite values")
    return ConstantDrive(value)


def sequence(U: Tensor | np.ndarray, *, cycle: bool = False) -> SequenceDrive:
    """u_t = U[t]: U of shape ``[time, batch, M]`` (one row per sample) or ``[time, M]`` (the
    same input for every sample). A run needing more steps than U holds is refused, naming
    both numbers, unless ``cycle=True`` (u_t = U[t mod time]).

    When a run has a different number of samples than U has rows, sample i is driven by row
    i mod batch, so any probe works with any sequence. Lyapunov exponents along a sequence are
    *conditional* on that input (fading-memory paper §2.1). A ``PackedSequence`` is refused:
    pad it (``pad_packed_sequence``) first.
    """
    if isinstance(U, torch.nn.utils.rnn.PackedSequence):
        raise DriveError(
            "drive 'sequence': got a PackedSequence; pad it with torch.nn.utils.rnn.pad_packed_sequence "
            "and pass the padded [time, batch, M] tensor"
        )
    value = torch.as_tensor(U)
    if value.is_complex():
        raise DriveError("drive 'sequence': complex inputs; pass real values")
    if not value.is_floating_point():
        if value.dtype != torch.bool:
            raise DriveError(
                f"drive 'sequence': got {str(value.dtype).removeprefix('torch.')} values; token ids go through the "
                "model's encoder with dynprobe.tokens(ids), real-valued inputs must be floats")
        value = value.to(torch.get_default_dtype())
    if not torch.isfinite(value).all():
        raise DriveError("drive 'sequence': inputs contain NaN or inf; pass finite values")
    return SequenceDrive(value, cycle=cycle)


def feedback(readout: Callable[[Tensor], Tensor] | None = None) -> Drive:
    """u_t = g(h_t): the readout fed back as the next input (closed loop).

    ``readout`` maps states ``[*, N]`` to inputs ``[*, M]``; by default the System's own
    readout (for ``nn.RNN/GRU/LSTM``: the top layer's ``h``). Linearization differentiates
    through it: the exponents are those of the closed-loop map.
    """
    return FeedbackDrive(readout)


def parse_drive(text: str, *, vocab: str | None = None, cycle: bool = False) -> Drive:
    """Parse the CLI form (``--input``): ``autonomous`` / ``zero``, ``constant`` (1 on every
    input), ``constant:0.5`` (0.5 on every input) or ``constant:0.1,0.2`` (one value per
    input), ``feedback``, or a file (:func:`dynprobe.inputs.read_input`): real-valued
    ``[time, batch, M]`` inputs (``.npy`` / ``.pt``), integer token ids ``[time, batch]``, or a
    text file read word by word with the vocabulary ``vocab``. Token ids give an unbound
    :class:`~dynprobe.tokendrive.TokenDrive` that the model's encoder binds."""
    text = text.strip()
    if text in ("autonomous", "zero", "none"):
        return autonomous()
    if text == "feedback":
        return feedback()
    if text.startswith("constant") and not Path(text).exists():
        _, _, rest = text.partition(":")
        try:
            values = [float(v) for v in rest.split(",")] if rest else [1.0]
        except ValueError as err:
            raise DriveError(f"drive {text!r}: expected constant:<number>[,<number>...]") from err
        return constant(values[0] if len(values) == 1 else values)  # one number: the same on every input
    from .inputs import read_input
    from .tokendrive import TokenDrive

    kind, value = read_input(text, vocab=vocab)
    return TokenDrive(value, cycle=cycle) if kind == "tokens" else sequence(value, cycle=cycle)
