"""``nn.RNN`` (tanh, relu), ``nn.GRU``, ``nn.LSTM`` (any layer count, with or without bias,
``proj_size``) and ``nn.RNNCell/GRUCell/LSTMCell`` as pure functional steps.

The fused kernels that ``nn.LSTM`` calls do not support forward-mode AD, so the math is
re-expressed from the module's own weights, in PyTorch's gate order (GRU: r, z, n; LSTM: i, f,
g, o). The state is flat: every layer's ``h``, then (LSTM) every layer's ``c`` — the order of
PyTorch's ``(h_n, c_n)``. Tests check 50 steps against the module's own forward to 1e-10
(float64) for every combination.

References
----------
Fading-memory paper §2.1 (an RNN as a dynamical system); PyTorch documentation of
``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` for the update equations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynprobe import StateLayout, System
from dynprobe.architecture import Architecture, WeightRole
from dynprobe.errors import UnsupportedModuleError

__all__ = ["wrap_torch_rnn", "RNNConfig", "make_step"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


@dataclass(frozen=True)
class RNNConfig:
    """Architecture of a built-in recurrent module."""

    mode: str  # RNN_TANH, RNN_RELU, GRU, LSTM
    layers: int
    hidden: int
    proj: int  # 0 = no projection (LSTM only)
    bias: bool
    input_size: int
    cell: bool

    @property
    def out(self) -> int:
        """Size of each layer's ``h`` (the projection size when there is one)."""
        return self.proj or self.hidden

    def key(self, what: str, layer: int) -> str:
        return what if self.cell else f"{what}_l{layer}"

    def layout(self) -> StateLayout:
        sizes = [("h", layer, self.out) for layer in range(self.layers)]
        if self.mode == "LSTM":
            sizes += [("c", layer, self.hidden) for layer in range(self.layers)]
        return StateLayout.from_sizes(sizes)

    def architecture(self) -> Architecture:
        """The typed record probes read (family, nonlinearity, sizes, the weights' roles)."""
        family = {"RNN_TANH": "elman", "RNN_RELU": "elman", "GRU": "gru", "LSTM": "lstm"}[self.mode]
        phi = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}.get(self.mode, "")
        roles = [("weight_ih", "input"), ("weight_hh", "recurrent")]
        roles += [("bias_ih", "input_bias"), ("bias_hh", "recurrent_bias")] if self.bias else []
        roles += [("weight_hr", "projection")] if self.proj else []
        weights = tuple(WeightRole(self.key(what, layer), role, layer) for layer in range(self.layers) for what, role in roles)
        return Architecture(family=family, nonlinearity=phi, layers=self.layers, hidden_size=self.hidden,
                            input_size=self.input_size, proj_size=self.proj, bias=self.bias, cell=self.cell,
                            weights=weights, source="dynprobe.plugins.adapters.torch_rnn")

    def describe(self) -> str:
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}[self.mode]
        name += "Cell" if self.cell else ""
        extra = f", nonlinearity={'relu' if self.mode == 'RNN_RELU' else 'tanh'}" if self.mode.startswith("RNN") else ""
        extra += f", proj_size={self.proj}" if self.proj else ""
        extra += "" if self.bias else ", bias=False"
        layers = "" if self.cell else f", num_layers={self.layers}"
        return f"nn.{name}({self.input_size}, {self.hidden}{layers}{extra})"


def config_of(module: nn.Module) -> RNNConfig:
    """Read the architecture of a built-in recurrent module; refuse what is not a causal map."""
    if isinstance(module, nn.RNNBase):
        if module.bidirectional:
            raise UnsupportedModuleError(
                f"{type(module).__name__}(bidirectional=True) is not a causal map: its backward direction reads "
                "future inputs; analyse a unidirectional module (bidirectional=False) or each direction separately"
            )
        return RNNConfig(module.mode, module.num_layers, module.hidden_size, getattr(module, "proj_size", 0) or 0,
                         module.bias, module.input_size, cell=False)
    if isinstance(module, nn.RNNCell):
        mode = "RNN_RELU" if module.nonlinearity == "relu" else "RNN_TANH"
    elif isinstance(module, nn.GRUCell):
        mode = "GRU"
    elif isinstance(module, nn.LSTMCell):
        mode = "LSTM"
    else:  # pragma: no cover - the hookimpl filters types
        raise UnsupportedModuleError(f"{type(module).__name__} is not a built-in recurrent module")
    return RNNConfig(mode, 1, module.hidden_size, 0, module.bias, module.input_size, cell=True)


