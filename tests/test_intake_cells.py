"""Real cells from the ecosystem, wrapped the way their code is written and checked against
the module's own forward to 1e-10 in float64 (issue 11, items 4-5).

Cells from PyPI (the ``[cells]`` extra; skipped when not installed): ncps' CfC and LTC
(liquid / closed-form continuous-time cells), minGRU-pytorch's minGRU, mambapy's Mamba in
recurrent mode. Cells whose code is not on PyPI are written here from their published
equations (never copied): coRNN (Rusch & Mishra, ICLR 2021, eq. 3), LEM (Rusch, Mishra,
Erichson & Mahoney, ICLR 2022, eq. 3), and the leaky CTRNN as neuroscience labs write it (Song,
Yang & Wang, PLoS Comput. Biol. 2016, eq. 1 discretized with α = dt/τ; the layout of the Yang
lab's public tutorial: ``forward(input[T, B, M], hidden)`` looping over time, ``recurrence``
taking one step).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe.errors import ProbeParameterError, UnsupportedModuleError
from dynprobe.testing import check_adapter

T, B = 50, 4


@pytest.fixture(autouse=True)
def _float64():
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(saved)


def _trajectory(system: dynprobe.System, h0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """States after each of the steps driven by x [T, B, M]: [T, B, N]."""
    return system.with_drive(dynprobe.sequence(x)).trajectory(h0, x.shape[0])[1:]


def _parts(system: dynprobe.System) -> list[str]:
    return [f"{p.name}{p.layer}" for p in system.layout.parts]


# ------------------------------------------------------------------ cells written from their papers
class CoRNNCell(nn.Module):
    """coRNN, eq. (3): z_n = z + Δt(σ(W y + 𝒲 z + V u + b) − γ y − ε z), y_n = y + Δt z_n,
    called as the authors' code calls it, cell(x, hy, hz) -> (hy, hz)."""

    def __init__(self, n_inp: int, n_hid: int, dt: float, gamma: float, epsilon: float) -> None:
        super().__init__()
        self.dt, self.gamma, self.epsilon = dt, gamma, epsilon
        self.W_y = nn.Linear(n_hid, n_hid, bias=False)
        self.W_z = nn.Linear(n_hid, n_hid, bias=False)
        self.V = nn.Linear(n_inp, n_hid)

    def forward(self, x, hy, hz):
        hz = hz + self.dt * (torch.tanh(self.W_y(hy) + self.W_z(hz) + self.V(x)) - self.gamma * hy - self.epsilon * hz)
        hy = hy + self.dt * hz
        return hy, hz


class CoRNN(nn.Module):
    """The model: a time-first forward over x [T, B, M] from zeros, a readout of hy."""

    def __init__(self, n_inp: int, n_hid: int, n_out: int) -> None:
        super().__init__()
        self.n_hid = n_hid
        self.cell = CoRNNCell(n_inp, n_hid, dt=0.042, gamma=2.7, epsilon=4.7)
        self.readout = nn.Linear(n_hid, n_out)

    def forward(self, x):
        hy = hz = x.new_zeros(x.shape[1], self.n_hid)
        for t in range(x.shape[0]):
            hy, hz = self.cell(x[t], hy, hz)
        return self.readout(hy)


class LEMCell(nn.Module):
    """LEM, eq. (3): Δt = dt σ(W₁y + V₁u), Δt̄ = dt σ(W₂y + V₂u), z' = (1−Δt) z + Δt tanh(W_z y + V_z u),
    y' = (1−Δt̄) y + Δt̄ tanh(W_y z' + V_y u); cell(x, y, z) -> (y, z)."""

    def __init__(self, ninp: int, nhid: int, dt: float) -> None:
        super().__init__()
        self.dt = dt
        self.inp = nn.Linear(ninp, 4 * nhid)
        self.hid = nn.Linear(nhid, 3 * nhid)
        self.w_z = nn.Linear(nhid, nhid)

    def forward(self, x, y, z):
        i1, i2, iz, iy = self.inp(x).chunk(4, -1)
        h1, h2, hz = self.hid(y).chunk(3, -1)
        dt_bar = self.dt * torch.sigmoid(i1 + h1)
        dt = self.dt * torch.sigmoid(i2 + h2)
        z = (1.0 - dt) * z + dt * torch.tanh(iz + hz)
        y = (1.0 - dt_bar) * y + dt_bar * torch.tanh(self.w_z(z) + iy)
        return y, z


