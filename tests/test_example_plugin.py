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
