"""Mean-field predictions on a grid of hyper-parameters: one call, whole arrays, no Python loop
over grid points.

:func:`predict` solves the fixed points and evaluates every quantity of §3 for the vanilla RNN
or the minimalRNN at all points of a broadcast grid; :func:`cosine_trajectory` iterates the
correlation map through a time-varying input correlation Σ₁₂^t (the paper's Fig. 1 protocol).

The spectrum of JJᵀ over T untied steps (§3.2.2). One step J_t = D_a + D_b W (eq. 10; vanilla:
a = 0, b = φ′(e); minimalRNN: a = σ(e), b = σ′(e)(h − x̃)) has mean χ₁ = μ₁ + μ₂. With a, b
independent across units and steps and of W (the mean-field closure), the normalized moments of
X = PPᵀ, P = J_T ⋯ J_1, obey an exact three-term recursion (m = tr X/N, s = tr X²/N,
d = Σ X_ii²/N, hats divided by m², m_T = χ₁^T):

    d̂′ = (A₄ d̂ + K) / χ₁²,    ŝ′ = ŝ + ((A₄ − μ₁²) d̂ + K − (1 + s₁) μ₂²) / χ₁²,   d̂₀ = ŝ₀ = 1,

with A₄ = E[a⁴], K = 2σ_w² E[a²b²] + σ_w⁴ E[b⁴] (minimalRNN: 2σ_w²(Q*+R)E[σ²σ′²] +
3σ_w⁴(Q*+R)²E[σ′⁴] for Gaussian h and x̃; vanilla: σ_w⁴E[φ′⁴]) and s₁ = −1 for Gaussian W, 0
for orthogonal W; the variance of the spectrum is σ²_JJᵀ(T) = χ₁^{2T}(ŝ_T − 1). For the vanilla
RNN (A₄ = μ₁ = 0) it is exactly linear, χ₁^{2T}·T·(K/μ₂² − 1 − s₁); a gate's diagonal part
adds the multiplicative d̂ term.

The printed eq. (12), χ₁^{2T}(1 + T(2(μ₁ − s₁)μ₂ + σ₁² + σ₂²)/χ₁²), has the linear shape but is
the *second moment*, writes the Wishart term −2s₁μ₂ (not homogeneous in the scale of W; it is
−s₁μ₂²), and eq. (13)'s σ₂² takes (Q*² + R²) for E[(h − x̃)⁴]. Monte-Carlo, N = 1000–1500,
untied, T = 1: tanh vanilla σ_w = 1.5 — second moment 2.85 measured, 2.86 here, 3.85 printed;
minimalRNN σ_w = 6.88, σ_v = 1.39, R = 0.46 — variance 3.4–3.8 measured, 3.37 here, 1.97
printed. (Deep in a strongly gated regime the closure itself degrades at T ≳ 5: there the gate
of a unit and its state are correlated across steps, and even χ₁^T is off by ~5 %.)
``var_jjt`` is the recursion; ``jjt_second_moment_eq12`` keeps the printed formula.

References
----------
Mean-field paper §3.1–3.2, eq. (2)–(13); Pennington, Schoenholz & Ganguli (2018) (S-transform
and s₁); Haagerup & Larsen (2000) (the largest Lyapunov exponent ½ log χ₁ of a product of free
R-diagonal factors: a wide untied network).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dynprobe.errors import ProbeParameterError

from . import minimal, vanilla
from .activations import activation

__all__ = ["Grid", "predict", "cosine_trajectory", "jjt_spectrum", "S1", "CELLS"]

S1 = {"gaussian": -1.0, "orthogonal": 0.0}
"""First Taylor coefficient of the S-transform of WWᵀ's spectrum (eq. 12)."""
CELLS = ("vanilla", "minimalrnn")


@dataclass(frozen=True)
class Grid:
    """Hyper-parameters broadcast to one grid shape (σ's are standard deviations)."""

    cell: str
    phi: str
    sigma_w: np.ndarray
    sigma_v: np.ndarray
    sigma_b: np.ndarray
    mu_b: np.ndarray
    R: np.ndarray
    sigma12: np.ndarray

    @classmethod
    def of(cls, cell: str, phi: str, **values: float | np.ndarray) -> Grid:
        if cell not in CELLS:
            raise ProbeParameterError(f"meanfield: unknown cell {cell!r}; use one of {', '.join(CELLS)}")
        names = ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R", "sigma12")
        arrays = np.broadcast_arrays(*(np.asarray(values[n], dtype=np.float64) for n in names))
        for name, arr in zip(names, arrays):
            if not np.all(np.isfinite(arr)):
                raise ProbeParameterError(f"meanfield: {name} contains NaN or inf; pass finite values")
        for name in ("sigma_w", "sigma_v", "sigma_b", "R"):
            if np.any(arrays[names.index(name)] < 0):
                raise ProbeParameterError(f"meanfield: {name} must be >= 0 (a standard deviation or second moment)")
        s12 = arrays[names.index("sigma12")]
        if np.any(np.abs(s12) > 1):
            raise ProbeParameterError("meanfield: sigma12 is a cosine similarity; pass values in [-1, 1]")
        activation(phi)  # validates the name
        return cls(cell, phi, *(np.array(a) for a in arrays))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.sigma_w.shape


