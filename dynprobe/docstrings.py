"""What a probe's NumPy-style docstring says, as plain text for terminals and reports.

The summary (the first paragraph, however many lines it wraps over), the extended description,
and each parameter's description from the ``Parameters`` section — an entry may document
several options at once (``samples, steps``). Sections are parsed by ``docstring_parser``
(pure Python, no dependencies); reStructuredText inline markup — ``literals``, ``:func:`x```,
``:class:`~a.b.C```, `default role`, ``**strong**`` — becomes the text it marks.

References
----------
numpydoc docstring guide (https://numpydoc.readthedocs.io/en/latest/format.html), the format
STYLE.md asks every public function to follow.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

__all__ = ["plain_text", "doc_summary", "doc_description", "doc_params"]

_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)?:`(?:([^`<]*?)\s*<[^`>]*>|~?([^`]*))`")
_LITERAL = re.compile(r"``(.+?)``")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`_{1,2}")
_DEFAULT_ROLE = re.compile(r"(?<![\w`])`([^`]+)`(?![\w`])")
_STRONG = re.compile(r"(?<![\w*])\*\*(\S(?:.*?\S)?)\*\*(?![\w*])")
_EMPHASIS = re.compile(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")


_REPEAT_UP_TO = 120
"""A shared description longer than this (characters) is written out for its first option only."""


def _role(match: re.Match[str]) -> str:
    titled, target = match.group(1), match.group(2)
    if titled is not None:
        return titled
    return target.rsplit(".", 1)[-1] if match.group(0).split("`", 1)[1].startswith("~") else target


def plain_text(text: str) -> str:
    """``text`` with reStructuredText inline markup replaced by the text it marks, and each
    paragraph's wrapped lines joined into one (paragraphs stay separated by a blank line)."""
    out = _ROLE.sub(_role, text)
    out = _LINK.sub(r"\1", out)
    out = _LITERAL.sub(r"\1", out)
    out = _DEFAULT_ROLE.sub(r"\1", out)
    out = _STRONG.sub(r"\1", out)
    out = _EMPHASIS.sub(r"\1", out)
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n\s*\n", out.strip())]
    return "\n\n".join(p for p in paragraphs if p)


def _doc(func: Callable[..., Any]) -> str:
    return inspect.getdoc(func) or ""


def _sections(doc: str) -> tuple[str, str]:
    """(text before the first numpydoc section, the rest)."""
    match = re.search(r"^\S[^\n]*\n-{3,}\s*$", doc, flags=re.MULTILINE)
    return (doc[: match.start()], doc[match.start():]) if match else (doc, "")


def doc_summary(func: Callable[..., Any]) -> str:
    """The docstring's first paragraph as one line of plain text (``""`` without a docstring)."""
    head, _ = _sections(_doc(func))
    return plain_text(re.split(r"\n\s*\n", head.strip(), maxsplit=1)[0])


def doc_description(func: Callable[..., Any]) -> str:
    """Summary and extended description (everything before the first section), plain text."""
    head, _ = _sections(_doc(func))
    return plain_text(head)


def doc_params(func: Callable[..., Any]) -> dict[str, str]:
    """``{option: description}`` from the ``Parameters`` (and ``Other Parameters``) section, in
    plain text. An entry naming several options (``a, b``) gives its text after the names
    (``"a, b: text"``) to each, or, when it is long, to the first and ``"see a above"`` to the
    others."""
    import docstring_parser

    doc = _doc(func)
    if not doc:
        return {}
    parsed = docstring_parser.parse(doc, style=docstring_parser.DocstringStyle.NUMPYDOC)
    out: dict[str, str] = {}
    for param in parsed.params:
        text = plain_text(param.description or "")
        names = [n.strip().lstrip("*") for n in param.arg_name.split(",") if n.strip()]
        if len(names) > 1 and text:
            text = f"{', '.join(names)}: {text}"
        for i, name in enumerate(names):
            long_shared = i > 0 and len(text) > _REPEAT_UP_TO
            out.setdefault(name, f"see {names[0]} above" if long_shared else text)
    return out
