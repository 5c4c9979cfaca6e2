"""Faults of a diagnosis, injected: a hanging probe, a probe calling sys.exit, a result netCDF
cannot hold, an output folder that does not exist, a run where nothing works, Ctrl-C. The
promise: what finished is written (atomically), the failure is one line, the exit status says
what happened. Also the parts a user watches: progress lines, the estimate, --quick, the time
shares."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner
from faultkit import exits, hang, norms, plugin, sleeper, unholdable, warm_up

import dynprobe
from dynprobe.cli import cli
from dynprobe.errors import DynprobeError
from dynprobe.planning import QUICK_BUDGETS, QUICK_FACTOR


def _system() -> dynprobe.System:
    return dynprobe.System.from_step(lambda h, u, p: 0.5 * h, state_dim=2, params={"w": torch.arange(2.0)},
                                     name="half")


def _norms_b(system: dynprobe.System, *, scale: float = 2.0) -> xr.Dataset:
    """A second cheap probe."""
    return norms(system, scale=scale)


CALLS: list[str] = []


def _counted(system: dynprobe.System, *, scale: float = 1.0) -> xr.Dataset:
    """Counts its runs."""
    CALLS.append("counted")
    return norms(system, scale=scale)


@pytest.fixture
def faulty(inline_registry):
    """The bundled plugins (models, for the command line) plus probes that fail in every way."""
    CALLS.clear()
    warm_up()
    inline_registry(plugin("faulty", dynprobe.Probe("norms", norms), dynprobe.Probe("norms_b", _norms_b),
                           dynprobe.Probe("hang", hang), dynprobe.Probe("sleeper", sleeper),
                           dynprobe.Probe("exits", exits), dynprobe.Probe("unholdable", unholdable),
                           dynprobe.Probe("counted", _counted)), entry_points=True)


def _children(path) -> list[str]:
    return sorted(dynprobe.open_result(path).children)


def test_a_hanging_probe_times_out_and_everything_else_is_written(faulty, tmp_path):
    out = tmp_path / "d.nc"
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="probe '(hang|sleeper)' timed out after 0.5 s"):
        result = dynprobe.diagnose(_system(), probes=["norms", "hang", "sleeper", "norms_b"], timeout=0.5, out=out)
    assert time.monotonic() - start < 20
    assert result.failed["hang"] == "timed out after 0.5 s (--timeout)"  # a Python loop: stopped
    assert result.failed["sleeper"].endswith("; it is still running in the background")  # a native wait: abandoned
    assert _children(out) == ["norms", "norms_b"]
    attrs = dynprobe.open_result(out).attrs
    assert "timed out" in attrs["failed"] and attrs["interrupted"] == 0
    assert set(result.elapsed) == {"norms", "hang", "sleeper", "norms_b"} and result.elapsed["hang"] >= 0.5


def test_a_probe_calling_sys_exit_is_one_failure(faulty, tmp_path):
    with pytest.warns(RuntimeWarning, match="SystemExit: 7"):
        result = dynprobe.diagnose(_system(), probes=["exits", "norms"], out=tmp_path / "d.nc")
    assert result.failed == {"exits": "SystemExit: 7"} and _children(tmp_path / "d.nc") == ["norms"]


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_result_the_file_cannot_hold_is_named_and_the_rest_is_written(faulty, tmp_path, suffix):
    out = tmp_path / f"d{suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = dynprobe.diagnose(_system(), probes=["norms", "unholdable", "norms_b"], out=out)
    if suffix == ".nc":  # netCDF has no nested-dict attribute; Zarr (JSON) holds it
        assert list(result.unsaved) == ["unholdable"] and _children(out) == ["norms", "norms_b"]
        assert any("'unholdable' cannot be saved" in str(w.message) for w in caught)
        assert "unholdable" in dynprobe.open_result(out).attrs["unsaved"]
    else:
        assert not result.unsaved and _children(out) == ["norms", "norms_b", "unholdable"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no scratch file left, nothing half-written


def test_save_of_a_tree_with_one_unholdable_child_writes_the_rest(faulty, tmp_path):
    tree = dynprobe.analyze(_system(), ["norms", "unholdable"])
    with pytest.warns(RuntimeWarning, match="'unholdable' left out of"):
        dynprobe.save(tree, tmp_path / "t.nc")
    back = dynprobe.open_result(tmp_path / "t.nc")
    assert sorted(back.children) == ["norms"]
    np.testing.assert_array_equal(back["norms"].norm.values, tree["norms"].norm.values)
    with pytest.raises(DynprobeError, match="cannot write .*t2.nc"):
        dynprobe.save(tree["unholdable"].to_dataset(), tmp_path / "t2.nc")
    assert not (tmp_path / "t2.nc").exists()


def test_an_output_in_a_missing_folder_is_refused_before_any_probe_runs(faulty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["--out", str(tmp_path / "no" / "d.nc")], ["--report", str(tmp_path / "no" / "r.html")]):
        res = CliRunner().invoke(cli, ["diagnose", "lstm2d_chaotic", "--probe", "counted", *args], terminal_width=300)
        assert res.exit_code == 1 and "does not exist; create it first" in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(DynprobeError, match="does not exist"):
        dynprobe.diagnose(_system(), probes=["counted"], out=tmp_path / "no" / "d.nc")
    assert CALLS == [] and list(tmp_path.iterdir()) == []


def test_when_nothing_runs_the_command_exits_1_and_the_tree_records_why(faulty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["diagnose", "lstm2d_chaotic", "--probe", "exits", "--out", "d.nc", "--report", "r.html",
                                   "--quiet"], terminal_width=300)
    assert res.exit_code == 1, res.output
    assert "no probe produced a result" in res.output
    tree = dynprobe.open_result(tmp_path / "d.nc")
    assert not tree.children and "SystemExit: 7" in tree.attrs["failed"]
    assert (tmp_path / "r.html").exists()


def _interrupt_soon(after_s: float = 0.3) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to this process, from another thread."""
    threading.Timer(after_s, os.kill, (os.getpid(), signal.SIGINT)).start()


