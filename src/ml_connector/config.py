"""Typed flow configuration (``flows.yaml``) with located error messages.

Errors name the file, the line, the flow and the key, e.g.::

    flows.yaml:14: flow 'vendors-out': format.columns[2].start: must be >= 1

The file is read with ``yaml.safe_load`` semantics only: a partner- or user-supplied YAML file
can never construct Python objects.
"""

from __future__ import annotations

import codecs
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .console.settings import ConsoleSettings
from .errors import ConfigError

# Entity names come from the registry (kinetic/entities.py), which imports this module for
# ``Column``: read it lazily, at validation time, so adding an entity touches only the registry.
ACKNOWLEDGMENTS = "acknowledgments"  # inbound partner 997/TA1: our own ledger, not a Kinetic entity


def _registry() -> Any:
    from .kinetic import entities

    return entities


def _entity_enum(inbound: bool) -> Callable[[dict[str, Any]], None]:
    def extra(schema: dict[str, Any]) -> None:
        schema["enum"] = [*_registry().flow_entities(), *([ACKNOWLEDGMENTS] if inbound else [])]

    return extra


def _check_entity(value: str, *, inbound: bool) -> str:
    names = [*_registry().flow_entities(), *([ACKNOWLEDGMENTS] if inbound else [])]
    if value not in names:
        raise ValueError(f"unknown entity {value!r} (entities: {', '.join(names)})")
    return value


CRON_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _check_encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, utf-8-sig, cp1252)") from None
    return value


class Column(_Model):
    """One mapped column: a file column (CSV header or fixed-width slice) and an Epicor field."""

    field: str = Field(description="Epicor field name (e.g. VendorID, InvoiceAmt)")
    header: str | None = Field(None, description="CSV header; defaults to the field name")
    start: int | None = Field(None, ge=1, description="fixed-width: 1-based start column")
    length: int | None = Field(None, ge=1, description="fixed-width: width in characters")
    align: Literal["left", "right"] = "left"
    pad: str = Field(" ", min_length=1, max_length=1)
    implied_decimals: int = Field(0, ge=0, le=10)
    type: Literal["str", "int", "decimal", "date", "datetime", "bool"] = "str"
    format: str | None = Field(None, description="date format (strftime) or number pattern like 0.00")
    required: bool = False
    default: str | None = Field(None, description="value used when the source is empty")
    value: str | None = Field(None, description="outbound: a constant written instead of the field")
    concat: list[str] | None = Field(None, description="outbound: join these Epicor fields with separator")
    separator: str = Field(" ", description="separator for concat")
    lookup: dict[str, str] | None = Field(None, description="translation table applied to the value")
    lookup_default: str | None = Field(
        None, description="result for a value missing from lookup (without it, such a value is an error)"
    )
    from_header: str | None = Field(
        None, description="fixed-width detail: take the value of this field of the file's header record"
    )

    @field_validator("from_header")
    @classmethod
    def _header_ref(cls, value: str | None) -> str | None:
        # "header.BatchDate" and "BatchDate" name the same header field.
        return value.removeprefix("header.") if value else value

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if self.value is not None and self.concat:
            raise ValueError("value and concat cannot both be set")
        return self


class ColumnOverride(_Model):
    """Changes to one default column, keyed by its Epicor field under ``format.overrides``."""

    header: str | None = None
    start: int | None = Field(None, ge=1)
    length: int | None = Field(None, ge=1)
    align: Literal["left", "right"] | None = None
    pad: str | None = Field(None, min_length=1, max_length=1)
    implied_decimals: int | None = Field(None, ge=0, le=10)
    type: Literal["str", "int", "decimal", "date", "datetime", "bool"] | None = None
    format: str | None = None
    required: bool | None = None
    default: str | None = None
    value: str | None = None
    concat: list[str] | None = None
    separator: str | None = None
    lookup: dict[str, str] | None = None
    lookup_default: str | None = None


