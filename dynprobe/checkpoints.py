"""Safe checkpoint loading: ``torch.load(weights_only=True)`` always, safetensors too.

What real training code writes is read the same way everywhere (``run``, ``diagnose``,
``batch``, :func:`dynprobe.load_system`):

* a plain ``state_dict`` of ``nn.RNN/GRU/LSTM`` (or a cell) — at the top of the file or nested
  under ``state_dict`` / ``model_state_dict`` / ``model`` / ..., with any prefix (``rnn.``,
  ``module.``, Lightning's ``model.``) — is turned back into the module from key names and
  shapes; an ``nn.Embedding`` and a linear head saved beside it are rebuilt too
  (:func:`~dynprobe.statedict.neighbours`), so a language model's text can drive it;
* anything else needs a factory ``package.module:function`` (with ``factory_kwargs``) that
  builds the module, into which the state_dict is loaded strictly;
* a pickled whole module (``torch.save(model)``) only with ``trust_pickle=True`` (CLI
  ``--trust-pickle``): unpickling runs arbitrary code. Its classes are imported from the
  current directory and ``path`` (CLI ``--code-path DIR``).

Every failure is one :class:`~dynprobe.errors.CheckpointError` line naming the file and the
problem: unreadable, truncated, pickled objects, a class that is not importable, declared
sizes beyond the machine's memory, integer or complex weights, shapes that do not fit,
NaN/inf weights.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .archive import PICKLE_REFUSAL, check_sizes, read_payload
from .errors import CheckpointError
from .statedict import call_factory, find_module, find_state_dict, fit_prefix, import_factory, infer_rnn, load_strict, neighbours

__all__ = ["Checkpoint", "read_checkpoint", "load_checkpoint", "infer_rnn", "find_state_dict", "import_factory",
           "PICKLE_REFUSAL", "MAX_COUNT"]

_CONFIG_KEYS = ("config", "hparams", "hyper_parameters", "args", "meta", "metadata")
_EPOCH_NAME = re.compile(r"(?:^|[^a-z])(?:epoch|ep)[_\-=]?(\d+)", re.IGNORECASE)
_STEP_NAME = re.compile(r"(?:^|[^a-z])(?:step|iter|it|global_step)[_\-=]?(\d+)", re.IGNORECASE)
MAX_COUNT = 2**53
"""Largest epoch / step a checkpoint may record (exact as a float64 coordinate); larger values,
negative ones and non-integers are ignored with a recorded warning."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the module with its weights, and what the file says about itself.

    ``module`` is the recurrent module rebuilt from a state_dict, the factory's module, or the
    unpickled one. ``encoder`` / ``readout`` are an ``nn.Embedding`` / ``nn.Linear`` saved beside
    a rebuilt core (``None`` otherwise: a whole module carries its own, found by
    :func:`dynprobe.recurrent.split`). ``epoch`` / ``step`` come from the file (keys ``epoch``,
    ``step``/``global_step``, or safetensors metadata) or else from its name (``epoch_012.pt``,
    ``step-3000.pt``); ``None`` when neither says. ``format`` is ``torch``, ``safetensors`` or
    ``pickle``. ``rebuilt``: the module was rebuilt from key names and shapes (no factory, no
    pickle). ``warnings`` are one-line notes (e.g. an absurd epoch that was ignored).
    """

    module: nn.Module
    path: str
    format: str
    epoch: int | None = None
    step: int | None = None
    encoder: nn.Module | None = None
    readout: nn.Module | None = None
    rebuilt: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _check_finite(path: str, state: Mapping[str, torch.Tensor], allow: bool) -> None:
    if allow:
        return
    nan = inf = 0
    where = []
    for key, value in state.items():
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            n_nan = int(torch.isnan(value).sum())
            nan, inf = nan + n_nan, inf + int((~torch.isfinite(value)).sum()) - n_nan
            where.append(repr(key))
    if where:
        more = f" and {len(where) - 3} more" if len(where) > 3 else ""
        raise CheckpointError(
            f"{path}: weights hold {nan} NaN and {inf} inf values (in {', '.join(where[:3])}{more}; did training "
            "diverge?); refused: pass allow_nonfinite=True (CLI: --allow-nonfinite) to analyse them anyway"
        )


def _recorded(obj: Any, names: tuple[str, ...]) -> Any:
    """A value recorded at the top of a checkpoint dict or in its config / hparams."""
    if not isinstance(obj, Mapping):
        return None
    for name in names:
        value = obj.get(name)
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = int(value.item())
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
    for key in _CONFIG_KEYS:
        inner = obj.get(key)
        inner = vars(inner) if hasattr(inner, "__dict__") and not isinstance(inner, Mapping) else inner
        if isinstance(inner, Mapping) and (found := _recorded(inner, names)) is not None:
            return found
    return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _count(what: str, value: Any, notes: list[str]) -> int | None:
    """An epoch / step count, or ``None`` with a note when it is not a plausible one."""
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        notes.append(f"{what} {str(value)[:40]!r} recorded in the file is not an integer; ignored")
        return None
    if not 0 <= n <= MAX_COUNT:
        notes.append(f"{what} {str(value)[:40]} recorded in the file is outside 0..2**53; ignored")
        return None
    return n


def read_checkpoint(
    path: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
    code_path: Sequence[str | Path] = (),
    module: str | None = None,
    data: bytes | None = None,
) -> Checkpoint:
    """Load a checkpoint file without running pickled code, with its epoch / step.

    Parameters
    ----------
    path
        A ``torch.save`` file (zip or legacy format), a Lightning ``.ckpt``, or a
        ``.safetensors`` file.
    factory, factory_kwargs
        ``package.module:function`` (or a callable) and its keyword arguments, building the
        module when the state_dict is not a plain ``nn.RNN/GRU/LSTM``; the weights are loaded
        strictly, under any prefix.
    trust_pickle
        Allow a file holding pickled objects (a whole module). Unpickling runs the file's code.
    nonlinearity
        ``tanh`` / ``relu`` for a plain RNN state_dict that does not record it.
    allow_nonfinite
        Accept NaN / inf weights (refused by default).
    code_path
        Directories searched (before the current one) for the user's classes and factories.
    module
        Which recurrent module of a state_dict holding several to rebuild (its prefix,
        ``"encoder.rnn"``); for a factory's or a pickled module it is found later
        (:func:`dynprobe.recurrent.split`).
    data
        The file's bytes when already read (the batch worker hashes and loads one read).

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        One line naming the file and the problem.
    """
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"{path}: unreadable ({err.strerror or err})") from err
    obj, meta, fmt = read_payload(path, data, trust_pickle=trust_pickle, code_path=code_path)
    notes: list[str] = []
    nonlinearity = _first(nonlinearity, _recorded(meta, ("nonlinearity",)), _recorded(obj, ("nonlinearity",)))
    found = find_module(obj)
    encoder = readout = built = None
    rebuilt = False
    if found is not None:
        fmt = "pickle"
        state = found.state_dict()
    else:
        state = find_state_dict(obj)
        if state is None:
            raise CheckpointError(
                f"{path}: no state_dict of tensors found (top-level type {type(obj).__name__}); expected a module's "
                "state_dict, a checkpoint dict holding one (state_dict / model_state_dict / model), or a pickled module")
    check_sizes(str(path), state)
    _check_finite(str(path), state, allow_nonfinite)
    if found is None:
        try:
            if factory is not None:
                from .archive import user_code

                with user_code(code_path):
                    built = call_factory(factory, factory_kwargs)
                load_strict(built, fit_prefix(built, state), what=f"the factory's {type(built).__name__}")
            else:
                built = infer_rnn(state, nonlinearity=nonlinearity, name=module)
                encoder, readout = neighbours(state, built, module)
                rebuilt = True
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from err
    epoch = _count("epoch", _first(_recorded(meta, ("epoch",)), _recorded(obj, ("epoch",))), notes)
    step = _count("step", _first(_recorded(meta, ("step", "global_step")), _recorded(obj, ("step", "global_step"))),
                  notes)
    if epoch is None and (m := _EPOCH_NAME.search(path.stem)):
        epoch = _count("epoch", m.group(1), notes)
    if step is None and (m := _STEP_NAME.search(path.stem)):
        step = _count("step", m.group(1), notes)
    for note in notes:
        warnings.warn(f"{path}: {note}", RuntimeWarning, stacklevel=2)
    return Checkpoint(module=found if found is not None else built, path=str(path), format=fmt, epoch=epoch, step=step,
                      encoder=encoder, readout=readout, rebuilt=rebuilt,
                      info={"nonlinearity": nonlinearity} if nonlinearity else {},
                      warnings=tuple(f"{path}: {n}" for n in notes))


def load_checkpoint(
    path: str | Path,
    *,
    factory: str | Callable[..., nn.Module] | None = None,
    trust_pickle: bool = False,
    nonlinearity: str | None = None,
    allow_nonfinite: bool = False,
    **options: Any,
) -> nn.Module:
    """Load a module from a checkpoint file without running pickled code (see
    :func:`read_checkpoint`, which takes the same options). Raises :class:`CheckpointError`
    with the file name and the problem in one line."""
    return read_checkpoint(path, factory=factory, trust_pickle=trust_pickle, nonlinearity=nonlinearity,
                           allow_nonfinite=allow_nonfinite, **options).module
