"""Generic adapter (``trylast``): a custom cell, called the way its code is written.

``forward(x, h) -> (y, h)`` is the default; the options of :func:`dynprobe.wrap` cover the other
shapes real cells have (README, "Your own cell"):

* ``step="recurrence"`` / ``"step"`` — the one-step method, when ``forward`` runs a sequence;
* ``state=`` — an example state for one sample (a tensor, a tuple ``(hy, hz)``, a list of
  per-layer caches ``[(h, conv), ...]``, a dict), when ``hidden_size`` / ``state_dim`` do not
  describe it; ``state_names=`` overrides the names read from the code;
* ``dt=`` — a fixed time step passed to the step's ``dt`` / ``ts`` / ``timespans`` /
  ``elapsed_time`` argument; ``call_kwargs=`` any other fixed argument.

How the state goes in and comes out (one argument or spread over several, the new state or
``(y, state)``, with or without a length-1 time axis) is found by trying
(:func:`~dynprobe.plugins.adapters.calling.discover`), and only a convention that treats batch
rows independently is accepted: a forward that loops over time itself is stepped with a length-1
sequence, and one that mixes rows is refused with the way out. The step runs the module (a copy,
in eval mode) through ``torch.func.functional_call``; a step ``torch.func`` cannot transform
(``.item()``, numpy, in-place writes to its inputs, random numbers) is refused with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import jvp, vmap

import dynprobe
from dynprobe import System
from dynprobe.architecture import Architecture
from dynprobe.errors import UnsupportedModuleError
from dynprobe.wrapping import CELL_OPTIONS

from .calling import call_step, discover, signature_of, state_names, state_parameters, step_methods, time_step_argument
from .statetree import StateTree

__all__ = ["dynprobe_adapt", "CELL_OPTIONS"]



def _trees(module: nn.Module, options: Mapping[str, Any], method: str) -> list[StateTree]:
    """The state structures to try: the example given, else the sizes given or announced."""
    if options.get("state") is not None:
        try:
            return [StateTree.of(options["state"], batched=False)]
        except TypeError as err:
            raise UnsupportedModuleError(f"{type(module).__name__}: state=: {err}") from err
    n = options.get("state_dim")
    if n is None:
        n = next((getattr(module, a) for a in ("hidden_size", "state_size") if isinstance(getattr(module, a, None), int)),
                 None)
    if n is None:
        return []
    if isinstance(n, (tuple, list)):
        return [StateTree.flat([int(s) for s in n])]
    _, required = state_parameters(signature_of(module, method), options.get("call_kwargs") or {})
    spread = len(required) if len(required) > 1 else 0
    trees = [StateTree.flat([int(n)] * spread)] if spread else []
    return trees + [StateTree.flat([int(n)]), StateTree.flat([int(n), int(n)])]


def _input_size(module: nn.Module, options: Mapping[str, Any]) -> int | None:
    m = options.get("input_dim")
    if m is None and isinstance(getattr(module, "input_size", None), int):
        m = module.input_size
    return None if m is None else int(m)


def _copy_for_analysis(module: nn.Module) -> nn.Module:
    """A private copy in eval mode (dropout off), so later changes to the user's module do not
    change the System; the module itself if it cannot be copied and is already in eval mode."""
    try:
        return copy.deepcopy(module).eval()
    except Exception as err:  # noqa: BLE001 - e.g. hooks holding unpicklable state
        if module.training:
            raise UnsupportedModuleError(
                f"{type(module).__name__}: cannot copy it ({type(err).__name__}) and it is in training mode; call "
                "module.eval() before wrapping it") from err
        return module


def _kwargs(module: nn.Module, method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(options.get("call_kwargs") or {})
    if options.get("dt") is not None:
        name = time_step_argument(module, method)
        if name is None:
            own = getattr(module, "dt", None)
            hint = f"; its step is fixed by its own attribute dt={own!r}" if isinstance(own, (int, float)) else ""
            raise UnsupportedModuleError(
                f"{type(module).__name__}.{method} takes no time-step argument (looked for "
                f"{', '.join(a for a in ('dt', 'ts', 'timespans', 'elapsed_time'))}, ...){hint}; pass the argument by "
                "name with call_kwargs={'name': value}")
        kwargs[name] = float(options["dt"])
    return kwargs


def _check_pure(system: System, module: nn.Module, dtype: torch.dtype, m: int) -> None:
    h = 0.1 * torch.randn(2, system.state_dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    u = torch.zeros(2, m, dtype=dtype)
    try:  # vmap over states catches .item()/numpy on the state (which jvp alone would differentiate wrongly)
        vmap(lambda x: jvp(lambda y: system.step(y[None], u[:1])[0], (x,), (torch.ones_like(x),))[1])(h)
    except Exception as err:  # noqa: BLE001 - report why torch.func cannot transform it
        text = str(err).splitlines()[0] if str(err) else ""
        why = ("it draws random numbers in every step; make the step deterministic (noise off)"
               if "random" in text.lower() else
               "avoid .item(), numpy calls and in-place writes to inputs inside the step")
        raise UnsupportedModuleError(
            f"{type(module).__name__}.forward is not torch.func-pure ({type(err).__name__}: {text}); {why}, or wrap a "
            "pure step with System.from_step") from err


@dynprobe.hookimpl(trylast=True)
def dynprobe_adapt(module: Any, options: dict[str, Any]) -> System | None:
    """Adapt a custom cell (see the module docstring); ``None`` if it is not an ``nn.Module``."""
    if not isinstance(module, nn.Module):
        return None
    kind = type(module).__name__
    method = options.get("step") or "forward"
    if not callable(getattr(module, method, None)):
        raise UnsupportedModuleError(f"{kind} has no method {method!r}; step= names the method that takes one step")
    m = _input_size(module, options)
    trees = _trees(module, options, method)
    if not trees or m is None:
        raise UnsupportedModuleError(
            f"{kind}: cannot tell its state and input sizes; give it hidden_size/input_size attributes or pass "
            "state_dim=N, input_dim=M (or state=an example state) to dynprobe.wrap()")
    params = {k: v.detach().clone() for k, v in [*module.named_parameters(), *module.named_buffers()]}
    if any(v.is_complex() for v in params.values()):
        raise UnsupportedModuleError(
            f"{kind} has complex parameters; dynprobe steps real states: write the step over [Re h, Im h] with "
            "System.from_step")
    floats = [v for v in params.values() if v.is_floating_point()]
    dtype = floats[0].dtype if floats else torch.get_default_dtype()
    cell = _copy_for_analysis(module)
    kwargs = _kwargs(cell, method, options)
    try:
        conv, tree, _ = discover(cell, method, trees, m, params, dtype, kwargs)
    except LookupError as err:
        hint = step_methods(module)
        way = (f"hand over the one-step function: wrap(module, step={hint[0]!r})" if hint and method == "forward"
               else "hand over the one-step function (a cell submodule, step='method', or System.from_step)")
        raise UnsupportedModuleError(
            f"{kind}: no way of calling it for one step passed the checks ({err}); {way}, or pass "
            "state_dim=/input_dim=/state= to wrap()") from err
    names = options.get("state_names") or state_names(cell, method, tree, conv.splat)
    base = next(iter(_state_param_names(cell, method)), "h")
    layout = tree.layout(names, base=base)

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        out = call_step(cell, conv, p, u, tree.unflatten(h))
        return tree.flatten(out[1] if conv.returns == "pair" else out, tuple(h.shape[:-1]))

    step.__qualname__ = f"step[{type(module).__qualname__}]"
    system = System(
        step, params, state_dim=tree.size, input_dim=m, layout=layout,
        name=options.get("name") or kind,
        kind=f"generic:{type(module).__module__}.{type(module).__qualname__}:{conv.describe(kind)}",
        arch=Architecture(source="dynprobe.plugins.adapters.generic"),
        meta={"module": type(module).__qualname__, "step": conv.describe(kind)},
    )
    _check_pure(system, module, dtype, m)
    return system


def _state_param_names(module: nn.Module, method: str) -> list[str]:
    names, _ = state_parameters(signature_of(module, method), {})
    return names
