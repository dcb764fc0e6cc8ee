"""Inbound runs end to end: partner files on OpenSSH sshd -> records in the sandbox over HTTP."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.acks import build_997
from ml_connector.formats.x12.remit820 import Payment, RemittanceLine, payment_to_820
from ml_connector.formats.x12.writer import Envelope, X12Writer

from .conftest import Env

VENDORS_IN = """
vendors-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.csv"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  min_age_seconds: 1
  format: {type: csv}
"""
VENDOR_HEADER = "VendorID,Name,City,State,TermsCode\r\n"


def vendor_csv(*rows: str) -> str:
    return VENDOR_HEADER + "".join(r + "\r\n" for r in rows)


def x12_820(
    payments: list[Payment], *, isa13: int = 101, sender: str = "PAYER01", receiver: str = "MLCONNECTOR"
) -> str:
    env = Envelope(sender_id=sender, receiver_id=receiver)
    out = io.StringIO()
    w = X12Writer(out, env)
    when = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    w.begin_interchange(isa13, when)
    w.begin_group("RA", isa13, when)
    for n, p in enumerate(payments, 1):
        w.write_set("820", n, payment_to_820(p, "004010", when))
    w.end_group()
    w.end_interchange()
    return out.getvalue()


def payment(trace: str, lines: list[tuple[str, str]], payee_id: str | None = None) -> Payment:
    total = sum((Decimal(a) for _, a in lines), Decimal(0))
    return Payment(trace_number=trace, payment_date=date(2026, 11, 20), amount=total, payer_name="Customer One",
                   payee_name="Epicor Demo Co", payee_id=payee_id,
                   lines=tuple(RemittanceLine(i, Decimal(a)) for i, a in lines))  # fmt: skip


def test_vendor_csv_creates_and_updates_then_archives(env: Env) -> None:
    env.flows(VENDORS_IN)
    env.drop("vendors-1.csv", vendor_csv("V0002,Contoso Metals Updated,Dallas,TX,N30", "NEW001,New Vendor One,Austin,TX,N30",
                                         "NEW002,New Vendor Two,,,"))  # fmt: skip
    result = env.run("vendors-in")
    assert result.state == "succeeded", (result.error, result.files)
    assert result.counts["records_posted"] == 3
    vendors = {v["VendorID"]: v for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    assert vendors["V0002"]["Name"] == "Contoso Metals Updated" and vendors["V0002"]["City"] == "Dallas"
    assert vendors["NEW001"]["City"] == "Austin" and "NEW002" in vendors
    assert vendors["NEW002"]["Name"] == "New Vendor Two"
    assert len(vendors) == 14
    assert env.names("inbound") == [] and env.names("archive") == ["vendors-1.csv"]
    (f,) = env.store.ledger.files(flow="vendors-in")
    assert f.state == "done" and f.sha256
    records = env.store.ledger.records(f.id)
    assert [r.state for r in records] == ["posted"] * 3 and records[0].position == "line 2"
    assert records[1].erp_keys["created"] is True and records[0].erp_keys["created"] is False

    # the same bytes again under another name: a duplicate, not a second posting
    env.drop("vendors-1-again.csv", (env.local("archive") / "vendors-1.csv").read_bytes())
    again = env.run("vendors-in")
    assert again.counts.get("files_duplicate") == 1 and again.counts.get("records_posted", 0) == 0
    assert env.store.audit.query(run_id=again.run_id, kind="alert.duplicate_file")
    assert len(env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")) == 14


def test_malformed_files_go_to_the_error_folder_and_the_rest_is_processed(env: Env) -> None:
    env.flows(
        VENDORS_IN
        + """
