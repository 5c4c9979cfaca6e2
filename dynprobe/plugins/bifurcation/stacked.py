"""Parameter paths through a list of Systems: a user function s ↦ System, and checkpoints.

Both end in :func:`stack_systems`: the Systems (one per swept value) are stacked into one
ensemble with ``System.stack`` — stepped with ``vmap`` like every other path — keeping what may
differ between them: a constant input (lifted into a per-network parameter, see
:func:`dynprobe.plugins.bifurcation.paths.lift_inputs`) and the readout (each network keeps its own, e.g.
the trained head of each checkpoint). Systems that cannot be vmapped together — a function
that builds a new step per value — are stepped value by value instead (a looped ensemble,
``System.stack(..., loop=True)``), with the same results, more slowly.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §5, Fig. 4 and 7 (bifurcation
diagrams over training epochs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynprobe import System
from dynprobe.drives import ConstantDrive, autonomous
from dynprobe.errors import ProbeParameterError

from .paths import ParamPath, current_input, lift_inputs

__all__ = ["Custom", "Checkpoints", "stack_systems"]


def _same_outputs(systems: Sequence[System]) -> bool:
    """Whether the systems' readouts agree on a random state (then one readout serves all)."""
    if any(s.readout is None for s in systems):
        return all(s.readout is None for s in systems)
    gen = torch.Generator().manual_seed(12345)
    h = torch.randn(3, systems[0].state_dim, generator=gen, dtype=torch.float64).to(systems[0].dtype)
    with torch.no_grad():
        ref = systems[0].output(h)
        return all(torch.equal(s.output(h), ref) for s in systems[1:])


def _per_network_readout(readouts: Sequence[Callable[[Tensor], Tensor]]) -> Callable[[Tensor], Tensor]:
    """A readout for ``[S, batch, N]`` ensemble states applying network i's own readout."""

    def readout(h: Tensor) -> Tensor:
        if h.ndim >= 3 and h.shape[0] == len(readouts):
            return torch.stack([r(h[i]) for i, r in enumerate(readouts)])
        return readouts[0](h)

    return readout


def _bake_constant(system: System) -> System:
    """The System with its constant input folded into the step: autonomous, same map."""
    level = current_input(system).to(device=system.device, dtype=system.dtype)
    base = system.step_fn

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        return base(h, level.expand(*h.shape[:-1], level.shape[-1]), p)

    return System(step, system.params, state_dim=system.state_dim, input_dim=system.input_dim, layout=system.layout,
                  readout=system.readout, init=system.init, name=system.name, kind=f"{system.kind}+constant",
                  arch=system.arch, meta=system.meta, dtype=system.dtype, device=system.device)


def stack_systems(template: System, systems: Sequence[System], what: str) -> System:
    """Stack single Systems into one ensemble, keeping per-system constant inputs and readouts.

    Systems that share one step (differing only in their parameters) are stacked for ``vmap``;
    others — a new step function per value — become a *looped* ensemble (``System.stack(...,
    loop=True)``), stepped value by value: slower, with the same results.
    """
    systems = [s.to(dtype=template.dtype, device=template.device) for s in systems]
    drives = {s.drive.describe() for s in systems}
    lifted = False
    if len(drives) > 1:
        if not all(isinstance(s.drive, ConstantDrive) for s in systems):
            raise ProbeParameterError(
                f"path {what!r}: the Systems differ in their drives ({', '.join(sorted(drives))}); only constant "
                "inputs may vary along a path — use the same drive, or constant(...) drives"
            )
        lifted = True
    same = [s.with_drive(systems[0].drive) for s in systems]
    try:
        ensemble = System.stack(same)
    except ProbeParameterError:
        try:  # cannot be vmapped: one System per value, each keeping its own constant input
            ensemble = System.stack([_bake_constant(s) for s in systems] if lifted else same, loop=True)
        except ProbeParameterError as err:
            raise ProbeParameterError(f"path {what!r}: {err}") from err
        lifted = False
    if not _same_outputs(systems):
        ensemble = ensemble.with_readout(_per_network_readout([s.readout for s in systems]))  # type: ignore[misc]
    if lifted:
        levels = torch.stack([current_input(s) for s in systems])
        ensemble = lift_inputs(ensemble.with_drive(autonomous()), levels)
    return ensemble


@dataclass(frozen=True, eq=False)
class Custom(ParamPath):
    """Any function ``fn(system, s) -> System``. The Systems it returns are stacked into one
    ensemble, ``vmap``-ed when they share one step function and differ only in parameters (e.g.
    ``system.with_params(r=torch.tensor(s))``); otherwise — a new step per value, such as a lambda
    capturing ``s`` — stepped value by value (the result's ``path_stacking`` attr says which).
    Differing constant inputs and readouts are kept per value."""

    fn: Callable[[System, float], System] = field(default=lambda system, s: system)
    name: str = "custom"
    long_name: str = "swept parameter s"

    def build(self, system: System, values: np.ndarray) -> System:
        built = []
        for s in values:
            out = self.fn(system, float(s))
            if not isinstance(out, System):
                raise ProbeParameterError(
                    f"path {self.describe()!r}: the function returned {type(out).__name__}, expected a System"
                )
            built.append(out)
        return stack_systems(system, built, self.describe())

    def describe(self) -> str:
        return f"custom:{getattr(self.fn, '__qualname__', repr(self.fn))}"


@dataclass(frozen=True, eq=False)
class Checkpoints(ParamPath):
    """An index into a list of Systems or modules (e.g. training checkpoints).

    ``labels`` (e.g. epochs) name the items; the swept values are labels (default: all of
    them; without labels, the indices 0…K−1). Modules are wrapped with :func:`dynprobe.wrap`
    and given the template System's drive and init, so the sweep compares like with like.
    """

    items: Sequence[Any] = ()
    labels: Sequence[float] | None = None
    name: str = "checkpoint"
    long_name: str = "checkpoint"

    def _labels(self) -> list[float]:
        labels = list(self.labels) if self.labels is not None else list(range(len(self.items)))
        if len(labels) != len(self.items):
            raise ProbeParameterError(
                f"path 'checkpoint': {len(labels)} labels for {len(self.items)} checkpoints; give one label each"
            )
        return labels

    def build(self, system: System, values: np.ndarray) -> System:
        import dynprobe

        labels = self._labels()
        if not self.items:
            raise ProbeParameterError("path 'checkpoint': got no checkpoints; pass Checkpoints([system_or_module, ...])")
        chosen = []
        for v in values:
            matches = [i for i, lab in enumerate(labels) if np.isclose(float(lab), float(v))]
            if not matches:
                raise ProbeParameterError(
                    f"path 'checkpoint': value {v} is not a checkpoint label; labels: {labels[:8]}"
                    + (" ..." if len(labels) > 8 else "")
                )
            item = self.items[matches[0]]
            sys_i = item if isinstance(item, System) else dynprobe.wrap(item)
            if not isinstance(item, System):
                sys_i = sys_i.with_init(system.init).with_drive(system.drive)
            chosen.append(sys_i)
        return stack_systems(system, chosen, "checkpoint")

    def default_values(self, system: System) -> np.ndarray:
        return np.asarray(self._labels(), dtype=np.float64)
