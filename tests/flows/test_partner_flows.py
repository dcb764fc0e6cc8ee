"""Partner files as they really come, end to end: hand-written files (tests/formats/partner/) on
OpenSSH sshd -> the Kinetic sandbox over HTTP; acknowledgments read back with our strict reader."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.ack999 import IK304_CODES, IK403_CODES

from ..formats.test_partner_fixed_width import LAYOUT
from .conftest import Env

PARTNER = Path(__file__).parents[1] / "formats" / "partner"

X12_FLOW = """
{name}:
  direction: inbound
  epicor: kinetic
  entity: {entity}
  sftp: sftpkey
  folder: "{{base}}/inbound"
  pattern: "*.edi"
  archive_folder: "{{base}}/archive"
  error_folder: "{{base}}/error"
  ack_folder: "{{base}}/acks"
  settle_seconds: 0
  constants: {{GroupID: {group}}}
  format: {format}
"""


def key_auth(env: Env) -> Env:
    """An SFTP connection by private key: the shared sshd's password is reset by every test session
    that starts one on this machine, the per-session authorized key is not."""
    if "sftpkey" not in [c.name for c in env.store.connections.list()]:
        env.store.connections.add("sftpkey", env.target.settings(use_key=True), env.keyring)
    return env


def x12_flow(name: str, entity: str, fmt: str, group: str = "CASH01") -> str:
    return X12_FLOW.format(name=name, entity=entity, format=fmt, group=group)


def drop_partner(env: Env, name: str) -> None:
    env.drop(name, (PARTNER / name).read_bytes())


def ack_segments(env: Env, suffix: str) -> list[list[str]]:
    (name,) = [n for n in env.names("acks") if n.endswith(suffix)]
    sets, reader = read_x12((env.local("acks") / name).read_bytes(), name=name)
    assert reader.findings == [], [str(f) for f in reader.findings]
    return [s for ts in sets for s in ts.segments]


def sidecar(env: Env, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((env.local("error") / f"{name}.error.json").read_text())
    return data


def test_shifted_n1_is_rejected_with_ak4_and_nothing_is_posted(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(x12_flow("pay-in", "ap-payments", "{type: x12}", "CHK01"))
    drop_partner(env, "820_n1_shifted.edi")
    result = env.run("pay-in")
    assert result.state == "partial" and result.exit_code == 1
    assert env.kinetic_rows("PaymentEntries", "Erp.BO.PaymentEntrySvc", "CheckNum eq 5001") == []
    assert "820_n1_shifted.edi" in env.names("error")
    side = sidecar(env, "820_n1_shifted.edi")
    text = json.dumps(side)
    assert "N103 'DISTRIBUTION' is 12 long, maximum 2" in text and "set 820 0001" in text
    segs = ack_segments(env, ".997")
    assert [s for s in segs if s[0] in ("AK3", "AK4", "AK5", "AK9")] == [
        ["AK3", "N1", "7", "", "8"],
        ["AK4", "3", "66", "5", "DISTRIBUTION"],
        ["AK4", "5", "706", "5", "DISTRIB01"],
        ["AK5", "R", "5"],
        ["AK9", "R", "1", "1", "0"],
    ]


def test_invoice_numbers_like_inv_1001_are_mapped_and_posted(env: Env) -> None:
    key_auth(env)
    env.flows(
        x12_flow(
            "cash-in",
            "cash-receipts",
            '{type: x12, mapping: {InvoiceNum: {source: RMR02, extract: "^INV-(\\\\d+)$"}, CheckRef: {source: REF.CK}}}',
        )
    )
    drop_partner(env, "820_invoice_prefix.edi")
    result = env.run("cash-in")
    assert result.state == "succeeded", (result.error, result.files)
    (receipt,) = env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq '45521'")
    dtls = env.kinetic_rows("CashDtls", "Erp.BO.CashRecSvc", f"HeadNum eq {receipt['HeadNum']}")
    assert sorted((d["InvoiceNum"], Decimal(d["TranAmt"])) for d in dtls) == [
        (1001, Decimal("125.5")),
        (1005, Decimal("100")),
    ]
    segs = ack_segments(env, ".997")
    assert [s for s in segs if s[0] in ("AK5", "AK9")] == [["AK5", "A"], ["AK9", "A", "1", "1", "1"]]


def test_amount_mismatch_rejects_payments_by_default_and_warns_when_told(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(x12_flow("cash-in", "cash-receipts", "{type: x12}"))
    drop_partner(env, "820_amount_mismatch.edi")
    result = env.run("cash-in")
    assert result.exit_code == 1 and "820_amount_mismatch.edi" in env.names("error")
    text = json.dumps(sidecar(env, "820_amount_mismatch.edi"))
    assert "BPR02 250 differs from the sum of RMR04 150 by 100 (on_amount_mismatch: reject)" in text
    events = env.store.audit.query(flow="cash-in", kind="x12.amount_mismatch")
    assert [(e.outcome, e.details["policy"]) for e in events] == [("error", "reject")]
    assert env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq '00045522'") == []

    env.flows(x12_flow("cash-warn", "cash-receipts", "{type: x12, on_amount_mismatch: warn}"))
    env.drop("again.edi", (PARTNER / "820_amount_mismatch.edi").read_bytes().replace(b"000000522", b"000000523"))
    warned = env.run("cash-warn")
    assert warned.state == "succeeded", (warned.error, warned.files)
    events = env.store.audit.query(flow="cash-warn", kind="x12.amount_mismatch")
    assert [(e.outcome, e.details["difference"]) for e in events] == [("warning", "100")]
    assert len(env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq '00045522'")) == 1


def test_a_resent_interchange_is_a_rejected_file_and_exits_1(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(x12_flow("cash-in", "cash-receipts", "{type: x12}"))
    drop_partner(env, "820_invoice_prefix.edi")
    first = env.run("cash-in")
    assert first.exit_code == 1  # INV-1001 is not numeric without a mapping: those lines fail
    env.drop("resent.edi", (PARTNER / "820_invoice_prefix.edi").read_bytes().replace(b"00045521", b"00045599"))
    again = env.run("cash-in")
    assert again.state == "partial" and again.exit_code == 1
    assert again.counts.get("files_duplicate") == 1 and again.counts.get("files_error") == 1
    assert [f["state"] for f in again.files] == ["duplicate"] and "TA1 025" in again.files[0]["reason"]
    ta1 = [n for n in env.names("acks") if n.startswith("resent.edi") and n.endswith(".ta1")]
    _, reader = read_x12((env.local("acks") / ta1[0]).read_bytes())
    assert reader.findings == [] and reader.interchanges[0].ta1[0][1:] == ["000000521", "261121", "0815", "R", "025"]
    assert "resent.edi.error.json" in env.names("error")


def test_999_for_a_5010_partner(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(x12_flow("cash-5010", "cash-receipts", '{type: x12, version: "005010", ack: "999"}'))
    drop_partner(env, "820_5010_two_sets.edi")
    result = env.run("cash-5010")
    assert result.exit_code == 1  # the second set is rejected
    assert len(env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq 'GLX-2026-00077'")) == 1
    assert env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq 'GLX-2026-00078'") == []
    assert not [n for n in env.names("acks") if n.endswith(".997")]
    segs = ack_segments(env, ".999")
    assert segs[0][:4] == ["ST", "999", "0001", "005010X231A1"]
    for s in segs:
        if s[0] == "IK3":
            assert s[4] in IK304_CODES
        if s[0] == "IK4":
            assert s[3] in IK403_CODES
    assert [s[:3] for s in segs if s[0] in ("IK3", "IK4")] == [["IK3", "RMR", "7"], ["IK4", "4", "782"],
                                                              ["IK3", "DTM", "8"], ["IK4", "2", "373"]]  # fmt: skip
    assert [s for s in segs if s[0] in ("IK5", "AK9")] == [["IK5", "A"], ["IK5", "R", "5"], ["AK9", "P", "2", "2", "1"]]


def test_vendor_found_by_name_in_kinetic(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(
        x12_flow(
            "pay-in", "ap-payments",
            "{type: x12, mapping: {VendorID: {source: N1.PE.N102, find: {by: Name}}}}", "CHK01",
        )
    )  # fmt: skip
    drop_partner(env, "820_payee_by_name.edi")
    result = env.run("pay-in")
    assert result.exit_code == 1  # the second payee is no vendor of ours
    (head,) = env.kinetic_rows("PaymentEntries", "Erp.BO.PaymentEntrySvc", "CheckNum eq 40021")
    assert head["VendorNum"] == 2  # Contoso Metals is V0002 in the sandbox seed
    assert env.kinetic_rows("PaymentEntries", "Erp.BO.PaymentEntrySvc", "CheckNum eq 40022") == []
    failed = env.store.ledger.records(result.files[0]["id"], ["failed"])
    assert len(failed) == 1 and "VendorID 'Unknown Supplier Ltd': no Kinetic records have Name" in (
        failed[0].error or ""
    )


def test_dry_run_on_a_local_file_shows_the_payment_and_the_997(sqlite_env: Env, tmp_path: Path) -> None:
    env = key_auth(sqlite_env)
    # connection names that do not exist: any attempt to reach SFTP or Kinetic would fail the run
    env.flows(
        x12_flow("cash-in", "cash-receipts", '{type: x12, mapping: {InvoiceNum: {source: RMR02, extract: "(\\\\d+)"}}}')
        .replace("epicor: kinetic", "epicor: nowhere")
        .replace("sftp: sftpkey", "sftp: nowhere")
    )
    sample = tmp_path / "sample.edi"
    sample.write_bytes((PARTNER / "820_invoice_prefix.edi").read_bytes())
    proc = subprocess.run(env.cli_argv("run", "cash-in", "--dry-run", "--file", str(sample)), capture_output=True,
                          text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "trace 00045521  CHK 225.5 " in out
    assert "payer NORTHWIND TRADERS ACCOUNTS PAYABLE" in out and "payee EPICOR DEMO CO (FI 361234567)" in out
    assert "IV 1001: paid 125.5 invoice_amount 130 discount 4.5" in out and "IV 1005: paid 100" in out
    assert "acknowledgment that would be sent for sample.edi:" in out and "AK5*A~" in out
    assert env.store.ledger.files(flow="cash-in") == [] and env.store.audit.query(flow="cash-in") == []
    assert env.names("acks") == [] and env.names("inbound") == []

    bad = subprocess.run(env.cli_argv("run", "cash-in", "--file", str(sample)), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--dry-run" in bad.stdout + bad.stderr


FW_FLOW = """
batch-in:
  direction: inbound
  epicor: kinetic
  entity: ap-invoices
  sftp: sftpkey
  folder: "{base}/inbound"
  pattern: "ap_invoices_*.txt"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  constants: {GroupID: SEED01}
  format: LAYOUT
