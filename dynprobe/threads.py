"""How many torch threads a probe run uses: a default that never loses, recorded in each result.

torch starts with one intra-op thread per physical core. For the small systems RNN dynamics
works with, and on a machine other processes share, that default loses badly: on the shared
2-core machine of this project ``diagnose lstm2d_chaotic`` took 1220 s with two threads
against 61–75 s with one (identical results), because every tiny op of a 4-unit system pays
the cost of waking a second, busy core. Extra threads only pay once the GEMMs and QRs are big
(``tests/benchmarks/test_bench_threads.py`` measures where).

The rule (:func:`choose`), in order:

1. an explicit choice wins — :func:`set_threads` (the CLI's ``--threads``), the environment
   variable ``DYNPROBE_THREADS``, ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, or a
   ``torch.set_num_threads`` call made after dynprobe was imported;
2. one thread below :data:`PARALLEL_MIN_N` state coordinates;
3. otherwise as many threads as there are idle cores — the cores this process may use minus
   the 1-minute load average of the *other* processes, rounded — at least one, at most torch's
   default. The load average counts this process too: ``diagnose`` running probes back to back
   raises it by about one after a minute, and subtracting the raw load would then keep a
   second core idle that nobody else wants (a 2-layer LSTM's ``jacobian`` runs 1.5× faster on
   two). This process's share is its own CPU use, averaged the way the kernel averages the load
   (an exponential with a 1-minute time constant, :func:`_own_load`).

Front ends apply it once per probe run (:func:`applied`, used by ``dynprobe.run`` and so by
``analyze``, ``diagnose``, ``batch`` and the CLI), restore the caller's setting afterwards, and
record the number in the result's ``threads`` attr. Nested runs (a probe calling
``dynprobe.run``) keep the outer choice.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["set_threads", "pinned", "choose", "applied", "PARALLEL_MIN_N"]

PARALLEL_MIN_N = 512
"""Below this state size one thread is used whatever the load (the GEMMs are too small to split)."""

_TORCH_DEFAULT = torch.get_num_threads()
_explicit: int | None = None
_nesting = threading.local()
"""Per thread: how many ``applied`` blocks are open. Per thread, not per process: a probe that
timed out keeps running in its abandoned deadline thread, and must not turn every later run of
the process into a "nested" one that skips the policy."""


def set_threads(n: int | None) -> None:
    """Fix the number of torch threads for every probe run (``None``: back to the automatic rule).

    Parameters
    ----------
    n
        Threads (>= 1), or ``None``.

    Raises
    ------
    dynprobe.errors.ProbeParameterError
        For ``n < 1``.
    """
    global _explicit
    from .errors import ProbeParameterError

    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ProbeParameterError(f"threads must be an int >= 1 (or None for automatic), got {n!r}")
    _explicit = n
    torch.set_num_threads(n if n is not None else _TORCH_DEFAULT)


@contextmanager
def pinned(n: int) -> Iterator[None]:
    """Every probe run inside the block uses ``n`` threads; the caller's choice (and torch's
    setting) come back afterwards. For a batch worker, and for ``batch(workers=0)`` running in a
    user's own process, which must not change that process's setting for good."""
    global _explicit
    saved_explicit, saved_torch = _explicit, torch.get_num_threads()
    _explicit = n
    torch.set_num_threads(n)
    try:
        yield
    finally:
        _explicit = saved_explicit
        torch.set_num_threads(saved_torch)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _env_threads() -> tuple[int, str] | None:
    for name in ("DYNPROBE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        text = os.environ.get(name, "").strip()
        if text:
            try:
                value = int(text)
            except ValueError:
                continue
            if value >= 1:
                return value, name
    return None


_LOAD_TAU_S = 60.0
_own = {"wall": time.monotonic(), "cpu": time.process_time(), "ema": 0.0}
_own_lock = threading.Lock()


def _own_load() -> float:
    """This process's contribution to the 1-minute load average: its CPU seconds per wall
    second (busy threads), exponentially averaged over about a minute, as the kernel does."""
    with _own_lock:
        wall, cpu = time.monotonic(), time.process_time()
        dt = wall - _own["wall"]
        if dt > 0:
            busy = max(0.0, (cpu - _own["cpu"]) / dt)
            decay = math.exp(-dt / _LOAD_TAU_S)
            _own.update(wall=wall, cpu=cpu, ema=_own["ema"] * decay + busy * (1.0 - decay))
        return _own["ema"]


def choose(state_dim: int) -> tuple[int, str]:
    """``(threads, reason)`` for a run on a system with ``state_dim`` coordinates (see the module docs)."""
    if _explicit is not None:
        return _explicit, "set_threads"
    env = _env_threads()
    if env is not None:
        return env[0], env[1]
    current = torch.get_num_threads()
    if current != _TORCH_DEFAULT:
        return current, "torch.set_num_threads"
    if state_dim < PARALLEL_MIN_N:
        return 1, f"N={state_dim} < {PARALLEL_MIN_N}"
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - unavailable
        return 1, "load unknown"
    others = max(0.0, load - _own_load())
    idle = int(cores - others + 0.5)
    n = max(1, min(idle, _TORCH_DEFAULT, cores))
    return n, f"N={state_dim}, load of other processes {others:.1f} on {cores} cores"


@contextmanager
def applied(state_dim: int | None) -> Iterator[int]:
    """Run the enclosed probe with :func:`choose`'s thread count and restore the previous one.

    Yields the thread count in effect. Inside another ``applied`` block nothing changes.
    """
    if getattr(_nesting, "depth", 0):
        yield torch.get_num_threads()
        return
    n, _ = choose(state_dim or 1)
    saved = torch.get_num_threads()
    if n != saved:
        torch.set_num_threads(n)
    _nesting.depth = 1
    try:
        yield n
    finally:
        _nesting.depth = 0
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
