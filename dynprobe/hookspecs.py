"""Hook specifications of the ``dynprobe`` plugin system (pluggy project name ``dynprobe``).

A plugin is a module (or object) with functions marked ``@dynprobe.hookimpl`` and named after
the hooks below, registered through the ``dynprobe`` entry-point group::

    [project.entry-points.dynprobe]
    myprobes = "my_package.plugin"

Collection hooks return lists, so an implementation is a pure function that is trivial to
test. Only :mod:`dynprobe.registry` calls these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from torch import nn

    from .specs import DatasetSpec, ModelSpec, Probe
    from .system import System

hookspec = pluggy.HookspecMarker("dynprobe")
hookimpl = pluggy.HookimplMarker("dynprobe")

__all__ = ["hookspec", "hookimpl"]


@hookspec
def dynprobe_probes() -> list[Probe]:
    """Return the probes this plugin provides (:class:`dynprobe.Probe` objects, or plain
    functions ``run(system, *, ...) -> xarray.Dataset`` whose name becomes the probe name).

    Return an empty list when the plugin provides none.
    """


@hookspec
def dynprobe_models() -> list[ModelSpec]:
    """Return reference models: :class:`dynprobe.ModelSpec` with a factory building an
    ``nn.Module`` (or a :class:`~dynprobe.System`, e.g. an ensemble).

    Return an empty list when the plugin provides none.
    """


@hookspec
def dynprobe_datasets() -> list[DatasetSpec]:
    """Return data sets and synthetic tasks: :class:`dynprobe.DatasetSpec` with a factory
    returning tensors (documented shapes) or a ``torch.utils.data.Dataset``.

    Return an empty list when the plugin provides none.
    """


@hookspec(firstresult=True)
def dynprobe_adapt(module: nn.Module | Any, options: dict[str, Any]) -> System | None:
    """Turn ``module`` into a :class:`~dynprobe.System`, or return ``None`` if this adapter
    does not handle it (the next one is tried). Raise
    :class:`~dynprobe.errors.UnsupportedModuleError` to refuse with a reason the user can act on.

    ``options`` holds the keyword arguments of :func:`dynprobe.wrap` (``state_dim``,
    ``input_dim``, ``dtype``, ``device``, ``readout``, ``init``, ``name``). Generic fallbacks
    are registered ``trylast=True`` so that specific adapters, a third party's included, win.
    """
