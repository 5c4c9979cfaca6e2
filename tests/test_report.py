"""The HTML report's layout and the ``Diagnosis`` object's presentation: a viewport tag, every
navigation link resolving (the skipped and failed section included), parameters as a table
that says where each value came from, and a short repr, an HTML repr and a table form."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pandas as pd
import pytest

import dynprobe
from dynprobe.diagnose import Diagnosis
from dynprobe.report import render_report


class _Page(HTMLParser):
    """Ids, internal links, meta tags, and the text of every table cell, by table class."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.meta: dict[str, str] = {}
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "meta" and "name" in attrs:
            self.meta[attrs["name"]] = attrs.get("content", "")
        if tag == "table":
            self.tables.append((attrs.get("class", ""), []))
        if tag == "tr":
            self.tables[-1][1].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    """A real lyapunov result (k and steps chosen, the rest defaults), a skipped probe, a failure
    whose message has markup-like text."""
    result = dynprobe.diagnose(dynprobe.load_system("lstm2d_chaotic"), probes=["lyapunov", "meanfield"],
                               params={"lyapunov": {"steps": 300, "k": 2}})
    result.failed["hessian"] = "RuntimeError: <boom> & E[log|det J|]"
    return result


def _page(diagnosis: Diagnosis) -> _Page:
    page = _Page()
    page.feed(render_report(diagnosis))
    return page


def test_report_fits_a_phone_and_every_link_resolves(diagnosis: Diagnosis) -> None:
    page = _page(diagnosis)
    assert "width=device-width" in page.meta.get("viewport", "")
    assert "skipped" in page.links and "skipped" in page.ids  # the skipped-and-failed section is linked
    assert set(page.links) <= page.ids
    status = next(rows for cls, rows in page.tables if rows and rows[0] == ["probe", "status", "reason"])
    assert ["meanfield", "skipped"] in [r[:2] for r in status]
    assert ["hessian", "failed", "RuntimeError: <boom> & E[log|det J|]"] in status


def test_parameters_are_a_table_with_their_source(diagnosis: Diagnosis) -> None:
    page = _page(diagnosis)
    (rows,) = [rows for cls, rows in page.tables if cls == "params"]
    assert rows[0] == ["parameter", "value", "source"]
    table = {name: (value, source) for name, value, source in rows[1:]}
    used = json.loads(diagnosis.tree["lyapunov"].attrs["params"])
    assert set(table) == set(used)  # every parameter the probe ran with, defaults included
    assert table["steps"] == ("300", "chosen (default 1000)")
    assert table["k"] == ("2", "chosen (default none)")
    assert table["burn_in"] == ("100", "default")
    assert not any("{" in value or '"' in value for value, _ in table.values())  # no raw JSON


def test_diagnosis_repr_is_short_and_says_what_ran(diagnosis: Diagnosis) -> None:
    text = repr(diagnosis)
    assert len(text) < 200 and "\n" not in text
    assert diagnosis.system.name in text and "ran: lyapunov" in text and "skipped: meanfield" in text
    assert "failed: hessian" in text and f"{len(diagnosis.verdicts)} verdicts" in text


def test_diagnosis_html_repr_and_table_form(diagnosis: Diagnosis) -> None:
    page = _Page()
    page.feed(diagnosis._repr_html_())
    verdicts, not_run = (rows for _, rows in page.tables)
    assert verdicts[0] == ["topic", "verdict", "evidence", "probe · reference"]
    assert [tuple(r) for r in verdicts[1:]] == diagnosis.rows()
    assert ["hessian", "failed", "RuntimeError: <boom> & E[log|det J|]"] in not_run
    df = diagnosis.to_dataframe()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["topic", "verdict", "evidence", "probe", "reference"]
    assert len(df) == len(diagnosis.verdicts) > 0
    assert [(t, v, e, f"{p} · {r}") for t, v, e, p, r in df.itertuples(index=False)] == diagnosis.rows()
    assert (df.probe == "lyapunov").all() and "regime" in set(df.topic)
