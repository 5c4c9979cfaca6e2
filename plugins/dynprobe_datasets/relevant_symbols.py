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

__all__ = ["relevant_symbols", "DATASETS", "SYMBOLS", "CLASSES"]

SYMBOLS = ("p", "q", "a", "b", "c", "d")
CLASSES = ("pp", "pq", "qp", "qq")
T1 = (10, 18)
T2 = (40, 49)


def relevant_symbols(
    n_sequences: int = 1000,
    length: int = 100,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """The few-relevant-symbols classification task.

    Parameters
    ----------
    n_sequences
        Number of sequences B.
    length
        Sequence length T >= 50 (t₂ can be 49).
    seed, dtype
        Same seed, same data; input dtype.

    Returns
    -------
    dict
        ``inputs [T, B, 6]`` one-hot over (p, q, a, b, c, d); ``labels [B]`` in 0 … 3 for
        (p,p), (p,q), (q,p), (q,q) = 2·[first is q] + [second is q]; ``positions [B, 2]`` (t₁, t₂,
        inclusive ranges [10, 18] and [40, 49]).

    References
    ----------
    Attractors paper §5.2; Hochreiter & Schmidhuber (1997), experiment 6.
    """
    if length < T2[1] + 1:
        raise ProbeParameterError(f"relevant_symbols: length must be >= {T2[1] + 1} (t2 can be {T2[1]}), got {length}")
    if n_sequences < 1:
        raise ProbeParameterError(f"relevant_symbols: n_sequences must be >= 1, got {n_sequences}")
    gen = torch.Generator().manual_seed(int(seed))
    B = n_sequences
    symbols = torch.randint(2, 6, (length, B), generator=gen)  # distractors a..d
    t1 = torch.randint(T1[0], T1[1] + 1, (B,), generator=gen)
    t2 = torch.randint(T2[0], T2[1] + 1, (B,), generator=gen)
    first = torch.randint(0, 2, (B,), generator=gen)
    second = torch.randint(0, 2, (B,), generator=gen)
    rows = torch.arange(B)
    symbols[t1, rows] = first
    symbols[t2, rows] = second
    inputs = torch.nn.functional.one_hot(symbols, num_classes=len(SYMBOLS)).to(dtype)
    return {"inputs": inputs, "labels": 2 * first + second, "positions": torch.stack([t1, t2], dim=1)}


DATASETS = [
    DatasetSpec(
        name="relevant_symbols",
        factory=relevant_symbols,
        doc="classify by the order of two relevant symbols at t1 in [10, 18], t2 in [40, 49] (4 classes)",
        reference="attractors paper §5.2; Hochreiter & Schmidhuber (1997)",
        defaults={"n_sequences": 1000, "length": 100},
    )
]
