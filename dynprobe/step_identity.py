"""Whether two step functions compute the same map — what ``System.stack`` needs to vmap them.

Stacking Systems runs the *first* one's step over every network's parameters, so it is right
only when the steps differ in nothing but those parameters. Equal ``kind`` strings do not show
that: ``lambda h, u, p: s * h * (1 - h)`` built for several values of ``s`` gives one qualname
and one kind, and stacking them would run every network at the first ``s`` — a wrong number that
looks right. Two steps are the same when they are one object, or one code object whose closure
values and defaults are equal: numbers, strings and frozen configs by ``==``, tensors by value,
functions recursively, ``nn.Module`` objects by type and their non-tensor attributes (their
parameters and buffers travel in the System's ``params``, which the adapters pass explicitly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["same_step"]

_DEPTH = 4


def _plain(m: nn.Module) -> dict[str, Any]:
    """A module's own settings: public attributes that are neither tensors nor submodules."""
    return {k: v for k, v in vars(m).items() if not k.startswith("_") and not isinstance(v, (Tensor, nn.Module))}


def _same_module(a: nn.Module, b: nn.Module) -> bool:
    ma, mb = list(a.modules()), list(b.modules())
    return len(ma) == len(mb) and all(
        type(x) is type(y) and _same_value(_plain(x), _plain(y), _DEPTH - 1) for x, y in zip(ma, mb)
    )


def _same_value(a: Any, b: Any, depth: int) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or depth <= 0:
        return False
    if isinstance(a, Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.detach().cpu(), b.detach().cpu()))
    if isinstance(a, nn.Module):
        return _same_module(a, b)
    if callable(a) and hasattr(a, "__code__"):
        return _same_function(a, b, depth - 1)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y, depth - 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k], depth - 1) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable == is not known to be equal
        return False


def _same_function(f: Callable[..., Any], g: Callable[..., Any], depth: int) -> bool:
    if f is g:
        return True
    if getattr(f, "__code__", None) is None or getattr(f, "__code__", None) is not getattr(g, "__code__", None):
        return False
    if getattr(f, "__self__", None) is not getattr(g, "__self__", None):  # bound methods of different objects
        return _same_value(getattr(f, "__self__", None), getattr(g, "__self__", None), depth)
    cells_f, cells_g = f.__closure__ or (), g.__closure__ or ()
    return (
        len(cells_f) == len(cells_g)
        and all(_same_value(x.cell_contents, y.cell_contents, depth) for x, y in zip(cells_f, cells_g))
        and _same_value(f.__defaults__, g.__defaults__, depth)
        and _same_value(f.__kwdefaults__, g.__kwdefaults__, depth)
    )


def same_step(f: Callable[..., Any], g: Callable[..., Any]) -> bool:
    """True when ``f`` and ``g`` are one step function up to their explicit parameters."""
    return _same_function(f, g, _DEPTH)
