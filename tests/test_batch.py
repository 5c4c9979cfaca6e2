"""Batch analysis on Dask: mixed checkpoints, recorded failures, resume, identical numbers.

One LocalCluster of two worker processes is shared by the module (starting one takes seconds).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

import dynprobe
from dynprobe.batching.cluster import client_for, cpu_count
from dynprobe.batching.store import BatchStore
from dynprobe.checkpoints import PICKLE_REFUSAL, load_checkpoint
from dynprobe.cli import cli
from dynprobe.errors import DynprobeError, ProbeParameterError
from dynprobe.registry import Registry, registry, use_registry

distributed = pytest.importorskip("distributed")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PARAMS = {"lyapunov": {"k": 8, "steps": 30, "burn_in": 5}}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(1, 8)
        self.readout = nn.Linear(8, 1)


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, (f"touch {self.marker}",))


def write_checkpoints(folder: Path, n_good: int = 17) -> Path:
    """``n_good`` LSTM checkpoints in three formats (epoch in the name), then a truncated file,
    one with a NaN weight and a malicious pickle. Returns the payload's marker path."""
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in range(n_good):
        torch.manual_seed(epoch)
        net = Net()
        if epoch % 3 == 0:
            torch.save(net.rnn.state_dict(), folder / f"epoch_{epoch:02d}.pt")
        elif epoch % 3 == 1:
            torch.save({"model": net.state_dict(), "optimizer": torch.optim.SGD(net.parameters(), 0.1).state_dict()},
                       folder / f"epoch_{epoch:02d}.pt")
        else:
            save_file(net.state_dict(), folder / f"epoch_{epoch:02d}.safetensors")
    marker = folder.parent / "payload-ran"
    if n_good < 17:
        return marker
    whole = (folder / "epoch_00.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    sd = Net().state_dict()
    sd["rnn.weight_hh_l0"][0, 0] = float("nan")
    torch.save({"model": sd}, folder / "nan_weights.pt")
    torch.save({"model": Payload(marker)}, folder / "malicious.pt")
    return marker


def direct(path: str) -> xr.Dataset:
    """The same measurement in this process, without Dask or the store."""
    torch.set_num_threads(1)
    return dynprobe.run("lyapunov", dynprobe.wrap(load_checkpoint(path), dtype=torch.float64), **PARAMS["lyapunov"])


def assert_same_numbers(stacked: xr.Dataset, path: str) -> None:
    one, ref = stacked.sel(checkpoint=path), direct(path)
    for name, var in ref.data_vars.items():
        np.testing.assert_array_equal(one[name].values, var.values, err_msg=f"{path}: {name}")


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, client: distributed.Client) -> dict:
    root = tmp_path_factory.mktemp("mixed")
    marker = write_checkpoints(root / "ckpt")
    out = root / "runs.zarr"
    summary = dynprobe.batch([str(root / "ckpt" / "*.pt"), str(root / "ckpt" / "*.safetensors")], ["lyapunov"], out,
                             probe_params=PARAMS, scheduler=client)
    return {"root": root, "marker": marker, "out": out, "summary": summary}


def test_twenty_mixed_checkpoints_give_17_results_and_3_recorded_failures(mixed: dict) -> None:
    summary, root = mixed["summary"], mixed["root"]
    assert (summary.ok, summary.failed, summary.skipped) == (17, 3, 0)
    assert not mixed["marker"].exists(), "the malicious pickle's payload ran"
    index = summary.index.isel(probe=0)
    errors = {Path(p).name: e for p, e in zip(index.checkpoint.values, index.error.values, strict=True) if e}
    assert set(errors) == {"truncated.pt", "nan_weights.pt", "malicious.pt"}
    refusal = PICKLE_REFUSAL.format(path=root / "ckpt" / "malicious.pt", what="it needs posix.system")
    assert errors["malicious.pt"] == refusal
    assert "truncated" in errors["truncated.pt"] and "1 NaN" in errors["nan_weights.pt"]
    assert all("\n" not in e and name in e for name, e in errors.items())

    tree = dynprobe.open_batch(mixed["out"])
    ds = tree["lyapunov"].ds
    assert ds.sizes["checkpoint"] == 17
    assert ds.epoch.values.tolist() == list(range(17))
    assert ds.exponent_mean.dims == ("checkpoint", "exponent") and ds.sizes["exponent"] == 8
    assert not dynprobe.validate(ds), dynprobe.validate(ds)
    stored = tree["index"].ds
    assert sorted(stored.status.values[:, 0].tolist()) == ["error"] * 3 + ["ok"] * 17


def test_batch_numbers_are_identical_to_in_process_runs(mixed: dict) -> None:
    ds = dynprobe.open_batch(mixed["out"])["lyapunov"].ds
    for path in ds.checkpoint.values[[0, 1, 2, 16]]:  # one of each format, and the last
        assert_same_numbers(ds, path)