class CsvFormat(_Model):
    type: Literal["csv"]
    delimiter: str = Field(",", min_length=1, max_length=1)
    quotechar: str = Field('"', min_length=1, max_length=1)
    header: bool = True
    encoding: str = "utf-8"
    line_ending: Literal["\n", "\r\n"] = "\r\n"
    neutralise_formulas: bool = Field(
        False, description="prefix cells starting with = + - @ for partners opening files in Excel"
    )
    max_field_size: int = Field(131072, ge=1)
    columns: list[Column] = Field(
        default_factory=list, description="the file's columns; empty: the entity's default mapping"
    )
    overrides: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="changes to default columns, keyed by Epicor field"
    )
    omit: list[str] = Field(default_factory=list, description="default columns (Epicor fields) to leave out")

    _enc = field_validator("encoding")(_check_encoding)


class RecordLayout(_Model):
    """A fixed-width record type (header, detail, trailer) selected by its discriminator value."""

    code: str = Field(description="value of the record-type field for this layout")
    role: Literal["header", "detail", "trailer"] = Field(
        "detail", description="header/trailer lines are read by their own layout and never posted"
    )
    columns: list[Column]
    count_field: str | None = Field(None, description="trailer: its column holding the number of detail records")
    total_field: str | None = Field(None, description="trailer: its column holding a control total")
    total_of: str | None = Field(None, description="trailer: the detail field summed for total_field (default: same)")

    @model_validator(mode="after")
    def _trailer_checks(self) -> RecordLayout:
        fields = {c.field for c in self.columns}
        for key in ("count_field", "total_field"):
            value = getattr(self, key)
            if value is None:
                continue
            if self.role != "trailer":
                raise ValueError(f"{key}: only a trailer record carries counts and totals")
            if value not in fields:
                raise ValueError(f"{key}: {value!r} is not one of this record's columns")
        if self.total_of is not None and self.total_field is None:
            raise ValueError("total_of needs total_field")
        return self


class FixedWidthFormat(_Model):
    type: Literal["fixed-width"]
    encoding: str = "utf-8"
    line_ending: Literal["\n", "\r\n"] = "\r\n"
    line_length: int | None = Field(None, ge=1, description="exact record length, if fixed")
    record_type: Column | None = Field(None, description="where the record-type code sits")
    columns: list[Column] = Field(
        default_factory=list, description="the record's columns; empty: the entity's default mapping"
    )
    records: list[RecordLayout] = Field(default_factory=list)
    overrides: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="changes to default columns, keyed by Epicor field"
    )
    omit: list[str] = Field(default_factory=list, description="default columns (Epicor fields) to leave out")

    _enc = field_validator("encoding")(_check_encoding)

    @model_validator(mode="after")
    def _positions(self) -> FixedWidthFormat:
        for name, cols in [("columns", self.columns)] + [
            (f"records[{i}].columns", r.columns) for i, r in enumerate(self.records)
        ]:
            for i, col in enumerate(cols):
                if col.from_header is not None:
                    continue  # read from the header record, not from the line
                if col.start is None or col.length is None:
                    raise ValueError(f"{name}[{i}]: fixed-width columns need start and length")
        if self.records and self.record_type is None:
            raise ValueError("records: a multi-record layout needs record_type")
        roles = [r.role for r in self.records]
        for role in ("header", "trailer"):
            if roles.count(role) > 1:
                raise ValueError(f"records: at most one {role} layout")
        if self.records and "detail" not in roles:
            raise ValueError("records: a layout needs at least one detail record")
        header = next((r for r in self.records if r.role == "header"), None)
        header_fields = {c.field for c in header.columns} if header else set()
        for r in self.records:
            for c in r.columns:
                if c.from_header is not None and (r.role != "detail" or c.from_header not in header_fields):
                    raise ValueError(
                        f"records[{r.code}].{c.field}: from_header {c.from_header!r} needs a header layout "
                        "with that field, on a detail record"
                    )
        details = {c.field for r in self.records if r.role == "detail" for c in r.columns}
        for r in self.records:
            summed = r.total_of or r.total_field
            if r.total_field is not None and summed not in details:
                raise ValueError(f"records[{r.code}]: total of {summed!r}: no detail record has that field")
        return self


