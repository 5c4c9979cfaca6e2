"""``scifar10``: grayscale sequential CIFAR-10 (Long Range Arena's "Image" task) from local files.

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §4: the 32×32 images turned into
series of 1024 gray-scaled pixels, as for sMNIST, classified into 10 classes. Read from the
standard CIFAR-10 python batches (``data_batch_1`` … ``data_batch_5``, ``test_batch``) in
``root``, ``$DYNPROBE_DATA`` or ``./data`` (or their ``cifar-10-batches-py/``), with an unpickler
that admits nothing but numpy arrays.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from dynprobe import DatasetSpec
from dynprobe.errors import ProbeParameterError
from dynprobe.tasks import SequenceData

from .files import data_dirs, find_file, missing, read_cifar_batch

__all__ = ["scifar10", "GRAY_WEIGHTS", "DATASETS"]

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
"""ITU-R 601 luma weights for R, G, B (what ``tf.image.rgb_to_grayscale`` uses)."""

_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def scifar10(root: str | os.PathLike[str] | None = None, split: Literal["train", "test"] = "test",
             samples: int | None = None) -> SequenceData:
    """Grayscale sequential CIFAR-10: 1024 steps of one pixel each, in scan-line order.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=1024, channel=1]`` = (0.2989 R + 0.5870 G + 0.1140 B) / 255,
        ``targets [sample]`` class labels, ``task="classification"``, 10 classes; the first
        ``samples`` images of ``split`` (all when ``None``). ``attrs["source"]`` names the files.

    References
    ----------
    Fading-memory paper §4 (sCIFAR10); Tay et al. (2020), Long Range Arena.
    """
    if split not in _BATCHES:
        raise ProbeParameterError(f"dataset 'scifar10': split must be 'train' or 'test', got {split!r}")
    dirs = data_dirs(root, ("cifar-10-batches-py",))
    first = find_file(dirs, _BATCHES[split][:1])
    if first is None:
        raise missing(f"dataset 'scifar10': CIFAR-10 {split} files", dirs,
                      f"the CIFAR-10 python batches ({', '.join(_BATCHES[split])})")
    paths = [first.parent / name for name in _BATCHES[split]]
    absent = [p.name for p in paths if not p.is_file()]
    if absent:
        raise missing(f"dataset 'scifar10': CIFAR-10 {split} files", [first.parent], f"the missing batches {', '.join(absent)}")
    images, labels, have = [], [], 0
    for path in paths:
        if samples is not None and have >= samples:
            break
        data, lab = read_cifar_batch(path)
        images.append(data)
        labels.append(lab)
        have += data.shape[0]
    data, lab = np.concatenate(images), np.concatenate(labels)
    n = data.shape[0] if samples is None else int(samples)
    if not 1 <= n <= data.shape[0] or (samples is not None and n > data.shape[0]):
        raise ProbeParameterError(f"dataset 'scifar10': samples={samples} but the {split} batches hold {data.shape[0]} images")
    if lab.size and (lab.min() < 0 or lab.max() > 9):
        raise ProbeParameterError(f"dataset 'scifar10': labels outside 0..9 in {first.parent}")
    rgb = data[:n].reshape(n, 3, 1024).astype(np.float32)
    gray = np.tensordot(np.asarray(GRAY_WEIGHTS, dtype=np.float32), rgb, axes=([0], [1])) / 255.0
    return SequenceData(torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(-1), torch.from_numpy(lab[:n]),
                        "classification", "scifar10", num_classes=10,
                        attrs={"source": str(first.parent), "split": split, "grayscale": "ITU-R 601 luma"})


DATASETS = [
    DatasetSpec(name="scifar10", factory=scifar10, doc="grayscale sequential CIFAR-10 (1024 steps) from local batches",
                reference="fading-memory paper §4; Long Range Arena (Tay et al. 2020)"),
]
