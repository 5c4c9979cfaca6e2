"""Progress of a diagnosis on the terminal: one line per probe, written to stderr.

On a terminal a line appears when its probe starts (a spinner, the elapsed time, the estimate
when there is one) and stays when it ends (done / failed / timed out, and its time), so a long
diagnosis is never a silent one. Asked for explicitly (``enabled=True``, what the CLI does unless
``--quiet``) while stderr is not a terminal — a log file, a batch job, a pipe — the same events
are plain lines (``dynprobe: lyapunov started (estimated 4 s)``, ``dynprobe: lyapunov done in
3.8 s``), one per event, flushed at once, so ``tail -f`` of a job's log shows where it is. With
``enabled=None`` (the Python API's default) nothing is printed off a terminal.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from .timings import format_duration

__all__ = ["ProbeProgress"]

_MARKS = {"ok": "[green]done[/]", "failed": "[red]failed[/]", "timed out": "[red]timed out[/]",
          "interrupted": "[yellow]interrupted[/]", "not saved": "[yellow]not saved[/]"}


class ProbeProgress:
    """Context manager showing one rich progress line per probe (or nothing when disabled).

    ``enabled=None`` shows lines only when stderr is a terminal.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        terminal = bool(sys.stderr.isatty())
        self.enabled = terminal if enabled is None else bool(enabled)
        self.plain = self.enabled and not terminal
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def _say(self, text: str) -> None:
        print(f"dynprobe: {text}", file=sys.stderr, flush=True)

    def __enter__(self) -> ProbeProgress:
        if self.enabled and not self.plain:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text=" "), TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(), TextColumn("{task.fields[note]}"),
                console=Console(stderr=True, highlight=False), transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, err, tb)
            self._progress = None

    def line(self, text: str) -> None:
        """A line of its own above the probe lines (e.g. the estimate)."""
        if self.plain:
            self._say(text)
        if self._progress is not None:
            from rich.markup import escape

            self._progress.console.print(escape(text))

    def start(self, name: str, estimate_s: float | None) -> None:
        note = f"estimated {format_duration(estimate_s)}" if estimate_s is not None else ""
        if self.plain:
            self._say(f"{name} started" + (f" ({note})" if note else ""))
        if self._progress is None:
            return
        self._tasks[name] = self._progress.add_task(name, total=1, note=note)

    def finish(self, name: str, status: str, detail: str = "") -> None:
        if self.plain:
            if status == "ok" and detail:  # detail: the time it took
                self._say(f"{name} done in {detail}")
            else:
                self._say(f"{name} {status}" + (f": {detail}" if detail else ""))
        if self._progress is None or name not in self._tasks:
            return
        from rich.markup import escape

        mark = _MARKS.get(status, escape(status))
        note = f"{mark} {escape(detail)}" if detail else mark
        self._progress.update(self._tasks[name], completed=1, note=note)
        self._progress.stop_task(self._tasks[name])
