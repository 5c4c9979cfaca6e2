"""``import dynprobe`` is lazy and complete: every public name resolves, nothing heavy loads
until it is used, and the optional batch dependencies stay optional."""

from __future__ import annotations

import subprocess
import sys

import pytest

import dynprobe

HEAVY = ("torch", "xarray", "pandas", "dask", "distributed", "zarr", "matplotlib", "scipy", "rich", "sympy")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("name", dynprobe.__all__)
def test_every_public_name_resolves(name):
    assert getattr(dynprobe, name) is not None
    assert name in dir(dynprobe)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="has no attribute 'lyapunof'"):
        dynprobe.lyapunof  # noqa: B018


def test_import_and_the_command_line_load_nothing_heavy():
    assert _loaded_after("import dynprobe") == []
    assert _loaded_after("import dynprobe.cli") == []  # what `dynprobe --help` needs
    assert _loaded_after("import dynprobe\ndynprobe.hookimpl\ndynprobe.DynprobeError") == []


def test_running_a_probe_needs_neither_dask_nor_zarr():
    loaded = _loaded_after(
        "import dynprobe, torch\n"
        "s = dynprobe.System.from_step(lambda h, u, p: 3.9 * h * (1 - h), state_dim=1, dtype=torch.float64,\n"
        "                              init=dynprobe.InitialState(low=0.2, high=0.8))\n"
        "dynprobe.run('lyapunov', s, steps=50)\n"
    )  # (xarray itself imports dask.array when Dask is installed; dynprobe needs none of it)
    assert "zarr" not in loaded and "distributed" not in loaded and "matplotlib" not in loaded


def test_running_a_probe_without_the_batch_extra_loads_no_scipy():
    # without Dask (a core install) nothing else pulls scipy in: the plugins load it on first use
    loaded = _loaded_after(
        "sys.modules['dask'] = None\n"
        "import dynprobe, torch\n"
        "s = dynprobe.wrap(torch.nn.RNN(1, 4), dtype=torch.float64)\n"
        "dynprobe.run('lyapunov', s, steps=50)\n"
    )
    assert "scipy" not in loaded and "xarray" in loaded


def test_results_carry_the_accessor_without_an_explicit_import():
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import dynprobe, torch, xarray as xr\n"
         "s = dynprobe.System.from_step(lambda h, u, p: 3.9 * h * (1 - h), state_dim=1, dtype=torch.float64,\n"
         "                              init=dynprobe.InitialState(low=0.2, high=0.8))\n"
         "print(dynprobe.run('lyapunov', s, steps=50).dynprobe.summary()[-1][0])"],
        capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "verdict"


def test_a_missing_batch_extra_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import torch
    from systems import logistic_system

    from dynprobe.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now raises ImportError
    monkeypatch.setitem(sys.modules, "distributed", None)
    ds = dynprobe.run("lyapunov", logistic_system(3.9), steps=50)
    dynprobe.save(ds, tmp_path / "fine.nc")  # netCDF needs no extra
    with pytest.raises(MissingExtraError, match=r"writing '.*x\.zarr' needs zarr, which is not installed; "
                                                r"pip install 'dynprobe\[batch\]'$"):
        dynprobe.save(ds, tmp_path / "x.zarr")
    torch.save({"weight_hh_l0": torch.eye(2)}, tmp_path / "a.pt")
    with pytest.raises(MissingExtraError, match=r"needs (zarr|dask\[distributed\]), which is not installed; "
                                                r"pip install 'dynprobe\[batch\]'"):
        dynprobe.batch(str(tmp_path / "a.pt"), ["lyapunov"], str(tmp_path / "runs.zarr"))
    assert issubclass(MissingExtraError, ImportError) and issubclass(MissingExtraError, dynprobe.DynprobeError)


def test_a_submodule_import_does_not_hide_the_function_of_the_same_name():
    out = subprocess.run([sys.executable, "-c", "import dynprobe.report, dynprobe.diagnose, dynprobe\n"
                          "print(callable(dynprobe.diagnose), type(dynprobe.drives).__name__)"],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "module"], out.stderr


def test_the_command_lines_dtype_names_are_the_loaders():
    """cliload names the precisions without importing torch; they must be intake's."""
    from dynprobe.cliload import DTYPE_NAMES
    from dynprobe.intake import DTYPES

    assert tuple(DTYPES) == DTYPE_NAMES


def test_submodules_load_on_first_attribute_access():
    """``dynprobe.report.render_report`` and ``dynprobe.plotting.panel_axes`` work after a bare
    ``import dynprobe``, as when the package imported every module at once."""
    out = subprocess.run([sys.executable, "-c", "import dynprobe\nprint(callable(dynprobe.report.render_report), "
                          "callable(dynprobe.plotting.panel_axes))\nimport pytest\n"
                          "with pytest.raises(AttributeError, match='no attribute .nope.'): dynprobe.nope"],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "True"], out.stderr