def module_params(module: nn.Module, cfg: RNNConfig) -> dict[str, Tensor]:
    """The weights under canonical names, read through ``getattr`` so parametrizations
    (``torch.nn.utils.parametrize``, weight norm) give the effective weights."""
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cfg.bias else []) + (["weight_hr"] if cfg.proj else [])
    return {cfg.key(n, layer): getattr(module, cfg.key(n, layer)).detach().clone()
            for layer in range(cfg.layers) for n in names}


def _linear(x: Tensor, p: Mapping[str, Tensor], cfg: RNNConfig, what: str, layer: int) -> Tensor:
    bias = p[cfg.key(f"bias_{what}", layer)] if cfg.bias else None
    return F.linear(x, p[cfg.key(f"weight_{what}", layer)], bias)


def make_step(cfg: RNNConfig) -> Callable[[Tensor, Tensor, Mapping[str, Tensor]], Tensor]:
    """The pure step ``fn(h, u, params) -> h_next`` of a module with configuration ``cfg``."""
    H, P, L = cfg.hidden, cfg.out, cfg.layers
    c_off = L * P

    def step(h: Tensor, u: Tensor, p: Mapping[str, Tensor]) -> Tensor:
        x = u
        hs: list[Tensor] = []
        cs: list[Tensor] = []
        for layer in range(L):
            h_l = h[..., layer * P:(layer + 1) * P]
            gi = _linear(x, p, cfg, "ih", layer)
            gh = _linear(h_l, p, cfg, "hh", layer)
            if cfg.mode == "RNN_TANH":
                h_new = torch.tanh(gi + gh)
            elif cfg.mode == "RNN_RELU":
                h_new = torch.relu(gi + gh)
            elif cfg.mode == "GRU":
                i_r, i_z, i_n = gi.chunk(3, dim=-1)
                h_r, h_z, h_n = gh.chunk(3, dim=-1)
                r = torch.sigmoid(i_r + h_r)
                z = torch.sigmoid(i_z + h_z)
                n = torch.tanh(i_n + r * h_n)
                h_new = (1 - z) * n + z * h_l
            else:
                c_l = h[..., c_off + layer * H:c_off + (layer + 1) * H]
                i, f, g, o = (gi + gh).chunk(4, dim=-1)
                c_new = torch.sigmoid(f) * c_l + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(c_new)
                if cfg.proj:
                    h_new = F.linear(h_new, p[cfg.key("weight_hr", layer)])
                cs.append(c_new)
            hs.append(h_new)
            x = h_new
        return torch.cat(hs + cs, dim=-1)

    step.__qualname__ = f"step[{cfg.describe()}]"
    return step


def wrap_torch_rnn(module: nn.Module, options: dict[str, Any]) -> System:
    """A System for a built-in recurrent module (eval semantics: dropout is off)."""
    cfg = config_of(module)
    top = cfg.layout().part("h", cfg.layers - 1)

    def readout(h: Tensor) -> Tensor:
        return h[..., top.start:top.stop]

    return System(
        make_step(cfg),
        module_params(module, cfg),
        state_dim=cfg.layout().size,
        input_dim=cfg.input_size,
        layout=cfg.layout(),
        readout=readout,
        name=options.get("name") or cfg.describe(),
        kind=f"torch:{cfg}",
        arch=cfg.architecture(),
        meta={"module": cfg.describe(), "dropout": float(getattr(module, "dropout", 0.0) or 0.0)},
    )
