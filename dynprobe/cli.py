"""The ``dynprobe`` command line.

``dynprobe list [probes|models|datasets]``, ``dynprobe plugins``, and
``dynprobe run PROBE MODEL [options]`` where each probe's options are generated from its run
function's signature (``dynprobe run lyapunov --help``), plus ``--param key=value``, and
``dynprobe batch PATH_OR_GLOB... --probe NAME --out STORE`` (logic in :mod:`dynprobe.batching`).
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

import click

from .errors import DynprobeError
from .options import coerce, parse_assignments, probe_assignments
from .specs import Probe, ProbeParam

__all__ = ["main", "cli"]

_DTYPES = ("float64", "float32")  # torch dtype names (torch is imported only when a command runs)


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _table(title: str, columns: list[str], rows: list[tuple[str, ...]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


class AnnotatedType(click.ParamType):
    """A click type that converts with :func:`dynprobe.options.coerce`."""

    def __init__(self, param: ProbeParam) -> None:
        self.param = param
        self.name = param.type_name

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return coerce(value, self.param.annotation, name=f"--{self.param.name.replace('_', '-')}")
        except DynprobeError as err:
            self.fail(str(err), param, ctx)


def _fmt_default(value: Any) -> str:
    return "none" if value is None else str(value)


def _probe_options(probe: Probe) -> list[click.Option]:
    opts = []
    for p in probe.params:
        flag = f"--{p.name.replace('_', '-')}"
        if p.annotation is bool:
            opts.append(click.Option([f"{flag}/--no-{p.name.replace('_', '-')}", p.name], default=None,
                                     help=f"bool (default {p.default})"))
        else:
            opts.append(click.Option([flag, p.name], type=AnnotatedType(p), default=None,
                                     help=f"{p.type_name} (default {_fmt_default(p.default)})"))
    return opts


def _run_probe(probe: Probe, model: str, options: dict[str, Any]) -> None:
    from .api import run, set_threads
    from .results import save
    from .targets import load_system

    common = {k: options.pop(k) for k in ("param", "out", "dtype", "drive", "model_param", "preset", "threads",
                                          "factory", "trust_pickle")}
    set_threads(common["threads"])
    params = {k: v for k, v in options.items() if v is not None}
    known = {p.name: p for p in probe.params}
    for key, text in parse_assignments(common["param"]).items():
        if key not in known:
            from .errors import ProbeParameterError, did_you_mean

            raise ProbeParameterError(
                f"probe {probe.name!r}: unknown parameter {key!r}; parameters: {', '.join(known)}{did_you_mean(key, known)}"
            )
        params[key] = coerce(text, known[key].annotation, name=key)
    assignments = parse_assignments(common["model_param"], what="--model-param")
    model_kwargs = {k: coerce(v, typing.Any, name=k) for k, v in assignments.items()}
    system = load_system(model, dtype=_dtype(common["dtype"]), drive=common["drive"], model_kwargs=model_kwargs,
                         preset=common["preset"], factory=common["factory"], trust_pickle=common["trust_pickle"])
    ds = run(probe.name, system, **params)
    rows = [(label, value) for label, value in ds.dynprobe.summary()]
    _table(f"{probe.name} — {system.describe()}", ["quantity", "value"], rows)
    out = Path(common["out"] or f"{probe.name}-{Path(model).stem.replace(':', '_')}.nc")
    save(ds, out)
    _console().print(f"wrote {out} ({ds.attrs['elapsed_s']:.2f} s)")


class RunGroup(click.Group):
    """``dynprobe run PROBE ...``: one sub-command per installed probe, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .registry import registry

        return list(registry().probes())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .registry import registry

        try:
            probe = registry().probe(name)
        except DynprobeError as err:
            raise click.UsageError(str(err)) from None

        def callback(**kwargs: Any) -> None:
            model = kwargs.pop("model")
            try:
                _run_probe(probe, model, kwargs)
            except DynprobeError as err:
                raise click.ClickException(str(err)) from err

        params: list[click.Parameter] = [
            click.Argument(["model"]),
            click.Option(["--param", "-p", "param"], multiple=True, help="probe parameter KEY=VALUE (repeatable)"),
            click.Option(["--out", "-o", "out"], default=None, help="write the Dataset here (.nc or .zarr)"),
            click.Option(["--dtype", "dtype"], type=click.Choice(list(_DTYPES)), default="float64", show_default=True),
            click.Option(["--drive", "drive"], default=None,
                         help="autonomous, constant:VALUE[,VALUE...], feedback, or a .npy/.pt input sequence"),
            click.Option(["--model-param", "model_param"], multiple=True, help="model factory argument KEY=VALUE"),
            click.Option(["--preset", "preset"], default=None, help="a named preset of the model"),
            click.Option(["--factory", "factory"], default=None,
                         help="package.module:function building the module of a checkpoint"),
            click.Option(["--trust-pickle", "trust_pickle"], is_flag=True, default=False,
                         help="allow checkpoints holding pickled modules (runs their code: only for files you trust)"),
            click.Option(["--threads", "threads"], type=int, default=None, help="torch threads"),
            *_probe_options(probe),
        ]
        doc = (probe.run.__doc__ or "").strip().split("\n\n")[0]
        return click.Command(name, params=params, callback=callback,
                             help=f"{doc}\n\nMODEL: a bundled model name, a checkpoint path, or package.module:factory.",
                             short_help=probe.doc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dynprobe")
def cli() -> None:
    """dynprobe — measure a PyTorch recurrent network as a dynamical system."""


@cli.command("list")
@click.argument("what", type=click.Choice(["probes", "models", "datasets"]), default="probes")
def list_cmd(what: str) -> None:
    """List installed probes (with their parameters), models or data sets."""
    from .api import list_datasets, list_models, list_probes

    if what == "probes":
        rows = [(p.name, p.doc, ", ".join(f"{q.name}={_fmt_default(q.default)}" for q in p.params), p.plugin)
                for p in list_probes()]
        _table("probes", ["name", "what", "parameters", "plugin"], rows)
    elif what == "models":
        _table("models", ["name", "what", "reference", "plugin"],
               [(m.name, m.doc, m.reference, m.plugin) for m in list_models()])
    else:
        _table("datasets", ["name", "what", "reference", "plugin"],
               [(d.name, d.doc, d.reference, d.plugin) for d in list_datasets()])


@cli.command("plugins")
def plugins_cmd() -> None:
    """Show loaded plugins and the ones that failed to load."""
    from .registry import registry

    reg = registry()
    reg.probes(), reg.models(), reg.datasets()
    _table("plugins", ["name", "distribution"], [(n, v) for n, v in reg.plugins])
    if reg.failures:
        _table("failed", ["plugin", "error"], [(f.plugin, f.error) for f in reg.failures])


cli.add_command(RunGroup("run", help="Run one probe on a model and write its Dataset."))


@cli.command("batch")
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_GLOB...")
@click.option("--probe", "-P", "probes", multiple=True, required=True, help="probe to run (repeatable)")
@click.option("--out", "-o", required=True, help="the Zarr store to write or resume (e.g. runs.zarr)")
@click.option("--param", "-p", "params", multiple=True, help="probe parameter PROBE.KEY=VALUE (repeatable)")
@click.option("--workers", type=int, default=None, help="local worker processes [default: one per core]")
@click.option("--scheduler", default=None, help="address of a running Dask scheduler, tcp://host:port")
@click.option("--factory", default=None, help="package.module:function building the module of the checkpoints")
@click.option("--trust-pickle", is_flag=True, help="allow checkpoints holding pickled modules (runs their code)")
@click.option("--nonlinearity", type=click.Choice(["tanh", "relu"]), default=None, help="of plain nn.RNN checkpoints")
@click.option("--allow-nonfinite", is_flag=True, help="analyse checkpoints with NaN/inf weights instead of refusing")
@click.option("--dtype", type=click.Choice(list(_DTYPES)), default="float64", show_default=True)
@click.option("--drive", default=None, help="autonomous, constant:VALUE[,VALUE...], or a .npy/.pt input sequence")
def batch_cmd(paths: tuple[str, ...], probes: tuple[str, ...], out: str, params: tuple[str, ...],
              **options: Any) -> None:
    """Run probes over many checkpoints on Dask into a resumable Zarr store.

    Re-running the same command skips results already complete for unchanged files. Exit
    status 1 when a checkpoint failed (its error is recorded in the store's index).
    """
    from .batching import run_command

    try:
        code = run_command(paths, probes, out, params, **options)
    except DynprobeError as err:
        raise click.ClickException(str(err)) from err
    sys.exit(code)


@cli.command("diagnose")
@click.argument("model")
@click.option("--input", "input_", default="zero", show_default=True,
              help="zero, constant[:VALUE[,VALUE...]], feedback, or a .npy/.pt input sequence [time, batch, M]")
@click.option("--report", default=None, help="HTML report path (default report-MODEL.html)")
@click.option("--out", "-o", default=None, help="results DataTree (.nc or .zarr; default diagnosis-MODEL.nc)")
@click.option("--probe", "probes", multiple=True, help="run only these probes (repeatable)")
@click.option("--skip", multiple=True, help="do not run these probes (repeatable)")
@click.option("--param", "-p", "param", multiple=True, help="PROBE.KEY=VALUE override (repeatable)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(list(_DTYPES)), default="float64", show_default=True)
@click.option("--model-param", "model_param", multiple=True, help="model factory argument KEY=VALUE")
@click.option("--preset", default=None, help="a named preset of the model")
@click.option("--factory", default=None, help="package.module:function building the module of a checkpoint")
@click.option("--trust-pickle", is_flag=True, default=False, help="allow checkpoints holding pickled modules")
@click.option("--threads", type=int, default=None, help="torch threads")
def diagnose_cmd(model: str, input_: str, report: str | None, out: str | None, probes: tuple[str, ...],
                 skip: tuple[str, ...], param: tuple[str, ...], seed: int, dtype: str, model_param: tuple[str, ...],
                 preset: str | None, factory: str | None, trust_pickle: bool, threads: int | None) -> None:
    """Run every probe that applies to MODEL; print the verdicts; write the report and results.

    MODEL: a bundled model name, a checkpoint path, or package.module:factory.
    """
    from .api import set_threads
    from .diagnose import diagnose
    from .registry import registry
    from .report import write_report
    from .results import save
    from .targets import load_system

    try:
        set_threads(threads)
        model_kwargs = {k: coerce(v, typing.Any, name=k) for k, v in parse_assignments(model_param, what="--model-param").items()}
        drive = None if input_ in ("zero", "autonomous") else input_
        system = load_system(model, dtype=_dtype(dtype), drive=drive, model_kwargs=model_kwargs, preset=preset,
                             factory=factory, trust_pickle=trust_pickle)
        names = list(probes) or [n for n in registry().probes() if n not in skip]
        result = diagnose(system, probes=names, params=probe_assignments(param), seed=seed)
    except DynprobeError as err:
        raise click.ClickException(str(err)) from err
    _table(f"diagnosis — {system.describe()}", ["topic", "verdict", "evidence", "probe · reference"], result.rows())
    if result.skipped or result.failed:
        _table("not run", ["probe", "why"], [(n, r) for n, r in {**result.skipped, **result.failed}.items()])
    stem = Path(model).stem.replace(":", "_")
    out_path = save(result.tree, out or f"diagnosis-{stem}.nc")
    report_path = write_report(result, report or f"report-{stem}.html")
    _console().print(f"wrote {report_path} and {out_path} ({result.elapsed_s:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dynprobe`` script."""
    try:
        cli.main(args=argv, prog_name="dynprobe", standalone_mode=True)
    except DynprobeError as err:  # pragma: no cover - errors outside click's handling
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
