"""Bundled plugin: trainability probes — ``gradient_propagation`` and ``hessian``.

Both evaluate a model (the System), a readout, a batch of task data and a loss; how they receive
them is written down in :mod:`dynprobe.plugins.trainability.objective`.

Reference: fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.2, §3, Fig. 2C–D.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

import dynprobe
from dynprobe import Probe
from dynprobe.plotting import integer_ticks, lead_dims, legend_outside, panel_axes, resolve_views, stack_coordinate

from .gradients import finite_time_lyapunov, fit_rate, gradient_propagation, state_gradients
from .hessian import hessian, hvp_operator, recurrent_weights
from .objective import Objective, build_objective, loss_value

__all__ = ["gradient_propagation", "hessian", "Objective", "build_objective", "loss_value", "state_gradients",
           "fit_rate", "finite_time_lyapunov", "hvp_operator", "recurrent_weights", "dynprobe_probes"]


def _networks(ds: xr.Dataset) -> list[xr.Dataset]:
    return [ds.isel(network=i) for i in range(ds.sizes["network"])] if "network" in ds.dims else [ds]


def gradient_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Fitted rate next to λ_max, per network (the first four)."""
    rows = [("data / loss", f"{ds.attrs.get('data')} (T={ds.attrs.get('steps')}) / {ds.attrs.get('loss')}")]
    for i, one in enumerate(_networks(ds)[:4]):
        tag = f" [network {i}]" if "network" in ds.dims else ""
        rows.append((f"gradient growth rate{tag}", f"{float(one.growth_rate):+.4g} ± {float(one.growth_rate_stderr):.1g} 1/step"))
        rows.append((f"lambda_max along the batch{tag}", f"{float(one.lyapunov_max):+.4g} 1/step"))
        first, last = float(one.grad_norm.isel(time=0)), float(one.grad_norm.isel(time=-1))
        rows.append((f"||dL/dh_0|| / ||dL/dh_T||{tag}", f"{first / last:.3g}" if last > 0 else "n/a"))
    return rows


def _members(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    """(label, result) for each network or checkpoint of a stacked result; the result alone otherwise."""
    dims = lead_dims(ds)
    if not dims:
        return [("", ds)]
    dim = dims[0]
    if dim == "checkpoint":
        _, x, label = stack_coordinate(ds)
        names = [f"{label.split(' ')[0]} {v}" for v in x]
    else:
        names = [f"net {i}" for i in range(ds.sizes[dim])]
    return [(name, ds.isel({dim: i})) for i, name in enumerate(names)]


def gradient_plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                  view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """log‖∂L/∂h_t‖ against the lag T − t, with λ_max as a dotted slope (one panel,
    ``gradient``; one line per network or checkpoint of a stacked result)."""
    views = resolve_views("gradient_propagation", ("gradient",), view, ax)
    fig, axes = panel_axes("gradient_propagation", views, ax, figsize, panel_size=(6.0, 3.8))
    a = axes["gradient"]
    for name, one in _members(ds):
        lag, norm = one.lag.values, one.grad_norm.values
        prefix = f"{name}: " if name else ""
        line, = a.semilogy(lag, norm, **{"lw": 1.2, "label": f"{prefix}rate {float(one.growth_rate):+.3f}, "
                                                              rf"$\lambda_\mathrm{{max}}$ {float(one.lyapunov_max):+.3f}",
                                         **kwargs})
        ref = norm[-1 if lag[-1] == 0 else 0]
        a.semilogy(lag, ref * np.exp(float(one.lyapunov_max) * lag), ls=":", color=line.get_color(), lw=1)
    a.set(xlabel="steps before the readout, $T - t$", ylabel=r"$\|\partial L/\partial h_t\|$",
          title=r"gradient propagation (dotted: slope $\lambda_\mathrm{max}$)")
    integer_ticks(a)
    legend_outside(a)
    return fig


def hessian_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """The top eigenvalues per network (the first four) and the cost."""
    rows = [("parameters", f"{ds.attrs.get('wrt')} ({ds.attrs.get('dimension')} values)")]
    for i, one in enumerate(_networks(ds)[:4]):
        tag = f" [network {i}]" if "network" in ds.dims else ""
        vals = ", ".join(f"{v:.4g}" for v in one.eigenvalues.values[:6])
        rows.append((f"top eigenvalues{tag}", vals))
        rows.append((f"max residual ||Hv - lv||{tag}", f"{float(one.residual_norm.max()):.2g}"))
        rows.append((f"Hessian-vector products{tag}", str(int(one.hvp_calls))))
    return rows


def hessian_plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
                 view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """|eigenvalue| against its index (one panel, ``eigenvalues``; one line per network or
    checkpoint of a stacked result)."""
    views = resolve_views("hessian", ("eigenvalues",), view, ax)
    fig, axes = panel_axes("hessian", views, ax, figsize, panel_size=(5.0, 3.6))
    a = axes["eigenvalues"]
    for name, one in _members(ds):
        a.semilogy(one.eigen.values, np.abs(one.eigenvalues.values), **{"marker": "o", "ms": 3, "label": name or None,
                                                                         **kwargs})
    a.set(xlabel="index", ylabel=r"$|\lambda|$ of the loss Hessian", title=f"Hessian w.r.t. {ds.attrs.get('wrt', '')}")
    integer_ticks(a)
    legend_outside(a)
    return fig


def _suggest(probe: str) -> Any:
    def suggest(system: dynprobe.System) -> dict[str, Any]:
        """The default task only when its inputs fit; otherwise the user must name the task."""
        from dynprobe.errors import NotApplicable

        channels = dynprobe.dataset("adding", T=2, samples=1).inputs.shape[-1]
        if system.input_dim != channels:
            raise NotApplicable(
                f"needs the task the model was trained on: pass --param {probe}.data=NAME with a data set of "
                f"{system.input_dim} input(s) (the default 'adding' has {channels})"
            )
        return {"batch": 32}

    return suggest


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(name="gradient_propagation", run=gradient_propagation, plot=gradient_plot, summary=gradient_summary,
              suggest=_suggest("gradient_propagation"),
              reference="fading-memory paper §2.2, §3 eq. 15, Fig. 2D", dims=("sample", "time")),
        Probe(name="hessian", run=hessian, plot=hessian_plot, summary=hessian_summary, suggest=_suggest("hessian"),
              reference="fading-memory paper §2.2 eq. 6-9, Fig. 2C (Lanczos on Hessian-vector products)",
              dims=("eigen",)),
    ]
