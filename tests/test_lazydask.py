"""xarray does not import dask.array for dynprobe's results, and still knows a Dask array when
one exists (each check in a fresh process: the state under test is the process's imports)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("dask.array")


def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_a_result_does_not_import_dask():
    out = _child("""
import sys, torch, dynprobe
ds = dynprobe.run("lyapunov", dynprobe.wrap(torch.nn.RNN(1, 4), dtype=torch.float64), steps=20, burn_in=0)
print("dask.array" in sys.modules, float(ds.exponent_mean[0]) == float(ds.exponent_mean[0]))
""")
    assert out == "False True"


def test_dask_arrays_are_still_dask_arrays_once_imported():
    out = _child("""
import xarray as xr, dynprobe.accessor, dynprobe.lazydask as lazy
from xarray.namedarray import pycompat
assert isinstance(pycompat._cached_duck_array_modules["dask"], lazy._DaskUntilImported)
xr.DataArray([1.0, 2.0])  # answered without dask
import dask.array as da
arr = xr.DataArray(da.ones((4, 2), chunks=(2, 2)), dims=("a", "b"))
print(arr.chunks, type(arr.data).__module__.split(".")[0], float(arr.sum().compute()),
      pycompat.mod_version("dask") > pycompat.Version("0"))
""")
    assert out == "((2, 2), (2,)) dask 8.0 True"
