"""``python -m dynprobe``: the same command line as the ``dynprobe`` script (useful where the
script is not on PATH, or to pick the interpreter explicitly)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    main()
