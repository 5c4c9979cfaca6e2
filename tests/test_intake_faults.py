"""Every failure on the way in is one line naming the file or module, what was expected and the
fix — crafted files included (issue 11 item 6; issue 16 items 1, 6 and 7, the loading side)."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

import dynprobe
from dynprobe.archive import memory_limit
from dynprobe.checkpoints import MAX_COUNT, read_checkpoint
from dynprobe.cli import cli
from dynprobe.errors import CheckpointError, DriveError, ProbeParameterError


def _one_error_line(args: list[str]) -> str:
    res = CliRunner().invoke(cli, args, terminal_width=400)
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, res.output
    return lines[0]


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (os.system, (f"touch {self.marker}",))


def test_stride_zero_tensors_declaring_34_gb_are_refused_before_they_are_touched(tmp_path: Path, monkeypatch) -> None:
    hidden = 32768
    one = torch.zeros(1)
    state = {"weight_ih_l0": one.expand(4 * hidden, 2), "weight_hh_l0": one.expand(4 * hidden, hidden),
             "bias_ih_l0": one.expand(4 * hidden), "bias_hh_l0": one.expand(4 * hidden)}
    path = tmp_path / "crafted.pt"
    torch.save(state, path)
    assert path.stat().st_size < 4000  # a few KB on disk
    monkeypatch.setenv("DYNPROBE_MAX_WEIGHT_BYTES", str(8 << 30))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path))
    declared = sum(t.numel() for t in state.values())  # 34.4e9 bytes in float64
    assert (f"declares {declared:,} weights (32.0 GiB as float64; the largest 'weight_hh_l0' is [131072, 32768]) in "
            "0.0 MiB of stored data (stride-0 or overlapping views") in text, text
    assert "more than the limit of 8.0 GiB (DYNPROBE_MAX_WEIGHT_BYTES)" in text
    monkeypatch.delenv("DYNPROBE_MAX_WEIGHT_BYTES")
    limit, why = memory_limit()
    assert limit <= 16 << 30 and ("available" in why or "16 GiB" in why)
    with pytest.raises(CheckpointError, match="refused before reading them"):
        read_checkpoint(path)


def test_an_input_file_holding_a_pickled_payload_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"inputs": Payload(marker)}, tmp_path / "evil.pt")
    line = _one_error_line(["run", "lyapunov", "lstm2d_chaotic", "--input", str(tmp_path / "evil.pt"), "--steps", "10"])
    assert "refused: the file holds pickled Python objects (it needs posix.system)" in line
    assert "weights_only=False" not in line and "--input" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: np.save(p.with_suffix(".npy"), np.array(["a", "b"])), "holds strings, not numbers"),
        (lambda p: np.save(p.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True),
         "holds Python objects (refused"),
        (lambda p: torch.save({"x": torch.zeros(3, 1)}, p.with_suffix(".pt")), "holds a dict with keys 'x'"),
        (lambda p: torch.save(["a", "b"], p.with_suffix(".pt")), "holds a list"),
        (lambda p: torch.save(torch.zeros(3, 1, dtype=torch.complex64), p.with_suffix(".pt")), "holds complex64"),
        (lambda p: p.with_suffix(".npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, "
                                                     b"'shape': (1000000, 1000000), }" + b" " * 50 + b"\n"),
         "--input"),
    ],
    ids=["strings", "objects", "dict", "list", "complex", "huge-npy-header"],
)
def test_input_files_that_hold_no_numbers_give_one_line(tmp_path: Path, make, expected: str) -> None:
    make(tmp_path / "inp")
    path = next(tmp_path.glob("inp.*"))
    line = _one_error_line(["run", "lyapunov", "lstm2d_chaotic", "--input", str(path), "--steps", "10"])
    assert expected in line and str(path) in line, line


def test_a_deeply_nested_safetensors_header_is_one_line(tmp_path: Path) -> None:
    header = b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match="nested too deeply") as err:
        read_checkpoint(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_factory_that_needs_arguments_says_how_to_give_them(tmp_path: Path) -> None:
    torch.save(nn.GRU(2, 3).state_dict(), tmp_path / "gru.pt")
    line = _one_error_line(["run", "lyapunov", str(tmp_path / "gru.pt"), "--factory", "torch.nn:GRU", "--steps", "10"])
    assert "factory 'torch.nn:GRU' could not be called with no arguments" in line
    assert "--model-param KEY=VALUE" in line
    res = CliRunner().invoke(cli, ["run", "lyapunov", str(tmp_path / "gru.pt"), "--factory", "torch.nn:GRU",
                                   "--model-param", "input_size=2", "--model-param", "hidden_size=3",
                                   "--steps", "50", "-o", str(tmp_path / "g.nc")])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("dtype, expected", [(torch.int64, "holds int64 values, not floating-point weights"),
                                             (torch.complex64, "holds complex values (complex64)")])
def test_integer_or_complex_weights_are_refused(tmp_path: Path, dtype: torch.dtype, expected: str) -> None:
    state = {k: v.to(dtype) for k, v in nn.LSTM(2, 3).state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=re.escape(expected)) as err:
        read_checkpoint(tmp_path / "w.pt")
    assert str(err.value).startswith(str(tmp_path / "w.pt"))
    with pytest.raises(CheckpointError, match=re.escape(expected)):  # into a factory's float module too
        read_checkpoint(tmp_path / "w.pt", factory=lambda: nn.LSTM(2, 3))


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_is_refused_for_analysis_and_half_weights_are_read_in_float32(half: torch.dtype) -> None:
    with pytest.raises(ProbeParameterError, match="too coarse for dynamical analysis .*pass dtype=torch.float32"):
        dynprobe.wrap(nn.GRU(2, 4), dtype=half)
    module = nn.GRU(2, 4).to(half)
    with pytest.warns(RuntimeWarning, match="weights; analysing it in float32"):
        system = dynprobe.wrap(module)
    assert system.dtype == torch.float32
    torch.testing.assert_close(system.params["weight_hh_l0"], module.weight_hh_l0.float(), rtol=0, atol=0)  # exact
    ds = dynprobe.run("lyapunov", system, steps=50, burn_in=10)
    assert np.isfinite(ds.exponent_mean.values).all()
    with pytest.raises(ProbeParameterError, match="dtype=complex64"):
        dynprobe.wrap(nn.GRU(2, 4), dtype=torch.complex64)


def test_absurd_epochs_and_steps_are_ignored_with_a_recorded_warning(tmp_path: Path) -> None:
    sd = nn.GRU(2, 3).state_dict()
    save_file(sd, tmp_path / "big.safetensors", metadata={"epoch": "99999999999999999999", "step": "12"})
    with pytest.warns(RuntimeWarning, match="epoch 99999999999999999999 recorded in the file is outside 0..2\\*\\*53"):
        ckpt = read_checkpoint(tmp_path / "big.safetensors")
    assert (ckpt.epoch, ckpt.step) == (None, 12) and len(ckpt.warnings) == 1
    torch.save({"state_dict": sd, "epoch": 2**63, "global_step": -5}, tmp_path / "ep.pt")
    with pytest.warns(RuntimeWarning):
        ckpt = read_checkpoint(tmp_path / "ep.pt")
    assert (ckpt.epoch, ckpt.step) == (None, None) and len(ckpt.warnings) == 2
    torch.save({"state_dict": sd, "epoch": MAX_COUNT}, tmp_path / "ok.pt")
    assert read_checkpoint(tmp_path / "ok.pt").epoch == MAX_COUNT


def test_loading_errors_name_the_file_and_the_fix_from_every_front_end(tmp_path: Path) -> None:
    torch.save(nn.RNN(2, 3).state_dict(), tmp_path / "rnn.pt")
    for command in (["run", "lyapunov"], ["diagnose"]):
        line = _one_error_line([*command, str(tmp_path / "rnn.pt"), "--out", str(tmp_path / "x.nc")])
        assert str(tmp_path / "rnn.pt") in line and "--nonlinearity tanh" in line
    res = CliRunner().invoke(cli, ["batch", str(tmp_path / "rnn.pt"), "--probe", "lyapunov", "--out",
                                   str(tmp_path / "s.zarr"), "--workers", "1"])
    assert res.exit_code == 1 and "--nonlinearity tanh" in res.output
    ok = CliRunner().invoke(cli, ["run", "lyapunov", str(tmp_path / "rnn.pt"), "--nonlinearity", "tanh", "--steps", "50",
                                  "-o", str(tmp_path / "r.nc")])
    assert ok.exit_code == 0, ok.output
    assert json.loads(dynprobe.open_result(tmp_path / "r.nc").attrs["params"])["steps"] == 50


def test_a_missing_path_directory_and_a_bad_device_are_one_line(tmp_path: Path) -> None:
    torch.save(nn.GRU(2, 3).state_dict(), tmp_path / "g.pt")
    line = _one_error_line(["run", "lyapunov", str(tmp_path / "g.pt"), "--trust-pickle", "--code-path", str(tmp_path / "no")])
    assert "--code-path" in line and "no such directory" in line
    line = _one_error_line(["run", "lyapunov", str(tmp_path / "g.pt"), "--device", "cuda:7"])
    assert "--device cuda:7" in line
    with pytest.raises(DriveError, match="a text input needs the model's vocabulary"):
        (tmp_path / "t.txt").write_text("a b c")
        dynprobe.load_system(str(tmp_path / "g.pt"), drive=str(tmp_path / "t.txt"))


def test_every_probe_refuses_a_drive_shorter_than_its_run_naming_both_lengths() -> None:
    from dynprobe.registry import registry

    system = dynprobe.wrap(nn.GRU(1, 3), dtype=torch.float64, drive=dynprobe.sequence(torch.randn(7, 2, 1)))
    checked = []
    # fixedpoints only takes its starting states from the drive (as many steps as it has) and
    # searches the map with the input held: a short drive is enough for it
    takes_starts_only = {"fixedpoints"}
    for name, spec in registry().probes().items():
        if (spec.applies is not None and spec.applies(system)) or name in takes_starts_only:
            continue
        try:
            params = dict(spec.suggest(system)) if spec.suggest is not None else {}
        except dynprobe.errors.NotApplicable:
            continue
        try:
            dynprobe.run(name, system, **params)
        except DriveError as err:
            assert re.search(r"has 7 steps but the run needs \d+; .*cycle=True", str(err)), (name, str(err))
            checked.append(name)
        except ProbeParameterError:
            continue  # needs a task of another input size (trainability), not a longer drive
        else:
            pytest.fail(f"probe {name!r} ran on a 7-step drive")
    assert {"lyapunov", "jacobian", "bifurcation", "entropy", "scrambling"} <= set(checked)
