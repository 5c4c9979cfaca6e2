"""Mean-field hyper-parameters read off an actual network's weights, and what theory predicts.

σ_w² = N·E[W_ij²], σ_v² = fan_in·E[V_ij²], σ_b² = Var(b), μ_b = mean(b) (mean-field paper §3:
W and V are zero-mean, so their variance is their second moment — and the second moment is what
enters q = σ_w² Q + σ_v² R + σ_b², mean included), the weight law (orthogonal when all singular values of W
agree), and the input second moment R from the System's drive (autonomous: 0; constant ū and
sequences: the mean square of the input the cell sees — x for the vanilla RNN, x̃ = tanh(W_x x)
for the minimalRNN). Works on ``VanillaRNN`` / ``MinimalRNN`` modules and Systems, and on
single-layer ``nn.RNN`` / ``nn.RNNCell`` (b = b_ih + b_hh). An ensemble is pooled.

:func:`predict_point` is the one-call answer to "what does mean-field theory predict for a
network with these weight statistics": the estimate, χ₁, τ, q*, the predicted largest
Lyapunov exponent ½ log χ₁, and the point to mark on a phase diagram.

References
----------
Mean-field paper §3.1 (vanilla), §3.2 (minimalRNN); eq. (2), (4), (9), (13).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dynprobe import System
from dynprobe.architecture import Architecture
from dynprobe.drives import AutonomousDrive, ConstantDrive, SequenceDrive
from dynprobe.errors import ProbeParameterError, UnsupportedModuleError

from .theory import Grid, predict

__all__ = ["Estimate", "estimate", "predict_point", "Prediction", "input_moment", "network_weights", "mean_field_cell"]

ORTHOGONAL_SPREAD = 1e-3
"""W counts as σ_w·orthogonal when std/mean of its singular values is below this."""


@dataclass(frozen=True)
class Estimate:
    """Mean-field hyper-parameters of one network (standard deviations, not variances)."""

    cell: str
    phi: str
    sigma_w: float
    sigma_v: float
    sigma_b: float
    mu_b: float
    R: float
    weights: str
    hidden_size: int
    input_size: int
    source: str
    sigma12: float = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def hyper(self) -> dict[str, Any]:
        """The keyword arguments of the ``meanfield`` probe this estimate stands for."""
        return {k: getattr(self, k) for k in ("cell", "phi", "sigma_w", "sigma_v", "sigma_b", "mu_b", "R",
                                              "sigma12", "weights")}


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _weights_law(W: np.ndarray) -> str:
    mats = W.reshape(-1, *W.shape[-2:])
    sv = np.linalg.svd(mats, compute_uv=False)
    spread = np.std(sv, axis=-1) / np.maximum(np.mean(sv, axis=-1), 1e-300)
    return "orthogonal" if np.all(spread < ORTHOGONAL_SPREAD) else "gaussian"


def mean_field_cell(arch: Architecture) -> str | None:
    """The theory's cell for a network of this architecture: ``vanilla`` for a one-layer Elman
    RNN with a known activation, ``minimalrnn``; ``None`` when the theory does not describe it."""
    if arch.family == "elman" and arch.layers == 1 and arch.nonlinearity and arch.param("recurrent") is not None:
        return "vanilla"
    if arch.family == "minimalrnn" and arch.param("input_map") is not None:
        return "minimalrnn"
    return None


def network_weights(target: System) -> tuple[str, str, dict[str, np.ndarray], str]:
    """(cell, phi, {W, V, b[, W_x]}, description) of a supported network's System."""
    if isinstance(target, System):
        arch, p = target.arch, {k: _np(v) for k, v in target.params.items()}
        if arch.family == "elman" and arch.layers != 1:
            raise UnsupportedModuleError(
                f"meanfield: {target.name} has {arch.layers} layers; the mean-field theory here is for one "
                "recurrent layer; estimate a single-layer network or pass sigma_w=..., sigma_v=... explicitly"
            )
        cell = mean_field_cell(arch)
        if cell is not None:
            W, V = p[arch.param("recurrent")], p[arch.param("input")]
            biases = [p[n] for role in ("bias", "input_bias", "recurrent_bias") for n in arch.params(role)]
            weights = {"W": W, "V": V, "b": sum(biases) if biases else np.zeros(W.shape[:-1])}
            if cell == "minimalrnn":
                weights["W_x"] = p[arch.param("input_map")]
            return cell, arch.nonlinearity, weights, target.describe()
        raise UnsupportedModuleError(
            f"meanfield: cannot read mean-field hyper-parameters from {target.name} ({target.kind}); supported: "
            "VanillaRNN, MinimalRNN, one-layer nn.RNN / nn.RNNCell; or pass sigma_w=..., sigma_v=... explicitly"
        )
    raise UnsupportedModuleError(
        f"meanfield: cannot read mean-field hyper-parameters from {type(target).__name__}; supported: VanillaRNN, "
        "MinimalRNN, one-layer nn.RNN / nn.RNNCell; or pass sigma_w=..., sigma_v=... explicitly"
    )


