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
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

Entity = Literal["vendors", "ap-invoices", "ap-payments", "cash-receipts"]
InboundEntity = Literal["vendors", "ap-invoices", "ap-payments", "cash-receipts", "acknowledgments"]

# Default cursor per entity (DESIGN.md section 3): Vendor has no date column, only SysRevID.
DEFAULT_CURSOR: dict[str, str] = {
    "vendors": "SysRevID",
    "ap-invoices": "SysRevID",
    "ap-payments": "SysRevID",
    "cash-receipts": "SysRevID",
}
GROUPED_ENTITIES = ("ap-invoices", "ap-payments", "cash-receipts")
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
    role: Literal["header", "detail", "trailer"] = "detail"
    columns: list[Column]


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
                if col.start is None or col.length is None:
                    raise ValueError(f"{name}[{i}]: fixed-width columns need start and length")
        if self.records and self.record_type is None:
            raise ValueError("records: a multi-record layout needs record_type")
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


class X12Format(_Model):
    type: Literal["x12"]
    set: Literal["820", "810", "824", "997", "999", "TA1"] = "820"
    version: Literal["004010", "005010"] = "004010"
    partner: X12Partner = Field(default_factory=lambda: X12Partner())
    ack: bool = Field(True, description="inbound: answer each functional group with a 997")


Format = Annotated[CsvFormat | FixedWidthFormat | X12Format, Field(discriminator="type")]


class _FlowBase(_Model):
    description: str | None = Field(None, description="free text for people")
    enabled: bool = Field(True, description="serve skips disabled flows; run still runs them")
    schedule: str | None = Field(None, description="cron expression (5 fields)")
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
        if value is not None and not croniter.is_valid(value):
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
    entity: Entity = Field(description="what is read from Kinetic")
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

    @property
    def cursor_field(self) -> str:
        return self.cursor or DEFAULT_CURSOR[self.entity]


class InboundFlow(_FlowBase):
    direction: Literal["inbound"] = Field(description="SFTP -> file -> Kinetic")
    entity: InboundEntity = Field(description="what the records become in Kinetic (acknowledgments: partner 997/TA1)")
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

    @model_validator(mode="after")
    def _pattern(self) -> InboundFlow:
        if self.pattern_type == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern: not a valid regular expression ({exc})") from None
        if self.entity in GROUPED_ENTITIES and "GroupID" not in self.constants:
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


def parse_flows(text: str, source: str = "flows.yaml") -> FlowsFile:
    """Parse and validate flows.yaml text; every problem is reported in one ConfigError."""
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
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
