"""A cell's state as its code holds it — a tensor, a tuple ``(hy, hz)``, a list of per-layer
caches ``[(h, conv), ...]``, a dict — flattened into the one vector ``[*lead, N]`` a System
steps, and back, with every part named the way the module names it.

Leaves carry the batch on their first axis; their other axes (``[ED, N]`` of a selective
state-space model's ``h``, the singleton time axis of a ``[B, 1, H]`` hidden) are flattened in
row-major order. Unflattening returns copies, so a cell that writes into the state it is given
(``conv_state.copy_(...)``) cannot change the System's state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dynprobe import StateLayout

__all__ = ["StateTree"]


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Tensor]]:
    if isinstance(obj, Tensor):
        return [(path, obj)]
    if isinstance(obj, Mapping):
        return [leaf for k in obj for leaf in _leaves(obj[k], (*path, k))]
    if isinstance(obj, (tuple, list)):
        return [leaf for i, v in enumerate(obj) for leaf in _leaves(v, (*path, i))]
    raise TypeError(f"a state holds tensors in tuples, lists and dicts, not {type(obj).__name__}")


def _skeleton(obj: Any) -> Any:
    """The structure with leaves replaced by None (compared to check a returned state)."""
    if isinstance(obj, Tensor):
        return None
    if isinstance(obj, Mapping):
        return ("dict", tuple((k, _skeleton(v)) for k, v in obj.items()))
    return (type(obj).__name__ if isinstance(obj, (tuple, list)) else "?", tuple(_skeleton(v) for v in obj))


def _build(skeleton: Any, leaves: list[Tensor]) -> Any:
    if skeleton is None:
        return leaves.pop(0)
    kind, items = skeleton
    if kind == "dict":
        return {k: _build(s, leaves) for k, s in items}
    built = [_build(s, leaves) for s in items]
    return tuple(built) if kind == "tuple" else built


@dataclass(frozen=True)
class StateTree:
    """The structure of a state and the shape of each leaf without its batch axis."""

    skeleton: Any
    paths: tuple[tuple[Any, ...], ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, example: Any, *, batched: bool) -> StateTree:
        """From an example state (leaves ``[*shape]``, or ``[B, *shape]`` when ``batched``)."""
        found = _leaves(example)
        if not found:
            raise TypeError("the state holds no tensors")
        shapes = tuple(tuple(t.shape[1:] if batched else t.shape) for _, t in found)
        return cls(_skeleton(example), tuple(p for p, _ in found), shapes)

    @classmethod
    def flat(cls, sizes: Sequence[int]) -> StateTree:
        """One tensor ``[B, n]``, or a tuple of them for several sizes."""
        if len(sizes) == 1:
            return cls(None, ((),), ((int(sizes[0]),),))
        return cls(("tuple", (None,) * len(sizes)), tuple((i,) for i in range(len(sizes))),
                   tuple((int(s),) for s in sizes))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def parts(self) -> int:
        return len(self.shapes)

    def zeros(self, batch: int, dtype: torch.dtype) -> Any:
        return self.unflatten(torch.zeros(batch, self.size, dtype=dtype))

    def unflatten(self, h: Tensor) -> Any:
        """``[*lead, N]`` → the state structure, each leaf ``[*lead, *shape]`` (a copy)."""
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            out.append(h[..., start:start + size].reshape(*h.shape[:-1], *shape).clone())
            start += size
        return _build(self.skeleton, out)

    def matches(self, obj: Any, lead: tuple[int, ...]) -> bool:
        """Whether ``obj`` is a state of this structure for batch shape ``lead``."""
        try:
            found = _leaves(obj)
        except TypeError:
            return False
        return (_skeleton(obj) == self.skeleton and len(found) == len(self.shapes)
                and all(tuple(t.shape) == (*lead, *s) for (_, t), s in zip(found, self.shapes)))

    def flatten(self, obj: Any, lead: tuple[int, ...]) -> Tensor:
        """The state structure → ``[*lead, N]``."""
        return torch.cat([t.reshape(*lead, -1) for _, t in _leaves(obj)], dim=-1)

    def layout(self, names: Sequence[str] | None = None, base: str = "h") -> StateLayout:
        """Named parts: ``names`` (one per leaf, or one per position of a per-layer list's
        tuples), else the leaves' dict paths, else ``base`` with the leaf's index."""
        per_layer = (isinstance(self.skeleton, tuple) and self.skeleton[0] == "list" and len(self.skeleton[1]) > 0
                     and all(s == self.skeleton[1][0] and s is not None for s in self.skeleton[1]))
        parts = []
        for i, (path, size) in enumerate(zip(self.paths, self.sizes)):
            layer = int(path[0]) if per_layer else 0
            inner = path[1:] if per_layer else path
            if names is not None and per_layer and len(names) == len(self.paths) // len(self.skeleton[1]):
                name = str(names[int(inner[0]) if inner else 0])
            elif names is not None and len(names) == len(self.paths):
                name = str(names[i])
            elif any(isinstance(p, str) for p in inner):
                name = ".".join(map(str, inner))
            elif not inner:
                name = base
            else:
                name = f"{base}{'.'.join(map(str, inner))}"
            parts.append((name, layer, size))
        return StateLayout.from_sizes(parts)
