"""Flow runs against the strict sandbox where Kinetic refuses: a posted record, a denied service.

Embedded SFTP server (the OpenSSH runs are in test_inbound.py): these are about Kinetic's answers.
"""

from __future__ import annotations

import json

from .conftest import Env
from .test_inbound import VENDORS_IN, payment, vendor_csv, x12_820

INVOICES_IN = """
invoices-in:
  direction: inbound
  epicor: kinetic
  entity: ap-invoices
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.csv"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  on_bad_records: skip-records
  constants: {GroupID: SEED01}
  format: {type: csv}
"""
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
  settle_seconds: 0
  constants: {GroupID: CASH01}
  format: {type: x12, set: "820"}
"""


def test_a_posted_invoice_fails_its_record_only_and_is_not_retried(embedded_env: Env) -> None:
    env = embedded_env
    env.flows(INVOICES_IN)
    env.drop("confirmations.csv", "VendorID,InvoiceNum,InvoiceDate,InvoiceAmt,Description\r\n"
                                  "V0001,INV-001-1,2026-10-01,1137.00,Late change to a posted invoice\r\n"
                                  "V0001,NW-77,2026-11-20,10.00,New one\r\n")  # fmt: skip
    result = env.run("invoices-in")
    assert result.counts["records_posted"] == 1 and result.counts["records_failed"] == 1
    (f,) = env.store.ledger.files(flow="invoices-in")
    failed = [r for r in env.store.ledger.records(f.id) if r.state == "failed"]
    assert len(failed) == 1 and "already posted in Kinetic" in (failed[0].error or "")
    assert env.kinetic.sandbox.calls.get("GET GetByID", 0) >= 1  # read, found posted, nothing written
    side = json.loads((env.local("error") / "confirmations.csv.error.json").read_text())
    assert "line 2" in side["problems"][0]["where"] and "already posted" in side["problems"][0]["message"]
    again = env.run("invoices-in")  # nothing left open: the posted record is not retried
    assert again.counts.get("records_failed", 0) == 0 and again.counts.get("records_posted", 0) == 0


def test_a_service_outside_the_keys_scope_fails_only_the_flow_that_uses_it(embedded_env: Env) -> None:
    env = embedded_env
    env.kinetic.sandbox.options.denied_services = ["Erp.BO.CashRecSvc", "Erp.BO.ARInvoiceSvc"]
    env.flows(VENDORS_IN + REMIT_IN)
    env.drop("vendors-1.csv", vendor_csv("NEW001,New Vendor One,Austin,TX,N30"))
    env.drop("remit-1.820", x12_820([payment("CHK-9001", [("1001", "100.00")])]))
    vendors = env.run("vendors-in")
    remit = env.run("remit-in")
    assert vendors.state == "succeeded" and vendors.counts["records_posted"] == 1
    assert remit.state == "failed" and remit.exit_code == 3
    assert "access scope" in (remit.error or "") and "Erp.BO.ARInvoiceSvc" in (remit.error or "")
    assert "password" not in (remit.error or "")
    (f,) = env.store.ledger.files(flow="remit-in")
    assert f.state == "posting"  # nothing settled as failed: the next run (after the scope fix) posts it
    env.kinetic.sandbox.options.denied_services = []
    retried = env.run("remit-in")
    assert retried.state == "succeeded" and retried.counts["records_posted"] == 1