class CTRNN(nn.Module):
    """Leaky CTRNN as labs write it: h' = relu((1−α) h + α(W_in x + W h + b)), α = dt/τ, with a
    forward that loops over time (input [T, B, M]) and a one-step ``recurrence``."""

    def __init__(self, input_size: int, hidden_size: int, dt: float = 20.0) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.alpha = dt / 100.0
        self.input2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size)

    def recurrence(self, input, hidden):
        return torch.relu((1 - self.alpha) * hidden + self.alpha * (self.input2h(input) + self.h2h(hidden)))

    def forward(self, input, hidden=None):
        if hidden is None:
            hidden = input.new_zeros(input.shape[1], self.hidden_size)
        output = []
        for i in range(input.size(0)):
            hidden = self.recurrence(input[i], hidden)
            output.append(hidden)
        return torch.stack(output, dim=0), hidden


def test_cornn_cell_with_its_state_spread_over_two_arguments() -> None:
    model = CoRNN(3, 16, 2)
    system = dynprobe.wrap(model.cell, state_dim=(16, 16), input_dim=3)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    model.cell.register_forward_hook(lambda _m, _a, out: seen.append(out))
    x = torch.randn(T, B, 3)
    expected = model(x)  # the model's own forward, every cell call recorded
    assert _parts(system) == ["hy0", "hz0"]  # named as the code names them, not h0/c0
    traj = _trajectory(system, torch.zeros(B, 32), x)
    torch.testing.assert_close(traj, torch.stack([torch.cat(s, -1) for s in seen]), rtol=0, atol=1e-10)
    torch.testing.assert_close(model.readout(traj[-1, :, :16]), expected, rtol=0, atol=1e-10)
    assert dynprobe.wrap(CoRNNCell(3, 16, 0.1, 1.0, 1.0), state_dim=16, input_dim=3).state_dim == 32  # H each
    check_adapter(CoRNNCell(3, 16, 0.1, 1.0, 1.0), state_dim=(16, 16), input_dim=3)


def test_lem_cell() -> None:
    cell = LEMCell(3, 12, dt=0.5)
    x, y, z = torch.randn(T, B, 3), 0.3 * torch.randn(B, 12), 0.3 * torch.randn(B, 12)
    system = dynprobe.wrap(cell, state_dim=(12, 12), input_dim=3)
    assert _parts(system) == ["y0", "z0"]
    traj = _trajectory(system, torch.cat([y, z], -1), x)
    states = []
    for t in range(T):
        y, z = cell(x[t], y, z)
        states.append(torch.cat([y, z], -1))
    torch.testing.assert_close(traj, torch.stack(states), rtol=0, atol=1e-10)


