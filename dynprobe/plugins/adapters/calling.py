"""How a custom cell is called for one step, found out by trying, and checked so that an
accepted module is stepped right.

A :class:`Convention` says which method takes the step (``forward``, or ``step`` /
``recurrence``), whether the state is one argument or spread over several (``cell(x, hy, hz)``),
whether the call wants a length-1 time axis (a forward that loops over time itself), what comes
back (the new state, or ``(y, state)``), and fixed keyword arguments (a time step ``dt``).

:func:`discover` tries the conventions a module's signature allows and keeps the first that
passes the guards: the call works, returns a state shaped like the one it was given, and
**treats rows independently** — every row of a batch of three (random, zero, random) equals
the same row stepped alone. A forward that loops over time reads a batch ``[B, M]`` as B
time steps and fails that check; it is then tried with a time axis, ``forward(u[None], h)``,
and a two-step sequence must equal two one-step calls.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .statetree import StateTree

__all__ = ["Convention", "discover", "state_names", "TIME_STEP_NAMES", "call_step", "signature_of", "state_parameters",
           "step_methods", "time_step_argument"]

TIME_STEP_NAMES = ("dt", "ts", "timespans", "elapsed_time", "delta_t", "time_step", "timestep", "step_size")
"""Argument names taken to be a cell's time step (``wrap(cell, dt=...)`` passes it there)."""


class _Method(nn.Module):
    """Runs ``inner.<name>`` as ``forward``, so ``functional_call`` can drive a step method."""

    def __init__(self, inner: nn.Module, name: str) -> None:
        super().__init__()
        self.inner = inner
        self.name = name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, self.name)(*args, **kwargs)


@dataclass(frozen=True)
class Convention:
    """One way of calling a cell for one step (see the module docstring)."""

    method: str = "forward"
    splat: bool = False
    time_axis: int | None = None
    returns: str = "state"  # "state" or "pair": (y, state)
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def describe(self, cls: str) -> str:
        x = "u" if self.time_axis is None else ("u[None]" if self.time_axis == 0 else "u[:, None]")
        state = "*state" if self.splat else "state"
        extra = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        out = "[1]" if self.returns == "pair" else ""
        return f"{cls}.{self.method}({x}, {state}{extra}){out}"


def _target(module: nn.Module, method: str) -> nn.Module:
    return module if method == "forward" else _Method(module, method)


def call_step(module: nn.Module, conv: Convention, params: Mapping[str, Tensor], u: Tensor, state: Any) -> Any:
    """The raw return of one step under ``conv`` (``params`` named as the module names them)."""
    target = _target(module, conv.method)
    if conv.method != "forward":
        params = {f"inner.{k}": v for k, v in params.items()}
    x = u if conv.time_axis is None else u.unsqueeze(conv.time_axis)
    kwargs = {k: (u.new_full((1, 1), v) if k == "timespans" else v) for k, v in conv.kwargs.items()}
    args = (x, *state) if conv.splat else (x, state)
    return functional_call(target, dict(params), args, kwargs)


def _new_state(conv: Convention, out: Any) -> Any:
    return out[1] if conv.returns == "pair" else out


def signature_of(module: nn.Module, method: str) -> inspect.Signature | None:
    try:
        return inspect.signature(getattr(module, method))
    except (TypeError, ValueError, AttributeError):
        return None


def state_parameters(sig: inspect.Signature | None, fixed: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(positional parameters after x, those of them without a default) minus ``fixed``."""
    if sig is None:
        return [], []
    pos = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in fixed]
    rest = pos[1:]
    return [p.name for p in rest], [p.name for p in rest if p.default is p.empty]


def time_step_argument(module: nn.Module, method: str) -> str | None:
    """The name under which ``method`` takes a time step, if it takes one."""
    sig = signature_of(module, method)
    names = list(sig.parameters) if sig is not None else []
    return next((n for n in TIME_STEP_NAMES if n in names), None)


def state_names(module: nn.Module, method: str, tree: StateTree, splat: bool) -> list[str] | None:
    """The names the module's code gives the state's parts: the parameters of a spread state
    (``forward(self, x, hy, hz)``), or the targets of ``a, b = state`` in the method's source."""
    sig = signature_of(module, method)
    params, _ = state_parameters(sig, {})
    if splat:
        return params[: tree.parts]
    if not params or tree.parts < 2:
        return None
    try:
        source = textwrap.dedent(inspect.getsource(getattr(type(module), method)))
        body = ast.parse(source)
    except (OSError, TypeError, SyntaxError, AttributeError):
        return None
    for node in ast.walk(body):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple):
            value = node.value.body if isinstance(node.value, ast.IfExp) else node.value
            targets = node.targets[0].elts
            if (isinstance(value, ast.Name) and value.id == params[0] and len(targets) == tree.parts
                    and all(isinstance(t, ast.Name) for t in targets)):
                return [t.id for t in targets]  # type: ignore[attr-defined]
    return None


def _tolerance(dtype: torch.dtype) -> float:
    return 1e-9 if dtype == torch.float64 else 1e-4


