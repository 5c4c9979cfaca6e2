"""System and drives: construction, ensembles, trajectories, errors."""

from __future__ import annotations

import pytest
import torch
from systems import linear_system, logistic_system

import dynprobe
from dynprobe import System
from dynprobe.errors import DriveError, ProbeParameterError


def test_from_step_trajectory_matches_closed_form():
    A = torch.diag(torch.tensor([0.5, -2.0], dtype=torch.float64))
    s = linear_system(A)
    h0 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    traj = s.trajectory(h0, 5)
    assert traj.shape == (6, 2)
    expected = torch.stack([torch.tensor([0.5**t, (-2.0) ** t], dtype=torch.float64) for t in range(6)])
    torch.testing.assert_close(traj, expected)


def test_with_params_replaces_and_stacks_into_an_ensemble():
    s = logistic_system(3.2)
    r = torch.tensor([2.9, 3.2, 3.9], dtype=torch.float64)
    ens = s.with_params(r=r)
    assert ens.networks == 3 and s.networks is None
    h = ens.initial_state(4, seed=1)
    assert h.shape == (3, 4, 1)
    out = ens.map(h)
    for i in range(3):
        torch.testing.assert_close(out[i], r[i] * h[i] * (1 - h[i]))
    torch.testing.assert_close(ens.network(2).params["r"], r[2])


def test_stack_equals_with_params_stack():
    systems = [logistic_system(r) for r in (3.0, 3.5)]
    ens = System.stack(systems)
    assert ens.networks == 2
    torch.testing.assert_close(ens.params["r"], torch.tensor([3.0, 3.5], dtype=torch.float64))


def test_from_step_without_floating_tensors_runs_in_float64():
    # nothing to take a dtype from: float64, whatever torch's default is
    assert System.from_step(lambda h, u, p: 4 * h * (1 - h), state_dim=1).dtype == torch.float64
    assert System.from_step(lambda h, u, p: h, state_dim=1, params={"n": torch.tensor(3)}).dtype == torch.float64
    # a floating parameter or an explicit dtype decides
    assert System.from_step(lambda h, u, p: h * p["a"], state_dim=1, params={"a": torch.tensor(0.5)}).dtype == torch.float32
    assert System.from_step(lambda h, u, p: h, state_dim=1, dtype=torch.float32).dtype == torch.float32
    assert "float64" in System.from_step(lambda h, u, p: h, state_dim=1).describe()


def test_stack_refuses_different_architectures():
    with pytest.raises(ProbeParameterError, match="differs in architecture"):
        System.stack([logistic_system(3.0), linear_system(torch.eye(2))])


def _capturing(r: float) -> System:
    return System.from_step(lambda h, u, p: r * h * (1 - h), state_dim=1)  # one qualname, one kind, for every r


def test_stack_refuses_steps_that_differ_beyond_their_parameters():
    # same kind, same (no) parameters, but the closures hold different r: vmapping the first step
    # over both would run both at r = 3.0
    with pytest.raises(ProbeParameterError, match="has another step function .* put the varying quantity into params"):
        System.stack([_capturing(3.0), _capturing(3.9)])
    # one code with equal closure values is one step: stacked (adapters build a closure per module)
    assert System.stack([_capturing(3.0), _capturing(3.0)]).networks == 2
    assert not System.stack([dynprobe.wrap(torch.nn.GRU(2, 3)), dynprobe.wrap(torch.nn.GRU(2, 3))]).looped


def test_looped_ensemble_steps_each_network_with_its_own_system():
    members = [_capturing(3.0), _capturing(3.9), linear_system(torch.tensor([[0.5]]))]
    ens = System.stack(members, loop=True)
    assert ens.looped and ens.networks == 3 and "looped" in ens.describe()
    h0 = torch.full((3, 2, 1), 0.3, dtype=torch.float64)
    traj = ens.trajectory(h0, 5)
    for i, m in enumerate(members):
        torch.testing.assert_close(traj[:, i], m.trajectory(h0[i], 5), rtol=0, atol=0)
        assert ens.network(i).step_fn is m.step_fn
    # tangents go through the loop too: J of r x (1 - x) at 0.3 is r (1 - 0.6)
    from dynprobe.linearize import jacobian

    J = jacobian(ens, h0)[..., 0, 0]
    torch.testing.assert_close(J[:, 0], torch.tensor([3.0 * 0.4, 3.9 * 0.4, 0.5], dtype=torch.float64))
    other = System.stack([*members[:2], linear_system(torch.tensor([[0.6]]))], loop=True)
    assert ens.fingerprint() != other.fingerprint()  # the members' parameters are in it
    assert ens.to(torch.float32).network(1).dtype == torch.float32
    with pytest.raises(ProbeParameterError, match="looped ensemble has no stacked parameters"):
        ens.with_params(r=torch.ones(3))
    with pytest.raises(ProbeParameterError, match="has N=2, M=0 but system 0 has N=1"):
        System.stack([_capturing(3.0), linear_system(torch.eye(2))], loop=True)


