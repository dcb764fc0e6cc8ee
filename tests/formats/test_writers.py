"""Golden files for every writer, and the writers' refusal paths."""

from __future__ import annotations

import io
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector.config import CsvFormat, FixedWidthFormat, X12Partner
from ml_connector.errors import RecordError
from ml_connector.formats.csvfile import CsvReader, CsvWriter
from ml_connector.formats.fixedwidth import FixedWidthReader, FixedWidthWriter
from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.acks import build_997, build_ta1
from ml_connector.formats.x12.remit820 import Payment, RemittanceLine, interpret_820, payment_to_820
from ml_connector.formats.x12.writer import Envelope, X12WriteError, X12Writer

from .layouts import BATCH_FW as FW_FMT

GOLDEN = Path(__file__).with_name("golden")
WHEN = datetime(2026, 11, 23, 19, 5)


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"golden file {path} missing (UPDATE_GOLDEN=1 writes it)"
    assert data == path.read_bytes(), f"{name} differs from its golden file"


PAYMENT = Payment(
    trace_number="10023",
    payment_date=date(2026, 11, 20),
    amount=Decimal("1490.50"),
    payer_name="ACME MANUFACTURING",
    payer_id="123456789",
    payee_name="Northwind Supply",
    payee_id="NORTHWIND",
    method="CHK",
    reference="10023",
    lines=(
        RemittanceLine("INV-1001", Decimal("990.50"), Decimal("1010.71"), Decimal("20.21"), date(2026, 10, 1)),
        RemittanceLine("INV-1002", Decimal("500.00"), Decimal("500.00"), None, date(2026, 10, 15)),
    ),
)


def write_820(version: str, partner: X12Partner | None = None, payment: Payment = PAYMENT) -> tuple[str, X12Writer]:
    out = io.StringIO()
    env = Envelope.from_partner(partner or X12Partner(), version)
    w = X12Writer(out, env)
    w.begin_interchange(17, WHEN)
    w.begin_group("RA", 17, WHEN)
    w.write_set("820", 1, payment_to_820(payment, version, created=WHEN))
    w.end_group()
    w.end_interchange()
    return out.getvalue(), w


@pytest.mark.parametrize("version", ["004010", "005010"])
def test_820_golden_and_round_trip(version: str) -> None:
    text, _ = write_820(version)
    check_golden(f"820_{version}.edi", text.encode())
    (ts,), reader = read_x12(text, name="ours")
    assert reader.findings == []
    assert reader.interchanges[0].version == ("00401" if version == "004010" else "00501")
    advice, findings = interpret_820(ts)
    assert findings == [] and advice is not None and advice.warnings == []
    assert advice.amount == PAYMENT.amount and advice.trace_number == PAYMENT.trace_number
    assert advice.payee_id == "NORTHWIND" and advice.payment_date == PAYMENT.payment_date
    assert [(ln.invoice_num, ln.paid, ln.invoice_amount, ln.discount, ln.invoice_date) for ln in advice.lines] == [
        (ln.invoice_num, ln.paid, ln.invoice_amount, ln.discount, ln.invoice_date) for ln in PAYMENT.lines
    ]


def test_isa_is_fixed_width_with_odd_delimiters() -> None:
    partner = X12Partner(element_separator="|", component_separator=">", segment_terminator="\\",
                         repetition_separator="^", segment_newline=False)  # fmt: skip
    text, _ = write_820("005010", partner)
    assert text.index("\\") == 105 and text[3] == "|" and text[104] == ">"
    assert "\n" not in text
    (_ts,), reader = read_x12(text)
    assert reader.findings == [] and reader.interchanges[0].delimiters.repetition == "^"


def test_delimiter_in_data_rejected_or_replaced() -> None:
    bad = Payment(**{**PAYMENT.__dict__, "payee_name": "O'Brien*Sons~Ltd"})
    with pytest.raises(X12WriteError, match=r"N102: value contains '\*', '~'"):
        write_820("004010", payment=bad)
    text, writer = write_820("004010", X12Partner(on_delimiter_in_data="replace"), payment=bad)
    (ts,), reader = read_x12(text)
    assert reader.findings == []
    advice, _ = interpret_820(ts)
    assert advice is not None and advice.payee_name == "O'Brien Sons Ltd"
    assert [(s.original, s.written) for s in writer.substitutions] == [("O'Brien*Sons~Ltd", "O'Brien Sons Ltd")]


def test_basic_charset_transliterates() -> None:
    bad = Payment(**{**PAYMENT.__dict__, "payee_name": "Café Müller"})
    text, _writer = write_820("004010", X12Partner(charset="basic", on_delimiter_in_data="replace"), payment=bad)
    assert "N1*PE*CAFE MULLER" in text
    with pytest.raises(X12WriteError, match="N102"):
        write_820("004010", X12Partner(charset="basic"), payment=bad)


