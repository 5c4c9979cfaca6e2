"""Fixed points across checkpoints: which point at one checkpoint is which at the next.

Given ``fixedpoints`` results along ``checkpoint`` (``dynprobe.open_batch(store)["fixedpoints"]``,
or any Dataset with a leading dimension of that kind), consecutive checkpoints' fixed points are
matched by minimum total distance (the Hungarian method, ``scipy.optimize.linear_sum_assignment``),
refusing matches longer than ``max_jump``. A point with no match *appears*; when it appears
within 2·``max_jump`` of a point that was already there, the nearest one's track is its ``parent`` — a
pitchfork shows as one track that turns unstable while two stable tracks branch off it; a saddle
and a node that collide and vanish (saddle-node) show as tracks that end, each ``merged_into`` the
nearest surviving track within 2·``max_jump`` (−1 when none). Stability changes along a track are events too.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §5, Fig. 4, 7 (bifurcations
during training); Kuhn (1955), "The Hungarian method for the assignment problem".
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from dynprobe.errors import ProbeParameterError
from dynprobe.plotting import TRAINING_AXES

__all__ = ["track_fixed_points", "track_events", "plot_tracks"]


def _points(ds: xr.Dataset, along: str, kinds: tuple[str, ...]) -> list[np.ndarray]:
    """Indices (into ``point``) of the points tracked at each checkpoint."""
    state = ds.state.transpose(along, "point", "unit").values
    ok = np.isfinite(state).all(-1)
    if "kind" in ds:
        kind = ds.kind.transpose(along, "point").values.astype(object)  # StringDType when read from Zarr
        ok &= np.isin(kind, kinds)
    return [np.flatnonzero(row) for row in ok]


def _default_jump(ds: xr.Dataset, along: str) -> float:
    """The median spread of the visited states (the length scale of each search)."""
    if "spread" in ds and ds.spread.dims == (along,):
        return float(np.nanmedian(ds.spread.values))
    state = ds.state.values
    return float(np.nanstd(state)) if np.isfinite(state).any() else 1.0


def track_fixed_points(ds: xr.Dataset, *, along: str = "checkpoint", max_jump: float | None = None,
                       kinds: tuple[str, ...] = ("fixed",)) -> xr.Dataset:
    """Follow fixed points from one checkpoint to the next.

    Parameters
    ----------
    ds
        ``fixedpoints`` results stacked along ``along`` (dims ``along, point, unit``; one network
        and one held input — select them first).
    along
        The stacking dimension (``checkpoint`` for a batch run; any other works, e.g. ``param``).
    max_jump
        Longest distance a point may move between neighbouring checkpoints and still be the same
        point (default: the median spread of the visited states); a new point within twice this
        of an existing one branches from it.
    kinds
        Which kinds of point to track (``fixed``; add ``slow`` to follow slow points too).

    Returns
    -------
    xarray.Dataset
        ``track_id[along, point]`` (−1: not tracked), and over ``track``: ``track_state[track,
        along, unit]`` (NaN where absent), ``track_present``, ``track_stable``,
        ``track_unstable_dims`` (−1 absent), ``track_modulus`` (largest |λ|), ``track_born`` /
        ``track_last`` (first / last index along ``along``), ``track_parent`` and
        ``track_merged_into`` (track ids, −1 none); attrs ``events`` (JSON list of sentences,
        see :func:`track_events`) and ``max_jump``.

    Example
    -------
    >>> tracked = track_fixed_points(dynprobe.open_batch("runs.zarr")["fixedpoints"].ds)
    >>> track_events(tracked)[:3]
    """
    extra = [d for d in ("network", "condition") if d in ds.dims]
    if along not in ds.dims or extra:
        raise ProbeParameterError(
            f"track_fixed_points: need fixedpoints results along {along!r} for one network and one held input; got dims "
            f"{dict(ds.sizes)}" + (f" (select one with .isel({extra[0]}=0))" if extra else "")
        )
    jump = _default_jump(ds, along) if max_jump is None else float(max_jump)
    state = ds.state.transpose(along, "point", "unit").values
    T, P, n = state.shape
    rows = _points(ds, along, kinds)
    tid = np.full((T, P), -1, dtype=np.int64)
    born, parent, merged = [], [], []
    for t in range(T):
        now = rows[t]
        prev = rows[t - 1] if t else np.zeros(0, dtype=np.int64)
        matched = np.zeros(len(now), dtype=bool)
        if t and len(prev) and len(now):
            d = np.linalg.norm(state[t - 1, prev][:, None] - state[t, now][None], axis=-1)
            from scipy.optimize import linear_sum_assignment  # on first use: scipy costs start-up time

            r, c = linear_sum_assignment(d)
            ok = d[r, c] <= jump
            tid[t, now[c[ok]]] = tid[t - 1, prev[r[ok]]]
            matched[c[ok]] = True
            for i in np.flatnonzero(~np.isin(np.arange(len(prev)), r[ok])):  # ended: merged into the nearest
                j = int(np.argmin(d[i]))
                merged.append((int(tid[t - 1, prev[i]]), int(tid[t, now[j]]) if matched[j] and d[i, j] <= 2 * jump else -1))
        for j in np.flatnonzero(~matched):
            tid[t, now[j]] = len(born)
            near = -1
            if t and len(prev):
                d = np.linalg.norm(state[t - 1, prev] - state[t, now[j]], axis=-1)
                if d.min() <= 2 * jump:
                    near = int(tid[t - 1, prev[int(np.argmin(d))]])
            born.append(t)
            parent.append(near)
    return _tracked(ds, along, tid, born, parent, dict(merged), jump)


def _tracked(ds: xr.Dataset, along: str, tid: np.ndarray, born: list[int], parent: list[int],
             merged: dict[int, int], jump: float) -> xr.Dataset:
    state = ds.state.transpose(along, "point", "unit").values
    T, P, n = state.shape
    K = len(born)
    tstate = np.full((K, T, n), np.nan)
    present = np.zeros((K, T), dtype=bool)
    stable = np.zeros((K, T), dtype=bool)
    dims = np.full((K, T), -1, dtype=np.int64)
    modulus = np.full((K, T), np.nan)
    st = ds.stable.transpose(along, "point").values if "stable" in ds else np.zeros((T, P))
    ud = ds.unstable_dims.transpose(along, "point").values if "unstable_dims" in ds else np.zeros((T, P))
    mod = (np.hypot(ds.eigenvalue_real.isel(mode=0), ds.eigenvalue_imag.isel(mode=0)).transpose(along, "point").values
           if "eigenvalue_real" in ds else np.full((T, P), np.nan))
    t_idx, p_idx = np.nonzero(tid >= 0)
    k = tid[t_idx, p_idx]
    tstate[k, t_idx] = state[t_idx, p_idx]
    present[k, t_idx] = True
    stable[k, t_idx] = np.asarray(st[t_idx, p_idx], dtype=float) > 0.5
    dims[k, t_idx] = np.nan_to_num(np.asarray(ud[t_idx, p_idx], dtype=float), nan=-1).astype(np.int64)
    modulus[k, t_idx] = mod[t_idx, p_idx]
    last = np.array([np.flatnonzero(present[i]).max() for i in range(K)], dtype=np.int64)
    coords = {c: v for c, v in ds.coords.items() if v.dims == (along,)}
    coords.update({
        "track": ("track", np.arange(K), {"long_name": "fixed-point track", "units": "1"}),
        "point": ds.coords["point"] if "point" in ds.coords else ("point", np.arange(P)),
        "unit": ds.coords["unit"] if "unit" in ds.coords else ("unit", np.arange(n)),
    })
    out = xr.Dataset(
        {
            "track_id": ((along, "point"), tid, {"long_name": "track of the point (-1: not tracked)", "units": "1"}),
            "track_state": (("track", along, "unit"), tstate, {"long_name": "state of the tracked point", "units": "1"}),
            "track_present": (("track", along), present, {"long_name": "the track exists here", "units": "1"}),
            "track_stable": (("track", along), stable, {"long_name": "the tracked point is stable", "units": "1"}),
            "track_unstable_dims": (("track", along), dims, {"long_name": "unstable directions (-1: absent)", "units": "1"}),
            "track_modulus": (("track", along), modulus, {"long_name": "largest |eigenvalue| of J", "units": "1"}),
            "track_born": ("track", np.asarray(born, dtype=np.int64), {"long_name": f"first index along {along}", "units": "1"}),
            "track_last": ("track", last, {"long_name": f"last index along {along}", "units": "1"}),
            "track_parent": ("track", np.asarray(parent, dtype=np.int64),
                             {"long_name": "track it branched from (-1: none)", "units": "1"}),
            "track_merged_into": ("track", np.array([merged.get(i, -1) for i in range(K)], dtype=np.int64),
                                  {"long_name": "track it ended next to (-1: none or still present)", "units": "1"}),
        },
        coords=coords,
        attrs={"along": along, "max_jump": jump},
    )
    out.attrs["events"] = json.dumps(track_events(out))
    return out


def _label(ds: xr.Dataset, along: str, t: int) -> str:
    for name in TRAINING_AXES:
        if name in ds.coords and ds.coords[name].dims == (along,):
            return f"{name} {ds.coords[name].values[t]}"
    return f"{along} {ds[along].values[t]}" if along in ds.coords else f"{along} #{t}"


def track_events(tracked: xr.Dataset) -> list[str]:
    """Sentences for what happens along the tracks: appearances (and what they branch from),
    endings, and changes of stability."""
    along = tracked.attrs.get("along", "checkpoint")
    out = []
    T = tracked.sizes[along]
    for k in range(tracked.sizes["track"]):
        b, last = int(tracked.track_born[k]), int(tracked.track_last[k])
        stable = tracked.track_stable.values[k]
        if b > 0:
            par = int(tracked.track_parent[k])
            what = "stable" if stable[b] else f"{int(tracked.track_unstable_dims.values[k, b])}-unstable"
            out.append(f"{_label(tracked, along, b)}: track {k} ({what}) appears"
                       + (f", branching from track {par}" if par >= 0 else ""))
        for t in range(b + 1, last + 1):
            if tracked.track_present.values[k, t - 1] and stable[t] != stable[t - 1]:
                out.append(f"{_label(tracked, along, t)}: track {k} {'gains' if stable[t] else 'loses'} stability "
                           f"(|λ| {tracked.track_modulus.values[k, t - 1]:.3g} → {tracked.track_modulus.values[k, t]:.3g})")
        if last < T - 1:
            into = int(tracked.track_merged_into[k])
            out.append(f"{_label(tracked, along, last + 1)}: track {k} ends" + (f" next to track {into}" if into >= 0 else ""))
    return out


def plot_tracks(tracked: xr.Dataset, ax: Any = None) -> Any:
    """Every track's first principal coordinate against the checkpoints: solid where stable,
    dashed where unstable."""
    import matplotlib.pyplot as plt

    along = tracked.attrs.get("along", "checkpoint")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    x = next((tracked.coords[c].values for c in TRAINING_AXES if c in tracked.coords), np.arange(tracked.sizes[along]))
    states = tracked.track_state.values  # [K, T, n]
    flat = states[np.isfinite(states).all(-1)]
    center = flat.mean(0) if len(flat) else 0.0
    _, _, vt = np.linalg.svd(flat - center, full_matrices=False) if len(flat) > 1 else (None, None, np.eye(states.shape[-1]))
    y = (states - center) @ vt[0]
    for k in range(states.shape[0]):
        stab = tracked.track_stable.values[k]
        color = f"C{k % 10}"
        ax.plot(x, np.where(stab, y[k], np.nan), "-", color=color, lw=1.5)
        ax.plot(x, np.where(~stab, y[k], np.nan), "--", color=color, lw=1.0)
        ax.plot(x, y[k], ".", color=color, ms=3)
    xlabel = next((c for c in TRAINING_AXES if c in tracked.coords), along)
    ax.set(xlabel=xlabel, ylabel="first principal coordinate", title="fixed points along training (solid: stable)")
    return fig if fig is not None else ax.figure
