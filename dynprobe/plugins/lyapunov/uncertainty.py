"""Standard errors of Lyapunov exponents, and which samples sit on different attractors.

A run gives, per initial condition (sample) s and exponent i, the sums of log diag(R) over B
consecutive time blocks. Two sources of error enter the mean over samples:

* **within a trajectory** — the time average over T steps of correlated local stretching rates.
  Its variance is v / T with v the *long-run* (integrated-autocorrelation) variance of the
  rates, estimated by batch means over the blocks and corrected for the correlation between
  neighbouring blocks with Geyer's initial positive sequence: with the block residuals
  yᵦ = (Σᵦ − Lᵦ λ)/√Lᵦ and their autocovariances γⱼ, the pair sums Γₘ = γ₂ₘ + γ₂ₘ₊₁ are added
  while positive and non-increasing, v = f · Σᵦ yᵦ²/(B − 1) with
  f = max(1, (2 Σ Γₘ − γ₀) / γ₀) ≥ 1 (never below plain batch means). For the mean over
  samples this is applied to the *sample-averaged* residual series, so samples that follow
  one another (a common input synchronizes trajectories when λ₁ < 0) are not counted as
  independent — treating S·B block means as independent understates the error by up to √S.
  Each sample's own error uses its residuals with f from the autocovariance pooled over the
  samples (same dynamics, same correlation structure);
* **between trajectories** — initial conditions that reach different attractors, or the
  same attractor with different transients: the sample variance of the per-sample exponents.

The reported standard error of the mean over S samples is the larger of the two estimates,
``sqrt(max(v̄/T, var_s(λ_s)/S))`` (v̄ of the sample-averaged residuals) — the between-sample
term alone is unbiased but, with
a handful of samples, too noisy to trust below the within-sample floor; with one sample only
the within term exists (it cannot say which attractor another initial condition would reach).

Samples are grouped by their largest exponent: sorted, a gap between neighbours larger than
``GROUP_Z`` combined standard errors starts a new group. Different groups are different
attractors (or a transient not yet over); one group does not prove one attractor (symmetric
twins h and −h of an odd network have equal spectra).

References
----------
Geyer (1992), "Practical Markov chain Monte Carlo", Statist. Sci. 7 — initial positive and
monotone sequence estimators of the asymptotic variance; Flyvbjerg & Petersen (1989) — batch
(blocking) means; fading-memory paper App. A (the QR method whose blocks these are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Uncertainty", "uncertainty", "long_run_factor", "group_samples", "GROUP_Z"]

GROUP_Z = 5.0
"""Largest exponents of two samples differing by more than GROUP_Z combined standard errors
belong to different attractors (a false split of one attractor has probability ~1e-6 per pair
for Gaussian errors; the within-sample errors are themselves estimated, hence the margin)."""
GROUP_ABS = 1e-9
"""Differences below this (1/step) never split a group: rounding, not dynamics."""


@dataclass(frozen=True)
class Uncertainty:
    """Error estimates for one run. ``lead`` is ``[sample]`` or ``[network, sample]``."""

    mean: np.ndarray  # [*net, k] mean over the samples used
    stderr: np.ndarray  # [*net, k] sqrt(max(within², between²)); NaN when undefined
    within: np.ndarray  # [*net, k] within-trajectory standard error of the mean
    between: np.ndarray  # [*net, k] between-sample standard error of the mean (NaN for < 2 samples)
    sample_stderr: np.ndarray  # [*lead, k] standard error of each sample's own exponent
    factor: np.ndarray  # [*net, k] autocorrelation factor f >= 1 applied to batch means
    used: np.ndarray  # [*net] samples that entered the mean
    attractor: np.ndarray  # [*lead] group label (0 = group of the largest lambda_1; -1 = left out)
    attractors: np.ndarray  # [*net] number of groups among the samples used


def long_run_factor(y: np.ndarray) -> np.ndarray:
    """Geyer's integrated-autocorrelation factor of pooled block residuals ``y[sample, block, k]``.

    Returns ``f[k] >= 1``: the long-run variance divided by the lag-0 variance (1 for
    uncorrelated blocks), from the autocovariance averaged over samples, summed over pairs of
    lags while their sums stay positive and non-increasing (Geyer 1992, §3.3).
    """
    S, B, k = y.shape
    if S == 0 or B < 4:
        return np.ones(k)
    lags = B // 2
    gamma = np.stack([np.mean(np.sum(y[:, : B - j] * y[:, j:], axis=1), axis=0) / B for j in range(lags)])  # [lags, k]
    g0 = gamma[0]
    pairs = gamma[: 2 * (lags // 2)].reshape(-1, 2, k).sum(axis=1)  # Γ_m = γ_2m + γ_2m+1
    keep = np.cumprod(pairs > 0, axis=0).astype(bool)
    pairs = np.minimum.accumulate(np.where(keep, pairs, 0.0), axis=0)  # monotone, zero after the first non-positive
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (2.0 * pairs.sum(axis=0) - g0) / g0
    return np.where(np.isfinite(f) & (g0 > 0), np.maximum(f, 1.0), 1.0)


def group_samples(lam1: np.ndarray, se1: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Attractor labels for one network: ``lam1[sample]`` (largest exponent per sample) and its
    standard error. Label 0 is the group with the largest exponents; -1 marks samples not used."""
    labels = np.full(lam1.shape, -1, dtype=np.int64)
    idx = np.flatnonzero(used)
    if idx.size == 0:
        return labels
    order = idx[np.argsort(-lam1[idx], kind="stable")]
    group = 0
    labels[order[0]] = 0
    for a, b in zip(order[:-1], order[1:]):
        gap = lam1[a] - lam1[b]
        scale = GROUP_Z * np.hypot(se1[a], se1[b])
        if gap > max(scale if np.isfinite(scale) else 0.0, GROUP_ABS * max(1.0, abs(lam1[a]))):
            group += 1
        labels[b] = group
    return labels


