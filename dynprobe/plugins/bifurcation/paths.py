"""Parameter paths s ↦ System for bifurcation sweeps, built as one stacked ensemble.

A path turns a single System and an array of values s₁…s_S into *one* System whose parameters
carry a leading axis of size S (``System.with_params`` with stacked tensors), so that the sweep
is stepped with ``vmap`` over the parameter axis instead of a Python loop over s.

Bundled paths (each also reachable by name, see :func:`resolve_path`):

* :class:`Scale` — θ(s) = s·θ for all (or named) parameters: the attractors paper's Fig. 1;
* :class:`InputLevel` — a constant input u = s·ū (the induced system of Def. 2);
* :class:`BiasMean` — every bias entry shifted by one amount so that their mean is s;
* :class:`NamedScalar` — one named parameter (or one entry of it) set to s, e.g. the logistic r;
* :class:`~dynprobe.plugins.bifurcation.stacked.Custom` — any function ``(system, s) -> System``;
* :class:`~dynprobe.plugins.bifurcation.stacked.Checkpoints` — an index into a list of Systems / modules
  (training checkpoints, the paper's bifurcation-vs-epoch diagrams, Fig. 4 and 7).

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.3 (bifurcation diagrams
under a constant input), §4.1 and Fig. 1 (θ(s) = s·θ_true), §5 and Fig. 4, 7 (over epochs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dynprobe import System
from dynprobe.drives import ConstantDrive, autonomous
from dynprobe.errors import ProbeParameterError

__all__ = [
    "ParamPath",
    "Scale",
    "InputLevel",
    "BiasMean",
    "NamedScalar",
    "lift_inputs",
    "current_input",
    "resolve_path",
    "PATH_NAMES",
    "INPUT_PARAM",
]

INPUT_PARAM = "dynprobe.input_level"
"""Name of the parameter holding a lifted constant input (one row per swept value)."""


class ParamPath:
    """A one-parameter family of Systems; subclasses implement :meth:`build`."""

    name: str = "path"
    long_name: str = "swept parameter s"
    units: str = "1"

    def build(self, system: System, values: np.ndarray) -> System:
        """An ensemble System with one network per value (``networks == len(values)``)."""
        raise NotImplementedError

    def default_values(self, system: System) -> np.ndarray:
        """Values swept when the caller gives none."""
        return np.linspace(0.5, 2.0, 151)

    def describe(self) -> str:
        return self.name


def _column(values: np.ndarray, like: Tensor) -> Tensor:
    """Values as a tensor shaped to broadcast against ``[S, *like.shape]``."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(-1, *([1] * like.ndim))


def _pick(system: System, names: Sequence[str] | None, what: str, default: Callable[[str, Tensor], bool]) -> list[str]:
    params = system.params
    if names is None:
        chosen = [k for k, v in params.items() if v.is_floating_point() and default(k, v)]
    else:
        unknown = [n for n in names if n not in params]
        if unknown:
            raise ProbeParameterError(
                f"path {what!r}: {system.name} has no parameters {unknown}; parameters: {', '.join(sorted(params))}"
            )
        chosen = list(names)
    if not chosen:
        raise ProbeParameterError(
            f"path {what!r}: no parameter to vary in {system.name}; parameters: {', '.join(sorted(params)) or '(none)'}"
        )
    return chosen


@dataclass(frozen=True)
class Scale(ParamPath):
    """θ(s) = s·θ for the parameters in ``names`` (all floating parameters by default).

    Attractors paper §4.1, Fig. 1: the chaotic LSTM along θ(s) = s·θ_true.
    """

    names: tuple[str, ...] | None = None
    name: str = "scale"
    long_name: str = "scale s of the parameters, theta(s) = s*theta"

    def build(self, system: System, values: np.ndarray) -> System:
        chosen = _pick(system, self.names, self.name, lambda k, v: not k.startswith("dynprobe."))
        params = system.params
        return system.with_params({k: _column(values, params[k]) * params[k] for k in chosen})

    def describe(self) -> str:
        return "scale" if self.names is None else f"scale:{','.join(self.names)}"


def lift_inputs(system: System, levels: Tensor, *, suffix: str = "input_level") -> System:
    """An ensemble whose constant input is a per-network parameter ``levels: [S, M]``.

    The drive of ``system`` is replaced: the step ignores the drive's u and applies the level.
    """
    if system.input_dim < 1:
        raise ProbeParameterError(f"path 'input': {system.name} takes no input (M = 0); sweep another path")
    base = system.step_fn

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        q = dict(p)
        level = q.pop(INPUT_PARAM)
        return base(h, level.expand(*h.shape[:-1], level.shape[-1]), q)

    step.__qualname__ = f"{getattr(base, '__qualname__', 'step')}+{suffix}"
    params = {k: v.expand(levels.shape[0], *v.shape).clone() if system.networks is None else v
              for k, v in system.params.items()}
    params[INPUT_PARAM] = levels.to(device=system.device, dtype=system.dtype)
    return System(
        step,
        params,
        state_dim=system.state_dim,
        input_dim=system.input_dim,
        layout=system.layout,
        drive=autonomous(),
        readout=system.readout,
        init=system.init,
        networks=int(levels.shape[0]),
        name=system.name,
        kind=f"{system.kind}+{suffix}",
        arch=system.arch,
        meta=system.meta,
        dtype=system.dtype,
        device=system.device,
    )


