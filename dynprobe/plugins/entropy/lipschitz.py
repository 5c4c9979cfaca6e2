"""Lipschitz constants of a step: a lower bound by power iteration, upper bounds from weights.

* :func:`spectral_norms` — ‖J(h)‖₂ at a batch of states, matrix-free: power iteration on JᵀJ
  with ``torch.func.jvp`` (J v) and ``torch.func.vjp`` (Jᵀ w). Every iterate's ‖J v‖ with
  ‖v‖ = 1 is ≤ ‖J‖₂, so the maximum over visited (and perturbed) states is a *lower* bound on
  the Lipschitz constant L_f over any region containing them.
* :func:`weight_norm_bound` — an *upper* bound where the cell allows: an Elman RNN
  h' = φ(W h + U u + b) (tanh or ReLU, sup|φ′| = 1, any number of layers via the matrix of
  block norms) in the Euclidean norm; a one-layer LSTM in the norm max(‖Δh‖∞, ‖Δc‖∞) on its
  invariant box |h| ≤ 1, |c_j| ≤ 1/(1 − f̄_j) (derived below, in the spirit of Miller & Hardt 2019,
  Prop. 2). Other cells, and feedback drives (whose closed loop runs through a readout), get no
  bound and say why.
* :func:`contractivity` — the verdict of Def. 1 of the attractors paper.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.1–3.2 (Def. 1, eq. 4),
§4.2 (Thm 1 and the remark relating L_f to eigenvalues); Miller & Hardt (2019), "Stable
recurrent models", §4 (stable LSTMs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.func import jvp, vjp

from dynprobe import System
from dynprobe.drives import AutonomousDrive, ConstantDrive, FeedbackDrive, SequenceDrive

__all__ = ["spectral_norms", "WeightBound", "weight_norm_bound", "lstm_bound", "contractivity"]


def spectral_norms(system: System, h: Tensor, t: int = 0, *, iters: int = 30, seed: int = 0) -> Tensor:
    """‖J(h)‖₂ of the closed-loop step at states ``h: [*lead, N]`` by power iteration on JᵀJ.

    Returns ``[*lead]`` estimates, each ≤ the true norm (a Rayleigh quotient).
    """
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(h.shape, generator=gen, dtype=torch.float64).to(dtype=h.dtype, device=h.device)
    v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)

    def f(x: Tensor) -> Tensor:
        return system.map(x, t)

    _, pullback = vjp(f, h)
    sigma = torch.zeros(h.shape[:-1], dtype=h.dtype, device=h.device)
    for _ in range(iters):
        _, jv = jvp(f, (h,), (v,))
        sigma = torch.maximum(sigma, torch.linalg.vector_norm(jv, dim=-1))
        w = pullback(jv)[0]
        norm = torch.linalg.vector_norm(w, dim=-1, keepdim=True)
        v = torch.where(norm > 0, w / torch.where(norm > 0, norm, 1), v)
    return sigma.detach()


@dataclass(frozen=True)
class WeightBound:
    """An upper bound on the Lipschitz constant of the step, or the reason there is none."""

    value: float  # NaN when there is no bound
    norm: str
    method: str

    @property
    def available(self) -> bool:
        return math.isfinite(self.value)


def _none(reason: str) -> WeightBound:
    return WeightBound(math.nan, "", f"none: {reason}")


def _elman_bound(system: System, layers: int) -> WeightBound:
    """‖J‖₂ ≤ ‖B‖₂ with B the matrix of block-norm bounds: B_ll = ‖W_hh^l‖₂ and
    B_lk = ‖W_ih^l‖₂ B_{l−1,k} for k < l (layer l reads the new h of layer l − 1)."""
    p = system.params
    arch = system.arch
    w = [float(torch.linalg.matrix_norm(p[arch.param("recurrent", l)].double(), ord=2)) for l in range(layers)]
    u = [float(torch.linalg.matrix_norm(p[arch.param("input", l)].double(), ord=2)) for l in range(layers)]
    B = np.zeros((layers, layers))
    for l in range(layers):
        B[l, l] = w[l]
        for k in range(l):
            B[l, k] = u[l] * B[l - 1, k]
    value = float(np.linalg.norm(B, 2))
    return WeightBound(value, "euclidean", "Elman RNN: ||J||_2 <= ||W_hh||_2 sup|phi'| (block norms over layers)")


def _input_range(system: System) -> Tensor | None:
    """All inputs the drive can apply, as rows ``[K, M]``; None when they depend on the state."""
    drive = system.drive
    M = system.input_dim
    if isinstance(drive, AutonomousDrive):
        return torch.zeros(1, M, dtype=torch.float64)
    if isinstance(drive, ConstantDrive):
        return drive.value.to(torch.float64).expand(M).reshape(1, M)
    if isinstance(drive, SequenceDrive):
        return drive.rows().to(torch.float64)
    return None


def lstm_bound(w_hh: Tensor, w_ih: Tensor, bias: Tensor | None, inputs: Tensor) -> tuple[float, Tensor]:
    """``(L, f̄ [H])``: Lipschitz bound of a one-layer LSTM step in max(‖Δh‖∞, ‖Δc‖∞) on the box
    |h| ≤ 1, |c_j| ≤ C_j = 1/(1 − f̄_j), which the step maps into itself.

    With gate rows (i, f, g, o) of W (recurrent) and U (input), f̄_j = σ(‖W_f,j‖₁ + max_u (U_f u)_j
    + b_f,j) bounds the forget gate, and differentiating c' = f c + i g, h' = o tanh(c') with
    σ′ ≤ ¼, tanh′ ≤ 1, |g|, i, o ≤ 1 bounds every row sum of |J| by
    L = max_j ( ‖W_o,j‖₁/4 + f̄_j + C_j ‖W_f,j‖₁/4 + ‖W_i,j‖₁/4 + ‖W_g,j‖₁ ).
    """
    W = w_hh.detach().to(torch.float64)
    w_ih = w_ih.detach()
    bias = None if bias is None else bias.detach()
    H = W.shape[1]
    Wi, Wf, Wg, Wo = (W[k * H:(k + 1) * H].abs().sum(dim=1) for k in range(4))
    Uf = w_ih.to(torch.float64)[H:2 * H]
    drive_f = (inputs @ Uf.T).max(dim=0).values if inputs.numel() else torch.zeros(H, dtype=torch.float64)
    bf = bias.to(torch.float64)[H:2 * H] if bias is not None else torch.zeros(H, dtype=torch.float64)
    fbar = torch.sigmoid(Wf + drive_f + bf)
    C = 1.0 / (1.0 - fbar)
    rows = Wo / 4 + fbar + C * Wf / 4 + Wi / 4 + Wg
    return float(rows.max()), fbar


def weight_norm_bound(system: System) -> WeightBound:
    """An upper bound on L_f from the weights when the System's cell allows one."""
    arch = system.arch
    if isinstance(system.drive, FeedbackDrive):
        return _none("the feedback drive closes the loop through a readout; no weight bound for the closed loop")
    two_weights = arch.param("recurrent") is not None and arch.param("input") is not None
    if arch.family == "elman" and arch.nonlinearity in ("tanh", "relu") and two_weights and not arch.params("input_map"):
        return _elman_bound(system, arch.layers)
    if arch.family == "lstm" and two_weights:
        if arch.layers != 1 or arch.proj_size:
            return _none("the LSTM bound is derived for one layer without projection")
        inputs = _input_range(system)
        if inputs is None:
            return _none(f"inputs of the {system.drive.kind} drive are not known in advance")
        p = system.params
        biases = [p[n] for role in ("input_bias", "recurrent_bias", "bias") for n in arch.params(role)]
        bias = sum(biases) if biases else None
        value, fbar = lstm_bound(p[arch.param("recurrent")], p[arch.param("input")], bias, inputs)
        return WeightBound(value, "max(|dh|_inf, |dc|_inf) on |h|<=1, |c_j|<=1/(1-f_j)",
                           f"one-layer LSTM row-sum bound (forget gate <= {float(fbar.max()):.4g})")
    if arch.family == "custom":
        return _none("the System does not say which cell it is (its adapter filled no Architecture record)")
    return _none(f"no weight-norm bound implemented for {arch.family_name} cells")


def contractivity(upper: WeightBound, lower: float) -> tuple[str, str]:
    """Def. 1 verdict: ``contractive`` (a certificate L < 1 in some norm), ``not_contractive``
    (‖J(h)‖₂ ≥ 1 at a state of the region: not a contraction in the Euclidean norm), or
    ``undetermined``; with the reason."""
    if upper.available and upper.value < 1:
        return "contractive", f"weight-norm bound L <= {upper.value:.4g} < 1 in the norm {upper.norm}"
    if lower >= 1:
        return "not_contractive", (f"||J(h)||_2 = {lower:.4g} >= 1 at a visited or perturbed state: not a contraction "
                                   "in the Euclidean norm on any region containing it")
    reason = "the Lipschitz lower bound is < 1"
    reason += f" and the weight bound {upper.value:.4g} is >= 1" if upper.available else f"; {upper.method}"
    return "undetermined", reason
