"""The CI-sized run of ``examples/attractors_lstm.py`` (Fig. 1 and the bifurcation over epochs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "attractors_lstm.py"


def load_example():
    spec = importlib.util.spec_from_file_location("attractors_lstm_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_quick_run(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    result = load_example().main(tmp_path, quick=True)
    one, four = result["fig1"], result["fig4"]
    assert 0.85 < one["chaotic_from"] < 0.95 and 1.4 < one["chaotic_to"] < 1.5
    for fig in (one["figure"], four["figure"]):
        assert fig.exists() and fig.stat().st_size > 30_000
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert saved == ["epoch_00000.pt", "epoch_00010.pt", "epoch_00020.pt", "epoch_00030.pt"]
    ds = four["dataset"]
    assert list(ds.param.values) == [0, 10, 20, 30] and ds.param.attrs["long_name"] == "training epoch"
    assert ds.regime.values[0] == "fixed_point"  # the untrained network rests at a fixed point
    # the readout projection is each checkpoint's own head applied to its own trajectory
    module = load_example()
    system = module.load_checkpoint(tmp_path / "checkpoints" / "epoch_00030.pt", hidden=8)
    h0 = system.initial_state(4, seed=0)
    traj = system.trajectory(h0, 299)[200:300]
    with torch.no_grad():
        want = system.output(traj)[..., 0].T.numpy()
    np.testing.assert_allclose(ds.orbit.sel(param=30).values, want, atol=1e-10)
