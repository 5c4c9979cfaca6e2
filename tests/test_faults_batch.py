"""Faults of a batch run, injected: two writers, a writer killed while holding the store, a
hanging or exiting probe, a probe fixed in a new version, a script without a main guard.

Most runs use ``workers=0`` (this process) and cheap probes; the Dask path of a hanging probe
and the main-guard message start their own clusters.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from faultkit import exits, expected_norms, hang, norms, plugin, warm_up, write_lstms

import dynprobe
from dynprobe.batching.lock import StoreBusyError, StoreLock, lock_path
from dynprobe.errors import DynprobeError
from dynprobe.registry import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def probes(inline_registry):
    warm_up()
    return inline_registry(plugin("faultprobes", dynprobe.Probe("norms", norms), dynprobe.Probe("hang", hang),
                                  dynprobe.Probe("exits", exits)), entry_points=True)


def test_a_second_writer_refuses_in_one_line_naming_the_first(tmp_path, probes):
    paths = write_lstms(tmp_path / "ck", 1)
    out = tmp_path / "runs.zarr"
    with StoreLock(out):
        with pytest.raises(StoreBusyError) as info:
            dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0)
    message = str(info.value)
    assert f"pid {os.getpid()}" in message and "being written by another run" in message and "\n" not in message
    assert not lock_path(out).exists()  # released and removed
    assert dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0).ok == 1  # free again


def test_the_lock_of_a_run_killed_with_sigkill_is_taken_over(tmp_path, probes):
    out = tmp_path / "runs.zarr"
    # the holder does what StoreLock.acquire does (flock + owner JSON), without importing torch
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, json, os, time
        fd = os.open({str(lock_path(out))!r}, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({{"pid": os.getpid(), "host": "here", "command": "holder"}}).encode())
        print("locked", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusyError, match=f"pid {holder.pid} "):
            StoreLock(out).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        holder.kill()
    assert lock_path(out).exists()  # left behind by the killed run ...
    paths = write_lstms(tmp_path / "ck", 1)
    assert dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0).ok == 1  # ... and not in the way


@pytest.mark.slow
def test_two_concurrent_runs_never_mix_results(tmp_path, probes):
    """One run holds the store while another starts: the second refuses; every result read
    afterwards is complete and exact."""
    paths = write_lstms(tmp_path / "ck", 4)
    out = tmp_path / "runs.zarr"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import dynprobe
        from faultkit import norms, plugin, sleeper
        from dynprobe.registry import Registry, use_registry
        reg = Registry([plugin("p", dynprobe.Probe("norms", norms), dynprobe.Probe("sleeper", sleeper))])
        with use_registry(reg):
            dynprobe.batch({[str(p) for p in paths]!r}, ["norms", "sleeper"], {str(out)!r}, workers=0,
                           probe_params={{"sleeper": {{"seconds": 600}}}})
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not lock_path(out).exists() or not (out / "checkpoints").exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        with pytest.raises(StoreBusyError, match=f"pid {first.pid} "):
            dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    summary = dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0)
    assert summary.ok + summary.skipped == 4
    ds = dynprobe.open_batch(out)["norms"].ds
    for path in paths:
        np.testing.assert_array_equal(ds.norm.sel(checkpoint=str(path)).values, expected_norms(path))


def test_a_hanging_probe_times_out_and_the_other_probes_results_are_kept(tmp_path, probes):
    paths = write_lstms(tmp_path / "ck", 2)
    out = tmp_path / "runs.zarr"
    start = time.monotonic()
    summary = dynprobe.batch([str(p) for p in paths], ["hang", "norms"], out, workers=0, timeout=0.5)
    assert time.monotonic() - start < 30
    assert summary.failed == 2
    assert summary.failures == [f"{p}: probe 'hang' timed out after 0.5 s (--timeout)" for p in paths]
    ds = dynprobe.open_batch(out)["norms"].ds
    for path in paths:
        np.testing.assert_array_equal(ds.norm.sel(checkpoint=str(path)).values, expected_norms(path))


def test_a_probe_calling_sys_exit_is_one_recorded_failure(tmp_path, probes):
    paths = write_lstms(tmp_path / "ck", 1)
    summary = dynprobe.batch([str(p) for p in paths], ["exits", "norms"], tmp_path / "r.zarr", workers=0)
    assert summary.failures == [f"{paths[0]}: probe 'exits' failed: SystemExit: 7"]
    assert dynprobe.open_batch(tmp_path / "r.zarr")["norms"].ds.sizes["checkpoint"] == 1


def test_a_new_plugin_version_recomputes_and_no_recompute_keeps(tmp_path, probes, monkeypatch):
    paths = [str(p) for p in write_lstms(tmp_path / "ck", 2)]
    out = tmp_path / "runs.zarr"
    assert dynprobe.batch(paths, ["norms"], out, workers=0).ok == 2
    assert dynprobe.batch(paths, ["norms"], out, workers=0).skipped == 2

    fixed = replace(registry().probe("norms"), version="faultprobes 2.0")
    monkeypatch.setitem(registry().probes(), "norms", fixed)
    kept = dynprobe.batch(paths, ["norms"], out, workers=0, recompute=False)
    assert kept.skipped == 2  # asked to keep results of the old version
    redone = dynprobe.batch(paths, ["norms"], out, workers=0)
    assert (redone.ok, redone.skipped) == (2, 0)  # by default, a new probe version recomputes
    ds = dynprobe.open_batch(out)["norms"].ds
    assert set(ds.plugin_version.values.tolist() if "plugin_version" in ds.coords else [ds.attrs["plugin_version"]]) \
        == {"faultprobes 2.0"}
    assert dynprobe.batch(paths, ["norms"], out, workers=0).skipped == 2
    forced = dynprobe.batch(paths, ["norms"], out, workers=0, recompute=True)
    assert (forced.ok, forced.skipped) == (2, 0)


def test_a_new_dynprobe_version_recomputes(tmp_path, probes, monkeypatch):
    paths = [str(p) for p in write_lstms(tmp_path / "ck", 1)]
    out = tmp_path / "runs.zarr"
    dynprobe.batch(paths, ["norms"], out, workers=0)
    monkeypatch.setattr(dynprobe, "__version__", "99.0")
    assert dynprobe.batch(paths, ["norms"], out, workers=0).ok == 1


def test_the_command_accepts_workers_0_timeout_and_recompute(tmp_path, probes):
    from click.testing import CliRunner

    from dynprobe.cli import cli

    paths = write_lstms(tmp_path / "ck", 1)
    args = ["batch", str(paths[0]), "--probe", "norms", "-p", "norms.scale=2", "--out", str(tmp_path / "r.zarr"),
            "--workers", "0", "--timeout", "600"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and "1 ok, 0 failed, 0 skipped" in first.output, first.output
    again = CliRunner().invoke(cli, [*args, "--recompute"])
    assert again.exit_code == 0 and "1 ok, 0 failed, 0 skipped" in again.output, again.output
    kept = CliRunner().invoke(cli, [*args, "--no-recompute"])
    assert kept.exit_code == 0 and "0 ok, 0 failed, 1 skipped" in kept.output, kept.output


def test_a_store_in_a_missing_folder_is_refused_before_any_work(tmp_path, probes):
    paths = write_lstms(tmp_path / "ck", 1)
    with pytest.raises(DynprobeError, match="the folder .*nowhere.* does not exist"):
        dynprobe.batch([str(p) for p in paths], ["norms"], tmp_path / "nowhere" / "r.zarr", workers=0)


@pytest.mark.slow
def test_a_probe_hanging_in_a_dask_worker_is_recorded_and_the_batch_ends(tmp_path):
    paths = [str(p) for p in write_lstms(tmp_path / "ck", 2)]
    summary = dynprobe.batch(paths, ["lyapunov"], tmp_path / "r.zarr", workers=2, timeout=3,
                             probe_params={"lyapunov": {"steps": 10**9}})
    assert summary.failures == [f"{p}: probe 'lyapunov' timed out after 3.0 s (--timeout)" for p in paths]


@pytest.mark.slow
def test_a_script_without_a_main_guard_gets_one_line_saying_what_to_do(tmp_path):
    paths = write_lstms(tmp_path / "ck", 1)
    script = tmp_path / "noguard.py"
    script.write_text(textwrap.dedent(f"""
        import dynprobe
        dynprobe.batch({str(paths[0])!r}, ["lyapunov"], {str(tmp_path / "r.zarr")!r}, workers=1)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "__name__ == \"__main__\"" in last and "workers=0" in last, done.stderr[-3000:]
    assert "Nanny failed to start" in last and "Failed to start process" not in done.stderr  # no nanny traceback


