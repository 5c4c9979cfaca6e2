"""``smnist`` / ``psmnist``: sequential and permuted-sequential MNIST from local files.

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §4: the 28×28 pixels of an MNIST
digit presented in scan-line order (top left to bottom right) as a 784-step series, classified
at the end (cross-entropy); psMNIST applies one fixed random permutation to the pixel order.
Mean-field paper §4.2: 784/T pixels per step. The files are the standard IDX files (optionally
gzipped) or a ``mnist.npz`` (``x_train, y_train, x_test, y_test``), read from ``root``,
``$DYNPROBE_DATA`` or ``./data`` (also their ``mnist/`` and ``MNIST/raw/`` sub-directories).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dynprobe import DatasetSpec
from dynprobe.errors import DatasetError, ProbeParameterError
from dynprobe.tasks import SequenceData

from .files import data_dirs, find_file, missing, read_idx

__all__ = ["load_mnist", "smnist", "psmnist", "DATASETS"]

Split = Literal["train", "test"]
_PREFIX = {"train": "train", "test": "t10k"}
_PUT = ("train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
        "t10k-labels-idx1-ubyte[.gz] (LeCun's MNIST files) or mnist.npz with x_train, y_train, x_test, y_test")


def _idx_names(prefix: str, kind: str, rank: int) -> list[str]:
    stems = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    return [s + ext for s in stems for ext in ("", ".gz")]


def load_mnist(root: str | os.PathLike[str] | None = None, split: Split = "test", *,
               name: str = "mnist") -> tuple[np.ndarray, np.ndarray, Path]:
    """MNIST images ``[n, H, W]`` uint8, labels ``[n]`` int64, and the file they came from
    (``name``: the data set asking, for error messages)."""
    if split not in _PREFIX:
        raise ProbeParameterError(f"MNIST: split must be 'train' or 'test', got {split!r}")
    dirs = data_dirs(root, ("mnist", "MNIST/raw"))
    images = find_file(dirs, _idx_names(_PREFIX[split], "images", 3))
    if images is not None:
        labels = find_file([images.parent], _idx_names(_PREFIX[split], "labels", 1))
        if labels is None:
            raise missing(f"dataset {name!r}: MNIST {split} labels", [images.parent],
                          f"{_PREFIX[split]}-labels-idx1-ubyte[.gz] next to {images.name}")
        x, y = read_idx(images), read_idx(labels)
        source = images
    else:
        npz = find_file(dirs, ["mnist.npz"])
        if npz is None:
            raise missing(f"dataset {name!r}: MNIST {split} files", dirs, _PUT)
        with np.load(npz, allow_pickle=False) as f:
            if f"x_{split}" not in f or f"y_{split}" not in f:
                raise DatasetError(f"{npz}: has {sorted(f.files)}; expected x_train, y_train, x_test, y_test")
            x, y = f[f"x_{split}"], f[f"y_{split}"]
        source = npz
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DatasetError(
            f"{source}: images {list(x.shape)} and labels {list(y.shape)} do not pair up; expected [n, H, W] and [n]"
        )
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DatasetError(f"{source}: labels outside 0..9")
    return x.astype(np.uint8, copy=False), y, source


def _sequential(name: str, root: str | os.PathLike[str] | None, split: Split, samples: int | None,
                pixels_per_step: int, permutation_seed: int | None) -> SequenceData:
    x, y, source = load_mnist(root, split, name=name)
    n = x.shape[0] if samples is None else int(samples)
    if not 1 <= n <= x.shape[0]:
        raise ProbeParameterError(f"dataset {name!r}: samples={samples} but {source} holds {x.shape[0]} images")
    pixels = x[:n].reshape(n, -1)
    length = pixels.shape[1]
    if pixels_per_step < 1 or length % pixels_per_step:
        raise ProbeParameterError(
            f"dataset {name!r}: pixels_per_step={pixels_per_step} must divide the {length} pixels (e.g. 1, 4, 7, 28)"
        )
    attrs: dict[str, str | int | float] = {"source": str(source), "split": split, "pixels_per_step": int(pixels_per_step)}
    if permutation_seed is not None:
        perm = np.random.default_rng(int(permutation_seed)).permutation(length)
        pixels = pixels[:, perm]
        attrs["permutation_seed"] = int(permutation_seed)
    inputs = torch.from_numpy(pixels.astype(np.float32) / 255.0).reshape(n, length // pixels_per_step, pixels_per_step)
    return SequenceData(inputs, torch.from_numpy(y[:n]), "classification", name, num_classes=10, attrs=attrs)


def smnist(root: str | None = None, split: Split = "test", samples: int | None = None,
           pixels_per_step: int = 1) -> SequenceData:
    """Sequential MNIST: pixels in scan-line order, ``pixels_per_step`` at a time.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=784/pixels_per_step, channel=pixels_per_step]`` in [0, 1],
        ``targets [sample]`` digit labels, ``task="classification"``, 10 classes; the first
        ``samples`` images of ``split`` (all when ``None``). ``attrs["source"]`` names the file.

    References
    ----------
    Fading-memory paper §4 (sMNIST); mean-field paper §4.2 (784/T pixels per step).
    """
    return _sequential("smnist", root, split, samples, pixels_per_step, None)


def psmnist(root: str | None = None, split: Split = "test", samples: int | None = None,
            pixels_per_step: int = 1, permutation_seed: int = 0) -> SequenceData:
    """Permuted sequential MNIST: the pixel order permuted by one fixed permutation drawn from
    ``permutation_seed`` (``numpy.random.default_rng(seed).permutation(784)``), then as :func:`smnist`.

    References
    ----------
    Fading-memory paper §4 (psMNIST).
    """
    return _sequential("psmnist", root, split, samples, pixels_per_step, permutation_seed)


DATASETS = [
    DatasetSpec(name="smnist", factory=smnist, doc="sequential MNIST (784 steps) from local IDX/NPZ files",
                reference="fading-memory paper §4; mean-field paper §4.2"),
    DatasetSpec(name="psmnist", factory=psmnist, doc="permuted sequential MNIST (fixed permutation from a seed)",
                reference="fading-memory paper §4"),
]
