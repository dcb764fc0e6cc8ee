"""Mapped field names checked against the entity's known fields (warnings with line and did-you-mean)."""

from __future__ import annotations

from ml_connector.config import parse_flows
from ml_connector.fieldnames import _known_fields, field_warnings

TEXT = """\
flows:
  invoices-in:
    direction: inbound
    epicor: k
    sftp: s
    entity: ap-invoices
    folder: /in
    constants: {GroupID: AP01, InvoiceDat: "2026-01-01"}
    format:
      type: fixed-width
      record_type: {field: RecType, start: 1, length: 1}
      records:
        - code: D
          columns:
            - {field: VendorNumVendorID, start: 2, length: 8}
            - {field: InvoiceNumm, start: 10, length: 10}
  vendors-out:
    direction: outbound
    epicor: k
    sftp: s
    entity: vendors
    folder: /out
    format:
      type: csv
      columns:
        - {field: VendorID}
        - {field: Label, value: "ACME"}
"""


def test_warnings_cover_records_and_inbound_constants_not_record_type_or_outbound_constants() -> None:
    warnings = field_warnings(parse_flows(TEXT), TEXT, "flows.yaml")
    assert warnings == [
        "flows.yaml:16: flow 'invoices-in': format.records[0].columns[1].field: 'InvoiceNumm' is not a known "
        "ap-invoices field (did you mean 'InvoiceNum'?)",
        "flows.yaml:8: flow 'invoices-in': constants.InvoiceDat: 'InvoiceDat' is not a known ap-invoices field "
        "(did you mean 'InvoiceDate'?)",
    ]


def test_known_fields_come_from_the_entity_tables_and_default_mappings() -> None:
    vendors = _known_fields("vendors")
    assert {"VendorID", "Name", "TermsCode", "SysRevID"} <= vendors
    assert "InvoiceNum" in _known_fields("ap-invoices") and "VendorNumVendorID" in _known_fields("ap-invoices")
    assert _known_fields("acknowledgments") == frozenset()
