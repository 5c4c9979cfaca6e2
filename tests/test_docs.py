"""The documentation cites nothing that is not there: every local link and every repository
file name quoted in README.md and docs/*.md exists.

A file name is a backticked token that looks like a path inside the repository (it starts with
one of the top-level entries, e.g. `examples/critical_init.py`, `docs/RESULTS.md`,
`dynprobe/hookspecs.py`, `tests/benchmarks/`); links are markdown `[text](target)` with a
local target (anchors are checked against the headings of the linked file).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} | {".ci"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")


def _anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def _cited_files(text: str) -> set[str]:
    out = set()
    for token in CODE.findall(text):
        token = token.rstrip(".,:;")
        first = token.split("/")[0]
        if "/" in token and first in TOP and not any(c in token for c in "*{}<>$:"):
            out.add(token)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path) if path else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{doc.name}: broken links {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_files_exist(doc):
    missing = sorted(f for f in _cited_files(doc.read_text()) if not (ROOT / f).exists())
    assert not missing, f"{doc.name} cites files that do not exist: {missing}"


def test_the_checker_finds_a_missing_file():
    assert _cited_files("see `examples/no_such_example.py` and `docs/RESULTS.md`") == {
        "examples/no_such_example.py", "docs/RESULTS.md"}
    assert not (ROOT / "examples/no_such_example.py").exists()
