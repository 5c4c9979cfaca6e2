"""Figures as a matplotlib user expects them (the convention of ``ds.dynprobe.plot``): ``ax=``
an Axes or a list of them, ``figsize=``, ``view=``, keywords passed on to matplotlib; results of
a batch store (stacked along ``checkpoint``) and of ensembles drawn, not refused; no empty
panel; mathtext instead of ASCII maths; integer axes with integer ticks; legends beside the data."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import dynprobe
from dynprobe.errors import DynprobeError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

F64 = torch.float64
BATCH_PARAMS = {
    "lyapunov": {"steps": 200, "samples": 2},
    "jacobian": {"horizons": (1, 8), "samples": 2},
    "entropy": {"samples": 12, "steps": 3, "power_iters": 2, "knn": True},
    "bifurcation": {"values": "0.5:1.5:9", "steps": 30, "burn_in": 30, "samples": 2, "verify": 0},
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> xr.DataTree:
    """``open_batch`` of a real store: three nn.RNN checkpoints named by epoch, four probes."""
    import distributed

    root = tmp_path_factory.mktemp("plots")
    for epoch in range(3):
        torch.manual_seed(epoch)
        torch.save(nn.RNN(2, 4).state_dict(), root / f"epoch_{epoch}.pt")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        summary = dynprobe.batch(str(root / "epoch_*.pt"), list(BATCH_PARAMS), root / "runs.zarr",
                                 probe_params=BATCH_PARAMS, scheduler=client, nonlinearity="tanh", progress=False)
    assert summary.ok == 3
    return dynprobe.open_batch(root / "runs.zarr")


def _logistic() -> dynprobe.System:
    return dynprobe.System.from_step(lambda h, u, p: p["r"] * h * (1 - h), state_dim=1,
                                     params={"r": torch.tensor(3.7, dtype=F64)},
                                     init=dynprobe.InitialState(low=0.2, high=0.8))


def _singles() -> dict[str, Any]:
    """How to make one small result of every bundled probe, in each of its shapes."""
    rnn = nn.RNN(2, 5).double()
    torch.nn.init.normal_(rnn.weight_hh_l0, std=0.4, generator=torch.Generator().manual_seed(0))
    rn = {"k": 4, "sigma2": 40.0}
    return {
        "lyapunov": lambda: dynprobe.run("lyapunov", dynprobe.load_system("lstm2d_chaotic"), steps=200, samples=2),
        "jacobian": lambda: dynprobe.run("jacobian", dynprobe.wrap(rnn), horizons=(1, 5), samples=2),
        "entropy": lambda: dynprobe.run("entropy", dynprobe.wrap(rnn), samples=16, steps=3, power_iters=2, knn=True),
        "bifurcation": lambda: dynprobe.run("bifurcation", _logistic(), path="scalar:r", values="2.8:4:13", steps=30,
                                            samples=2, verify=0),
        "smoothness": lambda: dynprobe.run("smoothness", dynprobe.load_system("lstm2d_chaotic"), values="0.8:1.2:11",
                                           lengths=(2, 5)),
        "meanfield sweep": lambda: dynprobe.run("meanfield", None, sigma_w=[0.8, 1.2, 1.6], sigma_b=0.1, sigma_v=0.0),
        "meanfield grid": lambda: dynprobe.run("meanfield", None, sigma_w=[0.8, 1.2, 1.6], sigma_b=[0.0, 0.2],
                                               sigma_v=0.0, correlations=False),  # no tau: no second panel
        "meanfield theory": lambda: dynprobe.run("meanfield", None, sigma_w=1.2, sigma_b=0.1, sigma_v=0.0),
        "period3 1-D": lambda: dynprobe.run("period3", dynprobe.model("rn", seed=3, **rn)),
        "period3 ensemble": lambda: dynprobe.run("period3", dynprobe.model("rn", networks=50, seed=0, **rn)),
        "period3 n-D": lambda: dynprobe.run("period3", dynprobe.load_system("lstm2d_chaotic"), period=(1, 2), starts=8),
        "scrambling": lambda: dynprobe.run("scrambling", dynprobe.load_system("lstm2d_chaotic"), steps=30, samples=2),
        "linear_regions": lambda: dynprobe.run("linear_regions", dynprobe.model("rn", seed=3, **rn), steps=4),
        "gradient_propagation": lambda: dynprobe.run("gradient_propagation", rnn, data="adding",
                                                     data_options={"T": 10}, batch=4, readout="linear_init"),
        "hessian": lambda: dynprobe.run("hessian", rnn, data="adding", data_options={"T": 5}, batch=4, k=2,
                                        readout="linear_init"),
    }


_MADE: dict[str, xr.Dataset] = {}


def single(name: str) -> xr.Dataset:
    if name not in _MADE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _MADE[name] = _singles()[name]()
    return _MADE[name]


FAST = {"lyapunov", "meanfield grid", "entropy"}  # the rest run with the slow tests (about 1 s of drawing each)


_DOLLARS = re.compile(r"\$[^$]*\$")
ASCII_MATH = re.compile(r"\b(sigma|chi|lambda|theta|tau|mu|rho)_|\^T\b|\*theta|\|\||\bdh_|\blog\(sigma")


def _texts(fig: plt.Figure) -> list[str]:
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


def _drawn(ax: plt.Axes) -> bool:
    return bool(ax.lines or ax.collections or ax.patches or ax.images)


def _check_figure(name: str, fig: plt.Figure) -> None:
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert _drawn(ax), f"{name}: an empty panel {ax.get_title()!r}"
        legend = ax.get_legend()
        if legend is not None:
            box, area = legend.get_window_extent(), ax.get_window_extent()
            assert not box.overlaps(area), f"{name}: the legend of {ax.get_title()!r} covers the data"
    for text in _texts(fig):
        plain = _DOLLARS.sub("", text)
        assert not ASCII_MATH.search(plain), f"{name}: ASCII maths in {text!r}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in _singles()])
def test_every_single_result_plots_cleanly(name: str) -> None:
    fig = single(name).dynprobe.plot()
    try:
        _check_figure(name, fig)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("probe", list(BATCH_PARAMS))
def test_a_batch_result_plots_into_given_axes(batch: xr.DataTree, probe: str, tmp_path: Path) -> None:
    ds = batch[probe].to_dataset()
    assert ds.sizes["checkpoint"] == 3
    default = ds.dynprobe.plot()
    panels = [a for a in default.axes if a.get_label() != "<colorbar>"]
    _check_figure(probe, default)
    plt.close(default)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5), layout="constrained", squeeze=False)
    assert ds.dynprobe.plot(ax=list(axes[0])) is fig
    assert all(_drawn(a) for a in axes[0])
    fig.savefig(tmp_path / f"{probe}.png")
    plt.close(fig)
    fig, ax = plt.subplots(layout="constrained")
    assert ds.dynprobe.plot(ax=ax) is fig and _drawn(ax) and len(fig.axes) <= 2  # one panel (+ its colorbar)
    plt.close(fig)


def test_batch_lyapunov_trend_draws_the_exponents_against_the_epoch(batch: xr.DataTree) -> None:
    ds = batch["lyapunov"].to_dataset()
    fig, ax = plt.subplots()
    ds.dynprobe.plot(ax=ax, view="trend", color="k")
    first = ax.lines[0]
    np.testing.assert_array_equal(first.get_xdata(), ds.epoch.values)
    np.testing.assert_array_equal(first.get_ydata(), ds.exponent_mean.sel(exponent=1).values)
    assert first.get_color() == "k"  # keywords go to matplotlib
    assert all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_batch_bifurcation_follows_one_path_value_across_epochs(batch: xr.DataTree) -> None:
    ds = batch["bifurcation"].to_dataset()
    fig, ax = plt.subplots()
    ds.dynprobe.plot(ax=ax, view="exponent", at=1.0)
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    np.testing.assert_array_equal(x, ds.epoch.values)
    np.testing.assert_array_equal(y, ds.max_exponent.sel(param=1.0, method="nearest").values)
    with pytest.raises(DynprobeError, match="outside the swept values"):
        ds.dynprobe.plot(at=5.0)
    plt.close("all")


def test_figsize_view_and_their_errors() -> None:
    ds = single("lyapunov")
    fig = ds.dynprobe.plot(figsize=(7, 3), view="spectrum")
    assert tuple(fig.get_size_inches()) == (7, 3) and len(fig.axes) == 1
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())  # exponent indices: no 1.5, 2.5
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), ds.exponent_mean.values)
    plt.close(fig)
    with pytest.raises(DynprobeError, match="unknown view 'spectra'; views: spectrum, convergence, trend"):
        ds.dynprobe.plot(view="spectra")
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(DynprobeError, match="got 3 Axes for 2 panels"):
        ds.dynprobe.plot(ax=axes)
    with pytest.raises(DynprobeError, match="not stacked"):
        ds.dynprobe.plot(view="trend")
    plt.close("all")


def test_meanfield_theory_grid_without_tau_has_one_panel() -> None:
    fig = single("meanfield grid").dynprobe.plot()
    assert len([a for a in fig.axes if a.get_label() != "<colorbar>"]) == 1
    plt.close(fig)


def test_a_third_party_plot_without_ax_gets_a_clear_error(inline_registry) -> None:
    def probe(system, *, seed: int = 0) -> xr.Dataset:
        """Constant."""
        return xr.Dataset({"x": ((), 1.0, {"long_name": "x", "units": "1"})})

    def old_plot(ds):
        return plt.figure()

    mod = type("M", (), {})()
    mod.dynprobe_probes = dynprobe.hookimpl(lambda: [dynprobe.Probe("constant", probe, plot=old_plot)])
    inline_registry(mod)
    ds = dynprobe.run("constant", _logistic())
    assert ds.dynprobe.plot() is not None
    with pytest.raises(DynprobeError, match="its plot function takes no ax"):
        ds.dynprobe.plot(ax=plt.gca())
    plt.close("all")
