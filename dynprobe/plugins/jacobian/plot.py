"""Figure of the ``jacobian`` probe: singular-value spectra over T, gradient-norm propagation,
and the one-step spectral norm next to the spectral radius.

Panels (``view=``): ``spectrum``, ``gradient``, ``step``; the convention is
:meth:`dynprobe.accessor.DynprobeAccessor.plot`. Curves are medians over samples (and over the
checkpoints or networks of a stacked result) with a 10–90 % band.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dynprobe.plotting import integer_ticks, lead_note, legend_outside, median_band, panel_axes, resolve_views

__all__ = ["plot", "VIEWS"]

VIEWS = ("spectrum", "gradient", "step")


def _curve(ax: Any, x: np.ndarray, da: xr.DataArray, kwargs: dict[str, Any], scale: float = 1.0, **style: Any) -> None:
    mid, lo, hi = median_band(da, over=("sample",))
    line, = ax.plot(x, mid / scale, **{**style, **kwargs})
    if lo is not None:
        ax.fill_between(x, lo / scale, hi / scale, color=line.get_color(), alpha=0.15, lw=0)


def plot(ds: xr.Dataset, *, ax: Any = None, figsize: tuple[float, float] | None = None,
         view: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Panels ``spectrum`` (log σᵢ / T for each horizon T), ``gradient`` (log₁₀ ‖∂h_T/∂h_t‖
    against t) and ``step`` (‖J_t‖₂ next to ρ(J_t)); the last two when the result has them."""
    present = [v for v in VIEWS if v == "spectrum" or (v == "gradient" and "log_grad_norm" in ds)
               or (v == "step" and "step_spectral_norm" in ds)]
    views = resolve_views("jacobian", present, view, ax)
    fig, axes = panel_axes("jacobian", views, ax, figsize, panel_size=(4.4, 3.6))
    note = lead_note(ds)
    for name, target in axes.items():
        if name == "spectrum":
            for T in ds.horizon.values:
                _curve(target, ds.sv.values, ds.log_singular_values.sel(horizon=T), kwargs, scale=float(T),
                       label=f"$T = {int(T)}$")
            target.axhline(0, color="k", lw=0.8)
            target.set(xlabel="singular value index $i$", ylabel=r"$\log\sigma_i\,/\,T$ (1/step)",
                       title=r"spectrum of $\partial h_T/\partial h_0$" + note)
            integer_ticks(target)
        elif name == "gradient":
            t = ds.time.values
            _curve(target, t, ds.log_grad_norm, kwargs, scale=np.log(10), label=r"$\|\cdot\|_2$")
            _curve(target, t, ds.log_grad_rms, kwargs, scale=np.log(10), ls="--", label=r"$\|\cdot\|_F/\sqrt{N}$")
            target.set(xlabel="$t$", ylabel=r"$\log_{10}\|\partial h_T/\partial h_t\|$",
                       title=f"gradient propagation ($T = {int(t[-1])}$)" + note)
            integer_ticks(target)
        else:
            _curve(target, ds.step.values, ds.step_spectral_norm, kwargs, label=r"spectral norm $\|J_t\|_2$")
            _curve(target, ds.step.values, ds.step_spectral_radius, kwargs, label=r"spectral radius $\rho(J_t)$")
            target.axhline(1, color="k", lw=0.8)
            target.set(xlabel="step $t$", ylabel="median over samples", title="one-step Jacobian" + note)
            integer_ticks(target)
        legend_outside(target)
    return fig
