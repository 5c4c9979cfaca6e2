"""Critical initialization: Algorithm 1 for the minimalRNN, the χ₁ = 1 line for the vanilla RNN.

minimalRNN (Algorithm 1, given q*, μ_b, R):
  E[u²] = ∫Dz σ²(√q* z + μ_b),  E[(1−u)²] = ∫Dz (1 − σ(√q* z + μ_b))²,
  Q* = R E[(1−u)²] / (1 − E[u²])                                            (eq. 7)
  E[u′²] = ∫Dz σ′(√q* z + μ_b)²,  σ_w² = (1 − E[u²]) / ((Q* + R) E[u′²])      (eq. 13, χ₁ = 1)
  σ_b² = 0,  σ_v² = (q* − Q* σ_w² − σ_b²) / R.
vanilla (§3.1, §4.2: orthogonal W, σ_b² = 0, given q*, μ_b, R):
  σ_w² = 1 / E[φ′(√q* z + μ_b)²]   (χ₁ = 1, eq. 4),  σ_v² = (q* − σ_w² E[φ²] − σ_b²) / R,  Q* = E[φ²].
A request with σ_v² < 0 (q* too small for the recurrent part alone) is infeasible and refused.

References
----------
Mean-field paper §3.2.2, Algorithm 1; §4.2 (critical initialization with orthogonal or Gaussian W).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from dynprobe.errors import ProbeParameterError, UnsupportedModuleError
from dynprobe.weights import draw_gaussian, draw_recurrent, generator_for

from .activations import activation, sigmoid_parts
from .quadrature import expect_1d
from .theory import Grid, predict

__all__ = ["critical_hyper", "critical_init"]


def critical_hyper(cell: str, *, q_star: float, mu_b: float = 0.0, R: float = 1.0,
                   phi: str = "tanh") -> dict[str, float]:
    """The critical (χ₁ = 1) hyper-parameters for ``cell`` at fixed point q*, bias mean μ_b and
    input second moment R — Algorithm 1 for the minimalRNN, its analogue for the vanilla RNN.

    Returns ``{"sigma_w", "sigma_v", "sigma_b", "Q_star"}`` (standard deviations, and Q*).
    """
    for name, value in (("q_star", q_star), ("R", R)):
        if not (value > 0 and math.isfinite(value)):
            raise ProbeParameterError(f"critical_init: {name}={value} must be a finite number > 0")
    if not math.isfinite(mu_b):
        raise ProbeParameterError(f"critical_init: mu_b={mu_b} must be finite")
    q, mu = np.array([q_star], dtype=np.float64), np.array([mu_b], dtype=np.float64)
    sigma_b2 = 0.0
    if cell == "minimalrnn":

        def integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
            s, d, _ = sigmoid_parts(x)
            return s * s, (1 - s) ** 2, d * d

        e_u2, e_1u2, e_du2 = (v[0] for v in expect_1d(q, mu, (0.0,), integrands))
        Q = R * e_1u2 / (1.0 - e_u2)
        sigma_w2 = (1.0 - e_u2) / (Q + R) / e_du2
        sigma_v2 = (q_star - Q * sigma_w2 - sigma_b2) / R
    elif cell == "vanilla":
        act = activation(phi)

        def integrands(x: np.ndarray) -> tuple[np.ndarray, ...]:
            f, d, _ = act.parts(x)
            return f * f, d * d

        e_f2, e_d2 = (v[0] for v in expect_1d(q, mu, act.breakpoints, integrands))
        if not e_d2 > 0:
            raise ProbeParameterError(f"critical_init: E[phi'^2] = 0 for phi={phi} at q*={q_star}, mu_b={mu_b}")
        sigma_w2 = 1.0 / e_d2
        Q = e_f2
        sigma_v2 = (q_star - sigma_w2 * e_f2 - sigma_b2) / R
    else:
        raise ProbeParameterError(f"critical_init: unknown cell {cell!r}; use 'vanilla' or 'minimalrnn'")
    if sigma_v2 < 0:
        need = q_star - R * sigma_v2
        raise ProbeParameterError(
            f"critical_init: infeasible for cell={cell}, q*={q_star}, mu_b={mu_b}, R={R}: it needs "
            f"sigma_v^2 = {sigma_v2:.4g} < 0 (the recurrent part alone gives q = {need:.4g} > q*); "
            "choose a larger q_star or a smaller R"
        )
    return {"sigma_w": math.sqrt(sigma_w2), "sigma_v": math.sqrt(sigma_v2), "sigma_b": math.sqrt(sigma_b2),
            "Q_star": float(Q)}


def _cell_of(module: nn.Module) -> str:
    name = type(module).__name__
    if name == "MinimalRNN":
        return "minimalrnn"
    if name == "VanillaRNN" or isinstance(module, (nn.RNN, nn.RNNCell)):
        return "vanilla"
    raise UnsupportedModuleError(
        f"critical_init: cannot initialize a {name}; supported: VanillaRNN, MinimalRNN, one-layer nn.RNN / nn.RNNCell"
    )


@torch.no_grad()
def _write_torch_rnn(module: nn.Module, hyper: dict[str, float], mu_b: float, weights: str, seed: int) -> None:
    if isinstance(module, nn.RNN) and (module.num_layers != 1 or module.bidirectional):
        raise UnsupportedModuleError("critical_init: nn.RNN must have one layer and one direction")
    suffix = "_l0" if isinstance(module, nn.RNN) else ""
    gen = generator_for(seed)
    W = getattr(module, f"weight_hh{suffix}")
    V = getattr(module, f"weight_ih{suffix}")
    n, m = W.shape[0], V.shape[1]
    W.copy_(draw_recurrent((), n, hyper["sigma_w"], weights, gen, W.dtype))
    V.copy_(draw_gaussian((n, m), hyper["sigma_v"] / math.sqrt(m), gen, V.dtype))
    if getattr(module, "bias", False):
        getattr(module, f"bias_ih{suffix}").copy_(draw_gaussian((n,), hyper["sigma_b"], gen, W.dtype, mean=mu_b))
        getattr(module, f"bias_hh{suffix}").zero_()
    elif mu_b != 0:
        raise ProbeParameterError("critical_init: mu_b != 0 needs a module with bias=True")


def critical_init(module: nn.Module, *, cell: str | None = None, q_star: float = 0.5, mu_b: float = 0.0,
                  R: float = 1.0, weights: str | None = None, phi: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Initialize ``module`` critically (χ₁ = 1) in place and return the chosen hyper-parameters.

    Parameters
    ----------
    module
        A ``VanillaRNN``, ``MinimalRNN`` or one-layer ``nn.RNN`` / ``nn.RNNCell`` (tanh or relu).
    cell
        ``vanilla`` or ``minimalrnn``; inferred from the module by default.
    q_star, mu_b, R
        The pre-activation variance at the fixed point, the bias mean and the input second
        moment (for the minimalRNN: of x̃ = tanh(W_x x)).
    weights
        ``orthogonal`` (default for vanilla: dynamical isometry needs it, §3.1) or ``gaussian``
        (default for the minimalRNN, for which it makes no difference, §3.2.2).
    phi
        The vanilla activation (read from the module by default).
    seed
        Seeds the draw.

    Returns
    -------
    dict
        ``sigma_w``, ``sigma_v``, ``sigma_b`` (standard deviations), ``Q_star``, and for the record
        ``q_star``, ``mu_b``, ``R``, ``weights``, ``cell``, ``phi`` and ``chi_1`` (eq. 4 / 13
        evaluated at the result; 1 to ~1e-12).

    References
    ----------
    Mean-field paper Algorithm 1, §3.2.2, §4.2.

    Example
    -------
    >>> net = dynprobe.model("minimalrnn", hidden_size=256)
    >>> dynprobe.critical_init(net, q_star=0.5, mu_b=2.0, R=0.5)["sigma_w"]
    """
    inferred = _cell_of(module)
    cell = cell or inferred
    if cell != inferred:
        raise ProbeParameterError(f"critical_init: cell={cell!r} but the module is a {inferred} cell")
    if phi is None:
        phi = getattr(module, "phi", None) or ("relu" if getattr(module, "nonlinearity", "tanh") == "relu" else "tanh")
    if cell == "minimalrnn":
        phi = "sigmoid"
    weights = weights or ("orthogonal" if cell == "vanilla" else "gaussian")
    if weights not in ("orthogonal", "gaussian"):
        raise ProbeParameterError(f"critical_init: weights={weights!r}; use 'orthogonal' or 'gaussian'")
    hyper = critical_hyper(cell, q_star=q_star, mu_b=mu_b, R=R, phi="tanh" if cell == "minimalrnn" else phi)
    if hasattr(module, "reset_parameters") and type(module).__name__ in ("VanillaRNN", "MinimalRNN"):
        extra = {"sigma_x": None} if cell == "minimalrnn" else {}
        module.reset_parameters(sigma_w=hyper["sigma_w"], sigma_v=hyper["sigma_v"], sigma_b=hyper["sigma_b"],
                                mu_b=mu_b, weights=weights, seed=seed, **extra)
    else:
        _write_torch_rnn(module, hyper, mu_b, weights, seed)
    check = predict(Grid.of(cell, phi if cell == "vanilla" else "tanh", sigma_w=hyper["sigma_w"],
                            sigma_v=hyper["sigma_v"], sigma_b=hyper["sigma_b"], mu_b=mu_b, R=R, sigma12=1.0),
                    weights=weights, correlations=False)
    return {**hyper, "q_star": float(q_star), "mu_b": float(mu_b), "R": float(R), "weights": weights, "cell": cell,
            "phi": phi, "chi_1": float(check["chi_1"])}
