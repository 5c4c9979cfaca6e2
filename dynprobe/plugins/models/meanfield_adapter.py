"""Adapter for the bundled mean-field cells: ``VanillaRNN`` and ``MinimalRNN`` as pure steps.

The generic ``forward(x, h)`` adapter would wrap them too; this one writes the step out (no
``functional_call`` per step) and records what the mean-field estimate needs in ``arch``:
the family (``elman`` or ``minimalrnn``), its activation φ, the weights' roles and their law.
Untied modules are refused with the reason: a fresh W at every step is not one map h ↦ F(h).

References
----------
Mean-field paper §3.1 eq. (1) (vanilla), §3.2 eq. (5) (minimalRNN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

import dynprobe
from dynprobe import System
from dynprobe.architecture import Architecture, WeightRole
from dynprobe.errors import UnsupportedModuleError

__all__ = ["dynprobe_adapt", "vanilla_step", "minimal_step"]

_ROLES = {"W": "recurrent", "V": "input", "b": "bias", "W_x": "input_map"}

_PHI = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda x: x, "erf": torch.erf, "sigmoid": torch.sigmoid}


def vanilla_step(phi: str):
    """The pure step h' = φ(W h + V u + b) over ``params = {W, V, b}``."""
    f = _PHI[phi]

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        return f(h @ p["W"].mT + u @ p["V"].mT + p["b"])

    step.__qualname__ = f"vanilla_step[{phi}]"
    return step


def minimal_step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
    """The pure minimalRNN step, eq. (5), over ``params = {W, V, b, W_x}``."""
    xt = torch.tanh(u @ p["W_x"].mT)
    gate = torch.sigmoid(h @ p["W"].mT + xt @ p["V"].mT + p["b"])
    return gate * h + (1 - gate) * xt


@dynprobe.hookimpl
def dynprobe_adapt(module: Any, options: dict[str, Any]) -> System | None:
    """Adapt ``VanillaRNN`` / ``MinimalRNN`` (tied); ``None`` for anything else."""
    from .minimalrnn import MinimalRNN
    from .vanilla import VanillaRNN

    if not isinstance(module, (VanillaRNN, MinimalRNN)):
        return None
    cell = "vanilla" if isinstance(module, VanillaRNN) else "minimalrnn"
    if not module.tied:
        raise UnsupportedModuleError(
            f"{type(module).__name__}(tied=False, steps={module.steps}) has different weights at every step, so it "
            "is not one map h -> F(h); wrap a tied network (tied=True), or use dynprobe.plugins.meanfield.cosine_mc for "
            "untied Monte-Carlo runs"
        )
    params = {name: p.detach().clone() for name, p in module.named_parameters()}
    step = vanilla_step(module.phi) if cell == "vanilla" else minimal_step
    return System(
        step,
        params,
        state_dim=module.hidden_size,
        input_dim=module.input_size,
        name=options.get("name") or f"{type(module).__name__}({module.extra_repr()})",
        kind=f"meanfield:{cell}:{module.phi}",
        arch=Architecture(
            family="elman" if cell == "vanilla" else "minimalrnn", nonlinearity=module.phi,
            hidden_size=module.hidden_size, input_size=module.input_size, bias=True,
            weights=tuple(WeightRole(name, role) for name, role in _ROLES.items() if name in params),
            weight_law=module.weights, source="dynprobe.plugins.models.meanfield_adapter",
        ),
        meta={"module": type(module).__qualname__},
    )
