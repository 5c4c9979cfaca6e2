"""Generic adapter (``trylast``): any module with ``forward(x, h) -> (y, h)``.

Called with x of shape [batch, M] and h of shape [batch, N] — or a tuple of such tensors, which
is flattened into one state with a layout. N and M come from the module's ``hidden_size`` /
``input_size`` attributes when present, otherwise from ``wrap(module, state_dim=...,
input_dim=...)`` (``state_dim`` may be a tuple of sizes for a tuple state). The step runs the
module through ``torch.func.functional_call``; a forward that ``torch.func`` cannot transform
(``.item()``, numpy, in-place writes to its inputs) is refused at wrap time with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp, vmap

import dynprobe
from dynprobe import StateLayout, System
from dynprobe.architecture import Architecture
from dynprobe.errors import UnsupportedModuleError

__all__ = ["dynprobe_adapt"]


def _sizes(module: nn.Module, options: dict[str, Any]) -> tuple[tuple[int, ...] | None, int | None]:
    n = options.get("state_dim")
    m = options.get("input_dim")
    if n is None and isinstance(getattr(module, "hidden_size", None), int):
        n = module.hidden_size
    if m is None and isinstance(getattr(module, "input_size", None), int):
        m = module.input_size
    if n is None:
        return None, m
    return (tuple(int(s) for s in n) if isinstance(n, (tuple, list)) else (int(n),)), (None if m is None else int(m))


def _call(module: nn.Module, params: Mapping[str, Tensor], x: Tensor, state: Any) -> Any:
    out = functional_call(module, dict(params), (x, state))
    return out[1] if isinstance(out, tuple) and len(out) == 2 else out


def _discover(
    module: nn.Module, sizes: tuple[int, ...], m: int, params: Mapping[str, Tensor], dtype: torch.dtype
) -> tuple[int, ...]:
    """Find out whether the state is one tensor or a tuple, by calling forward once."""
    x = torch.zeros(1, m, dtype=dtype)
    attempts = [sizes] if len(sizes) > 1 else [sizes, (sizes[0], sizes[0])]
    errors = []
    for shape in attempts:
        state = torch.zeros(1, shape[0], dtype=dtype) if len(shape) == 1 else tuple(torch.zeros(1, s, dtype=dtype) for s in shape)
        try:
            with torch.no_grad():
                new = _call(module, params, x, state)
        except Exception as err:  # noqa: BLE001 - try the next state structure
            errors.append(f"{type(err).__name__}: {err}")
            continue
        got = (new.shape[-1],) if isinstance(new, Tensor) else tuple(t.shape[-1] for t in new)
        if got == shape:
            return shape
        errors.append(f"state of sizes {shape} came back as {got}")
    raise UnsupportedModuleError(
        f"{type(module).__name__}: forward(x, h) with x [1, {m}] and h of sizes {sizes} failed ({'; '.join(errors)}); "
        "it must return (y, h_next) with h_next shaped like h — or pass state_dim=/input_dim= to wrap()"
    )


@dynprobe.hookimpl(trylast=True)
def dynprobe_adapt(module: Any, options: dict[str, Any]) -> System | None:
    """Adapt a ``forward(x, h) -> (y, h)`` module; ``None`` if it is not an ``nn.Module``."""
    if not isinstance(module, nn.Module):
        return None
    sizes, m = _sizes(module, options)
    if sizes is None or m is None:
        raise UnsupportedModuleError(
            f"{type(module).__name__}: cannot tell its state and input sizes; give it hidden_size/input_size "
            "attributes or pass state_dim=N, input_dim=M to dynprobe.wrap()"
        )
    params = {k: v.detach().clone() for k, v in [*module.named_parameters(), *module.named_buffers()]}
    floats = [v for v in params.values() if v.is_floating_point()]
    dtype = floats[0].dtype if floats else torch.get_default_dtype()
    shape = _discover(module, sizes, m, params, dtype)
    tuple_state = len(shape) > 1
    bounds = [sum(shape[:i]) for i in range(len(shape) + 1)]

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        state = tuple(h[..., a:b] for a, b in zip(bounds[:-1], bounds[1:])) if tuple_state else h
        new = _call(module, p, u, state)
        return torch.cat(list(new), dim=-1) if tuple_state else new

    step.__qualname__ = f"step[{type(module).__qualname__}]"
    names = ("h", "c") if len(shape) == 2 else tuple(f"s{i}" for i in range(len(shape)))
    layout = StateLayout.from_sizes([(names[i], 0, s) for i, s in enumerate(shape)])
    system = System(
        step,
        params,
        state_dim=sum(shape),
        input_dim=m,
        layout=layout,
        name=options.get("name") or type(module).__name__,
        kind=f"generic:{type(module).__module__}.{type(module).__qualname__}",
        arch=Architecture(source="dynprobe.plugins.adapters.generic"),
        meta={"module": type(module).__qualname__},
    )
    h = torch.zeros(2, system.state_dim, dtype=dtype)
    u = torch.zeros(2, m, dtype=dtype)
    try:  # vmap over states catches .item()/numpy on the state (which jvp alone would differentiate wrongly)
        vmap(lambda x: jvp(lambda y: system.step(y[None], u[:1])[0], (x,), (torch.ones_like(x),))[1])(h)
    except Exception as err:  # noqa: BLE001 - report why torch.func cannot transform it
        raise UnsupportedModuleError(
            f"{type(module).__name__}.forward is not torch.func-pure ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "avoid .item(), numpy calls and in-place writes to inputs inside forward, or wrap a pure step with "
            "System.from_step"
        ) from err
    return system