""".replace("LAYOUT", json.dumps(LAYOUT))


def test_fixed_width_batch_with_header_and_trailer(env: Env) -> None:
    key_auth(env)
    env.flows(FW_FLOW)
    drop_partner(env, "ap_invoices_batch.txt")
    drop_partner(env, "ap_invoices_bad_count.txt")
    result = env.run("batch-in")
    assert result.exit_code == 1  # the bad batch
    rows = env.kinetic_rows("APInvoices", "Erp.BO.APInvoiceSvc", "InvoiceNum eq 'NW-88001' or InvoiceNum eq 'CM-88003'")
    # The file's amount is the control amount (ChangeInvoiceVendorAmt); Kinetic sums InvoiceAmt from lines.
    assert sorted((r["InvoiceNum"], Decimal(r["InvoiceVendorAmt"]), r["InvoiceDate"][:10]) for r in rows) == [
        ("CM-88003", Decimal("-25"), "2026-11-20"),
        ("NW-88001", Decimal("1250.5"), "2026-11-20"),
    ]
    assert "ap_invoices_batch.txt" in env.names("archive")
    side = sidecar(env, "ap_invoices_bad_count.txt")
    assert "line 5 (trailer T): RecordCount says 4 detail records, the file has 3" in str(side["reason"])


VENDORS_FW_OUT = """
vendors-fw:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftpkey
  folder: "{base}/outbound"
  filename: "vendors_{run}.txt"
  format:
    type: fixed-width
    line_ending: "\\n"
    record_type: {field: RecordType, start: 1, length: 1}
    records:
      - code: H
        role: header
        columns:
          - {field: FileDate, start: 2, length: 8, type: date, format: "%Y%m%d"}
          - {field: Sender, start: 10, length: 10, value: EPICORDEMO}
      - code: D
        columns:
          - {field: VendorID, start: 2, length: 8}
          - {field: Name, start: 10, length: 30}
      - code: T
        role: trailer
        count_field: Count
        columns:
          - {field: Count, start: 2, length: 6, type: int, align: right, pad: "0"}
