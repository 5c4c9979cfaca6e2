"""Adapters: every built-in recurrent module equals its own forward to 1e-10 over 50 steps."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.errors import UnsupportedModuleError
from dynprobe.testing import check_adapter

T, B, M, H = 50, 3, 4, 5

RNN_KINDS = [
    (nn.RNN, {"nonlinearity": "tanh"}),
    (nn.RNN, {"nonlinearity": "relu"}),
    (nn.GRU, {}),
    (nn.LSTM, {}),
    (nn.LSTM, {"proj_size": 3}),
]
CASES = [
    pytest.param(cls, kw, layers, bias, batch_first,
                 id=f"{cls.__name__}{'-' + '-'.join(f'{k}={v}' for k, v in kw.items()) if kw else ''}-L{layers}"
                    f"-{'bias' if bias else 'nobias'}-{'bf' if batch_first else 'tf'}")
    for (cls, kw), layers, bias, batch_first in itertools.product(RNN_KINDS, (1, 2, 3), (True, False), (True, False))
]


def _parts(system: dynprobe.System, h: torch.Tensor, name: str, layers: int) -> torch.Tensor:
    return torch.stack([h[..., system.layout.part(name, l).start:system.layout.part(name, l).stop] for l in range(layers)])


@pytest.mark.parametrize("cls, kw, layers, bias, batch_first", CASES)
def test_rnn_module_matches_its_forward(cls, kw, layers, bias, batch_first):
    torch.manual_seed(0)
    module = cls(M, H, num_layers=layers, bias=bias, batch_first=batch_first, **kw).double()
    system = dynprobe.wrap(module)
    U = torch.randn(T, B, M, dtype=torch.float64)
    h0 = 0.5 * torch.randn(B, system.state_dim, dtype=torch.float64)
    traj = system.with_drive(dynprobe.sequence(U)).trajectory(h0, T)

    hs = _parts(system, h0, "h", layers)
    state = (hs, _parts(system, h0, "c", layers)) if cls is nn.LSTM else hs
    x = U.transpose(0, 1) if batch_first else U
    with torch.no_grad():
        out, final = module(x, state)
    out = out.transpose(0, 1) if batch_first else out
    top = system.layout.part("h", layers - 1)
    assert (out - traj[1:, :, top.start:top.stop]).abs().max() <= 1e-10
    final_h = final[0] if cls is nn.LSTM else final
    assert (final_h - _parts(system, traj[-1], "h", layers)).abs().max() <= 1e-10
    if cls is nn.LSTM:
        assert (final[1] - _parts(system, traj[-1], "c", layers)).abs().max() <= 1e-10


CELL_KINDS = [  # only nn.RNNCell has a nonlinearity option: listed, not generated and skipped
    pytest.param(nn.RNNCell, {"nonlinearity": "tanh"}, id="RNNCell-tanh"),
    pytest.param(nn.RNNCell, {"nonlinearity": "relu"}, id="RNNCell-relu"),
    pytest.param(nn.GRUCell, {}, id="GRUCell"),
    pytest.param(nn.LSTMCell, {}, id="LSTMCell"),
]


@pytest.mark.parametrize("cls, kw", CELL_KINDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_cell_matches_its_forward(cls, kw, bias):
    torch.manual_seed(1)
    module = cls(M, H, bias=bias, **kw).double()
    system = dynprobe.wrap(module)
    U = torch.randn(T, B, M, dtype=torch.float64)
    h0 = 0.5 * torch.randn(B, system.state_dim, dtype=torch.float64)
    traj = system.with_drive(dynprobe.sequence(U)).trajectory(h0, T)
    state = (h0[:, :H], h0[:, H:]) if cls is nn.LSTMCell else h0
    with torch.no_grad():
        for t in range(T):
            state = module(U[t], state)
            flat = torch.cat(state, -1) if isinstance(state, tuple) else state
            assert (flat - traj[t + 1]).abs().max() <= 1e-10


def test_lstm_state_holds_h_and_c_of_every_layer():
    system = dynprobe.wrap(nn.LSTM(3, 7, num_layers=2))
    assert system.state_dim == 2 * 2 * 7
    assert [(p.name, p.layer) for p in system.layout.parts] == [("h", 0), ("h", 1), ("c", 0), ("c", 1)]


def test_readout_is_the_top_layer_output():
    module = nn.GRU(2, 4, num_layers=2).double()
    system = dynprobe.wrap(module)
    h = torch.randn(3, system.state_dim, dtype=torch.float64)
    torch.testing.assert_close(system.output(h), h[:, 4:8])


def test_parametrized_weights_are_read_through_the_parametrization():
    module = nn.RNN(2, 4).double()
    torch.nn.utils.parametrizations.orthogonal(module, "weight_hh_l0")
    system = dynprobe.wrap(module)
    W = system.params["weight_hh_l0"]
    torch.testing.assert_close(W @ W.T, torch.eye(4, dtype=torch.float64))


def test_bidirectional_is_refused_with_a_way_out():
    with pytest.raises(UnsupportedModuleError, match="not a causal map.*bidirectional=False"):
        dynprobe.wrap(nn.LSTM(2, 3, bidirectional=True))


@pytest.mark.parametrize(
    "module",
    [nn.RNN(3, 4, num_layers=2), nn.GRU(3, 4), nn.LSTM(3, 4, num_layers=2), nn.LSTM(3, 4, proj_size=2),
     nn.RNNCell(3, 4, nonlinearity="relu"), nn.GRUCell(3, 4), nn.LSTMCell(3, 4)],
    ids=["RNN2", "GRU", "LSTM2", "LSTMproj", "RNNCell-relu", "GRUCell", "LSTMCell"],
)
def test_adapter_conformance(module):
    check_adapter(module)


# ---------------------------------------------------------------- generic adapter
class TupleCell(nn.Module):
    """A user's cell with an LSTM-like (h, c) tuple state and forward(x, h) -> (y, h)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size)

    def forward(self, x, state):
        h, c = state
        a, b = self.lin(torch.cat([x, h], -1)).chunk(2, -1)
        c = 0.9 * c + 0.1 * torch.tanh(a)
        h = torch.sigmoid(b) * torch.tanh(c)
        return h, (h, c)


