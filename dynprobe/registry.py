"""The plugin registry: the only module that touches ``pm.hook``.

Entry points of the ``dynprobe`` group are loaded sorted by name, each in its own ``try``: a
plugin that fails to import becomes a warning and a recorded failure (``dynprobe plugins``
shows it) while the others keep working. Bundled plugins are registered through the same
entry-point group as a third party's. Hook implementations are called one at a time so that
every probe, model and data set knows which plugin and distribution version it came from.

Nothing a plugin does takes the registry down: an import that raises anything, ``SystemExit``
included (only ``KeyboardInterrupt`` goes through), a hook that raises or never returns (each
import and collection hook runs under :data:`HOOK_TIMEOUT_S`, see :mod:`dynprobe.deadline`),
an adapter that crashes (adapters are tried one at a time; a crash is recorded and the next
one is tried), a probe name taken twice (the bundled probe keeps its name and the impostor is
listed as ignored; between two third parties the name is refused, naming both). Each becomes
a :class:`PluginFailure` that ``dynprobe plugins`` shows.

Environment switches: ``DYNPROBE_LOAD_PLUGINS=a,b`` loads only those entry points;
``DYNPROBE_DISABLE_PLUGINS=c`` blocks those; ``DYNPROBE_HOOK_TIMEOUT=S`` changes the time limit
of plugin imports and collection hooks (``0``: none).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from . import hookspecs
from .deadline import call_with_deadline
from .errors import DynprobeError, PluginError, UnknownNameError, UnsupportedModuleError
from .specs import DatasetSpec, ModelSpec, Probe, probe_params

__all__ = ["Registry", "PluginFailure", "Shadowed", "registry", "use_registry", "ENTRY_POINT_GROUP", "HOOK_TIMEOUT_S"]

ENTRY_POINT_GROUP = "dynprobe"
HOOK_TIMEOUT_S = 60.0
"""Default time limit of one plugin import or collection hook call (``DYNPROBE_HOOK_TIMEOUT``)."""
BUNDLED_DISTRIBUTION = "dynprobe"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or whose registration broke the rules."""

    plugin: str
    error: str
    exception: BaseException


@dataclass(frozen=True)
class Shadowed:
    """A registration that lost its name to another plugin's (``dynprobe list`` marks it)."""

    kind: str
    name: str
    plugin: str
    kept: str
    """The plugin whose registration keeps the name; ``""`` when the name is refused."""


def _hook_timeout() -> float | None:
    raw = os.environ.get("DYNPROBE_HOOK_TIMEOUT")
    if raw is None:
        return HOOK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        warnings.warn(f"dynprobe: DYNPROBE_HOOK_TIMEOUT={raw!r} is not a number of seconds; using "
                      f"{HOOK_TIMEOUT_S:g}", RuntimeWarning, stacklevel=3)
        return HOOK_TIMEOUT_S
    return value if value > 0 else None


