"""What the command line shows a person: per-probe help built from signatures and numpydoc,
tables that print bracketed text as written, ``python -m dynprobe``."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

import click
import pytest
import torch
from click.testing import CliRunner

import dynprobe
from dynprobe.cli import _table, cli
from dynprobe.cli_options import probe_options
from dynprobe.docstrings import doc_description, doc_params, doc_summary, plain_text
from dynprobe.registry import registry
from dynprobe.specs import type_label

PROBES = sorted(registry().probes())

# what leaks when an annotation is printed as is: "UNION", "LITERAL" without its choices,
# "COLLECTIONS.ABC.CALLABLE[...]", "typing.Optional[int]", "<class 'int'>", "dynprobe.system.System"
RAW = re.compile(r"\b(UNION|LITERAL|OPTIONAL|TUPLE|SEQUENCE|CALLABLE|DICT|ANY|LIST)\b|COLLECTIONS|typing\.|"
                 r"collections\.abc|Union\[|Optional\[|Literal\[|<class|DYNPROBE\.|dynprobe\.system")
RST = re.compile(r"``|:(func|class|meth|mod|attr|data|obj|ref|math):`|(?<![\w`])`[^`\s][^`]*`(?![\w`])")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, prog_name="dynprobe", terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", PROBES)
def test_probe_help_is_readable(name: str) -> None:
    """Every installed probe's --help: no raw annotations, no RST markup, the whole summary,
    and every option with its own description from the docstring, choices spelled out."""
    probe = registry().probe(name)
    text = _help(["run", name, "--help"])
    assert not RAW.search(text), RAW.search(text).group(0)
    assert not RST.search(text), RST.search(text).group(0)
    summary = doc_summary(probe.run)
    assert summary and _squash(summary) in _squash(text)  # not cut at the docstring's first line
    ctx = click.Context(click.Command(name))
    for param, option in zip(probe.params, probe_options(probe), strict=True):
        flags, help_text = option.get_help_record(ctx)
        described = help_text.split("[default:")[0].strip()
        assert described, f"--{param.name}: no description in {name}'s docstring Parameters section"
        assert _squash(described) in _squash(text)
        assert not RAW.search(flags), flags
        for choice in _literal_values(param.annotation):
            assert choice in flags, f"--{param.name} {flags}: choice {choice!r} not shown"


def _literal_values(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return [v for a in typing.get_args(annotation) for v in _literal_values(a)]


def _convert(name: str, option: str, text: str) -> Any:
    probe = registry().probe(name)
    opt = next(o for o in probe_options(probe) if o.name == option)
    return opt.type.convert(text, opt, click.Context(click.Command(name)))


def test_option_types_convert_and_refuse_with_the_choices() -> None:
    assert _convert("lyapunov", "reorth_every", "auto") == "auto"  # int | Literal["auto"]
    assert _convert("lyapunov", "reorth_every", "5") == 5
    assert _convert("lyapunov", "k", "none") is None
    assert _convert("hessian", "which", "la") == "LA"  # a Literal: click.Choice, case folded
    assert _convert("meanfield", "cell", "none") is None  # Literal[...] | None
    assert _convert("jacobian", "horizons", "1,5,50") == (1, 5, 50)
    with pytest.raises(click.BadParameter, match="LM.*LA.*SA"):
        _convert("hessian", "which", "largest")
    with pytest.raises(click.BadParameter, match="expected int or auto, got .often."):
        _convert("lyapunov", "reorth_every", "often")
    text = _help(["run", "lyapunov", "--help"])
    assert re.search(r"--reorth-every INTEGER\|auto\s", text) and re.search(r"--k INTEGER\|none\s", text)
    assert re.search(r"\[default:\s+1000\]", text)


@pytest.mark.parametrize(("annotation", "label"), [
    (int, "int"),
    (int | None, "int | None"),
    (typing.Optional[float], "float | None"),  # noqa: UP045 - the old spelling must read the same
    (int | Literal["auto"], "int | 'auto'"),
    (Literal["a", "b"], "'a' | 'b'"),
    (Sequence[float] | str | None, "Sequence[float] | str | None"),
    (tuple[int, ...], "tuple[int, ...]"),
    (dict[str, Any], "dict[str, Any]"),
    (Callable[[dynprobe.System, float], dynprobe.System], "Callable[[System, float], System]"),
    (torch.Tensor, "Tensor"),
], ids=str)
def test_type_labels_read_as_written(annotation: Any, label: str) -> None:
    assert type_label(annotation) == label


def test_plain_text_strips_rst_and_joins_wrapped_lines() -> None:
    assert plain_text("Uses ``steps`` and :func:`dynprobe.run`,\n:class:`~dynprobe.system.System` and `k`.") == (
        "Uses steps and dynprobe.run, System and k.")
    assert plain_text(":ref:`the schema <results>` and **bold** and *exactly*, but s*theta and a * b") == (
        "the schema and bold and exactly, but s*theta and a * b")
    assert plain_text("one\ntwo\n\nthree") == "one two\n\nthree"


def test_docstring_sections_summary_and_shared_entries() -> None:
    def run(system, *, a: int = 1, b: int = 2, c: float = 0.5) -> None:
        """A summary that wraps
        over two lines.

        More text about ``a``.

        Parameters
        ----------
        system
            The system.
        a, b
            Two counts.
        c : float
            A long description that goes on and on, well past the length at which a shared text
            would be repeated, so that this one entry is written out once.

        Returns
        -------
        None
        """

    assert doc_summary(run) == "A summary that wraps over two lines."
    assert doc_description(run) == "A summary that wraps over two lines.\n\nMore text about a."
    params = doc_params(run)
    assert params["a"] == params["b"] == "a, b: Two counts." and params["c"].startswith("A long description")
    assert doc_summary(lambda: None) == "" and doc_params(lambda: None) == {}


def test_table_cells_print_brackets_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    _table("t [bold]x[/bold]", ["quantity", "value [units]"],
           [("E[log|det J|]", "[-1.5, 2.0] nats/step"), ("100 frequencies in [pi/16, pi/8]", "[link]")])
    out = capsys.readouterr().out
    for text in ("t [bold]x[/bold]", "value [units]", "E[log|det J|]", "[-1.5, 2.0] nats/step", "[pi/16, pi/8]", "[link]"):
        assert text in out, text


def test_list_datasets_keeps_the_bracketed_range() -> None:
    result = CliRunner().invoke(cli, ["list", "datasets"], terminal_width=300)
    assert result.exit_code == 0 and "[pi/16, pi/8]" in result.output


def test_python_dash_m_dynprobe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m dynprobe`` runs the same command line (its ``__main__``, in this process)."""
    monkeypatch.setattr(sys, "argv", ["dynprobe", "list", "probes"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("dynprobe", run_name="__main__")
    assert done.value.code == 0 and "lyapunov" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["dynprobe", "run", "lyapunof"])
    with pytest.raises(SystemExit) as bad:
        runpy.run_module("dynprobe", run_name="__main__")
    assert bad.value.code == 2 and "did you mean 'lyapunov'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_dynprobe_in_a_fresh_interpreter() -> None:
    done = subprocess.run([sys.executable, "-m", "dynprobe", "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Usage: " in done.stdout


@pytest.mark.parametrize("name", PROBES)
def test_run_command_flags_and_names_are_unique(name: str) -> None:
    """A probe parameter named like a loading option (``device``, ``dtype``, ``module``, ...)
    would shadow it, or be shadowed: each flag and destination appears once."""
    command = cli.commands["run"].get_command(click.Context(cli), name)
    flags = [f for p in command.params for f in (*p.opts, *p.secondary_opts) if f.startswith("-")]
    names = [p.name for p in command.params]
    assert len(flags) == len(set(flags)), sorted(f for f in flags if flags.count(f) > 1)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_a_probe_parameter_taken_by_a_loading_option_is_set_with_param(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's parameter ``device`` loses its flag to ``--device`` (the loading option) and
    is listed, for the help's note to set it with --param; its other options keep their flags."""
    from dynprobe.cli import _own_options
    from dynprobe.specs import Probe

    def run(system: Any, *, device: str = "x", steps: int = 3) -> Any:
        """A probe.

        Parameters
        ----------
        device
            where.
        steps
            how many.
        """

    probe = Probe(name="clash", run=run)
    own, taken = _own_options(probe, [click.Option(["--device"])])
    assert taken == ["device"] and [o.name for o in own] == ["steps"]
