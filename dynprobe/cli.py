"""The ``dynprobe`` command line.

``dynprobe list [probes|models|datasets]``, ``dynprobe plugins``, and
``dynprobe run PROBE MODEL [options]`` where each probe's options are generated from its run
function's signature (``dynprobe run lyapunov --help``), plus ``--param key=value``, and
``dynprobe batch PATH_OR_GLOB... --probe NAME --out STORE`` (logic in :mod:`dynprobe.batching`).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .cli_options import fmt_default as _fmt_default
from .cli_options import probe_options as _probe_options
from .cliload import load_options, take_load_options, with_load_options
from .errors import DynprobeError
from .options import coerce, parse_assignments, probe_assignments
from .specs import Probe

__all__ = ["main", "cli"]

def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _table(title: str, columns: list[str], rows: list[tuple[str, ...]]) -> None:
    """Print a table; every cell is literal text (rich would read "E[log|det J|]" as markup
    and print "E")."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left", show_lines=False)
    for col in columns:
        table.add_column(escape(col), overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    _console().print(table)


def _run_probe(probe: Probe, model: str, options: dict[str, Any]) -> None:
    from .api import run
    from .intake import resolve
    from .results import save
    from .threads import set_threads

    load = replace(take_load_options(options), preset=options.pop("preset"))
    common = {k: options.pop(k) for k in ("param", "out", "threads")}
    set_threads(common["threads"])
    params = {k: v for k, v in options.items() if v is not None}
    for key, text in parse_assignments(common["param"]).items():
        params[key] = coerce(text, probe.parameter(key).annotation, name=key)
    system = resolve(model, load).system
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

        shared: list[click.Parameter] = [
            click.Argument(["model"]),
            click.Option(["--param", "-p", "param"], multiple=True, help="probe parameter KEY=VALUE (repeatable)"),
            click.Option(["--out", "-o", "out"], default=None, help="write the Dataset here (.nc or .zarr)"),
            *load_options(),
            click.Option(["--preset", "preset"], default=None, help="a named preset of the model"),
            click.Option(["--threads", "threads"], type=int, default=None, help="torch threads"),
        ]
        own, taken = _own_options(probe, shared)
        note = ("" if not taken else f"\n\nSet {', '.join(taken)} with --param NAME=VALUE (the flag of the same "
                                     "name is a loading option).")
        return click.Command(name, params=[*shared, *own], callback=callback,
                             help=f"{probe.description}\n\nMODEL: a bundled model name, a checkpoint path, or "
                                  f"package.module:factory.{note}", short_help=probe.doc)


def _own_options(probe: Probe, shared: list[click.Parameter]) -> tuple[list[click.Option], list[str]]:
    """The probe's generated options, less those whose flag or name a shared option already has
    (a parameter ``path`` and ``--code-path`` are fine; a parameter ``device`` and ``--device``
    are not): such parameters stay reachable through ``--param``, and are listed."""
    flags = {f for p in shared for f in (*p.opts, *p.secondary_opts)}
    names = {p.name for p in shared}
    own, taken = [], []
    for option in _probe_options(probe):
        if option.name in names or flags & {*option.opts, *option.secondary_opts}:
            taken.append(str(option.name))
        else:
            own.append(option)
    return own, taken


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
        from .registry import registry

        reg = registry()
        rows = []
        for p in list_probes():
            mark = "REFUSED (name registered twice): " if reg.refused("probe", p.name) else ""
            rows.append((p.name, mark + p.doc, ", ".join(f"{q.name}={_fmt_default(q.default)}" for q in p.params),
                         p.plugin))
        for s in reg.shadowed:
            if s.kind == "probe" and s.kept:
                rows.append((s.name, f"IGNORED: duplicate of the bundled probe of plugin {s.kept!r}", "", s.plugin))
            elif s.kind == "probe" and s.plugin != reg.probes()[s.name].plugin:
                rows.append((s.name, "REFUSED (name registered twice)", "", s.plugin))
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
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="local worker processes [default: one per core]; 0: run in this process, without Dask")
@click.option("--scheduler", default=None, help="address of a running Dask scheduler, tcp://host:port")
@with_load_options
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="seconds one probe may run on one checkpoint before it is recorded as timed out; 0: no limit "
                   "[default: 1800]")
@click.option("--recompute/--no-recompute", default=None,
              help="recompute every result, even complete ones / keep complete results made by other dynprobe or "
                   "plugin versions [default: recompute what changed or is damaged]")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