def test_rejected_set_leaves_stream_untouched() -> None:
    out = io.StringIO()
    w = X12Writer(out, Envelope())
    w.begin_interchange(1, WHEN)
    w.begin_group("RA", 1, WHEN)
    before = out.getvalue()
    with pytest.raises(X12WriteError):
        w.write_set("820", 1, [("N1", ["PE", "bad~name"])])
    assert out.getvalue() == before
    w.write_set("820", 1, [("N1", ["PE", "good"])])
    w.end_group()
    w.end_interchange()
    assert read_x12(out.getvalue())[1].findings == []


def test_trace_number_length_per_version() -> None:
    long_trace = Payment(**{**PAYMENT.__dict__, "trace_number": "T" * 40})
    with pytest.raises(X12WriteError, match="004010 allows 30"):
        payment_to_820(long_trace, "004010")
    assert payment_to_820(long_trace, "005010")[1] == ("TRN", ["1", "T" * 40])


def test_997_and_ta1_golden() -> None:
    (_ts,), reader = read_x12(write_820("004010")[0].replace("SE*14*0001", "SE*13*0001"), name="in")
    ic = reader.interchanges[0]
    plan = build_997(ic, isa13=900, gs06=901, st02_start=1, when=WHEN)
    assert plan.text is not None
    check_golden("997_rejected_count.edi", plan.text.encode())
    assert "AK5*R*4~" in plan.text and "AK9*R*1*1*0~" in plan.text
    ta1 = build_ta1(ic, isa13=902, when=WHEN)
    check_golden("ta1_accepted.edi", ta1.encode())
    dup = build_ta1(ic, isa13=903, when=WHEN, ack="R", note="025")
    assert "TA1*000000017*261123*1905*R*025~" in dup
    assert read_x12(dup)[1].findings == []


CSV_FMT = CsvFormat.model_validate(
    {
        "type": "csv",
        "columns": [
            {"header": "Vendor", "field": "VendorID", "required": True},
            {"header": "Name", "field": "Name"},
            {"header": "Amount", "field": "InvoiceAmt", "type": "decimal", "format": "0.00"},
            {"header": "Due", "field": "DueDate", "type": "date", "format": "%m/%d/%Y"},
            {"header": "Active", "field": "Active", "type": "bool"},
        ],
    }
)
ROWS = [
    {"VendorID": "V100", "Name": 'Smith, "Bob" & Sons', "InvoiceAmt": Decimal("1250.5"), "DueDate": date(2026, 12, 1), "Active": True},
    {"VendorID": "V200", "Name": "=HYPERLINK(\"x\")", "InvoiceAmt": Decimal("-12.5"), "DueDate": None, "Active": False},
    {"VendorID": "V300", "Name": "Zürich AG\nline two", "InvoiceAmt": None, "DueDate": date(2027, 1, 31), "Active": None},
]  # fmt: skip


def _csv(fmt: CsvFormat, rows: list[dict[str, object]]) -> bytes:
    out = io.BytesIO()
    w = CsvWriter(out, fmt, "out.csv")
    w.write_header()
    for r in rows:
        w.write(r)
    return out.getvalue()


def test_csv_golden_and_round_trip() -> None:
    data = _csv(CSV_FMT, ROWS)
    check_golden("vendors.csv", data)
    back = list(CsvReader(io.BytesIO(data), CSV_FMT, "out.csv"))
    assert [r.error for r in back] == [None, None, None]
    assert back[0].values["InvoiceAmt"] == Decimal("1250.50")
    assert [r.values["Name"] for r in back] == [r["Name"] for r in ROWS]
    assert back[1].values["InvoiceAmt"] == Decimal("-12.50")  # machine partner: no quote prefix
    assert back[2].position == "line 4" and back[1].values["Active"] is False


def test_csv_spreadsheet_partner_neutralises_formulas() -> None:
    fmt = CSV_FMT.model_copy(update={"neutralise_formulas": True})
    data = _csv(fmt, ROWS).decode()
    assert "'=HYPERLINK" in data and "'-12.50" in data
    assert "Smith" in data and ",'Smith" not in data


def test_csv_encodings() -> None:
    bom = CSV_FMT.model_copy(update={"encoding": "utf-8-sig"})
    data = _csv(bom, ROWS)
    assert data.startswith(b"\xef\xbb\xbfVendor,")
    assert [r.values["VendorID"] for r in CsvReader(io.BytesIO(data), bom)] == ["V100", "V200", "V300"]
    # A BOM in a file declared plain utf-8 does not hide the first header.
    assert [r.values["VendorID"] for r in CsvReader(io.BytesIO(data), CSV_FMT)] == ["V100", "V200", "V300"]
    cp = CSV_FMT.model_copy(update={"encoding": "cp1252"})
    data = _csv(cp, [*ROWS[:1], {**ROWS[2], "Name": "Zürich €"}])
    assert "Zürich €".encode("cp1252") in data
    out = io.BytesIO()
    w = CsvWriter(out, cp, "out.csv")
    with pytest.raises(RecordError, match=r"out.csv: record 1: Name: character '日' cannot be written in cp1252"):
        w.write({"VendorID": "V1", "Name": "日本"})
    assert out.getvalue() == b""


