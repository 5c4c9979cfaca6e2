"""The command line: listing, running with generated options, one-line errors, the README job."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import dynprobe
from dynprobe.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_list_probes_shows_parameters(runner):
    out = runner.invoke(cli, ["list", "probes"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "lyapunov" in out.output and "reorth_every=auto" in out.output


def test_list_models_and_plugins(runner):
    assert "lstm2d_chaotic" in runner.invoke(cli, ["list", "models"], terminal_width=200).output
    out = runner.invoke(cli, ["plugins"], terminal_width=200)
    assert out.exit_code == 0 and "lyapunov" in out.output and "failed" not in out.output


def test_run_writes_the_dataset_and_prints_the_verdict(runner, tmp_path):
    out_file = tmp_path / "l.nc"
    res = runner.invoke(cli, ["run", "lyapunov", "lstm2d_chaotic", "--steps", "1500", "--samples", "2",
                              "-p", "seed=3", "--out", str(out_file)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "verdict" in res.output and "chaotic" in res.output
    ds = dynprobe.open_result(out_file).to_dataset()
    assert ds.attrs["seed"] == 3 and ds.sizes["sample"] == 2 and ds.attrs["steps"] == 1500


def test_generated_options_follow_the_signature(runner):
    out = runner.invoke(cli, ["run", "lyapunov", "--help"], terminal_width=200)
    for flag in ("--steps", "--burn-in", "--k", "--reorth-every", "--samples", "--seed"):
        assert flag in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "lyapunof", "x"], "unknown probe 'lyapunof'; installed: .*did you mean 'lyapunov'"),
        (["run", "lyapunov", "lstm2d_chaotic", "--k", "9"], "k=9 is outside 1..N=4"),
        (["run", "lyapunov", "lstm2d_chaotic", "--steps", "many"], "expected an integer, got 'many'"),
        (["run", "lyapunov", "lstm2d_chaotic", "-p", "stpes=3"], "unknown parameter 'stpes'.*did you mean 'steps'"),
        (["run", "lyapunov", "lstm_chaotic"], "unknown model 'lstm_chaotic'.*did you mean 'lstm2d_chaotic'"),
        (["run", "lyapunov", "lstm2d_chaotic", "--drive", "constant:1,2"], "does not fit M=1"),
    ],
    ids=["probe", "k", "int", "param", "model", "drive"],
)
def test_errors_are_one_line(runner, args, message):
    res = runner.invoke(cli, args, terminal_width=300)
    assert res.exit_code != 0
    error_lines = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and re.search(message, error_lines[0]), res.output


def test_reorth_every_accepts_auto_and_ints(runner, tmp_path):
    res = runner.invoke(cli, ["run", "lyapunov", "lstm2d_chaotic", "--steps", "200", "--reorth-every", "auto",
                              "-o", str(tmp_path / "a.nc")])
    assert res.exit_code == 0, res.output
    assert dynprobe.open_result(tmp_path / "a.nc").attrs["reorth_every"] == "auto"


def test_factory_target(runner, tmp_path):
    res = runner.invoke(cli, ["run", "lyapunov", "torch.nn:GRUCell", "--model-param", "input_size=2",
                              "--model-param", "hidden_size=3", "--steps", "100", "-o", str(tmp_path / "g.nc")])
    assert res.exit_code == 0, res.output
    assert dynprobe.open_result(tmp_path / "g.nc").sizes["exponent"] == 3


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README has no quick start block"
    return [line for line in block.group(1).strip().splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands_and_the_main_job_runs(runner, tmp_path, monkeypatch):
    install, tests = _readme_commands()
    assert "pip install torch==2.13.0" in install and tests.strip() == "python -m pytest"
    job = install.split("&&")[-1].strip()
    argv = shlex.split(job)
    assert argv[0] == "dynprobe"
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(cli, argv[1:], terminal_width=200)
    assert res.exit_code == 0, res.output
    written = [a for a in argv if a.endswith((".nc", ".zarr", ".html"))]
    assert written and all((tmp_path / w).exists() for w in written)


def _option_help(text: str) -> dict[str, str]:
    """``{flag: its help text}`` from a click ``--help`` page (continuation lines joined)."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        found = re.match(r"^  (-\w, )?(--[\w-]+)(?:[ /][^ ].*?)?(?:\s{2,}(.*))?$", line)
        if found:
            current = found.group(2)
            out[current] = (found.group(3) or "").strip()
        elif current and line.startswith("    ") and line.strip():
            out[current] = f"{out[current]} {line.strip()}".strip()
        else:
            current = None
    return out


def test_run_diagnose_and_batch_share_every_loading_option(runner):
    from dynprobe.cliload import LOAD_OPTIONS

    pages = {name: runner.invoke(cli, [*args, "--help"], terminal_width=100).output
             for name, args in {"run": ["run", "lyapunov"], "diagnose": ["diagnose"], "batch": ["batch"]}.items()}
    helps = {name: _option_help(text) for name, text in pages.items()}
    assert {"--input", "--nonlinearity", "--factory", "--module", "--trust-pickle", "--code-path", "--dtype",
            "--device", "--vocab", "--encoder"} <= set(LOAD_OPTIONS)
    for flag in LOAD_OPTIONS:
        texts = {name: h.get(flag) for name, h in helps.items()}
        assert None not in texts.values(), f"{flag} missing from: {[n for n, t in texts.items() if t is None]}"
        assert len(set(texts.values())) == 1, f"{flag} is explained differently: {texts}"
    for page in pages.values():
        assert "--drive" not in page  # the old spelling is accepted but not advertised


def test_the_old_drive_spelling_still_works_and_says_so(runner, tmp_path):
    res = runner.invoke(cli, ["run", "lyapunov", "lstm2d_chaotic", "--drive", "constant:0.2", "--steps", "100",
                              "-o", str(tmp_path / "d.nc")])
    assert res.exit_code == 0, res.output
    assert "--drive is deprecated; use --input" in res.output
    assert "constant(0.2)" in dynprobe.open_result(tmp_path / "d.nc").attrs["system"]