class X12Partner(_Model):
    """Envelope settings for one trading partner."""

    sender_qualifier: str = Field("ZZ", min_length=2, max_length=2)
    sender_id: str = Field("MLCONNECTOR", min_length=1, max_length=15)
    receiver_qualifier: str = Field("ZZ", min_length=2, max_length=2)
    receiver_id: str = Field("PARTNER", min_length=1, max_length=15)
    gs_sender: str | None = None
    gs_receiver: str | None = None
    usage: Literal["P", "T"] = "P"
    element_separator: str = Field("*", min_length=1, max_length=1)
    component_separator: str = Field(":", min_length=1, max_length=1)
    segment_terminator: str = Field("~", min_length=1, max_length=1)
    repetition_separator: str = Field("^", min_length=1, max_length=1)
    segment_newline: bool = Field(True, description="write a newline after each terminator")
    on_delimiter_in_data: Literal["reject", "replace"] = "reject"
    replacement: str = Field(" ", min_length=1, max_length=1)
    charset: Literal["basic", "extended"] = "extended"

    @model_validator(mode="after")
    def _distinct(self) -> X12Partner:
        seps = [
            self.element_separator,
            self.component_separator,
            self.segment_terminator,
            self.repetition_separator,
        ]
        if len(set(seps)) != len(seps):
            raise ValueError("delimiters must all differ")
        for sep in seps:
            if sep in string.ascii_letters + string.digits:
                raise ValueError(f"delimiter {sep!r} must not be a letter or digit")
        if self.replacement in seps:
            raise ValueError("replacement must not be a delimiter")
        return self


X12_SOURCES = re.compile(
    r"^(TRN0[1-4]|BPR(0[1-9]|1[0-6])|CUR02|RMR0[1-8]|N1\.(PR|PE)\.N10[234]|REF\.[A-Z0-9]{2,3}|RMR\.REF\.[A-Z0-9]{2,3}"
    r"|N1\.(PR|PE)\.REF\.[A-Z0-9]{2,3})$"
)
X12_TARGETS = ("CheckRef", "CheckNum", "VendorID", "InvoiceNum")
# Where a mapping's find step looks when it names no service/entity set: (service, entity set).
FIND_DEFAULTS = {"InvoiceNum": ("Erp.BO.ARInvoiceSvc", "ARInvoices"), "VendorID": ("Erp.BO.VendorSvc", "Vendors")}


class KineticFind(_Model):
    """Look the mapped value up in Kinetic by another field (e.g. an AR invoice by LegalNumber)."""

    by: str = Field(description="Kinetic field the value is compared with, e.g. LegalNumber, PONum, Name, TaxPayerID")
    service: str | None = Field(
        None, description="default: Erp.BO.ARInvoiceSvc for InvoiceNum, Erp.BO.VendorSvc for VendorID"
    )
    entity_set: str | None = Field(None, description="default: ARInvoices for InvoiceNum, Vendors for VendorID")
    returns: str | None = Field(None, description="field whose value replaces it; default: the target field")


class X12FieldMap(_Model):
    """Where one Epicor field comes from in an 820, and the transforms applied in order."""

    source: str | None = Field(None, description="TRN02, RMR02, N1.PE.N104, REF.CK, RMR.REF.PO, BPR16 ...")
    value: str | None = Field(None, description="a constant instead of a source")
    extract: str | None = Field(None, description="regular expression; group 1 (or the whole match) is kept")
    lookup: dict[str, str] | None = Field(None, description="translation table applied to the value")
    lookup_default: str | None = None
    default: str | None = Field(None, description="used when the source is absent or empty")
    find: KineticFind | None = None

    @model_validator(mode="after")
    def _check(self) -> X12FieldMap:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of source or value")
        if self.source is not None and not X12_SOURCES.match(self.source):
            raise ValueError(
                f"source {self.source!r}: expected TRN01-04, BPR01-16, CUR02, RMR01-08, N1.PR|PE.N102-N104, "
                "REF.<qualifier>, RMR.REF.<qualifier> or N1.PR|PE.REF.<qualifier>"
            )
        if self.extract is not None:
            try:
                re.compile(self.extract)
            except re.error as exc:
                raise ValueError(f"extract: not a valid regular expression ({exc})") from None
        return self


