"""CI-sized run of examples/lyapunov_regularizer.py: the figures and summary are written, and the
penalty moved the trained network's λ₁ toward the target while the unregularized copy's did not."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lyapunov_regularizer.py"


@pytest.mark.slow
def test_lyapunov_regularizer_example_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("lyapunov_regularizer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out", str(tmp_path), "--target", "0"])
    for name in ("loss.png", "exponents.png", "spectrum.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(result))
    lam = result["lambda_1"]  # the lyapunov probe along fresh adding-problem inputs
    assert lam["initial"] < -0.1  # starts ordered, away from the target 0
    assert abs(lam["regularized"]) < 0.8 * abs(lam["initial"]), lam
    assert abs(lam["regularized"]) < abs(lam["baseline"]), lam
    during = result["exponents_during_training"]["regularized"]["mean_over_batch"]
    assert abs(during[-1][0]) < 0.5 * abs(during[0][0]), during
