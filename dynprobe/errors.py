"""One error hierarchy for dynprobe.

Every message is one line: what failed, what was expected, what was got, and how to fix it.
Lookups also subclass :class:`LookupError`, unsupported inputs :class:`TypeError` or
:class:`ValueError`, so callers can catch the builtin they already know.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DynprobeError",
    "UnknownNameError",
    "UnsupportedModuleError",
    "DriveError",
    "ProbeParameterError",
    "PluginError",
    "CheckpointError",
    "ConvergenceError",
    "DatasetError",
    "NotApplicable",
    "did_you_mean",
]


class DynprobeError(Exception):
    """Base class of every error dynprobe raises on purpose."""


class UnknownNameError(DynprobeError, LookupError):
    """A probe, model, dataset or path name that is not installed."""

    def __init__(self, kind: str, name: str, installed: Iterable[str]):
        names = sorted(installed)
        hint = did_you_mean(name, names)
        listing = ", ".join(names) if names else "(none)"
        super().__init__(f"unknown {kind} {name!r}; installed: {listing}{hint}")
        self.kind, self.name, self.installed = kind, name, names

    def __str__(self) -> str:  # LookupError would quote the message otherwise
        return str(self.args[0])


class UnsupportedModuleError(DynprobeError, TypeError):
    """A module that no adapter can turn into a System."""


class DriveError(DynprobeError, ValueError):
    """A drive (input protocol) that does not fit the system or the run."""


class ProbeParameterError(DynprobeError, ValueError):
    """A probe parameter out of range or of the wrong type."""


class PluginError(DynprobeError):
    """A plugin that failed to load, or a registration that breaks the rules."""


class CheckpointError(DynprobeError, ValueError):
    """A checkpoint file that cannot be loaded safely or correctly."""


class ConvergenceError(DynprobeError, ArithmeticError):
    """An iterative solver that did not converge; the message says how far it got."""


class DatasetError(DynprobeError, OSError):
    """A data set whose files are missing or malformed; the message says where it looked and
    what to put there."""

    def __str__(self) -> str:  # OSError would format errno-style otherwise
        return str(self.args[0]) if self.args else ""


class NotApplicable(DynprobeError):
    """Raised by a probe's ``suggest(system)`` when no defaults make it apply to that system;
    the message is the reason ``diagnose`` shows (e.g. which parameter to pass)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
