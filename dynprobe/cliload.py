"""The loading and input options every command shares (``run``, ``diagnose``, ``batch``):
declared once here, spelled and explained the same everywhere, turned into one
:class:`~dynprobe.intake.LoadOptions`.

``--drive`` is the old spelling of ``--input`` on ``run`` and ``batch``: still accepted,
hidden from ``--help``, with a deprecation note.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .options import coerce, parse_assignments

if TYPE_CHECKING:
    from .intake import LoadOptions

DTYPE_NAMES = ("float64", "float32")
"""The analysis precisions (:data:`dynprobe.intake.DTYPES`; named here so that ``--help`` loads no torch)."""

__all__ = ["LOAD_OPTIONS", "load_options", "with_load_options", "take_load_options"]

INPUT_HELP = ("what drives the network: zero (default), constant[:VALUE[,VALUE...]], feedback, a .npy/.pt file of "
              "inputs [time, batch, M] or of token ids [time, batch] (run through the model's encoder), or a text "
              "file with --vocab")


_SPECS: list[tuple[list[str], dict[str, Any]]] = [
    (["--input", "input_"], {"default": None, "metavar": "INPUT", "help": INPUT_HELP}),
    (["--vocab"], {"default": None, "metavar": "FILE",
                   "help": "vocabulary of a text --input: one token per line (line number = id) or JSON {token: id}"}),
    (["--encoder"], {"default": None, "metavar": "PKG.MOD:FN|NAME",
                     "help": "function mapping token ids [time, batch] to inputs [time, batch, M], or a submodule "
                             "of the model (default: the one in front of its recurrent core, e.g. its nn.Embedding)"}),
    (["--cycle-input"], {"is_flag": True, "default": False,
                         "help": "start the --input sequence again when a probe needs more steps than it holds"}),
    (["--factory"], {"default": None, "metavar": "PKG.MOD:FN",
                     "help": "function building the module of a checkpoint that is not a plain nn.RNN/GRU/LSTM"}),
    (["--model-param", "model_param"], {"multiple": True, "metavar": "KEY=VALUE",
                                        "help": "argument of the model or of --factory (repeatable)"}),
    (["--module"], {"default": None, "metavar": "NAME",
                    "help": "the recurrent submodule of a larger model, e.g. rnn (default: the only one inside)"}),
    (["--trust-pickle"], {"is_flag": True, "default": False,
                          "help": "allow checkpoints holding pickled modules (runs their code: only for files you "
                                  "trust)"}),
    (["--code-path", "code_path"], {"multiple": True, "metavar": "DIR",
                                    "help": "directory holding the model's code, searched before the current one (repeatable)"}),
    (["--nonlinearity"], {"type": click.Choice(["tanh", "relu"]), "default": None,
                          "help": "of a plain nn.RNN state_dict (it does not record it)"}),
    (["--allow-nonfinite"], {"is_flag": True, "default": False,
                             "help": "analyse checkpoints with NaN/inf weights instead of refusing them"}),
    (["--dtype"], {"type": click.Choice(list(DTYPE_NAMES)), "default": "float64", "show_default": True,
                   "help": "precision of the analysis"}),
    (["--device"], {"default": None, "metavar": "DEVICE", "help": "torch device, e.g. cpu or cuda:0 [default: cpu]"}),
    (["--drive", "drive"], {"default": None, "hidden": True, "help": "deprecated spelling of --input"}),
]

LOAD_OPTIONS: tuple[str, ...] = tuple(decls[0] for decls, attrs in _SPECS if not attrs.get("hidden"))
"""The flags every command shares, in the order ``--help`` lists them."""


def load_options() -> list[click.Option]:
    """The shared options as fresh click Options (a click Option belongs to one command)."""
    return [click.Option(decls, **attrs) for decls, attrs in _SPECS]


def with_load_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator adding the shared options to a click command function."""
    for decls, attrs in reversed(_SPECS):
        command = click.option(*decls, **attrs)(command)
    return command


def take_load_options(kwargs: dict[str, Any], *, default_input: str | None = None) -> LoadOptions:
    """Pop the shared options from a command's keyword arguments into a :class:`LoadOptions`."""
    from .intake import LoadOptions

    given, old = kwargs.pop("input_"), kwargs.pop("drive")
    if old is not None:
        click.echo("dynprobe: --drive is deprecated; use --input (same values)", err=True)
        given = given if given is not None else old
    text = given if given is not None else default_input
    model_kwargs = {k: coerce(v, typing.Any, name=k)
                    for k, v in parse_assignments(kwargs.pop("model_param"), what="--model-param").items()}
    return LoadOptions(
        factory=kwargs.pop("factory"), trust_pickle=kwargs.pop("trust_pickle"), nonlinearity=kwargs.pop("nonlinearity"),
        allow_nonfinite=kwargs.pop("allow_nonfinite"), dtype=kwargs.pop("dtype"), drive=text,
        module=kwargs.pop("module"), path=tuple(_absolute(p) for p in kwargs.pop("code_path")), device=kwargs.pop("device"),
        vocab=kwargs.pop("vocab"), encoder=kwargs.pop("encoder"), cycle=kwargs.pop("cycle_input"),
        model_kwargs=model_kwargs)


def _absolute(path: str) -> str:
    """A directory as an absolute path (batch workers may run elsewhere); unchanged if missing."""
    resolved = Path(path).resolve()
    return str(resolved) if resolved.is_dir() else path
