"""``wcrnn``: weakly coupled residual recurrent networks, and their adapter.

Fading-memory paper (``fading-memory-residual-rnns-wcrnn.txt``) §3 eq. 11 and §4.4 eqs. 18–19
(the equations are lost in our copy; these are the forms the project implements)::

    linear  h' = R h + ε ⊙ σ(W h + V x + b)
    A       h' = σ(R h) + ε ⊙ σ(W h + V x + b)
    B       h' = σ(R h + ε ⊙ (W h + V x + b))

with a fixed residual R (a buffer, see :mod:`dynprobe.plugins.models.residuals`), a weak coupling ε ≪ 1
(a scalar or one per unit) and σ = tanh. W, V, b are parameters drawn like ``nn.Linear``; an
optional affine readout acts on the final state. With small ε the Lyapunov exponents approach
log|eig(R)| (eq. 13) — for R = α·I all of them are ≈ log α.

The ``dynprobe_adapt`` hook implementation below turns a :class:`WCRNN` into a System whose step
is the pure function the module itself runs (R and ε are System parameters too, so a sweep over
α or ε is a ``with_params`` away); it is registered by its own entry point and wins over the
generic ``forward(x, h)`` adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import dynprobe
from dynprobe import ModelSpec, System
from dynprobe.architecture import Architecture, WeightRole
from dynprobe.errors import ProbeParameterError

from .residuals import linear_init, residual_matrix

__all__ = ["WCRNN", "wcrnn", "make_step", "draw_wcrnn", "dynprobe_adapt", "MODELS", "FORMS"]

Form = Literal["linear", "A", "B"]
FORMS: tuple[str, ...] = ("linear", "A", "B")


def _identity(x: Tensor) -> Tensor:
    return x


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu, "identity": _identity}


def make_step(form: str, nonlinearity: str = "tanh") -> Callable[[Tensor, Tensor, Mapping[str, Tensor]], Tensor]:
    """The pure step ``fn(h, u, params) -> h_next`` of a WCRNN of the given form.

    ``params``: ``weight_hh [N, N]`` (W), ``weight_ih [N, M]`` (V), ``bias [N]`` (b), ``R [N, N]``,
    ``eps [N]``.
    """
    if form not in FORMS:
        raise ProbeParameterError(f"wcrnn: form must be one of {', '.join(FORMS)}, got {form!r}")
    if nonlinearity not in _ACTIVATIONS:
        raise ProbeParameterError(f"wcrnn: nonlinearity must be one of {', '.join(_ACTIVATIONS)}, got {nonlinearity!r}")
    act = _ACTIVATIONS[nonlinearity]

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        drive = F.linear(h, p["weight_hh"], p["bias"]) + F.linear(u, p["weight_ih"])
        rh = F.linear(h, p["R"])
        if form == "linear":
            return rh + p["eps"] * act(drive)
        if form == "A":
            return act(rh) + p["eps"] * act(drive)
        return act(rh + p["eps"] * drive)

    step.__qualname__ = f"wcrnn_step[{form},{nonlinearity}]"
    return step


def _eps_vector(eps: float | Sequence[float], eps_beta: float, n: int, generator: torch.Generator) -> Tensor:
    values = torch.as_tensor(eps, dtype=torch.float64).reshape(-1)
    if values.numel() not in (1, n):
        raise ProbeParameterError(f"wcrnn: eps has {values.numel()} values; pass one or hidden_size={n}")
    if eps_beta > 0:
        if values.numel() != 1 or eps_beta >= float(values):
            raise ProbeParameterError(
                f"wcrnn: eps_beta={eps_beta} needs one scalar eps > eps_beta (ε_i ~ U(eps - eps_beta, eps + eps_beta))"
            )
        values = values + eps_beta * (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1)
    values = values.expand(n).clone()
    if not bool((values > 0).all()):
        raise ProbeParameterError(f"wcrnn: eps must be > 0 (a weak coupling 0 < ε ≪ 1), got min {float(values.min())}")
    return values


def draw_wcrnn(
    input_size: int,
    hidden_size: int,
    *,
    residual: str = "diagonal",
    alpha: float = 1.0,
    beta: float | None = None,
    omega: float | Sequence[float] | None = None,
    eps: float | Sequence[float] = 0.01,
    eps_beta: float | None = None,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """Draw W, b (like ``nn.Linear(N, N)``), V (like ``nn.Linear(M, N)``'s weight), R and ε, in
    that order from ``generator`` (float64). ``eps_beta`` (default ε/2 for ``product``, else 0)
    makes ε per unit, εᵢ ~ U(ε − eps_beta, ε + eps_beta) — §4.3's heterogeneous coupling."""
    W, b = linear_init(hidden_size, hidden_size, generator)
    V, _ = linear_init(hidden_size, input_size, generator, bias=False)
    R = residual_matrix(residual, hidden_size, alpha=alpha, beta=beta, omega=omega, generator=generator)
    if eps_beta is None:
        eps_beta = float(torch.as_tensor(eps).reshape(-1)[0]) / 2 if residual == "product" else 0.0
    return {"weight_hh": W, "weight_ih": V, "bias": b, "R": R, "eps": _eps_vector(eps, eps_beta, hidden_size, generator)}


class WCRNN(nn.Module):
    """A weakly coupled residual RNN (fading-memory paper §3, §4.4); see the module docstring.

    Parameters: ``weight_hh`` (W), ``weight_ih`` (V), ``bias`` (b); buffers ``R`` and ``eps``;
    ``readout`` (an ``nn.Linear(hidden_size, output_size)``, or ``None``).
    ``forward(x, h0=None) -> (states, h_T)`` with x ``[time, batch, M]`` (``[batch, time, M]``
    when ``batch_first``), states ``[time, batch, N]`` (h_1 … h_T) and h_T ``[batch, N]``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        residual: str = "diagonal",
        form: Form = "linear",
        alpha: float = 1.0,
        beta: float | None = None,
        omega: float | Sequence[float] | None = None,
        eps: float | Sequence[float] = 0.01,
        eps_beta: float | None = None,
        nonlinearity: str = "tanh",
        output_size: int | None = None,
        batch_first: bool = False,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self._step = make_step(form, nonlinearity)
        gen = torch.Generator().manual_seed(int(seed))
        drawn = draw_wcrnn(input_size, hidden_size, residual=residual, alpha=alpha, beta=beta, omega=omega,
                           eps=eps, eps_beta=eps_beta, generator=gen)
        self.input_size, self.hidden_size, self.batch_first = int(input_size), int(hidden_size), batch_first
        self.residual, self.form, self.nonlinearity, self.alpha = residual, form, nonlinearity, float(alpha)
        for name in ("weight_hh", "weight_ih", "bias"):
            setattr(self, name, nn.Parameter(drawn[name].to(dtype)))
        self.register_buffer("R", drawn["R"].to(dtype))
        self.register_buffer("eps", drawn["eps"].to(dtype))
        self.readout: nn.Linear | None = None
        if output_size is not None:
            self.readout = nn.Linear(hidden_size, int(output_size), dtype=dtype)
            weight, bias = linear_init(int(output_size), hidden_size, gen)
            with torch.no_grad():
                self.readout.weight.copy_(weight)
                self.readout.bias.copy_(bias)

    def step_params(self) -> dict[str, Tensor]:
        """The step's parameters (with autograd history: usable for training)."""
        return {"weight_hh": self.weight_hh, "weight_ih": self.weight_ih, "bias": self.bias, "R": self.R, "eps": self.eps}

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.batch_first:
            x = x.transpose(0, 1)
        h = x.new_zeros(x.shape[1], self.hidden_size) if h0 is None else h0
        p, states = self.step_params(), []
        for t in range(x.shape[0]):
            h = self._step(h, x[t], p)
            states.append(h)
        out = torch.stack(states)
        return (out.transpose(0, 1) if self.batch_first else out), h

    def describe(self) -> str:
        eps = self.eps.detach()
        eps_text = f"{float(eps[0]):.3g}" if bool((eps == eps[0]).all()) else f"U[{float(eps.min()):.3g}, {float(eps.max()):.3g}]"
        return (f"WCRNN({self.input_size}, {self.hidden_size}, residual={self.residual}, form={self.form}, "
                f"alpha={self.alpha:g}, eps={eps_text})")

    def extra_repr(self) -> str:
        return self.describe()


def wcrnn(
    hidden_size: int = 64,
    input_size: int = 1,
    *,
    residual: str = "diagonal",
    form: Form = "linear",
    alpha: float = 1.0,
    beta: float | None = None,
    omega: float | Sequence[float] | None = None,
    eps: float | Sequence[float] = 0.01,
    eps_beta: float | None = None,
    nonlinearity: str = "tanh",
    output_size: int | None = None,
    batch_first: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> WCRNN:
    """Build a :class:`WCRNN` (``dynprobe.model("wcrnn", hidden_size=64, alpha=1.0, eps=0.01)``).

    Parameters
    ----------
    hidden_size, input_size
        N and M.
    residual
        ``diagonal`` | ``rotational`` | ``heterogeneous`` | ``orthogonal`` | ``product``.
    form
        ``linear`` (eq. 11), ``A`` (eq. 18) or ``B`` (eq. 19; also :func:`wcrnn_init` for ``nn.RNN``).
    alpha, beta, omega
        Residual scale, heterogeneity half-width, rotation angle(s) (see ``residual_matrix``).
    eps, eps_beta
        Coupling ε (scalar or per unit) and its per-unit spread.
    nonlinearity
        σ: ``tanh`` (the paper's), ``relu`` or ``identity`` (the paper's "no non-linearity" variant).
    output_size
        Size of the affine readout on the final state (``None``: no readout).
    seed
        Seeds W, V, b, the random parts of R and ε, and the readout.

    References
    ----------
    Fading-memory paper §3 (eq. 11–13), §4.1–4.4.
    """
    return WCRNN(input_size, hidden_size, residual=residual, form=form, alpha=alpha, beta=beta, omega=omega, eps=eps,
                 eps_beta=eps_beta, nonlinearity=nonlinearity, output_size=output_size, batch_first=batch_first,
                 seed=seed, dtype=dtype)


@dynprobe.hookimpl
def dynprobe_adapt(module: Any, options: dict[str, Any]) -> System | None:
    """A :class:`WCRNN` as a System (state h, input x, readout = the module's head); else ``None``."""
    if not isinstance(module, WCRNN):
        return None
    params = {k: v.detach().clone() for k, v in module.step_params().items()}
    readout = None
    if module.readout is not None:
        weight, bias = module.readout.weight.detach().clone(), module.readout.bias.detach().clone()

        def readout(h: Tensor) -> Tensor:
            return F.linear(h, weight.to(h.dtype), bias.to(h.dtype))

    return System(
        module._step,
        params,
        state_dim=module.hidden_size,
        input_dim=module.input_size,
        readout=readout,
        name=options.get("name") or module.describe(),
        kind=f"wcrnn:{module.form}:{module.nonlinearity}",
        arch=Architecture(
            family="wcrnn", layers=1, hidden_size=module.hidden_size, input_size=module.input_size, bias=True,
            weights=(WeightRole("weight_hh", "recurrent"), WeightRole("weight_ih", "input"),
                     WeightRole("bias", "bias"), WeightRole("R", "residual")),
            source="dynprobe.plugins.models.wcrnn",
        ),
        meta={"residual": module.residual, "form": module.form, "nonlinearity": module.nonlinearity,
              "trainable": "weight_hh,weight_ih,bias"},
    )


_REF = "fading-memory paper §3–4 (WCRNN, eq. 11, 18, 19)"
MODELS = [
    ModelSpec(
        name="wcrnn",
        factory=wcrnn,
        doc="weakly coupled residual RNN h' = R h + ε tanh(W h + V x + b); residual diagonal/rotational/"
            "heterogeneous/orthogonal/product, forms linear/A/B",
        reference=_REF,
        presets={
            "subcritical": {"alpha": 0.9},
            "critical": {"alpha": 1.0},
            "supercritical": {"alpha": 1.1},
            "rotational": {"residual": "rotational", "omega": 2 * 3.141592653589793 / 28},
            "heterogeneous": {"residual": "heterogeneous", "alpha": 0.95, "beta": 0.05},
            "informed": {"residual": "product", "alpha": 0.95, "beta": 0.05},
            "type_a": {"form": "A"},
            "type_b": {"form": "B"},
        },
        system_defaults={"init_scale": 0.5, "drive": "autonomous"},
    )
]