def current_input(system: System) -> Tensor:
    drive = system.drive
    if isinstance(drive, ConstantDrive):
        return drive.value.to(torch.float64).expand(system.input_dim).clone()
    return torch.ones(system.input_dim, dtype=torch.float64)


@dataclass(frozen=True)
class InputLevel(ParamPath):
    """A constant input u = s·ū: ``direction`` ū (length M), else the System's own constant
    input, else all ones. Attractors paper Def. 2 and §3.3 (the induced autonomous system)."""

    direction: tuple[float, ...] | None = None
    name: str = "input"
    long_name: str = "constant input level s, u = s*u_bar"

    def build(self, system: System, values: np.ndarray) -> System:
        if system.input_dim < 1:
            raise ProbeParameterError(f"path 'input': {system.name} takes no input (M = 0); sweep another path")
        if self.direction is not None:
            ubar = torch.as_tensor(self.direction, dtype=torch.float64).reshape(-1)
            if ubar.numel() != system.input_dim:
                raise ProbeParameterError(
                    f"path 'input': direction has {ubar.numel()} entries but {system.name} takes M={system.input_dim} inputs"
                )
        else:
            ubar = current_input(system)
        levels = torch.as_tensor(values, dtype=torch.float64).reshape(-1, 1) * ubar
        return lift_inputs(system, levels)

    def default_values(self, system: System) -> np.ndarray:
        return np.linspace(-2.0, 2.0, 161)


@dataclass(frozen=True)
class BiasMean(ParamPath):
    """Shift every entry of the bias parameters by one amount so that their mean is s.

    ``names`` defaults to every floating parameter whose name contains ``"bias"``. With two
    bias vectors per layer (PyTorch's ``bias_ih`` and ``bias_hh``) the effective pre-activation
    bias moves by twice the shift; name one of them to move it alone.
    """

    names: tuple[str, ...] | None = None
    name: str = "bias_mean"
    long_name: str = "mean of the bias entries"

    def _chosen(self, system: System) -> list[str]:
        return _pick(system, self.names, self.name, lambda k, v: "bias" in k)

    def build(self, system: System, values: np.ndarray) -> System:
        chosen = self._chosen(system)
        params = system.params
        mean = torch.cat([params[k].reshape(-1) for k in chosen]).mean()
        return system.with_params({k: params[k] + (_column(values, params[k]) - mean) for k in chosen})

    def default_values(self, system: System) -> np.ndarray:
        params = system.params
        mean = float(torch.cat([params[k].reshape(-1) for k in self._chosen(system)]).mean())
        return mean + np.linspace(-2.0, 2.0, 161)


@dataclass(frozen=True)
class NamedScalar(ParamPath):
    """One named parameter set to s: the whole tensor (a scalar such as the logistic map's r)
    or the entry at ``index``."""

    param: str = ""
    index: tuple[int, ...] | None = None
    name: str = "scalar"

    @property
    def long_name(self) -> str:  # type: ignore[override]
        where = "" if self.index is None else f"[{', '.join(map(str, self.index))}]"
        return f"parameter {self.param}{where}"

    def build(self, system: System, values: np.ndarray) -> System:
        _pick(system, [self.param], f"scalar:{self.param}", lambda k, v: True)
        base = system.params[self.param]
        col = _column(values, base)
        if self.index is None:
            new = col.expand(len(values), *base.shape).clone()
        else:
            try:
                mask = torch.zeros_like(base, dtype=torch.bool)
                mask[self.index] = True
            except (IndexError, TypeError) as err:
                raise ProbeParameterError(
                    f"path 'scalar:{self.param}': index {self.index} does not fit shape {list(base.shape)}"
                ) from err
            new = torch.where(mask, col, base)
        return system.with_params({self.param: new})

    def default_values(self, system: System) -> np.ndarray:
        base = system.params[self.param]
        value = float(base.reshape(-1)[0] if self.index is None else base[self.index])
        return value * np.linspace(0.5, 1.5, 101) if value else np.linspace(-1.0, 1.0, 101)

    def describe(self) -> str:
        return f"scalar:{self.param}" + ("" if self.index is None else f"[{','.join(map(str, self.index))}]")


PATH_NAMES = ("scale", "input", "bias_mean", "scalar:NAME", "scale:NAME[,NAME...]")


def resolve_path(path: str | ParamPath | Callable[[System, float], System]) -> ParamPath:
    """A :class:`ParamPath` from a name (``"scale"``, ``"scale:w1,w2"``, ``"input"``,
    ``"bias_mean"``, ``"scalar:r"``), a path object, or a function ``(system, s) -> System``."""
    from .stacked import Checkpoints, Custom

    if isinstance(path, ParamPath):
        return path
    if callable(path):
        return Custom(fn=path)
    if isinstance(path, (list, tuple)):
        return Checkpoints(items=path)
    text = str(path).strip()
    head, _, rest = text.partition(":")
    names = tuple(n.strip() for n in rest.split(",") if n.strip()) or None
    if head == "scale":
        return Scale(names=names)
    if head == "input" and not rest:
        return InputLevel()
    if head == "bias_mean":
        return BiasMean(names=names)
    if head in ("scalar", "param") and names and len(names) == 1:
        return NamedScalar(param=names[0])
    from dynprobe.errors import did_you_mean

    raise ProbeParameterError(
        f"unknown bifurcation path {text!r}; use one of {', '.join(PATH_NAMES)}, a ParamPath object, "
        f"or a function (system, s) -> System{did_you_mean(head, ['scale', 'input', 'bias_mean', 'scalar'])}"
    )
