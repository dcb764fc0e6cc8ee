"""The flows.yaml reference, generated from the pydantic models so it cannot drift.

``python -m ml_connector.reference > docs/configuration.md`` (a test checks the file is current).
"""

from __future__ import annotations

import json
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from . import config as c
from .console.settings import ConsoleSettings

SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Outbound flow (`direction: outbound`)", c.OutboundFlow, "flows.NAME"),
    ("Inbound flow (`direction: inbound`)", c.InboundFlow, "flows.NAME"),
    ("CSV format (`format.type: csv`)", c.CsvFormat, "flows.NAME.format"),
    ("Fixed-width format (`format.type: fixed-width`)", c.FixedWidthFormat, "flows.NAME.format"),
    ("Fixed-width record layout", c.RecordLayout, "flows.NAME.format.records[]"),
    ("X12 format (`format.type: x12`)", c.X12Format, "flows.NAME.format"),
    ("X12 partner envelope", c.X12Partner, "flows.NAME.format.partner"),
    ("X12 field mapping (inbound 820)", c.X12FieldMap, "flows.NAME.format.mapping.FIELD"),
    ("Kinetic look-up of a mapped value", c.KineticFind, "flows.NAME.format.mapping.FIELD.find"),
    ("Column", c.Column, "format.columns[]"),
    ("Column override", c.ColumnOverride, "format.overrides.FIELD"),
    ("Alerts", c.AlertsConfig, "alerts"),
    ("Webhook channel", c.WebhookChannel, "alerts.webhook"),
    ("Email channel", c.EmailChannel, "alerts.email"),
    ("Retention", c.RetentionConfig, "retention"),
    ("Serve", c.ServeConfig, "serve"),
    ("Operator console", ConsoleSettings, "serve.console"),
]


def _type(info: FieldInfo) -> str:
    """The annotation in words: ``left / right``, ``int or none``, ``list[str]``, from the typing objects."""
    return _words(info.annotation)


def _words(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "None"
    if origin is Literal:
        return " / ".join(a if isinstance(a, str) and a.isprintable() else json.dumps(a).strip('"') for a in args)
    if origin is Annotated:
        return _words(args[0])
    if origin in (Union, UnionType):
        names = [a.__name__ for a in args if isinstance(a, type)]
        if {"CsvFormat", "FixedWidthFormat", "X12Format"} <= set(names):
            return "csv / fixed-width / x12 format"
        return " \\| ".join(_words(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_words(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        try:
            value: Any = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
        if isinstance(value, BaseModel):
            return "(defaults below)"
        return f"`{json.dumps(value)}`" if value not in ({}, []) else ""
    if info.default is None:
        return ""
    value = info.default
    shown = value if isinstance(value, str) and value.isprintable() else json.dumps(value)
    return f"`{shown}`"


def render() -> str:
    lines = [
        "# flows.yaml reference",
        "",
        "Generated from the models in `src/ml_connector/config.py` by `python -m ml_connector.reference`;",
        "`ml-connector flows schema` writes the same as JSON Schema for editors. A test fails when this",
        "file is out of date. Top level: `flows` (name to flow), `alerts`, `retention`, `serve`.",
        "",
    ]
    for title, model, where in SECTIONS:
        lines += [
            f"## {title}",
            "",
            f"Where: `{where}`.",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for name, info in model.model_fields.items():
            desc = (info.description or "").replace("|", "\\|")
            kind = _type(info)
            extra = info.json_schema_extra
            if callable(extra):  # names taken from a registry at run time (entity: kinetic/entities.py)
                schema: dict[str, Any] = {}
                extra(schema)
                kind = " / ".join(str(v) for v in schema.get("enum", [])) or kind
            lines.append(f"| `{name}` | {kind} | {_default(info)} | {desc} |")
        lines.append("")
    lines += X12_DEFAULTS
    lines += [
        "## Example",
        "",
        "```yaml",
        EXAMPLE.strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


X12_DEFAULTS = [
    "## Default X12 820 mappings (inbound)",
    "",
    "What an inbound 820 becomes when `format.mapping` names nothing (docs/formats.md explains each).",
    "`mapping.FIELD` replaces one line of this table: `source` (an element such as `RMR02`, `N1.PE.N104`,",
    "`REF.CK`, `RMR.REF.PO`), then `extract`, `lookup`/`lookup_default`, `default`, or a constant `value`,",
    "then `find` (a Kinetic look-up by another field, batched under the 100-row cap).",
    "",
    "| entity | Epicor field | default source | notes |",
    "|---|---|---|---|",
    "| cash-receipts | `CheckRef` | TRN02 | first 30 characters |",
    "| cash-receipts | `TranAmt`, `DocTranAmt` | BPR02 | equals the sum of RMR04 (else `on_amount_mismatch`) |",
    "| cash-receipts | `TranDate` | BPR16 | |",
    "| cash-receipts | `InvoiceNum` (per line) | RMR02 | must be a whole number naming an AR invoice; else map it |",
    "| cash-receipts | `TranAmt` (per line) | RMR04 | |",
    "| cash-receipts | `CustNum` | the first line's AR invoice | |",
    "| ap-payments | `CheckNum` | TRN02 | must be a whole number |",
    "| ap-payments | `VendorID` | N1.PE.N104 | must be a Kinetic VendorID; else map it or `find` it |",
    "| ap-payments | `CheckDate`, `CheckAmt` | BPR16, BPR02 | |",
    "| ap-payments | `InvoiceNum`, `TranAmt` (per line) | RMR02, RMR04 | |",
    "",
]


EXAMPLE = """
flows:
  invoices-to-partner:
    direction: outbound
    schedule: "0 19 * * 1-5"
    timezone: America/Chicago
    epicor: kinetic-prod
    entity: ap-invoices
    filter: "Posted eq true"
    sftp: logistics-partner
    folder: /outbound
    filename: "invoices_{now:%Y%m%d_%H%M%S}.csv"
    format:
      type: csv
      columns:
        - {header: Vendor, field: VendorNumVendorID}
        - {header: Invoice, field: InvoiceNum}
        - {header: Amount, field: InvoiceAmt, type: decimal, format: "0.00"}
        - {header: Due, field: DueDate, type: date, format: "%Y-%m-%d"}
        - {header: Terms, field: TermsCode, lookup: {N30: NET30}, lookup_default: OTHER}
  remittance-in:
    direction: inbound
    schedule: "*/15 * * * *"
    sftp: logistics-partner
    folder: /inbound
    pattern: "*.820"
    archive_folder: /archive
    error_folder: /error
    ack_folder: /acks
    epicor: kinetic-prod
    entity: cash-receipts
    constants: {GroupID: CASH01}
    format: {type: x12, set: "820", partner: {sender_id: ACME, receiver_id: PARTNER}}
alerts:
  webhook: {url: "https://hooks.example.com/mlc", secret_env: MLC_WEBHOOK_SECRET}
  email: {host: smtp.example.com, username: alerts, password_env: MLC_SMTP_PASSWORD,
          sender: mlc@example.com, to: [integration@example.com]}
  throttle_minutes: 60
retention: {audit_days: 90, staging_days: 30}
serve: {metrics_port: 9464}
"""


if __name__ == "__main__":
    print(render(), end="")