def test_the_same_job_by_scheduler_address_gives_identical_numbers(mixed: dict, client: distributed.Client,
                                                                   tmp_path: Path) -> None:
    paths = sorted(str(p) for p in (mixed["root"] / "ckpt").glob("epoch_0[0-3].*"))
    summary = dynprobe.batch(paths, "lyapunov", tmp_path / "b.zarr", probe_params=PARAMS,
                             scheduler=client.scheduler.address)
    assert (summary.ok, summary.failed) == (4, 0)
    ds = dynprobe.open_batch(tmp_path / "b.zarr")["lyapunov"].ds
    for path in paths:
        assert_same_numbers(ds, path)


def test_a_second_run_computes_nothing_and_a_changed_file_is_recomputed(mixed: dict,
                                                                        client: distributed.Client) -> None:
    out, ckpt = mixed["out"], mixed["root"] / "ckpt"
    stamps = dynprobe.open_batch(out)["lyapunov"].ds.created_utc.values.copy()
    again = dynprobe.batch([str(ckpt / "*")], ["lyapunov"], out, probe_params=PARAMS, scheduler=client)
    assert (again.ok, again.failed, again.skipped) == (0, 3, 17)  # failures are retried, and fail again

    changed = ckpt / "epoch_05.safetensors"
    torch.manual_seed(99)
    save_file(Net().state_dict(), changed)
    third = dynprobe.batch([str(ckpt / "*")], ["lyapunov"], out, probe_params=PARAMS, scheduler=client)
    assert (third.ok, third.failed, third.skipped) == (1, 3, 16)
    ds = dynprobe.open_batch(out)["lyapunov"].ds
    assert ds.sizes["checkpoint"] == 17
    assert_same_numbers(ds, str(changed))
    recomputed = ds.checkpoint.values == str(changed)
    np.testing.assert_array_equal(ds.created_utc.values[~recomputed], stamps[~recomputed])  # untouched
    assert not mixed["marker"].exists()


def test_a_half_written_group_reads_as_absent_and_is_recomputed(tmp_path: Path, client: distributed.Client) -> None:
    write_checkpoints(tmp_path / "ckpt", n_good=2)
    out = tmp_path / "runs.zarr"
    dynprobe.batch(str(tmp_path / "ckpt" / "*.pt"), "lyapunov", out, probe_params=PARAMS, scheduler=client)
    # a run killed after writing the arrays but before the record that marks them complete
    (key, probe), _ = next(iter(BatchStore(out).records().items()))
    group = zarr.open_group(str(out), path=f"checkpoints/{key}/{probe}", mode="r+")
    group.attrs.put({k: v for k, v in group.attrs.asdict().items() if k != "batch_complete"})
    tree = dynprobe.open_batch(out)
    assert tree["lyapunov"].ds.sizes["checkpoint"] == 1
    summary = dynprobe.batch(str(tmp_path / "ckpt" / "*.pt"), "lyapunov", out, probe_params=PARAMS, scheduler=client)
    assert (summary.ok, summary.skipped) == (1, 1)
    assert dynprobe.open_batch(out)["lyapunov"].ds.sizes["checkpoint"] == 2


def test_changed_parameters_recompute(tmp_path: Path, client: distributed.Client) -> None:
    write_checkpoints(tmp_path / "ckpt", n_good=1)
    out, paths = tmp_path / "runs.zarr", str(tmp_path / "ckpt" / "*.pt")
    dynprobe.batch(paths, "lyapunov", out, probe_params=PARAMS, scheduler=client)
    other = {"lyapunov": {**PARAMS["lyapunov"], "k": 4}}
    summary = dynprobe.batch(paths, "lyapunov", out, probe_params=other, scheduler=client)
    assert (summary.ok, summary.skipped) == (1, 0)
    assert dynprobe.open_batch(out)["lyapunov"].ds.sizes["exponent"] == 4


def test_workers_must_have_the_probe(tmp_path: Path, client: distributed.Client) -> None:
    """Plugins are read per process: a probe known only here is reported, not half-run."""

    def only_here(system: dynprobe.System, *, x: int = 1) -> xr.Dataset:
        """A probe registered in this process only."""
        return xr.Dataset()

    class Inline:
        @dynprobe.hookimpl
        def dynprobe_probes(self) -> list:
            return [dynprobe.Probe(name="only_here", run=only_here)]

    write_checkpoints(tmp_path / "ckpt", n_good=1)
    with use_registry(Registry(plugins=[Inline()], entry_points=False)):
        expected = r"worker tcp://.* has no probe 'only_here' \(installed there: .*lyapunov"
        with pytest.raises(DynprobeError, match=expected):
            dynprobe.batch(str(tmp_path / "ckpt" / "*.pt"), "only_here", tmp_path / "o.zarr", scheduler=client)


