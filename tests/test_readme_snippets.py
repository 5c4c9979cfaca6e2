"""The README's ```python blocks run as written.

Every ```python block of README.md is executed, in a fresh temporary directory, with the blocks
of one ``## `` section sharing a namespace in order (as a reader pastes them into one session).
A block may be preceded (blank lines allowed) by HTML comments that tell this test how to run it.
Use them sparingly, and never to hide a broken snippet:

``<!-- snippet: skip (REASON) -->``
    Do not run the block; REASON says what it needs that CI has not (a GPU, a data set, ...).
``<!-- snippet: shorten OLD -> NEW; OLD2 -> NEW2 -->``
    Run the block with each text OLD replaced by NEW — CI-sized numbers (``steps=3000`` ->
    ``steps=200``). Every OLD must occur in the block, so a stale marker fails.
``<!-- snippet: given GLOB -->``
    Before the block, write small ``nn.LSTM(1, 4)`` state_dict checkpoints matching GLOB
    (``ckpt/epoch_*.pt`` -> ``ckpt/epoch_0.pt`` ... ``ckpt/epoch_2.pt``) in the directory.
``<!-- snippet: slow -->``
    The block is CI-sized but still takes more than a few seconds (a whole ``diagnose``, a
    Dask cluster): its section runs with the slow tests (``pytest -m slow``, a CI step).

The blocks are found by their fences at collection time, so the test follows the README as
other sections are edited; an unknown directive is an error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(\w+)\s*(.*?)\s*-->\s*$")
DIRECTIVES = ("skip", "shorten", "given", "slow")


@dataclass
class Block:
    line: int  # of the opening fence
    code: str
    directives: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def parse(text: str) -> list[Section]:
    """Sections (``## `` headings) with their ```python blocks and the directives before each."""
    sections = [Section("(top)")]
    pending: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            sections.append(Section(line[3:].strip()))
            pending = []
        elif MARKER.match(line):
            kind, arg = MARKER.match(line).groups()
            if kind not in DIRECTIVES:
                raise ValueError(f"README.md:{i + 1}: unknown snippet directive {kind!r}; known: {', '.join(DIRECTIVES)}")
            pending.append((kind, arg))
        elif line.strip().startswith("```"):
            fence, lang = line.strip()[:3], line.strip()[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == fence)
            if lang == "python":
                sections[-1].blocks.append(Block(i + 1, "\n".join(lines[i + 1:end]), pending))
            elif pending:
                raise ValueError(f"README.md:{i + 1}: snippet directives before a ```{lang} block")
            pending = []
            i = end
        elif line.strip():
            pending = []
        i += 1
    return [s for s in sections if s.blocks]


def _shorten(block: Block, arg: str) -> str:
    code = block.code
    for pair in filter(None, (p.strip() for p in arg.split(";"))):
        old, sep, new = pair.partition(" -> ")
        if not sep:
            raise ValueError(f"README.md:{block.line}: shorten expects 'OLD -> NEW', got {pair!r}")
        if old not in code:
            raise ValueError(f"README.md:{block.line}: shorten: {old!r} does not occur in the block (stale marker?)")
        code = code.replace(old, new)
    return code


def _given(directory: Path, pattern: str) -> None:
    from torch import nn

    for i in range(3):
        path = directory / pattern.replace("*", str(i), 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(i)
        torch.save(nn.LSTM(1, 4).state_dict(), path)


SECTIONS = parse(README.read_text(encoding="utf-8"))


def test_the_readme_has_snippets_and_the_parser_reads_markers() -> None:
    assert sum(len(s.blocks) for s in SECTIONS) >= 8
    text = "## A\n<!-- snippet: shorten x = 1 -> x = 2 -->\n\n```python\nx = 1\n```\n## B\n```bash\nls\n```\n"
    (section,) = parse(text)
    assert section.title == "A" and section.blocks[0].directives == [("shorten", "x = 1 -> x = 2")]
    assert _shorten(section.blocks[0], "x = 1 -> x = 2") == "x = 2"
    with pytest.raises(ValueError, match="stale marker"):
        _shorten(section.blocks[0], "y = 1 -> y = 2")
    with pytest.raises(ValueError, match="unknown snippet directive 'skipp'"):
        parse("<!-- snippet: skipp -->\n```python\npass\n```\n")
    text = "<!-- snippet: skip (GPU) -->\nSome prose.\n```python\npass\n```\n"
    assert parse(text)[0].blocks[0].directives == []  # a marker applies to the block right after it only


def _param(section: Section) -> object:
    slow = any(kind == "slow" for block in section.blocks for kind, _ in block.directives)
    return pytest.param(section, id=section.title, marks=pytest.mark.slow if slow else ())


@pytest.mark.parametrize("section", [_param(s) for s in SECTIONS])
def test_readme_section_runs(section: Section, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for block in section.blocks:
        kinds = dict(block.directives)
        if "skip" in kinds:
            continue
        code = block.code
        for kind, arg in block.directives:
            if kind == "shorten":
                code = _shorten(Block(block.line, code), arg)
            elif kind == "given":
                _given(tmp_path, arg)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                source = "\n" * block.line + code  # tracebacks give README.md's own line numbers
                exec(compile(source, "<README.md>", "exec"), namespace)  # noqa: S102 - the README's own code
        finally:
            plt.close("all")