def uncertainty(block_sums: np.ndarray, block_steps: np.ndarray, used: np.ndarray) -> Uncertainty:
    """Hierarchical standard errors from per-block sums of log diag(R).

    Parameters
    ----------
    block_sums
        ``[*net, sample, block, k]`` sums of log diag(R) per block, exponents sorted per sample.
    block_steps
        ``[block]`` steps in each block (their sum is the run length T).
    used
        ``[*net, sample]`` samples that enter the mean (not diverged, not stuck).

    Returns
    -------
    Uncertainty
        See the class; every array keeps the leading ``network`` axis when there is one.
    """
    L = np.asarray(block_steps, dtype=np.float64)
    T, B = float(L.sum()), L.size
    lam = block_sums.sum(axis=-2) / T  # [*net, sample, k]
    y = (block_sums - L[:, None] * lam[..., None, :]) / np.sqrt(L)[:, None]
    net_shape = block_sums.shape[:-3]
    k = block_sums.shape[-1]
    factor = np.ones((*net_shape, k))
    within = np.full((*net_shape, k), np.nan)
    for pos in np.ndindex(net_shape):
        good = used[pos]
        if good.any() and B >= 2:
            yg = np.nan_to_num(y[pos][good])  # [used, block, k]
            factor[pos] = long_run_factor(yg)
            # the mean over samples of the residuals: its long-run variance is that of the mean
            # exponent, cross-sample correlations included (samples that synchronize, e.g. under a
            # common input, are not independent)
            ybar = yg.mean(axis=0, keepdims=True)
            within[pos] = np.sqrt(long_run_factor(ybar) * np.sum(ybar[0] ** 2, axis=0) / (B - 1) / T)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = factor[..., None, :] * np.sum(y**2, axis=-2) / max(B - 1, 1)  # [*net, sample, k]
        sample_se = np.sqrt(v / T) if B >= 2 else np.full(v.shape, np.nan)
        n = used.sum(axis=-1)  # [*net]
        m = np.where(used[..., None], lam, 0.0).sum(axis=-2) / np.maximum(n, 1)[..., None]
        dev = np.where(used[..., None], lam - m[..., None, :], 0.0)
        between = np.sqrt((dev**2).sum(axis=-2) / np.maximum(n - 1, 1)[..., None] / np.maximum(n, 1)[..., None])
    between = np.where((n >= 2)[..., None], between, np.nan)
    stderr = np.fmax(within, between)  # fmax: NaN only when both are
    mean = np.where((n >= 1)[..., None], m, np.nan)
    stderr = np.where((n >= 1)[..., None] & (B >= 2), stderr, np.nan)
    attractor = np.full(used.shape, -1, dtype=np.int64)
    for pos in np.ndindex(net_shape):
        attractor[pos] = group_samples(lam[pos][..., 0], sample_se[pos][..., 0], used[pos])
    attractors = attractor.max(axis=-1) + 1
    return Uncertainty(mean=mean, stderr=stderr, within=within, between=between, sample_stderr=sample_se,
                       factor=factor, used=n, attractor=attractor, attractors=attractors)