"""


def test_outbound_fixed_width_writes_header_and_trailer_counts(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(VENDORS_FW_OUT)
    result = env.run("vendors-fw")
    assert result.state == "succeeded", result.error
    (name,) = env.names("outbound")
    lines = (env.local("outbound") / name).read_text().splitlines()
    details = [ln for ln in lines if ln.startswith("D")]
    assert lines[0][0] == "H" and lines[0][9:19] == "EPICORDEMO" and lines[0][1:9].isdigit()
    assert lines[-1] == f"T{len(details):06d}" and len(details) == result.counts["records"] >= 12
    assert details[0].startswith("DV0001   Northwind Supply")
    # what we wrote reads back with the same layout: header/trailer checked, details only
    from ml_connector.config import FixedWidthFormat
    from ml_connector.formats.fixedwidth import FixedWidthReader
    from ml_connector.mapping import resolve_format

    flow = env.flows(VENDORS_FW_OUT)["vendors-fw"]
    fmt = resolve_format(flow)
    assert isinstance(fmt, FixedWidthFormat)
    with (env.local("outbound") / name).open("rb") as fh:
        reader = FixedWidthReader(fh, fmt, name)
        assert [r.values["VendorID"] for r in reader][:2] == ["V0001", "V0002"]
    assert reader.trailer == {"Count": len(details)}


def test_a_value_the_mapping_cannot_extract_fails_that_payment_with_its_place(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(
        x12_flow(
            "cash-in", "cash-receipts", '{type: x12, mapping: {InvoiceNum: {source: RMR02, extract: "^CM-(\\\\d+)$"}}}'
        )
    )
    drop_partner(env, "820_invoice_prefix.edi")
    result = env.run("cash-in")
    assert result.exit_code == 1 and "820_invoice_prefix.edi" in env.names("error")
    text = json.dumps(sidecar(env, "820_invoice_prefix.edi"))
    assert "RMR at position 12" in text and "'INV-1001' does not match extract" in text
    assert env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc", "CheckRef eq '00045521'") == []
    # the 997 is about syntax: the set itself was fine
    assert [s for s in ack_segments(env, ".997") if s[0] == "AK5"] == [["AK5", "A"]]


def test_dry_run_sample_for_a_fixed_width_flow(sqlite_env: Env) -> None:
    import asyncio

    from ml_connector.flows import run_flow

    env = key_auth(sqlite_env)
    flows = env.flows(FW_FLOW)
    bad = asyncio.run(run_flow(env.context(), "batch-in", flows["batch-in"], dry_run=True,
                               sample=PARTNER / "ap_invoices_bad_total.txt"))  # fmt: skip
    assert bad.state == "dry-run" and "TotalAmount says" in bad.files[0]["error"]
    good = asyncio.run(run_flow(env.context(), "batch-in", flows["batch-in"], dry_run=True,
                                sample=PARTNER / "ap_invoices_batch.txt"))  # fmt: skip
    assert good.files[0]["records"] == 3 and good.preview[0]["InvoiceNum"] == "NW-88001"
    assert good.preview[0]["InvoiceDate"] == "2026-11-20T00:00:00"
    assert env.store.ledger.files(flow="batch-in") == []


def test_partner_policy_accept_notes_errors_and_never_posts_a_shifted_payee(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(x12_flow("pay-in", "ap-payments", "{type: x12, on_element_error: accept}", "CHK01"))
    drop_partner(env, "820_n1_shifted.edi")
    result = env.run("pay-in")
    assert result.exit_code == 1
    # accepted with errors noted: the 997 says E and lists the element errors
    segs = ack_segments(env, ".997")
    assert [s for s in segs if s[0] in ("AK4", "AK5")] == [
        ["AK4", "3", "66", "5", "DISTRIBUTION"],
        ["AK4", "5", "706", "5", "DISTRIB01"],
        ["AK5", "E", "5"],
    ]
    # ... but the faulty N1 was left out, so nothing is posted to a payee "ACME" / vendor "92"
    assert env.kinetic_rows("PaymentEntries", "Erp.BO.PaymentEntrySvc", "CheckNum eq 5001") == []
    failed = env.store.ledger.records(result.files[0]["id"], ["failed"])
    assert len(failed) == 1 and "N1*PE has no vendor id" in (failed[0].error or "")
