"""Posting decisions (flows/posting.py) against a scripted Kinetic: no network, no SFTP."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ml_connector.errors import ConnectError, RecordError
from ml_connector.flows import posting
from ml_connector.flows.inbound import InboundRun
from ml_connector.flows.parsed import Parsed
from ml_connector.formats.x12.remit820 import PaymentAdvice
from ml_connector.store.ledger import FileRow

from .conftest import FakeKinetic


def _file(run: InboundRun, records: list[Parsed]) -> FileRow:
    f, _ = run.ledger.see(flow=run.name, run_id=str(run.run_id), remote_path="/in/v.csv", size=10, mtime=1)
    run.ledger.add_records(f.id, "0" * 64, [(r.idx, r.position, r.key, "pending", None) for r in records])
    return f


def vendor(idx: int, vendor_id: str, name: str) -> Parsed:
    return Parsed(idx, f"line {idx + 2}", {"VendorID": vendor_id, "Name": name}, None, vendor_id)


def post(run: InboundRun, k: FakeKinetic, records: list[Parsed]) -> dict[int, Any]:
    f = _file(run, records)
    asyncio.run(posting.post_batch(run, k, f, records))
    run.audit.flush()
    return {r.idx: r for r in run.ledger.records(f.id)}


def test_created_and_updated_are_told_apart(make_run: Any) -> None:
    run, k = make_run("vendors-in"), FakeKinetic()
    k.add_vendor("V1", Name="Old")
    rows = post(run, k, [vendor(0, "V1", "New name"), vendor(1, "V2", "Second")])
    assert {i: r.state for i, r in rows.items()} == {0: "posted", 1: "posted"}
    assert rows[0].erp_keys == {"VendorNum": 1, "VendorID": "V1", "created": False}
    assert rows[1].erp_keys["created"] is True
    assert run.result.counts == {"records_posted": 2, "records_created": 1, "records_updated": 1}
    assert k.rows["Vendors"][0]["Name"] == "New name"


def test_same_key_posts_in_file_order(make_run: Any) -> None:
    run, k = make_run("vendors-in", concurrency=8), FakeKinetic()
    rows = post(run, k, [vendor(0, "V3", "First"), vendor(1, "V9", "Other"), vendor(2, "V3", "Second")])
    updates = [c for c in k.calls if c[0].startswith("Update") and c[1] == "V3"]
    assert updates == [("Update A", "V3"), ("Update U", "V3")]  # created once, then updated
    assert [r["Name"] for r in k.rows["Vendors"] if r["VendorID"] == "V3"] == ["Second"]
    assert rows[0].erp_keys["created"] is True and rows[2].erp_keys["created"] is False


def test_record_error_fails_that_record_and_the_file_goes_on(make_run: Any) -> None:
    run, k = make_run("vendors-in"), FakeKinetic()
    k.refuse["BAD"] = RecordError("HTTP 400: TermsCode XX is not valid")
    rows = post(run, k, [vendor(0, "BAD", "x"), vendor(1, "V5", "y")])
    assert rows[0].state == "failed"
    assert rows[0].error is not None and rows[0].error.startswith("line 2: ") and "TermsCode XX" in rows[0].error
    assert rows[1].state == "posted"
    events = [e for e in run.ctx.store.audit.query(flow="vendors-in") if e.kind == "record.failed"]
    assert [e.subject for e in events] == ["v.csv: line 2"]


def test_lost_answer_that_landed_is_settled_by_lookup_not_created_twice(make_run: Any) -> None:
    run, k = make_run("vendors-in"), FakeKinetic()
    k.lose_answer["V6"] = True
    rows = post(run, k, [vendor(0, "V6", "Six")])
    assert rows[0].state == "posted" and rows[0].erp_keys["created"] is True
    assert [r["VendorID"] for r in k.rows["Vendors"]] == ["V6"]
    assert [c for c in k.calls if c[0].startswith("Update")] == [("Update A", "V6")]


def test_lost_answer_that_did_not_land_ends_unknown_for_the_next_run(make_run: Any) -> None:
    run, k = make_run("vendors-in"), FakeKinetic()
    k.lose_answer["V7"] = False  # every try: the recipe's budget runs out
    rows = post(run, k, [vendor(0, "V7", "Seven")])
    assert rows[0].state == "unknown" and "no answer" in (rows[0].error or "")
    assert k.rows["Vendors"] == []
    assert run.result.counts == {"records_unknown": 1}


def test_unreachable_kinetic_stops_the_batch_and_leaves_the_rest_sending(make_run: Any) -> None:
    run, k = make_run("vendors-in", concurrency=1), FakeKinetic()
    k.refuse["V8"] = ConnectError("connection refused")
    records = [vendor(0, "V0", "done first"), vendor(1, "V8", "x"), vendor(2, "V9", "never sent")]
    f = _file(run, records)
    with pytest.raises(ConnectError):
        asyncio.run(posting.post_batch(run, k, f, records))
    states = {r.idx: r.state for r in run.ledger.records(f.id)}
    assert states == {0: "posted", 1: "sending", 2: "sending"}  # settled by lookup next run
    assert ("Update A", "V9") not in k.calls


def test_lookup_error_fails_the_record_without_a_call(make_run: Any) -> None:
    run, k = make_run("vendors-in"), FakeKinetic()
    advice = PaymentAdvice(
        trace_number="VL", payment_date=None, amount=Decimal("1"), handling="I", method="CHK", credit_debit="C",
        currency=None, payer_name=None, payer_id=None, payee_name="ACME", payee_id=None, set_control="0001",
        lookup_errors=["customer 'ACME' matches 2 records"],
    )  # fmt: skip
    rec = Parsed(0, "ST 0001", advice, None, "VL")
    rows = post(run, k, [rec, Parsed(1, "line 3", None, "line 3: Name is too long")])
    assert rows[0].state == "failed" and "matches 2 records" in (rows[0].error or "")
    assert rows[1].state == "failed" and "too long" in (rows[1].error or "")
    assert not [c for c in k.calls if c[0].startswith(("Update", "GetNew"))]


def test_posted_invoice_is_refused_before_anything_is_sent(make_run: Any) -> None:
    run, k = make_run("invoices-in"), FakeKinetic()
    v = k.add_vendor("V1")
    k.rows["APInvoices"].append({"VendorNum": v["VendorNum"], "InvoiceNum": "INV-1", "Posted": True, "SysRevID": 3})
    rec = Parsed(0, "line 2", {"VendorNumVendorID": "V1", "InvoiceNum": "INV-1", "InvoiceAmt": "10.00"}, None,
                 "V1|INV-1")  # fmt: skip
    rows = post(run, k, [rec])
    assert rows[0].state == "failed" and "already posted" in (rows[0].error or "")
    assert [c[0] for c in k.calls if c[1] == "APInvoices"] == ["query_all", "GetByID"]  # read, never written
