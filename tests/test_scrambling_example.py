"""The CI-sized run of ``examples/scrambling_fig3.py`` and the fact its explanation rests on.

The example claims that the notebook's test, "more fixed points of f⁴ than of f on [−1, 1]", holds
exactly when some point of least period 2 or 4 lies in [−1, 1]. Checked here per network, from
two separate runs (counts on the window; orbits on the whole line).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import dynprobe

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scrambling_fig3.py"


def load_example():
    spec = importlib.util.spec_from_file_location("scrambling_fig3_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_test_is_a_period_two_or_four_point_in_the_window():
    system = dynprobe.model("fig3", row=1, networks=3000, seed=11)
    window = dynprobe.run("period3", system, period=4, interval=(-1.0, 1.0))
    line = dynprobe.run("period3", system, period=(2, 4))
    notebook = (window.fixed_points.sel(period=4) > window.fixed_points.sel(period=1)).values
    pts = line.orbit_state.values[..., 0]
    inside = (np.abs(pts) <= 1.0) & np.isin(line.orbit_period.values, [2, 4])[:, None]
    has_point = np.zeros(3000, dtype=bool)
    has_point[line.orbit_network.values[inside.any(1)]] = True
    np.testing.assert_array_equal(notebook, has_point)
    assert notebook.mean() > 20 * line.li_yorke.values.mean()  # the notebook's column is not Pr[period 3]


def test_example_quick_run(tmp_path):
    row = load_example().measure(400, 3, row=3)
    assert row["method"] == "exact" and row["p3"] <= row["p2"]  # Sharkovsky: period 3 forces period 2
    figure = tmp_path / "fig.png"
    # seed 1: among 500 networks of row 1 there is a Li-Yorke one (seed 0 has none in any row, and
    # the example then writes no figure), so the figure must be written
    out = subprocess.run([sys.executable, str(EXAMPLE), "--networks", "500", "--seed", "1", "--figure", str(figure)],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    assert "Pr[period 3] %" in out and "overwrote its array of first iterates" in out
    assert len([line for line in out.splitlines() if line[:2] in {"1:", "2:", "3:", "4:", "5:"}]) == 5
    found = re.search(r"figure: .* \(row (\d), network (\d+)\)", out)
    assert found, out[-300:]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    # the network drawn is one with a period-3 orbit (the figure shows f and f^3 of a Li-Yorke map)
    row, i = int(found.group(1)), int(found.group(2))
    system = dynprobe.model("fig3", row=row, networks=500, seed=1 + row)
    assert bool(dynprobe.run("period3", system.network(i)).li_yorke)
