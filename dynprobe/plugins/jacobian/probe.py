"""The ``jacobian`` probe: conditioning of the end-to-end Jacobian J = ∂h_T/∂h_0 = J_T ⋯ J_1.

Along trajectories of a System under its own drive, for each horizon T: the singular values of
J (by a dense float64 SVD, where float64 resolves them; in the log domain from the scaled QR
accumulation at any T — :mod:`dynprobe.plugins.jacobian.product`), the spectral norm ‖J‖₂ = σ₁,
the condition number σ₁/σ_N, the mean squared singular value (1/N) tr JJᵀ (mean-field: χ₁^T) and
the variance of the spectrum of JJᵀ (mean-field: eq. 12). Per step: the spectral *norm* and the
spectral *radius* of the one-step Jacobian J_t — two different things (a non-normal J_t can have
‖J_t‖₂ > 1 > ρ(J_t)) that a well-known figure conflates — and (1/N) tr J_tJ_tᵀ (eq. 11). And the
gradient-norm propagation ‖∂h_T/∂h_t‖ for t = 0..T (backpropagation through time).

Cost, per trajectory and step: one tangent map on N columns, one N×N QR and one triangular
product — O(N³), and nothing else. The dense SVD is taken of the QR factor D·R̂ (the same
singular values as the product, :func:`~dynprobe.plugins.jacobian.product.factor_singular_values`),
so no explicit product is carried; the backward pass replays the forward factors
(J_t = Q_t R_t Q_{t−1}ᵀ, so ‖∂h_T/∂h_t‖ = ‖R_T ⋯ R_{t+1}‖ in both norms) instead of
recomputing one-step Jacobians, unless they exceed :data:`REPLAY_BYTES`; and σ₁ of each
backward product comes from warm-started Lanczos (:mod:`dynprobe.plugins.jacobian.norms`).

An ensemble System (stacked networks) adds a ``network`` dimension; ``fraction_norm_exceeds_one``
is the share of (network, sample) pairs with ‖J‖₂ > 1 (scrambling paper Fig. 5).

References
----------
Mean-field paper §3.2.2 eq. (10)–(12); scrambling paper Fig. 5; fading-memory paper §4.1
(gradient propagation) and App. A (QR accumulation).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import TRACE_MIN_CALLS, TangentMap, qr_positive
from dynprobe.linearize import jacobian as one_step_jacobian

from .norms import spectral_norm
from .product import ScaledProduct, spectrum, triangular_product

__all__ = ["jacobian", "gradient_norms"]


def _moments(log_sv: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """log mean σ², the normalized variance m₂/m₁² − 1 of JJᵀ's spectrum, and log m₁."""
    log_m1 = torch.logsumexp(2 * log_sv, dim=-1) - math.log(n)
    log_m2 = torch.logsumexp(4 * log_sv, dim=-1) - math.log(n)
    normalized = torch.expm1(torch.clamp(log_m2 - 2 * log_m1, max=700.0))
    zero = torch.isneginf(log_m1)  # J = 0 exactly: a spectrum of zeros has no spread
    return log_m1, torch.where(zero, torch.zeros_like(normalized), normalized), log_m2


def _backward(factors: Iterable[Tensor], n: int, lead: tuple[int, ...], device: torch.device,
              triangular: bool = False) -> tuple[Tensor, Tensor]:
    """log ‖G_t‖₂ and log(‖G_t‖_F/√N) for t = T..0 from G_{t−1} = G_t F_t with G_T = I, the
    factors F_T, …, F_1 given in that order; G renormalized by its Frobenius norm each step.
    ``triangular``: every F_t is upper triangular (then so is every G_t) and finite (the QR
    factors of :meth:`ScaledProduct.update`)."""
    G = torch.eye(n, dtype=torch.float64, device=device).expand(*lead, n, n).clone()
    log_scale = torch.zeros(lead, dtype=torch.float64, device=device)
    spec = [torch.zeros_like(log_scale)]
    rms = [torch.zeros_like(log_scale)]
    start: list = [None] * max(1, math.prod(lead))
    for F in factors:
        if triangular:
            G = triangular_product(G, F)
        else:
            G = G @ torch.where(torch.isfinite(F), F, torch.zeros_like(F))  # diverged samples: masked later
        fro = torch.linalg.matrix_norm(G)
        G.div_(torch.where(fro > 0, fro, torch.ones_like(fro))[..., None, None])
        log_scale = log_scale + torch.log(fro)
        spec.append(log_scale + torch.log(spectral_norm(G, start)))
        rms.append(log_scale - 0.5 * math.log(n))
    return torch.stack(spec[::-1], dim=-1), torch.stack(rms[::-1], dim=-1)


