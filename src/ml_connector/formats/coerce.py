"""Typed values in flat files: text to Python values and back, per mapped column.

Amounts are ``Decimal`` end to end (never float). Errors are ``RecordError``s whose message
names the place (file, line, column) and the Epicor field, never a secret.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from ..config import Column
from ..errors import RecordError

TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_INT = re.compile(r"^[+-]?\d+$")


class FormatError(RecordError):
    """A whole file cannot be read with its layout (bad header, undecodable bytes…)."""


@dataclass
class Record:
    """One parsed record: its index in the file, where it is, its values or its error."""

    index: int
    position: str  # "line 12" or "line 12 (record D)"
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    record_type: str | None = None


def label(col: Column) -> str:
    return f"{col.header or col.field} ({col.field})" if col.header and col.header != col.field else col.field


def parse_value(text: str, col: Column, where: str, implied_decimals: int = 0) -> Any:
    """Coerce one field's text to the column's type; empty text gives the default or None."""
    if text == "" or (col.type != "str" and text.isspace()):
        if col.default is not None:
            text = col.default
        elif col.required:
            raise RecordError(f"{where}: {label(col)} is required")
        else:
            return None
    t = col.type
    try:
        if t == "str":
            return text
        if t == "int":
            if not _INT.match(text.strip()):
                raise ValueError
            return int(text)
        if t == "decimal":
            raw = text.strip()
            if not _DECIMAL.match(raw):
                raise ValueError
            value = Decimal(raw)
            return value.scaleb(-implied_decimals) if implied_decimals and "." not in raw else value
        if t == "date":
            return datetime.strptime(text.strip(), col.format or "%Y-%m-%d").date()
        if t == "datetime":
            return datetime.strptime(text.strip(), col.format or "%Y-%m-%dT%H:%M:%S")
        if t == "bool":
            low = text.strip().lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise ValueError
    except (ValueError, InvalidOperation):
        shown = text if len(text) <= 40 else text[:40] + "…"
        fmt = f" in format {col.format!r}" if col.format and t in ("date", "datetime") else ""
        raise RecordError(f"{where}: {label(col)}: {shown!r} is not a valid {t}{fmt}") from None
    raise AssertionError(f"unknown type {t}")  # pragma: no cover - the config model limits it


def _decimal_places(pattern: str) -> int | None:
    """Places in a number pattern such as ``0.00`` (None when it is not one)."""
    if re.fullmatch(r"0+(\.0+)?", pattern):
        return len(pattern.split(".")[1]) if "." in pattern else 0
    return None


def format_value(value: Any, col: Column, where: str, implied_decimals: int = 0) -> str:
    """Render one value for a file; None gives the default or empty text."""
    if value is None or value == "":
        if col.required and col.default is None:
            raise RecordError(f"{where}: {label(col)} is required")
        return col.default or ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise RecordError(f"{where}: {label(col)}: float values are refused (use Decimal)")
    if isinstance(value, Decimal) or (col.type == "decimal" and isinstance(value, int)):
        dec = Decimal(value)
        places = _decimal_places(col.format) if col.format else None
        if places is not None:
            dec = dec.quantize(Decimal(1).scaleb(-places))
        if implied_decimals:
            dec = (dec.scaleb(implied_decimals)).quantize(Decimal(1))
            if dec != dec.to_integral_value():  # pragma: no cover - quantize made it integral
                raise RecordError(f"{where}: {label(col)}: {value} has more places than the layout")
        return f"{dec:f}"
    if isinstance(value, datetime):
        return value.strftime(col.format or "%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.strftime(col.format or "%Y-%m-%d")
    return str(value)


DECODE_CHUNK = 1 << 20


def decoded_lines(stream: BinaryIO, encoding: str, name: str) -> Iterator[str]:
    """Lines (with their endings) decoded strictly; a bad byte names its line.

    Decodes a megabyte at a time (cut at a newline, which no supported encoding uses inside a
    multi-byte character), so the cost is close to a plain TextIOWrapper.
    """
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        raise FormatError(f"{name}: encoding {encoding} is not supported for line-based files")
    line_no = 0
    rest = b""
    first = True
    while True:
        raw = stream.read(DECODE_CHUNK)
        data = rest + raw
        if raw:
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            data, rest = data[:cut], data[cut:]
        else:
            rest = b""
        if not data:
            return
        if first:
            first = False
            if data.startswith(codecs.BOM_UTF8) and codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
                data = data[len(codecs.BOM_UTF8) :]
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            bad_line = line_no + data.count(b"\n", 0, exc.start) + 1
            raise FormatError(f"{name}: line {bad_line}: bytes are not valid {encoding} ({exc.reason})") from None
        # Only LF ends a line: str.splitlines() would also split on \x1c-\x1e, \x85, \u2028…
        lines = text.split("\n")
        last = lines.pop()
        line_no += len(lines)
        for line in lines:
            yield line + "\n"
        if last:
            line_no += 1
            yield last
        if not raw:
            return
