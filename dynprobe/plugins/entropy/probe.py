"""The ``entropy`` probe: how the entropy of an ensemble of states changes along trajectories.

References
----------
Attractors paper (``attractors-and-smoothness-rnn-training.txt``) §3.1 (entropy of the internal
states, eq. 3–4, Fig. 3), §3.2 (Def. 1, contractive systems), supplement B (proof of eq. 4).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from dynprobe import System
from dynprobe.errors import ProbeParameterError
from dynprobe.linearize import jacobian

from .knn import DuplicatePointsError, kl_entropy
from .lipschitz import contractivity, spectral_norms, weight_norm_bound
from .rate import CHUNK_ENTRIES, EXACT_SVD_MAX, jacobian_stats

__all__ = ["entropy"]


def _exact_norms(system: System, h: torch.Tensor, t: int) -> torch.Tensor:
    """‖J(h)‖₂ of each state in ``h: [B, N]`` from the dense Jacobians' singular values, in chunks
    of at most ``CHUNK_ENTRIES`` Jacobian entries (as :func:`jacobian_stats` builds them)."""
    n = h.shape[-1]
    chunk = max(1, CHUNK_ENTRIES // (n * n))
    parts = [torch.linalg.svdvals(jacobian(system, h[i:i + chunk], t))[..., 0] for i in range(0, h.shape[0], chunk)]
    return torch.cat(parts).to(torch.float64)


def entropy(
    system: System,
    *,
    samples: int = 128,
    steps: int = 20,
    perturb: float = 0.1,
    power_iters: int = 30,
    knn: bool = False,
    knn_times: Sequence[int] | None = None,
    knn_k: int = 3,
    seed: int = 0,
) -> xr.Dataset:
    """Entropy change of an ensemble along trajectories, the bounds of eq. 4, L_f and Def. 1.

    ``samples`` initial states (from the System's ``init``) are iterated ``steps`` steps. At
    every visited state the closed-loop Jacobian J gives log|det J|; for an injective step the
    change of variables makes the ensemble's differential entropy change *exactly*
    H_{t+1} − H_t = E[log|det J(h_t)|] (``rate``), accumulated into H_t − H_0
    (``entropy_change``). Where det J = 0 at a visited state the step is not invertible there:
    the rate is −inf and ``invertible`` is false (global injectivity is not checked).

    **The two brackets of eq. 4.** Since log|det J| = Σᵢ log σᵢ(J),
    N log σ_min ≤ log|det J| ≤ N log σ_max at every state. The paper prints
    H_t + N log L_f ≤ H_{t+1}; as a *lower* bound this holds when L_f is the smallest stretching
    factor of f over the region — the co-Lipschitz constant, min σ_min(J) — and with the
    Lipschitz constant L_f = max ‖J‖₂ = max σ_max the inequality runs the other way,
    H_{t+1} ≤ H_t + N log L_f. Both brackets are reported, estimated over the ensemble's visited
    states at each step (``rate_lower``, ``rate_upper``), and the exact rate lies between them.

    **Lipschitz constant.** ``lipschitz_lower`` = max ‖J(h)‖₂ over the visited states and as many
    states perturbed by ``perturb`` × the ensemble's spread (exact singular values up to N = 256;
    beyond, at the visited states the Lanczos σ_max of the dense J, at the perturbed ones
    matrix-free power iteration; each a lower bound on L_f over any region containing them);
    ``lipschitz_upper`` from weight norms where the cell allows (Elman RNN: ‖W‖₂·sup|φ′|;
    one-layer LSTM: a row-sum bound on its invariant box), and the contractivity verdict of
    Def. 1: contractive / not_contractive / undetermined.

    Parameters
    ----------
    system
        A single System (no ensemble axis); its drive is applied (constant inputs for the
        induced autonomous system of the paper).
    samples, steps
        Ensemble size and number of steps.
    perturb
        Size of the perturbations (relative to the per-coordinate spread of the visited
        states, plus 1e-3) at which ‖J‖₂ is also evaluated.
    power_iters
        Power-iteration steps per perturbed state beyond N = 256 (up to there ‖J‖₂ is exact,
        from the dense Jacobian's singular values).
    knn
        Also estimate H_t directly from the ensemble by the Kozachenko–Leonenko k-NN
        estimator. It follows the exact change while the ensemble keeps full dimension; once
        the states collapse onto a lower-dimensional attractor the exact H_t heads to −∞ and
        the finite-sample estimate lags far behind — a sign of that collapse, not an error in
        either. Neighbours come from a k-d tree (O(samples) memory, distances at full relative
        precision); where states coincide exactly the estimator is undefined: NaN, counted in
        ``knn_duplicates``, with a warning.
    knn_times
        Steps at which to estimate (default: 0, steps // 2, steps).
    knn_k
        The neighbour the estimator uses, 1 <= knn_k < samples.
    seed
        Seeds the initial states and the power iteration.

    Returns
    -------
    xarray.Dataset
        ``rate[step]``, ``rate_lower[step]``, ``rate_upper[step]``, ``entropy_change[step]``,
        ``change_lower[step]``, ``change_upper[step]`` (nats; step = steps taken, 1 … steps),
        ``log_det``, ``sigma_min``, ``sigma_max`` per ``[sample, step]`` (state before the step),
        ``diverged[sample]``, ``co_lipschitz``, ``lipschitz_visited``, ``lipschitz_lower``,
        ``lipschitz_upper`` (NaN when ``has_upper_bound`` is false), ``invertible``,
        ``contractivity``; with ``knn``: ``knn_entropy[time]``, ``knn_change[time]``,
        ``knn_duplicates[time]``.

    References
    ----------
    Attractors paper §3.1–3.2 and supplement B; Kozachenko & Leonenko (1987).

    Example
    -------
    >>> ds = dynprobe.run("entropy", dynprobe.wrap(nn.RNN(2, 8), dtype=torch.float64))
    >>> str(ds.contractivity.values)
    """
    if system.networks is not None:
        raise ProbeParameterError(
            f"probe 'entropy': {system.name} is an ensemble of {system.networks}; run it on one network (system.network(i))"
        )
    if samples < 2 or steps < 1 or power_iters < 1 or not perturb >= 0:
        raise ProbeParameterError(
            f"probe 'entropy': need samples >= 2, steps >= 1, power_iters >= 1, perturb >= 0 "
            f"(got {samples}, {steps}, {power_iters}, {perturb})"
        )
    times = sorted({0, steps // 2, steps} if knn_times is None else {int(t) for t in knn_times})
    if knn and (times[0] < 0 or times[-1] > steps or not 1 <= knn_k < samples):
        raise ProbeParameterError(
            f"probe 'entropy': knn_times must lie in 0..steps={steps} and 1 <= knn_k < samples (got {times}, {knn_k})"
        )
    system.check_run(steps)
    n = system.state_dim
    stats = jacobian_stats(system, system.initial_state(samples, seed=seed), steps)
    good = ~stats.diverged
    if not bool(good.any()):
        raise ProbeParameterError(f"probe 'entropy': every trajectory of {system.name} diverged; start closer to the attractor")
    if bool(stats.diverged.any()):
        warnings.warn(
            f"entropy: {int(stats.diverged.sum())} of {samples} trajectories diverged; they are flagged in 'diverged' "
            "and left out of the rates", RuntimeWarning, stacklevel=3,
        )
    if knn and knn_k >= int(good.sum()):
        raise ProbeParameterError(f"probe 'entropy': knn_k={knn_k} needs more than {knn_k} trajectories that stay "
                                  f"bounded, {int(good.sum())} did; pass a smaller knn_k or more samples")
    ld, lo, hi = (x[:, good] for x in (stats.log_det, stats.sigma_min, stats.sigma_max))
    rate = ld.mean(dim=1)
    rate_lower = n * torch.log(lo.amin(dim=1))
    rate_upper = n * torch.log(hi.amax(dim=1))

    visited = stats.states[:-1][:, good]  # [steps, B', N]
    spread = visited.reshape(-1, n).std(dim=0) + 1e-3
    gen = torch.Generator().manual_seed(int(seed) + 17)
    noise = torch.randn(visited.shape, generator=gen, dtype=torch.float64).to(visited)
    sig_v, sig_p = [], []
    exact = n <= EXACT_SVD_MAX  # dense Jacobians: exact norms, and far cheaper than power iteration here
    with torch.no_grad():
        for t in range(steps):
            perturbed = visited[t] + perturb * spread * noise[t]
            # at the visited states jacobian_stats already has sigma_max from the dense J (exact, or a
            # Lanczos estimate from below far closer than power_iters matrix-free power steps)
            sig_v.append(stats.sigma_max[t, good])
            if exact:
                sig_p.append(_exact_norms(system, perturbed, t))
            else:
                sig_p.append(spectral_norms(system, perturbed, t, iters=power_iters, seed=seed + t))
    lip_lower = float(torch.stack(sig_v + sig_p).max())
    bound = weight_norm_bound(system)
    verdict, reason = contractivity(bound, lip_lower)

    data = _variables(stats, rate, rate_lower, rate_upper)
    scalars = {
        "co_lipschitz": (float(lo.min()), "smallest singular value of J over the visited states (co-Lipschitz estimate)"),
        "lipschitz_visited": (float(hi.max()), "largest singular value of J over the visited states"),
        "lipschitz_lower": (lip_lower, "lower bound on L_f: max ||J||_2 over visited and perturbed states"),
        "lipschitz_upper": (bound.value, "upper bound on L_f from weight norms (NaN: no bound, see has_upper_bound)"),
    }
    for name, (value, long_name) in scalars.items():
        data[name] = ((), value, {"long_name": long_name, "units": "1"})
    data["has_upper_bound"] = ((), bound.available, {"long_name": "a weight-norm upper bound exists", "units": "1"})
    invertible = bool(torch.isfinite(ld).all())
    data["invertible"] = ((), invertible, {"long_name": "det J != 0 at every visited state", "units": "1"})
    data["contractivity"] = ((), verdict, {"long_name": "contractivity verdict (Def. 1)", "units": "1"})
    coords = {
        "step": ("step", np.arange(1, steps + 1), {"long_name": "steps taken", "units": "step"}),
        "sample": ("sample", np.arange(samples), {"long_name": "initial condition", "units": "1"}),
    }
    if knn:
        coords["time"] = ("time", np.asarray(times), {"long_name": "steps taken", "units": "step"})
        data.update(_knn_variables(stats.states[:, good], times, knn_k))
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "state_dim": n,
            "steps": int(steps),
            "samples": int(samples),
            "rate_method": "change of variables: E[log|det J|] (exact for injective steps; injectivity not checked)",
            "singular_values": stats.svd_method,
            "lipschitz_upper_norm": bound.norm,
            "lipschitz_upper_method": bound.method,
            "contractivity_reason": reason,
            "perturb": float(perturb),
            "power_iters": int(power_iters),
            "knn_k": int(knn_k) if knn else 0,
        },
    )


def _knn_variables(states: torch.Tensor, times: list[int], k: int) -> dict:
    """Kozachenko–Leonenko estimates at ``times``; NaN, counted in ``knn_duplicates`` and
    warned about, where the ensemble has collapsed onto repeated points (no density)."""
    est = np.full(len(times), np.nan)
    duplicates = np.zeros(len(times), dtype=np.int64)
    for i, t in enumerate(times):
        try:
            est[i] = kl_entropy(states[t], k=k)
        except DuplicatePointsError as err:
            duplicates[i] = err.duplicates
    if duplicates.any():
        at = [t for t, c in zip(times, duplicates) if c]
        warnings.warn(f"entropy: at steps {at} some states coincide exactly (the ensemble collapsed below float64 "
                      "resolution); the k-NN estimate is undefined there: knn_entropy is NaN, knn_duplicates counts "
                      "the points", RuntimeWarning, stacklevel=4)
    if times[0] == 0:
        start = est[0]
    else:
        try:
            start = kl_entropy(states[0], k=k)
        except DuplicatePointsError:
            start = np.nan
    return {
        "knn_entropy": ("time", est, {"long_name": "Kozachenko-Leonenko entropy estimate (NaN: repeated points)",
                                          "units": "nats"}),
        "knn_change": ("time", est - start, {"long_name": "Kozachenko-Leonenko estimate of H_t - H_0",
                                                 "units": "nats"}),
        "knn_duplicates": ("time", duplicates, {"long_name": "states coinciding with another state (estimate "
                                                                 "undefined when > 0)", "units": "1"}),
    }


def _variables(stats, rate, rate_lower, rate_upper) -> dict:
    per = {"units": "nats/step"}
    cum = {"units": "nats"}

    def np_(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float64)

    st = ("sample", "step")
    return {
        "rate": ("step", np_(rate), {"long_name": "entropy rate E[log|det J|] (H_t - H_{t-1})", **per}),
        "rate_lower": ("step", np_(rate_lower), {"long_name": "N log min sigma_min(J): lower bracket of eq. 4 "
                                                  "(co-Lipschitz)", **per}),
        "rate_upper": ("step", np_(rate_upper), {"long_name": "N log max sigma_max(J): upper bracket of eq. 4 "
                                                  "(Lipschitz)", **per}),
        "entropy_change": ("step", np.cumsum(np_(rate)), {"long_name": "H_t - H_0", **cum}),
        "change_lower": ("step", np.cumsum(np_(rate_lower)), {"long_name": "lower bound on H_t - H_0", **cum}),
        "change_upper": ("step", np.cumsum(np_(rate_upper)), {"long_name": "upper bound on H_t - H_0", **cum}),
        "log_det": (st, np_(stats.log_det.T), {"long_name": "log|det J| at the state before the step", **per}),
        "sigma_min": (st, np_(stats.sigma_min.T), {"long_name": "smallest singular value of J", "units": "1"}),
        "sigma_max": (st, np_(stats.sigma_max.T), {"long_name": "largest singular value of J", "units": "1"}),
        "diverged": ("sample", stats.diverged.cpu().numpy(), {"long_name": "trajectory escaped", "units": "1"}),
    }

