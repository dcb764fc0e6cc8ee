"""Record <-> row mapping: default columns per entity and format, overrides, safe transforms.

Transforms are data, never code: a constant (``value``), ``concat`` of fields, date and number
``format`` (applied by the format writers), a ``lookup`` table with ``lookup_default``, and
``default`` for empty values. Nothing here evaluates user text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .config import Column, CsvFormat, FixedWidthFormat, InboundFlow, OutboundFlow, X12Format
from .errors import ConfigError, RecordError


def _c(field: str, header: str | None = None, **kw: Any) -> Column:
    return Column(field=field, header=header or field, **kw)


def _fw(field: str, start: int, length: int, **kw: Any) -> Column:
    return Column(field=field, start=start, length=length, **kw)


MONEY = {"type": "decimal", "format": "0.00"}
DAY = {"type": "date", "format": "%Y-%m-%d"}

# The columns a flow gets when its format lists none: what partners usually ask for.
DEFAULT_CSV: dict[str, list[Column]] = {
    "vendors": [
        _c("VendorID", required=True),
        _c("Name"),
        _c("Address1"),
        _c("City"),
        _c("State"),
        _c("ZIP"),
        _c("Country"),
        _c("TermsCode"),
        _c("PhoneNum"),
        _c("EMailAddress"),
        _c("CurrencyCode"),
    ],
    "ap-invoices": [
        _c("VendorNumVendorID", "VendorID", required=True),
        _c("InvoiceNum", required=True),
        _c("InvoiceDate", **DAY),
        _c("DueDate", **DAY),
        _c("InvoiceAmt", **MONEY),
        _c("InvoiceBal", **MONEY),
        _c("CurrencyCode"),
        _c("Description"),
    ],
    "ap-payments": [
        _c("HeadNum", type="int"),
        _c("CheckNum", type="int"),
        _c("VendorNumVendorID", "VendorID"),
        _c("CheckDate", **DAY),
        _c("CheckAmt", **MONEY),
        _c("CurrencyCode"),
    ],
    "cash-receipts": [
        _c("GroupID"),
        _c("HeadNum", type="int"),
        _c("CheckRef"),
        _c("CustID"),
        _c("TranDate", **DAY),
        _c("TranAmt", **MONEY),
        _c("CurrencyCode"),
    ],
}

DEFAULT_FIXED: dict[str, list[Column]] = {
    "vendors": [
        _fw("VendorID", 1, 8, required=True),
        _fw("Name", 9, 50),
        _fw("City", 59, 30),
        _fw("State", 89, 2),
        _fw("ZIP", 91, 10),
        _fw("TermsCode", 101, 4),
    ],
    "ap-invoices": [
        _fw("VendorNumVendorID", 1, 8, required=True),
        _fw("InvoiceNum", 9, 20, required=True),
        _fw("InvoiceDate", 29, 8, type="date", format="%Y%m%d"),
        _fw("InvoiceAmt", 37, 12, type="decimal", align="right", pad="0", implied_decimals=2),
    ],
    "ap-payments": [
        _fw("CheckNum", 1, 10, type="int", align="right", pad="0"),
        _fw("VendorNumVendorID", 11, 8),
        _fw("CheckDate", 19, 8, type="date", format="%Y%m%d"),
        _fw("CheckAmt", 27, 12, type="decimal", align="right", pad="0", implied_decimals=2),
    ],
    "cash-receipts": [
        _fw("CheckRef", 1, 30),
        _fw("TranDate", 31, 8, type="date", format="%Y%m%d"),
        _fw("TranAmt", 39, 12, type="decimal", align="right", pad="0", implied_decimals=2),
    ],
}


def resolve_format(flow: OutboundFlow | InboundFlow) -> CsvFormat | FixedWidthFormat | X12Format:
    """The flow's format with default columns filled in and overrides applied."""
    fmt = flow.format
    if isinstance(fmt, X12Format):
        return fmt
    defaults = DEFAULT_CSV if isinstance(fmt, CsvFormat) else DEFAULT_FIXED
    entity = flow.entity
    columns = list(fmt.columns)
    if not columns and not (isinstance(fmt, FixedWidthFormat) and fmt.records):
        if entity not in defaults:
            raise ConfigError(f"entity {entity}: no default {fmt.type} columns; list format.columns")
        columns = list(defaults[entity])
    if not columns and isinstance(fmt, FixedWidthFormat) and fmt.records:
        # A multi-record layout maps its detail records (headers and trailers are never posted).
        columns = [c for r in fmt.records if r.role == "detail" for c in r.columns]
        columns = list({c.field: c for c in columns}.values())
    known = {c.field for c in columns}
    for field in [*fmt.overrides, *fmt.omit]:
        if field not in known:
            raise ConfigError(f"format: {field!r} is not one of the columns ({', '.join(sorted(known))})")
    columns = [c for c in columns if c.field not in fmt.omit]
    patched = []
    for col in columns:
        patch = fmt.overrides.get(col.field)
        if patch is not None:
            changes = patch.model_dump(exclude_none=True)
            col = Column.model_validate({**col.model_dump(), **changes})
        patched.append(col)
    return fmt.model_copy(update={"columns": patched})


