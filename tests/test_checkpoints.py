"""Safe checkpoint loading: inference from state_dicts, safetensors, refusals, one-line errors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

from dynprobe.checkpoints import PICKLE_REFUSAL, load_checkpoint, read_checkpoint
from dynprobe.errors import CheckpointError


class Net(nn.Module):
    """A trained model as users save it: the recurrent core plus a readout."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.rnn = nn.LSTM(1, hidden)
        self.readout = nn.Linear(hidden, 1)


class Payload:
    """Unpickling this runs ``touch MARKER`` — the shape of a real malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, (f"touch {self.marker}",))


def _one_line_naming(err: pytest.ExceptionInfo, path: Path) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    assert str(path) in text, text
    return text


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


_CONFIG = ("input_size", "hidden_size", "num_layers", "bias", "nonlinearity", "proj_size", "bidirectional")


@st.composite
def rnn_modules(draw: st.DrawFn) -> nn.Module:
    kind = draw(st.sampled_from(["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"]))
    inp, hidden, bias = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.booleans())
    kw: dict = {"bias": bias}
    if kind in ("RNN", "RNNCell"):
        kw["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if not kind.endswith("Cell"):
        kw["num_layers"] = draw(st.integers(1, 3))
    if kind == "LSTM":
        kw["proj_size"] = draw(st.integers(0, hidden - 1))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    return getattr(nn, kind)(inp, hidden, **kw)


@settings(max_examples=40, deadline=None)
@given(module=rnn_modules(), prefix=st.sampled_from(["", "rnn.", "module.encoder."]),
       nest=st.sampled_from([None, "model", "state_dict"]), safetensors=st.booleans())
def test_architecture_is_inferred_from_any_saved_state_dict(module: nn.Module, prefix: str, nest: str | None,
                                                            safetensors: bool) -> None:
    state = {prefix + k: v for k, v in module.state_dict().items()}
    state[prefix.rpartition("rnn.")[0] + "readout.weight"] = torch.ones(1, 2)  # a neighbour that is not read
    nonlinearity = getattr(module, "nonlinearity", None)
    with tempfile.TemporaryDirectory() as tmp:
        if safetensors:
            path = Path(tmp) / "ckpt.safetensors"
            save_file({k: v.contiguous() for k, v in state.items()}, path,
                      metadata={"nonlinearity": nonlinearity} if nonlinearity else None)
        else:
            path = Path(tmp) / "ckpt.pt"
            payload = {nest: state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3} if nest else dict(state)
            if nonlinearity:
                payload = {"model": state, "config": {"nonlinearity": nonlinearity}} if not nest else {
                    **payload, "hparams": {"nonlinearity": nonlinearity}}
            torch.save(payload, path)
        loaded = read_checkpoint(path)
    assert type(loaded.module) is type(module)
    for name in _CONFIG:
        assert getattr(loaded.module, name, None) == getattr(module, name, None), name
    assert _same_weights(loaded.module, module)


def test_epoch_and_step_come_from_the_file_then_from_its_name(tmp_path: Path) -> None:
    sd = nn.GRU(2, 3).state_dict()
    torch.save({"state_dict": sd, "epoch": 0, "global_step": 120}, tmp_path / "epoch_007.pt")
    torch.save(sd, tmp_path / "run-epoch_007-step=3000.pt")
    save_file(sd, tmp_path / "final.safetensors", metadata={"epoch": "12"})
    from_file = read_checkpoint(tmp_path / "epoch_007.pt")
    assert (from_file.epoch, from_file.step) == (0, 120)
    named = read_checkpoint(tmp_path / "run-epoch_007-step=3000.pt")
    assert (named.epoch, named.step) == (7, 3000)
    meta = read_checkpoint(tmp_path / "final.safetensors")
    assert (meta.epoch, meta.step) == (12, None)


def test_a_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == PICKLE_REFUSAL.format(path=path, what="it needs posix.system")
    assert not marker.exists()
    # the payload is live: trusting the file runs it (which is why trust must be explicit)
    with pytest.raises(CheckpointError, match="no state_dict"):
        load_checkpoint(path, trust_pickle=True)
    assert marker.exists()


def test_a_whole_module_needs_the_trust_flag(tmp_path: Path) -> None:
    torch.manual_seed(1)
    module = nn.LSTM(2, 4)
    torch.save(module, tmp_path / "whole.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "whole.pt")
    text = _one_line_naming(err, tmp_path / "whole.pt")
    assert "refused" in text and "trust_pickle=True (CLI: --trust-pickle)" in text
    assert _same_weights(load_checkpoint(tmp_path / "whole.pt", trust_pickle=True), module)


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        ("trunc.pt", lambda b: b[: len(b) // 2], "truncated"),
        ("trunc.safetensors", lambda b: b[:200], "truncated safetensors"),
        ("empty.pt", lambda b: b"", "empty file"),
        ("junk.pt", lambda b: b"not a checkpoint at all", "unreadable checkpoint"),
    ],
    ids=["truncated-torch", "truncated-safetensors", "empty", "junk"],
)
def test_damaged_files_give_one_line_naming_the_file(tmp_path: Path, name: str, damage, expected: str) -> None:
    good = tmp_path / ("good" + Path(name).suffix)
    sd = Net().state_dict()
    save_file(sd, good) if good.suffix == ".safetensors" else torch.save(sd, good)
    path = tmp_path / name
    path.write_bytes(damage(good.read_bytes()))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert expected in _one_line_naming(err, path)


def test_nonfinite_weights_are_refused_unless_allowed(tmp_path: Path) -> None:
    sd = Net().state_dict()
    sd["rnn.weight_hh_l0"][2, 1] = float("nan")
    sd["rnn.bias_ih_l0"][0] = float("inf")
    torch.save({"model": sd}, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "nan.pt")
    text = _one_line_naming(err, tmp_path / "nan.pt")
    assert "1 NaN and 1 inf values (in 'rnn.weight_hh_l0', 'rnn.bias_ih_l0';" in text
    module = load_checkpoint(tmp_path / "nan.pt", allow_nonfinite=True)
    assert torch.isnan(module.weight_hh_l0[2, 1])


def test_a_plain_rnn_asks_for_its_nonlinearity(tmp_path: Path) -> None:
    torch.save(nn.RNN(2, 3, nonlinearity="relu").state_dict(), tmp_path / "rnn.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "rnn.pt")
    assert "nonlinearity='tanh' or 'relu'" in _one_line_naming(err, tmp_path / "rnn.pt")
    assert load_checkpoint(tmp_path / "rnn.pt", nonlinearity="relu").nonlinearity == "relu"


def make_net() -> Net:
    """A factory as users name it: ``tests.test_checkpoints:make_net``."""
    return Net()


def test_a_factory_builds_the_module_and_shapes_must_fit(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = Net()
    torch.save({"model": net.state_dict(), "epoch": 1}, tmp_path / "net.pt")
    assert _same_weights(load_checkpoint(tmp_path / "net.pt", factory=make_net), net)
    assert _same_weights(load_checkpoint(tmp_path / "net.pt", factory=lambda: nn.LSTM(1, 8)), net.rnn)  # under rnn.
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "net.pt", factory=lambda: Net(hidden=5))
    text = _one_line_naming(err, tmp_path / "net.pt")
    assert "shape mismatch for 'rnn.weight_ih_l0': checkpoint [32, 1], the factory's Net [20, 1]" in text
    with pytest.raises(CheckpointError, match="no attribute 'nope'"):
        load_checkpoint(tmp_path / "net.pt", factory="tests.test_checkpoints:nope")
    with pytest.raises(CheckpointError, match="package.module:function"):
        load_checkpoint(tmp_path / "net.pt", factory="no_colon")


def test_inert_objects_saved_beside_the_weights_load_safely(tmp_path: Path, monkeypatch) -> None:
    """argparse.Namespace (``torch.save({"args": args, ...})``), paths, numpy values and Lightning's
    AttributeDict are read without unpickling anything that runs code."""
    import argparse
    import sys
    import types

    import numpy as np

    fake = types.ModuleType("lightning.fabric.utilities.data")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = "lightning.fabric.utilities.data", "AttributeDict"
    fake.AttributeDict = AttributeDict
    for name in ("lightning", "lightning.fabric", "lightning.fabric.utilities"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "lightning.fabric.utilities.data", fake)
    sd = nn.GRU(2, 3).state_dict()
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.1, nonlinearity="tanh"), "dir": Path("/runs/a"),
                "best": np.float64(0.25), "curve": np.arange(3.0), "hyper_parameters": AttributeDict(epoch=9)},
               tmp_path / "run.ckpt")
    for name in ("lightning", "lightning.fabric", "lightning.fabric.utilities", "lightning.fabric.utilities.data"):
        monkeypatch.delitem(sys.modules, name)  # loading must not need Lightning
    ckpt = read_checkpoint(tmp_path / "run.ckpt")
    assert all(torch.equal(ckpt.module.state_dict()[k], v) for k, v in sd.items())
    assert ckpt.epoch == 9  # read from the AttributeDict stand-in
