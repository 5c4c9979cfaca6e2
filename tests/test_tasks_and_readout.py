"""Core: the SequenceData container and nn.Module readouts following the System's dtype."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData


def test_module_readout_follows_system_dtype_without_touching_the_original():
    fc = nn.Linear(8, 3)
    system = dynprobe.wrap(nn.RNN(1, 8), dtype=torch.float64, readout=fc)
    h = torch.randn(4, 8, dtype=torch.float64)
    y = system.output(h)
    assert y.dtype == torch.float64 and fc.weight.dtype == torch.float32
    expected = h @ fc.weight.double().T + fc.bias.double()
    assert torch.allclose(y, expected, atol=1e-6)
    assert system.to(torch.float32).output(h.float()).dtype == torch.float32


def test_sequence_data_shapes_and_dataset_protocol():
    x = torch.randn(5, 7, 2)
    data = SequenceData(x, torch.tensor([0, 1, 2, 0, 1]), "classification", "toy", num_classes=3)
    assert data.dims == {"inputs": ("sample", "time", "channel"), "targets": ("sample",)}
    assert (data.samples, data.steps, data.channels, data.output_size) == (5, 7, 2, 3)
    assert torch.equal(data.time_major()[3, 1], x[1, 3])
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch[0].shape == (4, 7, 2) and batch[1].tolist() == [0, 1, 2, 0]
    assert data.head(2).samples == 2


@pytest.mark.parametrize(
    "inputs, targets, task, classes, fragment",
    [
        (torch.zeros(3, 4), torch.zeros(3, 1), "regression", 0, "[sample, time, channel]"),
        (torch.zeros(3, 4, 1), torch.zeros(2, 1), "regression", 0, "one row per sample"),
        (torch.zeros(3, 4, 1), torch.zeros(3), "classification", 10, "int64"),
        (torch.zeros(3, 4, 1), torch.tensor([0, 1, 10]), "classification", 10, "0..9"),
        (torch.zeros(3, 4, 1), torch.zeros(3, 5, 1), "regression", 0, "per-step targets"),
        (torch.zeros(3, 4, 1), torch.zeros(3, 1), "ranking", 0, "task must be"),
    ],
    ids=["2d-inputs", "row-count", "float-labels", "label-range", "step-count", "task-name"],
)
def test_sequence_data_refuses_bad_shapes_in_one_line(inputs, targets, task, classes, fragment):
    with pytest.raises(ProbeParameterError, match=fragment.replace("[", r"\[").replace("]", r"\]")) as info:
        SequenceData(inputs, targets, task, num_classes=classes)
    assert "\n" not in str(info.value)
