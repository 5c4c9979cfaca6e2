"""diagnose: runs what applies, skips with reasons, survives failures, writes a self-contained report."""

from __future__ import annotations

import base64
import re
import struct
import types
from html.parser import HTMLParser

import pytest
import torch
import xarray as xr
from click.testing import CliRunner

import dynprobe
from dynprobe.cli import cli
from dynprobe.plugins.meanfield import critical_init


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("src", "href"):
            if key in attrs and re.match(r"https?://", attrs[key] or ""):
                self.external.append(attrs[key])


def _png_size(src: str) -> tuple[int, int, int]:
    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height, len(data)


def test_report_is_self_contained_with_every_section(tmp_path):
    result = dynprobe.diagnose(dynprobe.load_system("lstm2d_chaotic"), probes=["lyapunov"],
                               params={"lyapunov": {"steps": 1500, "samples": 2}})
    path = dynprobe.write_report(result, tmp_path / "r.html")
    parser = _Collect()
    parser.feed(path.read_text())
    assert {"verdicts", "probe-lyapunov", "provenance"} <= set(parser.ids)
    assert parser.external == []
    assert parser.images
    for src in parser.images:
        width, height, size = _png_size(src)
        assert width > 300 and height > 200 and size > 10_000
    assert any(v.topic == "regime" and v.verdict == "chaotic" for v in result.verdicts)


def _plugin(*probes):
    mod = types.ModuleType("diag_test_plugin")

    @dynprobe.hookimpl
    def dynprobe_probes():
        return list(probes)

    mod.dynprobe_probes = dynprobe_probes
    return mod


def test_skips_with_reasons_and_keeps_going_after_a_failure(inline_registry):
    def needs(system, *, data: str) -> xr.Dataset:
        """Needs a data set."""
        return xr.Dataset()

    def boom(system, *, seed: int = 0) -> xr.Dataset:
        """Always fails."""
        raise RuntimeError("kaboom")

    def ok(system, *, seed: int = 0) -> xr.Dataset:
        """Works."""
        return xr.Dataset({"x": ((), float(seed), {"long_name": "x", "units": "1"})})

    inline_registry(_plugin(
        dynprobe.Probe("needs", needs),
        dynprobe.Probe("boom", boom),
        dynprobe.Probe("ok", ok, verdicts=lambda ds: [dynprobe.Verdict("regime", "fine", "x=0", "none")]),
        dynprobe.Probe("one_d", ok, applies=lambda s: "needs a 1-D map" if s.state_dim != 1 else None),
    ))
    system = dynprobe.System.from_step(lambda h, u, p: 0.5 * h, state_dim=2)
    with pytest.warns(RuntimeWarning, match="kaboom"):
        result = dynprobe.diagnose(system, seed=4)
    assert result.skipped == {"needs": "needs parameters data (pass them with --param needs.data=...)",
                              "one_d": "needs a 1-D map"}
    assert "kaboom" in result.failed["boom"]
    assert float(result.tree["ok"].x) == 4.0
    assert result.rows() == [("regime", "fine", "x=0", "ok · none")]


def test_cli_diagnose_prints_verdicts_and_writes_both_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["diagnose", "lstm2d_chaotic", "--probe", "lyapunov", "-p", "lyapunov.steps=1200",
                                   "--report", "r.html", "--out", "d.nc"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "chaotic" in res.output and (tmp_path / "r.html").exists()
    tree = dynprobe.open_result(tmp_path / "d.nc")
    assert tree["lyapunov"].attrs["steps"] == 1200


def test_cli_diagnose_param_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["diagnose", "lstm2d_chaotic", "-p", "lyapunov.stepz=3"], terminal_width=300)
    assert res.exit_code != 0 and "probe 'lyapunov' has no parameter 'stepz'" in res.output


