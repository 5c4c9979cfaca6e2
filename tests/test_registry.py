"""The plugin registry: entry points, failures, duplicates, environment switches, signatures."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import tomllib
import types
import zipfile
from pathlib import Path

import pytest
import xarray as xr

import dynprobe
from dynprobe.errors import PluginError, ProbeParameterError, UnknownNameError
from dynprobe.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def _plugin(name: str, *probes):
    mod = types.ModuleType(name)

    @dynprobe.hookimpl
    def dynprobe_probes():
        return list(probes)

    mod.dynprobe_probes = dynprobe_probes
    return mod


def tiny(system, *, scale: float = 1.0, seed: int = 0) -> xr.Dataset:
    """A tiny probe for registry tests."""
    return xr.Dataset({"x": ((), scale, {"long_name": "x", "units": "1"})})


def test_bundled_entry_points_equal_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["dynprobe"]
    installed = {ep.name: ep.value for ep in md.distribution("dynprobe").entry_points if ep.group == "dynprobe"}
    assert installed == declared


def test_wheel_carries_the_bundled_entry_points(tmp_path):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["dynprobe"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("dynprobe-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
        modules = {n.split("/")[0] for n in zf.namelist()}
    section = text.split("[dynprobe]")[1].split("[")[0]
    found = dict(line.split(" = ") for line in section.strip().splitlines())
    assert found == declared
    assert {v.split(".")[0] for v in declared.values()} <= modules


def test_installed_registry_loads_every_bundled_plugin_without_failure(fresh_registry):
    names = {n for n, _ in fresh_registry.plugins}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["dynprobe"]
    assert set(declared) <= names
    assert fresh_registry.failures == []
    assert "lyapunov" in fresh_registry.probes()
    assert fresh_registry.probe("lyapunov").version.startswith("dynprobe ")


def test_probe_provenance_names_the_plugin(inline_registry):
    inline_registry(_plugin("myplug", dynprobe.Probe("tiny", tiny)))
    ds = dynprobe.run("tiny", None, scale=2.0)
    assert ds.attrs["plugin"] == "myplug" and ds.attrs["probe"] == "tiny"
    assert '"scale": 2.0' in ds.attrs["params"] and '"seed": 0' in ds.attrs["params"]


def test_plain_function_registers_under_its_name(inline_registry):
    inline_registry(_plugin("p", tiny))
    assert dynprobe.list_probes()[0].name == "tiny"
    assert dynprobe.list_probes()[0].doc == "A tiny probe for registry tests."


def test_duplicate_probe_names_both_plugins(inline_registry):
    reg = inline_registry(_plugin("first", dynprobe.Probe("tiny", tiny)), _plugin("second", dynprobe.Probe("tiny", tiny)))
    with pytest.warns(RuntimeWarning, match="registered twice"), \
            pytest.raises(PluginError, match="registered twice, by plugins '(first|second)' and '(first|second)'"):
        reg.probe("tiny")


def test_kwargs_probe_is_refused_and_recorded(inline_registry):
    def sloppy(system, **kwargs):
        return xr.Dataset()

    reg = inline_registry(_plugin("bad", dynprobe.Probe("sloppy", sloppy)), _plugin("good", dynprobe.Probe("tiny", tiny)))
    with pytest.warns(RuntimeWarning, match="plugin 'bad' could not register its probes"):
        assert list(reg.probes()) == ["tiny"]
    assert "list every option as a keyword-only parameter" in reg.failures[0].error


def test_positional_option_is_refused():
    def positional(system, steps=3):
        return xr.Dataset()

    with pytest.raises(PluginError, match="'steps' must be keyword-only"):
        dynprobe.specs.probe_params(positional)


def test_unknown_parameter_suggests_the_right_one(inline_registry):
    inline_registry(_plugin("p", dynprobe.Probe("tiny", tiny)))
    with pytest.raises(ProbeParameterError, match="unknown parameter 'scal'; parameters: scale, seed; did you mean 'scale'"):
        dynprobe.run("tiny", None, scal=1.0)


def test_unknown_probe_lists_installed_and_suggests(inline_registry):
    inline_registry(_plugin("p", dynprobe.Probe("tiny", tiny)))
    with pytest.raises(UnknownNameError, match="unknown probe 'tinny'; installed: tiny; did you mean 'tiny'"):
        dynprobe.run("tinny", None)


def _fake_entry_points(monkeypatch, eps):
    monkeypatch.setattr(md, "entry_points", lambda group=None: [ep for ep in eps if ep.group == group])


def test_broken_entry_point_is_recorded_and_the_rest_work(monkeypatch):
    mod = _plugin("dynprobe_test_ok", dynprobe.Probe("tiny", tiny))
    monkeypatch.setitem(sys.modules, "dynprobe_test_ok", mod)
    eps = [md.EntryPoint("broken", "dynprobe_test_missing_module", "dynprobe"),
           md.EntryPoint("ok", "dynprobe_test_ok", "dynprobe")]
    _fake_entry_points(monkeypatch, eps)
    with pytest.warns(RuntimeWarning, match="plugin 'broken'.*failed to load"):
        reg = Registry()
    assert [f.plugin for f in reg.failures] == ["broken"]
    assert "tiny" in reg.probes()
    with pytest.raises(UnknownNameError, match="plugins that failed to load: broken") as info:
        reg.probe("other")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_environment_switches_select_plugins(monkeypatch):
    mods = {f"dynprobe_test_{n}": _plugin(n, dynprobe.Probe(f"probe_{n}", tiny)) for n in "abc"}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    _fake_entry_points(monkeypatch, [md.EntryPoint(n, f"dynprobe_test_{n}", "dynprobe") for n in "cab"])
    monkeypatch.setenv("DYNPROBE_LOAD_PLUGINS", "a,b")
    assert list(Registry().probes()) == ["probe_a", "probe_b"]
    monkeypatch.delenv("DYNPROBE_LOAD_PLUGINS")
    monkeypatch.setenv("DYNPROBE_DISABLE_PLUGINS", "b")
    assert list(Registry().probes()) == ["probe_a", "probe_c"]


def test_plugins_load_in_name_order(monkeypatch):
    order = []
    for n in "cab":
        mod = types.ModuleType(f"dynprobe_test_order_{n}")
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    _fake_entry_points(monkeypatch, [md.EntryPoint(n, f"dynprobe_test_order_{n}", "dynprobe") for n in "cab"])
    original = md.EntryPoint.load
    monkeypatch.setattr(md.EntryPoint, "load", lambda self: (order.append(self.name), original(self))[1])
    Registry()
    assert order == ["a", "b", "c"]


def test_analyze_keeps_other_results_when_one_probe_fails(inline_registry):
    def failing(system, *, seed: int = 0) -> xr.Dataset:
        raise dynprobe.errors.ProbeParameterError("deliberate failure")

    inline_registry(_plugin("p", dynprobe.Probe("tiny", tiny), dynprobe.Probe("failing", failing)))
    system = dynprobe.System.from_step(lambda h, u, p: h, state_dim=1)
    with pytest.warns(RuntimeWarning, match="deliberate failure"):
        tree = dynprobe.analyze(system, ["tiny", "failing"], seed=3)
    assert float(tree["tiny"].x) == 1.0
    assert tree["failing"].attrs["status"] == "error" and "deliberate failure" in tree["failing"].attrs["error"]