def _close(a: Tensor, b: Tensor, dtype: torch.dtype) -> float:
    """Max |a - b| relative to max(1, |b|); ``inf`` on a shape mismatch."""
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def _try(module: nn.Module, conv: Convention, tree: StateTree, m: int, params: Mapping[str, Tensor],
         dtype: torch.dtype) -> tuple[Convention | None, str]:
    """``conv`` completed (what it returns) if it passes the guards, else ``None`` and why."""
    gen = torch.Generator().manual_seed(7)
    h = 0.5 * torch.randn(3, tree.size, generator=gen, dtype=torch.float64).to(dtype)
    h[1] = 0.0
    u = torch.randn(3, m, generator=gen, dtype=torch.float64).to(dtype)
    with torch.no_grad():
        try:
            out1 = call_step(module, conv, params, u[:1], tree.unflatten(h[:1]))
        except Exception as err:  # noqa: BLE001 - the next convention may fit
            return None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        if tree.matches(out1, (1,)):
            conv = Convention(conv.method, conv.splat, conv.time_axis, "state", conv.kwargs)
        elif isinstance(out1, tuple) and len(out1) == 2 and tree.matches(out1[1], (1,)):
            conv = Convention(conv.method, conv.splat, conv.time_axis, "pair", conv.kwargs)
        else:
            return None, "it returned neither the new state nor (y, new state) shaped like the state it was given"
        try:
            batched = tree.flatten(_new_state(conv, call_step(module, conv, params, u, tree.unflatten(h))), (3,))
        except Exception as err:  # noqa: BLE001
            return None, f"a batch of 3 failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        alone = torch.cat([tree.flatten(_new_state(conv, call_step(module, conv, params, u[i:i + 1],
                                                                   tree.unflatten(h[i:i + 1]))), (1,))
                           for i in range(3)])
        again = tree.flatten(_new_state(conv, call_step(module, conv, params, u, tree.unflatten(h))), (3,))
        if _close(again, batched, dtype) > _tolerance(dtype):
            return None, "two calls with the same input differ (random numbers? dropout: call module.eval())"
        diff = _close(batched, alone, dtype)
        if diff > _tolerance(dtype):
            return None, (f"it mixes batch rows: a row stepped in a batch of 3 differs from the same row stepped alone "
                          f"by {diff:.2g}")
        if conv.time_axis is not None and conv.returns == "pair":
            two = _sequence_of_two(module, conv, params, u, h, tree, dtype)
            if two:
                return None, two
    return conv, ""


def _sequence_of_two(module: nn.Module, conv: Convention, params: Mapping[str, Tensor], u: Tensor, h: Tensor,
                     tree: StateTree, dtype: torch.dtype) -> str:
    """A forward stepped through a length-1 time axis: a length-2 sequence must equal two steps
    (from the zero state: parallel-scan forwards may treat an initial state differently from
    their own sequential step, a package's quirk this check is not about; non-finite: no verdict)."""
    h = torch.zeros_like(h)
    seq = torch.stack([u, u.flip(0)], dim=conv.time_axis)  # type: ignore[arg-type]
    plain = Convention(conv.method, conv.splat, None, conv.returns, conv.kwargs)
    try:
        both = tree.flatten(call_step(module, plain, params, seq, tree.unflatten(h))[1], (3,))
    except Exception:  # noqa: BLE001 - a forward that only takes length-1 sequences proves nothing here
        return ""
    first = _new_state(conv, call_step(module, conv, params, u, tree.unflatten(h)))
    second = tree.flatten(_new_state(conv, call_step(module, conv, params, u.flip(0), first)), (3,))
    if not (bool(torch.isfinite(both).all()) and bool(torch.isfinite(second).all())):
        return ""
    diff = _close(both, second, dtype)
    return "" if diff <= _tolerance(dtype) else f"a 2-step sequence differs from two 1-step calls by {diff:.2g}"


def discover(module: nn.Module, method: str, trees: list[StateTree], m: int, params: Mapping[str, Tensor],
             dtype: torch.dtype, kwargs: Mapping[str, Any]) -> tuple[Convention, StateTree, list[str]]:
    """The first (convention, state structure) that passes the guards, with every failure seen
    (for the message when none does: ``([], ...)`` is never returned, :class:`LookupError` is)."""
    sig = signature_of(module, method)
    _, required = state_parameters(sig, kwargs)
    first = getattr(module, "batch_first", None)
    axes: list[int | None] = [None, 1, 0] if first else [None, 0, 1]
    tried: list[str] = []
    for tree in trees:
        splats = [True] if tree.parts > 1 and len(required) == tree.parts else [False]
        for axis in axes:
            for splat in splats:
                conv, why = _try(module, Convention(method, splat, axis, "state", dict(kwargs)), tree, m, params, dtype)
                if conv is not None:
                    return conv, tree, tried
                shape = "+".join(str(s) for s in tree.sizes)
                tried.append(f"{Convention(method, splat, axis).describe(type(module).__name__)} with state [{shape}]: "
                             f"{why}")
    raise LookupError(_summary(tried))


def _summary(tried: list[str]) -> str:
    """The first attempt in full, the others' distinct reasons once each (one readable line)."""
    head, *rest = tried
    seen = {head.partition(": ")[2]}
    others = []
    for item in rest:
        call, _, why = item.partition(": ")
        if why not in seen:
            seen.add(why)
            others.append(f"{call}: {why[:120]}")
    more = f"; also tried {len(rest)} other call(s): " + "; ".join(others[:2]) if rest else ""
    return head[:300] + more


def step_methods(module: nn.Module) -> list[str]:
    """Names of methods that look like a one-step function (for the refusal's way out)."""
    names = ("step", "recurrence", "cell_step", "forward_step", "one_step", "step_fn")
    found = [n for n in names if callable(getattr(module, n, None))]
    found += [n for n, sub in module.named_children() if "cell" in n.lower()]
    return found

