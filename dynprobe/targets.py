"""Resolve what a user names on the command line into a System.

A target is a bundled or installed model name, a checkpoint path (safe loading, see
:mod:`dynprobe.checkpoints`), or ``package.module:factory``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .api import model, wrap
from .checkpoints import import_factory, load_checkpoint
from .drives import Drive, parse_drive
from .errors import UnknownNameError
from .registry import registry
from .system import InitialState, System

__all__ = ["load_system"]


def _apply_defaults(system: System, defaults: Mapping[str, Any]) -> System:
    if "initial_state" in defaults:
        center = torch.as_tensor(defaults["initial_state"], dtype=system.dtype, device=system.device)
        system = system.with_init(InitialState(center=center, scale=float(defaults.get("init_scale", 0.5))))
    elif "init_scale" in defaults:
        system = system.with_init(InitialState(scale=float(defaults["init_scale"])))
    if "drive" in defaults:
        system = system.with_drive(parse_drive(str(defaults["drive"])))
    return system


def load_system(
    target: str | nn.Module | System,
    *,
    dtype: torch.dtype | None = None,
    drive: Drive | str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    preset: str | None = None,
    factory: str | None = None,
    trust_pickle: bool = False,
) -> System:
    """A System for ``target``: a model name, a checkpoint path, or ``package.module:factory``.

    Bundled models bring their own defaults (initial state, drive); ``drive`` overrides.
    """
    kwargs = dict(model_kwargs or {})
    defaults: Mapping[str, Any] = {}
    if isinstance(target, (System, nn.Module)):
        obj: Any = target
    elif target in registry().models():
        spec = registry().model(target)
        defaults = spec.system_defaults
        obj = model(target, preset=preset, **kwargs)
    elif Path(target).exists():
        obj = load_checkpoint(target, factory=factory, trust_pickle=trust_pickle,
                              nonlinearity=kwargs.pop("nonlinearity", None))
    elif ":" in target:
        obj = import_factory(target)(**kwargs)
    else:
        err = UnknownNameError("model", target, registry().models())
        err.args = (f"{err.args[0]}; a MODEL may also be a checkpoint path or package.module:factory",)
        raise err
    system = wrap(obj)
    system = _apply_defaults(system, defaults)
    if dtype is not None:
        system = system.to(dtype=dtype)
    if drive is not None:
        system = system.with_drive(parse_drive(drive) if isinstance(drive, str) else drive)
    return system
