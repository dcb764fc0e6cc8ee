"""Typed values in flat files: text to Python values and back, per mapped column.

Amounts are ``Decimal`` end to end (never float). Errors are ``RecordError``s whose message
names the place (file, line, column) and the Epicor field, never a secret.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from ..config import Column
from ..errors import RecordError

TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}
_INT = re.compile(r"^[+-]?\d+$")


class FormatError(RecordError):
    """A whole file cannot be read with its layout (bad header, undecodable bytes…)."""


@dataclass(slots=True)
class Record:
    """One parsed record: its index in the file, where it is, its values or its error."""

    index: int
    position: str  # "line 12" or "line 12 (record D)"
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    record_type: str | None = None


def label(col: Column) -> str:
    return f"{col.header or col.field} ({col.field})" if col.header and col.header != col.field else col.field


Parser = Callable[[str], Any]
Formatter = Callable[[Any], str]


def _bad(col: Column, text: str, kind: str) -> RecordError:
    shown = text if len(text) <= 40 else text[:40] + "…"
    fmt = f" in format {col.format!r}" if col.format and kind in ("date", "datetime") else ""
    return RecordError(f"{label(col)}: {shown!r} is not a valid {kind}{fmt}")


def compile_parser(col: Column, implied_decimals: int = 0) -> Parser:
    """A function text -> value for one column; raises ``RecordError`` without a location.

    Built once per column so the per-field cost is one call (the hot path of every reader).
    """
    t, default, required = col.type, col.default, col.required
    name = label(col)

    def empty() -> Any:
        if default is not None:
            return convert(default)
        if required:
            raise RecordError(f"{name} is required")
        return None

    if t == "str":
        if default is None and not required:
            return lambda text: text if text else None

        def convert(text: str) -> Any:
            return text

        return lambda text: text if text else empty()

    if t == "decimal":
        places = -implied_decimals

        def convert(text: str) -> Any:
            try:
                if "_" in text or "e" in text or "E" in text:
                    raise InvalidOperation
                value = Decimal(text)
            except InvalidOperation:
                raise _bad(col, text, "decimal") from None
            if not value.is_finite():
                raise _bad(col, text, "decimal")
            return value.scaleb(places) if places and "." not in text else value

        if not places:
            # The common CSV case: the checks of ``convert`` inlined (no inner call per field).
            def parse_decimal(text: str) -> Any:
                if not text or text.isspace():
                    return empty()
                if "_" in text or "e" in text or "E" in text:
                    raise _bad(col, text, "decimal")
                try:
                    value = Decimal(text)
                except InvalidOperation:
                    raise _bad(col, text, "decimal") from None
                if not value.is_finite():
                    raise _bad(col, text, "decimal")
                return value

            return parse_decimal

    elif t == "int":

        def convert(text: str) -> Any:
            if not _INT.match(text.strip()):
                raise _bad(col, text, "int")
            return int(text)

    elif t in ("date", "datetime"):
        fmt = col.format or ("%Y-%m-%d" if t == "date" else "%Y-%m-%dT%H:%M:%S")

        def convert(text: str) -> Any:
            try:
                parsed = datetime.strptime(text.strip(), fmt)
            except ValueError:
                raise _bad(col, text, t) from None
            return parsed.date() if t == "date" else parsed

    elif t == "bool":

        def convert(text: str) -> Any:
            low = text.strip().lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise _bad(col, text, "bool")

    else:  # pragma: no cover - the config model limits the types
        raise AssertionError(f"unknown type {t}")

    def parse(text: str) -> Any:
        if not text or text.isspace():
            return empty()
        return convert(text)

    return parse


def parse_value(text: str, col: Column, where: str, implied_decimals: int = 0) -> Any:
    """Coerce one field's text to the column's type; empty text gives the default or None."""
    try:
        return compile_parser(col, implied_decimals)(text)
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None


def _decimal_places(pattern: str) -> int | None:
    """Places in a number pattern such as ``0.00`` (None when it is not one)."""
    if re.fullmatch(r"0+(\.0+)?", pattern):
        return len(pattern.split(".")[1]) if "." in pattern else 0
    return None


def decimal_quantum(col: Column) -> Decimal | None:
    """The quantum a ``Decimal`` is rounded to for the column's number pattern (``0.00``: 0.01)."""
    places = _decimal_places(col.format) if col.format else None
    return Decimal(1).scaleb(-places) if places is not None else None


