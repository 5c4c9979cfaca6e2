"""``adding``: the adding problem (Hochreiter & Schmidhuber 1997).

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §4, "ADD" of lengths 100, 200,
400, 800: a two-channel sequence — values U[0, 1] and a 0/1 cue with exactly one cue in the first
half and one in the second — and the target is the sum of the two cued values (regression, RMS loss).
"""

from __future__ import annotations

import torch

from dynprobe import DatasetSpec
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData

__all__ = ["adding", "DATASETS"]


def adding(T: int = 100, samples: int = 1000, seed: int = 0) -> SequenceData:
    """The adding problem of length ``T``.

    Parameters
    ----------
    T
        Sequence length (the paper uses 100, 200, 400, 800; any T >= 2 works).
    samples
        Number of sequences.
    seed
        Same seed ⇒ same data.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=T, channel=2]`` (channel 0: values U[0, 1]; channel 1: cue 0/1, one
        cue at a time in [0, T//2) and one in [T//2, T)); ``targets [sample, output=1]`` the sum of
        the two cued values; ``task="regression"``.

    References
    ----------
    Fading-memory paper §4 (ADD); Hochreiter & Schmidhuber (1997).

    Example
    -------
    >>> data = dynprobe.dataset("adding", T=200, samples=128)
    """
    if T < 2 or samples < 1:
        raise ProbeParameterError(f"dataset 'adding': need T >= 2 and samples >= 1, got T={T}, samples={samples}")
    gen = torch.Generator().manual_seed(int(seed))
    values = torch.rand(samples, T, generator=gen)
    half = T // 2
    first = torch.randint(0, half, (samples,), generator=gen)
    second = torch.randint(half, T, (samples,), generator=gen)
    cue = torch.zeros(samples, T)
    rows = torch.arange(samples)
    cue[rows, first] = 1.0
    cue[rows, second] = 1.0
    target = (values[rows, first] + values[rows, second]).unsqueeze(-1)
    return SequenceData(torch.stack([values, cue], dim=-1), target, "regression", "adding",
                        attrs={"T": int(T), "seed": int(seed), "source": "synthetic"})


DATASETS = [
    DatasetSpec(
        name="adding",
        factory=adding,
        doc="adding problem: sum of the two cued U[0,1] values (one cue per half), any length T",
        reference="fading-memory paper §4; Hochreiter & Schmidhuber (1997)",
    )
]