class X12Format(_Model):
    type: Literal["x12"]
    set: Literal["820", "810", "824", "997", "999", "TA1"] = "820"
    version: Literal["004010", "005010"] = "004010"
    partner: X12Partner = Field(default_factory=lambda: X12Partner())
    ack: Literal["997", "999", "none"] = Field(
        "997", description="inbound: answer each functional group with a 997, a 999 (005010 partners) or nothing"
    )
    on_element_error: Literal["reject", "accept"] = Field(
        "reject", description="a segment breaking its element table: reject the set (AK5 R) or accept it noted (E)"
    )
    on_amount_mismatch: Literal["warn", "reject"] | None = Field(
        None, description="BPR02 differs from the sum of RMR04; default reject for payments, else warn"
    )
    mapping: dict[str, X12FieldMap] = Field(
        default_factory=dict, description="inbound 820: Epicor field -> source element and transforms"
    )

    @field_validator("ack", mode="before")
    @classmethod
    def _ack_bool(cls, value: Any) -> Any:
        # Older files say ack: true/false; true always meant a 997.
        if value is True:
            return "997"
        if value is False:
            return "none"
        return value

    @field_validator("mapping")
    @classmethod
    def _targets(cls, value: dict[str, X12FieldMap]) -> dict[str, X12FieldMap]:
        for key, spec in value.items():
            if key not in X12_TARGETS:
                raise ValueError(f"{key!r} cannot be mapped (mappable: {', '.join(X12_TARGETS)})")
            find = spec.find
            if find is not None and key not in FIND_DEFAULTS and not (find.service and find.entity_set):
                raise ValueError(f"{key}.find: name service and entity_set (no default for {key})")
        return value


Format = Annotated[CsvFormat | FixedWidthFormat | X12Format, Field(discriminator="type")]


class _FlowBase(_Model):
    description: str | None = Field(None, description="free text for people")
    enabled: bool = Field(True, description="serve skips disabled flows; run still runs them")
    schedule: str | None = Field(
        None,
        description="cron: 5 fields (minute hour day-of-month month day-of-week; names like MON-FRI "
        "allowed), optionally a 6th for seconds at the end (`0 19 * * 1-5 30`), or @hourly, @daily, "
        "@weekly, @monthly, @yearly; in `timezone`",
    )
    timezone: str = Field("UTC", description="IANA zone for schedule and {now}, e.g. America/Chicago")
    epicor: str = Field(description="name of an Epicor connection")
    sftp: str = Field(description="name of an SFTP connection")
    folder: str = Field(description="remote folder")
    format: Format = Field(description="the file layout: csv, fixed-width or x12")
    constants: dict[str, str] = Field(
        default_factory=dict,
        description="inbound: Epicor fields set on every record (e.g. GroupID); "
        "outbound X12: envelope/payment values (payer_name, payer_id, method, handling, currency)",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        # croniter reads a 6th field as seconds (placed LAST) and a 7th as the year. Quartz users write
        # seconds first, so the rule is spelled out here and in the docs; the year field is refused.
        alias = len(fields) == 1 and fields[0] in CRON_ALIASES
        if not alias and len(fields) not in (5, 6):
            raise ValueError(
                f"{value!r} is not a valid cron expression: it needs 5 fields (minute hour day-of-month month "
                f"day-of-week), optionally a 6th for seconds at the end, not {len(fields)}; "
                f"or one of {', '.join(CRON_ALIASES)}"
            )
        from croniter import croniter  # imported here: start-up time of every command (bench/cli.py)

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/Chicago)") from None
        return value

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value or "/../" in value + "/":
            raise ValueError("must be an absolute remote path without '..'")
        return value


