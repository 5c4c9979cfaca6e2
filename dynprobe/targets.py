"""Resolve what a user names into a System, in Python: :func:`load_system` is the command
line's loader (:func:`dynprobe.intake.resolve`) with its options as keyword arguments.

A target is a bundled or installed model name, a checkpoint path (safe loading, see
:mod:`dynprobe.checkpoints`), ``package.module:factory``, a module or a System.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .drives import Drive
from .intake import LoadOptions, resolve
from .system import System

__all__ = ["load_system"]


def load_system(
    target: str | nn.Module | System,
    *,
    dtype: torch.dtype | str | None = None,
    drive: Drive | str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    preset: str | None = None,
    factory: str | Callable[..., nn.Module] | None = None,
    trust_pickle: bool = False,
    module: str | None = None,
    path: Sequence[str | Path] = (),
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
    device: str | torch.device | None = None,
    vocab: str | Path | None = None,
    encoder: str | None = None,
    cycle: bool = False,
) -> System:
    """A System for ``target``: a model name, a checkpoint path, or ``package.module:factory``,
    loaded the way ``dynprobe run`` / ``diagnose`` / ``batch`` load it.

    Parameters
    ----------
    target
        A bundled model name (its defaults — initial state, drive — come with it), a
        checkpoint file (a state_dict with any prefix, a training-framework checkpoint, a
        safetensors file, or with ``trust_pickle`` a pickled whole module), a factory
        ``package.module:function``, an ``nn.Module`` or a System.
    dtype, device
        Precision (``torch.float64`` or ``"float64"``, ``float32``; default: the module's) and device.
    drive
        A Drive, or the CLI's ``--input`` text: ``zero``, ``constant:0.3``, ``feedback``, a
        ``.npy``/``.pt`` file of inputs ``[time, batch, M]`` or token ids ``[time, batch]``, or a
        text file with ``vocab``. Token ids go through the model's own encoder (or ``encoder``).
    model_kwargs, preset, factory
        Arguments of a bundled model or factory; the factory that builds a checkpoint's module.
    trust_pickle, path
        Allow pickled whole modules; directories holding the user's code (before the current one).
    module
        The recurrent core inside a larger model (default: the only one).
    nonlinearity, allow_nonfinite
        ``tanh``/``relu`` of a plain ``nn.RNN`` state_dict; accept NaN/inf weights.
    vocab, encoder, cycle
        Vocabulary of a text input; ``package.module:fn`` encoding token ids; restart a short input.

    Returns
    -------
    System

    References
    ----------
    Fading-memory paper §2.1 (a driven RNN as a non-autonomous dynamical system).

    Example
    -------
    >>> system = dynprobe.load_system("lm.pt", trust_pickle=True, drive="tokens.pt", dtype="float64")
    """
    text = drive if isinstance(drive, str) else None
    options = LoadOptions(
        factory=factory, trust_pickle=trust_pickle, nonlinearity=nonlinearity, allow_nonfinite=allow_nonfinite,
        dtype=str(dtype).removeprefix("torch.") if dtype is not None else None,
        drive=text, module=module,
        path=tuple(str(p) for p in path), device=str(device) if device is not None else None,
        vocab=str(vocab) if vocab is not None else None, encoder=encoder, cycle=cycle,
        model_kwargs=dict(model_kwargs or {}), preset=preset)
    return resolve(target, options, drive=drive if isinstance(drive, Drive) else None).system
