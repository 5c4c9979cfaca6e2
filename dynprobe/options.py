"""Turn command-line text into typed probe options, guided by the run function's annotations.

``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``X | None`` (``none``), unions tried in
order (``int | Literal["auto"]``), and sequences (``tuple[int, ...]``, ``list[float]``: comma
separated). Anything else is parsed as a Python literal when possible, else kept as text.
"""

from __future__ import annotations

import ast
import types
import typing
from collections.abc import Sequence
from typing import Any

from .errors import ProbeParameterError

__all__ = ["coerce", "parse_assignments", "probe_assignments"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def coerce(text: str, annotation: Any, *, name: str = "value") -> Any:
    """Convert ``text`` to the type ``annotation`` describes; :class:`ProbeParameterError` if
    it cannot, naming the option and the expected type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    low = text.strip().lower()
    if annotation is None or annotation is type(None):
        if low in ("none", "null", ""):
            return None
        raise ProbeParameterError(f"option {name}: expected none, got {text!r}")
    if _is_union(origin):
        errors = []
        for arg in sorted(args, key=lambda a: a is str):  # str last: it accepts anything
            try:
                return coerce(text, arg, name=name)
            except ProbeParameterError as err:
                errors.append(str(err))
        expected = " or ".join(_type_name(a) for a in args)
        raise ProbeParameterError(f"option {name}: expected {expected}, got {text!r}")
    if origin is typing.Literal:
        for value in args:
            if str(value).lower() == low:
                return value
        raise ProbeParameterError(f"option {name}: expected one of {', '.join(map(str, args))}, got {text!r}")
    if origin in (tuple, list, typing.Sequence, set) or annotation in (tuple, list):
        inner = args[0] if args else Any
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        values = [coerce(p.strip(), inner, name=name) for p in parts]
        return tuple(values) if origin is tuple or annotation is tuple else values
    if annotation is bool:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ProbeParameterError(f"option {name}: expected true or false, got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = None
            if as_float is not None and as_float.is_integer():
                return int(as_float)
            raise ProbeParameterError(f"option {name}: expected an integer, got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ProbeParameterError(f"option {name}: expected a number, got {text!r}") from None
    if annotation is str:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "/".join(map(str, typing.get_args(annotation)))
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def parse_assignments(items: tuple[str, ...] | list[str], *, what: str = "--param") -> dict[str, str]:
    """Split ``["k=v", ...]`` into a dict; a one-line error for an item without ``=``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProbeParameterError(f"{what} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def probe_assignments(items: Sequence[str], probes: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``["lyapunov.k=8", ...]`` → ``{"lyapunov": {"k": 8}}``, each value converted by the type
    annotation of the probe's parameter. ``probes``: the probes being run — a key for another
    probe is then an error, and with a single probe the ``PROBE.`` may be left out."""
    from .errors import did_you_mean
    from .registry import registry

    out: dict[str, dict[str, Any]] = {}
    for key, text in parse_assignments(list(items)).items():
        name, dot, param = key.partition(".")
        if not dot:
            if probes is None or len(probes) != 1:
                raise ProbeParameterError(f"--param {key}={text}: expected PROBE.KEY=VALUE, e.g. lyapunov.{key}={text}")
            name, param = probes[0], key
        if probes is not None and name not in probes:
            raise ProbeParameterError(f"--param {key}={text}: probe {name!r} is not run; probes: {', '.join(probes)}"
                                      f"{did_you_mean(name, probes)}")
        spec = registry().probe(name).parameter(param, given_as=f"--param {key}={text}")
        out.setdefault(name, {})[param] = coerce(text, spec.annotation, name=key)
    return out