class OutboundFlow(_FlowBase):
    direction: Literal["outbound"] = Field(description="Kinetic -> file -> SFTP")
    entity: str = Field(description="what is read from Kinetic", json_schema_extra=_entity_enum(False))
    cursor: str | None = Field(None, description="cursor field; default per entity")
    filter: str | None = Field(None, description="extra OData $filter ANDed to the cursor filter")
    page_size: int = Field(500, ge=1, le=10000, description="rows per OData page ($top)")
    filename: str = Field(
        "{flow}_{now:%Y%m%d_%H%M%S}.{ext}", description="template: {flow} {run} {seq} {ext} {now:strftime}"
    )
    split_every: int | None = Field(None, ge=1, description="records per file")
    on_no_changes: Literal["skip", "empty-file"] = Field(
        "skip", description="no changed records: no file, or a header-only file"
    )
    on_conflict: Literal["fail", "overwrite", "unique"] = Field(
        "fail", description="the final remote name exists already"
    )

    @field_validator("entity")
    @classmethod
    def _entity(cls, value: str) -> str:
        return _check_entity(value, inbound=False)

    @property
    def cursor_field(self) -> str:
        cursor: str = self.cursor or _registry().entity(self.entity).cursor
        return cursor


class InboundFlow(_FlowBase):
    direction: Literal["inbound"] = Field(description="SFTP -> file -> Kinetic")
    entity: str = Field(
        description="what the records become in Kinetic (acknowledgments: partner 997/TA1)",
        json_schema_extra=_entity_enum(True),
    )
    pattern: str = Field("*", description="which file names in folder belong to this flow")
    pattern_type: Literal["glob", "regex"] = "glob"
    archive_folder: str | None = Field(
        None, description="processed files move here (else they stay, skipped by the ledger)"
    )
    error_folder: str | None = Field(None, description="rejected files move here with NAME.error.json")
    ack_folder: str | None = Field(None, description="997/TA1 replies to inbound X12 are written here")
    settle_seconds: float = Field(5.0, ge=0, description="a file is ready when size and mtime held still this long")
    min_age_seconds: float = Field(0.0, ge=0, description="or when it is at least this old")
    max_files_per_poll: int = Field(100, ge=1, description="files taken per run, oldest first")
    on_duplicate: Literal["skip", "process"] = Field("skip", description="same bytes as an earlier file")
    concurrency: int = Field(4, ge=1, le=64, description="records posted at once")
    batch_size: int = Field(100, ge=1, le=5000, description="records looked up and posted per batch")
    on_bad_records: Literal["reject-file", "skip-records"] = Field(
        "reject-file", description="CSV/fixed-width lines that cannot be read: reject the whole file, or post the rest"
    )
    max_file_attempts: int = Field(
        3, ge=1, le=100, description="runs that may hit an internal error on a file before it goes to the error folder"
    )
    on_failed_records: Literal["error", "archive"] = Field(
        "error", description="where a file with failed records goes: the error folder or the archive"
    )

    @field_validator("entity")
    @classmethod
    def _entity(cls, value: str) -> str:
        return _check_entity(value, inbound=True)

    @model_validator(mode="after")
    def _pattern(self) -> InboundFlow:
        if self.pattern_type == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern: not a valid regular expression ({exc})") from None
        grouped = self.entity != ACKNOWLEDGMENTS and _registry().entity(self.entity).grouped
        if grouped and "GroupID" not in self.constants:
            raise ValueError(f"constants.GroupID: entity {self.entity} posts into a group; name it here")
        if self.entity == "acknowledgments" and not isinstance(self.format, X12Format):
            raise ValueError("format: acknowledgments are X12 (997, 999 or TA1)")
        if self.entity in ("cash-receipts", "ap-payments") and not isinstance(self.format, X12Format):
            raise ValueError(f"format: entity {self.entity} is read from X12 820 payment advice")
        return self


Flow = Annotated[OutboundFlow | InboundFlow, Field(discriminator="direction")]
_FLOW = TypeAdapter(Flow)


class WebhookChannel(_Model):
    url: str = Field(description="https URL that receives a JSON POST per alert")
    secret_env: str | None = Field(None, description="env var holding the HMAC-SHA256 signing secret")
    timeout_s: float = Field(10.0, gt=0)


