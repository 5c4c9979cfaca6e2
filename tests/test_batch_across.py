"""``Probe(across=...)``: results derived over a batch's checkpoints, added by ``open_batch`` as
``PROBE/NAME`` nodes; a derivation that fails is one warning and costs no result."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from faultkit import expected_norms, norms, plugin, warm_up, write_lstms

import dynprobe
from dynprobe.errors import PluginError


def _growth(stacked: xr.Dataset) -> xr.Dataset:
    """Each parameter's norm at the last checkpoint over the first (dims: param)."""
    ratio = stacked.norm.isel(checkpoint=-1) / stacked.norm.isel(checkpoint=0)
    return xr.Dataset({"growth": ratio.drop_vars([c for c in ratio.coords if c != "param"])})


def _broken(stacked: xr.Dataset) -> xr.Dataset:
    raise ValueError("needs one network")


def test_open_batch_adds_each_probes_derived_results(tmp_path, inline_registry):
    warm_up()
    inline_registry(plugin("across", dynprobe.Probe("norms", norms, across={"growth": _growth, "broken": _broken})),
                    entry_points=True)
    paths = write_lstms(tmp_path / "ck", 3)
    assert dynprobe.batch([str(p) for p in paths], ["norms"], tmp_path / "runs.zarr", workers=0).ok == 3
    with pytest.warns(RuntimeWarning, match="norms's 'broken' across the checkpoints failed .ValueError: needs one "
                                            "network.; the results are read without it"):
        tree = dynprobe.open_batch(tmp_path / "runs.zarr")
    want = expected_norms(paths[-1]) / expected_norms(paths[0])
    np.testing.assert_allclose(tree["norms/growth"].ds.growth.values, want, rtol=1e-12)
    assert "norms/broken" not in tree and tree["norms"].ds.norm.shape == (3, len(want))


def test_across_is_checked_at_registration():
    with pytest.raises(PluginError, match="across must map names"):
        dynprobe.Probe("norms", norms, across={"not a name": _growth})
    assert hash(dynprobe.Probe("norms", norms, across={"growth": _growth}))  # still a hashable record