@torch.no_grad()
def gradient_norms(system: System, states: Sequence[Tensor], start: int) -> tuple[Tensor, Tensor]:
    """log ‖∂h_T/∂h_t‖₂ and log(‖∂h_T/∂h_t‖_F/√N) for t = 0..T, from the stored states h_0..h_T
    (``start`` = drive time of h_0); backward accumulation G_{t−1} = G_t J_t, renormalized, with
    every one-step Jacobian J_t recomputed from its state.

    Returns ``(log_norm, log_rms)``, each ``[*lead, T + 1]``.

    References
    ----------
    Fading-memory paper §4.1 (gradient propagation through time).
    """
    T = len(states) - 1
    h_T = states[-1]
    factors = (one_step_jacobian(system, states[t - 1], start + t - 1).to(torch.float64) for t in range(T, 0, -1))
    return _backward(factors, system.state_dim, tuple(h_T.shape[:-1]), h_T.device)


TRACED_FROM_N = 256
"""From this state size on, the tangent map is traced even for a short run (``DYNPROBE_NO_TRACE``
still turns tracing off)."""
REPLAY_BYTES = 1 << 29
"""The backward pass replays the forward QR factors R_t (T·N² floats per trajectory) when they
fit in this many bytes; beyond, it recomputes each one-step Jacobian from the stored states."""


def _fits(T: int, lead: tuple[int, ...], n: int) -> bool:
    return T * math.prod(lead) * n * n * 8 <= REPLAY_BYTES


