"""Size-scaled defaults of the bifurcation and smoothness probes (what ``diagnose`` runs): the
small models keep their grids, the 0.8 M-parameter benchmark models get the byte-bounded ones."""

from __future__ import annotations

import torch
from torch import nn

import dynprobe
from dynprobe.plugins.bifurcation import smoothness_suggest, suggest


def _count(values: str) -> int:
    return int(values.split(":")[2])


def test_small_models_keep_their_grids() -> None:
    chaotic = dynprobe.load_system("lstm2d_chaotic")
    assert suggest(chaotic)["values"] == "0.5:1.5:201" and suggest(chaotic)["samples"] == 8
    assert smoothness_suggest(chaotic)["values"] == "0.5:1.5:401"
    gru64 = dynprobe.wrap(nn.GRU(8, 64).double())
    assert suggest(gru64)["values"] == "0.5:1.5:201" and smoothness_suggest(gru64)["values"] == "0.5:1.5:61"


def test_large_models_get_byte_bounded_odd_grids_through_one() -> None:
    torch.manual_seed(0)
    lstm = dynprobe.wrap(nn.LSTM(16, 256, num_layers=2).double())  # N = 1024, 0.8 M parameters
    bif, smooth = _count(suggest(lstm)["values"]), _count(smoothness_suggest(lstm)["values"])
    assert (bif, smooth) == (3, 31)
    for count in (bif, smooth):
        assert count % 2 == 1 and 1.0 in torch.linspace(0.5, 1.5, count).tolist()
    # float32 weights are half the bytes: twice the grid (up to the caps)
    assert _count(smoothness_suggest(lstm.to(torch.float32))["values"]) == 61
