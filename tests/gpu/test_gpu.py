"""Every probe on a CUDA device: the same numbers as on the CPU, no host round-trip in the hot
loop, and a speed-up where the work is big. Skipped without a GPU (CI has none); run with
``python -m pytest tests/gpu -q`` on a machine that has one.

Equality: float64 on both devices. Maps whose tangent dynamics contract to a fixed point (or
are linear) give the same exponents to rounding; chaotic trajectories separate after a few
dozen steps of different rounding, so there the two estimates are compared by their standard
errors (as ``test_float32_agrees_with_float64`` does across dtypes).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
import torch
from systems import henon_system, linear_system
from torch import nn

import dynprobe
from dynprobe.linearize import TangentMap, qr_positive
from dynprobe.tangent import qr_iterate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = "cuda"


def _both(system: dynprobe.System, probe: str, **params):
    cpu = dynprobe.run(probe, system, **params)
    gpu = dynprobe.run(probe, system.to(device=CUDA), **params)
    assert gpu.attrs["device"].startswith("cuda")
    return cpu, gpu


def _contracting_rnn(n: int = 16) -> dynprobe.System:
    torch.manual_seed(0)
    module = nn.GRU(3, n).double()
    return dynprobe.wrap(module, drive=dynprobe.constant([0.2, -0.1, 0.3]))


def test_lyapunov_on_a_linear_map_is_the_same_on_both_devices():
    A = torch.tensor([[0.9, 5.0, 1.0], [0.0, -0.5, 3.0], [0.0, 0.0, 1.2]], dtype=torch.float64)
    system = linear_system(A).with_init(dynprobe.InitialState(center=torch.zeros(3), scale=0.0))
    cpu, gpu = _both(system, "lyapunov", steps=2000, burn_in=0, samples=2)
    np.testing.assert_allclose(gpu.exponents.values, cpu.exponents.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gpu.exponent_mean.values, np.log([1.2, 0.9, 0.5]), atol=2e-3)


def test_lyapunov_of_a_chaotic_map_agrees_within_its_standard_errors():
    cpu, gpu = _both(henon_system(), "lyapunov", steps=20000, burn_in=500, samples=4)
    sigma = np.hypot(cpu.exponent_stderr.values, gpu.exponent_stderr.values)
    assert np.all(np.abs(gpu.exponent_mean.values - cpu.exponent_mean.values) <= 4 * sigma)
    np.testing.assert_allclose(gpu.exponents.values.sum(-1), math.log(0.3), atol=1e-9)  # Σλ = ln b exactly


@pytest.mark.parametrize(("probe", "params"), [
    ("lyapunov", {"steps": 500, "samples": 2}),
    ("jacobian", {"horizons": (1, 10, 50), "samples": 2}),
    ("entropy", {"samples": 16, "steps": 5}),
    ("period3", {"period": (1, 2), "method": "newton", "starts": 8}),
    ("scrambling", {}),
    ("bifurcation", {"values": "0.5:1.5:5", "samples": 2}),
    ("smoothness", {"values": "0.5:1.5:11", "lengths": (2, 5, 10)}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_every_probe_gives_the_cpu_numbers_on_a_contracting_gru(probe, params):
    cpu, gpu = _both(_contracting_rnn(), probe, **params)
    for name, var in cpu.data_vars.items():
        if var.dtype.kind == "f":
            np.testing.assert_allclose(gpu[name].values, var.values, rtol=1e-8, atol=1e-10, err_msg=name)
        else:
            np.testing.assert_array_equal(gpu[name].values, var.values, err_msg=name)


def test_the_qr_loop_synchronizes_only_per_block():
    system = _contracting_rnn(64).to(device=CUDA)
    tangent = TangentMap(system, trace=True)
    h = system.initial_state(4, seed=0)
    Q = qr_positive(torch.randn(4, 64, 8, dtype=torch.float64, device=CUDA))[0]
    qr_iterate(tangent, h, Q, steps=20)  # traces, compiles, warms up
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            qr_iterate(tangent, h, Q, steps=2000, reorth_every=4, blocks=10)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) <= 10 + 5, [str(w.message) for w in syncs[:5]]  # per block and the final checks


def test_a_large_spectrum_is_faster_on_the_gpu():
    torch.manual_seed(0)
    module = nn.RNN(1, 1024, bias=False).double()
    system = dynprobe.wrap(module)

    def timed(s: dynprobe.System) -> float:
        dynprobe.run("lyapunov", s, k=256, steps=20, burn_in=0)  # trace and warm up
        if s.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        dynprobe.run("lyapunov", s, k=256, steps=200, burn_in=0)
        if s.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    speedup = timed(system) / timed(system.to(device=CUDA))
    print(f"\nlyapunov N=1024 k=256: GPU {speedup:.1f}x the CPU")
    assert speedup > 1.5
