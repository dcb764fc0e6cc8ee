"""Property-based round trips: what is read back equals what was written, or the writer refused.

Text is drawn from every category, biased towards delimiters, quotes, formula triggers and
line breaks, so a value can never corrupt a file silently.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector.config import CsvFormat, FixedWidthFormat
from ml_connector.errors import RecordError
from ml_connector.formats.csvfile import CsvReader, CsvWriter
from ml_connector.formats.fixedwidth import FixedWidthReader, FixedWidthWriter
from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.writer import Envelope, X12WriteError, X12Writer

NASTY = "*~:^|>\\,;\"'=+-@\t\r\n \x00\x1féü€日"
text = st.text(alphabet=st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=["Cs"])), max_size=40)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WHEN = datetime(2026, 1, 2, 3, 4)


def _x12(values: list[str], policy: str) -> tuple[str, X12Writer]:
    out = io.StringIO()
    w = X12Writer(out, Envelope(on_delimiter_in_data=policy))
    w.begin_interchange(1, WHEN)
    w.begin_group("RA", 1, WHEN)
    w.write_set("820", 1, [("REF", ["ZZ", v]) for v in values])
    w.end_group()
    w.end_interchange()
    return out.getvalue(), w


@SETTINGS
@given(st.lists(text, min_size=1, max_size=5))
def test_x12_reject_policy_round_trips_or_refuses(values: list[str]) -> None:
    try:
        data, _ = _x12(values, "reject")
    except X12WriteError as exc:
        assert "REF02" in str(exc)
        return
    (ts,), reader = read_x12(data)
    assert reader.findings == []
    refs = [s for s in ts.segments if s[0] == "REF"]
    # Trailing spaces are suppressed (an X12 rule); otherwise exact.
    assert [r[2] if len(r) > 2 else "" for r in refs] == [v.rstrip(" ") for v in values]


@SETTINGS
@given(st.lists(text, min_size=1, max_size=5))
def test_x12_replace_policy_always_yields_a_clean_interchange(values: list[str]) -> None:
    data, writer = _x12(values, "replace")
    (ts,), reader = read_x12(data)
    assert reader.findings == []  # counts, control numbers and structure intact
    assert ts.summary.segment_count == len(values) + 2
    written = {s.original: s.written for s in writer.substitutions}
    refs = [s for s in ts.segments if s[0] == "REF"]
    for value, ref in zip(values, refs, strict=True):
        expected = written.get(value, value)
        assert (ref[2] if len(ref) > 2 else "") == expected.rstrip(" ")


CSV_FMT = CsvFormat.model_validate(
    {"type": "csv", "columns": [{"field": "A"}, {"field": "B"}, {"field": "Amt", "type": "decimal"}]}
)
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9)


@SETTINGS
@given(st.lists(st.tuples(text, text, amounts), min_size=1, max_size=8), st.sampled_from(["utf-8", "cp1252"]))
def test_csv_round_trip(rows: list[tuple[str, str, Decimal]], encoding: str) -> None:
    fmt = CSV_FMT.model_copy(update={"encoding": encoding})
    out = io.BytesIO()
    w = CsvWriter(out, fmt)
    w.write_header()
    kept = []
    for a, b, amt in rows:
        rec = {"A": a, "B": b, "Amt": amt}
        try:
            w.write(rec)
        except RecordError as exc:
            assert encoding == "cp1252" and "cannot be written in cp1252" in str(exc)
            continue
        kept.append(rec)
    back = list(CsvReader(io.BytesIO(out.getvalue()), fmt))
    assert [r.error for r in back] == [None] * len(back)
    # A record whose every cell is empty is indistinguishable from a blank line.
    expected = [r for r in kept if any(str(v) != "" for v in r.values())]
    got = [{k: ("" if v is None else v) for k, v in r.values.items()} for r in back]
    assert got == [{k: v for k, v in r.items()} for r in expected]


FW_FMT = FixedWidthFormat.model_validate(
    {
        "type": "fixed-width",
        "columns": [
            {"field": "A", "start": 1, "length": 12},
            {
                "field": "Amt",
                "start": 13,
                "length": 14,
                "type": "decimal",
                "implied_decimals": 2,
                "align": "right",
                "pad": "0",
            },
        ],
    }
)


@SETTINGS
@given(st.lists(st.tuples(text, amounts), min_size=1, max_size=8))
def test_fixed_width_round_trip(rows: list[tuple[str, Decimal]]) -> None:
    out = io.BytesIO()
    w = FixedWidthWriter(out, FW_FMT)
    kept = []
    for a, amt in rows:
        try:
            w.write({"A": a, "Amt": amt})
        except RecordError as exc:
            assert any(m in str(exc) for m in ("characters", "line break", "cannot be written", "byte-order mark"))
            continue
        kept.append((a, amt))
    back = list(FixedWidthReader(io.BytesIO(out.getvalue()), FW_FMT))
    assert [r.error for r in back] == [None] * len(back)
    assert [(r.values["A"] or "", r.values["Amt"]) for r in back] == [(a.rstrip(" "), amt) for a, amt in kept]