def input_moment(system: System, cell: str, W_x: np.ndarray | None, steps: int = 1000) -> tuple[float | None, float]:
    """(R, Σ₁₂) of the inputs the System's drive gives: the mean square of the cell's input per
    coordinate; Σ₁₂ = 1 for autonomous and constant drives (both copies see the same input).
    R is ``None`` when the drive cannot tell (feedback)."""
    drive = system.drive
    if isinstance(drive, AutonomousDrive):
        return 0.0, 1.0
    if isinstance(drive, ConstantDrive):
        x = drive.level(system)[None]
    elif isinstance(drive, SequenceDrive):
        x = drive.rows(steps)  # every input row the sequence holds
    else:  # feedback (or a third party's drive): the inputs depend on the state
        return None, 1.0
    x = _np(x).reshape(-1, system.input_dim)
    if cell == "minimalrnn":
        x = np.tanh(x @ W_x.reshape(-1, *W_x.shape[-2:])[0].T)
    return float(np.mean(x * x)), 1.0


def estimate(target: System | nn.Module, *, R: float | None = None, phi: str | None = None) -> Estimate:
    """Estimate σ_w, σ_v, σ_b, μ_b (and R from the drive unless given) from a network.

    Parameters
    ----------
    target
        A System (from :func:`dynprobe.wrap`) or a supported module (wrapped first, autonomous).
    R
        The input second moment; by default read from the System's drive.
    phi
        Override the activation (e.g. for a System wrapped by the generic adapter).

    Returns
    -------
    Estimate

    References
    ----------
    Mean-field paper §3.1, §3.2 (the parameterization W ~ N(0, σ_w²/N), V ~ N(0, σ_v²/fan_in)).
    """
    if isinstance(target, System):
        system = target
    elif isinstance(target, nn.Module):
        import dynprobe

        system = dynprobe.wrap(target)
    else:
        raise UnsupportedModuleError(
            f"meanfield: cannot read mean-field hyper-parameters from a {type(target).__name__}; pass a System or a "
            "VanillaRNN, MinimalRNN, one-layer nn.RNN / nn.RNNCell"
        )
    cell, found_phi, p, source = network_weights(system)
    W, V, b = p["W"], p["V"], p["b"]
    n, fan_in = W.shape[-1], V.shape[-1]
    notes = [f"pooled over an ensemble of {system.networks} networks"] if system.networks is not None else []
    if R is None:
        R, sigma12 = input_moment(system, cell, p.get("W_x"))
        if R is None:
            raise ProbeParameterError(
                "meanfield: the System's drive is feedback, so the input second moment R is unknown; pass R=..."
            )
    else:
        sigma12 = 1.0
    return Estimate(
        cell=cell,
        phi=phi or found_phi,
        sigma_w=float(np.sqrt(n * np.mean(W * W))),
        sigma_v=float(np.sqrt(fan_in * np.mean(V * V))),
        sigma_b=float(np.std(b)),
        mu_b=float(np.mean(b)),
        R=float(R),
        weights=_weights_law(W),
        hidden_size=int(n),
        input_size=int(system.input_dim),
        source=source,
        sigma12=sigma12,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Prediction:
    """What mean-field theory predicts at one network's hyper-parameters."""

    estimate: Estimate
    values: Mapping[str, float]

    @property
    def chi_1(self) -> float:
        return self.values["chi_1"]

    @property
    def tau(self) -> float:
        return self.values["tau"]

    def point(self, dims: Sequence[str] = ("sigma_w", "mu_b")) -> dict[str, float]:
        """Coordinates of this network on a phase diagram over ``dims``."""
        return {d: float(getattr(self.estimate, d)) for d in dims}


def predict_point(target: System | nn.Module | Estimate, *, horizons: Sequence[int] = (1, 10, 100),
                  **overrides: Any) -> Prediction:
    """Estimate a network's hyper-parameters (``overrides`` replace any of them, e.g. ``R=0.5`` or
    ``sigma12=0.0``) and evaluate the theory there: χ₁, χ_c*, τ, q*, Q*, c*, ½ log χ₁, σ²_JJᵀ(T).

    Example
    -------
    >>> p = predict_point(dynprobe.model("vanilla", sigma_w=1.5))
    >>> p.chi_1, p.tau, p.point(("sigma_w", "mu_b"))
    """
    est = target if isinstance(target, Estimate) else estimate(target, R=overrides.pop("R", None),
                                                                phi=overrides.pop("phi", None))
    est = replace(est, **overrides)
    grid = Grid.of(est.cell, est.phi, sigma_w=est.sigma_w, sigma_v=est.sigma_v, sigma_b=est.sigma_b, mu_b=est.mu_b,
                   R=est.R, sigma12=est.sigma12)
    out = predict(grid, weights=est.weights, horizons=horizons)
    values: dict[str, Any] = {}
    for key, value in out.items():
        arr = np.asarray(value)
        values[key] = arr.item() if arr.ndim == 0 else arr.tolist()
    return Prediction(est, values)
