"""Progress of a diagnosis on the terminal: one line per probe, written to stderr.

A line appears when its probe starts (a spinner, the elapsed time, the estimate when there is
one) and stays when it ends (done / failed / timed out, and its time), so a long diagnosis is
never a silent one. Nothing is printed when stderr is not a terminal (logs, pipes, CI,
notebooks) or when the user asks for quiet.
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
        self.enabled = bool(sys.stderr.isatty()) if enabled is None else bool(enabled)
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> ProbeProgress:
        if self.enabled:
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
        if self._progress is not None:
            from rich.markup import escape

            self._progress.console.print(escape(text))

    def start(self, name: str, estimate_s: float | None) -> None:
        if self._progress is None:
            return
        note = f"estimated {format_duration(estimate_s)}" if estimate_s is not None else ""
        self._tasks[name] = self._progress.add_task(name, total=1, note=note)

    def finish(self, name: str, status: str, detail: str = "") -> None:
        if self._progress is None or name not in self._tasks:
            return
        from rich.markup import escape

        mark = _MARKS.get(status, escape(status))
        note = f"{mark} {escape(detail)}" if detail else mark
        self._progress.update(self._tasks[name], completed=1, note=note)
        self._progress.stop_task(self._tasks[name])
