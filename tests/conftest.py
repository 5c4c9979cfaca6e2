"""Shared fixtures: a hermetic plugin registry, small reference systems, float64 helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from hypothesis import settings

from dynprobe.registry import Registry, use_registry

# Property tests draw the same examples on every machine and every run ("derandomize"), so a red
# CI is never a lottery; a failure found by exploring is pinned with @example. To explore with
# fresh random examples: pytest --hypothesis-profile=explore (then pin what it finds).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("repeatable")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small systems run fastest, and most reproducibly, on one thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def fresh_registry() -> Iterator[Registry]:
    """A registry reloaded from the installed entry points, restored afterwards."""
    with use_registry(None) as reg:
        yield reg


@pytest.fixture
def inline_registry():
    """``inline_registry(*plugins, entry_points=False)``: a temporary registry of plugin objects."""
    stack = []

    def make(*plugins: object, entry_points: bool = False) -> Registry:
        ctx = use_registry(Registry(plugins, entry_points=entry_points))
        stack.append(ctx)
        return ctx.__enter__()

    yield make
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)
