"""Run a call with a time limit, in this process, and say what happened.

Why a thread and not a worker process: a probe receives a :class:`~dynprobe.System` whose
step may be any Python closure (``System.from_step(lambda ...)``), which cannot be pickled
to a spawned process; a forked one would lose the traced graphs and warm-up that the probes
of one diagnosis share, cannot use a CUDA device, and does not exist on Windows. So the call
runs in a daemon thread while the caller waits with a deadline. At the deadline the caller
raises :class:`Cancelled` inside the thread (``PyThreadState_SetAsyncExc``), which stops a
Python loop at its next bytecode and a torch loop at its next operation; a thread blocked
inside one native call that never returns (a ``sleep``, a lock wait) cannot be stopped that
way and is *abandoned*: it stays asleep in the background, flagged in the outcome, and the
caller goes on. :class:`Cancelled` derives from ``BaseException`` so that a probe's own
``except Exception`` does not swallow it.

Ctrl-C reaches the waiting (main) thread as ``KeyboardInterrupt``; the call is cancelled the
same way before the interrupt propagates, so nothing keeps computing behind the user's back.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Cancelled", "Outcome", "call_with_deadline", "GRACE_S", "DEFAULT_TIMEOUT_S"]

GRACE_S = 2.0
"""How long a cancelled call is given to stop before it is abandoned."""

DEFAULT_TIMEOUT_S = 1800.0
"""Time limit of one probe in ``diagnose`` and ``batch`` unless told otherwise (30 min: several
times what a default probe takes on a 512-unit LSTM on 2 cores, so only a hang reaches it)."""


class Cancelled(BaseException):  # noqa: N818 - not an error of the call: the caller stopped it
    """Raised inside a call that ran past its deadline (or was interrupted)."""


@dataclass(frozen=True)
class Outcome:
    """What became of one call.

    ``value`` when it returned; ``error`` (any ``BaseException``, ``SystemExit`` included)
    when it raised; ``timed_out`` when the deadline passed first, and then ``abandoned`` when
    it did not stop within :data:`GRACE_S` of being cancelled (it may still be running).
    """

    value: Any = None
    error: BaseException | None = None
    elapsed_s: float = 0.0
    timed_out: bool = False
    abandoned: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


def _raise_in(thread: threading.Thread) -> bool:
    """Schedule :class:`Cancelled` in ``thread``; False where the interpreter cannot."""
    ident = thread.ident
    if ident is None or not hasattr(ctypes, "pythonapi"):
        return False
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async.argtypes = (ctypes.c_ulong, ctypes.py_object)
    return set_async(ident, Cancelled) == 1


class _Call:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        torch = sys.modules.get("torch")  # grad mode is per thread: carry the caller's over
        grad = torch.is_grad_enabled() if torch is not None else True
        self.grad_mode = (lambda: torch.set_grad_enabled(grad)) if torch is not None else contextlib.nullcontext

    def body(self) -> None:
        try:
            try:
                with self.grad_mode():
                    self.value = self.fn()
            except BaseException as err:  # noqa: BLE001 - every way out is reported to the caller
                self.error = err
            with self.lock:
                self.done.set()
        except BaseException:  # noqa: BLE001 - a cancellation that arrived after the call ended
            self.done.set()

    def cancel(self, thread: threading.Thread) -> bool:
        """Cancel if still running; True when the thread ended within the grace period."""
        with self.lock:
            if not self.done.is_set():
                _raise_in(thread)
        return self.done.wait(GRACE_S)


def call_with_deadline(fn: Callable[[], Any], timeout: float | None, *, name: str = "dynprobe-call") -> Outcome:
    """Call ``fn()`` and return its :class:`Outcome` within ``timeout`` seconds (plus the
    grace period when it has to be cancelled). ``timeout=None`` calls ``fn`` directly in this
    thread (no limit, no thread); errors are caught either way.

    ``KeyboardInterrupt`` in the waiting thread cancels the call, then propagates.
    """
    start = time.perf_counter()
    if timeout is None:
        try:
            value = fn()
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - reported in the outcome
            return Outcome(error=err, elapsed_s=time.perf_counter() - start)
        return Outcome(value=value, elapsed_s=time.perf_counter() - start)
    if timeout <= 0:
        raise ValueError(f"timeout must be positive or None, got {timeout!r}")
    call = _Call(fn)
    thread = threading.Thread(target=call.body, name=name, daemon=True)
    thread.start()
    try:
        finished = call.done.wait(timeout)
    except KeyboardInterrupt:
        call.cancel(thread)
        raise
    if finished:
        return Outcome(value=call.value, error=call.error, elapsed_s=time.perf_counter() - start)
    stopped = call.cancel(thread)
    return Outcome(elapsed_s=time.perf_counter() - start, timed_out=True, abandoned=not stopped)
