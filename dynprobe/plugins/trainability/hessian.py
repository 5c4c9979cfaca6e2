"""The ``hessian`` probe: top-k eigenvalues of the loss Hessian w.r.t. the recurrent weights.

Matrix-free: Hessian-vector products H v, fed to Lanczos (ARPACK's ``eigsh``) through a
``scipy.sparse.linalg.LinearOperator`` — the dense Hessian is never formed. The products are
reverse-over-reverse: ``torch.func.vjp`` of ``torch.func.grad`` records the gradient's
linearization once, and each product replays it (H is symmetric, so vᵀH = (Hv)ᵀ).
Forward-over-reverse (``jvp`` of ``grad``) gives the same vectors to 1e-19 but re-runs the whole
transformed rollout per product: measured 0.59 s against 0.09 s per product for a WCRNN with
N = 32, T = 100, batch 64 (float64, one thread). Each eigenvalue is an
effective learning-rate multiplier in its eigen-direction (fading-memory paper eq. 6–7); the paper's
Fig. 2C shows their magnitudes growing with the residual scale α.

References
----------
Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §2.2 (eq. 6–9), §3 (eq. 14), §4.1
Fig. 2C; Pearlmutter (1994) for exact Hessian-vector products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import xarray as xr
from torch import Tensor
from torch.func import grad, vjp

from dynprobe import System
from dynprobe.errors import ConvergenceError, ProbeParameterError
from dynprobe.tasks import SequenceData

from .objective import LossName, Objective, ReadoutChoice, build_objective

if TYPE_CHECKING:
    from scipy.sparse.linalg import LinearOperator

__all__ = ["hessian", "hvp_operator", "recurrent_weights"]


def recurrent_weights(system: System, wrt: Sequence[str]) -> list[str]:
    """The parameter names to differentiate: ``wrt``, or by default every ``weight_hh*`` (the
    recurrent weights of ``nn.RNN/GRU/LSTM`` and of the WCRNN)."""
    names = list(wrt) if wrt else sorted(k for k in system.params if k.startswith("weight_hh"))
    unknown = [n for n in names if n not in system.params]
    if not names or unknown:
        raise ProbeParameterError(
            f"probe 'hessian': {'no parameters named weight_hh*' if not names else f'unknown parameters {unknown}'} in "
            f"{system.name}; pass wrt=(names, ...) from {', '.join(sorted(system.params))}"
        )
    return names


def hvp_operator(objective: Objective, names: Sequence[str]) -> tuple[LinearOperator, Tensor, Tensor, list[int]]:
    """``(H as a LinearOperator on float64 vectors, θ₀, ∇L(θ₀), call counter)`` for the flattened
    parameters ``names`` of a single-network objective."""
    base = objective.system.params
    shapes = [base[n].shape for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    theta0 = torch.cat([base[n].reshape(-1) for n in names])

    def loss(theta: Tensor) -> Tensor:
        parts = torch.split(theta, sizes)
        params = {**base, **{n: p.reshape(s) for n, p, s in zip(names, parts, shapes)}}
        return objective.value(params)

    from scipy.sparse.linalg import LinearOperator  # on first use: scipy costs start-up time

    gradient, hvp = vjp(grad(loss), theta0)
    calls = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        calls[0] += 1
        vector = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=theta0.dtype, device=theta0.device)
        return hvp(vector)[0].detach().to(torch.float64).cpu().numpy()

    op = LinearOperator((theta0.numel(), theta0.numel()), matvec=matvec, dtype=np.float64)
    return op, theta0, gradient.detach(), calls


def _top_eigs(objective: Objective, names: Sequence[str], k: int, which: str, tol: float, seed: int) -> dict[str, Any]:
    from scipy.sparse.linalg import eigsh

    op, theta0, gradient, calls = hvp_operator(objective, names)
    d = theta0.numel()
    v0 = np.random.default_rng(int(seed)).standard_normal(d)
    try:
        vals, vecs = eigsh(op, k=k, which=which, v0=v0, tol=tol, maxiter=max(1000, 20 * d))
    except Exception as err:  # ArpackNoConvergence and friends: say how far it got
        raise ConvergenceError(
            f"probe 'hessian': Lanczos did not converge for k={k} ({err}); try a smaller k or tol > 0"
        ) from err
    order = np.argsort(-np.abs(vals) if which == "LM" else (vals if which == "SA" else -vals), kind="stable")
    vals, vecs = vals[order], vecs[:, order]
    lanczos_calls = calls[0]
    residual = np.array([np.linalg.norm(op.matvec(vecs[:, i]) - vals[i] * vecs[:, i]) for i in range(k)])
    return {"eigenvalues": vals, "residual": residual, "calls": lanczos_calls, "dimension": d,
            "gradient_norm": float(torch.linalg.vector_norm(gradient.to(torch.float64))),
            "loss": float(objective.value().detach())}


def hessian(
    system: System,
    *,
    data: str | SequenceData = "adding",
    data_options: dict[str, Any] | None = None,
    batch: int = 128,
    loss: LossName = "auto",
    readout: ReadoutChoice = "system",
    wrt: tuple[str, ...] = (),
    k: int = 6,
    which: Literal["LM", "LA", "SA"] = "LM",
    tol: float = 1e-8,
    seed: int = 0,
) -> xr.Dataset:
    """Top-k eigenvalues of the loss Hessian w.r.t. the recurrent weights, matrix-free.

    Parameters
    ----------
    system
        The model; for an ensemble every network gets its own Lanczos run.
    data, data_options, batch, loss, readout
        The task (see :mod:`dynprobe.plugins.trainability.objective`).
    wrt
        Parameter names to differentiate (default: every ``weight_hh*``).
    k
        Number of eigenvalues (k < number of parameters).
    which
        ``LM`` largest magnitude (the paper's), ``LA`` largest, ``SA`` smallest (most negative).
    tol
        Relative accuracy asked of ARPACK (0: machine precision).
    seed
        Seeds the data (when built by name), a ``linear_init`` readout and the Lanczos start vector.

    Returns
    -------
    xarray.Dataset
        ``eigenvalues[network?, eigen]`` (sorted: by |λ| for LM), ``residual_norm[network?, eigen]``
        = ‖H v − λ v‖ (one more product each, a check), ``gradient_norm[network?]`` = ‖∇L‖,
        ``loss[network?]``, ``hvp_calls[network?]``; attrs ``wrt``, ``dimension``, ``which``.

    References
    ----------
    Fading-memory paper §2.2 eq. 6–9, §3 eq. 14, Fig. 2C.

    Example
    -------
    >>> ds = dynprobe.run("hessian", model, data="adding", data_options={"T": 100}, k=10)
    """
    names = recurrent_weights(system, wrt)
    objective = build_objective("hessian", system, data=data, data_options=data_options, batch=batch, loss=loss,
                                readout=readout, seed=seed)
    d = sum(int(np.prod(system.network(0).params[n].shape if system.networks else system.params[n].shape)) for n in names)
    if not 1 <= k < d:
        raise ProbeParameterError(f"probe 'hessian': k={k} must lie in 1..{d - 1} (the {d} parameters of {', '.join(names)})")
    if which not in ("LM", "LA", "SA"):
        raise ProbeParameterError(f"probe 'hessian': which must be LM, LA or SA, got {which!r}")
    members = [system] if system.networks is None else [system.network(i) for i in range(system.networks)]
    runs = [_top_eigs(Objective(m, objective.inputs, objective.targets, objective.loss, objective.readout,
                                objective.readout_kind, objective.data), names, k, which, tol, seed) for m in members]
    ens = system.networks is not None
    net = ["network"] if ens else []

    def stack(key: str) -> np.ndarray:
        values = np.asarray([r[key] for r in runs])
        return values if ens else values[0]

    coords: dict[str, Any] = {"eigen": ("eigen", np.arange(1, k + 1),
                                        {"long_name": f"Hessian eigenvalue index (order of which={which})", "units": "1"})}
    if ens:
        coords["network"] = ("network", np.arange(system.networks), {"long_name": "network", "units": "1"})
    return xr.Dataset(
        {
            "eigenvalues": ([*net, "eigen"], stack("eigenvalues"), {"long_name": "loss Hessian eigenvalue", "units": "1"}),
            "residual_norm": ([*net, "eigen"], stack("residual"), {"long_name": "||H v - lambda v|| of the eigenpair",
                                                                  "units": "1"}),
            "gradient_norm": (net, stack("gradient_norm"), {"long_name": "||dL/dtheta|| over the wrt parameters", "units": "1"}),
            "loss": (net, stack("loss"), {"long_name": f"{objective.loss} loss of the batch", "units": "1"}),
            "hvp_calls": (net, stack("calls").astype(np.int64), {"long_name": "Hessian-vector products used by Lanczos",
                                                                 "units": "1"}),
        },
        coords=coords,
        attrs={**objective.attrs(), "wrt": ",".join(names), "dimension": int(d), "which": which, "tol": float(tol)},
    )