def compile_formatter(col: Column, implied_decimals: int = 0) -> Formatter:
    """A function value -> text for one column; raises ``RecordError`` without a location.

    ``CsvWriter`` inlines its first two cases (non-empty ``str``; ``Decimal`` with a pattern and
    no implied decimals): keep them first, or change it too.
    """
    name = label(col)
    default, required = col.default, col.required
    quantum = decimal_quantum(col)
    date_fmt = col.format or "%Y-%m-%d"
    datetime_fmt = col.format or "%Y-%m-%dT%H:%M:%S"
    is_decimal = col.type == "decimal"

    def fmt(value: Any) -> str:
        kind = type(value)
        if kind is str and value:
            return value  # type: ignore[no-any-return]
        if kind is Decimal and quantum is not None and not implied_decimals:
            return f"{value.quantize(quantum):f}"
        if value is None or value == "":
            if required and default is None:
                raise RecordError(f"{name} is required")
            return default or ""
        if type(value) is str:
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            raise RecordError(f"{name}: float values are refused (use Decimal)")
        if isinstance(value, Decimal) or (is_decimal and isinstance(value, int)):
            dec = Decimal(value)
            if quantum is not None:
                dec = dec.quantize(quantum)
            if implied_decimals:
                dec = dec.scaleb(implied_decimals).quantize(Decimal(1))
            return f"{dec:f}"
        if isinstance(value, datetime):
            return value.strftime(datetime_fmt)
        if isinstance(value, date):
            return value.strftime(date_fmt)
        return str(value)

    return fmt


def format_value(value: Any, col: Column, where: str, implied_decimals: int = 0) -> str:
    """Render one value for a file; None gives the default or empty text."""
    try:
        return compile_formatter(col, implied_decimals)(value)
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None


DECODE_CHUNK = 1 << 20


class ShortLines:
    """What ``decoded_lines`` found about line lengths, for a reader that bounds field sizes.

    Set as each chunk is decoded (before its first line is handed out): every line numbered up
    to ``safe_until`` in the chunk being read has at most ``limit`` characters before its LF, so
    no field of a record on one such line can be longer. 0 until a chunk is decoded; below the
    chunk's first line when the chunk may hold a longer line (the reader then checks every row).
    """

    __slots__ = ("limit", "safe_until")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.safe_until = 0


def no_line_over(text: str, limit: int) -> bool:
    """True if no line of ``text`` has more than ``limit`` characters before its LF.

    Conservative (a line of up to twice ``limit`` may give False) and cheap: any run of
    ``limit + 1`` characters without an LF covers a whole aligned window of ``(limit + 1) // 2``,
    so one ``str.find`` per window is enough (16 a megabyte at the default limit). Below 256
    characters a window would cost more than it saves: False.
    """
    size = len(text)
    if size <= limit:
        return True
    width = (limit + 1) // 2
    if width < 256:
        return False
    find = text.find
    return all(find("\n", start, start + width) >= 0 for start in range(0, size - width + 1, width))


def decoded_lines(stream: BinaryIO, encoding: str, name: str, short: ShortLines | None = None) -> Iterator[str]:
    """Lines (with their endings) decoded strictly; a bad byte names its line.

    Decodes a megabyte at a time (cut at a newline, which no supported encoding uses inside a
    multi-byte character), so the cost is close to a plain TextIOWrapper. Lines are handed out
    by ``itertools.chain`` from one list (or ``StringIO``) per chunk: no Python code runs per line. With
    ``short``, each chunk's line lengths are checked against ``short.limit`` (see ``ShortLines``).
    """
    return itertools.chain.from_iterable(_decoded_batches(stream, encoding, name, short))


def _decoded_batches(
    stream: BinaryIO, encoding: str, name: str, short: ShortLines | None
) -> Iterator[list[str] | io.StringIO]:
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
        first_line = line_no + 1
        line_no += text.count("\n")
        # The chunk's last line: the one its final LF ends, or an unterminated one at the end.
        last_line = line_no if not text or text.endswith("\n") else line_no + 1
        if short is not None:
            short.safe_until = last_line if no_line_over(text, short.limit) else first_line - 1
        # Only LF ends a line. str.splitlines() also splits at a lone CR, \v, \f, \x1c-\x1e, \x85,
        # \u2028 and \u2029; its pieces are the LF pieces whenever there are as many of them (each
        # LF, alone or in CRLF, ends a piece either way, and any other break would add one).
        # It is the faster split (substrings of the decoded text, measured ~45 ns a line less);
        # otherwise StringIO with newline="\n" splits exactly at LF, in C, translating nothing.
        lines = text.splitlines(keepends=True)
        yield lines if len(lines) == last_line - first_line + 1 else io.StringIO(text, newline="\n")
        if not raw:
            return