vendors-fw-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.txt"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  format: {type: fixed-width}
"""
    )
    env.drop("a-good.csv", vendor_csv("GOOD01,Good Vendor,Reno,NV,N30"))
    env.drop("b-bad.csv", vendor_csv("BAD001,Bad Vendor,Reno,NV,N30", 'BAD002,"unterminated,Reno,NV,N30'))
    env.drop("c-empty-id.csv", vendor_csv(",No Id,Reno,NV,N30"))
    result = env.run("vendors-in")
    assert result.state == "partial" and result.exit_code == 1
    assert env.names("archive") == ["a-good.csv"]
    assert sorted(env.names("error")) == ["b-bad.csv", "b-bad.csv.error.json", "c-empty-id.csv",
                                          "c-empty-id.csv.error.json"]  # fmt: skip
    sidecar = json.loads((env.local("error") / "c-empty-id.csv.error.json").read_text())
    assert (
        sidecar["problems"][0]["where"] == "c-empty-id.csv: line 2" and "VendorID" in sidecar["problems"][0]["message"]
    )
    bad = json.loads((env.local("error") / "b-bad.csv.error.json").read_text())
    assert "b-bad.csv" in bad["reason"] and "line 3" in json.dumps(bad["problems"])
    vendors = {v["VendorID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    assert "GOOD01" in vendors and "BAD001" not in vendors  # a rejected file posts nothing

    fw_line = "FW0001  " + "Fixed Width Vendor".ljust(50) + "Boise".ljust(30) + "ID" + "83702".ljust(10) + "N30 "
    env.drop("d-good.txt", fw_line + "\r\n")
    env.drop("e-short.txt", fw_line + "\r\n" + "FW0002  short\r\n\xff\xfe".encode("latin-1").decode("latin-1"))
    fw = env.run("vendors-fw-in")
    assert fw.counts.get("files_done") == 1 and fw.counts.get("files_error") == 1
    vendors = {v["VendorID"]: v for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    assert vendors["FW0001"]["City"] == "Boise" and vendors["FW0001"]["ZIP"] == "83702"
    side = json.loads((env.local("error") / "e-short.txt.error.json").read_text())
    assert "e-short.txt" in json.dumps(side) and "line" in json.dumps(side["problems"])


# 820 remittance -> cash receipts, with 997s in /acks (test_poison uses it too).
REMIT_IN = """
remit-in:
  direction: inbound
  epicor: kinetic
  entity: cash-receipts
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.820"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  ack_folder: "{base}/acks"
  settle_seconds: 0
  constants: {GroupID: CASH01}
  format: {type: x12, set: "820"}
