"""Linearization of a System along its trajectories: J(h)·Q, full Jacobians, positive QR.

Shared by every probe that needs tangent dynamics (Lyapunov spectra, end-to-end Jacobians,
Floquet multipliers, entropy rates). J is the Jacobian of the *closed-loop* map
h ↦ F(h, u_t(h)) at step t — for a feedback drive it includes the path through the readout.

* :func:`jvp_columns` — ``J(h) @ Q`` for a batch of states and k tangent vectors at once:
  ``vmap`` over columns of ``torch.func.jvp`` (no Python loop over columns);
* :class:`TangentMap` — the same, traced once per shape into a lean ATen graph
  (:mod:`dynprobe.tracing`), the fast path for long runs;
* :func:`jacobian` — the full N×N Jacobian (``jacfwd``-style: tangents = identity columns);
* :func:`qr_positive` — batched QR with a non-negative diagonal of R.

References
----------
Fading-memory paper App. A (QR re-orthonormalization, Sandri 1996); Engelken, Wolf & Abbott
(2020), "Lyapunov spectra of chaotic recurrent neural networks".
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import jvp, vmap

from .system import System
from .tracing import trace

__all__ = ["jvp_columns", "jacobian", "qr_positive", "TangentMap", "TRACE_MIN_CALLS"]

TRACE_MIN_CALLS = 1000
"""Runs shorter than this many tangent steps stay eager by default (tracing would not pay)."""


def _closed_loop(system: System, u_ext: Tensor, params: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
    drive = system.drive

    def f(h: Tensor) -> Tensor:
        return system.step(h, drive.close(system, h, u_ext), params)

    return f


def _tangent(system: System, h: Tensor, Q: Tensor, u_ext: Tensor, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    f = _closed_loop(system, u_ext, params)
    h_next = f(h)
    JQ = vmap(lambda v: jvp(f, (h,), (v,))[1], in_dims=-1, out_dims=-1)(Q)
    return h_next, JQ


def jvp_columns(system: System, h: Tensor, Q: Tensor, t: int = 0) -> tuple[Tensor, Tensor]:
    """Return ``(F(h), J(h) @ Q)`` for states ``h: [*lead, N]`` and tangents ``Q: [*lead, N, k]``.

    Eager ``torch.func`` evaluation (``vmap`` of ``jvp``); see :class:`TangentMap` for the
    traced fast path. J is the closed-loop Jacobian at step ``t``.
    """
    u_ext = system.drive.external(system, t, tuple(h.shape[:-1]))
    return _tangent(system, h, Q, u_ext, system.params)


def jacobian(system: System, h: Tensor, t: int = 0) -> Tensor:
    """The full closed-loop Jacobian ∂F(h, u_t(h))/∂h, shape ``[*lead, N, N]``.

    Forward mode with the identity as tangents (what ``jacfwd`` does), batched over states.
    """
    n = system.state_dim
    eye = torch.eye(n, dtype=h.dtype, device=h.device).expand(*h.shape[:-1], n, n)
    return jvp_columns(system, h, eye, t)[1]


def qr_positive(A: Tensor) -> tuple[Tensor, Tensor]:
    """Batched reduced QR of ``A: [..., N, k]`` with ``diag(R) >= 0`` (the unique such QR when
    A has full column rank). ``log diag(R)`` are the local stretching rates."""
    Q, R = torch.linalg.qr(A)
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    sign = torch.where(d < 0, -1.0, 1.0).to(A.dtype)
    return Q * sign.unsqueeze(-2), R * sign.unsqueeze(-1)


class TangentMap:
    """``(h, Q, t) -> (F(h), J(h) @ Q)`` for one System, traced once per input shape.

    The first call for a given shape traces ``vmap(jvp(...))`` with ``make_fx``, cleans the
    graph and checks it against the eager result; later calls run the graph. If tracing fails
    or disagrees, it runs eagerly and :attr:`mode` says why. Set ``trace=False`` (or the
    environment variable ``DYNPROBE_NO_TRACE=1``) to always run eagerly. By default (``trace=None``)
    it traces when ``expected_calls`` is unknown or at least :data:`TRACE_MIN_CALLS`: tracing costs
    about 0.3 s (2 s for the first trace in a process), which pays off only over long runs.
    """

    def __init__(self, system: System, *, trace: bool | None = None, expected_calls: int | None = None) -> None:
        self.system = system
        if trace is None:
            enabled = os.environ.get("DYNPROBE_NO_TRACE", "") in ("", "0")
            trace = enabled and (expected_calls is None or expected_calls >= TRACE_MIN_CALLS)
        self._trace = trace
        self.mode = "traced" if trace else "eager: tracing off (short run or DYNPROBE_NO_TRACE)"
        names = sorted(system.params)
        self._flat_params = [system.params[name] for name in names]
        self._cache: dict[tuple, Callable[..., tuple[Tensor, Tensor]]] = {}
        self._inputs: dict[tuple, Tensor] = {}  # u for time-invariant drives, per leading shape

        def tangent(h: Tensor, Q: Tensor, u_ext: Tensor, *flat: Tensor) -> tuple[Tensor, Tensor]:
            return _tangent(system, h, Q, u_ext, dict(zip(names, flat)))

        self._fn = tangent

    def _external(self, h: Tensor, t: int) -> Tensor:
        drive, lead = self.system.drive, tuple(h.shape[:-1])
        if drive.time_varying:
            return drive.external(self.system, t, lead).contiguous()
        u = self._inputs.get(lead)
        if u is None:
            u = self._inputs[lead] = drive.external(self.system, t, lead).contiguous()
        return u

    def __call__(self, h: Tensor, Q: Tensor, t: int = 0) -> tuple[Tensor, Tensor]:
        u_ext = self._external(h, t)
        if not self._trace:
            return self._fn(h, Q, u_ext, *self._flat_params)
        key = (tuple(h.shape), tuple(Q.shape), tuple(u_ext.shape), h.dtype, h.device)
        fn = self._cache.get(key)
        if fn is None:
            fn, mode = trace(self._fn, h, Q, u_ext, *self._flat_params)
            if mode != "traced":
                self.mode = mode
            else:
                fn = fn.forward  # skip nn.Module call machinery on the hot path
            self._cache[key] = fn
        return fn(h, Q, u_ext, *self._flat_params)
