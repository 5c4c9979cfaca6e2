"""What plugins register: probes, models and data sets, with their provenance.

A probe is a function ``run(system, *, p1=..., p2=...) -> xarray.Dataset`` whose keyword-only,
typed, defaulted parameters *are* its options (the CLI and ``dynprobe list probes`` read them
from the signature, so ``**kwargs`` is refused at registration — "signature should be explicit").
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

from .docstrings import doc_description, doc_params, doc_summary
from .errors import PluginError, ProbeParameterError, did_you_mean
from .schema import Dimension, declared_dims

__all__ = ["Probe", "ModelSpec", "DatasetSpec", "ProbeParam", "Verdict", "probe_params", "ENSEMBLE_MODES"]

ENSEMBLE_MODES = ("per_network", "pooled", "none")
"""How a probe treats an ensemble System (stacked networks, a leading ``network`` axis):
``per_network`` — every output gains a leading ``network`` dimension and network i equals a separate run
of network i; ``pooled`` — one result from all networks together (e.g. weight statistics); ``none`` —
refused with a one-line reason (``dynprobe.run`` raises, ``diagnose`` skips)."""


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


def type_label(annotation: Any) -> str:
    """A type annotation as a reader writes it: ``int | None``, ``'auto' | int``,
    ``Sequence[float]``, ``Callable[[System, float], System]`` — short class names, no
    ``typing.`` / module prefixes, literal values quoted."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if annotation is typing.Any:
        return "Any"
    if annotation is None or annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_label(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", None) or str(origin).rsplit(".", 1)[-1]
        if name == "Callable" and args and isinstance(args[0], list):
            return f"Callable[[{', '.join(type_label(a) for a in args[0])}], {type_label(args[-1])}]"
        inner = ", ".join("..." if a is Ellipsis else type_label(a) for a in args)
        return f"{name}[{inner}]" if args else name
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").rsplit(".", 1)[-1] if "." in str(annotation) else str(annotation)


@dataclass(frozen=True)
class ProbeParam:
    """One option of a probe, read from its run function's signature; ``help`` is its
    description in the run function's numpydoc ``Parameters`` section (plain text)."""

    name: str
    default: Any
    annotation: Any
    required: bool
    help: str = ""

    @property
    def type_name(self) -> str:
        """The annotation as a reader writes it (:func:`type_label`)."""
        if self.annotation is inspect.Parameter.empty:
            return type(self.default).__name__ if self.default is not None else "any"
        return type_label(self.annotation)


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
        Optional ``plot(ds, *, ax=None, figsize=None, view=None, **kwargs) -> Figure``, called
        by ``ds.dynprobe.plot(...)`` (the accessor documents the convention; a plain
        ``plot(ds)`` still works without those arguments).
    applies
        Optional ``applies(system) -> str | None``: a reason why the probe does not apply to
        ``system`` (e.g. "needs a 1-D map"), or ``None`` when it does.
    suggest
        Optional ``suggest(system) -> dict``: parameter defaults scaled to the system's size,
        used by ``diagnose``; raises :class:`~dynprobe.errors.NotApplicable` with the reason when
        no defaults fit (e.g. the probe needs the task the model was trained on). A ``suggest``
        that also takes a keyword ``quick: bool`` chooses its own ``diagnose --quick`` values;
        otherwise :data:`dynprobe.planning.QUICK_BUDGETS` are scaled (see there).
    estimate
        Optional ``estimate(system, params) -> float | None``: the seconds a run with these
        parameters is expected to take, shown before ``diagnose`` starts (without one, the
        times this probe took here before are used, see :mod:`dynprobe.timings`).
    summary
        Optional ``summary(ds) -> list[tuple[str, str]]``: (label, value) rows for terminals.
    verdicts
        Optional ``verdicts(ds) -> list[Verdict]``: what the result says, for ``diagnose``.
    reference
        Paper and section the probe implements.
    ensemble
        How it treats ensembles: one of :data:`ENSEMBLE_MODES` (default ``per_network``, which
        :func:`dynprobe.testing.check_probe` verifies network by network).
    dims
        The dimensions its results may have (besides the lead ``network`` / ``checkpoint``):
        names of :data:`dynprobe.schema.VOCABULARY`, or :class:`~dynprobe.schema.Dimension`
        records of its own (meaning, coordinate, units, kind) for an axis the vocabulary lacks.
        ``None`` (the default): any vocabulary name. :func:`dynprobe.validate` and
        :func:`dynprobe.testing.check_probe` refuse a result with any other dimension, or a
        coordinate in other units.
    across
        Optional ``{name: fn}``: results derived from this probe's results over a batch's
        checkpoints, ``fn(stacked) -> xarray.Dataset`` with ``stacked`` the probe's results along
        ``checkpoint`` as :func:`dynprobe.open_batch` reads them; ``open_batch`` adds each as the
        node ``PROBE/name`` (``fixedpoints/tracks``: the points followed through training). A
        function that raises is a warning naming it; the results themselves are read as always.
    """

    name: str
    run: Callable[..., xr.Dataset]
    plot: Callable[[xr.Dataset], Any] | None = None
    applies: Callable[[Any], str | None] | None = None
    suggest: Callable[[Any], dict[str, Any]] | None = None
    summary: Callable[[xr.Dataset], list[tuple[str, str]]] | None = None
    verdicts: Callable[[xr.Dataset], list[Verdict]] | None = None
    reference: str = ""
    ensemble: str = "per_network"
    plugin: str = ""
    version: str = ""
    estimate: Callable[[Any, Mapping[str, Any]], float | None] | None = None
    dims: tuple[str | Dimension, ...] | None = None
    across: Mapping[str, Callable[[xr.Dataset], xr.Dataset]] | tuple[tuple[str, Callable[[xr.Dataset], xr.Dataset]], ...] = ()

    def __post_init__(self) -> None:
        pairs = tuple(self.across.items()) if isinstance(self.across, Mapping) else tuple(self.across)
        bad = [pair for pair in pairs if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                                              and pair[0].isidentifier() and callable(pair[1]))]
        if bad:
            raise PluginError(f"probe {self.name!r}: across must map names (identifiers) to functions of the stacked "
                              f"results; got {bad[0]!r}")
        object.__setattr__(self, "across", pairs)  # pairs, not a dict: a Probe stays hashable
        if self.ensemble not in ENSEMBLE_MODES:
            raise PluginError(f"probe {self.name!r}: ensemble={self.ensemble!r}; use one of {', '.join(ENSEMBLE_MODES)}")
        if self.dims is not None:
            if isinstance(self.dims, (str, Dimension)):
                raise PluginError(f"probe {self.name!r}: dims must be a tuple of names / Dimension records, "
                                  f"not {self.dims!r}; write dims=({self.dims!r},)")
            object.__setattr__(self, "dims", tuple(self.dims))
            declared_dims(self.dims, f"probe {self.name!r}")  # refuse an unknown name at registration

    @property
    def dimensions(self) -> Mapping[str, Dimension] | None:
        """The declared dims resolved to their records (``None``: undeclared, any vocabulary name)."""
        return None if self.dims is None else declared_dims(self.dims, f"probe {self.name!r}")

    def refusal(self, system: Any) -> str | None:
        """Why this probe does not run on ``system`` (an ensemble it refuses, or its own
        ``applies``), or ``None`` when it does."""
        if system is None:
            return None
        if system.networks is not None and self.ensemble == "none":
            return (f"it does not take ensembles ({system.networks} stacked networks); run it on one network "
                    "(system.network(i))")
        return self.applies(system) if self.applies is not None else None

    @property
    def doc(self) -> str:
        """The run function's one-paragraph summary, as plain text."""
        return doc_summary(self.run)

    @property
    def description(self) -> str:
        """Summary and extended description of the run function (plain text, paragraphs
        separated by blank lines): what ``dynprobe run NAME --help`` shows."""
        return doc_description(self.run)

    @property
    def params(self) -> list[ProbeParam]:
        return probe_params(self.run)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}

    def parameter(self, key: str, *, given_as: str | None = None) -> ProbeParam:
        """The parameter ``key``, or :class:`ProbeParameterError` naming the probe, the key, its
        parameters and the closest spelling. The one check behind ``dynprobe.run``,
        ``dynprobe run -p`` and ``--param PROBE.KEY=VALUE`` (``given_as``: the text the user
        typed, put in front of the message)."""
        known = {p.name: p for p in self.params}
        if key in known:
            return known[key]
        listed = f"parameters: {', '.join(known) or '(none)'}{did_you_mean(key, known)}"
        if given_as is not None:
            raise ProbeParameterError(f"{given_as}: probe {self.name!r} has no parameter {key!r}; {listed}")
        raise ProbeParameterError(f"probe {self.name!r}: unknown parameter {key!r}; {listed}")

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` checked (each known, every required one given) and completed with the
        defaults: the keyword arguments of :attr:`run`."""
        for key in params:
            self.parameter(key)
        missing = [p.name for p in self.params if p.required and p.name not in params]
        if missing:
            raise ProbeParameterError(f"probe {self.name!r}: missing required parameter(s) {', '.join(missing)}")
        return {**self.defaults(), **params}


def probe_params(run: Callable[..., Any]) -> list[ProbeParam]:
    """The options of a probe's run function; :class:`PluginError` if the signature is not
    ``run(system, *, name: type = default, ...)``. Read once per function (the docstring parse
    costs milliseconds, and every ``dynprobe.run`` binds its parameters)."""
    try:
        return list(_cached_params(run))
    except TypeError:  # an unhashable callable: read it every time
        return list(_read_params(run))


@functools.lru_cache(maxsize=512)
def _cached_params(run: Callable[..., Any]) -> tuple[ProbeParam, ...]:
    return _read_params(run)


def _read_params(run: Callable[..., Any]) -> tuple[ProbeParam, ...]:
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
    helps = doc_params(run)
    for p in params[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            raise PluginError(
                f"probe function {where}: *{p.name} / **{p.name} not allowed; list every option as a keyword-only parameter"
            )
        if p.kind is not p.KEYWORD_ONLY:
            raise PluginError(f"probe function {where}: option {p.name!r} must be keyword-only (put it after *)")
        out.append(ProbeParam(p.name, None if p.default is p.empty else p.default,
                              hints.get(p.name, p.annotation), p.default is p.empty, helps.get(p.name, "")))
    return tuple(out)


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
