"""Oracles for fixed-point and orbit searches (``from fixedpoint_systems import ...``).

* :func:`bistable` — three bistable units in a rotated basis, F(h) = S tanh(a S⁻¹h): 27 fixed
  points S·y, y ∈ {−x*, 0, x*}³ (x* the root of tanh(a x) = x), eigenvalues a(1 − y_i²) in closed
  form; S a rotation (symmetric Jacobians) or a sheared one (non-normal Jacobians). Some points
  lie outside [−1, 1]³, so a search that clips to the tanh box is caught.
* :func:`trained_flipflop` — a 16-unit tanh ``nn.RNN`` trained on the 3-bit flip-flop task
  (Sussillo & Barak 2013 §4) with a fast recipe (about 400 Adam steps, 1.5–3 s; deterministic),
  optionally with a 4th output that must alternate ±1 (the ``clock`` variant), whose memories
  are then 8 stable period-2 orbits. :func:`iterate_attractors` finds the attractors by plain
  iteration — the independent check.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
from scipy.optimize import brentq
from torch import nn

import dynprobe

F64 = torch.float64


def rotation(axis: tuple[float, float, float] = (1.0, 2.0, 3.0), angle: float = 1.0) -> np.ndarray:
    """Rodrigues' rotation by ``angle`` about ``axis`` (closed form, no random numbers)."""
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def xstar(a: float) -> float:
    """The positive root of tanh(a x) = x (a > 1), bracketed and polished by Newton."""
    xc = math.atanh(math.sqrt(1 - 1 / a)) / a  # where tanh(a x) - x has zero slope
    x = brentq(lambda x: math.tanh(a * x) - x, xc, 1.0, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    for _ in range(3):
        t = math.tanh(a * x)
        x -= (t - x) / (a * (1 - t * t) - 1)
    return x


def bistable(a: float = 2.0, shear: float = 0.0) -> tuple[dynprobe.System, np.ndarray, np.ndarray]:
    """``(system, points [27, 3], eigenvalues [27, 3])`` of F(h) = S tanh(a S⁻¹h), S = Q(I + shear·N)
    (for a ≤ 1 the one point h = 0)."""
    Q = rotation()
    S = Q @ (np.eye(3) + shear * np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    params = {"S": torch.tensor(S, dtype=F64), "Sinv": torch.tensor(np.linalg.inv(S), dtype=F64),
              "a": torch.tensor(a, dtype=F64)}

    def step(h: torch.Tensor, u: torch.Tensor, p: dict) -> torch.Tensor:
        return torch.tanh(p["a"] * (h @ p["Sinv"].T)) @ p["S"].T

    system = dynprobe.System.from_step(step, state_dim=3, params=params, name=f"bistable(a={a}, shear={shear})")
    levels = (-xstar(a), 0.0, xstar(a)) if a > 1 else (0.0,)  # a <= 1: h = 0 only
    Y = np.array(list(itertools.product(levels, repeat=3)))
    return system, Y @ S.T, a * (1 - Y ** 2)


class FlipFlop(nn.Module):
    """``nn.RNN(3, 16, tanh)`` and a linear readout (4 outputs with the clock)."""

    def __init__(self, clock: bool = False) -> None:
        super().__init__()
        self.rnn = nn.RNN(3, 16)
        self.readout = nn.Linear(16, 3 + clock)


def flipflop_batch(gen: torch.Generator, batch: int = 32, T: int = 64, p: float = 0.1,
                   clock: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets ``[T, batch, 3]``: ±1 pulses (probability p per step and channel; every
    channel pulses at t = 0); the target is the sign of each channel's last pulse."""
    pulse = torch.rand(T, batch, 3, generator=gen) < p
    pulse[0] = True
    x = pulse.float() * torch.where(torch.rand(T, batch, 3, generator=gen) < 0.5, -1.0, 1.0)
    last = torch.cummax(torch.where(pulse, torch.arange(T).view(T, 1, 1), 0), dim=0).values
    y = torch.gather(x, 0, last)
    if clock:
        y = torch.cat([y, (1.0 - 2.0 * (torch.arange(T) % 2)).view(T, 1, 1).expand(T, batch, 1)], dim=2)
    return x, y


@functools.lru_cache(maxsize=4)
def trained_flipflop(seed: int = 0, clock: bool = False) -> FlipFlop:
    """Train on the 3-bit flip-flop: float32, Adam (lr 1e-2), 32 × 64 fresh trials per step,
    gradient clip 1, until a running loss < 2e-3 (cached per process)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(10_000 + seed)
    model = FlipFlop(clock)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ema = None
    for step in range(1, 3001 if clock else 1501):
        x, y = flipflop_batch(gen, clock=clock)
        loss = torch.mean((model.readout(model.rnn(x)[0]) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step > 100 and ema < 2e-3:
            break
    return model


def iterate_attractors(system: dynprobe.System, *, starts: int = 2000, steps: int = 1000, seed: int = 0,
                       period: int = 1) -> np.ndarray:
    """Attractors by plain iteration: ``[K, period, N]`` distinct end orbits (float64) of uniform
    starts in [−1, 1]^N, each start's last ``period`` states, up to cyclic shift."""
    gen = torch.Generator().manual_seed(seed)
    h = 2 * torch.rand(starts, system.state_dim, generator=gen, dtype=F64) - 1
    s64 = system.to(F64)
    h = s64.advance(h, steps)
    ring = s64.trajectory(h, period - 1) if period > 1 else h[None]
    ends = ring.permute(1, 0, 2).numpy()  # [starts, period, N]
    out: list[np.ndarray] = []
    for e in ends:
        if not any(np.abs(e[:, None] - o[None]).max(-1).min(-1).max() < 1e-8 for o in out):
            out.append(e)
    return np.stack(out)


def clocked_memories(a: float = 2.0) -> dynprobe.System:
    """F(h) = Q f(Qᵀh), f(y) = (−tanh(a y₀), tanh(a y₁), tanh(a y₂)): a clock coordinate that flips
    sign every step and two bistable ones — 4 stable period-2 orbits (one per sign pattern of
    y₁, y₂, which the map never changes), in a rotated basis. The small cousin of the clocked
    flip-flop network, whose memories are period-2 orbits."""
    Q = torch.tensor(rotation(), dtype=F64)
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=F64)

    def step(h: torch.Tensor, u: torch.Tensor, p: dict) -> torch.Tensor:
        return (p["sign"] * torch.tanh(p["a"] * (h @ p["Q"]))) @ p["Q"].T

    return dynprobe.System.from_step(step, state_dim=3, params={"Q": Q, "sign": sign, "a": torch.tensor(a, dtype=F64)},
                                     init=dynprobe.InitialState(scale=1.0), name="clocked_memories")


def graded(a: float, gains: tuple[float, float, float] = (1.0, 0.8, 0.6)) -> tuple[dynprobe.System, np.ndarray]:
    """F(h) = Q tanh(a g ⊙ Qᵀh): coordinate i of y = Qᵀh is bistable once a·g_i > 1, so along a
    the origin goes through a pitchfork at a = 1/g_i for each i (1 → 3 → 9 → 27 fixed points).
    Returns the System and its fixed points ``[K, 3]`` in closed form."""
    Q = rotation()
    g = torch.tensor(gains, dtype=F64)

    def step(h: torch.Tensor, u: torch.Tensor, p: dict) -> torch.Tensor:
        return torch.tanh(p["a"] * p["g"] * (h @ p["Q"])) @ p["Q"].T

    system = dynprobe.System.from_step(step, state_dim=3, params={"Q": torch.tensor(Q, dtype=F64), "g": g,
                                                                  "a": torch.tensor(a, dtype=F64)}, name="graded")
    levels = [(-xstar(a * gi), 0.0, xstar(a * gi)) if a * gi > 1 else (0.0,) for gi in gains]
    return system, np.array(list(itertools.product(*levels))) @ Q.T