def test_bad_requests_fail_before_any_work(tmp_path: Path) -> None:
    write_checkpoints(tmp_path / "ckpt", n_good=1)
    good = str(tmp_path / "ckpt" / "*.pt")
    with pytest.raises(LookupError, match="did you mean 'lyapunov'"):
        dynprobe.batch(good, "lyapunof", tmp_path / "o.zarr")
    with pytest.raises(ProbeParameterError, match="unknown parameter 'kk'"):
        dynprobe.batch(good, "lyapunov", tmp_path / "o.zarr", probe_params={"lyapunov": {"kk": 3}})
    with pytest.raises(DynprobeError, match="matches no file"):
        dynprobe.batch(str(tmp_path / "nothing" / "*.pt"), "lyapunov", tmp_path / "o.zarr")
    with pytest.raises(DynprobeError, match="workers= sizes the local cluster only"):
        dynprobe.batch(good, "lyapunov", tmp_path / "o.zarr", workers=2, scheduler="tcp://127.0.0.1:1")
    assert "lyapunov" in registry().probes()


def test_the_command(tmp_path: Path, client: distributed.Client) -> None:
    write_checkpoints(tmp_path / "ckpt", n_good=2)
    shutil.copy(tmp_path / "ckpt" / "epoch_00.pt", tmp_path / "ckpt" / "copy.pt")
    args = ["batch", str(tmp_path / "ckpt" / "*.pt"), "--probe", "lyapunov", "--param", "lyapunov.k=8",
            "--param", "steps=30", "--param", "burn_in=5", "--out", str(tmp_path / "cli.zarr"),
            "--scheduler", client.scheduler.address]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dynprobe batch: 3 ok, 0 failed, 0 skipped in ")
    ds = dynprobe.open_batch(tmp_path / "cli.zarr")["lyapunov"].ds
    same = [str(tmp_path / "ckpt" / name) for name in ("copy.pt", "epoch_00.pt")]
    np.testing.assert_array_equal(ds.exponents.sel(checkpoint=same[0]).values,
                                  ds.exponents.sel(checkpoint=same[1]).values)
    bad = CliRunner().invoke(cli, ["batch", str(tmp_path / "ckpt" / "*.pt"), "--probe", "lyapunov", "--param", "q=1",
                                   "--out", str(tmp_path / "x.zarr")])
    assert bad.exit_code == 1 and "probe 'lyapunov' has no parameter 'q'" in bad.output


def test_the_default_local_cluster_is_one_single_threaded_process_per_core() -> None:
    with client_for(None, None) as c:
        threads = c.nthreads()
        pids = set(c.run(os.getpid).values())
    assert len(pids) == len(threads) and os.getpid() not in pids
    assert list(threads.values()) == [1] * cpu_count()


def test_the_training_bifurcation_example_runs_ci_sized(tmp_path: Path, client: distributed.Client) -> None:
    spec = importlib.util.spec_from_file_location("training_bifurcation", EXAMPLES / "training_bifurcation.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(["--epochs", "2", "--steps", "20", "--burn-in", "50", "--scheduler", client.scheduler.address,
                        "--out", str(tmp_path)])
    assert (out["summary"].ok, out["summary"].failed) == (3, 0)
    orbit = out["tree"]["bifurcation"].ds
    assert orbit.epoch.values.tolist() == [0, 1, 2] and orbit.orbit.dims == ("checkpoint", "param", "sample", "time")
    assert np.isfinite(out["tree"]["lyapunov"].ds.exponent_mean.values).all()
    assert (tmp_path / "training_bifurcation.png").stat().st_size > 10_000


def test_a_results_own_step_dimension_is_not_overwritten_by_the_checkpoints_step():
    """jacobian's and entropy's ``step`` dim keeps its coordinate; the training step of each
    checkpoint goes to ``checkpoint_step`` (xarray's assign_coords would replace it silently)."""
    import xarray as xr

    from dynprobe.batching.reading import _stack
    from dynprobe.batching.records import Record

    one = xr.Dataset({"rate": ("step", np.array([0.1, 0.2, 0.3]))}, coords={"step": ("step", np.array([1, 2, 3]))})
    records = [Record(path=f"ck{i}.pt", size=1, sha256="x", status="ok", epoch=i, step=100 * i) for i in (1, 2)]
    out = _stack([one, one], records)
    assert out.step.values.tolist() == [1, 2, 3] and out.checkpoint_step.values.tolist() == [100, 200]
    assert out.epoch.values.tolist() == [1, 2]


def test_checkpoints_with_different_text_lengths_pad_text_with_empty_strings():
    import xarray as xr

    from dynprobe.batching.reading import _stack
    from dynprobe.batching.records import Record

    a = xr.Dataset({"kind": ("point", np.array(["stable"], dtype=object))}, coords={"point": [0]})
    b = xr.Dataset({"kind": ("point", np.array(["stable", "saddle"], dtype=object))}, coords={"point": [0, 1]})
    records = [Record(path=f"ck{i}.pt", size=1, sha256="x", status="ok") for i in (1, 2)]
    with pytest.warns(RuntimeWarning, match="differ in size"):
        out = _stack([a, b], records)
    assert out.kind.values.tolist() == [["stable", ""], ["stable", "saddle"]]
