"""Every example script has a real command line: ``--help`` prints usage and writes nothing,
and the defaults of the command line are those of the function it calls."""

from __future__ import annotations

import importlib.util
import inspect
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_cli_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_every_example_parses_help(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load(path)
    with pytest.raises(SystemExit) as done:
        module.parser().parse_args(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--help" in out
    with pytest.raises(SystemExit) as bad:
        module.parser().parse_args(["--no-such-option"])
    assert bad.value.code == 2


@pytest.mark.parametrize(("script", "function"), [("critical_init", "run"), ("meanfield_minimalrnn", "run"),
                                                  ("attractors_lstm", "main"), ("diagnose_sine_lstm", "main"),
                                                  ("wcrnn_fading_memory", "main")])
def test_command_line_defaults_are_the_functions_defaults(script: str, function: str) -> None:
    module = _load(EXAMPLES / f"{script}.py")
    args = vars(module.parser().parse_args([]))
    for name, param in inspect.signature(getattr(module, function)).parameters.items():
        if name in args and param.default is not param.empty:
            assert args[name] == type(args[name])(param.default), f"{script} --{name}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_script_help_creates_nothing(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Run as ``python examples/X.py --help`` (the ``__main__`` block, in this process): usage,
    exit 0, and no file or directory — critical_init.py used to create one named ``--help``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_help_in_a_fresh_interpreter(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "critical_init.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout
    assert list(tmp_path.iterdir()) == []