def jacobian(
    system: System,
    *,
    horizons: tuple[int, ...] = (1, 10, 100),
    samples: int = 4,
    burn_in: int = 0,
    gradient: bool = True,
    step_stats: bool = True,
    seed: int = 0,
) -> xr.Dataset:
    """Singular values and conditioning of the end-to-end Jacobian ∂h_T/∂h_0 over horizons T.

    Parameters
    ----------
    system
        Any System; an ensemble adds a ``network`` dimension.
    horizons
        The T's (steps after ``burn_in``) at which J_T ⋯ J_1 is analysed.
    samples
        Trajectories, from the System's initial-state distribution with ``seed``.
    burn_in
        Steps iterated before h_0 (e.g. to reach the attractor).
    gradient
        Also compute ‖∂h_T/∂h_t‖ for t = 0..T at the largest T (a backward pass).
    step_stats
        Also record the spectral norm, spectral radius and (1/N) tr J_tJ_tᵀ of every one-step
        Jacobian (an eigenvalue problem per step).
    seed
        Seeds the initial states and the random orthogonal start Q₀ of the QR accumulation.

    Returns
    -------
    xarray.Dataset
        ``log_singular_values[.., sample, horizon, sv]`` (nats), ``singular_values`` and
        ``sv_resolved`` (dense float64 SVD), ``log_spectral_norm``, ``norm_exceeds_one``,
        ``log_condition_number``, ``log_mean_sq_sv``, ``var_jjt``, ``normalized_var_jjt``
        ``[.., sample, horizon]``, ``fraction_norm_exceeds_one[horizon]``; with ``step_stats``
        ``step_spectral_norm``, ``step_spectral_radius``, ``step_mean_sq_sv [.., sample, step]``;
        with ``gradient`` ``log_grad_norm``, ``log_grad_rms [.., sample, time]``; ``diverged``.

    References
    ----------
    Mean-field paper §3.2.2 eq. (10)–(12); scrambling paper Fig. 5; fading-memory paper §4.1.

    Example
    -------
    >>> ds = dynprobe.run("jacobian", dynprobe.wrap(nn.RNN(1, 64), dtype=torch.float64), horizons=(1, 10, 100))
    >>> ds.log_spectral_norm.mean("sample")
    """
    horizons = sorted({int(t) for t in horizons})
    if not horizons or horizons[0] < 1:
        raise ProbeParameterError(f"probe 'jacobian': horizons must be positive step counts, got {list(horizons)}")
    if samples < 1 or burn_in < 0:
        raise ProbeParameterError(f"probe 'jacobian': need samples >= 1 and burn_in >= 0 (got {samples}, {burn_in})")
    T = horizons[-1]
    n = system.state_dim
    system.check_run(burn_in + T)
    h = system.advance(system.initial_state(samples, seed=seed), burn_in)
    lead = tuple(h.shape[:-1])
    gen = torch.Generator().manual_seed(int(seed) + 1)
    Q0, _ = qr_positive(torch.randn(*lead, n, n, generator=gen, dtype=torch.float64))
    product = ScaledProduct.start(Q0.to(system.device))
    # one step maps N tangent columns: from TRACED_FROM_N on, a trace's one-off cost (≈ 0.5 s) is
    # repaid in a few steps (GRU N = 512: 27 ms a step traced, 88 ms eager), however short the run
    tangent = TangentMap(system, expected_calls=T if n < TRACED_FROM_N else max(T, TRACE_MIN_CALLS))
    diverged = torch.zeros(lead, dtype=torch.bool)
    replay = gradient and _fits(T, lead, n)
    states, factors = [h], []
    per_horizon: dict[str, list[Tensor]] = {"log_sv": [], "sv": [], "ok": []}
    steps: dict[str, list[Tensor]] = {"norm": [], "radius": [], "msq": []}
    with torch.no_grad():
        for t in range(1, T + 1):
            Q = product.Q
            h, JQ = tangent(h, Q.to(system.dtype), burn_in + t - 1)
            diverged |= ~torch.isfinite(h).all(-1).cpu()
            JQ = JQ.to(torch.float64)
            if step_stats:
                J = JQ @ Q.mT
                J = torch.where(torch.isfinite(J), J, torch.zeros_like(J))  # diverged: masked later
                steps["norm"].append(torch.linalg.matrix_norm(J, ord=2))
                steps["radius"].append(torch.linalg.eigvals(J).abs().amax(-1))
                steps["msq"].append((J * J).sum((-2, -1)) / n)
            finite = torch.isfinite(JQ).all(-1).all(-1) & torch.isfinite(h).all(-1)
            diverged |= ~finite.cpu()
            R = product.update(JQ, keep=finite)
            if replay:
                factors.append(R)
            elif gradient:
                states.append(h)
            if t in horizons:
                log_sv, sv, ok = spectrum(product.log_d, product.Rhat)
                per_horizon["log_sv"].append(log_sv)
                per_horizon["sv"].append(sv)
                per_horizon["ok"].append(ok)
    if replay:  # J_t = Q_t R_t Q_{t-1}^T and norms are orthogonally invariant: ‖∂h_T/∂h_t‖ = ‖R_T ⋯ R_{t+1}‖
        grad = _backward(reversed(factors), n, lead, product.Q.device, triangular=True)
    else:
        grad = gradient_norms(system, states, burn_in) if gradient else None
    return _dataset(system, horizons, per_horizon, steps, grad, diverged, tangent.mode)


