"""Activation functions of the mean-field theory, with the derivatives the integrals need.

Each :class:`Activation` evaluates φ, φ′ and φφ″ on numpy arrays in one pass (the integrals of
the fixed-point solvers share a single transcendental evaluation per quadrature node), and lists
its *breakpoints*: arguments x where φ is not smooth (ReLU's kink) or where its complex
singularities sit closest to the real axis (tanh: poles at x = ±iπ/2). The quadrature in
:mod:`dynprobe.plugins.meanfield.quadrature` splits its panels there.

``phi_phi2`` is φ·φ″ with the distributional part dropped where φ vanishes on it (ReLU:
φ(0)·δ(0) = 0), which is what d/dq E[φ(√q z + μ)²] = E[φ′² + φφ″] needs (Stein's lemma).

References
----------
Mean-field paper (``mean-field-dynamical-isometry-minimalrnn.txt``) §3.1 eq. (1)–(4): φ is an
arbitrary activation, tanh in the paper's figures; App. B–E use the logistic sigmoid σ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dynprobe.errors import ProbeParameterError

__all__ = ["Activation", "ACTIVATIONS", "activation", "sigmoid_parts"]


def _special():  # scipy.special on first use: importing it costs ~0.3 s of every start-up
    from scipy import special

    return special

Parts = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Activation:
    """φ with ``parts(x) -> (φ, φ′, φφ″)`` and the breakpoints of its quadrature panels."""

    name: str
    parts: Callable[[np.ndarray], Parts]
    breakpoints: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.parts(x)[0]


def _tanh(x: np.ndarray) -> Parts:
    t = np.tanh(x)
    d = 1.0 - t * t
    return t, d, -2.0 * t * t * d


def _relu(x: np.ndarray) -> Parts:
    d = (x > 0).astype(np.float64)
    return x * d, d, np.zeros_like(x)


def _linear(x: np.ndarray) -> Parts:
    return x, np.ones_like(x), np.zeros_like(x)


def _erf(x: np.ndarray) -> Parts:
    f = _special().erf(x)
    d = (2.0 / np.sqrt(np.pi)) * np.exp(-x * x)
    return f, d, -2.0 * x * d * f


def sigmoid_parts(x: np.ndarray) -> Parts:
    """σ(x), σ′ = σ(1−σ) and σ″ = σ′(1−2σ) (the gate of the minimalRNN, eq. 5)."""
    s = _special().expit(x)
    d = s * (1.0 - s)
    return s, d, d * (1.0 - 2.0 * s)


def _sigmoid(x: np.ndarray) -> Parts:
    s, d, d2 = sigmoid_parts(x)
    return s, d, s * d2


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, (0.0,)),
    "relu": Activation("relu", _relu, (0.0,)),
    "linear": Activation("linear", _linear, (0.0,)),
    "erf": Activation("erf", _erf, (0.0,)),
    "sigmoid": Activation("sigmoid", _sigmoid, (0.0,)),
}


def activation(name: str) -> Activation:
    """The activation called ``name``; a one-line error lists the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ProbeParameterError(
            f"meanfield: unknown activation phi={name!r}; known: {', '.join(ACTIVATIONS)}"
        ) from None
