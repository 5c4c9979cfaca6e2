"""Issue 17's table: the Lyapunov spectrum (top k) of a tanh ``nn.RNN``, W ~ 2·N(0,1)/√N,
float64, one thread, at every (N, k) and two run lengths — dynprobe's generic path end to end
(``dynprobe.run``, Dataset included) against a hand-written analytic-Jacobian loop and
lyapynov (an optional baseline: skipped when not installed), interleaved in one process.

Contenders
    ``hand``        h ← tanh(W h); Q, R ← qr((1 − h²) ⊙ (W Q)); Σ log|R_ii| — QR every step.
    ``dynprobe``    ``dynprobe.run("lyapunov", system, k=k, steps=T, burn_in=0)`` with its
                    defaults (``reorth_every="auto"``: exact to ~1e-8, fewer QRs).
    ``dynprobe_m1`` the same with ``reorth_every=1``: the hand loop's algorithm, for the
                    "same BLAS calls" comparison.
    ``lyapynov``    ``lyapynov.LCE(DiscreteDS(x0, 0, f, jac), k, 0, T, False)`` with the analytic
                    Jacobian (its own numpy QR loop).

Every contender computes the same exponents (checked first). Run with
``python -m pytest -o addopts="" tests/benchmarks/test_bench_lyapunov_grid.py -s``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from harness import interleaved, record
from torch import nn

import dynprobe

try:
    import lyapynov
except ImportError:  # pragma: no cover - optional baseline
    lyapynov = None

GRID = [(256, 256), (256, 32), (256, 8), (1024, 1024), (1024, 32)]
LENGTHS = {"short": 300, "long": 3000}
BIG = {"short": 20, "long": 100}  # N = k = 1024: a QR of 1024² per step


def _problem(n: int):
    gen = torch.Generator().manual_seed(0)
    W = 2.0 * torch.randn(n, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
    module = nn.RNN(1, n, bias=False)
    system = dynprobe.wrap(module, dtype=torch.float64)
    system = system.with_params(weight_hh_l0=W, weight_ih_l0=torch.zeros(n, 1, dtype=torch.float64))
    return W, system, system.initial_state(1, seed=0)[0]


def _hand(W, h, Q, steps):
    acc = torch.zeros(Q.shape[-1], dtype=torch.float64)
    for _ in range(steps):
        h = torch.tanh(W @ h)
        Q, R = torch.linalg.qr((1 - h * h)[:, None] * (W @ Q))
        acc += torch.log(torch.diagonal(R).abs())
    return acc / steps


def _hand_numpy(W, h, Q, steps):
    acc = np.zeros(Q.shape[-1])
    for _ in range(steps):
        h = np.tanh(W @ h)
        Q, R = np.linalg.qr((1 - h * h)[:, None] * (W @ Q))
        acc += np.log(np.abs(np.diagonal(R)))
    return acc / steps


def _lyapynov(Wn, hn, k, steps):
    def f(x, t):
        return np.tanh(Wn @ x)

    def jac(x, t):
        y = np.tanh(Wn @ x)
        return (1 - y * y)[:, None] * Wn

    return lyapynov.LCE(lyapynov.DiscreteDS(hn.copy(), 0, f, jac), k, 0, steps, False)


def _dynprobe(system, k, steps, reorth="auto"):
    return dynprobe.run("lyapunov", system, k=k, steps=steps, burn_in=0, samples=1, seed=0, reorth_every=reorth)


@pytest.mark.parametrize("length", list(LENGTHS))
@pytest.mark.parametrize(("n", "k"), GRID, ids=[f"N{n}-k{k}" for n, k in GRID])
def test_grid(n, k, length):
    torch.set_num_threads(1)
    steps = (BIG if n == k == 1024 else LENGTHS)[length]
    W, system, h0 = _problem(n)
    _dynprobe(system, k, 2)  # traces (or loads) the tangent program once
    gen = torch.Generator().manual_seed(1)  # the baselines start from the probe's tangents (seed + 1)
    Qk = torch.linalg.qr(torch.randn(1, n, k, generator=gen, dtype=torch.float64))[0][0]
    check = min(steps, 40)
    want = np.sort(_hand(W, h0, Qk, check).numpy())[::-1]
    # the most contracting exponents of a full spectrum are fixed only to what float64 allows
    # (J's condition number reaches ~1e12 at saturated units): the spread between two
    # implementations of the hand loop (torch's and numpy's LAPACK) measures that, per exponent
    spread = np.abs(want - np.sort(_hand_numpy(W.numpy(), h0.numpy(), Qk.numpy(), check))[::-1])
    for reorth in ("auto", 1):
        got = _dynprobe(system, k, check, reorth).exponents.values[0]
        tol = (1e-7 if reorth == "auto" else 1e-10) + 4 * spread
        assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) - tol)
    contenders = {
        "hand": lambda: _hand(W, h0, Qk, steps),
        "dynprobe": lambda: _dynprobe(system, k, steps),
        "dynprobe_m1": lambda: _dynprobe(system, k, steps, 1),
    }
    if lyapynov is not None:
        Wn, hn = W.numpy().copy(), h0.numpy().copy()
        np.random.seed(0)
        contenders["lyapynov"] = lambda: _lyapynov(Wn, hn, k, steps)
    repeats = 3 if n == 1024 or k == 256 else 5
    best = interleaved(contenders, repeats=repeats)
    ratios = {
        "dynprobe_over_hand": best["dynprobe"] / best["hand"],
        "dynprobe_m1_over_hand": best["dynprobe_m1"] / best["hand"],
    }
    if "lyapynov" in best:
        ratios["lyapynov_over_dynprobe"] = best["lyapynov"] / best["dynprobe"]
        ratios["lyapynov_over_dynprobe_m1"] = best["lyapynov"] / best["dynprobe_m1"]
    record("lyapunov_grid", N=n, k=k, steps=steps, name=length,
           **{f"ms_per_step_{name}": 1e3 * t / steps for name, t in best.items()}, **ratios)