def batch_cmd(paths: tuple[str, ...], probes: tuple[str, ...], out: str, params: tuple[str, ...],
              timeout: float | None, quiet: bool, **options: Any) -> None:
    """Run probes over many checkpoints on Dask into a resumable Zarr store.

    Re-running the same command skips results already complete, intact and made the same way
    (same file, parameters and versions). Exit status 1 when a checkpoint failed (its error is
    recorded in the store's index), 130 when interrupted.
    """
    from .batching import run_command
    from .deadline import DEFAULT_TIMEOUT_S

    limit = DEFAULT_TIMEOUT_S if timeout is None else (timeout or None)
    try:
        code = run_command(paths, probes, out, params, timeout=limit, progress=False if quiet else None,
                           **take_load_options(options).batch_kwargs(), **options)
    except KeyboardInterrupt:
        click.echo("dynprobe batch: interrupted; the complete results are in the store, rerun to resume", err=True)
        sys.exit(130)
    except DynprobeError as err:
        raise click.ClickException(str(err)) from err
    sys.exit(code)


@cli.command("diagnose")
@click.argument("model")
@click.option("--report", default=None, help="HTML report path (default report-MODEL.html)")
@click.option("--out", "-o", default=None, help="results DataTree (.nc or .zarr; default diagnosis-MODEL.nc)")
@click.option("--probe", "probes", multiple=True, help="run only these probes (repeatable)")
@click.option("--skip", multiple=True, help="do not run these probes (repeatable)")
@click.option("--param", "-p", "param", multiple=True, help="PROBE.KEY=VALUE override (repeatable)")
@click.option("--seed", type=int, default=0, show_default=True)
@with_load_options
@click.option("--preset", default=None, help="a named preset of the model")
@click.option("--threads", type=int, default=None, help="torch threads")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="seconds one probe may run before it is stopped and reported as timed out; 0: no limit "
                   "[default: 1800]")
@click.option("--quick", is_flag=True, help="smaller steps and samples everywhere (a first look in a fraction of the time)")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines on stderr")
def diagnose_cmd(model: str, report: str | None, out: str | None, probes: tuple[str, ...],
                 skip: tuple[str, ...], param: tuple[str, ...], seed: int, preset: str | None, threads: int | None,
                 timeout: float | None, quick: bool, quiet: bool, **load: Any) -> None:
    """Run every probe that applies to MODEL; print the verdicts; write the report and results.

    MODEL: a bundled model name, a checkpoint path, or package.module:factory. The results
    file grows by each probe as it finishes, so an interrupted run (Ctrl-C) keeps what finished,
    and its report is written too. Exit status 1 when no probe produced a result, 130 when
    interrupted.
    """
    from .deadline import DEFAULT_TIMEOUT_S
    from .diagnose import DiagnosisInterrupted, diagnose
    from .intake import resolve
    from .registry import registry
    from .report import write_report
    from .results import check_output_path
    from .threads import set_threads

    stem = Path(model).stem.replace(":", "_")
    limit = DEFAULT_TIMEOUT_S if timeout is None else (timeout or None)
    with warnings.catch_warnings(record=True) as caught:  # printed as plain lines below, not Python warnings
        try:
            out_path = check_output_path(out or f"diagnosis-{stem}.nc", what="--out")
            report_path = check_output_path(report or f"report-{stem}.html", what="--report", formats=False)
            set_threads(threads)
            options = replace(take_load_options(load), preset=preset)
            if options.drive in ("zero", "autonomous"):  # the model's own default drive, if it has one
                options = replace(options, drive=None)
            system = resolve(model, options).system
            names = list(probes) or [n for n in registry().probes() if n not in skip]
            result = diagnose(system, probes=names, params=probe_assignments(param), seed=seed, timeout=limit,
                              quick=quick, out=out_path, progress=not quiet)
            code = 0 if result.ran else 1
        except DiagnosisInterrupted as stop:
            result, code = stop.diagnosis, 130
        except KeyboardInterrupt:
            click.echo("dynprobe diagnose: interrupted before any probe ran; nothing written", err=True)
            sys.exit(130)
        except DynprobeError as err:
            raise click.ClickException(str(err)) from err
    for w in caught:
        text = str(w.message).splitlines()[0]
        if issubclass(w.category, (RuntimeWarning, UserWarning)) and not text.startswith("dynprobe.diagnose: probe "):
            click.echo(f"warning: {text}", err=True)  # a probe's own failure is in the 'not run' table
    _table(f"diagnosis — {result.system.describe()}", ["topic", "verdict", "evidence", "probe · reference"],
           result.rows())
    not_run = {**result.skipped, **result.failed, **{n: f"not saved: {e}" for n, e in result.unsaved.items()},
               **{n: "not run: interrupted" for n in result.pending}}
    if not_run:
        _table("not run", ["probe", "why"], list(not_run.items()))
    write_report(result, report_path)
    what = "interrupted; wrote what finished:" if result.interrupted else "wrote"
    _console().print(f"{what} {report_path} and {out_path} ({len(result.ran)} probe(s) ran, {result.elapsed_s:.1f} s)")
    if code == 1:
        click.echo("dynprobe diagnose: no probe produced a result (see 'not run' above)", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dynprobe`` script."""
    try:
        cli.main(args=argv, prog_name="dynprobe", standalone_mode=True)
    except DynprobeError as err:  # pragma: no cover - errors outside click's handling
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
