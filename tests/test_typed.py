"""PEP 561: the built wheels carry ``py.typed`` — dynprobe's (which covers ``dynprobe.plugins.*``,
the packages the README tells users to import) and the example third-party plugin's."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(("project", "marker"), [(ROOT, "dynprobe/py.typed"),
                                                 (ROOT / "examples" / "dynprobe-example-plugin",
                                                  "dynprobe_example/py.typed")], ids=["dynprobe", "example-plugin"])
def test_wheel_ships_py_typed(project: Path, marker: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(project)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert marker in names
    if marker.startswith("dynprobe/"):  # the marker sits at the top of the one package that holds every plugin
        assert any(n.startswith("dynprobe/plugins/lyapunov/") for n in names)
        assert not [n for n in names if n.endswith("/__init__.py") and n.split("/")[0] != "dynprobe"]
