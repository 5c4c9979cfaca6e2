"""Following fixed points across checkpoints (issue 12 item 6): a family with known pitchforks.

F(h) = Q tanh(a g ⊙ Qᵀh), g = (1, 0.8, 0.6): along a the origin loses stability at a = 1 as two
stable points branch off it, and at a = 1.25 each of those three points sheds a pair along the
second coordinate (3 → 9), the ±x* points losing their stability to it. The tracker must tell
exactly that story from the per-checkpoint results, stacked as ``open_batch`` stacks them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from fixedpoint_systems import graded

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.plugins.fixedpoints import plot_tracks, track_events, track_fixed_points  # as the README imports them

VALUES = [0.9, 0.95, 1.05, 1.1, 1.2, 1.3, 1.4]


@pytest.fixture(scope="module")
def stacked() -> xr.Dataset:
    runs = [dynprobe.run("fixedpoints", graded(a)[0], rounds=2, batch=64) for a in VALUES]
    ds = xr.concat(runs, dim="checkpoint", join="outer", combine_attrs="drop_conflicts", coords="minimal",
                   compat="override", data_vars="all")
    return ds.assign_coords(checkpoint=("checkpoint", [f"epoch_{i}.pt" for i in range(len(VALUES))]),
                            epoch=("checkpoint", np.arange(len(VALUES))))


def test_closed_form_counts(stacked: xr.Dataset) -> None:
    assert stacked.fixed_points.values.tolist() == [len(graded(a)[1]) for a in VALUES] == [1, 1, 3, 3, 3, 9, 9]


def test_pitchforks_are_branches_of_the_tracks_they_leave(stacked: xr.Dataset) -> None:
    tr = track_fixed_points(stacked)
    assert tr.sizes["track"] == 9 and tr.track_present.values.sum(0).tolist() == [1, 1, 3, 3, 3, 9, 9]
    origin = int(tr.track_id.values[0, 0])
    assert tr.track_present.values[origin].all()
    np.testing.assert_allclose(tr.track_state.values[origin], 0.0, atol=1e-9)  # the origin stays put
    assert tr.track_stable.values[origin].tolist() == [True, True] + [False] * 5
    first = np.flatnonzero(tr.track_born.values == 2)
    assert len(first) == 2 and (tr.track_parent.values[first] == origin).all() and tr.track_stable.values[first, 2].all()
    # each branch follows the closed-form ±x*(a) point at every later checkpoint
    for k in first:
        for t in range(2, len(VALUES)):
            truth = graded(VALUES[t])[1]
            assert np.linalg.norm(truth - tr.track_state.values[k, t], axis=-1).min() < 1e-9
    second = np.flatnonzero(tr.track_born.values == 5)
    assert len(second) == 6
    parents = tr.track_parent.values[second]
    assert sorted(parents.tolist()) == sorted([origin] * 2 + [int(first[0])] * 2 + [int(first[1])] * 2)
    assert tr.track_stable.values[first, 4].all() and not tr.track_stable.values[first, 5].any()
    assert (tr.track_merged_into.values == -1).all() and (tr.track_last.values == len(VALUES) - 1).all()
    events = json.loads(tr.attrs["events"])
    assert events == track_events(tr)
    assert f"epoch 2: track {origin} loses stability" in " ".join(events)
    assert sum("appears, branching from track" in e for e in events) == 8


def test_a_vanishing_pair_ends_next_to_each_other(stacked: xr.Dataset) -> None:
    backwards = stacked.isel(checkpoint=slice(None, None, -1))
    tr = track_fixed_points(backwards)
    ended = np.flatnonzero(tr.track_last.values < len(VALUES) - 1)
    assert len(ended) == 8  # 9 -> 3 -> 1 read backwards: collisions, each ending next to a survivor
    assert (tr.track_merged_into.values[ended] >= 0).all()
    assert sum(" ends next to track " in e for e in json.loads(tr.attrs["events"])) == 8


def test_plot_and_refusals(stacked: xr.Dataset, tmp_path) -> None:
    fig = plot_tracks(track_fixed_points(stacked))
    fig.savefig(tmp_path / "tracks.png")
    assert (tmp_path / "tracks.png").stat().st_size > 5_000
    with pytest.raises(ProbeParameterError, match="along 'param'"):
        track_fixed_points(stacked, along="param")
    ens = dynprobe.run("fixedpoints", graded(1.2)[0].with_params(a=torch.tensor([1.2, 1.3], dtype=torch.float64)),
                       rounds=2)
    with pytest.raises(ProbeParameterError, match=r"isel\(network=0\)"):
        track_fixed_points(xr.concat([ens, ens], dim="checkpoint"))


@pytest.mark.slow
def test_batch_over_checkpoints_then_track(tmp_path) -> None:
    """End to end: nn.RNN checkpoints h' = tanh(W h), W = Q diag(a g) Qᵀ along a, through
    ``dynprobe.batch`` and ``open_batch``: the origin loses stability at a = 1.05 (a·g₀ > 1) and two
    stable points branch off it there."""
    from fixedpoint_systems import rotation

    Q = torch.tensor(rotation(), dtype=torch.float32)
    g = torch.tensor([1.0, 0.8, 0.6])
    paths = []
    for i, a in enumerate(VALUES):
        rnn = torch.nn.RNN(1, 3, bias=False)
        with torch.no_grad():
            rnn.weight_ih_l0.zero_()
            rnn.weight_hh_l0.copy_(Q @ torch.diag(a * g) @ Q.T)
        paths.append(tmp_path / f"epoch_{i}.pt")
        torch.save(rnn.state_dict(), paths[-1])
    out = tmp_path / "runs.zarr"
    dynprobe.batch([str(p) for p in paths], ["fixedpoints"], out, workers=1, nonlinearity="tanh",
                   probe_params={"fixedpoints": {"rounds": 2, "batch": 64}})
    with pytest.warns(RuntimeWarning, match="differ in size"):  # point counts differ: padded along point
        tree = dynprobe.open_batch(out)
    ds = tree["fixedpoints"].ds
    assert ds.epoch.values.tolist() == list(range(len(VALUES)))
    tr = track_fixed_points(ds)
    # open_batch tracks them itself (Probe(across=...)): the same tracks, under fixedpoints/tracks
    auto = tree["fixedpoints/tracks"].to_dataset()
    assert set(auto.data_vars) == set(tr.data_vars) and auto.attrs == tr.attrs
    for name in tr.data_vars:
        xr.testing.assert_identical(auto[name].reset_coords(drop=True), tr[name].reset_coords(drop=True))
    origin = int(tr.track_id.values[0, np.nanargmin(np.linalg.norm(ds.state.values[0], axis=-1))])
    assert tr.track_present.values[origin].all()
    assert tr.track_stable.values[origin].tolist() == [True, True] + [False] * 5
    born = np.flatnonzero(tr.track_born.values == 2)
    assert len(born) == 2 and (tr.track_parent.values[born] == origin).all() and tr.track_stable.values[born, 2].all()
