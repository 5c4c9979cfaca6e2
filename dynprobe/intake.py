"""The one way in: what a user names (a model, a checkpoint, a factory) plus how to load and
drive it (:class:`LoadOptions`) becomes a System — the same for ``dynprobe run``,
``diagnose``, ``batch`` and :func:`dynprobe.load_system`.

:func:`resolve` loads (:mod:`dynprobe.checkpoints`), finds the recurrent core and its encoder
and readout (:mod:`dynprobe.recurrent`), casts, and builds the drive from ``--input`` — token
ids through the model's own encoder (:mod:`dynprobe.tokendrive`) after checking that this is what
the model's forward feeds its core.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .archive import user_code
from .checkpoints import Checkpoint, read_checkpoint
from .drives import Drive, parse_drive
from .errors import CheckpointError, DriveError, ProbeParameterError, UnknownNameError
from .recurrent import Parts
from .statedict import call_factory, import_factory
from .system import InitialState, System
from .tokendrive import TokenDrive
from .wrapping import analysis_dtype, attach_head, bind_tokens, check_dtype, wrap_parts

__all__ = ["LoadOptions", "Loaded", "resolve", "DTYPES", "parse_dtype", "parse_device"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".tar")
"""The analysis precisions a front end offers (half precision is refused: see :func:`dynprobe.wrap`)."""


@dataclass(frozen=True)
class LoadOptions:
    """How a target is loaded and driven; the CLI's loading options, one field each.

    Attributes
    ----------
    factory, model_kwargs
        ``package.module:function`` building the module of a checkpoint (or the target itself
        is one), and its keyword arguments (``--model-param``).
    trust_pickle
        Allow pickled whole modules (runs their code).
    path
        Directories searched, before the current one, for the user's classes and functions.
    module
        The recurrent core inside a larger model (``--module rnn``); default: the only one.
    nonlinearity
        ``tanh`` / ``relu`` for a plain ``nn.RNN`` state_dict.
    allow_nonfinite
        Analyse NaN/inf weights instead of refusing.
    dtype, device
        The System's precision (``float64``, ``float32``; ``None`` keeps the module's) and device.
    drive, vocab, encoder, cycle
        ``--input`` text (see :func:`dynprobe.drives.parse_drive`), the vocabulary of a text
        input, the encoder of token ids (``package.module:fn``, or the name of a submodule of
        the model; default: the one in front of its recurrent core), and whether a short input
        is started again.
    preset
        A bundled model's named preset.
    """

    factory: str | Callable[..., nn.Module] | None = None
    trust_pickle: bool = False
    nonlinearity: str | None = None
    allow_nonfinite: bool = False
    dtype: str | None = "float64"
    drive: str | None = None
    module: str | None = None
    path: tuple[str, ...] = ()
    device: str | None = None
    vocab: str | None = None
    encoder: str | None = None
    cycle: bool = False
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None

    def batch_kwargs(self) -> dict[str, Any]:
        """These options as keyword arguments of :func:`dynprobe.batch`."""
        return {k: v for k, v in asdict(self).items() if k != "preset"}

    def describe(self) -> dict[str, Any]:
        """JSON-able form, part of what identifies a batch result (a changed option recomputes).
        Options at their defaults beyond the original six are left out, so results written
        before they existed keep their identity."""
        factory = self.factory if isinstance(self.factory, str) or self.factory is None else (
            f"{getattr(self.factory, '__module__', '?')}:{getattr(self.factory, '__qualname__', repr(self.factory))}")
        base = {"factory": factory, "trust_pickle": self.trust_pickle, "nonlinearity": self.nonlinearity,
                "allow_nonfinite": self.allow_nonfinite, "dtype": self.dtype, "drive": self.drive}
        defaults = LoadOptions()
        extra = {k: v for k, v in asdict(self).items() if k not in base and v != getattr(defaults, k)}
        return {**base, **json.loads(json.dumps(extra, default=str))}


@dataclass
class Loaded:
    """What :func:`resolve` made: the System, the checkpoint it came from (or ``None``), and
    the split of the model around its recurrent core (``None`` when the model is the core)."""

    system: System
    checkpoint: Checkpoint | None = None
    parts: Parts | None = None
    notes: list[str] = field(default_factory=list)


def parse_dtype(value: str | torch.dtype | None) -> torch.dtype | None:
    """``"float64"`` → ``torch.float64``; a one-line error for anything else."""
    if value is None:
        return None
    dtype = value if isinstance(value, torch.dtype) else getattr(torch, str(value), None)
    if not isinstance(dtype, torch.dtype):
        raise ProbeParameterError(f"dtype={value!r}; pass one of {', '.join(DTYPES)}")
    check_dtype(dtype)
    return dtype


def parse_device(value: str | torch.device | None) -> torch.device | None:
    """A torch device that exists here; a one-line error naming what is available otherwise."""
    if value is None or isinstance(value, torch.device):
        return value
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise ProbeParameterError(f"--device {value!r}: not a torch device ({err}); e.g. cpu, cuda, cuda:1") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProbeParameterError(f"--device {value}: no CUDA device here (torch.cuda.is_available() is False); "
                                  "use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ProbeParameterError(f"--device {value}: MPS is not available here; use --device cpu")
    return device


def _load_target(target: str, options: LoadOptions, data: bytes | None) -> tuple[Any, Mapping[str, Any], Checkpoint | None]:
    from .api import model
    from .registry import registry

    kwargs = dict(options.model_kwargs)
    if target in registry().models():
        return model(target, preset=options.preset, **kwargs), registry().model(target).system_defaults, None
    if data is not None or Path(target).exists():
        ckpt = read_checkpoint(target, factory=options.factory, factory_kwargs=kwargs, trust_pickle=options.trust_pickle,
                               nonlinearity=options.nonlinearity, allow_nonfinite=options.allow_nonfinite,
                               code_path=options.path, module=options.module, data=data)
        return ckpt.module, {}, ckpt
    if Path(target).suffix in _CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"{target}: no such file (in {Path.cwd()}); check the path")
    if ":" in target:
        with user_code(options.path):
            return call_factory(target, kwargs), {}, None
    err = UnknownNameError("model", target, registry().models())
    err.args = (f"{err.args[0]}; a MODEL may also be a checkpoint path or package.module:factory",)
    raise err


def _apply_defaults(system: System, defaults: Mapping[str, Any]) -> System:
    if "initial_state" in defaults:
        center = torch.as_tensor(defaults["initial_state"], dtype=system.dtype, device=system.device)
        system = system.with_init(InitialState(center=center, scale=float(defaults.get("init_scale", 0.5))))
    elif "init_scale" in defaults:
        system = system.with_init(InitialState(scale=float(defaults["init_scale"])))
    if "drive" in defaults:
        system = system.with_drive(parse_drive(str(defaults["drive"])))
    return system


def _bind(drive: TokenDrive, loaded: Loaded, model: Any, options: LoadOptions) -> Drive:
    """Token ids through the user's ``--encoder`` or the model's own, checked against its forward."""
    encoder = None
    if options.encoder is not None and ":" not in options.encoder and isinstance(model, nn.Module):
        try:
            encoder = model.get_submodule(options.encoder)
        except AttributeError:
            names = [n for n, _ in model.named_children()]
            raise DriveError(f"--encoder {options.encoder}: {type(model).__name__} has no submodule of that name "
                             f"(its submodules: {', '.join(names) or 'none'}); or pass package.module:fn") from None
    elif options.encoder is not None:
        with user_code(options.path):
            encoder = import_factory(options.encoder)
    elif loaded.parts is None or loaded.parts.encoder is None:
        what = loaded.parts.describe() if loaded.parts is not None else loaded.system.name
        raise DriveError(f"--input gives token ids, but {what} has no encoder in front of its recurrent core; "
                         "pass --encoder package.module:fn that maps ids [time, batch] to inputs [time, batch, M]")
    bound, note = bind_tokens(drive, model, loaded.parts, encoder)
    loaded.notes.append(f"encoder {note}")
    return bound


def resolve(target: str | nn.Module | System, options: LoadOptions | None = None, *, data: bytes | None = None,
            drive: Drive | None = None) -> Loaded:
    """A System for ``target`` — a bundled model name, a checkpoint path, ``package.module:factory``,
    a module or a System — loaded and driven as ``options`` say.

    ``data``: the checkpoint's bytes when already read (the batch worker). ``drive``: a Drive
    object instead of ``options.drive`` text (an unbound :func:`~dynprobe.tokendrive.tokens` drive
    is bound to the model's encoder). Raises one-line :class:`~dynprobe.errors.DynprobeError`.
    """
    options = options or LoadOptions()
    defaults: Mapping[str, Any] = {}
    ckpt = None
    obj: Any = target
    if isinstance(target, str):
        obj, defaults, ckpt = _load_target(target, options, data)
    if isinstance(obj, System):
        loaded = Loaded(obj, ckpt)
    else:
        core = None if ckpt is not None and ckpt.rebuilt else options.module  # a rebuilt module is the core
        system, parts = wrap_parts(obj, core=core)
        if parts is None and ckpt is not None and (ckpt.encoder is not None or ckpt.readout is not None):
            parts = Parts(core=obj, name="", encoder=ckpt.encoder, readout=ckpt.readout, model=Path(ckpt.path).name)
            system = attach_head(system, parts)
        loaded = Loaded(system, ckpt, parts)
    if ckpt is not None:
        loaded.notes += list(ckpt.warnings)
    system = _apply_defaults(loaded.system, defaults)
    dtype, device = analysis_dtype(system, parse_dtype(options.dtype)), parse_device(options.device)
    if dtype is not None or device is not None:
        system = system.to(dtype=dtype, device=device)
    loaded.system = system
    given = drive if drive is not None else (
        parse_drive(options.drive, vocab=options.vocab, cycle=options.cycle) if options.drive is not None else None)
    if isinstance(given, TokenDrive):
        given = _bind(given, loaded, obj, options)
    if given is not None:
        loaded.system = system.with_drive(given)
    return loaded