def _log_condition(log_sv: np.ndarray) -> np.ndarray:
    """log σ₁ − log σ_N, and +∞ for a singular product (σ_N = 0, J = 0 included)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(log_sv[..., -1]), np.inf, log_sv[..., 0] - log_sv[..., -1])


def _dataset(system: System, horizons: list[int], per_horizon: dict, steps: dict, grad, diverged: Tensor,
             linearization: str) -> xr.Dataset:
    n = system.state_dim
    ens = system.networks is not None
    lead = ["network", "sample"] if ens else ["sample"]
    bad = diverged.numpy()

    def stack(values: list[Tensor], axis: int) -> np.ndarray:
        arr = torch.stack(values, dim=axis).cpu().numpy()
        arr = arr.astype(np.float64) if arr.dtype != bool else arr
        return arr

    log_sv_t = torch.stack(per_horizon["log_sv"], dim=-2)  # [*lead, horizon, sv]
    log_m1, normalized, _ = _moments(log_sv_t, n)
    log_sv = log_sv_t.cpu().numpy()
    sv = stack(per_horizon["sv"], -2)
    ok = stack(per_horizon["ok"], -2) & ~bad[..., None, None]
    sv = np.where(ok, sv, np.nan)
    log_norm = log_sv[..., 0]
    with np.errstate(over="ignore"):
        m1 = np.exp(log_m1.cpu().numpy())
    with np.errstate(over="ignore"):
        var = normalized.cpu().numpy() * m1 * m1
    fields = {
        "log_singular_values": ([*lead, "horizon", "sv"], log_sv, "log singular values of dh_T/dh_0 (log-domain QR)",
                                "1"),
        "singular_values": ([*lead, "horizon", "sv"], sv, "singular values of dh_T/dh_0 (dense float64 SVD; NaN "
                            "where not resolved)", "1"),
        "sv_resolved": ([*lead, "horizon", "sv"], ok, "a dense float64 SVD resolves this singular value (>= 1e-8 sigma_1)",
                        "1"),
        "log_spectral_norm": ([*lead, "horizon"], log_norm, "log spectral norm log ||dh_T/dh_0||_2", "1"),
        "norm_exceeds_one": ([*lead, "horizon"], log_norm > 0, "spectral norm ||dh_T/dh_0||_2 > 1", "1"),
        "log_condition_number": ([*lead, "horizon"], _log_condition(log_sv),
                                 "log condition number log(sigma_1 / sigma_N) (+inf when singular)", "1"),
        "log_mean_sq_sv": ([*lead, "horizon"], log_m1.cpu().numpy(), "log mean squared singular value log(tr(J J^T)/N)",
                           "1"),
        "var_jjt": ([*lead, "horizon"], var, "variance of the spectrum of J J^T", "1"),
        "normalized_var_jjt": ([*lead, "horizon"], normalized.cpu().numpy(),
                               "variance of the J J^T spectrum over its squared mean", "1"),
        "diverged": (lead, bad, "trajectory became non-finite", "1"),
    }
    frac = np.mean(np.where(bad[..., None], np.nan, log_norm > 0), axis=tuple(range(len(lead))))
    fields["fraction_norm_exceeds_one"] = (["horizon"], frac, "fraction of networks x samples with ||J||_2 > 1", "1")
    coords = {
        "sample": ("sample", np.arange(log_sv.shape[len(lead) - 1]), {"long_name": "trajectory", "units": "1"}),
        "horizon": ("horizon", np.asarray(horizons, dtype=np.int64), {"long_name": "horizon T", "units": "step"}),
        "sv": ("sv", np.arange(1, n + 1), {"long_name": "singular value index (1 = largest)", "units": "1"}),
    }
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    if steps["norm"]:
        fields["step_spectral_norm"] = ([*lead, "step"], stack(steps["norm"], -1),
                                        "spectral norm ||J_t||_2 of the one-step Jacobian", "1")
        fields["step_spectral_radius"] = ([*lead, "step"], stack(steps["radius"], -1),
                                          "spectral radius max|eig(J_t)| of the one-step Jacobian", "1")
        fields["step_mean_sq_sv"] = ([*lead, "step"], stack(steps["msq"], -1),
                                     "tr(J_t J_t^T)/N of the one-step Jacobian (eq. 11)", "1")
        coords["step"] = ("step", np.arange(1, horizons[-1] + 1), {"long_name": "step t of J_t = dh_t/dh_(t-1)",
                                                                   "units": "step"})
    if grad is not None:
        fields["log_grad_norm"] = ([*lead, "time"], grad[0].cpu().numpy(), "log ||dh_T/dh_t||_2 (T = largest horizon)",
                                   "1")
        fields["log_grad_rms"] = ([*lead, "time"], grad[1].cpu().numpy(),
                                  "log(||dh_T/dh_t||_F / sqrt(N)) (T = largest horizon)", "1")
        coords["time"] = ("time", np.arange(horizons[-1] + 1), {"long_name": "state index t of dh_T/dh_t", "units": "step"})
    if bad.any():
        warnings.warn(f"jacobian: {int(bad.sum())} of {bad.size} trajectories diverged (non-finite state); they are "
                      "flagged in 'diverged'", RuntimeWarning, stacklevel=3)
        for key in ("log_singular_values", "log_spectral_norm", "log_condition_number", "log_mean_sq_sv", "var_jjt",
                    "normalized_var_jjt", "log_grad_norm", "log_grad_rms"):
            if key in fields:
                dims, value, long_name, units = fields[key]
                mask = bad.reshape(bad.shape + (1,) * (value.ndim - bad.ndim))
                fields[key] = (dims, np.where(mask, np.nan, value), long_name, units)
    ds = xr.Dataset({k: (d, v, {"long_name": ln, "units": u}) for k, (d, v, ln, u) in fields.items()}, coords=coords)
    ds.attrs.update({"state_dim": n, "linearization": linearization})
    return ds
