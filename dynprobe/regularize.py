"""Differentiable finite-time Lyapunov exponents: the spectrum as a training signal.

The QR method run with autograd on: propagate k tangent vectors with ``torch.func.jvp`` along a
short window, factor J Q = Q' R every step, and average log|R_jj|. Everything — the trajectory,
the Jacobians, the QR (torch differentiates reduced QR of full-rank inputs) — stays in the
autograd graph, so ``λ.backward()`` gives ∂λ/∂θ for the parameters passed in. Penalising
(λ_j − target)² keeps a network's top exponents near a target during training: λ ≈ 0 gives
gradients that neither explode nor vanish over long horizons ("gradient flossing").

How a training loop holds parameters: an ``nn.Module`` owns them; a :class:`~dynprobe.System`
holds detached copies. :func:`module_params` reads the module's *live* parameters under the
System's names (through ``getattr``, so parametrizations give their effective weights), and
:func:`finite_time_exponents` evaluates the System's step with them — the System is built once,
the module's optimizer updates what the next call reads. :class:`LyapunovRegularizer` packages
this for the common case.

References
----------
Engelken (2023), "Gradient flossing: improving gradient descent through dynamic control of
Jacobians", NeurIPS 36; Engelken, Wolf & Abbott (2023), "Lyapunov spectra of chaotic recurrent
neural networks", Phys. Rev. Research 5, 043044; fading-memory paper §2.1–2.2, App. A (exponents
as memory timescales, gradients and the QR method).

Example
-------
>>> reg = LyapunovRegularizer(rnn, k=4, steps=30, target=0.0)
>>> loss = task_loss + 0.5 * reg(inputs[:30, :8])   # inputs [time, batch, M]
>>> loss.backward()                                  # gradients reach rnn.parameters()
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import jvp, vmap

from .drives import sequence
from .errors import ProbeParameterError
from .system import System

__all__ = ["finite_time_exponents", "lyapunov_loss", "module_params", "LyapunovRegularizer"]


def module_params(module: nn.Module, system: System) -> dict[str, Tensor]:
    """The module's current parameters (and buffers) under the System's parameter names, cast to
    the System's dtype — differentiably, so gradients reach the module's own tensors.

    Works for Systems that ``dynprobe.wrap`` built from ``module`` (the built-in RNN adapters name
    parameters like the module's attributes, the generic adapter like ``named_parameters``).
    """
    out = {}
    for name, ref in system.params.items():
        try:
            value = operator.attrgetter(name)(module)
        except AttributeError as err:
            raise ProbeParameterError(
                f"module_params: {type(module).__name__} has no attribute {name!r} for the System's parameter of that "
                "name; pass params={name: tensor} explicitly to finite_time_exponents"
            ) from err
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(ref.shape):
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ProbeParameterError(f"module_params: {type(module).__name__}.{name} is {got}, the System expects "
                                      f"{list(ref.shape)}; wrap the same module the parameters come from")
        out[name] = value.to(device=system.device, dtype=system.dtype) if value.is_floating_point() else value
    return out


def _random_tangents(system: System, lead: tuple[int, ...], k: int, seed: int) -> Tensor:
    """One random orthonormal block per trajectory of the batch, the same for every network of an
    ensemble (common random numbers: network i sees what a separate run of it would)."""
    gen = torch.Generator().manual_seed(int(seed))
    batch = lead[-1] if lead else 1
    Q = torch.linalg.qr(torch.randn(batch, system.state_dim, k, generator=gen, dtype=torch.float64)).Q
    return Q.to(device=system.device, dtype=system.dtype).expand(*lead, system.state_dim, k)


def finite_time_exponents(
    system: System,
    h0: Tensor,
    *,
    steps: int,
    k: int = 1,
    params: Mapping[str, Tensor] | None = None,
    tangents: Tensor | None = None,
    start: int = 0,
    seed: int = 0,
) -> Tensor:
    """The top-k finite-time Lyapunov exponents over ``steps`` steps from ``h0``, differentiable.

    Parameters
    ----------
    system
        The System whose step is evaluated (its drive gives the inputs; an ensemble works too).
    h0
        Initial states ``[*lead, N]`` (``[batch, N]``, or ``[network, batch, N]``).
    steps
        Window length (one QR per step; the autograd graph holds every step).
    k
        Number of exponents, 1 … N.
    params
        Tensors that replace the System's parameters of the same names — typically the live
        parameters of a module (:func:`module_params`), which carry ``requires_grad``.
    tangents
        Orthonormal initial tangents ``[*lead, N, k]``; default: a random block from ``seed``.
    start
        Time index of ``h0`` on the drive's clock.
    seed
        Seeds the random initial tangents.

    Returns
    -------
    Tensor
        ``[*lead, k]`` exponents (1/step) in column order (descending once the window is longer
        than the tangents' transient), with an autograd graph through ``params`` and ``h0``.

    References
    ----------
    Engelken (2023), NeurIPS 36 (gradient flossing); fading-memory paper App. A.
    """
    n = system.state_dim
    if not 1 <= int(k) <= n:
        raise ProbeParameterError(f"finite_time_exponents: k={k} is outside 1..N={n}")
    if steps < 1:
        raise ProbeParameterError(f"finite_time_exponents: steps must be >= 1, got {steps}")
    given = dict(params or {})
    unknown = sorted(set(given) - set(system.params))
    if unknown:
        raise ProbeParameterError(f"finite_time_exponents: unknown parameters {unknown}; the System has {sorted(system.params)}")
    p = {**system.params, **given}
    system.check_run(start + steps)
    lead = tuple(h0.shape[:-1])
    h = h0.to(device=system.device, dtype=system.dtype)
    Q = _random_tangents(system, lead, int(k), seed) if tangents is None else tangents
    drive = system.drive
    total = h.new_zeros(*lead, int(k))
    for i in range(steps):
        u_ext = drive.external(system, start + i, lead)

        def f(x: Tensor, u_ext: Tensor = u_ext) -> Tensor:
            return system.step(x, drive.close(system, x, u_ext), p)

        JQ = vmap(lambda v, h=h, f=f: jvp(f, (h,), (v,))[1], in_dims=-1, out_dims=-1)(Q)
        h = f(h)
        Q, R = torch.linalg.qr(JQ)
        total = total + torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
    return total / steps


def lyapunov_loss(
    system: System,
    h0: Tensor,
    *,
    target: float | Tensor = 0.0,
    steps: int,
    k: int = 1,
    params: Mapping[str, Tensor] | None = None,
    seed: int = 0,
) -> Tensor:
    """Mean of (λ_j − target)² over the top-k finite-time exponents and the batch.

    ``target`` is a number or one value per exponent (``[k]``). With ``target=0`` this is the
    gradient-flossing penalty of Engelken (2023). Other arguments as in :func:`finite_time_exponents`.
    """
    lam = finite_time_exponents(system, h0, steps=steps, k=k, params=params, seed=seed)
    return ((lam - torch.as_tensor(target, dtype=lam.dtype, device=lam.device)) ** 2).mean()


class LyapunovRegularizer:
    """A λ-penalty for a training loop over an ``nn.Module`` (built once, called every step).

    ``reg(inputs)`` returns the mean of (λ_j − target)² for the top ``k`` finite-time exponents
    along the module's own trajectories driven by ``inputs`` (``[time, batch, M]``, the first
    ``steps`` steps are used) from ``h0`` (default: zeros, the RNN's default initial state); with
    ``inputs=None`` the System's own drive is used from ``batch`` random initial states.
    Gradients flow to ``module``'s parameters; ``last_exponents`` keeps the latest λ (detached).

    Parameters
    ----------
    module
        The recurrent module being trained (``nn.RNN/GRU/LSTM``, a cell, or any module
        ``dynprobe.wrap`` accepts).
    k, steps, target
        Number of exponents, window length, target exponent(s).
    dtype
        Precision of the System (default: the module's); the module's parameters are cast to it
        differentiably.
    batch, seed
        Initial states when no inputs are given; seed of the initial tangents.
    wrap_options
        Passed to ``dynprobe.wrap`` (e.g. ``drive=dynprobe.constant(0.5)``).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        k: int = 1,
        steps: int = 50,
        target: float | Tensor = 0.0,
        dtype: torch.dtype | None = None,
        batch: int = 4,
        seed: int = 0,
        **wrap_options: Any,
    ) -> None:
        from .api import wrap

        self.module = module
        self.system = wrap(module, dtype=dtype, **wrap_options)
        self.k, self.steps, self.target, self.batch, self.seed = int(k), int(steps), target, int(batch), int(seed)
        self.last_exponents: Tensor | None = None

    def exponents(self, inputs: Tensor | None = None, h0: Tensor | None = None) -> Tensor:
        """The top-k finite-time exponents ``[*lead, k]``, differentiable w.r.t. the module's parameters."""
        system = self.system
        if inputs is not None:
            if inputs.ndim != 3:
                raise ProbeParameterError(f"LyapunovRegularizer: inputs must be [time, batch, M], got {list(inputs.shape)}")
            system = system.with_drive(sequence(inputs.detach()))
            if h0 is None:
                h0 = torch.zeros(*system.lead_shape(inputs.shape[1]), system.state_dim, dtype=system.dtype,
                                 device=system.device)
        elif h0 is None:
            h0 = system.initial_state(self.batch, seed=self.seed)
        lam = finite_time_exponents(system, h0, steps=self.steps, k=self.k, params=module_params(self.module, system),
                                    seed=self.seed)
        self.last_exponents = lam.detach()
        return lam

    def __call__(self, inputs: Tensor | None = None, h0: Tensor | None = None) -> Tensor:
        lam = self.exponents(inputs, h0)
        return ((lam - torch.as_tensor(self.target, dtype=lam.dtype, device=lam.device)) ** 2).mean()
