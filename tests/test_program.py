"""Compiled tangent programs against the traced fx graph they come from, their JSON form, and
the loop-invariant hoisting."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.linearize import TangentMap, jvp_columns
from dynprobe.program import Program, ProgramError
from dynprobe.tracing import trace

MODULES = {
    "LSTM2": lambda: nn.LSTM(3, 4, num_layers=2),
    "GRU": lambda: nn.GRU(3, 5),
    "RNNrelu": lambda: nn.RNN(3, 6, nonlinearity="relu"),
    "LSTMproj": lambda: nn.LSTM(3, 6, proj_size=2),
}


def _traced(name: str, drive=None):
    torch.manual_seed(0)
    system = dynprobe.wrap(MODULES[name]().double(), drive=drive or dynprobe.constant(torch.randn(3)))
    tangent = TangentMap(system, trace=True)
    h = 0.5 * torch.randn(2, system.state_dim, dtype=torch.float64)
    Q = torch.randn(2, system.state_dim, 3, dtype=torch.float64)
    u = system.drive.external(system, 0, (2,))
    flat = [system.params[k] for k in sorted(system.params)]
    gm, mode = trace(tangent._fn, h, Q, u, *flat)
    assert mode == "traced"
    return system, tangent, gm, (h, Q, u, *flat)


@pytest.mark.parametrize("name", list(MODULES))
def test_compiled_program_equals_the_fx_graph_bit_for_bit(name):
    system, tangent, gm, inputs = _traced(name)
    program = Program.from_graph(gm)
    want = gm(*inputs)
    got = program.compile(()).bind(())(*inputs)
    hoisted = program.compile(range(2, len(inputs))).bind(inputs[2:])(*inputs[:2])
    for w, g, x in zip(want, got, hoisted):
        assert torch.equal(w, g) and torch.equal(w, x)
    h1, JQ = jvp_columns(system, inputs[0], inputs[1])  # and both are J @ Q
    torch.testing.assert_close(got[1], JQ, rtol=0, atol=1e-13)
    torch.testing.assert_close(got[0], h1, rtol=0, atol=1e-14)


def test_json_round_trip_reproduces_the_program():
    _, _, gm, inputs = _traced("LSTM2")
    program = Program.from_graph(gm)
    constants = [program.constants[i] for i in sorted(program.constants)]
    back = Program.from_json(program.to_json(), constants)
    assert back.to_json() == program.to_json()
    for a, b in zip(program.compile(()).bind(())(*inputs), back.compile(()).bind(())(*inputs)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("op", ["builtins.eval", "os.system", "aten.mm.default; import os", "torch.ops.aten.mm.default"])
def test_only_aten_ops_load_from_json(op):
    _, _, gm, _ = _traced("GRU")
    data = json.loads(Program.from_graph(gm).to_json())
    data["body"][0][1] = op
    with pytest.raises(ProgramError, match="not an aten overload"):
        Program.from_json(json.dumps(data), [])


def test_malformed_json_is_a_program_error():
    with pytest.raises(ProgramError, match="malformed program"):
        Program.from_json('{"n_inputs": 2}', [])
    _, _, gm, _ = _traced("GRU")
    data = json.loads(Program.from_graph(gm).to_json())
    data["body"][0][2] = [{"ref": 999}]
    with pytest.raises(ProgramError, match="undefined values"):
        Program.from_json(json.dumps(data), [])


def _loop_ops(tangent: TangentMap, system) -> list[str]:
    h = torch.zeros(1, system.state_dim, dtype=torch.float64)
    Q = torch.eye(system.state_dim, 2, dtype=torch.float64)[None]
    program = tangent.program(h, Q)
    static = [2, *range(3, program.n_inputs)]
    return [ins.op for ins in program.compile(static).loop]


def test_input_terms_of_a_constant_drive_are_computed_once():
    module = nn.RNN(3, 5).double()
    system = dynprobe.wrap(module, drive=dynprobe.constant([0.1, 0.2, 0.3]))
    ops = _loop_ops(TangentMap(system, trace=True), system)
    gemms = [op for op in ops if op in ("aten.mm.default", "aten.addmm.default")]
    assert len(gemms) == 2, ops  # W_hh h and W_hh Q per step; W_ih u + b is hoisted


def test_a_zero_input_term_is_dropped_for_the_binding_and_the_result_is_unchanged():
    module = nn.RNN(3, 5, bias=False).double()
    system = dynprobe.wrap(module)  # autonomous: u = 0, so W_ih u = 0 exactly
    tangent = TangentMap(system, trace=True)
    h = torch.randn(2, 5, dtype=torch.float64)
    Q = torch.randn(2, 5, 2, dtype=torch.float64)
    h1, JQ = tangent(h, Q)
    ref_h, ref_JQ = jvp_columns(system, h, Q)
    torch.testing.assert_close(JQ, ref_JQ, rtol=0, atol=1e-14)
    torch.testing.assert_close(h1, ref_h, rtol=0, atol=1e-15)
    assert "aten.add.Tensor" not in tangent.runner(h, Q).ops  # tanh(W_hh h + 0): no add per step
    with_bias = TangentMap(dynprobe.wrap(nn.RNN(3, 5).double()), trace=True)
    assert "aten.add.Tensor" in with_bias.runner(h, Q).ops or "aten.addmm.default" in with_bias.runner(h, Q).ops