def test_with_params_errors_name_the_parameter():
    s = logistic_system(3.0)
    with pytest.raises(KeyError, match="unknown parameters \\['q'\\]"):
        s.with_params(q=torch.tensor(1.0))
    with pytest.raises(ProbeParameterError, match="parameter 'r' has shape"):
        s.with_params(r=torch.ones(2, 2))


def test_initial_state_is_seeded_and_uses_the_center():
    center = torch.tensor([0.5, 0.5], dtype=torch.float64)
    s = linear_system(torch.eye(2)).with_init(dynprobe.InitialState(center=center, scale=0.1))
    a, b = s.initial_state(5, seed=3), s.initial_state(5, seed=3)
    assert torch.equal(a, b)
    torch.testing.assert_close(a[0], center)
    assert not torch.equal(a, s.initial_state(5, seed=4))


def test_fingerprint_tracks_parameter_values():
    s = logistic_system(3.0)
    assert s.fingerprint() == logistic_system(3.0).fingerprint()
    assert s.fingerprint() != logistic_system(3.0000001).fingerprint()
    # remembered between calls, but not across an in-place change of a weight
    before = s.fingerprint()
    next(iter(s._params.values())).add_(1e-9)
    assert s.fingerprint() != before and s.fingerprint() == s._digest()


def test_to_casts_parameters():
    s = logistic_system(3.0).to(torch.float32)
    assert s.dtype == torch.float32 and s.params["r"].dtype == torch.float32
    assert s.initial_state(2).dtype == torch.float32


def test_state_shape_errors_are_one_line():
    s = linear_system(torch.eye(3))
    with pytest.raises(ProbeParameterError, match="state has 2 coordinates but the system has N=3"):
        s.trajectory(torch.zeros(2, dtype=torch.float64), 3)


def test_layout_coords():
    layout = dynprobe.StateLayout.from_sizes([("h", 0, 2), ("h", 1, 2), ("c", 0, 2), ("c", 1, 2)])
    coords = layout.coords()
    assert list(coords["unit_part"]) == ["h"] * 4 + ["c"] * 4
    assert list(coords["unit_layer"]) == [0, 0, 1, 1, 0, 0, 1, 1]
    assert layout.part("c", 1).start == 6
    with pytest.raises(KeyError, match="parts: h\\[layer 0\\]"):
        layout.part("x")


# ---------------------------------------------------------------- drives
def test_constant_drive_reaches_the_step():
    s = System.from_step(lambda h, u, p: h + u, state_dim=2, input_dim=2, dtype=torch.float64)
    s = s.with_drive(dynprobe.constant([1.0, -1.0]))
    traj = s.trajectory(torch.zeros(2, dtype=torch.float64), 3)
    torch.testing.assert_close(traj[-1], torch.tensor([3.0, -3.0], dtype=torch.float64))


def test_constant_scalar_broadcasts_over_inputs():
    s = System.from_step(lambda h, u, p: h + u, state_dim=2, input_dim=2, dtype=torch.float64)
    u = s.with_drive(dynprobe.constant(0.5)).inputs(0, torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(u, torch.full((3, 2), 0.5, dtype=torch.float64))


def test_a_drive_converts_once_follows_a_new_tensor_and_pickles_without_its_copies():
    import pickle

    s = System.from_step(lambda h, u, p: h + u, state_dim=2, input_dim=2, dtype=torch.float32)
    drive = dynprobe.sequence(torch.arange(12, dtype=torch.float64).reshape(6, 2))
    s = s.with_drive(drive)
    h = torch.zeros(2, dtype=torch.float32)
    first, second = drive.external(s, 0, ()), drive.external(s, 1, ())
    assert first.dtype == torch.float32 and first.untyped_storage().data_ptr() == second.untyped_storage().data_ptr()
    drive.inputs = -drive.inputs  # a new tensor: the cached copy must not be served
    torch.testing.assert_close(s.trajectory(h, 2)[-1], torch.tensor([-2.0, -4.0]))
    clone = pickle.loads(pickle.dumps(drive))
    assert "_converted" not in clone.__dict__ and torch.equal(clone.inputs, drive.inputs)


@pytest.mark.parametrize(
    "drive, message",
    [
        (dynprobe.constant([1.0, 2.0, 3.0]), "does not fit M=2"),
        (dynprobe.sequence(torch.zeros(10, 3)), "do not fit"),
    ],
    ids=["constant-wrong-M", "sequence-wrong-M"],
)
def test_drive_that_does_not_fit_is_refused(drive, message):
    s = System.from_step(lambda h, u, p: h + u, state_dim=2, input_dim=2)
    with pytest.raises(DriveError, match=message):
        s.with_drive(drive)


def test_sequence_rows_are_reused_cyclically_over_samples():
    s = System.from_step(lambda h, u, p: h + u, state_dim=1, input_dim=1, dtype=torch.float64)
    U = torch.tensor([[[1.0], [2.0], [3.0]]], dtype=torch.float64).expand(4, 3, 1)  # [time, 3 rows, 1]
    s = s.with_drive(dynprobe.sequence(U))
    u = s.inputs(0, torch.zeros(5, 1, dtype=torch.float64))
    assert u[:, 0].tolist() == [1.0, 2.0, 3.0, 1.0, 2.0]
    assert s.inputs(0, torch.zeros(2, 1, dtype=torch.float64))[:, 0].tolist() == [1.0, 2.0]

    # an ensemble of two networks, each with its own rows ([time, network, rows, M]), reused cyclically
    U4 = torch.stack([U, 10 * U], dim=1)  # [4, 2, 3, 1]
    ens = System.stack([s, s]).with_drive(dynprobe.sequence(U4))
    assert ens.networks == 2
    h0 = torch.zeros(2, 5, 1, dtype=torch.float64)
    assert ens.inputs(0, h0)[..., 0].tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0], [10.0, 20.0, 30.0, 10.0, 20.0]]
    # and the step sees them: h' = h + u from h = 0
    assert ens.trajectory(h0, 1)[1, ..., 0].tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0], [10.0, 20.0, 30.0, 10.0, 20.0]]


