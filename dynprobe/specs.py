"""What plugins register: probes, models and data sets, with their provenance.

A probe is a function ``run(system, *, p1=..., p2=...) -> xarray.Dataset`` whose keyword-only,
typed, defaulted parameters *are* its options (the CLI and ``dynprobe list probes`` read them
from the signature, so ``**kwargs`` is refused at registration — "signature should be explicit").
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

from .errors import PluginError

__all__ = ["Probe", "ModelSpec", "DatasetSpec", "ProbeParam", "Verdict", "probe_params"]


@dataclass(frozen=True)
class Verdict:
    """One line of a diagnosis: what a probe's result says about the network.

    ``topic`` groups verdicts (``regime``, ``memory``, ``gradients``, ``attractors``, ...);
    ``verdict`` is the short answer; ``evidence`` the numbers it rests on; ``reference`` the
    paper section that defines it.
    """

    topic: str
    verdict: str
    evidence: str
    reference: str
    probe: str = ""


@dataclass(frozen=True)
class ProbeParam:
    """One option of a probe, read from its run function's signature."""

    name: str
    default: Any
    annotation: Any
    required: bool

    @property
    def type_name(self) -> str:
        ann = self.annotation
        if ann is inspect.Parameter.empty:
            return type(self.default).__name__ if self.default is not None else "any"
        return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")


@dataclass(frozen=True)
class Probe:
    """A measurement on a System.

    Parameters
    ----------
    name
        Registry name (``dynprobe run NAME``).
    run
        ``run(system, *, ...) -> xarray.Dataset``; keyword-only parameters with defaults.
    plot
        Optional ``plot(ds) -> matplotlib.figure.Figure``.
    applies
        Optional ``applies(system) -> str | None``: a reason why the probe does not apply to
        ``system`` (e.g. "needs a 1-D map"), or ``None`` when it does.
    suggest
        Optional ``suggest(system) -> dict``: parameter defaults scaled to the system's size,
        used by ``diagnose``; raises :class:`~dynprobe.errors.NotApplicable` with the reason when
        no defaults fit (e.g. the probe needs the task the model was trained on).
    summary
        Optional ``summary(ds) -> list[tuple[str, str]]``: (label, value) rows for terminals.
    verdicts
        Optional ``verdicts(ds) -> list[Verdict]``: what the result says, for ``diagnose``.
    reference
        Paper and section the probe implements.
    """

    name: str
    run: Callable[..., xr.Dataset]
    plot: Callable[[xr.Dataset], Any] | None = None
    applies: Callable[[Any], str | None] | None = None
    suggest: Callable[[Any], dict[str, Any]] | None = None
    summary: Callable[[xr.Dataset], list[tuple[str, str]]] | None = None
    verdicts: Callable[[xr.Dataset], list[Verdict]] | None = None
    reference: str = ""
    plugin: str = ""
    version: str = ""

    @property
    def doc(self) -> str:
        """First line of the run function's docstring."""
        return (inspect.getdoc(self.run) or "").split("\n", 1)[0]

    @property
    def params(self) -> list[ProbeParam]:
        return probe_params(self.run)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}


def probe_params(run: Callable[..., Any]) -> list[ProbeParam]:
    """The options of a probe's run function; :class:`PluginError` if the signature is not
    ``run(system, *, name: type = default, ...)``."""
    sig = inspect.signature(run)
    try:
        hints = typing.get_type_hints(run)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to raw ones
        hints = {}
    params = list(sig.parameters.values())
    where = getattr(run, "__qualname__", repr(run))
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise PluginError(f"probe function {where}: first parameter must be the system, positional")
    out = []
    for p in params[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            raise PluginError(
                f"probe function {where}: *{p.name} / **{p.name} not allowed; list every option as a keyword-only parameter"
            )
        if p.kind is not p.KEYWORD_ONLY:
            raise PluginError(f"probe function {where}: option {p.name!r} must be keyword-only (put it after *)")
        out.append(ProbeParam(p.name, None if p.default is p.empty else p.default,
                              hints.get(p.name, p.annotation), p.default is p.empty))
    return out


@dataclass(frozen=True)
class ModelSpec:
    """A reference model.

    ``factory(**kw)`` returns an ``nn.Module`` (trainable) or a :class:`~dynprobe.System`.
    ``system_defaults`` is applied when the model is used as a System by name (CLI, diagnose):
    ``initial_state`` (list of N floats: the model's own start state), ``init_scale``,
    ``drive`` (CLI drive text), ``dtype``.
    """

    name: str
    factory: Callable[..., Any]
    doc: str = ""
    reference: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    system_defaults: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugin: str = ""
    version: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A data set or synthetic task; ``factory(**kw)`` returns tensors with documented shapes
    (a dict or tuple) or a ``torch.utils.data.Dataset``."""

    name: str
    factory: Callable[..., Any]
    doc: str = ""
    reference: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    version: str = ""