def _guarded(fn: Any, what: str) -> Any:
    """``fn()`` under the hook time limit; re-raise what it raised, a timeout as PluginError."""
    timeout = _hook_timeout()
    outcome = call_with_deadline(fn, timeout, name=f"dynprobe {what}")
    if outcome.timed_out:
        raise PluginError(f"{what} did not return within {timeout:g} s (DYNPROBE_HOOK_TIMEOUT)")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def _split_env(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class Registry:
    """Plugins, and what they provide: probes, models, data sets, adapters.

    ``Registry()`` loads the installed entry points; ``Registry(plugins=[...],
    entry_points=False)`` builds a hermetic registry from plugin objects (tests).
    """

    def __init__(self, plugins: Iterable[Any] = (), *, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("dynprobe")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.versions: dict[str, str] = {}
        if entry_points:
            self._load_entry_points()
        for obj in plugins:
            name = getattr(obj, "__name__", None) or type(obj).__name__
            self.pm.register(obj, name=name)
            self.versions.setdefault(name, "")
        self._probes: dict[str, Probe] | None = None
        self._models: dict[str, ModelSpec] | None = None
        self._datasets: dict[str, DatasetSpec] | None = None
        self._ambiguous: dict[tuple[str, str], PluginError] = {}
        self.shadowed: list[Shadowed] = []

    # ------------------------------------------------------------------ loading
    def _load_entry_points(self) -> None:
        only = _split_env("DYNPROBE_LOAD_PLUGINS")
        blocked = _split_env("DYNPROBE_DISABLE_PLUGINS") or set()
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        seen: set[str] = set()
        for ep in eps:
            if ep.name in seen or (only is not None and ep.name not in only) or ep.name in blocked:
                continue
            seen.add(ep.name)
            try:
                obj = _guarded(ep.load, f"import of plugin {ep.name!r} ({ep.value})")
                self.pm.register(obj, name=ep.name)
            except KeyboardInterrupt:
                raise
            except BaseException as err:  # noqa: BLE001 - SystemExit too: one broken plugin must not break the rest
                self._fail(ep.name, err, f"plugin {ep.name!r} ({ep.value}) failed to load")
                continue
            dist = getattr(ep, "dist", None)
            self.versions[ep.name] = f"{dist.name} {dist.version}" if dist is not None else ""

    def _fail(self, plugin: str, err: BaseException, what: str) -> None:
        text = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}".rstrip(": ")
        self.failures.append(PluginFailure(plugin, text, err))
        warnings.warn(f"dynprobe: {what}: {text}", RuntimeWarning, stacklevel=3)

    @property
    def plugins(self) -> list[tuple[str, str]]:
        """Loaded plugins as ``(name, distribution version)``, sorted."""
        return sorted((name, self.versions.get(name, "")) for name, _ in self.pm.list_name_plugin())

    # ------------------------------------------------------------------ collection
    def _collect(self, hook: str, kind: str, normalize: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            plugin = impl.plugin_name
            try:
                items = list(_guarded(impl.function, f"hook {hook} of plugin {plugin!r}") or [])
                normalized = [normalize(item, plugin) for item in items]
            except KeyboardInterrupt:
                raise
            except BaseException as err:  # noqa: BLE001 - record and keep the other plugins
                self._fail(plugin, err, f"plugin {plugin!r} could not register its {kind}s")
                continue
            for item in normalized:
                if item.name in found:
                    found[item.name] = self._settle(kind, found[item.name], item)
                    continue
                found[item.name] = item
        return dict(sorted(found.items()))

    def _bundled(self, plugin: str) -> bool:
        return self.versions.get(plugin, "").split(" ")[0] == BUNDLED_DISTRIBUTION

    def _settle(self, kind: str, first: Any, second: Any) -> Any:
        """Two registrations of one name: the bundled one keeps it (a third party cannot
        silently replace a bundled probe's numbers); between two others the name is refused.
        Either way the clash is a recorded failure naming both plugins."""
        keep = first if self._bundled(first.plugin) and not self._bundled(second.plugin) else (
            second if self._bundled(second.plugin) and not self._bundled(first.plugin) else None)
        if keep is not None:
            lost = second if keep is first else first
            error = PluginError(
                f"{kind} {keep.name!r} of plugin {lost.plugin!r} is ignored: the name belongs to the bundled plugin "
                f"{keep.plugin!r}; rename it in {lost.plugin!r}"
            )
            self.shadowed.append(Shadowed(kind, keep.name, lost.plugin, keep.plugin))
        else:
            keep = first
            error = PluginError(
                f"{kind} {first.name!r} is registered twice, by plugins {first.plugin!r} and {second.plugin!r}; "
                f"disable one with DYNPROBE_DISABLE_PLUGINS={second.plugin}"
            )
            self._ambiguous[(kind, first.name)] = error
            self.shadowed += [Shadowed(kind, first.name, p, "") for p in (first.plugin, second.plugin)]
        self.failures.append(PluginFailure(second.plugin if keep is first else first.plugin, str(error), error))
        warnings.warn(f"dynprobe: {error}", RuntimeWarning, stacklevel=4)
        return keep

    def _normalize_probe(self, item: Any, plugin: str) -> Probe:
        if not isinstance(item, Probe):
            if not callable(item):
                raise PluginError(f"plugin {plugin!r}: dynprobe_probes returned {item!r}, not a Probe or function")
            item = Probe(name=item.__name__, run=item)
        probe_params(item.run)  # raises PluginError on a bad signature
        return replace(item, plugin=plugin, version=self.versions.get(plugin, ""))

    def _normalize_spec(self, cls: type) -> Any:
        def normalize(item: Any, plugin: str) -> Any:
            if not isinstance(item, cls):
                raise PluginError(f"plugin {plugin!r} returned {item!r}, expected {cls.__name__}")
            return replace(item, plugin=plugin, version=self.versions.get(plugin, ""))

        return normalize

    def probes(self) -> dict[str, Probe]:
        """All probes by name."""
        if self._probes is None:
            self._probes = self._collect("dynprobe_probes", "probe", self._normalize_probe)
        return self._probes

    def models(self) -> dict[str, ModelSpec]:
        """All reference models by name."""
        if self._models is None:
            self._models = self._collect("dynprobe_models", "model", self._normalize_spec(ModelSpec))
        return self._models

    def datasets(self) -> dict[str, DatasetSpec]:
        """All data sets and tasks by name."""
        if self._datasets is None:
            self._datasets = self._collect("dynprobe_datasets", "dataset", self._normalize_spec(DatasetSpec))
        return self._datasets

    def _lookup(self, kind: str, table: dict[str, Any], name: str) -> Any:
        if (kind, name) in self._ambiguous:
            raise self._ambiguous[(kind, name)]
        if name in table:
            return table[name]
        err = UnknownNameError(kind, name, table)
        if not self.failures:
            raise err
        broken = "; ".join(f"{f.plugin} ({f.error})" for f in self.failures)
        err.args = (f"{err.args[0]}; plugins that failed to load: {broken}",)
        raise err from self.failures[0].exception

    def refused(self, kind: str, name: str) -> PluginError | None:
        """The error of a name two third-party plugins registered (``None`` if it is fine)."""
        getattr(self, f"{kind}s")()
        return self._ambiguous.get((kind, name))

    def probe(self, name: str) -> Probe:
        """The probe called ``name``; the error lists what is installed and what failed."""
        return self._lookup("probe", self.probes(), name)

    def model(self, name: str) -> ModelSpec:
        """The model spec called ``name``."""
        return self._lookup("model", self.models(), name)

    def dataset(self, name: str) -> DatasetSpec:
        """The data set spec called ``name``."""
        return self._lookup("dataset", self.datasets(), name)

    def adapt(self, module: Any, options: dict[str, Any]) -> Any:
        """Run the ``dynprobe_adapt`` hook; an :class:`UnsupportedModuleError` if none applies.

        The implementations are called one at a time in pluggy's order (tryfirst, then the
        latest registered, ..., trylast). An adapter's deliberate refusal (a
        :class:`~dynprobe.errors.DynprobeError`) is the answer; any other exception is that
        adapter's bug: recorded as a failure, warned about, and the next adapter is tried.
        """
        kwargs = {"module": module, "options": options}
        tried, crashed = [], []
        for impl in reversed(self.pm.hook.dynprobe_adapt.get_hookimpls()):
            if impl.hookwrapper or getattr(impl, "wrapper", False):
                continue
            tried.append(impl.plugin_name)
            try:
                system = impl.function(*[kwargs[name] for name in impl.argnames])
            except (KeyboardInterrupt, DynprobeError):
                raise
            except BaseException as err:  # noqa: BLE001 - one broken adapter must not break every model
                self._fail(impl.plugin_name, err, f"adapter of plugin {impl.plugin_name!r} crashed on "
                                                  f"{type(module).__name__} and was skipped")
                crashed.append(f"{impl.plugin_name} ({type(err).__name__}: {err})")
                continue
            if system is not None:
                return system
        broken = f"; adapters that crashed: {'; '.join(crashed)}" if crashed else ""
        raise UnsupportedModuleError(
            f"no adapter handles {type(module).__name__}; adapters tried: {', '.join(tried) or '(none)'}{broken}; "
            "give the module forward(x, h) -> (y, h) with hidden_size/input_size attributes, pass "
            "state_dim=/input_dim= to wrap(), or use System.from_step(fn, ...)"
        )


_current: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _current
    if _current is None:
        _current = Registry()
    return _current


@contextlib.contextmanager
def use_registry(reg: Registry | None) -> Iterator[Registry]:
    """Temporarily make ``reg`` the process-wide registry (``None``: reload from entry points)."""
    global _current
    saved = _current
    _current = reg if reg is not None else Registry()
    try:
        yield _current
    finally:
        _current = saved