class PlainCell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(3, 3) * 0.5)
        self.register_buffer("scale", torch.tensor(0.9))

    def forward(self, x, h):
        h = self.scale * torch.tanh(h @ self.W.T + x.sum(-1, keepdim=True))
        return h, h


class ImpureCell(PlainCell):
    def forward(self, x, h):
        gain = torch.from_numpy(h.detach().numpy() ** 2)  # row by row, but not transformable by torch.func
        return h * gain, h * gain


class BatchMaxCell(PlainCell):
    def forward(self, x, h):
        gain = float(h.abs().max().item())  # one number over the whole batch: rows are not independent
        return h * gain, h * gain


def test_generic_adapter_tuple_state_matches_forward():
    torch.manual_seed(0)
    cell = TupleCell(2, 3).double()
    system = dynprobe.wrap(cell)
    assert system.state_dim == 6 and [p.name for p in system.layout.parts] == ["h", "c"]
    U = torch.randn(20, 4, 2, dtype=torch.float64)
    traj = system.with_drive(dynprobe.sequence(U)).trajectory(torch.zeros(4, 6, dtype=torch.float64), 20)
    state = (torch.zeros(4, 3, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64))
    with torch.no_grad():
        for t in range(20):
            _, state = cell(U[t], state)
    torch.testing.assert_close(traj[-1], torch.cat(state, -1), rtol=0, atol=1e-12)
    check_adapter(cell)


def test_generic_adapter_with_explicit_sizes_and_buffers():
    cell = PlainCell()
    with pytest.raises(UnsupportedModuleError, match="state_dim=N, input_dim=M"):
        dynprobe.wrap(cell)
    system = check_adapter(cell, state_dim=3, input_dim=2)
    assert "scale" in system.params


def test_impure_forward_is_refused_with_the_reason():
    with pytest.raises(UnsupportedModuleError, match="not torch.func-pure.*numpy calls"):
        dynprobe.wrap(ImpureCell(), state_dim=3, input_dim=2)


def test_a_forward_that_mixes_batch_rows_is_refused_with_the_way_out():
    with pytest.raises(UnsupportedModuleError) as err:
        dynprobe.wrap(BatchMaxCell(), state_dim=3, input_dim=2)
    text = str(err.value)
    assert "\n" not in text and len(text) < 900, text
    assert "it mixes batch rows: a row stepped in a batch of 3 differs from the same row stepped alone" in text
    assert "hand over the one-step function" in text


def test_unsupported_object_lists_the_ways_out():
    with pytest.raises(UnsupportedModuleError, match="no adapter handles object.*System.from_step"):
        dynprobe.wrap(object())


def test_list_of_modules_is_an_ensemble():
    torch.manual_seed(0)
    modules = [nn.GRU(2, 3).double() for _ in range(4)]
    ens = dynprobe.wrap(modules)
    assert ens.networks == 4
    h = ens.initial_state(5, seed=0)
    out = ens.map(h)
    for i, m in enumerate(modules):
        torch.testing.assert_close(out[i], dynprobe.wrap(m).map(h[i]))