def test_csv_bad_input_is_located() -> None:
    data = b"Vendor,Name,Amount,Due,Active\r\nV1,a,12.00,12/01/2026,yes\r\nV2,b,twelve,,\r\n,c,,,\r\nV4,d,1,31/31/2026,\r\n"
    recs = list(CsvReader(io.BytesIO(data), CSV_FMT, "in.csv"))
    assert recs[0].error is None
    assert recs[1].error == "in.csv: line 3: Amount (InvoiceAmt): 'twelve' is not a valid decimal"
    assert recs[2].error == "in.csv: line 4: Vendor (VendorID) is required"
    assert recs[3].error is not None and "line 5" in recs[3].error and "format '%m/%d/%Y'" in recs[3].error
    from ml_connector.formats.coerce import FormatError

    with pytest.raises(FormatError, match=r"in.csv: line 3: bytes are not valid utf-8"):
        list(CsvReader(io.BytesIO(b"Vendor,Name\r\nV1,ok\r\nV2,\xff\xfe\r\n"), CSV_FMT, "in.csv"))
    with pytest.raises(FormatError, match="the header has no column 'Vendor'"):
        list(CsvReader(io.BytesIO(b"Name\r\nx\r\n"), CSV_FMT, "in.csv"))
    small = CSV_FMT.model_copy(update={"max_field_size": 5})
    recs = list(CsvReader(io.BytesIO(b"Vendor,Name\r\nV1,abcdefgh\r\n"), small, "in.csv"))
    assert recs[0].error == "in.csv: line 2: Name: field is 8 characters, limit 5"


def test_fixed_width_golden_and_round_trip() -> None:
    out = io.BytesIO()
    w = FixedWidthWriter(out, FW_FMT, "out.txt")
    w.write({"BatchDate": date(2026, 11, 23)}, "H")
    w.write({"VendorID": "V100", "Name": "Northwind Supply", "InvoiceAmt": Decimal("1250.5")}, "D")
    w.write({"VendorID": "V200", "Name": "Credit", "InvoiceAmt": Decimal("-12.34")}, "D")
    w.write({"Count": 2}, "T")
    check_golden("vendors.txt", out.getvalue())
    reader = FixedWidthReader(io.BytesIO(out.getvalue()), FW_FMT, "out.txt")
    recs = list(reader)
    # header and trailer are read by their own layouts and never become records to post
    assert [r.record_type for r in recs] == ["D", "D"] and [r.index for r in recs] == [0, 1]
    assert recs[0].values == {"VendorID": "V100", "Name": "Northwind Supply", "InvoiceAmt": Decimal("1250.50")}
    assert recs[1].values["InvoiceAmt"] == Decimal("-12.34")
    assert reader.header == {"BatchDate": date(2026, 11, 23)} and reader.trailer == {"Count": 2}


def test_fixed_width_refuses_to_truncate_and_locates_errors() -> None:
    w = FixedWidthWriter(io.BytesIO(), FW_FMT, "out.txt")
    with pytest.raises(
        RecordError,
        match=r"Name: 'A name far too long for twenty' is 30 characters, the column \(start 10\) is 20 wide",
    ):
        w.render({"VendorID": "V1", "Name": "A name far too long for twenty"}, "D")
    data = b"DV100    Northwind           00000abc00\r\nX\r\nD\r\n"
    details_only = FW_FMT.model_copy(update={"records": [FW_FMT.records[1]]})
    recs = list(FixedWidthReader(io.BytesIO(data), details_only, "in.txt"))
    assert recs[0].error == "in.txt: line 1: column 30: InvoiceAmt: 'abc00' is not a valid decimal"
    assert recs[1].error is not None and "unknown record type 'X' at columns 1-1" in recs[1].error
    assert recs[2].error is not None and "line 3" in recs[2].error and "VendorID" in recs[2].error
    fixed = FixedWidthFormat.model_validate(
        {"type": "fixed-width", "line_length": 10, "columns": [{"field": "A", "start": 1, "length": 10}]}
    )
    recs = list(FixedWidthReader(io.BytesIO(b"0123456789\nshort\n"), fixed, "in.txt"))
    assert recs[0].error is None and recs[1].error == "in.txt: line 2: line is 5 characters, the layout says 10"
