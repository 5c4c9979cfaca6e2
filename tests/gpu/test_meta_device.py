"""What can be checked of device independence without a GPU: the hot loops run on PyTorch's
``meta`` device, whose tensors have shapes but no values — any host round-trip (``.item()``,
``bool(tensor)``, ``.tolist()``, a copy to numpy) raises there. So a loop that completes on
``meta`` never synchronizes with the host, on any device."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe import tangent as T
from dynprobe.linearize import TangentMap
from dynprobe.qr import orthonormalize

META = torch.device("meta")


def _meta_system(module: nn.Module, drive=None) -> dynprobe.System:
    system = dynprobe.wrap(module, dtype=torch.float64, drive=drive)
    return system.to(device=META)


@pytest.mark.parametrize("method", ["householder", "cholesky"])
@pytest.mark.parametrize("make", [lambda: nn.GRU(2, 8), lambda: nn.LSTM(3, 4, num_layers=2)], ids=["GRU", "LSTM2"])
def test_the_qr_block_loop_never_touches_the_host(make, method):
    system = _meta_system(make(), dynprobe.constant(0.5))
    n = system.state_dim
    h = torch.zeros(2, n, dtype=torch.float64, device=META)
    Q = torch.zeros(2, n, 3, dtype=torch.float64, device=META)
    tangent = TangentMap(system)  # traces on meta are not checkable: it runs eagerly
    loop = T._Loop(tangent.runner(h, Q, 0), h, Q, steps=60, start=0, reorth_every=3, blocks=4,
                   checkpoints=T.checkpoint_times(60))
    for b in range(4):
        loop.block(b, method)  # would raise on any host synchronization
    assert loop.sums.device == META and loop.done == 60 and loop.trace


def test_a_sequence_drive_is_moved_to_the_device_once():
    U = torch.randn(50, 2, 2, dtype=torch.float64)
    system = _meta_system(nn.GRU(2, 8), dynprobe.sequence(U))
    first = system.drive.external(system, 0, (2,))
    second = system.drive.external(system, 1, (2,))
    assert first.device == META and second.device == META
    ((source, converted),) = [v for k, v in system.drive._converted.items() if k[1] == META]
    assert source is U and converted.shape == U.shape  # one copy of the whole sequence, not one per step


def test_orthonormalize_keeps_its_breakdown_flag_on_the_device():
    A = torch.zeros(3, 16, 4, dtype=torch.float64, device=META)
    Q, log_r, ok = orthonormalize(A, "cholesky")
    assert Q.device == log_r.device == ok.device == META and ok.shape == (3,)
