"""A recurrent network as a discrete-time dynamical system, h_{t+1} = F(h_t, u_t; θ).

The :class:`System` is the one object every probe works on. It holds a *pure*, batched step
function over a flat state, the parameters as a dict of tensors (so that ``torch.func``
transforms — ``vmap`` over stacked networks, ``jvp`` for tangents — apply), the state layout,
the drive that produces the inputs, and how initial states are drawn.

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.1: an RNN as the
autonomous system h_{t+1} = F(h_t) and, with inputs, a non-autonomous one.
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §2: the induced dynamical
system of an RNN under a constant input.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from .architecture import CUSTOM, Architecture
from .errors import DriveError, ProbeParameterError

if TYPE_CHECKING:
    from .drives import Drive

__all__ = ["System", "StatePart", "StateLayout", "InitialState", "StepFn"]

StepFn = Callable[[Tensor, Tensor, Mapping[str, Tensor]], Tensor]
"""``fn(h, u, params) -> h_next`` with h: [batch, N], u: [batch, M]; rows are independent."""


@dataclass(frozen=True)
class StatePart:
    """A named slice of the flat state: ``h`` or ``c`` of one layer, say."""

    name: str
    layer: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class StateLayout:
    """How the flat state vector splits into named parts (LSTM ``h`` and ``c`` per layer)."""

    parts: tuple[StatePart, ...]

    @classmethod
    def flat(cls, size: int, name: str = "x") -> StateLayout:
        """A single unnamed block of ``size`` coordinates."""
        return cls((StatePart(name, 0, 0, size),))

    @classmethod
    def from_sizes(cls, sizes: Sequence[tuple[str, int, int]]) -> StateLayout:
        """Build from ``[(name, layer, size), ...]`` in state order."""
        parts, start = [], 0
        for name, layer, size in sizes:
            parts.append(StatePart(name, layer, start, start + size))
            start += size
        return cls(tuple(parts))

    @property
    def size(self) -> int:
        return self.parts[-1].stop if self.parts else 0

    def part(self, name: str, layer: int = 0) -> StatePart:
        """The part called ``name`` in ``layer``; a clear error lists the parts there are."""
        for p in self.parts:
            if p.name == name and p.layer == layer:
                return p
        have = ", ".join(f"{p.name}[layer {p.layer}]" for p in self.parts)
        raise KeyError(f"state has no part {name!r} in layer {layer}; parts: {have}")

    def coords(self) -> dict[str, np.ndarray]:
        """Per-unit coordinate arrays: ``unit_part``, ``unit_layer``, ``unit_index``."""
        part, layer, index = [], [], []
        for p in self.parts:
            part += [p.name] * p.size
            layer += [p.layer] * p.size
            index += list(range(p.size))
        return {
            "unit_part": np.array(part, dtype=str),
            "unit_layer": np.array(layer, dtype=np.int64),
            "unit_index": np.array(index, dtype=np.int64),
        }

    def describe(self) -> str:
        return " + ".join(f"{p.name}{p.layer}[{p.size}]" for p in self.parts)


@dataclass(frozen=True)
class InitialState:
    """How initial states are drawn.

    ``center + scale * z`` with z ~ N(0, I) (or uniform on ``[low, high]`` when both are
    given). When ``center`` is given, the first sample starts exactly at ``center`` — the
    model's own initial state — and the others are spread around it.
    """

    center: Tensor | None = None
    scale: float = 0.5
    low: float | None = None
    high: float | None = None

    def sample(
        self, samples: int, dim: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """Return ``[samples, dim]`` initial states drawn (on the CPU, for reproducibility)."""
        if self.low is not None and self.high is not None:
            z = torch.rand(samples, dim, generator=generator, dtype=torch.float64)
            out = self.low + (self.high - self.low) * z
        else:
            z = torch.randn(samples, dim, generator=generator, dtype=torch.float64)
            base = torch.zeros(dim, dtype=torch.float64)
            if self.center is not None:
                base = self.center.detach().to("cpu", torch.float64).reshape(dim)
            out = base + self.scale * z
            if self.center is not None:
                out[0] = base
        return out.to(device=device, dtype=dtype)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"uniform[{self.low}, {self.high}]"
        center = "0" if self.center is None else np.array2string(self.center.cpu().numpy(), precision=4)
        return f"normal(center={center}, scale={self.scale})"


def _fit_readout(
    readout: Callable[[Tensor], Tensor] | None, dtype: torch.dtype, device: torch.device
) -> Callable[[Tensor], Tensor] | None:
    """An ``nn.Module`` readout whose floating tensors differ in dtype or device from the
    System's, copied and cast; any other readout unchanged (a plain function is the user's)."""
    if not isinstance(readout, torch.nn.Module):
        return readout
    tensors = [t for t in (*readout.parameters(), *readout.buffers()) if t.is_floating_point()]
    if all(t.dtype == dtype and t.device == device for t in tensors):
        return readout
    return copy.deepcopy(readout).to(device=device, dtype=dtype)


def _check_arch(arch: Architecture | None) -> Architecture:
    if arch is None:
        return CUSTOM
    if not isinstance(arch, Architecture):
        raise TypeError(f"System: arch must be a dynprobe.architecture.Architecture, got {type(arch).__name__}")
    return arch


@dataclass(frozen=True, eq=False)
class _Spec:
    step: StepFn
    state_dim: int
    input_dim: int
    layout: StateLayout
    readout: Callable[[Tensor], Tensor] | None
    init: InitialState
    name: str
    kind: str
    arch: Architecture = CUSTOM
    meta: Mapping[str, Any] = field(default_factory=dict)



def _check_parts(params: Mapping[str, Any], networks: int | None, layout: StateLayout, state_dim: int) -> None:
    """What every System holds, however made: tensor parameters, a layout of ``state_dim``
    coordinates, and for an ensemble a leading ``networks`` axis on every parameter."""
    for key, value in params.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"System: parameter {key!r} is a {type(value).__name__}, expected a torch.Tensor")
    if layout.size != state_dim:
        raise ProbeParameterError(
            f"System: layout covers {layout.size} coordinates but state_dim is {state_dim}; fix the layout sizes"
        )
    if networks is not None:
        bad = [k for k, v in params.items() if v.ndim == 0 or v.shape[0] != networks]
        if bad:
            raise ProbeParameterError(
                f"System: ensemble of {networks} networks but parameters {bad} lack a leading axis of that size"
            )

class System:
    """A recurrent network as a dynamical system ``h_{t+1} = F(h_t, u_t; θ)``.

    This docstring lists the whole API; probes use nothing else (plus :mod:`dynprobe.linearize`).

    What you can ask it
        ``state_dim`` (N), ``input_dim`` (M), ``layout`` (named state slices), ``params``
        (dict of tensors; with a leading ``network`` axis for an ensemble), ``networks``
        (ensemble size or ``None``), ``looped`` (an ensemble stepped network by network),
        ``drive``, ``readout`` (state → output, or ``None``), ``init`` (how initial states
        are drawn), ``dtype``, ``device``, ``name``, ``kind`` (a structural key: equal kinds
        and equal step functions can be stacked), ``arch`` (the typed
        :class:`~dynprobe.architecture.Architecture` record the adapter filled: cell family,
        nonlinearity, layers, the parameters' roles — what probes read), ``meta`` (free-form
        facts for people, e.g. the module's repr; no probe switches on it),
        ``lead_shape(batch)``, ``fingerprint()``, ``describe()``.
    What you can compute
        ``step(h, u)`` — the raw map F; ``inputs(t, h)`` — u_t from the drive;
        ``map(h, t)`` — the closed-loop map h ↦ F(h, u_t(h)); ``trajectory(h0, steps)``;
        ``advance(h, steps)`` — the final state only (a burn-in);
        ``initial_state(samples, seed=...)``; ``output(h)``.
    What you can change (each returns a new System; a System is immutable)
        ``with_params(params, **updates)``, ``with_drive(drive)``, ``with_init(init)``,
        ``with_readout(readout)``,
        ``to(dtype=..., device=...)``, ``network(i)``; ``System.stack(systems)`` builds an
        ensemble (``loop=True`` for Systems with different steps), ``System.from_step(fn, ...)``
        wraps any function.

    Shapes: a state batch is ``[batch, N]``, or ``[network, batch, N]`` for an ensemble;
    inputs follow with M in place of N. Rows are independent: F acts on each row alone.
    """

    def __init__(
        self,
        step: StepFn,
        params: Mapping[str, Tensor] | None = None,
        *,
        state_dim: int,
        input_dim: int = 0,
        layout: StateLayout | None = None,
        drive: Drive | None = None,
        readout: Callable[[Tensor], Tensor] | None = None,
        init: InitialState | None = None,
        networks: int | None = None,
        name: str = "system",
        kind: str | None = None,
        arch: Architecture | None = None,
        meta: Mapping[str, Any] | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        from .drives import autonomous

        if int(state_dim) < 1:
            raise ProbeParameterError(f"System: state_dim must be >= 1, got {state_dim}")
        if int(input_dim) < 0:
            raise ProbeParameterError(f"System: input_dim must be >= 0, got {input_dim}")
        params = dict(params or {})
        layout = layout or StateLayout.flat(int(state_dim))
        _check_parts(params, networks, layout, int(state_dim))
        floats = [v for v in params.values() if v.is_floating_point()]
        # nothing to take a dtype from: float64, not torch's float32 default (rounding must not decide results)
        self._dtype = dtype or (floats[0].dtype if floats else torch.float64)
        self._device = torch.device(device) if device is not None else (floats[0].device if floats else torch.device("cpu"))
        self._params = {k: v.detach() for k, v in params.items()}
        self._networks = networks
        self._spec = _Spec(
            step=step,
            state_dim=int(state_dim),
            input_dim=int(input_dim),
            layout=layout,
            readout=readout,
            init=init or InitialState(),
            name=name,
            kind=kind or f"{name}:{getattr(step, '__qualname__', type(step).__name__)}",
            arch=_check_arch(arch),
            meta=dict(meta or {}),
        )
        self._drive = drive or autonomous()
        self._members: tuple[System, ...] | None = None  # a looped ensemble's networks (System.stack(loop=True))
        if readout is not None:
            self._spec = replace(self._spec, readout=_fit_readout(readout, self._dtype, self._device))
        self._drive.check(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_step(
        cls,
        fn: StepFn,
        *,
        state_dim: int,
        input_dim: int = 0,
        params: Mapping[str, Tensor] | None = None,
        layout: StateLayout | None = None,
        drive: Drive | None = None,
        readout: Callable[[Tensor], Tensor] | None = None,
        init: InitialState | None = None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> System:
        """Wrap a plain function ``fn(h, u, params) -> h_next`` (h: [batch, N]) as a System.

        Any map is a System this way — the logistic map, the Hénon map, a user's own cell.
        ``fn`` must be pure (no in-place writes to its inputs, no ``.item()``) so that
        ``torch.func`` transforms apply. The dtype is ``dtype`` if given, else that of the first
        floating parameter, else **float64** (not torch's float32 default: in float32 the
        logistic map rounds onto its unstable fixed point 0 within a few thousand steps).

        Example
        -------
        >>> logistic = System.from_step(lambda h, u, p: p["r"] * h * (1 - h), state_dim=1,
        ...     params={"r": torch.tensor(4.0, dtype=torch.float64)})
        """
        return cls(
            fn,
            params,
            state_dim=state_dim,
            input_dim=input_dim,
            layout=layout,
            drive=drive,
            readout=readout,
            init=init,
            name=name or getattr(fn, "__name__", "map"),
            kind=f"from_step:{getattr(fn, '__qualname__', repr(fn))}",
            dtype=dtype,
            device=device,
        )

    @classmethod
    def stack(cls, systems: Sequence[System], *, loop: bool = False) -> System:
        """An ensemble: the systems' parameters stacked along a leading ``network`` axis.

        All systems must have the same ``kind`` (same architecture), parameter shapes and step
        function — one code with equal closure values (see :mod:`dynprobe.step_identity`): the
        first one's step, drive, layout and init are used, and ``vmap`` runs it over the stack.
        Systems that differ otherwise (a new step function per value, a lambda capturing the
        swept number) are refused — or, with ``loop=True``, kept as a *looped* ensemble that
        steps each network with its own System in a Python loop (same N and M required;
        :attr:`looped` is then true; slower, same results).
        """
        systems = list(systems)
        if not systems:
            raise ProbeParameterError("System.stack: got no systems; pass at least one")
        first = systems[0]
        for i, s in enumerate(systems):
            if s.networks is not None:
                raise ProbeParameterError(f"System.stack: system {i} is already an ensemble; stack single networks")
        why = next(((i, r) for i, s in enumerate(systems) if (r := first._unstackable(s))), None)
        if why is None:
            params = {k: torch.stack([s.params[k] for s in systems]) for k in first.params}
            return first._replace(params=params, networks=len(systems))
        i, reason = why
        if loop:
            return cls._looped(systems)
        raise ProbeParameterError(
            f"System.stack: system {i} ({systems[i].name}, kind {systems[i].kind!r}) {reason} system 0 "
            f"({first.name}, kind {first.kind!r}); vmap needs one step differing only in params — put the varying "
            "quantity into params (System.from_step(fn, params={'r': torch.tensor(r)})), or pass loop=True"
        )

    def _unstackable(self, other: System) -> str:
        """Why ``other`` cannot be vmapped together with this System ('' if it can)."""
        from .step_identity import same_step

        if other.kind != self.kind:
            return "differs in architecture (kind) from"
        if other._param_shapes() != self._param_shapes():
            return "differs in parameter names or shapes from"
        if not same_step(other.step_fn, self.step_fn):
            return "has another step function (other code, or other values captured by its closure) than"
        return ""

    @classmethod
    def _looped(cls, systems: Sequence[System]) -> System:
        first = systems[0]
        bad = [i for i, s in enumerate(systems) if (s.state_dim, s.input_dim) != (first.state_dim, first.input_dim)]
        if bad:
            raise ProbeParameterError(
                f"System.stack: system {bad[0]} has N={systems[bad[0]].state_dim}, M={systems[bad[0]].input_dim} but "
                f"system 0 has N={first.state_dim}, M={first.input_dim}; an ensemble needs one state and input size"
            )
        members = tuple(s.to(dtype=first.dtype, device=first.device) for s in systems)
        return first._replace(params={}, networks=len(members), members=members,
                              kind="looped:" + "|".join(sorted({m.kind for m in members})))

    def _replace(self, **changes: Any) -> System:
        """A copy with ``changes`` (spec fields, params, networks, dtype, device, drive, members),
        held to the same invariants as :meth:`__init__` (:func:`_check_parts`, the drive's check)."""
        spec_fields = {f for f in _Spec.__dataclass_fields__}
        spec_changes = {k: v for k, v in changes.items() if k in spec_fields}
        new = object.__new__(System)
        new._spec = replace(self._spec, **spec_changes) if spec_changes else self._spec
        new._params = changes.get("params", self._params)
        new._networks = changes.get("networks", self._networks)
        new._dtype = changes.get("dtype", self._dtype)
        new._device = changes.get("device", self._device)
        new._drive = changes.get("drive", self._drive)
        new._members = changes.get("members", self._members)
        _check_parts(new._params, new._networks, new._spec.layout, new._spec.state_dim)
        new._drive.check(new)
        return new

    # ------------------------------------------------------------------ properties
    @property
    def params(self) -> dict[str, Tensor]:
        return dict(self._params)

    @property
    def state_dim(self) -> int:
        return self._spec.state_dim

    @property
    def input_dim(self) -> int:
        return self._spec.input_dim

    @property
    def layout(self) -> StateLayout:
        return self._spec.layout

    @property
    def drive(self) -> Drive:
        return self._drive

    @property
    def readout(self) -> Callable[[Tensor], Tensor] | None:
        return self._spec.readout

    @property
    def init(self) -> InitialState:
        return self._spec.init

    @property
    def networks(self) -> int | None:
        return self._networks

    @property
    def looped(self) -> bool:
        """True for an ensemble of Systems that could not be vmapped together (``System.stack(loop=True)``)."""
        return self._members is not None

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def kind(self) -> str:
        return self._spec.kind

    @property
    def arch(self) -> Architecture:
        return self._spec.arch

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._spec.meta)

    @property
    def step_fn(self) -> StepFn:
        """The single-network step ``fn(h, u, params)``; :meth:`step` adds the ensemble ``vmap``."""
        return self._spec.step

    def lead_shape(self, batch: int) -> tuple[int, ...]:
        """Leading shape of a state batch: ``(batch,)`` or ``(networks, batch)``."""
        return (batch,) if self._networks is None else (self._networks, batch)

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        skip = 0 if self._networks is None else 1
        return {k: tuple(v.shape[skip:]) for k, v in self._params.items()}

    # ------------------------------------------------------------------ dynamics
    def step(self, h: Tensor, u: Tensor, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """The raw map F(h, u; θ) on ``[*lead, N]`` states and ``[*lead, M]`` inputs."""
        p = self._params if params is None else params
        if self._members is not None:  # a looped ensemble: each network steps with its own System
            return torch.stack([m.step(h[i], u[i]) for i, m in enumerate(self._members)])
        if self._networks is None:
            return self._spec.step(h, u, p)
        return torch.func.vmap(self._spec.step, in_dims=(0, 0, 0))(h, u, p)

    def inputs(self, t: int, h: Tensor) -> Tensor:
        """The input u_t the drive gives at step ``t`` for states ``h``."""
        return self._drive.close(self, h, self._drive.external(self, t, tuple(h.shape[:-1])))

    def map(self, h: Tensor, t: int = 0) -> Tensor:
        """The closed-loop map at step ``t``: h ↦ F(h, u_t(h))."""
        return self.step(h, self.inputs(t, h))

    def output(self, h: Tensor) -> Tensor:
        """The readout y = g(h); an error if the system has none."""
        if self._spec.readout is None:
            raise DriveError(f"{self.name}: this system has no readout; pass readout= to wrap() or System(...)")
        return self._spec.readout(h)

    def check_run(self, steps: int) -> None:
        """Raise a one-line :class:`DriveError` if the drive cannot supply ``steps`` steps."""
        self._drive.require(self, int(steps))

    def _as_batch(self, h: Tensor) -> tuple[Tensor, bool]:
        want = 2 if self._networks is None else 3
        if h.shape[-1] != self.state_dim:
            raise ProbeParameterError(
                f"{self.name}: state has {h.shape[-1]} coordinates but the system has N={self.state_dim}"
            )
        if h.ndim == want - 1:
            return h.unsqueeze(-2), True
        if h.ndim != want:
            raise ProbeParameterError(
                f"{self.name}: expected states of shape {'[network, batch, N]' if want == 3 else '[batch, N]'}, "
                f"got {list(h.shape)}"
            )
        return h, False

    @torch.no_grad()
    def advance(self, h: Tensor, steps: int, *, start: int = 0) -> Tensor:
        """Iterate the closed-loop map ``steps`` times from ``h`` (time index ``start``) and
        return only the final state — a burn-in, without keeping the trajectory."""
        for t in range(start, start + steps):
            h = self.map(h, t)
        return h

    @torch.no_grad()
    def trajectory(self, h0: Tensor, steps: int, *, start: int = 0) -> Tensor:
        """Iterate the closed-loop map: returns ``[steps + 1, *lead, N]`` including ``h0``.

        ``h0`` may also be a single state ``[N]`` (``[network, N]`` for an ensemble); the
        batch axis is then dropped from the result. ``start`` is the time index of ``h0``.
        """
        h, squeeze = self._as_batch(h0.to(device=self.device, dtype=self.dtype))
        self.check_run(start + steps)
        out = [h]
        for t in range(start, start + steps):
            h = self.map(h, t)
            out.append(h)
        traj = torch.stack(out)
        return traj.squeeze(-2) if squeeze else traj

    def initial_state(self, samples: int = 1, *, seed: int = 0) -> Tensor:
        """``samples`` initial states, ``[*lead, N]``, drawn from :attr:`init` with ``seed``.

        Every network of an ensemble starts from the same ``samples`` states (common random
        numbers): network i of an ensemble then sees exactly what a separate run of it would.
        """
        if samples < 1:
            raise ProbeParameterError(f"{self.name}: samples must be >= 1, got {samples}")
        gen = torch.Generator().manual_seed(int(seed))
        draw = self.init.sample(samples, self.state_dim, gen, self.dtype, self.device)
        if self._networks is None:
            return draw
        return draw.expand(self._networks, samples, self.state_dim).clone()

    # ------------------------------------------------------------------ changes
    def with_params(self, params: Mapping[str, Tensor] | None = None, /, **updates: Tensor) -> System:
        """A new System with parameters replaced (all of ``params``) or updated by name.

        A parameter may gain a leading axis of size n (the same n for all of them): the result
        is then an ensemble of n networks — this is how a parameter sweep is stacked.
        """
        new = dict(self._params)
        given = dict(params or {})
        given.update(updates)
        if given and self._members is not None:
            raise ProbeParameterError(
                f"{self.name}: a looped ensemble has no stacked parameters; change its member Systems and stack them again"
            )
        unknown = sorted(set(given) - set(new))
        if unknown:
            raise KeyError(f"{self.name}: unknown parameters {unknown}; parameters are {sorted(new)}")
        _check_parts(given, None, self._spec.layout, self._spec.state_dim)
        new.update({k: v.detach() for k, v in given.items()})
        base = self._param_shapes()
        stacked: set[int] = set()
        plain = False
        for k, v in new.items():
            if tuple(v.shape) == base[k]:
                plain = True
            elif tuple(v.shape[1:]) == base[k] and v.ndim >= 1:
                stacked.add(v.shape[0])
            else:
                raise ProbeParameterError(
                    f"{self.name}: parameter {k!r} has shape {list(v.shape)}, expected {list(base[k])} "
                    f"or [n, {', '.join(map(str, base[k]))}] for an ensemble"
                )
        if stacked and (plain or len(stacked) > 1):
            if len(stacked) == 1 and plain:
                (n,) = stacked
                new = {k: v if tuple(v.shape) != base[k] else v.expand(n, *v.shape).clone() for k, v in new.items()}
            else:
                raise ProbeParameterError(f"{self.name}: stacked parameters disagree on the network count {sorted(stacked)}")
        networks = next(iter(stacked)) if stacked else None
        return self._replace(params=new, networks=networks)

    def with_drive(self, drive: Drive) -> System:
        """A new System driven by ``drive`` (checked against the input dimension)."""
        return self._replace(drive=drive)

    def with_init(self, init: InitialState) -> System:
        """A new System drawing initial states from ``init``."""
        return self._replace(init=init)

    def with_readout(self, readout: Callable[[Tensor], Tensor] | None) -> System:
        """A new System with the readout (state → output) replaced.

        A readout that is an ``nn.Module`` (a trained ``nn.Linear`` head, say) is moved, as a
        copy, to the System's dtype and device, so ``output(h)`` works on the System's states.
        """
        return self._replace(readout=_fit_readout(readout, self._dtype, self._device))

    def network(self, i: int) -> System:
        """The ``i``-th network of an ensemble as a single System."""
        if self._networks is None:
            raise ProbeParameterError(f"{self.name}: not an ensemble; network(i) needs stacked parameters")
        if self._members is not None:
            return self._members[i].with_drive(self._drive).with_readout(self._members[i].readout)
        return self._replace(params={k: v[i] for k, v in self._params.items()}, networks=None)

    def take(self, rows: Sequence[int]) -> System:
        """The networks ``rows`` of an ensemble, as an ensemble of ``len(rows)`` with the same
        drive — stacked parameters indexed, or a looped ensemble's member Systems picked."""
        if self._networks is None:
            raise ProbeParameterError(f"{self.name}: not an ensemble; take(rows) needs stacked networks")
        rows = [int(r) for r in rows]
        if self._members is not None:
            return self._replace(members=tuple(self._members[r] for r in rows), networks=len(rows))
        index = torch.as_tensor(rows, dtype=torch.long, device=self._device)
        return self._replace(params={k: v[index] for k, v in self._params.items()}, networks=len(rows))

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> System:
        """A copy with floating parameters cast to ``dtype`` and all moved to ``device``."""
        dtype = dtype or self._dtype
        device = torch.device(device) if device is not None else self._device
        params = {
            k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in self._params.items()
        }
        members = None if self._members is None else tuple(m.to(dtype, device) for m in self._members)
        return self._replace(params=params, dtype=dtype, device=device, members=members,
                             readout=_fit_readout(self._spec.readout, dtype, device))

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        """sha256 over parameter names, shapes, dtypes and values (the ``model_fingerprint``).

        Remembered while no parameter tensor changes (torch counts in-place writes in
        ``Tensor._version``): every probe run records it, and hashing a big network's weights
        each time cost milliseconds per run."""
        state = tuple((key, id(v), v._version) for key, v in sorted(self._params.items()))
        cached = getattr(self, "_fingerprint_cache", None)
        if cached is not None and cached[0] == state and self._members is None:
            return cached[1]
        digest = self._digest()
        self._fingerprint_cache = (state, digest)
        return digest

    def _digest(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.kind.encode())
        for member in self._members or ():
            digest.update(member.fingerprint().encode())
        for key in sorted(self._params):
            value = self._params[key].detach().to("cpu").contiguous()
            digest.update(f"{key}:{list(value.shape)}:{value.dtype}".encode())
            digest.update(value.numpy().tobytes() if value.dtype != torch.bfloat16 else value.float().numpy().tobytes())
        return digest.hexdigest()

    def describe(self) -> str:
        """One line: name, sizes, layout, drive, dtype (used in every result's attrs)."""
        ens = f", {self._networks} networks" if self._networks is not None else ""
        ens += " (looped: one System per network)" if self._members is not None else ""
        return (
            f"{self.name}: N={self.state_dim} ({self.layout.describe()}), M={self.input_dim}, "
            f"drive={self._drive.describe()}{ens}, {str(self._dtype).removeprefix('torch.')} on {self._device}"
        )

    def __repr__(self) -> str:
        return f"<System {self.describe()}>"
