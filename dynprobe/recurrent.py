"""Find the recurrent core inside a user's model, and what feeds it and reads it out.

A trained model is rarely a bare ``nn.LSTM``: a word-level language model is an
``nn.Embedding``, a 2-layer ``nn.LSTM`` and an ``nn.Linear`` decoder in one ``nn.Module``.
:func:`split` finds the recurrent module inside (every ``nn.RNN/GRU/LSTM`` or cell; several
are listed and one must be named), and keeps the modules registered before it as the *input
encoder* and those after it as the *readout*. Dropout (identity in eval mode) is left out.

:func:`verify_encoder` checks the split against the model's own forward: a forward pre-hook on
the core records what the model actually feeds it for the same input, which must equal
``encoder(x)``. That is what makes a token-driven Lyapunov exponent the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .errors import UnsupportedModuleError

__all__ = ["Parts", "split", "candidates", "verify_encoder", "RECURRENT"]

RECURRENT: tuple[type[nn.Module], ...] = (nn.RNNBase, nn.RNNCellBase)
"""Module types looked for inside a container."""

_TRANSPARENT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)


@dataclass(frozen=True)
class Parts:
    """A model split around its recurrent core.

    Attributes
    ----------
    core
        The recurrent module (``name``: its dotted path in the model, ``""`` for the model itself).
    encoder, readout
        What sits before / after it (one module, an ``nn.Sequential`` of several, or ``None``).
    model
        The type name of the whole model, for messages.
    """

    core: nn.Module
    name: str
    encoder: nn.Module | None
    readout: nn.Module | None
    model: str

    def describe(self) -> str:
        """One line: ``RNNModel: encoder Embedding(100, 16) -> rnn LSTM(16, 32, num_layers=2) -> readout Linear(...)``."""
        enc = f"encoder {_short(self.encoder)} -> " if self.encoder is not None else ""
        out = f" -> readout {_short(self.readout)}" if self.readout is not None else ""
        return f"{self.model}: {enc}{self.name or 'core'} {_short(self.core)}{out}"


def _short(module: nn.Module | None) -> str:
    text = repr(module).splitlines()
    return text[0].rstrip("(") + ("(...)" if len(text) > 1 else "")


def candidates(model: nn.Module) -> list[str]:
    """Dotted names of the outermost recurrent modules inside ``model`` (in registration order)."""
    found: list[str] = []
    for name, sub in model.named_modules():
        if name and isinstance(sub, RECURRENT) and not any(name.startswith(f + ".") for f in found):
            found.append(name)
    return found


def _chain(modules: list[nn.Module]) -> nn.Module | None:
    kept = [m for m in modules if not isinstance(m, _TRANSPARENT)]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else nn.Sequential(*kept)


def split(model: nn.Module, name: str | None = None) -> Parts:
    """Split ``model`` around its recurrent core: the submodule ``name``, or else the only
    ``nn.RNN/GRU/LSTM``/cell inside it.

    Raises
    ------
    UnsupportedModuleError
        No recurrent submodule, several (they are listed: name one), or ``name`` not found.
    """
    kind = type(model).__name__
    found = candidates(model)
    if name is None:
        if len(found) != 1:
            listing = ", ".join(f"{n!r} ({type(model.get_submodule(n)).__name__})" for n in found)
            what = f"holds {len(found)} recurrent modules ({listing})" if found else "holds no nn.RNN/GRU/LSTM or cell"
            raise UnsupportedModuleError(
                f"{kind}: {what}; name the recurrent core with module=NAME (CLI: --module NAME)"
                + ("" if found else ", give it forward(x, h) -> (y, h), or hand over a one-step function"))
        name = found[0]
    try:
        core = model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise UnsupportedModuleError(
            f"{kind}: has no submodule {name!r}; its submodules: {', '.join(names) or '(none)'}"
            + (f"; recurrent ones: {', '.join(found)}" if found else "")) from None
    inside = {id(m) for m in core.modules()}
    before: list[nn.Module] = []
    after: list[nn.Module] = []
    seen = False
    for sub_name, sub in model.named_modules():
        if sub is core:
            seen = True
        elif not list(sub.children()) and id(sub) not in inside and not name.startswith(sub_name + "."):
            (after if seen else before).append(sub)
    return Parts(core=core, name=name, encoder=_chain(before), readout=_chain(after), model=kind)


def _core_input(model: nn.Module, core: nn.Module, x: Tensor) -> tuple[Tensor | None, str]:
    """What ``model``'s own forward feeds ``core`` for input ``x`` (tried as ``model(x)`` and
    ``model(x, None)``), or ``None`` and why it could not be run."""
    seen: list[Tensor] = []

    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], Tensor):
            seen.append(args[0].detach())

    handle = core.register_forward_pre_hook(hook)
    errors = []
    try:
        for call in ((x,), (x, None)):
            seen.clear()
            try:
                with torch.no_grad():
                    model(*call)
            except Exception as err:  # noqa: BLE001 - the user's forward may want other arguments
                errors.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                if seen:
                    break
                continue
            break
    finally:
        handle.remove()
    if not seen:
        return None, "; ".join(errors)
    if isinstance(core, nn.RNNCellBase) or len(seen) > 1:  # a cell called once per step: its inputs over time
        return (torch.stack(seen) if all(s.shape == seen[0].shape for s in seen) else seen[0]), ""
    return seen[0], ""


def verify_encoder(model: nn.Module, parts: Parts, x: Tensor, expected: Tensor) -> str:
    """Check that ``model``'s forward feeds its core ``expected`` (the encoder's output for
    ``x``). Returns how it was checked, or why it could not be (the forward would not run on
    ``x`` alone: then nothing contradicts the split). Raises :class:`UnsupportedModuleError`
    when the forward feeds the core something else."""
    was = model.training
    model.eval()
    try:
        fed, why = _core_input(model, parts.core, x)
    finally:
        model.train(was)
    if fed is None:
        return f"not checked against {parts.model}.forward ({why or 'the core was not called'})"
    if getattr(parts.core, "batch_first", False) and fed.ndim == 3:
        fed = fed.transpose(0, 1)
    ours = expected.to(fed.dtype) if fed.is_floating_point() else expected
    if ours.shape != fed.shape or not torch.allclose(ours, fed.to(ours.dtype), rtol=1e-6, atol=1e-9):
        diff = (f"max |difference| {float((ours - fed.to(ours.dtype)).abs().max()):.3g}" if ours.shape == fed.shape
                else f"shape {list(fed.shape)}, not {list(ours.shape)}")
        raise UnsupportedModuleError(
            f"{parts.model}.forward feeds {parts.name!r} something other than the encoder's output ({diff}); "
            "pass the function that computes what the core receives: encoder=package.module:fn (CLI: --encoder)")
    return f"checked against {parts.model}.forward"
