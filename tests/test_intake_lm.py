"""A new user's word-level language model, saved the ways training scripts save it, diagnosed
along its own text: one loader for every front end, the recurrent core found inside the
model, token ids through the model's own Embedding, and the conditional λ against an
independent QR loop over the module's own ``nn.LSTM`` (issue 11's "done when")."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dynprobe
from dynprobe.cli import cli
from dynprobe.errors import CheckpointError, DriveError, UnsupportedModuleError

# The word-level LM of examples/word_lm, written the way public training scripts write it
# (Embedding, a 2-layer LSTM with dropout between layers, a Linear decoder; forward(input, hidden)
# returns log-probabilities and the hidden state; the script pickles the whole module).
LM_SOURCE = (Path(__file__).resolve().parents[1] / "examples" / "word_lm" / "model.py").read_text()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The LM's code in its own directory, and the model saved four ways next to token ids."""
    root = tmp_path_factory.mktemp("lm")
    code = root / "code"
    code.mkdir()
    (code / "lmcode.py").write_text(LM_SOURCE)
    sys.path.insert(0, str(code))
    try:
        lmcode = importlib.import_module("lmcode")
        torch.manual_seed(0)
        model = lmcode.WordLM(40, ninp=6, nhid=10, nlayers=2, dropout=0.3)
        with torch.no_grad():
            model.rnn.weight_hh_l0.mul_(6.0)  # a livelier core than the initialization
            model.rnn.weight_hh_l1.mul_(6.0)
        model.train()  # as a training script leaves it
        files = {"whole": root / "model.pt", "state_dict": root / "weights.pt", "framework": root / "ckpt.pt",
                 "lightning": root / "last.ckpt"}
        torch.save(model, files["whole"])
        torch.save(model.state_dict(), files["state_dict"])
        opt = torch.optim.SGD(model.parameters(), lr=20.0)
        torch.save({"epoch": 7, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(),
                    "loss": 4.2}, files["framework"])
        torch.save({"epoch": 3, "global_step": 900, "pytorch-lightning_version": "2.4.0",
                    "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                    "hyper_parameters": {"ntoken": 40, "nhid": 10}}, files["lightning"])
        ids = torch.randint(0, 40, (260, 2), generator=torch.Generator().manual_seed(1))
        torch.save(ids, root / "tokens.pt")
        files.update(code=code, tokens=root / "tokens.pt", root=root)
        files["model"] = model  # type: ignore[assignment]
        return files
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("lmcode", None)


def _load(saved: dict, how: str, **kw) -> dynprobe.System:
    return dynprobe.load_system(str(saved[how]), trust_pickle=how == "whole", path=[saved["code"]],
                                drive=str(saved["tokens"]), dtype="float64", **kw)


@pytest.mark.parametrize("how", ["whole", "state_dict", "framework", "lightning"])
def test_every_way_of_saving_gives_the_same_system_and_drive(saved: dict, how: str) -> None:
    model = saved["model"]
    system = _load(saved, how)
    assert system.state_dim == 2 * 2 * 10 and system.input_dim == 6
    for key, value in model.rnn.state_dict().items():
        torch.testing.assert_close(system.params[key], value.double(), rtol=0, atol=0)
    embedded = model.encoder(torch.load(saved["tokens"])).double()
    torch.testing.assert_close(system.drive.inputs, embedded, rtol=0, atol=0)
    h = system.initial_state(3, seed=4)
    top = h[:, 10:20]  # the top layer's h
    expected = torch.nn.functional.linear(top, model.decoder.weight.double(), model.decoder.bias.double())
    torch.testing.assert_close(system.output(h), expected)  # the decoder after the core is the readout


def _oracle(lstm: nn.LSTM, inputs: torch.Tensor, h0: torch.Tensor, q0: torch.Tensor, burn_in: int,
            steps: int) -> torch.Tensor:
    """The QR method written independently: the module's own nn.LSTM forward, one step at a
    time, its Jacobian by reverse-mode autograd, Q R with a positive diagonal."""
    layers, hidden = lstm.num_layers, lstm.hidden_size

    def step(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = flat[: layers * hidden].reshape(layers, 1, hidden)
        c = flat[layers * hidden:].reshape(layers, 1, hidden)
        _, (h1, c1) = lstm(x.reshape(1, 1, -1), (h, c))
        return torch.cat([h1.reshape(-1), c1.reshape(-1)])

    out = []
    for b in range(h0.shape[0]):
        state = h0[b]
        with torch.no_grad():
            for t in range(burn_in):
                state = step(state, inputs[t, b % inputs.shape[1]])
        q, total = q0[b], torch.zeros(q0.shape[-1], dtype=torch.float64)
        for t in range(burn_in, burn_in + steps):
            x = inputs[t, b % inputs.shape[1]]
            jac = torch.autograd.functional.jacobian(lambda s, x=x: step(s, x), state)
            with torch.no_grad():
                state = step(state, x)
            q, r = torch.linalg.qr(jac @ q)
            sign = torch.sign(torch.diagonal(r))
            q, total = q * sign, total + torch.log(torch.diagonal(r) * sign)
        out.append(torch.sort(total / steps, descending=True).values)
    return torch.stack(out)


def _probe_start(system: dynprobe.System, samples: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The initial states and tangent block the probe documents: init drawn with ``seed``,
    a Gaussian block drawn with ``seed + 1`` and orthonormalized (positive diagonal)."""
    h0 = system.initial_state(samples, seed=seed)
    q = torch.randn(samples, system.state_dim, k, generator=torch.Generator().manual_seed(seed + 1),
                    dtype=torch.float64)
    q, r = torch.linalg.qr(q)
    return h0, q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


RUN = {"burn_in": 20, "steps": 60, "k": 2, "samples": 2, "seed": 0}


@pytest.fixture(scope="module")
def oracle(saved: dict) -> torch.Tensor:
    """The exponents of the independent QR loop from the probe's documented start."""
    model = saved["model"]
    lstm = type(model.rnn)(6, 10, 2).double()
    lstm.load_state_dict(model.rnn.state_dict())
    inputs = model.encoder(torch.load(saved["tokens"])).double().detach()
    h0, q0 = _probe_start(_load(saved, "state_dict"), RUN["samples"], RUN["k"], seed=RUN["seed"])
    expected = _oracle(lstm.eval(), inputs, h0, q0, RUN["burn_in"], RUN["steps"])
    assert float(expected[:, 0].max()) > -0.3  # a measurement of something, not of a frozen state
    return expected


def test_conditional_exponents_equal_an_independent_qr_loop_over_the_modules_own_lstm(saved: dict, oracle) -> None:
    ds = dynprobe.run("lyapunov", _load(saved, "whole"), **RUN)
    torch.testing.assert_close(torch.as_tensor(ds.exponents.values), oracle, rtol=0, atol=1e-10)


@pytest.mark.parametrize("how", ["whole", pytest.param("state_dict", marks=pytest.mark.slow),
                                 pytest.param("framework", marks=pytest.mark.slow),
                                 pytest.param("lightning", marks=pytest.mark.slow)])
def test_the_cli_diagnoses_the_lm_along_its_text(saved: dict, oracle, how: str, tmp_path: Path) -> None:
    args = ["diagnose", str(saved[how]), "--input", str(saved["tokens"]), "--probe", "lyapunov",
            "--out", str(tmp_path / "d.nc"), "--report", str(tmp_path / "r.html")]
    args += [f"--param=lyapunov.{k}={v}" for k, v in RUN.items() if k != "seed"]
    if how == "whole":
        args += ["--trust-pickle", "--code-path", str(saved["code"])]
    res = CliRunner().invoke(cli, args, terminal_width=200)
    assert res.exit_code == 0, res.output
    ds = dynprobe.open_result(tmp_path / "d.nc")["lyapunov"].to_dataset()
    assert "tokens(260x2, encoder=Embedding(40, 6))" in ds.attrs["system"]
    assert json.loads(ds.attrs["params"]) | RUN == json.loads(ds.attrs["params"])  # the run the oracle made
    torch.testing.assert_close(torch.as_tensor(ds.exponents.values), oracle, rtol=0, atol=1e-10)


def test_a_text_file_and_its_vocabulary_drive_the_same_ids(saved: dict, tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(40)]
    (tmp_path / "vocab.txt").write_text("\n".join(["<unk>", "<eos>", *words[2:]]) + "\n")
    (tmp_path / "text.txt").write_text("w5 w7 nope w9\n\nw2 w3\n")
    loaded = dynprobe.load_system(str(saved["state_dict"]), drive=str(tmp_path / "text.txt"),
                                  vocab=tmp_path / "vocab.txt")
    ids = torch.tensor([5, 7, 0, 9, 1, 2, 3, 1])  # nope -> <unk>, <eos> after each non-empty line
    assert loaded.drive.ids.squeeze(1).tolist() == ids.tolist()
    torch.testing.assert_close(loaded.drive.inputs[:, 0], saved["model"].encoder(ids).double())
    (tmp_path / "v2.txt").write_text("\n".join(words) + "\n")
    with pytest.raises(DriveError, match=r"1 words are not in the vocabulary \('nope'\) and it has no <unk>"):
        dynprobe.load_system(str(saved["state_dict"]), drive=str(tmp_path / "text.txt"), vocab=tmp_path / "v2.txt")
    with pytest.raises(DriveError, match="needs the model's vocabulary: pass --vocab FILE"):
        dynprobe.load_system(str(saved["state_dict"]), drive=str(tmp_path / "text.txt"))


def test_the_python_spelling_binds_the_models_own_encoder(saved: dict) -> None:
    model = saved["model"]
    ids = torch.load(saved["tokens"])
    bound = dynprobe.wrap(model, dtype=torch.float64, drive=dynprobe.tokens(ids))
    explicit = dynprobe.wrap(model, dtype=torch.float64, drive=dynprobe.tokens(ids, encoder=model.encoder))
    torch.testing.assert_close(bound.drive.inputs, explicit.drive.inputs, rtol=0, atol=0)
    assert bound.name.startswith("WordLM.rnn: nn.LSTM(6, 10, num_layers=2")
    assert model.training  # wrapping did not change the user's module
    with pytest.raises(DriveError, match=r"token ids \[260, 2\] need an encoder .*tokens\(ids, encoder=model.encoder\)"):
        dynprobe.wrap(model.rnn, drive=dynprobe.tokens(ids))
    with pytest.raises(DriveError, match="token id 45 is outside the vocabulary of Embedding\\(40, 6\\)"):
        dynprobe.wrap(model, drive=dynprobe.tokens(torch.tensor([[3], [45]])))
    with pytest.raises(DriveError, match="token ids must be integers, got float32"):
        dynprobe.tokens(torch.zeros(5, 2))


def test_a_short_text_names_both_lengths_and_cycles_on_request(saved: dict) -> None:
    system = _load(saved, "state_dict")
    with pytest.raises(DriveError, match="has 260 steps but the run needs 400; .*cycle=True"):
        dynprobe.run("lyapunov", system, burn_in=100, steps=300, k=1)
    cycled = _load(saved, "state_dict", cycle=True)
    h = cycled.trajectory(cycled.initial_state(2), 270)
    torch.testing.assert_close(cycled.inputs(265, h[0]), cycled.inputs(5, h[0]))
    assert "cycled" in cycled.drive.describe()


def test_a_forward_that_feeds_its_core_something_else_is_refused(saved: dict) -> None:
    class Scaled(nn.Module):  # the core sees sqrt(d) * embedding: not what the Embedding alone gives
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 4)
            self.rnn = nn.GRU(4, 5)

        def forward(self, ids, hidden=None):
            return self.rnn(self.embed(ids) * 2.0, hidden)

    model = Scaled()
    ids = torch.randint(0, 20, (30, 1))
    with pytest.raises(UnsupportedModuleError, match="Scaled.forward feeds 'rnn' something other than the encoder"):
        dynprobe.wrap(model, drive=dynprobe.tokens(ids))
    system = dynprobe.wrap(model, drive=dynprobe.tokens(ids, encoder=lambda i: 2.0 * model.embed(i)))
    torch.testing.assert_close(system.drive.inputs.float(), 2.0 * model.embed(ids).detach())


def test_a_model_with_several_recurrent_modules_lists_them(saved: dict) -> None:
    class Seq2Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.LSTM(3, 4)
            self.dec = nn.GRU(4, 4)

    with pytest.raises(UnsupportedModuleError, match=r"holds 2 recurrent modules \('enc' \(LSTM\), 'dec' \(GRU\)\); "
                                                     "name the recurrent core with module=NAME"):
        dynprobe.wrap(Seq2Seq())
    assert dynprobe.wrap(Seq2Seq(), core="dec").state_dim == 4
    with pytest.raises(UnsupportedModuleError, match="has no submodule 'rnn'; its submodules: enc, dec"):
        dynprobe.wrap(Seq2Seq(), core="rnn")


def test_a_pickled_class_that_is_not_importable_is_named(saved: dict, tmp_path: Path, monkeypatch) -> None:
    sys.modules.pop("lmcode", None)  # imported by the tests before, through --code-path
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"the class lmcode.WordLM is not importable .*; run from its directory "
                                              "or pass --code-path DIR"):
        dynprobe.load_system(str(saved["whole"]), trust_pickle=True)
    monkeypatch.chdir(saved["code"])  # run from its directory
    assert dynprobe.load_system(str(saved["whole"]), trust_pickle=True).state_dim == 40
    sys.modules.pop("lmcode", None)


class ScriptLM(nn.Module):
    """A model class defined in the training script itself: pickled as __main__.ScriptLM."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(2, 3)


def test_a_class_pickled_from_the_training_script_says_so(tmp_path: Path, monkeypatch) -> None:
    main = sys.modules["__main__"]
    monkeypatch.setattr(ScriptLM, "__module__", "__main__")
    monkeypatch.setattr(main, "ScriptLM", ScriptLM, raising=False)
    torch.save(ScriptLM(), tmp_path / "script.pt")
    monkeypatch.delattr(main, "ScriptLM")
    with pytest.raises(CheckpointError, match=r"the class __main__.ScriptLM is not importable: it was defined in the "
                                              r"script that saved the file .*save model.state_dict\(\)"):
        dynprobe.load_system(str(tmp_path / "script.pt"), trust_pickle=True)


@pytest.mark.slow
def test_batch_takes_the_same_options_and_gets_the_same_exponents(saved: dict, oracle, tmp_path: Path) -> None:
    files = [str(saved[how]) for how in ("whole", "state_dict", "framework", "lightning")]
    args = ["batch", *files, "--probe", "lyapunov", "--out", str(tmp_path / "runs.zarr"), "--workers", "1",
            "--input", str(saved["tokens"]), "--trust-pickle", "--code-path", str(saved["code"])]
    args += [f"--param=lyapunov.{k}={v}" for k, v in RUN.items()]
    res = CliRunner().invoke(cli, args, terminal_width=200)
    assert res.exit_code == 0, res.output
    tree = dynprobe.open_batch(tmp_path / "runs.zarr")
    exps = tree["lyapunov"].ds.exponents
    assert exps.sizes["checkpoint"] == 4
    for i in range(4):
        torch.testing.assert_close(torch.as_tensor(exps.isel(checkpoint=i).values), oracle, rtol=0, atol=1e-10)


def _train_example(out: Path):
    path = Path(__file__).resolve().parents[1] / "examples" / "word_lm" / "train.py"
    spec = importlib.util.spec_from_file_location("word_lm_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.main(out, epochs=1)
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop("model", None)


def test_the_readme_language_model_example_saves_what_the_readme_loads(tmp_path: Path) -> None:
    model = _train_example(tmp_path)
    code = Path(__file__).resolve().parents[1] / "examples" / "word_lm"
    system = dynprobe.load_system(str(tmp_path / "model.pt"), trust_pickle=True, path=[code],
                                  drive=str(tmp_path / "valid.txt"), vocab=tmp_path / "vocab.txt", dtype="float64")
    sys.modules.pop("model", None)
    assert system.name.startswith("WordLM.rnn: nn.LSTM(32, 32, num_layers=2")
    ids = torch.load(tmp_path / "tokens.pt")
    assert system.drive.ids.tolist() == ids.tolist()  # the text read with the vocabulary = the saved ids
    torch.testing.assert_close(system.drive.inputs, model.encoder(ids).double().detach(), rtol=0, atol=0)


@pytest.mark.slow
def test_the_readme_language_model_command_runs(tmp_path: Path, monkeypatch) -> None:
    _train_example(tmp_path / "lm_out")
    monkeypatch.chdir(tmp_path)
    code = Path(__file__).resolve().parents[1] / "examples" / "word_lm"
    res = CliRunner().invoke(cli, ["diagnose", "lm_out/model.pt", "--trust-pickle", "--code-path", str(code), "--input",
                                   "lm_out/valid.txt", "--vocab", "lm_out/vocab.txt", "--report", "lm_report.html"],
                             terminal_width=200)
    sys.modules.pop("model", None)
    assert res.exit_code == 0, res.output
    length = torch.load(tmp_path / "lm_out" / "tokens.pt").shape[0]
    assert f"tokens({length}x1, encoder=Embedding(" in res.output and "regime" in res.output
    assert (tmp_path / "lm_report.html").stat().st_size > 50_000


CHAR_SOURCE = '''
import torch
import torch.nn.functional as F
from torch import nn


def one_hot(ids):
    return F.one_hot(ids, 5).to(torch.get_default_dtype())


def shifted(ids):
    return one_hot((ids + 1) % 5)


class CharRNN(nn.Module):
    """One-hot characters into an LSTMCell stepped in a loop: no encoder module to find."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(5, 4)
        self.out = nn.Linear(4, 5)

    def forward(self, ids, state=None):
        x = one_hot(ids)
        outputs = []
        for t in range(x.shape[0]):
            state = self.cell(x[t], state)
            outputs.append(self.out(state[0]))
        return torch.stack(outputs), state
'''


def test_an_encoder_function_is_checked_against_a_forward_that_steps_a_cell(tmp_path: Path) -> None:
    (tmp_path / "charcode.py").write_text(CHAR_SOURCE)
    sys.path.insert(0, str(tmp_path))
    try:
        charcode = importlib.import_module("charcode")
        model = charcode.CharRNN()
        ids = torch.randint(0, 5, (30, 2))
        with pytest.raises(DriveError, match="has no encoder in front of its recurrent core; pass --encoder"):
            dynprobe.load_system(model, drive=dynprobe.tokens(ids))
        system = dynprobe.load_system(model, drive=dynprobe.tokens(ids), encoder="charcode:one_hot", path=[tmp_path])
        assert system.name.startswith("CharRNN.cell: nn.LSTMCell(5, 4)")
        torch.testing.assert_close(system.drive.inputs, charcode.one_hot(ids).double(), rtol=0, atol=0)
        with pytest.raises(UnsupportedModuleError, match="CharRNN.forward feeds 'cell' something other"):
            dynprobe.load_system(model, drive=dynprobe.tokens(ids), encoder="charcode:shifted", path=[tmp_path])
        with pytest.raises(DriveError, match=r"the encoder Linear\(in_features=4, out_features=5, bias=True\) failed on "
                                             r"ids \[30, 2\]"):
            dynprobe.load_system(model, drive=dynprobe.tokens(ids), encoder="out")  # a submodule by name
        torch.save(model.state_dict(), tmp_path / "char.pt")  # the state_dict: an LSTMCell and its head
        loaded = dynprobe.load_system(str(tmp_path / "char.pt"), drive=dynprobe.tokens(ids), encoder="charcode:one_hot",
                                      path=[tmp_path])
        torch.testing.assert_close(loaded.step(system.initial_state(2), system.inputs(0, system.initial_state(2))),
                                   system.step(system.initial_state(2), system.inputs(0, system.initial_state(2))))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("charcode", None)


def test_module_names_which_recurrent_module_of_a_state_dict_to_rebuild(tmp_path: Path) -> None:
    class Seq2Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(9, 3)
            self.enc = nn.LSTM(3, 4)
            self.dec = nn.GRU(3, 5)

    model = Seq2Seq()
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "s2s.pt")
    with pytest.raises(CheckpointError, match=r"prefixes \['dec.', 'enc.'\]\); name one with --module .*--module dec"):
        dynprobe.load_system(str(tmp_path / "s2s.pt"))
    dec = dynprobe.load_system(str(tmp_path / "s2s.pt"), module="dec", drive=dynprobe.tokens(torch.tensor([[1], [8]])))
    assert dec.state_dim == 5 and dec.params["weight_hh_l0"].shape == (15, 5)
    torch.testing.assert_close(dec.drive.inputs[:, 0], model.embed(torch.tensor([1, 8])).detach().double())
    with pytest.raises(CheckpointError, match="state_dict has no recurrent module 'rnn'; it has 'dec', 'enc'"):
        dynprobe.load_system(str(tmp_path / "s2s.pt"), module="rnn")
    half = dynprobe.load_system(nn.GRU(2, 3).half())  # no dtype given: the half weights are read in float32
    assert half.dtype == torch.float32
