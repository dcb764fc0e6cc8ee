"""Fixed-width files: columns by 1-based start and length, as partners' specs write them.

Multi-record layouts (header / detail / trailer) are chosen by a record-type field. Values are
never truncated: one too wide for its column is a ``RecordError`` for that record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from ..config import Column, FixedWidthFormat, RecordLayout
from ..errors import RecordError
from .coerce import (
    FormatError,
    Formatter,
    Parser,
    Record,
    compile_formatter,
    compile_parser,
    decoded_lines,
    label,
)


def _slice(line: str, col: Column) -> str:
    assert col.start is not None and col.length is not None
    return line[col.start - 1 : col.start - 1 + col.length]


def _unpad(text: str, col: Column) -> str:
    if col.align == "left":
        return text.rstrip(col.pad)
    out = text.lstrip(col.pad)
    if not out and col.pad == "0" and text:
        return "0"  # an all-zero field is zero, not empty
    return out


def _role(fmt: FixedWidthFormat, role: str) -> RecordLayout | None:
    """The first record layout with ``role`` (header, detail, trailer), or None."""
    return next((r for r in fmt.records if r.role == role), None)


class FixedWidthReader:
    """Iterates detail ``Record``s from a binary stream; bad lines become records with ``error`` set.

    With record roles, the header line (first) and the trailer line (last) are read by their own
    layouts and never yielded: ``header`` / ``trailer`` hold their values, detail columns with
    ``from_header`` take a header value, and the trailer's count and control total are checked
    against the detail records; a misplaced, missing or disagreeing header/trailer raises
    ``FormatError`` naming the line, which rejects the whole file.
    """

    def __init__(self, stream: BinaryIO, fmt: FixedWidthFormat, name: str = "<fixed-width>") -> None:
        self.fmt = fmt
        self.name = name
        self._stream = stream
        self._layouts: dict[str, RecordLayout] = {r.code: r for r in fmt.records}
        self._header_layout = _role(fmt, "header")
        self._trailer_layout = _role(fmt, "trailer")
        self.header: dict[str, Any] | None = None
        self.trailer: dict[str, Any] | None = None
        self.details = 0
        self.total: Decimal = Decimal(0)
        # Parsers compiled once per column, not per field (the per-record hot path).
        self._parsers: dict[int, Parser] = {
            id(col): compile_parser(col, col.implied_decimals)
            for col in [*fmt.columns, *(c for r in fmt.records for c in r.columns)]
            if col.from_header is None
        }

    def _lines(self) -> Iterator[tuple[int, str]]:
        for number, line in enumerate(decoded_lines(self._stream, self.fmt.encoding, self.name), start=1):
            yield number, line.rstrip("\r\n")

    def _values(self, line: str, cols: list[Column], where: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for col in cols:
            if col.from_header is not None:
                values[col.field] = (self.header or {}).get(col.from_header)
                continue
            assert col.start is not None and col.length is not None
            if col.start - 1 >= len(line) and col.required:
                raise RecordError(f"{where}: column {col.start}: line ends at {len(line)}, before {label(col)}")
            raw = _unpad(_slice(line, col), col)
            try:
                values[col.field] = self._parsers[id(col)](raw)
            except RecordError as exc:
                raise RecordError(f"{where}: column {col.start}: {exc}") from None
        return values

    def __iter__(self) -> Iterator[Record]:
        fmt = self.fmt
        count = 0
        trailer_line: int | None = None
        total_of = None
        if self._trailer_layout is not None and self._trailer_layout.total_field is not None:
            total_of = self._trailer_layout.total_of or self._trailer_layout.total_field
        for number, line in self._lines():
            if not line.strip():
                continue
            where = f"{self.name}: line {number}"
            if trailer_line is not None:
                raise FormatError(
                    f"{where}: a record after the trailer (line {trailer_line}); the trailer must be last"
                )
            rec = Record(index=count, position=f"line {number}")
            try:
                cols = fmt.columns
                if fmt.record_type is not None and fmt.records:
                    code = _slice(line, fmt.record_type).strip()
                    layout = self._layouts.get(code)
                    rt = fmt.record_type
                    if layout is None:
                        raise RecordError(
                            f"{where}: unknown record type {code!r} at columns {rt.start}-"
                            f"{(rt.start or 0) + (rt.length or 0) - 1} (expected {', '.join(self._layouts)})"
                        )
                    if layout.role != "detail":
                        where = f"{where} ({layout.role} {code})"
                        if fmt.line_length is not None and len(line) != fmt.line_length:
                            raise FormatError(f"{where}: line is {len(line)} characters, the layout says "
                                              f"{fmt.line_length}")  # fmt: skip
                        try:
                            values = self._values(line, layout.columns, where)
                        except RecordError as exc:
                            raise FormatError(str(exc)) from None
                        if layout.role == "header":
                            if count or self.header is not None:
                                raise FormatError(f"{where}: the header must be the first record")
                            self.header = values
                        else:
                            self.trailer, trailer_line = values, number
                            self._check_trailer(layout, values, where)
                        continue
                    if self._header_layout is not None and self.header is None:
                        raise FormatError(f"{where}: the file has no header record ({self._header_layout.code}) "
                                          "before its first detail")  # fmt: skip
                    rec.record_type = code
                    rec.position = f"line {number} (record {code})"
                    cols = layout.columns
                if fmt.line_length is not None and len(line) != fmt.line_length:
                    raise RecordError(f"{where}: line is {len(line)} characters, the layout says {fmt.line_length}")
                rec.values = self._values(line, cols, where)
                if total_of is not None:
                    amount = rec.values.get(total_of)
                    if isinstance(amount, Decimal | int):
                        self.total += amount
            except FormatError:
                raise  # a header/trailer problem rejects the whole file
            except RecordError as exc:
                rec.error = str(exc)
                rec.values = {}
            count += 1
            self.details += 1
            yield rec
        if self._trailer_layout is not None and self.trailer is None:
            raise FormatError(f"{self.name}: the file ends without its trailer record ({self._trailer_layout.code})")
        if self._header_layout is not None and self.header is None:
            raise FormatError(f"{self.name}: the file has no header record ({self._header_layout.code})")

    def _check_trailer(self, layout: RecordLayout, values: dict[str, Any], where: str) -> None:
        if layout.count_field is not None:
            said = values.get(layout.count_field)
            if said is None or str(said).strip() != str(self.details):
                raise FormatError(
                    f"{where}: {layout.count_field} says {said!r} detail records, the file has {self.details}"
                )
        if layout.total_field is not None:
            said = values.get(layout.total_field)
            try:
                said_amount = Decimal(str(said)) if said is not None else None
            except InvalidOperation:
                said_amount = None
            if said_amount is None or said_amount != self.total:
                raise FormatError(
                    f"{where}: {layout.total_field} says {said!r}, the detail records' "
                    f"{layout.total_of or layout.total_field} add up to {self.total}"
                )


class FixedWidthWriter:
    """Writes records as fixed-width lines to a binary stream."""

    def __init__(self, stream: BinaryIO, fmt: FixedWidthFormat, name: str = "<fixed-width>") -> None:
        self.fmt = fmt
        self.name = name
        self._out = stream
        self._layouts = {r.code: r for r in fmt.records}
        self._formatters: dict[int, Formatter] = {
            id(col): compile_formatter(col, col.implied_decimals)
            for col in [*fmt.columns, *(c for r in fmt.records for c in r.columns)]
        }
        self.rows = 0
        self.details = 0
        self._detail = _role(fmt, "detail")
        self._header = _role(fmt, "header")
        self._trailer = _role(fmt, "trailer")
        self._total_of = (self._trailer.total_of or self._trailer.total_field) if self._trailer else None
        self.total = Decimal(0)

    def _role_values(self, layout: RecordLayout, when: datetime) -> dict[str, Any]:
        """Constants (``value``) of a header/trailer layout; date columns without one get ``when``."""
        values: dict[str, Any] = {}
        for col in layout.columns:
            if col.value is not None:
                values[col.field] = col.value
            elif col.type == "date":
                values[col.field] = when.date()
            elif col.type == "datetime":
                values[col.field] = when
        return values

    def write_header(self, when: datetime) -> None:
        """The header record, when the layout has one (first line of the file)."""
        if self._header is not None:
            self.write(self._role_values(self._header, when), self._header.code)

    def write_trailer(self, when: datetime) -> None:
        """The trailer record with the detail count and control total computed from what was written."""
        if self._trailer is None:
            return
        values = self._role_values(self._trailer, when)
        if self._trailer.count_field is not None:
            values[self._trailer.count_field] = self.details
        if self._trailer.total_field is not None:
            values[self._trailer.total_field] = self.total
        self.write(values, self._trailer.code)

    def render(self, record: Mapping[str, Any], record_type: str | None = None) -> str:
        """One line (without its ending); raises ``RecordError`` and writes nothing on bad data."""
        where = f"{self.name}: record {self.rows + 1}"
        cols = self.fmt.columns
        if record_type is not None:
            layout = self._layouts.get(record_type)
            if layout is None:
                raise RecordError(f"{where}: no layout for record type {record_type!r}")
            cols = layout.columns
        width = max((c.start or 1) + (c.length or 0) - 1 for c in cols)
        if self.fmt.record_type is not None and record_type is not None:
            rt = self.fmt.record_type
            width = max(width, (rt.start or 1) + (rt.length or 0) - 1)
        if self.fmt.line_length:
            width = max(width, self.fmt.line_length)
        line = [" "] * width
        fields: list[tuple[Column, str]] = []
        if self.fmt.record_type is not None and record_type is not None:
            fields.append((self.fmt.record_type, record_type))
        for col in cols:
            if col.from_header is not None:
                continue  # carried by the header line, not repeated on each detail
            try:
                text = self._formatters[id(col)](record.get(col.field))
            except RecordError as exc:
                raise RecordError(f"{where}: {exc}") from None
            fields.append((col, text))
        for col, text in fields:
            assert col.start is not None and col.length is not None
            if "\n" in text or "\r" in text:
                raise RecordError(f"{where}: {label(col)}: value contains a line break")
            if "\ufeff" in text:
                # At the start of a file it would read back as a byte-order mark and vanish.
                raise RecordError(f"{where}: {label(col)}: value contains a byte-order mark (U+FEFF)")
            if len(text) > col.length:
                shown = text if len(text) <= 30 else text[:30] + "…"
                raise RecordError(
                    f"{where}: {label(col)}: {shown!r} is {len(text)} characters, the column (start {col.start}) "
                    f"is {col.length} wide"
                )
            if col.align == "left":
                cell = text.ljust(col.length, col.pad)
            elif col.pad == "0" and text.startswith("-"):
                cell = "-" + text[1:].rjust(col.length - 1, "0")  # zero-fill after the sign
            else:
                cell = text.rjust(col.length, col.pad)
            line[col.start - 1 : col.start - 1 + col.length] = list(cell)
        return "".join(line)

    def write(self, record: Mapping[str, Any], record_type: str | None = None) -> None:
        detail = record_type is None or (self._detail is not None and record_type == self._detail.code)
        if record_type is None and self._detail is not None:
            record_type = self._detail.code  # a plain record of a multi-record layout is a detail
        line = self.render(record, record_type) + self.fmt.line_ending
        try:
            data = line.encode(self.fmt.encoding)
        except UnicodeEncodeError as exc:
            raise RecordError(
                f"{self.name}: record {self.rows + 1}: character {line[exc.start]!r} cannot be written in "
                f"{self.fmt.encoding}"
            ) from None
        self._out.write(data)
        self.rows += 1
        if detail:
            self.details += 1
            amount = record.get(self._total_of) if self._total_of else None
            if isinstance(amount, Decimal | int) and not isinstance(amount, bool):
                self.total += amount
