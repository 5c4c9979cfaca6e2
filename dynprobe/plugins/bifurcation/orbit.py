"""The low-level sweep loop: burn in, record a projection and a state signature, flag escapes.

:func:`record_orbits` steps one stacked ensemble (one network per swept value, see
:mod:`dynprobe.plugins.bifurcation.paths`) from a batch of initial states, discards ``burn_in`` steps and
records ``steps`` states — the attractors paper's recipe (§4.1: 200 steps, the first 100
discarded). For each recorded state it keeps

* the chosen scalar *projection* (state mean, one unit, a readout output, or a function), and
* a low-dimensional *signature* z = Rᵀh (R: N × d with orthonormal random columns, d ≤ 8,
  scaled by √(N/d); the identity when N ≤ 8) on which periods and attractor identity are
  decided without storing full states.

A sample whose state becomes non-finite or exceeds ``escape`` in absolute value is flagged as
diverged and frozen at zero, so that nothing downstream computes on inf/NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dynprobe import System
from dynprobe.errors import ProbeParameterError

__all__ = ["Recording", "record_orbits", "make_projection", "signature_basis", "SIGNATURE_DIM"]

SIGNATURE_DIM = 8
"""Largest dimension of the state signature used for period and attractor detection."""


@dataclass
class Recording:
    """What the sweep loop recorded; shapes use S = swept values, B = samples, T = steps."""

    orbit: Tensor  # [S, B, T] projection of each recorded state (NaN where diverged)
    signature: Tensor  # [T, S, B, d] signature z = R^T h
    diverged: Tensor  # [S, B] bool
    final: Tensor  # [S, B, N] last recorded state (zeros where diverged)


def make_projection(system: System, projection: str | Callable[[Tensor], Tensor]) -> tuple[Callable[[Tensor], Tensor], str, str]:
    """``(fn, long_name, units)`` for a projection name: ``"mean"`` (state mean), ``"unit:K"``
    (coordinate K), ``"readout"`` / ``"readout:J"`` (output J of the readout), or a function
    ``h [..., N] -> [...]``."""
    if callable(projection):
        def fn(h: Tensor) -> Tensor:
            out = projection(h)
            if out.shape != h.shape[:-1]:
                raise ProbeParameterError(
                    f"probe 'bifurcation': projection returned shape {list(out.shape)} for states "
                    f"{list(h.shape)}; it must map [..., N] to [...] (one number per state)"
                )
            return out

        return fn, f"projection {getattr(projection, '__qualname__', 'function')}(h)", "1"
    text = str(projection).strip()
    head, _, rest = text.partition(":")
    if head == "mean" and not rest:
        return (lambda h: h.mean(-1)), "mean of the state coordinates", "1"
    if head == "unit":
        try:
            k = int(rest)
        except ValueError:
            k = -1
        if not 0 <= k < system.state_dim:
            raise ProbeParameterError(
                f"probe 'bifurcation': projection {text!r} needs a unit index 0..{system.state_dim - 1}, e.g. 'unit:0'"
            )
        coords = system.layout.coords()
        label = f"{coords['unit_part'][k]}{coords['unit_layer'][k]}[{coords['unit_index'][k]}]"
        return (lambda h: h[..., k]), f"state coordinate {k} ({label})", "1"
    if head == "readout":
        if system.readout is None:
            raise ProbeParameterError(
                f"probe 'bifurcation': projection 'readout' needs a readout; {system.name} has none "
                "(pass readout= to dynprobe.wrap, or use 'mean' / 'unit:K')"
            )
        with torch.no_grad():
            width = system.output(torch.zeros(1, system.state_dim, dtype=system.dtype, device=system.device)).shape[-1]
        j = int(rest) if rest.strip().lstrip("-").isdigit() else (0 if not rest else -1)
        if not 0 <= j < width:
            raise ProbeParameterError(
                f"probe 'bifurcation': projection {text!r}: the readout has {width} outputs; "
                f"use 'readout:J' with 0 <= J < {width}"
            )
        return (lambda h: system.output(h)[..., j]), f"readout output {j}", "1"
    raise ProbeParameterError(
        f"probe 'bifurcation': unknown projection {text!r}; use 'mean', 'unit:K', 'readout', 'readout:J' "
        "or a function h -> scalar"
    )


def signature_basis(n: int, *, seed: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """R: [N, d] with d = min(N, 8): the identity for N <= 8, else √(N/d)·(orthonormal random
    columns), so that ‖Rᵀx‖ ≈ ‖x‖ on average."""
    if n <= SIGNATURE_DIM:
        return torch.eye(n, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    q, _ = torch.linalg.qr(torch.randn(n, SIGNATURE_DIM, generator=gen, dtype=torch.float64))
    return (q * math.sqrt(n / SIGNATURE_DIM)).to(dtype=dtype, device=device)


@torch.no_grad()
def record_orbits(
    ensemble: System,
    h0: Tensor,
    *,
    burn_in: int,
    steps: int,
    project: Callable[[Tensor], Tensor],
    basis: Tensor,
    escape: float,
) -> Recording:
    """Iterate ``ensemble`` from ``h0: [S, B, N]``: ``burn_in`` discarded steps, then ``steps``
    recorded states (the first one is the state after the burn-in)."""
    h = h0
    bad = torch.zeros(h.shape[:-1], dtype=torch.bool, device=h.device)

    def guard(x: Tensor) -> Tensor:
        nonlocal bad
        bad = bad | ~torch.isfinite(x).all(-1) | (x.abs().amax(-1) > escape)
        return torch.where(bad.unsqueeze(-1), torch.zeros((), dtype=x.dtype, device=x.device), x)

    h = guard(h)
    for t in range(burn_in):
        h = guard(ensemble.map(h, t))
    orbit, sig = [], []
    for t in range(burn_in, burn_in + steps):
        if t > burn_in:
            h = guard(ensemble.map(h, t - 1))
        orbit.append(project(h))
        sig.append(h @ basis)
    orbit_t = torch.stack(orbit, dim=-1)
    orbit_t = torch.where(bad.unsqueeze(-1), torch.full((), math.nan, dtype=orbit_t.dtype, device=orbit_t.device), orbit_t)
    return Recording(orbit=orbit_t, signature=torch.stack(sig), diverged=bad, final=h)
