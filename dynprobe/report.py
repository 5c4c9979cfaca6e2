"""One self-contained HTML report of a :class:`~dynprobe.diagnose.Diagnosis`.

Figures come from each probe's own ``plot(ds)`` and are embedded as base64 PNG, with inline
CSS: the file opens anywhere, with no network access. Sections: verdicts, one per probe
(figures, summary rows, a table of the parameters it ran with), skipped and failed probes
(linked from the navigation), provenance. A viewport tag and tables that scroll sideways keep
it readable at phone width.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import platform
from pathlib import Path
from typing import Any

import torch

from .diagnose import Diagnosis
from .registry import registry
from .results import to_json

__all__ = ["write_report", "render_report", "figure_png"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;width:100%}td,th{border:1px solid #ddd;padding:.35em .6em;
text-align:left;vertical-align:top;font-size:.92em}th{background:#f5f5f5}
.topic{font-weight:600;white-space:nowrap}.verdict{font-weight:600}.muted{color:#666;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f5f5f5;padding:0 .2em}
nav a{margin-right:1em;display:inline-block}.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
td{overflow-wrap:break-word}.params td:first-child{white-space:nowrap;font-family:ui-monospace,monospace}
@media (max-width:600px){body{margin:.5em auto;padding:0 .5em}td,th{padding:.25em .35em;font-size:.85em}
h1{font-size:1.3em}table.verdicts{min-width:34em}}
"""


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards).

    Drawn once at the figure's own size: the probes' figures use constrained layout, which
    already fits every label and outside legend inside the canvas (``bbox_inches="tight"`` only
    added a margin, at the price of a second draw), and with fast PNG compression (6 % larger
    files): together a fifth of a report's rendering time."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buf.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[tuple[str, ...]], classes: tuple[str, ...] = (), *, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{classes[i] if i < len(classes) else ""}">{html.escape(str(c))}</td>' for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    cls = f' class="{css}"' if css else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _probe_section(name: str, ds: Any, params: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    spec = registry().probe(name)
    parts = [f'<h2 id="probe-{name}">{html.escape(name)}</h2>',
             f'<p class="muted">{html.escape(spec.doc)} — {html.escape(spec.reference)}</p>']
    if spec.plot is not None:
        try:
            figures = spec.plot(ds)
            for i, fig in enumerate(figures if isinstance(figures, (list, tuple)) else [figures]):
                parts.append(_img(figure_png(fig), f"{name} figure {i + 1}"))
        except Exception as err:  # noqa: BLE001 - a broken plot must not lose the report
            parts.append(f'<p class="muted">figure failed: {html.escape(f"{type(err).__name__}: {err}")}</p>')
    rows = ds.dynprobe.summary()
    if rows:
        parts.append(_table(["quantity", "value"], rows))
    parts.append(_params_table(spec, ds, params))
    parts.append(f'<p class="muted">{ds.attrs.get("elapsed_s", 0):.2f} s</p>')
    return "\n".join(parts)


def _fmt_value(value: Any) -> str:
    """A parameter value as a person writes it: ``1000``, ``0.01``, ``1, 10, 100``, ``none``."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_value(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items()) or "(empty)"
    return str(value)


def _params_table(spec: Any, ds: Any, chosen: dict[str, Any]) -> str:
    """Every parameter the probe ran with (the result's ``params`` attr, defaults included),
    and where each came from: the probe's default, or diagnose's size-scaled choice / yours."""
    try:
        used = json.loads(ds.attrs.get("params", "{}"))
    except (TypeError, ValueError):
        used = {}
    used = {**used, **{k: v for k, v in chosen.items() if k not in used}}
    if not used:
        return ""
    defaults = spec.defaults()
    rows = []
    for name in [p.name for p in spec.params if p.name in used] + sorted(set(used) - {p.name for p in spec.params}):
        value, default = used[name], defaults.get(name)
        same = name in defaults and to_json(value) == to_json(default)
        source = "default" if same else (f"chosen (default {_fmt_value(default)})" if name in defaults else "")
        rows.append((name, _fmt_value(value), source))
    return _table(["parameter", "value", "source"], rows, classes=("", "", "muted"), css="params")


def _time_section(diagnosis: Diagnosis) -> str:
    """Each probe's share of the probes' total time (failed and timed-out ones included)."""
    rows = [(name, f"{seconds:.1f} s", f"{100 * share:.0f} %") for name, seconds, share in diagnosis.time_shares()]
    return '<h2 id="time">Time per probe</h2>' + _table(["probe", "wall time", "share"], rows)


def _interrupted_note(diagnosis: Diagnosis) -> str:
    if not diagnosis.interrupted:
        return ""
    pending = ", ".join(diagnosis.pending) or "none"
    return (f'<p class="verdict">Interrupted (Ctrl-C) after {len(diagnosis.ran)} probe(s): this report shows what '
            f"finished. Not run: {html.escape(pending)}.</p>")


def render_report(diagnosis: Diagnosis, *, title: str | None = None) -> str:
    """The report as an HTML string."""
    import dynprobe

    system = diagnosis.system
    title = title or f"dynprobe diagnosis — {system.name}"
    probes = list(diagnosis.tree.children)
    links = [("verdicts", "verdicts")] + [(f"probe-{p}", p) for p in probes]
    if diagnosis.skipped or diagnosis.failed:
        links.append(("skipped", f"skipped and failed ({len(diagnosis.skipped) + len(diagnosis.failed)})"))
    nav = " ".join(f'<a href="#{a}">{html.escape(b)}</a>' for a, b in links + [("provenance", "provenance")])
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>", f'<p class="muted">{html.escape(system.describe())}</p>', f"<nav>{nav}</nav>",
        _interrupted_note(diagnosis),
        '<h2 id="verdicts">Verdicts</h2>',
        _table(["topic", "verdict", "evidence", "probe · reference"], diagnosis.rows(),
               classes=("topic", "verdict", "", "muted"), css="verdicts"),
    ]
    for name in probes:
        out.append(_probe_section(name, diagnosis.tree[name].to_dataset(), diagnosis.params.get(name, {})))
    if diagnosis.skipped or diagnosis.failed or diagnosis.unsaved or diagnosis.pending:
        out.append('<h2 id="skipped">Skipped and failed</h2>')
        rows = ([(n, "skipped", r) for n, r in diagnosis.skipped.items()]
                + [(n, "failed", e) for n, e in diagnosis.failed.items()]
                + [(n, "not saved", f"ran, but {diagnosis.out} cannot hold it: {e}") for n, e in diagnosis.unsaved.items()]
                + [(n, "not run", "interrupted before it started") for n in diagnosis.pending])
        out.append(_table(["probe", "status", "reason"], rows))
    if diagnosis.elapsed:
        out.append(_time_section(diagnosis))
    plugins = ", ".join(f"{n} ({v})" for n, v in registry().plugins)
    prov = [
        ("dynprobe", dynprobe.__version__), ("torch", str(torch.__version__)), ("python", platform.python_version()),
        ("platform", platform.platform()), ("system", system.describe()), ("model fingerprint", system.fingerprint()),
        ("dtype / device", f"{str(system.dtype).removeprefix('torch.')} / {system.device}"), ("plugins", plugins),
        ("wall time", f"{diagnosis.elapsed_s:.1f} s"),
        ("created (UTC)", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")),
    ]
    out += ['<h2 id="provenance">Provenance</h2>', _table(["item", "value"], prov), "</body></html>"]
    return "\n".join(out)


def write_report(diagnosis: Diagnosis, path: str | Path, *, title: str | None = None) -> Path:
    """Write the self-contained HTML report to ``path``."""
    path = Path(path)
    path.write_text(render_report(diagnosis, title=title), encoding="utf-8")
    return path
