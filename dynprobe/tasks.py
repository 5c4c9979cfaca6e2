"""Task data: the inputs and targets of a sequence task, with named shapes.

Data-set plugins return a :class:`SequenceData`; probes that need a batch and a loss
(gradient propagation, loss Hessians, loss scans) accept one, so a third party's data set
works with them without importing any bundled plugin. It is also a
``torch.utils.data.Dataset`` (``data[i] -> (inputs[i], targets[i])``), so a ``DataLoader``
trains on it directly.

Shapes (the names are in :attr:`SequenceData.dims`)

* ``inputs``: ``[sample, time, channel]`` floats (batch first, as a ``DataLoader`` collates);
* ``targets``: ``[sample]`` int64 class labels (classification), ``[sample, output]`` floats
  (regression on the final state), or ``[sample, time, output]`` floats (a target at every step).

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §4: sMNIST / psMNIST / sCIFAR10
classification and the adding problem (regression), read out from the final state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from .errors import ProbeParameterError

__all__ = ["SequenceData", "sequence_data"]

Task = Literal["classification", "regression"]


@dataclass(frozen=True, eq=False)
class SequenceData(torch.utils.data.Dataset):
    """Inputs and targets of a sequence task.

    Parameters
    ----------
    inputs
        ``[sample, time, channel]`` floating-point inputs.
    targets
        ``[sample]`` int64 labels for ``task="classification"``; ``[sample, output]`` (final
        state) or ``[sample, time, output]`` (every step) floats for ``task="regression"``.
    task
        ``"classification"`` (cross-entropy over ``num_classes`` logits) or ``"regression"``.
    name
        The data set's name (e.g. ``"adding"``).
    num_classes
        Number of classes (classification only).
    attrs
        Facts about how the data was made — source file or library, seed, sequence length —
        as str / int / float values (netCDF-safe, so a probe can copy them into its result).

    Example
    -------
    >>> data = dynprobe.dataset("adding", T=100, samples=256, seed=0)
    >>> data.inputs.shape, data.targets.shape
    (torch.Size([256, 100, 2]), torch.Size([256, 1]))
    """

    inputs: Tensor
    targets: Tensor
    task: Task
    name: str = "data"
    num_classes: int = 0
    attrs: Mapping[str, str | int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"SequenceData {self.name!r}"
        if not isinstance(self.inputs, Tensor) or self.inputs.ndim != 3 or not self.inputs.is_floating_point():
            got = list(self.inputs.shape) if isinstance(self.inputs, Tensor) else type(self.inputs).__name__
            raise ProbeParameterError(f"{where}: inputs must be a float tensor [sample, time, channel], got {got}")
        if not isinstance(self.targets, Tensor) or self.targets.shape[:1] != self.inputs.shape[:1]:
            raise ProbeParameterError(
                f"{where}: targets must be a tensor with one row per sample ({self.inputs.shape[0]}), "
                f"got {list(self.targets.shape) if isinstance(self.targets, Tensor) else type(self.targets).__name__}"
            )
        if self.task == "classification":
            if self.targets.ndim != 1 or self.targets.dtype != torch.int64 or self.num_classes < 2:
                raise ProbeParameterError(
                    f"{where}: classification needs int64 targets [sample] and num_classes >= 2, got "
                    f"{self.targets.dtype} {list(self.targets.shape)} with num_classes={self.num_classes}"
                )
            if self.targets.numel() and not (0 <= int(self.targets.min()) and int(self.targets.max()) < self.num_classes):
                raise ProbeParameterError(f"{where}: labels must lie in 0..{self.num_classes - 1}")
        elif self.task == "regression":
            if self.targets.ndim not in (2, 3) or not self.targets.is_floating_point():
                raise ProbeParameterError(
                    f"{where}: regression needs float targets [sample, output] or [sample, time, output], "
                    f"got {self.targets.dtype} {list(self.targets.shape)}"
                )
            if self.targets.ndim == 3 and self.targets.shape[1] != self.inputs.shape[1]:
                raise ProbeParameterError(
                    f"{where}: per-step targets have {self.targets.shape[1]} steps but inputs {self.inputs.shape[1]}"
                )
        else:
            raise ProbeParameterError(f"{where}: task must be 'classification' or 'regression', got {self.task!r}")

    # ------------------------------------------------------------------ shapes
    @property
    def dims(self) -> dict[str, tuple[str, ...]]:
        """Dimension names of ``inputs`` and ``targets``."""
        target_dims = {1: ("sample",), 2: ("sample", "output"), 3: ("sample", "time", "output")}
        return {"inputs": ("sample", "time", "channel"), "targets": target_dims[self.targets.ndim]}

    @property
    def samples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def steps(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def channels(self) -> int:
        return int(self.inputs.shape[2])

    @property
    def output_size(self) -> int:
        """Outputs a readout must produce: ``num_classes`` logits, or the target width."""
        return self.num_classes if self.task == "classification" else int(self.targets.shape[-1])

    @property
    def every_step(self) -> bool:
        """True when there is a target at every step (``targets [sample, time, output]``)."""
        return self.targets.ndim == 3

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.inputs[i], self.targets[i]

    def head(self, n: int) -> SequenceData:
        """The first ``n`` samples (an error if there are fewer)."""
        if not 1 <= n <= self.samples:
            raise ProbeParameterError(
                f"SequenceData {self.name!r}: asked for {n} samples but it has {self.samples}; pass 1..{self.samples}"
            )
        return SequenceData(self.inputs[:n], self.targets[:n], self.task, self.name, self.num_classes, dict(self.attrs))

    def time_major(self) -> Tensor:
        """Inputs as ``[time, sample, channel]`` — the layout of :func:`dynprobe.sequence`."""
        return self.inputs.transpose(0, 1)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.inputs.shape))
        return f"SequenceData({self.name}, {self.task}, inputs {shape})"


def sequence_data(probe: str, data: str | SequenceData, options: Mapping[str, Any] | None = None, *, samples: int,
                  seed: int) -> SequenceData:
    """The :class:`SequenceData` a probe's ``data=`` names: a SequenceData as given, or a
    registered data set built with ``options`` plus ``samples`` and ``seed`` where its factory
    takes them. The one resolver behind every probe that trains or evaluates on a task
    (``smoothness``, ``gradient_propagation``, ``hessian``); errors name ``probe``.

    Fading-memory paper §2.2 (the tasks gradients and Hessians are taken on); attractors paper
    §4.2 (the cost whose smoothness is measured).
    """
    import inspect

    from .registry import registry

    if isinstance(data, SequenceData):
        if options:
            raise ProbeParameterError(f"probe {probe!r}: data_options only apply to a data set given by name")
        return data
    if not isinstance(data, str):
        raise ProbeParameterError(
            f"probe {probe!r}: data must be a data set name or a dynprobe.tasks.SequenceData, got {type(data).__name__}"
        )
    spec = registry().dataset(data)
    accepted = inspect.signature(spec.factory).parameters
    kwargs = dict(options or {})
    for key, value in (("samples", samples), ("seed", seed)):
        if key in accepted:
            kwargs.setdefault(key, value)
    from .api import dataset

    built = dataset(data, **kwargs)
    if not isinstance(built, SequenceData):
        raise ProbeParameterError(
            f"probe {probe!r}: data set {data!r} returns {type(built).__name__}, not a dynprobe.tasks.SequenceData; "
            "build a SequenceData from it and pass that as data="
        )
    return built