def test_a_leaky_ctrnn_whose_forward_loops_over_time_is_stepped_right() -> None:
    """The case that gave λ₁ ~4x too large: forward read a batch [B, M] as B time steps."""
    model = CTRNN(3, 16)
    with torch.no_grad():
        model.h2h.weight.mul_(4.0)
    x, h0 = torch.randn(T, B, 3), torch.rand(B, 16)
    outputs, _ = model(x, h0)
    auto = dynprobe.wrap(model)
    assert auto.meta["step"] == "CTRNN.forward(u[None], state)[1]" and _parts(auto) == ["hidden0"]
    torch.testing.assert_close(_trajectory(auto, h0, x), outputs, rtol=0, atol=1e-10)
    by_method = dynprobe.wrap(model, step="recurrence")
    torch.testing.assert_close(_trajectory(by_method, h0, x), outputs, rtol=0, atol=1e-10)
    # sample 0 of a 4-sample run starts where a 1-sample run starts (same seed): the same exponent
    together = dynprobe.run("lyapunov", auto.with_drive(dynprobe.sequence(x)), steps=40, burn_in=5, samples=4, k=1)
    alone = dynprobe.run("lyapunov", auto.with_drive(dynprobe.sequence(x[:, :1])), steps=40, burn_in=5, samples=1, k=1)
    assert float(together.exponents[0, 0]) == pytest.approx(float(alone.exponents[0, 0]), abs=1e-12)


def test_the_leak_of_any_system_is_an_option() -> None:
    rnn = nn.RNN(3, 8)
    alpha = 0.1
    system = dynprobe.wrap(rnn, alpha=alpha)
    h, u = torch.randn(5, 8), torch.randn(5, 3)
    plain = dynprobe.wrap(rnn)
    torch.testing.assert_close(system.step(h, u), (1 - alpha) * h + alpha * plain.step(h, u), rtol=0, atol=1e-15)
    assert system.arch.family == "custom"  # a leaky Elman RNN is not the mean-field vanilla RNN
    # exponents of a linear leaky map are known: h' = (1-a) h + a W h  ->  log|eig((1-a) I + a W)|
    lin = nn.RNN(1, 4, bias=False, nonlinearity="relu")
    with torch.no_grad():
        lin.weight_hh_l0.copy_(torch.diag(torch.tensor([2.0, 1.5, 1.2, 1.1])))
    ds = dynprobe.run("lyapunov", dynprobe.wrap(lin, alpha=0.2).with_init(dynprobe.InitialState(low=0.5, high=1.0)),
                      steps=300, burn_in=0)
    expected = torch.log(0.8 + 0.2 * torch.tensor([2.0, 1.5, 1.2, 1.1]))  # positive states: relu is the identity
    assert float(ds.exponent_mean.sum()) == pytest.approx(float(expected.sum()), abs=1e-12)  # log|det J|, exact
    assert float(ds.exponent_mean[0]) == pytest.approx(float(expected[0]), abs=0.01)  # the QR transient ~ 1/steps
    with pytest.raises(ProbeParameterError, match="alpha=1.5 must lie in"):
        dynprobe.wrap(rnn, alpha=1.5)
    with pytest.raises(ProbeParameterError, match="dt describe a custom cell, but nn.RNN"):
        dynprobe.wrap(rnn, dt=0.1)
    with pytest.raises(ProbeParameterError, match="unknown option\\(s\\) stat; .*did you mean 'state'"):
        dynprobe.wrap(rnn, stat=0.1)
    logistic = dynprobe.System.from_step(lambda h, u, p: 4.0 * h * (1 - h), state_dim=1)
    h = torch.full((1, 1), 0.3)
    torch.testing.assert_close(dynprobe.wrap(logistic, alpha=0.5).step(h, torch.zeros(1, 0)),
                               0.5 * h + 0.5 * logistic.step(h, torch.zeros(1, 0)))  # any System leaks
    with pytest.raises(ProbeParameterError, match="dt describe how to call a custom cell module, not a System"):
        dynprobe.wrap(logistic, dt=0.1)


