"""The plugin registry: the only module that touches ``pm.hook``.

Entry points of the ``dynprobe`` group are loaded sorted by name, each in its own ``try``: a
plugin that fails to import becomes a warning and a recorded failure (``dynprobe plugins``
shows it) while the others keep working. Bundled plugins are registered through the same
entry-point group as a third party's. Hook implementations are called one at a time so that
every probe, model and data set knows which plugin and distribution version it came from.

Environment switches: ``DYNPROBE_LOAD_PLUGINS=a,b`` loads only those entry points;
``DYNPROBE_DISABLE_PLUGINS=c`` blocks those.
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
from .errors import PluginError, UnknownNameError, UnsupportedModuleError
from .specs import DatasetSpec, ModelSpec, Probe, probe_params

__all__ = ["Registry", "PluginFailure", "registry", "use_registry", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "dynprobe"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or whose registration broke the rules."""

    plugin: str
    error: str
    exception: BaseException


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
                obj = ep.load()
                self.pm.register(obj, name=ep.name)
            except Exception as err:  # noqa: BLE001 - one broken plugin must not break the rest
                self._fail(ep.name, err, f"plugin {ep.name!r} ({ep.value}) failed to load")
                continue
            dist = getattr(ep, "dist", None)
            self.versions[ep.name] = f"{dist.name} {dist.version}" if dist is not None else ""

    def _fail(self, plugin: str, err: BaseException, what: str) -> None:
        text = f"{type(err).__name__}: {err}"
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
                items = list(impl.function() or [])
                normalized = [normalize(item, plugin) for item in items]
            except Exception as err:  # noqa: BLE001 - record and keep the other plugins
                self._fail(plugin, err, f"plugin {plugin!r} could not register its {kind}s")
                continue
            for item in normalized:
                if item.name in found:
                    other = found[item.name].plugin
                    error = PluginError(
                        f"{kind} {item.name!r} is registered twice, by plugins {other!r} and {plugin!r}; "
                        f"disable one with DYNPROBE_DISABLE_PLUGINS={plugin}"
                    )
                    self._ambiguous[(kind, item.name)] = error
                    self.failures.append(PluginFailure(plugin, str(error), error))
                    continue
                found[item.name] = item
        return dict(sorted(found.items()))

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
        """Run the ``dynprobe_adapt`` hook; an :class:`UnsupportedModuleError` if none applies."""
        system = self.pm.hook.dynprobe_adapt(module=module, options=options)
        if system is None:
            adapters = [impl.plugin_name for impl in self.pm.hook.dynprobe_adapt.get_hookimpls()]
            raise UnsupportedModuleError(
                f"no adapter handles {type(module).__name__}; adapters tried: {', '.join(adapters) or '(none)'}; "
                "give the module forward(x, h) -> (y, h) with hidden_size/input_size attributes, pass "
                "state_dim=/input_dim= to wrap(), or use System.from_step(fn, ...)"
            )
        return system


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
