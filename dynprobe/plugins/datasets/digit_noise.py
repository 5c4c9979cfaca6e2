"""``digit_then_noise``: the mean-field paper's memory task.

Mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §4.1: a flattened digit image
is the first input, then noise inputs x_t ~ N(0, σ_x²) drawn independently per example; the label
is the digit, so the network must carry it through all the noise steps. The paper writes the noise
steps as 0 < t < T; here ``T`` counts the noise steps, so a sequence has T + 1 steps.

Images come from the MNIST files (see :mod:`dynprobe.plugins.datasets.mnist`) or, when none are present,
from scikit-learn's bundled 8×8 digits (1,797 images, no download; the ``digits`` extra). The
returned data's ``attrs["source"]`` says which.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from dynprobe import DatasetSpec
from dynprobe.errors import DatasetError, ProbeParameterError
from dynprobe.tasks import SequenceData

from .mnist import load_mnist

__all__ = ["digit_then_noise", "DATASETS"]

SKLEARN_SOURCE = "sklearn.datasets.load_digits (8x8)"


def _digits(source: str, root: str | os.PathLike[str] | None, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Flattened images in [0, 1] ``[n, D]``, labels ``[n]``, and the source text."""
    if source in ("auto", "mnist"):
        try:
            x, y, path = load_mnist(root, split, name="digit_then_noise")  # type: ignore[arg-type]
            return x.reshape(x.shape[0], -1).astype(np.float32) / 255.0, y, f"mnist:{path}"
        except DatasetError as err:
            if source == "mnist":
                raise
            mnist_error = err
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DatasetError(
            f"{mnist_error}; or install scikit-learn for its bundled 8x8 digits "
            "(pip install 'dynprobe[digits]')" if source == "auto" else
            "dataset 'digit_then_noise': source='sklearn' needs scikit-learn; pip install 'dynprobe[digits]'"
        ) from err
    bunch = load_digits()
    return bunch.data.astype(np.float32) / 16.0, bunch.target.astype(np.int64), SKLEARN_SOURCE


def digit_then_noise(T: int = 50, samples: int = 256, sigma_x: float = 1.0,
                     source: Literal["auto", "mnist", "sklearn"] = "auto", root: str | None = None,
                     split: Literal["train", "test"] = "test", seed: int = 0) -> SequenceData:
    """A digit image, then ``T`` steps of N(0, σ_x²) noise; the label is the digit.

    Parameters
    ----------
    T
        Noise steps after the image (the paper varies the depth between 10 and 1000).
    samples
        Sequences; images are drawn uniformly with replacement from the source with ``seed``.
    sigma_x
        Noise standard deviation σ_x.
    source
        ``auto`` (MNIST files if present, else scikit-learn's digits), ``mnist`` or ``sklearn``.
    root, split
        Where the MNIST files are and which split (ignored for scikit-learn's digits).
    seed
        Same seed ⇒ same data.

    Returns
    -------
    SequenceData
        ``inputs [sample, time=T+1, channel=D]`` (D = 784 for MNIST, 64 for the 8×8 digits; the
        image at time 0 in [0, 1], noise after), ``targets [sample]`` digit labels,
        ``task="classification"``, 10 classes; ``attrs["source"]``: ``mnist:<file>`` or
        ``sklearn.datasets.load_digits (8x8)``.

    References
    ----------
    Mean-field paper §4.1 (trainability experiment).
    """
    if T < 0 or samples < 1 or sigma_x < 0:
        raise ProbeParameterError(
            f"dataset 'digit_then_noise': need T >= 0, samples >= 1, sigma_x >= 0 (got {T}, {samples}, {sigma_x})"
        )
    if source not in ("auto", "mnist", "sklearn"):
        raise ProbeParameterError(f"dataset 'digit_then_noise': source must be auto, mnist or sklearn, got {source!r}")
    images, labels, used = _digits(source, root, split)
    gen = torch.Generator().manual_seed(int(seed))
    pick = torch.randint(0, images.shape[0], (samples,), generator=gen)
    first = torch.from_numpy(images)[pick].unsqueeze(1)
    noise = sigma_x * torch.randn(samples, T, images.shape[1], generator=gen)
    return SequenceData(torch.cat([first, noise], dim=1), torch.from_numpy(labels)[pick], "classification",
                        "digit_then_noise", num_classes=10,
                        attrs={"source": used, "T": int(T), "sigma_x": float(sigma_x), "seed": int(seed),
                               "image_pixels": int(images.shape[1])})


DATASETS = [
    DatasetSpec(name="digit_then_noise", factory=digit_then_noise,
                doc="digit image, then T steps of N(0, sigma_x^2) noise; classify the digit (MNIST or 8x8 digits)",
                reference="mean-field paper §4.1"),
]