def _dynprobe(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dynprobe.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def _wait_for(condition, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_fault_injection_run_of_batch(tmp_path):
    """Kill a Dask batch with SIGKILL mid-run, corrupt two complete results, then run twice at
    once: one run refuses, the other finishes, and every result is there, exact."""
    from faultkit import chunk_files, flip_bytes, result_folder

    from dynprobe.batching.store import BatchStore
    from dynprobe.checkpoints import load_checkpoint

    paths = write_lstms(tmp_path / "ck", 10, hidden=4)
    out = tmp_path / "runs.zarr"
    params = {"steps": 300, "burn_in": 20, "k": 4}
    args = ["batch", str(tmp_path / "ck" / "*.pt"), "--probe", "lyapunov", "--out", str(out), "--quiet",
            *[f"--param=lyapunov.{k}={v}" for k, v in params.items()]]
    first = _dynprobe(*args, "--workers", "2")
    try:
        _wait_for(lambda: len(BatchStore(out).records()) >= 3 or first.poll() is not None, "three results")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its worker processes, as a killed job
        first.wait(60)
    done = BatchStore(out).records()
    assert 3 <= len(done) < 10, "the kill came too late to test anything"
    (a, _), (b, _) = sorted(done)[:2]
    by_key = {result_folder(out, p, "lyapunov").parent.name: p for p in paths}
    flip_bytes(chunk_files(result_folder(out, by_key[a], "lyapunov"), "exponents")[0])
    shutil.rmtree(result_folder(out, by_key[b], "lyapunov") / "exponent_mean")

    winner = _dynprobe(*args, "--workers", "0")
    try:
        _wait_for(lambda: os.path.exists(f"{out}.lock") and f'"pid": {winner.pid}' in open(f"{out}.lock").read()
                  or winner.poll() is not None, "the rerun to hold the store")
        loser = subprocess.run([sys.executable, "-m", "dynprobe.cli", *args, "--workers", "0"], capture_output=True,
                               text=True, timeout=300)
        text, _ = winner.communicate(timeout=600)
    finally:
        winner.kill()
    if "being written by another run" not in loser.stderr:  # only if the winner was already done
        assert winner.returncode == 0 and loser.returncode == 0 and "0 ok" in loser.stdout, loser.stderr
    else:
        assert loser.returncode == 1 and f"pid {winner.pid} " in loser.stderr
    assert winner.returncode == 0, text
    assert "2 damaged result(s) recomputed" in text, text
    tree = dynprobe.open_batch(out)
    assert sorted(tree["index"].ds.status.values[:, 0].tolist()) == ["ok"] * 10
    ds = tree["lyapunov"].ds
    for path in paths:  # the same numbers as in this process (one thread: the autouse fixture)
        system = dynprobe.wrap(load_checkpoint(str(path)), dtype=torch.float64)
        ref = dynprobe.run("lyapunov", system, **params)
        np.testing.assert_array_equal(ds.exponents.sel(checkpoint=str(path)).values, ref.exponents.values)
        np.testing.assert_array_equal(ds.exponent_mean.sel(checkpoint=str(path)).values, ref.exponent_mean.values)


def test_a_failure_never_replaces_an_intact_result_of_the_same_file(tmp_path, probes, monkeypatch):
    paths = [str(p) for p in write_lstms(tmp_path / "ck", 1)]
    out = tmp_path / "runs.zarr"
    dynprobe.batch(paths, ["norms"], out, workers=0)

    def broken(system, *, scale: float = 1.0):
        raise RuntimeError("flaky this time")

    monkeypatch.setitem(registry().probes(), "norms", replace(registry().probe("norms"), run=broken))
    again = dynprobe.batch(paths, ["norms"], out, workers=0, recompute=True)
    assert again.failures == [f"{paths[0]}: probe 'norms' failed: RuntimeError: flaky this time"]
    ds = dynprobe.open_batch(out)["norms"].ds  # the earlier result is still there, intact
    np.testing.assert_array_equal(ds.norm.sel(checkpoint=paths[0]).values, expected_norms(Path(paths[0])))
