"""Result conventions: provenance attrs, validation, exact netCDF / Zarr round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from systems import henon_system

import dynprobe
from dynprobe.errors import DynprobeError
from dynprobe.results import PROVENANCE_ATTRS, netcdf_attr, validate
from dynprobe.testing import assert_same_result


@pytest.fixture(scope="module")
def result() -> xr.Dataset:
    return dynprobe.run("lyapunov", henon_system(), steps=200, samples=2, seed=4)


def test_provenance_attrs_are_complete_and_typed(result):
    assert validate(result) == []
    for key in PROVENANCE_ATTRS:
        assert key in result.attrs
    params = json.loads(result.attrs["params"])
    assert params == {"steps": 200, "burn_in": 100, "k": None, "reorth_every": "auto", "samples": 2, "seed": 4}
    assert result.attrs["model_fingerprint"] == henon_system().fingerprint()
    assert result.attrs["dtype"] == "float64" and result.attrs["device"] == "cpu"


def test_validate_names_each_broken_rule():
    ds = xr.Dataset({"x": (("a",), [1.0, 2.0])}, attrs={"flag": True})
    problems = validate(ds)
    assert "variable 'x' has no 'long_name' attr" in problems
    assert "dimension 'a' has no coordinate" in problems
    assert "attr 'flag' has type bool; use str, number or 1-D array" in problems
    assert "missing provenance attr 'model_fingerprint'" in problems


@pytest.mark.parametrize("value, expected", [(True, 1), (None, ""), (np.array([3]), 3), ({"a": 1}, '{"a": 1}'),
                                             ([1, 2], [1, 2])])
def test_netcdf_attr_normalization(value, expected):
    got = netcdf_attr(value)
    assert np.array_equal(got, expected) if isinstance(expected, list) else got == expected


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_datatree_round_trip_is_exact(tmp_path, suffix):
    system = dynprobe.wrap(torch.nn.GRU(1, 3), dtype=torch.float64)
    tree = dynprobe.analyze(system, ["lyapunov"], params={"lyapunov": {"steps": 100, "samples": 2}})
    path = dynprobe.save(tree, tmp_path / f"tree{suffix}")
    back = dynprobe.open_result(path)
    xr.testing.assert_identical(back, tree)


def test_same_seed_gives_a_bit_identical_dataset(result):
    again = dynprobe.run("lyapunov", henon_system(), steps=200, samples=2, seed=4)
    assert_same_result(result, again)


def test_open_result_of_a_missing_path_says_how_to_make_one(tmp_path):
    with pytest.raises(DynprobeError, match="no result at .*dynprobe run"):
        dynprobe.open_result(tmp_path / "nothing.nc")


def test_unknown_format_is_refused(tmp_path, result):
    with pytest.raises(DynprobeError, match="use a .nc \\(netCDF\\) or .zarr path"):
        dynprobe.save(result, tmp_path / "out.csv")


def test_accessor_summary_and_plot(result, tmp_path):
    rows = dict(result.dynprobe.summary())
    assert rows["verdict"] == "chaotic" and abs(float(rows["lambda_1"].split()[0]) - 0.42) < 0.1
    fig = result.dynprobe.plot()
    fig.savefig(tmp_path / "lyap.png")
    assert (tmp_path / "lyap.png").stat().st_size > 10_000