class EmailChannel(_Model):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_env: str | None = Field(None, description="env var holding the SMTP password")
    sender: str = Field(description="From address")
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(15.0, gt=0)
    ca_file: str | None = Field(None, description="PEM bundle to verify the SMTP server (default: system CAs)")


class AlertsConfig(_Model):
    """Where alerts go and how often (``alerts:`` in flows.yaml)."""

    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None
    throttle_minutes: float = Field(60, ge=0, description="one alert per flow and kind per window")
    repeated_failures: int = Field(3, ge=2, description="alert when this many runs in a row failed")
    ack_timeout_minutes: float = Field(240, gt=0, description="outbound X12 with no 997/TA1 after this long")


class RetentionConfig(_Model):
    audit_days: float = Field(90, gt=0, description="audit events older than this are pruned")
    staging_days: float = Field(30, gt=0, description="staged copies of finished files older than this are pruned")


class ServeConfig(_Model):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535, description="/metrics and /healthz; 0 turns them off")
    tick_seconds: float = Field(1.0, gt=0)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings, description="operator console; off by default")


class FlowsFile(_Model):
    """The whole ``flows.yaml``."""

    flows: dict[str, Flow] = Field(default_factory=dict)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)


SECTIONS: dict[str, type[_Model]] = {"alerts": AlertsConfig, "retention": RetentionConfig, "serve": ServeConfig}


# --- loading with located errors -------------------------------------------------------------

_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "string_too_short": "must be at least {min_length} character(s)",
    "string_too_long": "must be at most {max_length} character(s)",
}


