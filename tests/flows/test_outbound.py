"""Outbound runs end to end: sandbox over HTTP -> file -> OpenSSH sshd, checked byte for byte."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.remit820 import interpret_820
from ml_connector.kinetic.recipes import vendors

from .conftest import Env, sha256

VENDORS_CSV = """
vendors-out:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/outbound"
  filename: "vendors_{run}_{seq}.csv"
  format: {type: csv}
"""


def _csv(env: Env, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((env.local("outbound") / name).read_text())))


def test_vendors_to_csv_then_only_changes_then_nothing(env: Env) -> None:
    env.flows(VENDORS_CSV)
    first = env.run("vendors-out")
    assert first.state == "succeeded", first.error
    names = env.names("outbound")
    assert len(names) == 1 and first.counts["records"] == 12
    rows = _csv(env, names[0])
    assert [r["VendorID"] for r in rows] == [f"V{i:04d}" for i in range(1, 13)]
    assert rows[0]["Name"] == "Northwind Supply" and rows[0]["City"] == "Chicago"
    # the ledger holds what the server holds: same name, same bytes
    (delivered,) = env.store.ledger.files(flow="vendors-out", direction="outbound")
    assert delivered.state == "delivered" and delivered.sha256 == sha256(env.local("outbound") / names[0])
    assert env.store.watermarks.get("vendors-out") is not None
    flow_staging = env.home.staging / "outbound" / "vendors-out"
    assert not list(flow_staging.glob("*.out")), "no render left behind after delivery"
    kept = Path(delivered.details["kept"])  # kept for replay, byte-identical
    assert kept.parent == flow_staging / "sent" and sha256(kept) == delivered.sha256

    # a change in Kinetic: the next run sends only that vendor
    async def touch(k):  # type: ignore[no-untyped-def]
        return await vendors.upsert(k, {"VendorID": "V0003", "Name": "Fabrikam Plastics Renamed"})

    import asyncio

    from ml_connector.kinetic import KineticClient

    async def go() -> None:
        async with KineticClient(env.kinetic.settings()) as k:
            await touch(k)

    asyncio.run(go())
    second = env.run("vendors-out")
    assert second.state == "succeeded" and second.counts["records"] == 1
    new = sorted(set(env.names("outbound")) - set(names))
    assert [r["Name"] for r in _csv(env, new[0])] == ["Fabrikam Plastics Renamed"]

    # no changes: no file, one cheap query, an audit event
    before = env.kinetic.sandbox.stats.get("requests", 0) if hasattr(env.kinetic.sandbox, "stats") else None
    third = env.run("vendors-out")
    assert third.state == "succeeded" and third.counts.get("files", 0) == 0
    assert len(env.names("outbound")) == 2
    calls = env.store.audit.query(run_id=third.run_id, kind="epicor.call")
    assert len(calls) == 1 and "Vendors" in (calls[0].subject or "")
    assert env.store.audit.query(run_id=third.run_id, kind="run.no_changes")
    del before


def test_invoices_to_csv_split_by_count_and_fixed_width_vendors(env: Env) -> None:
    env.kinetic.sandbox.generate_invoices(25, vendor_num=2)
    env.flows("""
    invoices-out:
      direction: outbound
      epicor: kinetic
      entity: ap-invoices
      sftp: sftp
      folder: "{base}/outbound"
      filename: "inv_{seq}_{run}.csv"
      split_every: 10
      page_size: 7
      format:
        type: csv
        overrides:
          InvoiceAmt: {header: Amount}
        omit: [Description]
    vendors-fw:
      direction: outbound
      epicor: kinetic
      entity: vendors
      sftp: sftp
      folder: "{base}/outbound"
      filename: "vendors_{run}.txt"
      format: {type: fixed-width}
    """)
    result = env.run("invoices-out")
    assert result.state == "succeeded", result.error
    files = env.names("outbound")
    assert len(files) == 4  # 12 seeded + 25 generated = 37 invoices -> 10 + 10 + 10 + 7
    rows = [r for name in files for r in _csv(env, name)]
    assert len(rows) == 37 and len({(r["VendorID"], r["InvoiceNum"]) for r in rows}) == 37
    assert "Amount" in rows[0] and "Description" not in rows[0]
    assert {r["Amount"] for r in rows if r["InvoiceNum"].startswith("GEN")} == {"100.00"}
    # the watermark moved file by file: one watermark, four delivered files, all recorded
    delivered = env.store.ledger.files(flow="invoices-out")
    assert [f.details["records"] for f in delivered] == [10, 10, 10, 7]

    fw = env.run("vendors-fw")
    assert fw.state == "succeeded", fw.error
    (txt,) = [n for n in env.names("outbound") if n.endswith(".txt")]
    lines = (env.local("outbound") / txt).read_text().splitlines()
    assert len(lines) == 12 and lines[0][:8] == "V0001   " and lines[0][8:24] == "Northwind Supply"
    assert lines[0][58:65] == "Chicago" and lines[0][88:90] == "IL"


def test_payments_to_x12_820_with_persisted_control_numbers(env: Env) -> None:
    env.kinetic.sandbox.generate_payments(3, vendor_num=4)
    env.flows("""
    payments-out:
      direction: outbound
      epicor: kinetic
      entity: ap-payments
      sftp: sftp
      folder: "{base}/outbound"
      filename: "remit_{run}.820"
      constants: {payer_name: "Epicor Demo Co", method: ACH}
      format:
        type: x12
        partner: {sender_id: DEMOCO, receiver_id: BANK01}
    """)
    result = env.run("payments-out")
    assert result.state == "succeeded", result.error
    (name,) = env.names("outbound")
    sets, reader = read_x12((env.local("outbound") / name).read_bytes())
    assert not [f for f in reader.findings if f.severity == "error"], reader.findings
    assert len(sets) == 3
    advice, _ = interpret_820(sets[0])
    assert advice is not None and advice.amount == Decimal("100.00") and advice.method == "ACH"
    assert advice.payer_name == "Epicor Demo Co" and advice.payee_id == "V0004"
    assert next(ln.invoice_num for ln in advice.lines).startswith("GEN")
    ic = reader.interchanges[0]
    assert ic.control_number == "000000001" and ic.sender == ("ZZ", "DEMOCO")

    # the next payment gets the next control numbers, from the store
    env.kinetic.sandbox.generate_payments(1, vendor_num=4)
    env.run("payments-out")
    second = sorted(set(env.names("outbound")) - {name})[0]
    _, reader2 = read_x12((env.local("outbound") / second).read_bytes())
    assert reader2.interchanges[0].control_number == "000000002"
    assert reader2.interchanges[0].groups[0].control_number == "2"
    assert env.store.ledger.interchange("outbound", "ZZ:DEMOCO", "ZZ:BANK01", "000000002") is not None


def test_dry_run_changes_nothing(env: Env) -> None:
    env.flows(VENDORS_CSV)
    result = env.run("vendors-out", dry_run=True)
    assert result.state == "dry-run" and result.counts["records"] == 12
    assert result.preview and result.preview[0]["VendorID"] == "V0001"
    assert env.names("outbound") == []
    assert env.store.watermarks.get("vendors-out") is None
    assert env.store.ledger.files(flow="vendors-out") == [] and env.store.ledger.runs("vendors-out") == []


def test_a_record_that_cannot_be_rendered_stops_the_watermark_before_it(env: Env) -> None:
    env.flows("""
    vendors-lookup:
      direction: outbound
      epicor: kinetic
      entity: vendors
      sftp: sftp
      folder: "{base}/outbound"
      filename: "v_{run}.csv"
      format:
        type: csv
        columns:
          - {field: VendorID}
          - {field: TermsCode, lookup: {N30: NET30, N45: NET45}}
    """)
    result = env.run("vendors-lookup")
    assert result.state == "failed" and result.exit_code == 1
    assert "TermsCode" in (result.error or "") and "not in the lookup table" in (result.error or "")
    # vendor 1 (N30) and 2 (N45?) went out before the bad one; the watermark stops before it
    files = env.names("outbound")
    sent = [r["VendorID"] for name in files for r in _csv(env, name)]
    again = env.run("vendors-lookup")
    assert again.state == "failed"
    resent = [r["VendorID"] for name in set(env.names("outbound")) - set(files) for r in _csv(env, name)]
    assert not set(sent) & set(resent), "records before the bad one are not sent twice"