def test_suggest_may_decline_and_user_parameters_override(inline_registry):
    from dynprobe.errors import NotApplicable

    def task_probe(system, *, data: str = "adding", seed: int = 0) -> xr.Dataset:
        """Needs a task."""
        return xr.Dataset({"x": ((), 1.0, {"long_name": "x", "units": "1"})}, attrs={"data": data})

    def decline(system):
        raise NotApplicable("needs the task the model was trained on")

    inline_registry(_plugin(dynprobe.Probe("task_probe", task_probe, suggest=decline)))
    system = dynprobe.System.from_step(lambda h, u, p: 0.5 * h, state_dim=2)
    assert dynprobe.diagnose(system).skipped == {"task_probe": "needs the task the model was trained on"}
    ran = dynprobe.diagnose(system, params={"task_probe": {"data": "mine"}})
    assert ran.tree["task_probe"].attrs["data"] == "mine" and not ran.skipped


def test_trainability_probes_are_skipped_without_a_fitting_task():
    result = dynprobe.diagnose(dynprobe.load_system("lstm2d_chaotic"), probes=["gradient_propagation", "hessian"])
    assert set(result.skipped) == {"gradient_propagation", "hessian"}
    assert "--param hessian.data=NAME" in result.skipped["hessian"] and not result.failed


def _regime(result: dynprobe.Diagnosis) -> str:
    (verdict,) = [v for v in result.verdicts if v.topic == "regime" and v.probe == "lyapunov"]
    return verdict.verdict


def test_full_diagnosis_of_the_chaotic_lstm(tmp_path):
    result = dynprobe.diagnose(dynprobe.load_system("lstm2d_chaotic"))
    assert _regime(result) == "chaotic" and not result.failed
    ran = set(result.tree.children)
    assert {"lyapunov", "jacobian", "bifurcation", "period3", "entropy", "scrambling"} <= ran
    assert "meanfield" in result.skipped  # no mean-field theory for LSTM cells in the papers: said, not guessed
    topics = {v.topic for v in result.verdicts}
    assert {"regime", "memory", "gradients", "attractors"} <= topics
    assert all(v.reference and v.evidence for v in result.verdicts)
    path = dynprobe.write_report(result, tmp_path / "r.html")
    parser = _Collect()
    parser.feed(path.read_text())
    assert {f"probe-{name}" for name in ran} | {"verdicts", "provenance", "skipped"} <= set(parser.ids)
    assert len(parser.images) >= len(ran) - 1 and parser.external == []  # the example plugin draws none
    for src in parser.images:
        width, height, size = _png_size(src)
        assert width > 300 and height > 200 and size > 10_000


def test_vanilla_rnn_at_sigma_w_half_is_ordered():
    system = dynprobe.wrap(dynprobe.model("vanilla", hidden_size=64, sigma_w=0.5), dtype=torch.float64)
    result = dynprobe.diagnose(system, probes=["lyapunov", "meanfield"])
    assert _regime(result) == "ordered"
    theory = [v for v in result.verdicts if v.probe == "meanfield" and v.topic == "regime"]
    assert theory and "ordered" in theory[0].verdict


def test_critically_initialized_rnn_is_near_the_edge():
    net = dynprobe.model("vanilla", hidden_size=128)
    critical_init(net, q_star=0.5, R=1.0)
    inputs = torch.randn(3000, 4, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    system = dynprobe.wrap(net, dtype=torch.float64, drive=dynprobe.sequence(inputs))
    result = dynprobe.diagnose(system, probes=["lyapunov", "meanfield"])
    assert _regime(result) == "near the edge of chaos"
    theory = [v for v in result.verdicts if v.probe == "meanfield" and v.topic == "regime"]
    assert theory and "critical" in theory[0].verdict


@pytest.mark.slow
def test_sine_lstm_example_quick_run(tmp_path):
    """CI-sized run of examples/diagnose_sine_lstm.py: trains, saves, diagnoses, reports."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "diagnose_sine_lstm.py"
    spec = importlib.util.spec_from_file_location("diagnose_sine_lstm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(tmp_path, epochs=20)
    assert (tmp_path / "sine_lstm.pt").exists() and (tmp_path / "sine_report.html").stat().st_size > 50_000
    assert {"regime", "memory", "gradients", "attractors"} <= {v.topic for v in result.verdicts}
    loaded = dynprobe.load_system(str(tmp_path / "sine_lstm.pt"))  # the saved file, found under 'lstm.'
    assert loaded.state_dim == 64 and loaded.input_dim == 1