"""


def test_820_to_cash_receipts_with_997_and_duplicate_isa13(env: Env) -> None:
    env.flows(REMIT_IN)
    # One receipt pays one customer's invoices (1001 and 1005 are customer 2's in the seed).
    good = x12_820([payment("CHK-9001", [("1001", "100.00"), ("1005", "50.00")]),
                    payment("CHK-9002", [("1003", "75.25")])])  # fmt: skip
    env.drop("remit-1.820", good)
    result = env.run("remit-in")
    assert result.state == "succeeded", (result.error, result.files)
    receipts = env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc")
    assert sorted(r["CheckRef"] for r in receipts) == ["CHK-9001", "CHK-9002"]
    dtls = env.kinetic_rows("CashDtls", "Erp.BO.CashRecSvc")
    assert sorted((d["InvoiceNum"], Decimal(d["TranAmt"])) for d in dtls) == [
        (1001, Decimal("100")), (1003, Decimal("75.25")), (1005, Decimal("50"))]  # fmt: skip
    (ack_name,) = env.names("acks")
    sets, reader = read_x12((env.local("acks") / ack_name).read_bytes())
    assert sets[0].id == "997" and reader.interchanges[0].receiver == ("ZZ", "PAYER01")
    assert next(s for s in sets[0].segments if s[0] == "AK9")[:5] == ["AK9", "A", "2", "2", "2"]

    # the same interchange number again from the same sender: TA1 025, nothing posted
    env.drop("remit-1-resent.820", good.replace("CHK-9001", "CHK-9009"))
    dup = env.run("remit-in")
    assert dup.counts.get("files_duplicate") == 1
    assert len(env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc")) == 2
    ta1 = [n for n in env.names("acks") if n.endswith(".ta1")]
    assert ta1 and "TA1*000000101*" in (env.local("acks") / ta1[0]).read_text()
    assert "*R*025" in (env.local("acks") / ta1[0]).read_text()
    assert "remit-1-resent.820.error.json" in env.names("error")


def test_820_with_a_bad_set_rejects_that_set_in_the_997_and_posts_the_rest(env: Env) -> None:
    env.flows("""
    remit-in:
      direction: inbound
      epicor: kinetic
      entity: cash-receipts
      sftp: sftp
      folder: "{base}/inbound"
      archive_folder: "{base}/archive"
      error_folder: "{base}/error"
      ack_folder: "{base}/acks"
      settle_seconds: 0
      constants: {GroupID: CASH01}
      format: {type: x12}
    """)
    text = x12_820([payment("CHK-7001", [("1004", "10.00")]), payment("CHK-7002", [("1005", "20.00")])], isa13=202)
    text = text.replace("RMR*IV*1005*PI*20", "RMR*IV*1005*PI*2O")  # a letter O in an amount: AK4 code 6
    env.drop("remit-2.820", text)
    result = env.run("remit-in")
    assert result.state == "partial"
    assert [r["CheckRef"] for r in env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc")] == ["CHK-7001"]
    (ack,) = [n for n in env.names("acks") if n.endswith(".997")]
    ack_text = (env.local("acks") / ack).read_text()
    assert "AK5*R" in ack_text and "AK9*P*2*2*1" in ack_text
    assert "remit-2.820.error.json" in env.names("error")
    side = json.loads((env.local("error") / "remit-2.820.error.json").read_text())
    assert "set 820 0002" in side["problems"][0]["where"] and "RMR" in side["problems"][0]["message"]


def test_unreadable_x12_gets_a_sidecar(env: Env) -> None:
    env.flows("""
    remit-in:
      direction: inbound
      epicor: kinetic
      entity: cash-receipts
      sftp: sftp
      folder: "{base}/inbound"
      error_folder: "{base}/error"
      ack_folder: "{base}/acks"
      settle_seconds: 0
      constants: {GroupID: CASH01}
      format: {type: x12}
    """)
    env.drop("garbage.820", "this is not X12 at all\n")
    result = env.run("remit-in")
    assert result.counts.get("files_error") == 1 and result.exit_code == 1
    side = json.loads((env.local("error") / "garbage.820.error.json").read_text())
    assert "garbage.820" in side["reason"] and "ISA" in side["reason"]


def test_820_to_ap_payments_and_partner_997_marks_our_outbound_file(env: Env) -> None:
    env.kinetic.sandbox.generate_payments(2, vendor_num=5)
    env.flows("""
    payments-in:
      direction: inbound
      epicor: kinetic
      entity: ap-payments
      sftp: sftp
      folder: "{base}/inbound"
      pattern: "*.820"
      archive_folder: "{base}/archive"
      ack_folder: "{base}/acks"
      settle_seconds: 0
      constants: {GroupID: CHK01}
      format: {type: x12}
    payments-out:
      direction: outbound
      epicor: kinetic
      entity: ap-payments
      sftp: sftp
      folder: "{base}/outbound"
      filename: "remit_{run}.820"
      format: {type: x12, partner: {sender_id: DEMOCO, receiver_id: BANK01}}
    acks-in:
      direction: inbound
      epicor: kinetic
      entity: acknowledgments
      sftp: sftp
      folder: "{base}/inbound"
      pattern: "*.997"
      archive_folder: "{base}/archive"
      settle_seconds: 0
      format: {type: x12, set: "997"}
    """)
    env.drop("bank.820", x12_820([payment("30001", [("INV-005-1", "10.00")], payee_id="V0005")], isa13=303))
    result = env.run("payments-in")
    assert result.state == "succeeded", (result.error, result.files)
    heads = env.kinetic_rows("PaymentEntries", "Erp.BO.PaymentEntrySvc", "CheckNum eq 30001")
    assert len(heads) == 1 and heads[0]["VendorNum"] == 5
    trans = env.kinetic_rows("APTrans", "Erp.BO.PaymentEntrySvc", f"HeadNum eq {heads[0]['HeadNum']}")
    assert [(t["InvoiceNum"], Decimal(t["TranAmt"])) for t in trans] == [("INV-005-1", Decimal("10"))]

    out = env.run("payments-out")
    assert out.state == "succeeded", out.error
    (sent,) = env.names("outbound")
    _, reader = read_x12((env.local("outbound") / sent).read_bytes())
    plan = build_997(reader.interchanges[0], isa13=77, gs06=77, st02_start=1, when=datetime.now(UTC))
    assert plan.text is not None
    env.drop("from-bank.997", plan.text)
    acks = env.run("acks-in")
    assert acks.state == "succeeded", (acks.error, acks.files)
    (outbound_file,) = env.store.ledger.files(flow="payments-out")
    assert outbound_file.details["ack"] == "accepted"

    # a 997 for an interchange we never sent is a failed record, not a silent pass
    other = build_997(reader.interchanges[0], isa13=78, gs06=78, st02_start=1, when=datetime.now(UTC)).text
    assert other is not None and "AK1*RA*1~" in other
    env.drop("stranger.997", other.replace("AK1*RA*1~", "AK1*RA*9999~"))
    stranger = env.run("acks-in")
    assert stranger.counts.get("records_failed", 0) >= 1


def test_invoice_confirmations_csv_to_ap_invoices(env: Env) -> None:
    env.flows("""
    invoices-in:
      direction: inbound
      epicor: kinetic
      entity: ap-invoices
      sftp: sftp
      folder: "{base}/inbound"
      archive_folder: "{base}/archive"
      error_folder: "{base}/error"
      settle_seconds: 0
      on_bad_records: skip-records
      constants: {GroupID: SEED01}
      format: {type: csv}
    """)
    env.kinetic.sandbox.mark_posted("APInvHed", {"VendorNum": 2, "InvoiceNum": "INV-002-1"}, posted=False)
    env.drop("confirmations.csv", "VendorID,InvoiceNum,InvoiceDate,DueDate,InvoiceAmt,Description\r\n"
                                  "V0001,NW-1,2026-11-20,2026-12-20,1250.00,Freight\r\n"
                                  "V0002,INV-002-1,2026-10-01,2026-10-31,1324.00,Updated description\r\n"
                                  "NOSUCH,X-1,2026-11-20,2026-12-20,10.00,Unknown vendor\r\n")  # fmt: skip
    result = env.run("invoices-in")
    assert result.counts["records_posted"] == 2 and result.counts["records_failed"] == 1
    rows = {(r["VendorNum"], r["InvoiceNum"]): r for r in env.kinetic_rows("APInvoices", "Erp.BO.APInvoiceSvc")}
    # The file's amount is the control amount (ChangeInvoiceVendorAmt); Kinetic sums InvoiceAmt from lines.
    nw1 = rows[(1, "NW-1")]
    assert Decimal(nw1["InvoiceVendorAmt"]) == Decimal("1250") and nw1["GroupID"] == "SEED01"
    assert rows[(1, "NW-1")]["InvoiceDate"].startswith("2026-11-20")
    assert rows[(2, "INV-002-1")]["Description"] == "Updated description"
    assert len([k for k in rows if k[1] == "INV-002-1"]) == 1  # updated, not created again
    side = json.loads((env.local("error") / "confirmations.csv.error.json").read_text())
    assert "line 4" in side["problems"][0]["where"] and "NOSUCH" in side["problems"][0]["message"]
