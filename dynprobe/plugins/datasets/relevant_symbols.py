"""``relevant_symbols``: classify a sequence by the order of two widely separated symbols.

Hochreiter & Schmidhuber (1997); attractors paper §5.2: sequences over {p, q, a, b, c, d}, one-hot
encoded; a, b, c, d are distractors; the relevant symbols (p or q) appear only at t₁ ∈ [10, 18]
and t₂ ∈ [40, 49]; the class is the ordered pair — (p, p), (p, q), (q, p), (q, q) — so the network
has to hold the first symbol for at least 22 steps and until the end of the sequence.
"""

from __future__ import annotations

import torch

from dynprobe import DatasetSpec
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData

__all__ = ["relevant_symbols", "DATASETS", "SYMBOLS", "CLASSES"]

SYMBOLS = ("p", "q", "a", "b", "c", "d")
CLASSES = ("pp", "pq", "qp", "qq")
T1 = (10, 18)
T2 = (40, 49)


def relevant_symbols(T: int = 100, samples: int = 1000, seed: int = 0) -> SequenceData:
    """The few-relevant-symbols classification task.

    Parameters
    ----------
    T
        Sequence length, >= 50 (t₂ can be 49); the paper uses 50 … 500.
    samples
        Number of sequences.
    seed
        Same seed ⇒ same data.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=T, channel=6]`` one-hot over (p, q, a, b, c, d); ``targets [sample]``
        int64 in 0 … 3 for (p,p), (p,q), (q,p), (q,q) = 2·[first is q] + [second is q];
        ``task="classification"``, ``num_classes=4``. The relevant positions are drawn from the
        inclusive ranges t₁ ∈ [10, 18], t₂ ∈ [40, 49].

    References
    ----------
    Attractors paper §5.2; Hochreiter & Schmidhuber (1997), experiment 6.

    Example
    -------
    >>> data = dynprobe.dataset("relevant_symbols", T=200, samples=1000)
    """
    if T < T2[1] + 1:
        raise ProbeParameterError(f"dataset 'relevant_symbols': T must be >= {T2[1] + 1} (t2 can be {T2[1]}), got {T}")
    if samples < 1:
        raise ProbeParameterError(f"dataset 'relevant_symbols': samples must be >= 1, got {samples}")
    gen = torch.Generator().manual_seed(int(seed))
    symbols = torch.randint(2, 6, (samples, T), generator=gen)  # distractors a..d
    t1 = torch.randint(T1[0], T1[1] + 1, (samples,), generator=gen)
    t2 = torch.randint(T2[0], T2[1] + 1, (samples,), generator=gen)
    first = torch.randint(0, 2, (samples,), generator=gen)
    second = torch.randint(0, 2, (samples,), generator=gen)
    rows = torch.arange(samples)
    symbols[rows, t1] = first
    symbols[rows, t2] = second
    inputs = torch.nn.functional.one_hot(symbols, num_classes=len(SYMBOLS)).float()
    return SequenceData(inputs, 2 * first + second, "classification", "relevant_symbols", num_classes=len(CLASSES),
                        attrs={"T": int(T), "seed": int(seed), "symbols": "".join(SYMBOLS), "classes": ",".join(CLASSES),
                               "t1": f"{T1[0]}..{T1[1]}", "t2": f"{T2[0]}..{T2[1]}", "source": "synthetic"})


DATASETS = [
    DatasetSpec(
        name="relevant_symbols",
        factory=relevant_symbols,
        doc="classify by the order of two relevant symbols at t1 in [10, 18], t2 in [40, 49] (4 classes), any T >= 50",
        reference="attractors paper §5.2; Hochreiter & Schmidhuber (1997)",
    )
]
