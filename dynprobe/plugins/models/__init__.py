"""Bundled plugin: reference models from the four papers.

Each submodule defines ``MODELS: list[ModelSpec]``; this module registers them all.
"""

from __future__ import annotations

import importlib

import dynprobe
from dynprobe import ModelSpec

__all__ = ["dynprobe_models"]

_SUBMODULES = ("lstm2d", "wcrnn", "orthogonal_rnn", "stable_lstm", "scrambling", "vanilla", "minimalrnn")


@dynprobe.hookimpl
def dynprobe_models() -> list[ModelSpec]:
    specs: list[ModelSpec] = []
    for name in _SUBMODULES:
        specs += importlib.import_module(f"{__name__}.{name}").MODELS
    return specs
