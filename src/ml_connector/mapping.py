"""Record <-> row mapping: default columns (from the entity registry), overrides, safe transforms.

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
from .kinetic.entities import ENTITIES


def resolve_format(flow: OutboundFlow | InboundFlow) -> CsvFormat | FixedWidthFormat | X12Format:
    """The flow's format with default columns filled in and overrides applied."""
    fmt = flow.format
    if isinstance(fmt, X12Format):
        return fmt
    entity = flow.entity
    columns = list(fmt.columns)
    if not columns and not (isinstance(fmt, FixedWidthFormat) and fmt.records):
        record = ENTITIES.get(entity)
        # The entity registry holds each entity's default columns (what partners usually ask for).
        defaults = () if record is None else record.csv_columns if isinstance(fmt, CsvFormat) else record.fixed_columns
        if not defaults:
            raise ConfigError(f"entity {entity}: no default {fmt.type} columns; list format.columns")
        columns = list(defaults)
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
    """The record's natural key as text, for the ledger and for messages.

    The registry's natural key, with a display field standing in for the number it names
    (``VendorNumVendorID`` for ``VendorNum``) when the file carries that instead.
    """
    record = ENTITIES.get(entity)
    if record is None or not record.recipe_module:
        return ""
    parts = []
    for name in record.natural_key:
        display = next((d for d in record.lookups if d.startswith(name)), None)
        value = fields.get(name, fields.get(display, "")) if display else fields.get(name, "")
        parts.append(str(value if value is not None else ""))
    return "/".join(parts) if any(parts) else ""


def json_safe(value: Any) -> Any:
    """Values for the audit trail and sidecars (Decimal and dates as text)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
