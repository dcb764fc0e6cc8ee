"""Fixed-width record roles from a hand-written partner batch (tests/formats/partner/ap_invoices_*.txt)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config import FixedWidthFormat
from ml_connector.formats.coerce import FormatError
from ml_connector.formats.fixedwidth import FixedWidthReader, FixedWidthWriter

PARTNER = Path(__file__).with_name("partner")
LAYOUT: dict[str, Any] = {
    "type": "fixed-width",
    "line_ending": "\n",
    "record_type": {"field": "RecordType", "start": 1, "length": 1},
    "records": [
        {"code": "H", "role": "header", "columns": [
            {"field": "BatchDate", "start": 2, "length": 8, "type": "date", "format": "%Y%m%d"},
            {"field": "Sender", "start": 10, "length": 20, "value": "NORTHWIND SUPPLY"},
        ]},
        {"code": "D", "columns": [
            {"field": "VendorNumVendorID", "start": 2, "length": 8, "required": True},
            {"field": "InvoiceNum", "start": 10, "length": 20, "required": True},
            {"field": "InvoiceAmt", "start": 30, "length": 12, "type": "decimal", "implied_decimals": 2,
             "align": "right", "pad": "0"},
            {"field": "InvoiceDate", "from_header": "header.BatchDate"},
        ]},
        {"code": "T", "role": "trailer", "count_field": "RecordCount", "total_field": "TotalAmount",
         "total_of": "InvoiceAmt", "columns": [
            {"field": "RecordCount", "start": 2, "length": 6, "type": "int", "align": "right", "pad": "0"},
            {"field": "TotalAmount", "start": 8, "length": 14, "type": "decimal", "implied_decimals": 2,
             "align": "right", "pad": "0"},
        ]},
    ],
}  # fmt: skip
FMT = FixedWidthFormat.model_validate(LAYOUT)


def _read(name: str) -> tuple[FixedWidthReader, list[Any]]:
    reader = FixedWidthReader(io.BytesIO((PARTNER / name).read_bytes()), FMT, name)
    return reader, list(reader)


def test_header_and_trailer_are_read_by_their_layouts_and_never_posted() -> None:
    reader, recs = _read("ap_invoices_batch.txt")
    assert [r.error for r in recs] == [None, None, None]
    assert [r.position for r in recs] == ["line 2 (record D)", "line 3 (record D)", "line 4 (record D)"]
    assert [r.values["InvoiceNum"] for r in recs] == ["NW-88001", "NW-88002", "CM-88003"]
    assert [r.values["InvoiceAmt"] for r in recs] == [Decimal("1250.50"), Decimal("99.99"), Decimal("-25.00")]
    # header values referenced by the detail mapping
    assert {r.values["InvoiceDate"] for r in recs} == {date(2026, 11, 20)}
    assert reader.header == {"BatchDate": date(2026, 11, 20), "Sender": "NORTHWIND SUPPLY"}
    assert reader.trailer == {"RecordCount": 3, "TotalAmount": Decimal("1325.49")}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ap_invoices_bad_count.txt", r"ap_invoices_bad_count.txt: line 5 \(trailer T\): RecordCount says 4 detail "
                                      r"records, the file has 3"),
        ("ap_invoices_bad_total.txt", r"line 5 \(trailer T\): TotalAmount says Decimal\('1325.50'\), the detail "
                                      r"records' InvoiceAmt add up to 1325.49"),
        ("ap_invoices_no_trailer.txt", r"ends without its trailer record \(T\)"),
    ],
)  # fmt: skip
def test_malformed_batches_are_rejected_with_a_located_reason(name: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _read(name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DV0001   NW-1                000000000100\nT00000100000000000100\n", "no header record \\(H\\) before"),
        ("H20261120X\nH20261121X\nDV0001   NW-1                000000000100\n", "the header must be the first"),
        ("H20261120X\nDV0001   NW-1                000000000100\nT00000100000000000100\nDV0002   NW-2   1\n",
         "line 4: a record after the trailer"),
        ("H2026XX20X\nDV0001   NW-1                000000000100\nT00000100000000000100\n",
         "line 1 \\(header H\\): column 2: BatchDate: '2026XX20' is not a valid date"),
    ],
)  # fmt: skip
def test_misplaced_or_unreadable_header_and_trailer(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        list(FixedWidthReader(io.BytesIO(text.encode()), FMT, "in.txt"))


def test_outbound_writes_header_and_trailer_with_computed_count_and_total() -> None:
    out = io.BytesIO()
    w = FixedWidthWriter(out, FMT, "out.txt")
    when = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    w.write_header(when)
    for vendor, num, amt in [("V0001", "NW-88001", "1250.50"), ("V0001", "NW-88002", "99.99"),
                             ("V0002", "CM-88003", "-25.00")]:  # fmt: skip
        w.write({"VendorNumVendorID": vendor, "InvoiceNum": num, "InvoiceAmt": Decimal(amt)})
    w.write_trailer(when)
    # byte for byte what the partner wrote by hand
    assert out.getvalue() == (PARTNER / "ap_invoices_batch.txt").read_bytes()
    assert (w.details, w.total) == (3, Decimal("1325.49"))


def test_role_configuration_is_validated() -> None:
    bad = dict(LAYOUT, records=[*LAYOUT["records"][:2], {**LAYOUT["records"][2], "count_field": "Nope"}])
    with pytest.raises(ValueError, match="count_field: 'Nope' is not one of this record's columns"):
        FixedWidthFormat.model_validate(bad)
    with pytest.raises(ValueError, match="at most one header"):
        FixedWidthFormat.model_validate(dict(LAYOUT, records=[LAYOUT["records"][0], *LAYOUT["records"]]))
    with pytest.raises(ValueError, match="only a trailer record carries counts"):
        FixedWidthFormat.model_validate(
            dict(LAYOUT, records=[{**LAYOUT["records"][0], "count_field": "Sender"}, *LAYOUT["records"][1:]])
        )


@pytest.mark.parametrize("n", range(9))
def test_csv_plain_value_builders_match_the_general_form(n: int) -> None:
    from ml_connector.formats.csvfile import _plain_values

    plain = [(f"F{k}", (k * 3) % 9) for k in range(n)]  # out-of-order columns
    row = ["a", "", "c", "d", "", "f", "g", "h", ""]
    assert _plain_values(plain)(row) == {f: row[i] or None for f, i in plain}