def test_ctrl_c_keeps_what_finished_and_the_report_of_it(faulty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def interrupted(system, *, seconds: float = 60.0) -> xr.Dataset:
        """Runs until Ctrl-C."""
        _interrupt_soon()
        return hang(system, seconds=seconds)

    from dynprobe.registry import registry

    monkeypatch.setitem(registry().probes(), "hang", dynprobe.Probe("hang", interrupted, plugin="faulty"))
    res = CliRunner().invoke(cli, ["diagnose", "lstm2d_chaotic", "--probe", "norms", "--probe", "hang", "--probe",
                                   "norms_b", "--out", "d.nc", "--report", "r.html"], terminal_width=300)
    assert res.exit_code == 130, res.output
    assert "interrupted; wrote what finished" in res.output
    tree = dynprobe.open_result(tmp_path / "d.nc")
    assert sorted(tree.children) == ["norms"] and tree.attrs["interrupted"] == 1
    assert '"hang"' in tree.attrs["pending"] and '"norms_b"' in tree.attrs["pending"]
    report = (tmp_path / "r.html").read_text()
    assert "Interrupted (Ctrl-C) after 1 probe(s)" in report and "Not run: hang, norms_b" in report


def test_ctrl_c_in_python_raises_with_the_partial_diagnosis(faulty, tmp_path):
    def interrupted(system, *, seconds: float = 60.0) -> xr.Dataset:
        """Runs until Ctrl-C."""
        _interrupt_soon()
        return hang(system, seconds=seconds)

    from dynprobe.registry import registry

    registry().probes()["hang"] = dynprobe.Probe("hang", interrupted, plugin="faulty")
    from dynprobe.diagnose import DiagnosisInterrupted

    with pytest.raises(DiagnosisInterrupted) as info:
        dynprobe.diagnose(_system(), probes=["norms", "hang"], out=tmp_path / "d.nc")
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.diagnosis.ran == ["norms"] and info.value.diagnosis.pending == ["hang"]
    assert _children(tmp_path / "d.nc") == ["norms"]


def test_quick_scales_the_work_budgets_and_keeps_what_the_user_set(inline_registry):
    def budgets(system, *, steps: int = 1000, samples: int = 8, burn_in: int = 100, k: int = 4,
                seed: int = 0) -> xr.Dataset:
        """Records its budgets."""
        return xr.Dataset(attrs={"steps": steps, "samples": samples, "burn_in": burn_in, "k": k})

    def own(system, *, steps: int = 1000) -> xr.Dataset:
        """Has its own quick values."""
        return xr.Dataset(attrs={"steps": steps})

    def own_suggest(system, quick: bool = False):
        return {"steps": 7 if quick else 500}

    inline_registry(plugin("q", dynprobe.Probe("budgets", budgets, suggest=lambda s: {"steps": 2000}),
                           dynprobe.Probe("own", own, suggest=own_suggest)))
    result = dynprobe.diagnose(_system(), quick=True, params={"budgets": {"burn_in": 100}}, timeout=None)
    got = result.tree["budgets"].attrs
    assert got["steps"] == max(QUICK_BUDGETS["steps"], round(2000 * QUICK_FACTOR)) == 500
    assert got["samples"] == max(QUICK_BUDGETS["samples"], round(8 * QUICK_FACTOR)) == 2
    assert got["burn_in"] == 100 and got["k"] == 4  # set by the user / not a budget
    assert result.tree["own"].attrs["steps"] == 7
    assert dynprobe.diagnose(_system(), timeout=None).tree["budgets"].attrs["steps"] == 2000


def test_progress_lines_name_every_probe_and_its_outcome(faulty, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DYNPROBE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(RuntimeWarning):
        dynprobe.diagnose(_system(), probes=["norms", "exits", "hang"], timeout=0.5, progress=True)
    err = capsys.readouterr().err
    assert "3 probe(s) to run; no time estimate yet" in err
    for name, outcome in (("norms", "done"), ("exits", "failed"), ("hang", "timed out")):
        assert any(name in line and outcome in line for line in err.splitlines()), err
    # stderr is not a terminal here (a log, a batch job): one plain line per event, as it happens
    lines = err.splitlines()
    assert all(line.startswith("dynprobe: ") for line in lines), err
    done = next(i for i, line in enumerate(lines) if line.startswith("dynprobe: norms done in "))
    assert lines.index("dynprobe: norms started") < done
    assert "dynprobe: exits failed: SystemExit: 7" in lines
    dynprobe.diagnose(_system(), probes=["norms"], progress=True)
    assert "1 probe(s) to run, estimated" in capsys.readouterr().err  # the first run's time, remembered
    dynprobe.diagnose(_system(), probes=["norms"], progress=False)
    assert capsys.readouterr().err == ""


def test_the_report_shows_each_probes_share_of_the_time(faulty, tmp_path):
    with pytest.warns(RuntimeWarning):
        result = dynprobe.diagnose(_system(), probes=["norms", "hang"], timeout=0.5)
    shares = result.time_shares()
    assert [name for name, _, _ in shares] == ["norms", "hang"]
    assert abs(sum(share for _, _, share in shares) - 1.0) < 1e-12 and shares[1][2] > 0.5
    from dynprobe.report import render_report

    html = render_report(result)
    assert 'id="time"' in html and "Time per probe" in html
    assert f"{100 * shares[1][2]:.0f} %" in html


def test_a_probes_own_estimate_is_shown_before_the_run(inline_registry, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DYNPROBE_CACHE_DIR", "")  # no history: only the probe's own estimate

    def estimate(system, params):
        return 42.0 * params["scale"]

    inline_registry(plugin("e", dynprobe.Probe("norms", norms, estimate=estimate), dynprobe.Probe("norms_b", _norms_b)))
    dynprobe.diagnose(_system(), params={"norms": {"scale": 2.0}}, progress=True, timeout=None)
    err = capsys.readouterr().err
    assert "2 probe(s) to run, estimated 1 min 24 s plus norms_b (no estimate yet)" in err
    assert "estimated 1 min 24 s" in err.split("norms_b")[0]
