"""Broken third-party plugins, injected: each becomes one reported failure, and everything else
(the bundled plugins, the other probes, the CLI) keeps working."""

from __future__ import annotations

import importlib.metadata as md
import sys
import time
import types

import pytest
import torch
import xarray as xr
from click.testing import CliRunner
from faultkit import norms, plugin

import dynprobe
from dynprobe.cli import cli
from dynprobe.errors import PluginError
from dynprobe.registry import Registry, use_registry


def _entry_points(monkeypatch, extra: dict[str, types.ModuleType]) -> None:
    """The installed entry points plus ``extra`` plugin modules (name → module)."""
    real = md.entry_points

    def fake(group=None):
        eps = list(real(group=group))
        if group == "dynprobe":
            eps += [md.EntryPoint(name, f"dynprobe_fault_{name}", "dynprobe") for name in extra]
        return eps

    for name, mod in extra.items():
        monkeypatch.setitem(sys.modules, f"dynprobe_fault_{name}", mod)
    monkeypatch.setattr(md, "entry_points", fake)


def test_a_plugin_raising_system_exit_at_import_is_a_recorded_failure(monkeypatch):
    def load(self):
        if self.name == "exits":
            raise SystemExit(7)
        return original(self)

    original = md.EntryPoint.load
    _entry_points(monkeypatch, {"exits": types.ModuleType("x")})
    monkeypatch.setattr(md.EntryPoint, "load", load)
    with pytest.warns(RuntimeWarning, match="plugin 'exits'.*failed to load: SystemExit: 7"):
        reg = Registry()
    assert [f.plugin for f in reg.failures] == ["exits"] and "lyapunov" in reg.probes()
    with use_registry(reg):
        for args in (["list", "probes"], ["plugins"]):
            res = CliRunner().invoke(cli, args, terminal_width=200)
            assert res.exit_code == 0 and "lyapunov" in res.output, res.output
        assert "SystemExit: 7" in CliRunner().invoke(cli, ["plugins"], terminal_width=200).output


def test_a_hanging_plugin_import_and_a_hanging_hook_do_not_hang_the_registry(monkeypatch):
    monkeypatch.setenv("DYNPROBE_HOOK_TIMEOUT", "0.5")

    slow = types.ModuleType("slow")

    @dynprobe.hookimpl
    def dynprobe_probes():
        time.sleep(3600)

    slow.dynprobe_probes = dynprobe_probes

    def load(self):
        if self.name == "stuck":
            time.sleep(3600)
        return original(self)

    original = md.EntryPoint.load
    _entry_points(monkeypatch, {"slow": slow, "stuck": types.ModuleType("stuck")})
    monkeypatch.setattr(md.EntryPoint, "load", load)
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="did not return within 0.5 s"):
        reg = Registry()
        with use_registry(reg):
            res = CliRunner().invoke(cli, ["list", "probes"], terminal_width=200)
    assert time.monotonic() - start < 30
    assert res.exit_code == 0 and "lyapunov" in res.output
    assert {f.plugin for f in reg.failures} == {"slow", "stuck"}
    assert all("DYNPROBE_HOOK_TIMEOUT" in f.error for f in reg.failures)


def test_a_crashing_adapter_does_not_break_loading_bundled_models(inline_registry):
    class Broken:
        @dynprobe.hookimpl(tryfirst=True)
        def dynprobe_adapt(self, module, options):
            raise RuntimeError("adapter bug")

    reg = inline_registry(Broken(), entry_points=True)
    with pytest.warns(RuntimeWarning, match="adapter of plugin 'Broken' crashed on LSTM and was skipped"):
        system = dynprobe.wrap(torch.nn.LSTM(1, 3), dtype=torch.float64)
    assert system.state_dim == 6
    assert any("adapter bug" in f.error for f in reg.failures)


def test_an_adapter_refusing_on_purpose_is_still_the_answer(inline_registry):
    class Refuses:
        @dynprobe.hookimpl(tryfirst=True)
        def dynprobe_adapt(self, module, options):
            raise dynprobe.errors.UnsupportedModuleError("no, on purpose")

    inline_registry(Refuses(), entry_points=True)
    with pytest.raises(dynprobe.errors.UnsupportedModuleError, match="no, on purpose"):
        dynprobe.wrap(torch.nn.LSTM(1, 3))


def _system() -> dynprobe.System:
    return dynprobe.System.from_step(lambda h, u, p: 0.5 * h, state_dim=2, params={"w": torch.ones(2)})


@pytest.mark.parametrize("hook", ["applies", "suggest"])
def test_a_raising_applies_or_suggest_is_one_failure_and_the_rest_runs(inline_registry, hook):
    def broken(system, **kw):
        raise SystemExit(3) if hook == "applies" else ZeroDivisionError("bad suggestion")

    inline_registry(plugin("p", dynprobe.Probe("norms", norms), dynprobe.Probe("bad", norms, **{hook: broken})))
    result = dynprobe.diagnose(_system(), timeout=None)
    assert list(result.tree.children) == ["norms"]
    expected = "SystemExit: 3" if hook == "applies" else "suggest() raised ZeroDivisionError: bad suggestion"
    assert expected in result.failed["bad"] and "\n" not in result.failed["bad"]
    if hook == "applies":
        with pytest.warns(RuntimeWarning, match="applies\\(\\) raised SystemExit: 3"):
            tree = dynprobe.analyze(_system(), ["norms", "bad"])
        assert tree["bad"].attrs["status"] == "error" and float(tree["norms"].norm.sum()) > 0


def test_a_bundled_probe_keeps_its_name_and_the_impostor_is_marked(monkeypatch):
    def impostor(system, *, k: int = 1) -> xr.Dataset:
        """Not the real lyapunov."""
        return xr.Dataset({"x": ((), 99.0, {"long_name": "x", "units": "1"})})

    _entry_points(monkeypatch, {"evil": plugin("evil", dynprobe.Probe("lyapunov", impostor))})
    with pytest.warns(RuntimeWarning, match="probe 'lyapunov' of plugin 'evil' is ignored"):
        reg = Registry()
        probes = reg.probes()
    assert probes["lyapunov"].plugin == "lyapunov"
    assert [f.plugin for f in reg.failures] == ["evil"]
    with use_registry(reg):
        res = CliRunner().invoke(cli, ["list", "probes"], terminal_width=250)
        assert res.exit_code == 0
        (line,) = [row for row in res.output.splitlines() if "evil" in row]
        assert "lyapunov" in line and "IGNORED" in line
        result = dynprobe.diagnose(_system(), probes=["lyapunov"], params={"lyapunov": {"steps": 50}}, timeout=None)
        assert "lyapunov" in result.tree.children and "exponents" in result.tree["lyapunov"].ds


def test_two_third_parties_claiming_one_name_fail_that_probe_only(inline_registry):
    reg = inline_registry(plugin("first", dynprobe.Probe("twice", norms)), plugin("second", dynprobe.Probe("twice", norms)),
                          plugin("third", dynprobe.Probe("norms", norms)))
    with pytest.warns(RuntimeWarning, match="registered twice"):
        result = dynprobe.diagnose(_system(), timeout=None)
    assert list(result.tree.children) == ["norms"]
    assert "registered twice, by plugins 'first' and 'second'" in result.failed["twice"]
    with pytest.raises(PluginError, match="registered twice"):
        reg.probe("twice")
    res = CliRunner().invoke(cli, ["list", "probes"], terminal_width=250)
    marked = [row for row in res.output.splitlines() if "REFUSED" in row]
    assert len(marked) == 2 and all("twice" in row for row in marked)