def source_fields(columns: list[Column]) -> list[str]:
    """Epicor fields an outbound mapping reads (for ``$select``)."""
    fields: list[str] = []
    for col in columns:
        if col.value is not None:
            continue
        fields.extend(col.concat or [col.field])
    return list(dict.fromkeys(fields))


def to_python(value: Any, kind: str, where: str) -> Any:
    """A Kinetic JSON value as the column's Python type (Decimal, date, datetime, int, bool, str)."""
    if value is None or value == "":
        return None
    try:
        if kind == "decimal":
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if kind == "int":
            return int(value)
        if kind in ("date", "datetime") and isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.date() if kind == "date" else parsed
        if kind == "bool":
            return bool(value)
        if kind == "str" and isinstance(value, Decimal):
            return f"{value:f}"
    except (ValueError, InvalidOperation, TypeError):
        raise RecordError(f"{where}: {value!r} is not a valid {kind}") from None
    if kind == "str" and not isinstance(value, str):
        return str(value)
    return value


def _lookup(col: Column, value: Any, where: str) -> Any:
    if col.lookup is None or value is None:
        return value
    key = value if isinstance(value, str) else str(value)
    if key in col.lookup:
        return col.lookup[key]
    if col.lookup_default is not None:
        return col.lookup_default
    raise RecordError(f"{where}: {col.field}: {key!r} is not in the lookup table")


def outbound_mapper(columns: list[Column]) -> Callable[[Mapping[str, Any], str], dict[str, Any]]:
    """Kinetic row -> values keyed by column field, typed for the format writers."""
    plain = all(c.value is None and not c.concat and c.lookup is None for c in columns)
    kinds = [(c.field, c.type) for c in columns]

    def fast(row: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {f: to_python(row.get(f), k, f"{where}: {f}") for f, k in kinds}

    def full(row: Mapping[str, Any], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col in columns:
            if col.value is not None:
                value: Any = col.value
            elif col.concat:
                parts = [to_python(row.get(f), "str", f"{where}: {f}") for f in col.concat]
                value = col.separator.join(p for p in parts if p)
            else:
                value = to_python(row.get(col.field), col.type, f"{where}: {col.field}")
            out[col.field] = _lookup(col, value, where)
        return out

    return fast if plain else full


def inbound_mapper(
    columns: list[Column], constants: Mapping[str, str]
) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """Parsed file values -> Epicor fields: lookups applied, constants added, empties dropped.

    An empty cell never blanks a field in Kinetic: it is left out of the update.
    """
    lookups = [c for c in columns if c.lookup is not None]

    def mapper(values: dict[str, Any], where: str) -> dict[str, Any]:
        for col in lookups:
            values[col.field] = _lookup(col, values.get(col.field), where)
        out = {k: _kinetic_value(v) for k, v in values.items() if v is not None and v != ""}
        out.update(constants)
        return out

    return mapper


def _kinetic_value(value: Any) -> Any:
    """Dates go to Kinetic as midnight datetimes (its date fields are DateTime)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value.isoformat()}T00:00:00"
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    return value


def natural_key(entity: str, fields: Mapping[str, Any]) -> str:
    """The record's natural key as text, for the ledger and for messages."""
    if entity == "vendors":
        return str(fields.get("VendorID", ""))
    if entity == "ap-invoices":
        return f"{fields.get('VendorNumVendorID', fields.get('VendorNum', ''))}/{fields.get('InvoiceNum', '')}"
    return ""


def json_safe(value: Any) -> Any:
    """Values for the audit trail and sidecars (Decimal and dates as text)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
