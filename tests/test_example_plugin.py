"""A third-party plugin (examples/dynprobe-example-plugin) works with no change to dynprobe.

CI installs it and sets DYNPROBE_EXPECT_EXAMPLE=1, so there its absence is a failure.
"""

from __future__ import annotations

import os

import pytest

import dynprobe
from dynprobe.testing import check_probe


def test_example_plugin_probe_is_discovered_and_conforms(fresh_registry):
    if "state_stats" not in fresh_registry.probes():
        if os.environ.get("DYNPROBE_EXPECT_EXAMPLE"):
            pytest.fail("examples/dynprobe-example-plugin is not installed; pip install ./examples/dynprobe-example-plugin")
        pytest.skip("example plugin not installed (pip install ./examples/dynprobe-example-plugin)")
    probe = fresh_registry.probe("state_stats")
    assert probe.plugin == "example" and probe.version.startswith("dynprobe-example-plugin")
    ds = check_probe("state_stats", dynprobe.load_system("lstm2d_chaotic"), steps=200)
    assert ds.sizes["unit"] == 4 and float(ds.jacobian_norm) > 0


def test_example_plugin_jacobian_norm_is_the_mean_spectral_norm_at_evenly_spaced_states(fresh_registry):
    if "state_stats" not in fresh_registry.probes():
        pytest.skip("example plugin not installed (pip install ./examples/dynprobe-example-plugin)")
    import torch

    system = dynprobe.load_system("lstm2d_chaotic")
    ds = dynprobe.run("state_stats", system, steps=90, burn_in=10, states=4)
    traj = system.trajectory(system.initial_state(1, seed=0), 100)[10:, 0]  # [90, N]
    # independent oracle: reverse-mode autograd Jacobians at steps 0, 30, 59, 89 of the record
    norms = [torch.linalg.svdvals(torch.autograd.functional.jacobian(lambda h: system.map(h, 0), traj[t]))[0]
             for t in (0, 30, 59, 89)]
    assert float(ds.jacobian_norm) == pytest.approx(float(torch.stack(norms).mean()), rel=1e-12)
    suggest = fresh_registry.probe("state_stats").suggest
    assert suggest(system) == {"states": 20}
    assert suggest(dynprobe.wrap(torch.nn.GRU(2, 512))) == {"states": 11}