def test_sequence_shorter_than_run_is_refused():
    s = System.from_step(lambda h, u, p: h + u, state_dim=1, input_dim=1).with_drive(dynprobe.sequence(torch.zeros(5, 1)))
    with pytest.raises(DriveError, match="has 5 steps but the run needs 8"):
        s.trajectory(torch.zeros(1), 8)


def test_constant_on_a_system_without_inputs_says_autonomous():
    with pytest.raises(DriveError, match="use autonomous"):
        linear_system(torch.eye(2)).with_drive(dynprobe.constant(1.0))


def test_packed_sequence_is_refused():
    packed = torch.nn.utils.rnn.pack_sequence([torch.zeros(3, 1), torch.zeros(2, 1)])
    with pytest.raises(DriveError, match="pad_packed_sequence"):
        dynprobe.sequence(packed)


def test_nan_inputs_are_refused():
    with pytest.raises(DriveError, match="NaN"):
        dynprobe.constant(float("nan"))


def test_feedback_closes_the_loop():
    # h' = 0.5 h + u with u = 2 h fed back: the closed loop is h' = 2.5 h
    s = System.from_step(lambda h, u, p: 0.5 * h + u, state_dim=1, input_dim=1, dtype=torch.float64)
    s = s.with_drive(dynprobe.feedback(lambda h: 2 * h))
    traj = s.trajectory(torch.ones(1, dtype=torch.float64), 2)
    torch.testing.assert_close(traj[-1], torch.tensor([6.25], dtype=torch.float64))
    with pytest.raises(DriveError, match="readout gives 2 outputs"):
        s.with_drive(dynprobe.feedback(lambda h: torch.cat([h, h], -1)))


def test_feedback_without_readout_is_refused():
    s = System.from_step(lambda h, u, p: h + u, state_dim=1, input_dim=1)
    with pytest.raises(DriveError, match="has no readout"):
        s.with_drive(dynprobe.feedback())


@pytest.mark.parametrize("text, kind", [("zero", "autonomous"), ("constant:0.5", "constant"), ("feedback", "feedback")])
def test_parse_drive(text, kind):
    assert dynprobe.drives.parse_drive(text).kind == kind


def test_parse_drive_unknown_names_the_choices():
    with pytest.raises(DriveError, match="autonomous, constant:VALUE"):
        dynprobe.drives.parse_drive("sinus")


def test_advance_ends_where_the_trajectory_ends():
    s = logistic_system(3.9)
    h0 = s.initial_state(3, seed=2)
    torch.testing.assert_close(s.advance(h0, 25, start=4), s.trajectory(h0, 25, start=4)[-1], rtol=0, atol=0)


def test_every_construction_path_holds_the_invariants():
    """__init__, with_params and the internal copy all refuse a non-tensor parameter, one line
    naming it (with_params used to fail inside .detach() with an AttributeError)."""
    system = dynprobe.System.from_step(lambda h, u, p: p["a"] * h, state_dim=2, params={"a": torch.tensor(0.5)})
    with pytest.raises(TypeError, match="parameter 'a' is a list, expected a torch.Tensor"):
        dynprobe.System.from_step(lambda h, u, p: h, state_dim=2, params={"a": [0.5]})
    with pytest.raises(TypeError, match="parameter 'a' is a float, expected a torch.Tensor"):
        system.with_params(a=0.5)
    with pytest.raises(dynprobe.errors.ProbeParameterError, match="ensemble of 3 networks but parameters \\['a'\\]"):
        system._replace(networks=3)
