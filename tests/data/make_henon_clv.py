"""Regenerate ``henon_clv.npz``: covariant Lyapunov vectors of the Hénon map computed by lyapynov.

The fixture behind ``tests/test_clv.py::test_henon_vectors_equal_the_stored_lyapynov_vectors``:
lyapynov 1.0.1's ``CLV`` (Ginelli's method, numpy) on the Hénon map a = 1.4, b = 0.3 from
x_0 = (0.1, 0.1), with transients n_forward = n_A = n_C = 1000 and 41 stored times
t = 2000 … 2040 (x_t = f^t(x_0)), ``np.random.seed(12345)`` before the call (lyapynov draws its
backward start with ``np.random.rand``). The map is written ``1 - a*x*x + y, b*x`` — the same
floating-point expression the test steps with torch, so the orbit is reproduced bit for bit.

Saved (float64 / int64): ``a``, ``b``, ``x0``, ``times [41]``, ``orbit [41, 2]`` (x_t),
``clv [41, 2, 2]`` (columns = vectors, column j for exponent j, unit length, each column's
largest-magnitude entry positive), ``lyapynov_version`` (text).

Run once with lyapynov installed (``pip install lyapynov``; it needs only numpy):
    python tests/data/make_henon_clv.py
Nothing of lyapynov is stored here but its output numbers.
"""

from __future__ import annotations

from pathlib import Path

import lyapynov
import numpy as np

A, B = 1.4, 0.3
X0 = (0.1, 0.1)
N_FORWARD, N_A, N_B, N_C = 1000, 1000, 40, 1000
SEED = 12345


def henon(x: np.ndarray, t: float = 0.0) -> np.ndarray:
    return np.array([1.0 - A * x[0] * x[0] + x[1], B * x[0]])


def henon_jacobian(x: np.ndarray, t: float = 0.0) -> np.ndarray:
    return np.array([[-2.0 * A * x[0], 1.0], [B, 0.0]])


def canonical(V: np.ndarray) -> np.ndarray:
    """Unit columns, each with its largest-magnitude entry positive."""
    V = V / np.linalg.norm(V, axis=-2, keepdims=True)
    idx = np.argmax(np.abs(V), axis=-2)
    pick = np.take_along_axis(V, idx[..., None, :], axis=-2)[..., 0, :]
    return V * np.where(pick < 0, -1.0, 1.0)[..., None, :]


def main() -> None:
    system = lyapynov.DiscreteDS(np.array(X0), 0, henon, henon_jacobian)
    np.random.seed(SEED)
    vectors, orbit = lyapynov.CLV(system, 2, N_FORWARD, N_A, N_B, N_C, traj=True)
    out = Path(__file__).with_name("henon_clv.npz")
    np.savez(out, a=np.float64(A), b=np.float64(B), x0=np.array(X0), times=np.arange(N_FORWARD + N_A, N_FORWARD + N_A + N_B + 1),
             orbit=np.asarray(orbit, dtype=np.float64), clv=canonical(np.stack(vectors)),
             lyapynov_version=np.str_(lyapynov.__version__))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
