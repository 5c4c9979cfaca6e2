"""Linearization of a System along its trajectories: J(h)·Q, full Jacobians, positive QR.

Shared by every probe that needs tangent dynamics (Lyapunov spectra, end-to-end Jacobians,
Floquet multipliers, entropy rates). J is the Jacobian of the *closed-loop* map
h ↦ F(h, u_t(h)) at step t — for a feedback drive it includes the path through the readout.

* :func:`jvp_columns` — ``J(h) @ Q`` for a batch of states and k tangent vectors at once:
  ``vmap`` over columns of ``torch.func.jvp`` (no Python loop over columns);
* :class:`TangentMap` — the same, traced once per architecture and shape into a lean program
  (:mod:`dynprobe.tracing`, :mod:`dynprobe.program`), cached in memory and on disk
  (:mod:`dynprobe.graphcache`): the fast path;
* :func:`agrees_with_autograd` — checks a claimed ``J(h) @ Q`` by one reverse-mode pass (no
  ``torch.func``), the independent check of a cached program;
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

from . import graphcache
from .drives import FeedbackDrive
from .program import Program, ProgramError
from .system import System
from .tracing import close_enough, trace

__all__ = ["jvp_columns", "agrees_with_autograd", "jacobian", "qr_positive", "TangentMap", "TRACE_MIN_CALLS"]

TRACE_MIN_CALLS = 200
"""Runs shorter than this many tangent steps stay eager by default unless a traced program is
already cached: a trace costs about 0.05–0.2 s once ``torch.func`` is loaded, i.e. a few hundred
eager steps of a small system."""


def _closed_loop(system: System, u_ext: Tensor, params: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
    drive = system.drive

    def f(h: Tensor) -> Tensor:
        return system.step(h, drive.close(system, h, u_ext), params)

    return f


def _tangent(system: System, h: Tensor, Q: Tensor, u_ext: Tensor, params: dict[str, Tensor], *,
             eager: bool = True) -> tuple[Tensor, Tensor]:
    f = _closed_loop(system, u_ext, params)
    h_next = f(h)
    if eager:
        # the tangents as one contiguous [k, *lead, N] block: vmap moves the column axis to the
        # front, and the view of a QR's column-major Q it makes then has strides that F.linear
        # cannot fold into one GEMM — it ran a matrix-vector product per column, 4x slower at N = k = 1024
        columns = Q.movedim(-1, 0).clone(memory_format=torch.contiguous_format)
        return h_next, vmap(lambda v: jvp(f, (h,), (v,))[1], in_dims=0, out_dims=-1)(columns)
    # traced: make_fx records the ops, and the compiled program has no such dispatch to lose
    return h_next, vmap(lambda v: jvp(f, (h,), (v,))[1], in_dims=-1, out_dims=-1)(Q)


def jvp_columns(system: System, h: Tensor, Q: Tensor, t: int = 0) -> tuple[Tensor, Tensor]:
    """Return ``(F(h), J(h) @ Q)`` for states ``h: [*lead, N]`` and tangents ``Q: [*lead, N, k]``.

    Eager ``torch.func`` evaluation (``vmap`` of ``jvp``); see :class:`TangentMap` for the
    traced fast path. J is the closed-loop Jacobian at step ``t``.
    """
    u_ext = system.drive.external(system, t, tuple(h.shape[:-1]))
    # a clone: with a view (a slice of a trajectory, x[0]) as primal, vmap-of-jvp runs 3-5x slower
    return _tangent(system, h.clone(), Q, u_ext, system.params)


def agrees_with_autograd(system: System, h: Tensor, Q: Tensor, u_ext: Tensor, h_next: Tensor, JQ: Tensor) -> bool:
    """Check a claimed ``(F(h), J(h) @ Q)`` with one plain reverse-mode pass (no ``torch.func``).

    The primal is compared with ``F(h)`` itself; the tangents by Freivalds' identity
    ``vᵀ(JQ) = (Jᵀv)ᵀQ`` for a random v per state, which any wrong column fails with
    probability one. ``torch.func``'s first use imports ``torch._dynamo`` (seconds of CPU);
    ``torch.autograd.grad`` does not, so a cached program is checked for free in a fresh process.
    """
    x = h.detach().clone().requires_grad_(True)
    gen = torch.Generator(device=h.device).manual_seed(0)
    with torch.enable_grad():
        out = _closed_loop(system, u_ext, system.params)(x)
        v = torch.randn(out.shape, generator=gen, dtype=out.dtype, device=out.device)
        # a scalar objective: grad_outputs= would import torch's symbolic-shape machinery (sympy)
        (g,) = torch.autograd.grad((out * v).sum(), x, allow_unused=True) if out.requires_grad else (None,)
    if g is None:  # F does not depend on h
        g = torch.zeros_like(x)
    if not close_enough(h_next, out.detach()) or JQ.shape != Q.shape:
        return False
    tol = 1e-9 if h.dtype == torch.float64 else 1e-4
    lhs = (v.unsqueeze(-1) * JQ).sum(-2)
    rhs = (g.unsqueeze(-1) * Q).sum(-2)
    scale = v.norm(dim=-1, keepdim=True) * JQ.norm(dim=-2) + g.norm(dim=-1, keepdim=True) * Q.norm(dim=-2)
    return bool(((lhs - rhs).abs() <= tol * (scale + 1e-30)).all())


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
    """``(h, Q, t) -> (F(h), J(h) @ Q)`` for one System, traced once per architecture and shape.

    The first call for a given shape looks the traced program up in the cache
    (:mod:`dynprobe.graphcache`: memory, then disk), or traces ``vmap(jvp(...))`` with
    ``make_fx``, cleans the graph (:mod:`dynprobe.tracing`), checks it against the eager result
    and stores it. Either way the program is compiled with its loop-invariant work — everything
    that depends only on the parameters, and on the input of a time-invariant drive — done once
    (:mod:`dynprobe.program`), and a program from the cache is checked against
    :func:`agrees_with_autograd` on its first inputs (any difference: retrace). If tracing fails
    or disagrees, it runs eagerly and :attr:`mode` says why.

    Set ``trace=False`` (or the environment variable ``DYNPROBE_NO_TRACE=1``) to always run
    eagerly. By default (``trace=None``) it uses a cached program whenever there is one, and
    traces when ``expected_calls`` is unknown or at least :data:`TRACE_MIN_CALLS`.
    :attr:`cached` says whether the program came from the cache.
    """

    def __init__(self, system: System, *, trace: bool | None = None, expected_calls: int | None = None) -> None:
        self.system = system
        enabled = os.environ.get("DYNPROBE_NO_TRACE", "") in ("", "0")
        if trace is None:
            self._trace: bool | None = None if enabled else False
            self._worth = expected_calls is None or expected_calls >= TRACE_MIN_CALLS
        else:
            self._trace, self._worth = bool(trace), bool(trace)
        self.mode = "traced" if self._trace is not False and self._worth else \
            "eager: tracing off (short run or DYNPROBE_NO_TRACE)"
        self.cached = False
        names = sorted(system.params)
        self._names = names
        self._flat_params = [system.params[name] for name in names]
        self._cache: dict[tuple, Callable[..., tuple[Tensor, Tensor]]] = {}
        self._programs: dict[tuple, Program] = {}
        self._static_u = not system.drive.time_varying

        def tangent(h: Tensor, Q: Tensor, u_ext: Tensor, *flat: Tensor) -> tuple[Tensor, Tensor]:
            return _tangent(system, h, Q, u_ext, dict(zip(names, flat)))

        def traceable(h: Tensor, Q: Tensor, u_ext: Tensor, *flat: Tensor) -> tuple[Tensor, Tensor]:
            return _tangent(system, h, Q, u_ext, dict(zip(names, flat)), eager=False)

        self._fn, self._traceable = tangent, traceable

    def program(self, h: Tensor, Q: Tensor, t: int = 0) -> Program | None:
        """The compiled :class:`~dynprobe.program.Program` used for inputs of this shape
        (``None`` when that shape runs eagerly); traces it if needed."""
        self.runner(h, Q, t)
        return self._programs.get(self._key(h, Q))

    @staticmethod
    def _key(h: Tensor, Q: Tensor) -> tuple:
        return (tuple(h.shape), tuple(Q.shape), h.dtype, h.device)

    def runner(self, h: Tensor, Q: Tensor, t: int = 0) -> Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]]:
        """The tangent step for states and tangents shaped like ``h`` and ``Q``: a function
        ``(h, Q, t) -> (F(h), J(h) @ Q)`` with every per-call lookup done once (the hot loop of
        :func:`dynprobe.tangent.qr_iterate` calls it)."""
        key = self._key(h, Q)
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = self._build(h, Q, t)
        return fn

    def _fingerprint(self, h: Tensor, Q: Tensor, u: Tensor) -> str | None:
        system = self.system
        drive = system.drive
        readout = (drive.readout or system.readout) if isinstance(drive, FeedbackDrive) else None
        return graphcache.fingerprint({
            "step": system.step_fn, "networks": system.networks, "drive": type(drive), "readout": readout,
            "shapes": (tuple(h.shape), tuple(Q.shape), tuple(u.shape)), "dtype": h.dtype, "device": h.device.type,
            "params": [(n, tuple(p.shape), p.dtype) for n, p in zip(self._names, self._flat_params)],
        })

    def _bind(self, program: Program, u0: Tensor, external: Callable[[int], Tensor]) -> Callable[..., tuple[Tensor, Tensor]]:
        flat = self._flat_params
        params = list(range(3, 3 + len(flat)))
        if self._static_u:
            return program.compile([2, *params]).bind([u0, *flat], extra_args=1)
        bound = program.compile(params).bind(flat)
        return lambda h, Q, t: bound(h, Q, external(t))

    def _build(self, h: Tensor, Q: Tensor, t: int) -> Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]]:
        system, flat = self.system, self._flat_params
        lead = tuple(h.shape[:-1])

        def external(t: int) -> Tensor:
            return system.drive.external(system, t, lead).contiguous()

        u0 = external(t)
        key = self._fingerprint(h, Q, u0) if self._trace is not False else None
        if key is not None:
            program = graphcache.load(key)
            if program is not None:
                if h.device.type != "cpu":
                    program.constants = {i: c.to(h.device) for i, c in program.constants.items()}
                runner = self._bind(program, u0, external)
                if not program.verified:  # from disk: checked once per process
                    with torch.no_grad():
                        h_next, JQ = runner(h, Q, t)
                    program.verified = agrees_with_autograd(system, h, Q, u0, h_next, JQ)
                if program.verified:
                    self._programs[self._key(h, Q)] = program
                    self.mode, self.cached = "traced", True
                    return runner
        if self._trace is False or not self._worth:
            if self._static_u:
                return lambda h, Q, t: self._fn(h, Q, u0, *flat)
            return lambda h, Q, t: self._fn(h, Q, external(t), *flat)
        fn, mode = trace(self._traceable, h, Q, u0, *flat)
        if mode != "traced":
            self.mode = mode
            return lambda h, Q, t: self._fn(h, Q, u0 if self._static_u else external(t), *flat)
        try:
            program = Program.from_graph(fn)
        except ProgramError:
            graph = fn.forward  # skip nn.Module call machinery on the hot path
            return lambda h, Q, t: graph(h, Q, u0 if self._static_u else external(t), *flat)
        self.mode = "traced"
        program.verified = True  # trace() checked the graph against the eager function
        self._programs[self._key(h, Q)] = program
        if key is not None:
            graphcache.store(key, program)
        return self._bind(program, u0, external)

    def __call__(self, h: Tensor, Q: Tensor, t: int = 0) -> tuple[Tensor, Tensor]:
        return self.runner(h, Q, t)(h, Q, t)