def jjt_spectrum(chi_1: np.ndarray, mu_1: np.ndarray, sigma_1_sq: np.ndarray, mu_2: np.ndarray,
                 sigma_2_sq: np.ndarray, a_fourth: np.ndarray, b_fourth: np.ndarray, s1: float,
                 horizons: Sequence[int]) -> dict[str, np.ndarray]:
    """Mean χ₁^T, variance σ²_JJᵀ(T) (the recursion of the module docstring; ``a_fourth`` = A₄,
    ``b_fourth`` = K) and the printed eq. (12), each ``[..., horizon]``."""
    T = np.asarray(horizons, dtype=np.float64)
    chi = chi_1[..., None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        chi2 = chi_1 * chi_1
        d_rate, d_add = a_fourth / chi2, b_fourth / chi2
        s_from_d = (a_fourth - mu_1 * mu_1) / chi2
        s_add = (b_fourth - (1.0 + s1) * mu_2 * mu_2) / chi2
        d_hat, s_hat = np.ones_like(chi_1), np.ones_like(chi_1)
        normalized = []
        wanted = set(int(t) for t in horizons)
        for t in range(1, int(T.max()) + 1):
            s_hat = s_hat + s_from_d * d_hat + s_add
            d_hat = d_rate * d_hat + d_add
            if t in wanted:
                normalized.append(s_hat - 1.0)
        lookup = dict(zip(sorted(wanted), normalized))
        norm_var = np.stack([lookup[int(t)] for t in T], axis=-1)
        x_printed = (2 * (mu_1 - s1) * mu_2 + sigma_1_sq + sigma_2_sq)[..., None]
        growth = chi ** (2 * T)
        return {
            "mean_sq_sv": chi**T,
            "var_jjt": growth * norm_var,
            "normalized_var_jjt": norm_var,
            "jjt_second_moment_eq12": growth * (1 + T * x_printed / (chi * chi)),
        }


def predict(grid: Grid, *, weights: str = "gaussian", horizons: Sequence[int] = (1, 10, 100),
            correlations: bool = True) -> dict[str, np.ndarray]:
    """Every mean-field quantity at every grid point (arrays of ``grid.shape``; per-horizon
    ones ``[*grid.shape, horizon]``). ``correlations=False`` skips c*, χ_c*, τ (2-D integrals).

    Points without a stable finite fixed point have ``converged = False``, a ``reason``, and NaN
    in every derived quantity.
    """
    if weights not in S1:
        raise ProbeParameterError(f"meanfield: weights={weights!r}; use 'gaussian' or 'orthogonal'")
    shape = grid.shape
    flat = {k: getattr(grid, k).reshape(-1) for k in ("sigma_w", "sigma_v", "sigma_b", "mu_b", "R", "sigma12")}
    sw2, sv2, sb2 = flat["sigma_w"] ** 2, flat["sigma_v"] ** 2, flat["sigma_b"] ** 2
    mu, R, s12 = flat["mu_b"], flat["R"], flat["sigma12"]
    sv2R = sv2 * R
    if grid.cell == "vanilla":
        act = activation(grid.phi)
        fp = vanilla.solve_q(act, sw2, sv2R + sb2, mu)
        ok = fp.converged
        q = fp.x
        mom = vanilla.moments(fp, sw2)
    else:
        fp = minimal.solve_Q(sw2, sv2R + sb2, R, mu)
        ok = fp.converged
        q = sw2 * fp.x + sv2R + sb2
        mom = minimal.moments(fp, sw2, R)
    out = {k: np.where(ok, v, np.nan) for k, v in mom.items()}
    out["q_star"] = np.where(ok, q, np.nan)
    out["chi_q"] = np.where(ok, fp.slope, np.nan)
    chi_1 = out["chi_1"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["lambda_max"] = 0.5 * np.log(chi_1)
    out.update(jjt_spectrum(chi_1, out["mu_1"], out["sigma_1_sq"], out["mu_2"], out["sigma_2_sq"], out.pop("a_fourth"),
                            out.pop("b_fourth"), S1[weights], horizons))
    reason = fp.reason.astype(object)
    if correlations:
        # q* = 0: both copies sit at the same deterministic point; c* = 1 and χ_c* = χ₁ by continuity
        flat_zero = ok & (q == 0.0)
        idx = np.flatnonzero(ok & ~flat_zero)
        c_star = np.where(flat_zero, 1.0, np.nan)
        chi_c = np.where(flat_zero, chi_1, np.nan)
        if idx.size:
            sub = {k: v[idx] for k, v in dict(q=q, mu=mu, sw2=sw2, sv2=sv2, sb2=sb2, R=R, s12=s12, sv2R=sv2R).items()}
            if grid.cell == "vanilla":
                cp = vanilla.solve_c(act, sub["q"], sub["mu"], sub["sw2"], sub["sv2R"], sub["sb2"], sub["s12"],
                                     chi_1[idx])
            else:
                cp = minimal.solve_c(sub["q"], sub["mu"], sub["sw2"], sub["sv2"], sub["sb2"], sub["R"], sub["s12"],
                                     out["mean_gate"][idx], chi_1[idx])
            c_star[idx], chi_c[idx] = cp.x, cp.slope
            bad = idx[~cp.converged]
            reason[bad] = cp.reason[~cp.converged]
            ok = ok & np.isfinite(c_star)
        out["c_star"] = c_star
        out["chi_c"] = chi_c
        with np.errstate(divide="ignore"):
            out["tau"] = np.where(np.abs(chi_c) >= 1.0, np.inf, -1.0 / np.log(np.abs(chi_c)))
        out["tau"] = np.where(np.isfinite(chi_c), out["tau"], np.nan)
    out["converged"] = ok
    out["reason"] = reason.astype(str)
    return {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}


def cosine_trajectory(grid: Grid, schedule: Sequence[float] | np.ndarray, q_star: np.ndarray,
                      mean_term: np.ndarray) -> np.ndarray:
    """c^t for t = 1..T given Σ₁₂^t = ``schedule[t-1]``, from independent initial states.

    Vanilla: e⁰ independent (c⁰ = 0), c^{t+1} = M(c^t; Σ^{t+1}). MinimalRNN: h⁰ independent
    (Q₁₂⁰ = 0) so c¹ = (σ_v² R Σ¹ + σ_b²)/q*, then eq. (8). ``mean_term`` is E[φ] (vanilla,
    unused) or E[σ] (minimalRNN). Returns ``[*grid.shape, T]``; NaN where q* is NaN.
    """
    sched = np.asarray(schedule, dtype=np.float64)
    shape = grid.shape
    sw2, sv2, sb2 = (getattr(grid, k).reshape(-1) ** 2 for k in ("sigma_w", "sigma_v", "sigma_b"))
    mu, R = grid.mu_b.reshape(-1), grid.R.reshape(-1)
    q = np.asarray(q_star, dtype=np.float64).reshape(-1)
    ok = np.flatnonzero(np.isfinite(q) & (q > 0))
    out = np.full((q.size, sched.size), np.nan)
    if ok.size == 0 or sched.size == 0:
        return out.reshape(shape + (sched.size,))
    qa, mua, sw2a, sv2a, sb2a, Ra = q[ok], mu[ok], sw2[ok], sv2[ok], sb2[ok], R[ok]
    index = np.arange(ok.size)
    if grid.cell == "vanilla":
        act = activation(grid.phi)
        c = np.zeros(ok.size)
        for t, s in enumerate(sched):
            cmap = vanilla.correlation_map(act, qa, mua, sw2a, sv2a * Ra * s + sb2a)
            c = np.clip(cmap(c, index)[0], -1.0, 1.0)
            out[ok, t] = c
    else:
        gate = np.asarray(mean_term, dtype=np.float64).reshape(-1)[ok]
        c = (sv2a * Ra * sched[0] + sb2a) / qa
        out[ok, 0] = c
        for t in range(1, sched.size):
            a, b = minimal.step_coefficients(qa, sw2a, sv2a, sb2a, Ra, sched[t - 1], sched[t], gate)
            c = np.clip(minimal.correlation_map(qa, mua, a, b)(c, index)[0], -1.0, 1.0)
            out[ok, t] = c
    return out.reshape(shape + (sched.size,))
