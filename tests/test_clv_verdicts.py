"""What ``diagnose`` says about the splitting: hyperbolic (a cat map), close approaches and near
tangencies (linear maps whose eigenvectors meet at a chosen angle), nothing to split (a
contracting map), undetermined (all computed directions expand), and the Hénon map's tangencies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from systems import henon_system, linear_system

import dynprobe
from dynprobe.registry import registry

RUN = {"burn_in": 0, "steps": 20, "forward_transient": 60, "backward_transient": 60}


def _two_directions(angle: float) -> dynprobe.System:
    """h' = A h with eigenvalues 2 and 0.5 whose eigenvectors meet at ``angle``, started at the origin."""
    E = np.array([[1.0, math.cos(angle)], [0.0, math.sin(angle)]])
    A = torch.tensor(E @ np.diag([2.0, 0.5]) @ np.linalg.inv(E))
    return linear_system(A).with_init(dynprobe.InitialState(center=torch.zeros(2), scale=0.0))


def _cat_map() -> dynprobe.System:
    """The Anosov automorphism (x, y) ↦ (3x + y, 2x + y) mod 1: chaotic and uniformly hyperbolic,
    with eigenvalues 2 ± √3 at every point."""
    M = torch.tensor([[3.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    return dynprobe.System.from_step(lambda h, u, p: torch.remainder(h @ p["M"].T, 1.0), state_dim=2,
                                     params={"M": M}, init=dynprobe.InitialState(low=0.0, high=1.0), name="cat_map")


def _verdict(ds):
    (v,) = registry().probe("clv").verdicts(ds)
    assert v.topic == "hyperbolicity"
    return v


@pytest.mark.parametrize("angle, value, words", [
    (0.8, "hyperbolic", "hyperbolic along the run"),
    (0.03, "close_approaches", "close approaches"),
    (1e-3, "near_tangency", "near tangencies"),
], ids=["apart", "close", "tangent"])
def test_verdict_follows_the_angle_between_the_eigenvectors(angle, value, words):
    ds = dynprobe.run("clv", _two_directions(angle), **RUN)
    np.testing.assert_allclose(ds.angle.values, angle, rtol=1e-9)
    assert ds.hyperbolicity.item() == value
    v = _verdict(ds)
    assert v.verdict.startswith(words) and f"{angle:.2g}" in v.evidence, v


def test_the_cat_map_is_hyperbolic_at_every_point():
    ds = dynprobe.run("clv", _cat_map(), samples=3, **RUN)
    M = np.array([[3.0, 1.0], [2.0, 1.0]])
    _, E = np.linalg.eig(M)
    want = math.acos(abs(E[:, 0] @ E[:, 1]) / np.linalg.norm(E[:, 0]) / np.linalg.norm(E[:, 1]))
    np.testing.assert_allclose(ds.angle.values, want, rtol=1e-9)
    np.testing.assert_allclose(ds.exponents.values, np.broadcast_to(np.log([2 + math.sqrt(3), 2 - math.sqrt(3)]), (3, 2)),
                               atol=0.05)  # O(1/T) transient of the random initial tangents
    assert ds.hyperbolicity.item() == "hyperbolic"


def test_nothing_to_split_and_undetermined_splits_say_why():
    contracting = linear_system(torch.diag(torch.tensor([0.9, 0.5], dtype=torch.float64)))
    v = _verdict(dynprobe.run("clv", contracting.with_init(dynprobe.InitialState(center=torch.zeros(2), scale=0)), **RUN))
    assert v.verdict == "no expanding direction: nothing to split"
    expanding = linear_system(torch.diag(torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64)))
    ds = dynprobe.run("clv", expanding.with_init(dynprobe.InitialState(center=torch.zeros(3), scale=0)), k=2, **RUN)
    assert np.isnan(ds.angle.values).all() and (ds.unstable_dim.values == 2).all()
    v = _verdict(ds)
    assert "all 2 computed directions expand" in v.verdict and "k > 2" in v.evidence


def test_diagnose_reports_the_hyperbolicity_verdict():
    result = dynprobe.diagnose(_cat_map(), probes=["clv", "finite_time"])
    assert not result.failed, result.failed
    topics = {row[0]: row for row in result.rows()}
    assert topics["hyperbolicity"][1].startswith("hyperbolic along the run")
    assert "Ginelli" in topics["hyperbolicity"][3] and "fluctuations" in topics
    assert result.params["clv"]["k"] is None  # N = 2: every vector


@pytest.mark.slow
def test_henon_has_near_tangencies():
    """The Hénon attractor has homoclinic tangencies (Ginelli et al. 2007, Fig. 2): over 4000 steps
    × 2 samples the angle comes below 0.01 rad (0.3 % of times on a shorter run here)."""
    ds = dynprobe.run("clv", henon_system(), steps=4000, samples=2)
    assert ds.hyperbolicity.item() == "near_tangency"
    assert float(ds.min_angle.min()) < 0.01 and float(np.median(ds.angle.values)) > 0.5
