"""Click options generated from a probe's signature and docstring.

Each keyword-only option of a probe's run function becomes ``--name``: ``bool`` a
``--name/--no-name`` flag, ``Literal["a", "b"]`` a ``click.Choice``, anything else an
:class:`AnnotatedType` that converts with :func:`dynprobe.options.coerce` (unions included:
``int | Literal["auto"]`` reads ``5`` or ``auto``) and shows how to write the value
(``--reorth-every INTEGER|auto``, ``--horizons INTEGER,...``). Types only Python can pass
(a callable, a Tensor, a ``ParamPath``) are left out of the metavar. The help text of each
option is its description in the numpydoc ``Parameters`` section, then its default.
"""

from __future__ import annotations

import collections.abc
import re
import types
import typing
from typing import Any

import click

from .errors import DynprobeError
from .options import coerce
from .specs import Probe, ProbeParam

__all__ = ["AnnotatedType", "LiteralChoice", "probe_options", "fmt_default"]


_METAVARS = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN"}


def _metavar(annotation: Any) -> str | None:
    """How a value of this type is written on the command line (``INTEGER|auto``,
    ``FLOAT,FLOAT``); ``None`` for types only Python can pass (a callable, a Tensor, ...)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "none"
    if annotation in _METAVARS:
        return _METAVARS[annotation]
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin is typing.Union or origin is types.UnionType:
        parts = [m for m in (_metavar(a) for a in args) if m]
        return "|".join(dict.fromkeys(parts)) or None
    if origin in (tuple, list, set, collections.abc.Sequence) or annotation in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            inner = [_metavar(a) or "VALUE" for a in args]
            return ",".join(inner)
        item = _metavar(args[0]) if args else "VALUE"
        return f"{item or 'VALUE'},..."
    if origin is dict or annotation is dict:
        return "{KEY: VALUE}"
    return None


def _choices(annotation: Any) -> list[str]:
    """The literal values an option accepts (for completion and the help text)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return [str(a) for a in args]
    if origin is typing.Union or origin is types.UnionType:
        return [c for a in args for c in _choices(a)]
    return []


class AnnotatedType(click.ParamType):
    """A click type for a probe option: converts with :func:`dynprobe.options.coerce` and shows
    the command-line form of its annotation as the metavar (``--reorth-every INTEGER|auto``)."""

    def __init__(self, param: ProbeParam) -> None:
        self.param = param
        self.name = param.type_name
        self.metavar = _metavar(param.annotation) or "VALUE"

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return self.metavar

    def shell_complete(self, ctx: Any, param: Any, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in _choices(self.param.annotation) if c.startswith(incomplete)]

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return coerce(value, self.param.annotation, name=f"--{self.param.name.replace('_', '-')}")
        except DynprobeError as err:
            self.fail(str(err), param, ctx)


class LiteralChoice(click.Choice):
    """``click.Choice`` for a ``Literal[...]`` option (``| None`` adds the choice ``none``);
    the choices are shown as the probe spells them and matched ignoring case."""

    def __init__(self, param: ProbeParam) -> None:
        self.optional = type(None) in typing.get_args(param.annotation)
        super().__init__(_choices(param.annotation) + (["none"] if self.optional else []), case_sensitive=True)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            value = next((c for c in self.choices if str(c).casefold() == value.casefold()), value)
        choice = super().convert(value, param, ctx)
        return None if self.optional and choice == "none" else choice


def _is_literal_choice(annotation: Any) -> bool:
    """``Literal["a", "b"]`` or ``Literal[...] | None``: a plain choice of words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return all(isinstance(a, str) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and _is_literal_choice(rest[0])
    return False


def fmt_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) if value else "(empty)"
    return str(value)


def _option_help(p: ProbeParam) -> str:
    """The option's description from the probe's docstring, then its default."""
    default = "" if p.required else f"[default: {fmt_default(p.default)}]"
    shared = re.fullmatch(r"see (\w+) above", p.help)  # a long description shared with an earlier option
    text = f"see --{shared.group(1).replace('_', '-')} above." if shared else p.help
    return f"{text} {default}".strip()


def probe_options(probe: Probe) -> list[click.Option]:
    """One click option per parameter of ``probe`` (see the module docstring)."""
    opts = []
    for p in probe.params:
        flag = f"--{p.name.replace('_', '-')}"
        if p.annotation is bool:
            opts.append(click.Option([f"{flag}/--no-{p.name.replace('_', '-')}", p.name], default=None,
                                     help=_option_help(p)))
        else:
            kind = LiteralChoice(p) if _is_literal_choice(p.annotation) else AnnotatedType(p)
            opts.append(click.Option([flag, p.name], type=kind, default=None, help=_option_help(p)))
    return opts