def _message(error: Any) -> str:
    template = _MESSAGES.get(error["type"])
    if template:
        try:
            return template.format(**(error.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _path(loc: tuple[Any, ...], raw: Any) -> tuple[str, list[Any]]:
    """Render a pydantic location against the raw data, dropping union tags it added."""
    parts: list[Any] = []
    node = raw
    for i, key in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and (key in node or last):
            parts.append(key)
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int):
            parts.append(key)
            node = node[key] if key < len(node) else None
        else:
            continue  # a discriminator tag such as 'csv' or 'outbound'
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text, parts


def _line_of(node: yaml.Node | None, parts: list[Any]) -> int | None:
    """1-based line of the deepest YAML node found along ``parts``."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in parts:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: str, first: yaml.Node, second: yaml.Node) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _StrictLoader(yaml.SafeLoader):
    """``safe_load`` semantics, but a key given twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise _DuplicateKeyError(key_node.value, seen[key_node.value], key_node)
                seen[key_node.value] = key_node
        return super().construct_mapping(node, deep=deep)


# PyYAML's parser words, in the words of someone editing the file.
_YAML_PLAIN = {
    "expected <block end>": "this line's indentation does not fit the lines above it",
    "mapping values are not allowed here": "a ':' where a plain value was expected (quote values containing ': ')",
    "could not find expected ':'": "a key without its ':'",
    "found character '\\t'": "a tab character: YAML indents with spaces",
    "found undefined alias": "an undefined '*alias'",
}


def _load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The data and its node tree (for line numbers); YAML problems as located ConfigErrors."""
    try:
        loader = _StrictLoader(text)
        try:
            root = loader.get_single_node()
            raw = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except _DuplicateKeyError as exc:
        first, second = exc.first.start_mark, exc.second.start_mark
        raise ConfigError(
            f"{source}:{second.line + 1}:{second.column + 1}: {exc.key!r} is defined twice "
            f"(first at line {first.line + 1}); the second would silently replace the first"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = exc.problem or "not valid YAML"
        for needle, plain in _YAML_PLAIN.items():
            if needle in problem:
                problem = plain
                break
        context = ""
        if exc.context and exc.context_mark is not None:
            context = f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        hint = ""
        if "indentation" in problem:
            hint = "; flows are indented under 'flows:' (which must not be 'flows: {}'), their keys one level deeper"
        raise ConfigError(f"{where}: invalid YAML: {problem}{context}{hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    return raw, root


def parse_flows(text: str, source: str = "flows.yaml") -> FlowsFile:
    """Parse and validate flows.yaml text; every problem is reported in one ConfigError."""
    raw, root = _load_yaml(text, source)
    if raw is None:
        return FlowsFile()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'flows' key")
    unknown = sorted(set(raw) - {"flows", *SECTIONS})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r} (expected flows, {', '.join(SECTIONS)})")
    sections: dict[str, Any] = {}
    section_problems: list[str] = []
    for key, model in SECTIONS.items():
        if raw.get(key) is None:
            continue
        try:
            sections[key] = model.model_validate(raw[key])
        except ValidationError as exc:
            for error in exc.errors():
                path, parts = _path(tuple(error["loc"]), raw[key])
                line = _line_of(_line_node(root, key), parts)
                section_problems.append(f"{source}:{line}: {key}.{path}: {_message(error)}")
    flows_raw = raw.get("flows") or {}
    if not isinstance(flows_raw, dict):
        raise ConfigError(f"{source}: 'flows' must be a mapping of flow name to flow")
    flows_node = _line_node(root, "flows")
    problems: list[str] = []
    flows: dict[str, Any] = {}
    for name, body in flows_raw.items():
        name = str(name)
        flow_node = _line_node(flows_node, name)
        if not NAME_RE.match(name):
            problems.append(
                f"{source}:{_line_of(flow_node, [])}: flow {name!r}: name must be letters, digits, '.', '_' or '-'"
            )
            continue
        if not isinstance(body, dict):
            problems.append(f"{source}:{_line_of(flow_node, [])}: flow {name!r}: must be a mapping")
            continue
        try:
            flows[name] = _FLOW.validate_python(body)
            problems += _mapping_problems(flows[name], body, flow_node, source, name)
        except ValidationError as exc:
            for error in exc.errors():
                path, parts = _path(tuple(error["loc"]), body)
                line = _line_of(flow_node, parts)
                where = f"{source}:{line}" if line else source
                key = f"{path}: " if path else ""
                problems.append(f"{where}: flow {name!r}: {key}{_message(error)}")
    problems += section_problems
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))
    return FlowsFile(flows=flows, **sections)


def _mapping_problems(flow: Any, body: dict[str, Any], node: yaml.Node | None, source: str, name: str) -> list[str]:
    """``format.overrides`` / ``format.omit`` must name columns the flow has (else the run fails unlocated)."""
    fmt = flow.format
    if not isinstance(fmt, CsvFormat | FixedWidthFormat) or not (fmt.overrides or fmt.omit):
        return []
    from .kinetic.entities import ENTITIES  # the registry imports this module

    record = ENTITIES.get(flow.entity)
    defaults = () if record is None else record.csv_columns if isinstance(fmt, CsvFormat) else record.fixed_columns
    columns = list(fmt.columns) or list(defaults)
    known = sorted({c.field for c in columns})
    out = []
    raw_fmt = body.get("format") or {}
    for key in fmt.overrides:
        if key not in known:
            line = _line_of(node, ["format", "overrides", key])
            out.append(f"{source}:{line}: flow {name!r}: format.overrides.{key}: not one of the flow's columns"
                       f"{_did_you_mean(key, known)} (columns: {', '.join(known)})")  # fmt: skip
    for i, key in enumerate(fmt.omit):
        if key not in known:
            omit_raw = raw_fmt.get("omit") if isinstance(raw_fmt, dict) else None
            line = _line_of(node, ["format", "omit", i] if isinstance(omit_raw, list) else ["format", "omit"])
            out.append(f"{source}:{line}: flow {name!r}: format.omit[{i}]: {key!r} is not one of the flow's columns"
                       f"{_did_you_mean(key, known)}")  # fmt: skip
    return out


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _line_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                found: yaml.Node = v
                return found
    return None


def load_flows(path: Path) -> FlowsFile:
    """Read and validate a flows.yaml file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run 'ml-connector init')") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None
    return parse_flows(text, source=str(path))


def json_schema() -> dict[str, Any]:
    """JSON Schema of flows.yaml, for editors."""
    schema = FlowsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ml-connector flows.yaml"
    return schema
