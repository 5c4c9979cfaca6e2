"""``extend_tree``: the file ``diagnose`` grows one probe at a time is the file a single
``write_tree`` of the finished tree writes (same children, variables, dtypes and attrs)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import dynprobe
from dynprobe.results import extend_tree, write_tree


def _child(i: int) -> xr.Dataset:
    rng = np.random.default_rng(i)
    return xr.Dataset(
        {"x": (("sample", "unit"), rng.standard_normal((3, 4))), "flag": ("sample", rng.random(3) > 0.5),
         "regime": ((), np.array(f"regime-{i}"))},
        coords={"sample": np.arange(3), "unit": np.arange(4)}, attrs={"probe": f"p{i}", "steps": 10 * i},
    )


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_growing_a_file_child_by_child_equals_writing_it_at_once(tmp_path, suffix):
    children = {f"p{i}": _child(i) for i in range(3)}
    grown, whole = tmp_path / f"grown{suffix}", tmp_path / f"whole{suffix}"
    tree = xr.DataTree(dataset=xr.Dataset(attrs={"probes": "", "elapsed_s": 0.0}))
    assert write_tree(tree, grown) == {}
    for n, name in enumerate(children, 1):
        tree = xr.DataTree.from_dict(dict(list(children.items())[:n]))
        tree.attrs = {"probes": ",".join(list(children)[:n]), "elapsed_s": float(n)}
        assert extend_tree(tree, grown, [name]) == {}
    assert write_tree(tree, whole) == {}
    got, want = dynprobe.open_result(grown).load(), dynprobe.open_result(whole).load()
    assert got.identical(want) and got.attrs == want.attrs == tree.attrs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([grown.name, whole.name])  # no scratch left


def test_extending_a_missing_file_writes_the_whole_tree(tmp_path):
    tree = xr.DataTree.from_dict({"p0": _child(0), "p1": _child(1)})
    assert extend_tree(tree, tmp_path / "new.nc", ["p1"]) == {}
    assert sorted(dynprobe.open_result(tmp_path / "new.nc").children) == ["p0", "p1"]
