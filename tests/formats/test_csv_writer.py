"""CsvWriter against a plain reference writer: same bytes, same errors, same row counts.

The writer renders a record with one compiled function (the commonest formatter cases inline);
the reference below calls every column's formatter and checks every cell one at a time.
"""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector.config import CsvFormat
from ml_connector.errors import RecordError
from ml_connector.formats.coerce import compile_formatter, label
from ml_connector.formats.csvfile import FORMULA_TRIGGERS, CsvWriter

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_write(fmt: CsvFormat, records: list[dict[str, Any]], name: str) -> tuple[bytes, list[str | None]]:
    """Bytes written and, per record, None or the RecordError it raised (nothing written for it)."""
    out = io.StringIO()
    w = csv.writer(out, delimiter=fmt.delimiter, quotechar=fmt.quotechar, lineterminator=fmt.line_ending)
    codec = codecs.lookup(fmt.encoding).name
    encoding = "utf-8" if codec == "utf-8-sig" else fmt.encoding
    safe = codec in ("utf-8", "utf-8-sig", "utf-16", "utf-32")
    plan = [(c, compile_formatter(c)) for c in fmt.columns]
    if fmt.header:
        w.writerow([c.header or c.field for c in fmt.columns])
    errors: list[str | None] = []
    rows = 0
    for record in records:
        try:
            cells = [f(record.get(c.field)) for c, f in plan]
            for c, text in zip(fmt.columns, cells, strict=True):
                if len(text) > fmt.max_field_size:
                    raise RecordError(f"{label(c)}: {len(text)} characters, limit {fmt.max_field_size}")
            for c, text in zip(fmt.columns, cells, strict=True):
                if not safe:
                    try:
                        text.encode(encoding)
                    except UnicodeEncodeError as exc:
                        raise RecordError(
                            f"{label(c)}: character {text[exc.start]!r} cannot be written in {fmt.encoding}"
                        ) from None
            if fmt.neutralise_formulas:
                cells = ["'" + t if t.startswith(FORMULA_TRIGGERS) else t for t in cells]
        except RecordError as exc:
            errors.append(f"{name}: record {rows + 1}: {exc}")
            continue
        w.writerow(cells)
        rows += 1
        errors.append(None)
    data = out.getvalue().encode(encoding)
    return (codecs.BOM_UTF8 + data if codec == "utf-8-sig" else data), errors


VALUES = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "x", "=1+2", "-12.50", "@a", "\tt", 'q"uote', "a,b", "line\r\nbreak", "Zürich €", "日本", "é"]
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6),
    st.sampled_from([Decimal("1E+3"), Decimal("-0"), Decimal("0.005"), 7, 0, True, False, 1.5]),
    st.sampled_from([date(2026, 1, 2), datetime(2026, 1, 2, 3, 4, 5)]),
    st.integers(5, 40).map(lambda n: "L" * n),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[CsvFormat, list[dict[str, Any]]]:
    cols = []
    for k in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["str", "decimal", "int", "date", "datetime", "bool"]))
        col: dict[str, Any] = {"field": f"F{k % 4}", "header": f"H{k}", "type": kind}
        col["format"] = draw(st.sampled_from([None, "0.00", "0", "%d/%m/%Y", "text"]))
        if draw(st.integers(0, 3)) == 0:
            col["required"] = True
        if draw(st.integers(0, 3)) == 0:
            col["default"] = "dflt"
        cols.append(col)
    fmt = CsvFormat.model_validate(
        {
            "type": "csv",
            "columns": cols,
            "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"])),
            "neutralise_formulas": draw(st.booleans()),
            "max_field_size": draw(st.sampled_from([12, 30, 131072])),
            "header": draw(st.booleans()),
            "line_ending": draw(st.sampled_from(["\n", "\r\n"])),
        }
    )
    records = draw(st.lists(st.dictionaries(st.sampled_from(["F0", "F1", "F2", "F3", "other"]), VALUES), max_size=12))
    return fmt, records


def _ours(fmt: CsvFormat, records: list[dict[str, Any]], many: bool) -> tuple[bytes, list[str | None]]:
    out = io.BytesIO()
    w = CsvWriter(out, fmt, "out.csv")
    w.write_header()
    errors: list[str | None] = []
    if many:
        rest = records
        while rest:  # write_many stops at a bad record: carry on after it, as a caller would
            try:
                w.write_many(rest)
            except RecordError as exc:
                done = len(errors) + (w.rows - sum(e is None for e in errors))
                errors += [None] * (done - len(errors)) + [str(exc)]
                rest = records[len(errors) :]
                continue
            errors += [None] * (len(records) - len(errors))
            break
    else:
        for record in records:
            try:
                w.write(record)
            except RecordError as exc:
                errors.append(str(exc))
            else:
                errors.append(None)
    w._flush_line()  # the BOM of a utf-8-sig file goes out with the first flush, even an empty one
    assert w.rows == sum(e is None for e in errors)
    return out.getvalue(), errors


@SETTINGS
@given(cases(), st.booleans())
def test_writer_matches_the_reference(case: tuple[CsvFormat, list[dict[str, Any]]], many: bool) -> None:
    fmt, records = case
    try:
        expected = reference_write(fmt, records, "out.csv")
    except Exception as exc:  # a formatter error that is not a RecordError (e.g. strftime): same for both
        with pytest.raises(type(exc)):
            _ours(fmt, records, many)
        return
    assert _ours(fmt, records, many) == expected


def test_render_keeps_its_location_argument() -> None:
    fmt = CsvFormat.model_validate({"type": "csv", "max_field_size": 3, "columns": [{"field": "A"}]})
    w = CsvWriter(io.BytesIO(), fmt, "out.csv")
    assert w.render({"A": "abc"}, "here") == ["abc"]
    with pytest.raises(RecordError, match=r"^here: A: 4 characters, limit 3$"):
        w.render({"A": "abcd"}, "here")