class DictCell(nn.Module):
    """A cell whose state is a dict, as some codebases hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2 + 3, 6)

    def forward(self, x, state):
        a, b = self.lin(torch.cat([x, state["h"]], -1)).chunk(2, -1)
        memory = 0.9 * state["memory"] + 0.1 * torch.tanh(a)
        return {"h": torch.tanh(b + memory), "memory": memory}


def test_a_dict_state_is_flattened_and_named_by_its_keys() -> None:
    cell = DictCell()
    system = dynprobe.wrap(cell, input_dim=2, state={"h": torch.zeros(3), "memory": torch.zeros(3)})
    assert _parts(system) == ["h0", "memory0"]
    x, state = torch.randn(T, B, 2), {"h": torch.randn(B, 3), "memory": torch.randn(B, 3)}
    traj = _trajectory(system, torch.cat([state["h"], state["memory"]], -1), x)
    for t in range(T):
        state = cell(x[t], state)
    torch.testing.assert_close(traj[-1], torch.cat([state["h"], state["memory"]], -1), rtol=0, atol=1e-12)
    check_adapter(cell, input_dim=2, state={"h": torch.zeros(3), "memory": torch.zeros(3)})


# ------------------------------------------------------------------ cells from PyPI (the [cells] extra)
def _hook_states(cell: nn.Module) -> list[torch.Tensor]:
    """Record the new state of every call of ``cell.forward`` (ncps calls it directly, past hooks)."""
    seen: list[torch.Tensor] = []
    forward = cell.forward

    def recording(*args, **kwargs):
        out = forward(*args, **kwargs)
        seen.append(out[1])
        return out

    cell.forward = recording
    return seen


@pytest.mark.parametrize("dt", [None, 0.5])
def test_ncps_cfc_sequence_forward_and_cell(dt: float | None) -> None:
    ncps = pytest.importorskip("ncps.torch")
    model = ncps.CfC(3, 8)
    system = dynprobe.wrap(model, dt=dt)
    cell = dynprobe.wrap(model.rnn_cell, dt=1.0 if dt is None else dt)
    x, h0 = torch.randn(B, T, 3), 0.5 * torch.randn(B, 8)
    seen = _hook_states(model.rnn_cell)
    spans = None if dt is None else torch.full((1, T), dt)  # (1, T) broadcasts over the batch
    _, h_final = model(x, h0, timespans=spans)
    assert system.meta["step"].startswith("CfC.forward(u[:, None], state") and _parts(system) == ["hx0"]
    traj = _trajectory(system, h0, x.transpose(0, 1))
    torch.testing.assert_close(traj, torch.stack(seen[:T]), rtol=0, atol=1e-10)
    torch.testing.assert_close(traj[-1], h_final, rtol=0, atol=1e-10)
    torch.testing.assert_close(_trajectory(cell, h0, x.transpose(0, 1)), traj, rtol=0, atol=1e-10)


def test_ncps_cfc_with_mixed_memory_has_the_tuple_state_it_names() -> None:
    ncps = pytest.importorskip("ncps.torch")
    model = ncps.CfC(3, 8, mixed_memory=True)
    x, h0, c0 = torch.randn(B, T, 3), 0.5 * torch.randn(B, 8), 0.5 * torch.randn(B, 8)
    _, (h, c) = model(x, (h0, c0))
    system = dynprobe.wrap(model)
    assert _parts(system) == ["h_state0", "c_state0"]
    traj = _trajectory(system, torch.cat([h0, c0], -1), x.transpose(0, 1))
    torch.testing.assert_close(traj[-1], torch.cat([h, c], -1), rtol=0, atol=1e-10)
    check_adapter(model)


def test_ncps_ltc_liquid_time_constant_cell_with_a_fixed_dt() -> None:
    ncps = pytest.importorskip("ncps.torch")
    model = ncps.LTC(3, 8)
    system = dynprobe.wrap(model.rnn_cell, dt=0.25, input_dim=3)
    x, h0 = torch.randn(B, T, 3), 0.5 * torch.randn(B, 8)
    seen = _hook_states(model.rnn_cell)
    _, h_final = model(x, h0, timespans=torch.full((1, T), 0.25))
    assert system.meta["step"] == "LTCCell.forward(u, state, elapsed_time=0.25)[1]"
    traj = _trajectory(system, h0, x.transpose(0, 1))
    torch.testing.assert_close(traj, torch.stack(seen), rtol=0, atol=1e-10)
    torch.testing.assert_close(traj[-1], h_final, rtol=0, atol=1e-10)
    whole = dynprobe.wrap(model, dt=0.25)  # the sequence forward, stepped with a length-1 time axis
    torch.testing.assert_close(_trajectory(whole, h0, x.transpose(0, 1)), traj, rtol=0, atol=1e-10)


def test_mingru_stepped_through_its_sequence_forward() -> None:
    mingru = pytest.importorskip("minGRU_pytorch")
    model = mingru.minGRU(6)
    x = torch.randn(B, T, 6)
    out, _ = model(x, return_next_prev_hidden=True)  # the parallel scan from h0 = 0
    system = dynprobe.wrap(model, input_dim=6, state=torch.zeros(1, 6),
                           call_kwargs={"return_next_prev_hidden": True})
    traj = _trajectory(system, torch.zeros(B, 6), x.transpose(0, 1))
    torch.testing.assert_close(traj, out.transpose(0, 1), rtol=0, atol=1e-10)
    # bias-free gates: at u = 0 the Jacobian is 0.5·I, so every exponent is log 0.5 exactly
    ds = dynprobe.run("lyapunov", system, steps=30, burn_in=5)
    torch.testing.assert_close(torch.as_tensor(ds.exponent_mean.values), torch.full((6,), math.log(0.5)), rtol=0,
                               atol=1e-12)


def test_mamba_in_recurrent_mode_with_its_per_layer_caches() -> None:
    mamba = pytest.importorskip("mambapy.mamba")
    model = mamba.Mamba(mamba.MambaConfig(d_model=8, n_layers=2, d_state=4, expand_factor=2, d_conv=4)).double()
    x = torch.randn(B, T, 8)
    expected = model(x)  # the parallel scan
    caches = [(torch.zeros(16, 4), torch.zeros(16, 3)) for _ in range(2)]
    system = dynprobe.wrap(model, step="step", input_dim=8, state=caches, state_names=("h", "inputs"),
                           dtype=torch.float64)
    assert _parts(system) == ["h0", "inputs0", "h1", "inputs1"] and system.state_dim == 2 * (64 + 48)
    traj = _trajectory(system, torch.zeros(B, system.state_dim), x.transpose(0, 1))
    # the outputs y_t that the module's own step gives from our states reproduce its forward
    before = torch.cat([torch.zeros(1, B, system.state_dim), traj[:-1]])
    ys = []
    for t in range(T):
        h, conv, h1, conv1 = before[t].split([64, 48, 64, 48], -1)
        cache = [(h.reshape(B, 16, 4), conv.reshape(B, 16, 3)), (h1.reshape(B, 16, 4), conv1.reshape(B, 16, 3))]
        ys.append(model.step(x[:, t], cache)[0])
    torch.testing.assert_close(torch.stack(ys, 1), expected, rtol=0, atol=1e-10)


def test_complex_parameters_are_refused_with_the_way_out() -> None:
    class Rotation(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden_size, self.input_size = 2, 1
            self.lam = nn.Parameter(torch.tensor([0.9 + 0.1j, 0.8 - 0.2j]))

        def forward(self, x, h):
            return h, (self.lam * h.to(self.lam.dtype)).real

    with pytest.raises(UnsupportedModuleError, match=r"complex parameters; .*\[Re h, Im h\] with System.from_step"):
        dynprobe.wrap(Rotation())


def test_a_cell_that_draws_noise_in_its_step_is_refused_with_the_reason() -> None:
    class Noisy(CTRNN):
        def recurrence(self, input, hidden):
            return super().recurrence(input, hidden) + 0.0 * torch.randn_like(hidden)

    with pytest.raises(UnsupportedModuleError, match="draws random numbers|two calls with the same input differ"):
        dynprobe.wrap(Noisy(3, 4), step="recurrence")
