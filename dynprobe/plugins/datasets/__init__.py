"""Bundled plugin: data sets and synthetic tasks from the four papers.

Each submodule defines ``DATASETS: list[DatasetSpec]``; this module registers them all.
Nothing is downloaded at run time: file-based sets read standard files from a user directory.
"""

from __future__ import annotations

import importlib

import dynprobe
from dynprobe import DatasetSpec

__all__ = ["dynprobe_datasets"]

_SUBMODULES: tuple[str, ...] = ("adding", "mnist", "cifar", "digit_noise", "sine_generation", "relevant_symbols")


@dynprobe.hookimpl
def dynprobe_datasets() -> list[DatasetSpec]:
    specs: list[DatasetSpec] = []
    for name in _SUBMODULES:
        specs += importlib.import_module(f"{__name__}.{name}").DATASETS
    return specs
