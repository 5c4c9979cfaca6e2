"""Helpers of the fault-injection tests (``from faultkit import ...``): cheap probes, broken
plugins, small checkpoints, and ways to damage a store."""

from __future__ import annotations

import os
import threading
import time
import types
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

import dynprobe


def warm_up() -> None:
    """Pay the first-call costs (xarray imports dask on its first Variable, seconds on a busy
    machine) before a test measures anything against a short time limit."""
    system = dynprobe.System.from_step(lambda h, u, p: 0.5 * h, state_dim=1, params={"w": torch.ones(1)})
    norms(system)


def plugin(name: str, *probes: object) -> types.ModuleType:
    """A plugin module providing ``probes``."""
    mod = types.ModuleType(name)

    @dynprobe.hookimpl
    def dynprobe_probes() -> list:
        return list(probes)

    mod.dynprobe_probes = dynprobe_probes
    return mod


def norms(system: dynprobe.System, *, scale: float = 1.0) -> xr.Dataset:
    """Frobenius norm of every parameter tensor, times ``scale`` (cheap, exact, deterministic)."""
    names = sorted(system.params)
    values = np.array([float(torch.linalg.norm(system.params[n].double())) * scale for n in names])
    return xr.Dataset({"norm": (("param",), values, {"long_name": "parameter norm", "units": "1"})},
                      coords={"param": ("param", np.array(names, dtype=object), {"long_name": "parameter", "units": "1"})})


def expected_norms(path: Path) -> np.ndarray:
    """What :func:`norms` must give for a checkpoint, from the file itself."""
    from dynprobe.checkpoints import load_checkpoint

    system = dynprobe.wrap(load_checkpoint(str(path)), dtype=torch.float64)
    return norms(system).norm.values


def hang(system: dynprobe.System, *, seconds: float = 3600.0) -> xr.Dataset:
    """Never returns (in time): a Python loop that only a cancellation stops."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return xr.Dataset()


def sleeper(system: dynprobe.System, *, seconds: float = 3600.0) -> xr.Dataset:
    """Blocked in one native call: cannot be cancelled, only abandoned."""
    threading.Event().wait(seconds)
    return xr.Dataset()


def exits(system: dynprobe.System, *, code: int = 7) -> xr.Dataset:
    """A probe that calls sys.exit."""
    raise SystemExit(code)


def unholdable(system: dynprobe.System, *, seed: int = 0) -> xr.Dataset:
    """A Dataset netCDF cannot hold: an attr that is a dict of dicts on a variable."""
    return xr.Dataset({"x": ((), 1.0, {"long_name": "x", "units": "1", "nested": {"a": {"b": 1}}})})


def write_lstms(folder: Path, n: int, *, hidden: int = 3) -> list[Path]:
    """``n`` small LSTM state_dict checkpoints ``epoch_00.pt`` ... (seeded, distinct)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for epoch in range(n):
        torch.manual_seed(epoch)
        path = folder / f"epoch_{epoch:02d}.pt"
        torch.save(nn.LSTM(1, hidden).state_dict(), path)
        out.append(path)
    return out


def result_folder(store: Path, checkpoint: Path, probe: str) -> Path:
    from dynprobe.batching.records import checkpoint_key

    return store / "checkpoints" / checkpoint_key(os.path.abspath(checkpoint)) / probe


def chunk_files(folder: Path, array: str) -> list[Path]:
    return sorted(p for p in (folder / array).rglob("*") if p.is_file() and p.name != "zarr.json")


def truncate(path: Path, keep: int = 9) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def flip_bytes(path: Path, at: int = -6, count: int = 2) -> None:
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[at + i] ^= 0xFF
    path.write_bytes(bytes(data))
