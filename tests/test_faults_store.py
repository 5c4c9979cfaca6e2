"""Faults of the batch store, injected: absurd metadata, deleted / altered chunks, truncated
metadata at every level, an interrupted write. The promise each time: the batch finishes, every
intact result is read, a damaged one is named in one line, reads as absent and is recomputed to
the same numbers.

The runs use ``workers=0`` (in this process) and a cheap exact probe, so each takes well under
a second; the Dask path is covered by tests/test_batch.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from faultkit import chunk_files, expected_norms, flip_bytes, norms, plugin, result_folder, truncate, write_lstms
from safetensors.torch import save_file
from torch import nn

import dynprobe
from dynprobe.batching.records import Record, index_dataset
from dynprobe.batching.store import BatchStore


@pytest.fixture
def probes(inline_registry):
    """The bundled plugins plus ``norms`` (a cheap probe whose numbers are known exactly)."""
    return inline_registry(plugin("faultprobes", dynprobe.Probe("norms", norms)), entry_points=True)


def run(paths, out: Path, **kw) -> dynprobe.BatchSummary:
    return dynprobe.batch([str(p) for p in paths], ["norms"], out, workers=0, **kw)


def messages(caught) -> list[str]:
    return [str(w.message) for w in caught]


def assert_results_exact(out: Path, paths) -> xr.Dataset:
    ds = dynprobe.open_batch(out)["norms"].ds
    assert sorted(ds.checkpoint.values.tolist()) == sorted(str(p) for p in paths)
    for path in paths:
        np.testing.assert_array_equal(ds.norm.sel(checkpoint=str(path)).values, expected_norms(path))
    return ds


@pytest.mark.parametrize("value", [2**63, 2**64 + 5, "99999999999999999999", -3, 1.5, float("inf"), True, "x" * 10])
def test_a_record_takes_any_epoch_value_and_the_index_holds_it(value):
    record = Record(path="/a.pt", size=1, sha256="s", status="ok", epoch=value, step=value)
    assert record.epoch == -1 and record.step == -1
    assert "epoch" in record.warnings and "not a count" in record.warnings
    back = Record.from_attrs(json.loads(json.dumps(record.attrs())))
    assert back == record
    index = index_dataset({("k", "norms"): record})
    assert index.epoch.values.tolist() == [-1] and index.epoch.dtype == np.int64


def test_an_epoch_of_2_63_in_the_file_is_one_bad_checkpoint_not_a_crashed_batch(tmp_path, probes):
    good = write_lstms(tmp_path / "ck", 2)
    torch.manual_seed(7)
    save_file(nn.LSTM(1, 3).state_dict(), tmp_path / "ck" / "meta.safetensors",
              metadata={"epoch": "99999999999999999999"})
    torch.save({"model": nn.LSTM(1, 3).state_dict(), "epoch": 2**63}, tmp_path / "ck" / "dict.pt")
    paths = [*good, tmp_path / "ck" / "meta.safetensors", tmp_path / "ck" / "dict.pt"]
    out = tmp_path / "runs.zarr"
    summary = run(paths, out)
    assert summary.ok + summary.failed == 4 and summary.ok >= 2
    tree = dynprobe.open_batch(out)  # the store stays readable
    index = tree["index"].ds
    for path in paths[2:]:
        row = index.sel(checkpoint=str(path)).isel(probe=0)
        assert str(row.status.values) in ("ok", "error")  # an unknown epoch, or one recorded failure
        assert int(row.epoch) in (-1,) or str(row.status.values) == "error"
        if str(row.status.values) == "error":
            assert str(path) in str(row.error.values) and "\n" not in str(row.error.values)
    assert_results_exact(out, [p for p in paths if str(index.sel(checkpoint=str(p)).status.values[0]) == "ok"])
    again = run(paths, out)  # and resumable: nothing left to do but the failures
    assert again.skipped == summary.ok


@pytest.fixture
def store(tmp_path, probes):
    """Three checkpoints analysed into a store."""
    paths = write_lstms(tmp_path / "ck", 3)
    out = tmp_path / "runs.zarr"
    assert run(paths, out).ok == 3
    return out, paths


def _damage_and_check(store, damage, *, named: bool = True) -> None:
    out, paths = store
    victim = paths[1]
    damage(result_folder(out, victim, "norms"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = dynprobe.open_batch(out)["norms"].ds
    assert str(victim) not in ds.checkpoint.values.tolist() and ds.sizes["checkpoint"] == 2
    lines = [m for m in messages(caught) if "damaged" in m]
    if named:
        assert len(lines) == 1 and str(victim) in lines[0] and "\n" not in lines[0]
    with pytest.warns(RuntimeWarning, match="is damaged"):
        index = dynprobe.open_batch(out)["index"].ds
    assert str(index.status.sel(checkpoint=str(victim)).values[0]) == "damaged"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = run(paths, out)
    assert (summary.ok, summary.skipped, summary.failed) == (1, 2, 0)
    assert "1 damaged result(s) recomputed" in summary.line()
    assert_results_exact(out, paths)


def test_a_deleted_chunk_is_found_and_recomputed(store):
    _damage_and_check(store, lambda folder: chunk_files(folder, "norm")[0].unlink())


def test_a_deleted_array_is_found_and_recomputed(store):
    import shutil

    _damage_and_check(store, lambda folder: shutil.rmtree(folder / "norm"))


def test_two_flipped_bytes_in_a_chunk_are_found_and_recomputed(store):
    _damage_and_check(store, lambda folder: flip_bytes(chunk_files(folder, "norm")[0]))


def test_a_truncated_array_metadata_file_is_found_and_recomputed(store):
    _damage_and_check(store, lambda folder: truncate(folder / "norm" / "zarr.json", 40))


def test_a_truncated_result_group_metadata_file_is_found_and_recomputed(store):
    _damage_and_check(store, lambda folder: truncate(folder / "zarr.json"))


@pytest.mark.parametrize("where", ["root", "checkpoints", "checkpoint group"])
def test_truncated_metadata_above_the_results_hides_nothing_and_is_repaired(store, where):
    out, paths = store
    target = {"root": out, "checkpoints": out / "checkpoints",
              "checkpoint group": result_folder(out, paths[0], "norms").parent}[where]
    truncate(target / "zarr.json")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert_results_exact(out, paths)  # every result still read
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run(paths, out)
    assert summary.skipped == 3
    assert any("was damaged; rewrote it" in m for m in messages(caught))
    json.loads((target / "zarr.json").read_text())  # repaired
    xr.open_datatree(out, engine="zarr", consolidated=False).close()  # a plain Zarr reader opens it again


def test_an_interrupted_write_leaves_no_completion_mark_and_is_recomputed(store, monkeypatch):
    """Kill a write half-way (after the first array): the group must hold no completion mark,
    read as absent, and be recomputed. Writing the mark with the attrs before the arrays (the
    mutant registered in tests/mutation/mutants.toml) fails the first assertion."""
    out, paths = store
    victim = paths[2]
    folder = result_folder(out, victim, "norms")
    original = xr.Dataset.to_zarr

    def killed_midway(self, store=None, *args, **kwargs):
        first = self[[next(iter(self.data_vars))]]
        first.attrs = dict(self.attrs)
        original(first.drop_vars([c for c in first.coords if c not in first.dims]), store, *args, **kwargs)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(xr.Dataset, "to_zarr", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        run([victim], out, recompute=True)
    monkeypatch.setattr(xr.Dataset, "to_zarr", original)
    attrs = json.loads((folder / "zarr.json").read_text())["attributes"]
    assert (folder / "norm").exists()  # the write really was half done
    assert "batch_complete" not in attrs and "batch_digest" not in attrs
    assert str(victim) not in dynprobe.open_batch(out)["norms"].ds.checkpoint.values.tolist()
    summary = run(paths, out)
    assert (summary.ok, summary.skipped) == (1, 2)
    assert_results_exact(out, paths)


def test_a_record_of_the_wrong_shape_reads_as_damaged_not_as_a_crash(store):
    out, paths = store
    folder = result_folder(out, paths[0], "norms")
    meta = json.loads((folder / "zarr.json").read_text())
    meta["attributes"]["batch_size"] = {"not": "a number"}
    meta["attributes"]["batch_status"] = 3
    (folder / "zarr.json").write_text(json.dumps(meta))
    scan = BatchStore(out).scan()
    assert len(scan.records) == 2 and list(scan.damaged) == [(folder.parent.name, "norms")]
    assert scan.damaged[(folder.parent.name, "norms")] == f"{paths[0]}: its record cannot be read"
    with pytest.warns(RuntimeWarning, match="its record cannot be read"):
        summary = run(paths, out)
    assert (summary.ok, summary.skipped) == (1, 2)
    assert_results_exact(out, paths)


def test_a_result_changed_between_verifying_and_reading_is_not_handed_over(store, monkeypatch):
    """A reader verifies, then reads; a writer that changes the files in between (a rerun
    recomputing that result) must not hand over what it half wrote."""
    out, paths = store
    victim = result_folder(out, paths[0], "norms")
    original = BatchStore.open_result

    def rewritten_meanwhile(self, key, probe):
        if key == victim.parent.name:
            flip_bytes(chunk_files(victim, "norm")[0])
        return original(self, key, probe)

    monkeypatch.setattr(BatchStore, "open_result", rewritten_meanwhile)
    with pytest.warns(RuntimeWarning, match=r"checksum mismatch.*\(while it was read\)"):
        ds = dynprobe.open_batch(out)["norms"].ds
    assert str(paths[0]) not in ds.checkpoint.values.tolist() and ds.sizes["checkpoint"] == 2
