"""CI-sized runs of the mean-field examples: they run, and they write their figures."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_meanfield_minimalrnn_example(tmp_path):
    example = _load("meanfield_minimalrnn")
    paths = example.run(tmp_path, points=4, width=48, networks=2, steps=14)
    assert set(paths) == {"fig1c", "fig1e", "algorithm1"}
    assert all(p.exists() and _is_png(p) for p in paths.values())


def test_critical_init_example(tmp_path):
    example = _load("critical_init")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        paths = example.run(tmp_path, width=24, horizons=(1, 5), samples=1)
    assert _is_png(paths["critical_init"])


@pytest.mark.parametrize("name", ["meanfield_minimalrnn", "critical_init"])
def test_examples_document_what_they_reproduce(name):
    doc = _load(name).__doc__
    assert "mean-field paper" in doc and ".png" in doc
