"""OData v4 query building: every literal escaped, field names from an allowlist pattern.

A value such as ``O'Brien & Sons #1 +50%`` reaches the server as exactly one string literal:
quotes are doubled (OData ABNF ``SQUOTE-in-string``), then the whole query is percent-encoded
(``&``, ``#``, ``+``, ``%``, spaces as ``%20``, never ``+``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from ..errors import FatalError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$")
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}

Value = str | int | Decimal | bool | date | datetime | None


def field(name: str) -> str:
    """A field name, refused unless it is a plain identifier (no injection through names)."""
    if not _FIELD.match(name):
        raise FatalError(f"{name!r} is not a valid OData field name")
    return name


DATETIME_LITERALS = ("zoned", "naive")


def literal(value: Any, datetime_style: str = "zoned") -> str:
    """The OData literal for a Python value; datetimes in the instance's accepted form.

    Kinetic's date fields are ``Edm.DateTimeOffset``: the ``zoned`` form (``2026-01-31T00:00:00Z``)
    is what OData v4 requires; some instances also take (or only take) the ``naive`` form without
    a zone (evidence S2, S6). Naive Python datetimes are taken as UTC.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FatalError(f"{value} cannot be an OData literal")
        return f"{value:f}"
    if isinstance(value, float):
        raise FatalError("floats are refused in filters (use Decimal)")
    if isinstance(value, datetime):
        if datetime_style not in DATETIME_LITERALS:
            raise FatalError(f"datetime literal form {datetime_style!r} is not one of {', '.join(DATETIME_LITERALS)}")
        moment: datetime = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        text = moment.isoformat(timespec="seconds")
        return text + "Z" if datetime_style == "zoned" else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise FatalError(f"unsupported OData literal type {type(value).__name__}")


def compare(name: str, op: str, value: Value, datetime_style: str = "zoned") -> str:
    """``name op literal`` with the field checked and the value escaped."""
    if op not in _OPS:
        raise FatalError(f"unknown OData operator {op!r}")
    return f"{field(name)} {op} {literal(value, datetime_style)}"


def any_of(name: str, values: Sequence[Value]) -> str:
    """``name eq a or name eq b …`` (OData ``in`` is not supported everywhere)."""
    return "(" + " or ".join(compare(name, "eq", v) for v in values) + ")"


def all_of(*clauses: str | None) -> str:
    """Clauses joined with ``and`` (an ``or`` clause is parenthesised)."""
    parts = [c for c in clauses if c]
    return " and ".join(f"({c})" if " or " in c and not c.startswith("(") else c for c in parts)


def encode_query(params: Mapping[str, str | int]) -> str:
    """``$filter=…&$top=…`` with every character outside unreserved percent-encoded."""
    return "&".join(f"{quote(k, safe='$')}={quote(str(v), safe='')}" for k, v in params.items())


def cursor_value(value: Any) -> Any:
    """A cursor value read back from JSON: ISO datetimes become ``datetime`` (unquoted literals)."""
    if isinstance(value, str) and ISO_DATETIME.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value
