"""Fixed-width files: columns by 1-based start and length, as partners' specs write them.

Multi-record layouts (header / detail / trailer) are chosen by a record-type field. Values are
never truncated: one too wide for its column is a ``RecordError`` for that record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from ..config import Column, FixedWidthFormat, RecordLayout
from ..errors import RecordError
from .coerce import Formatter, Parser, Record, compile_formatter, compile_parser, decoded_lines, label


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


class FixedWidthReader:
    """Iterates ``Record``s from a binary stream; bad lines become records with ``error`` set."""

    def __init__(self, stream: BinaryIO, fmt: FixedWidthFormat, name: str = "<fixed-width>") -> None:
        self.fmt = fmt
        self.name = name
        self._stream = stream
        self._layouts: dict[str, RecordLayout] = {r.code: r for r in fmt.records}
        # Parsers compiled once per column, not per field (the per-record hot path).
        self._parsers: dict[int, Parser] = {
            id(col): compile_parser(col, col.implied_decimals)
            for col in [*fmt.columns, *(c for r in fmt.records for c in r.columns)]
        }

    def _lines(self) -> Iterator[tuple[int, str]]:
        for number, line in enumerate(decoded_lines(self._stream, self.fmt.encoding, self.name), start=1):
            yield number, line.rstrip("\r\n")

    def __iter__(self) -> Iterator[Record]:
        fmt = self.fmt
        count = 0
        for number, line in self._lines():
            if not line.strip():
                continue
            where = f"{self.name}: line {number}"
            rec = Record(index=count, position=f"line {number}")
            count += 1
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
                    rec.record_type = code
                    rec.position = f"line {number} (record {code})"
                    cols = layout.columns
                if fmt.line_length is not None and len(line) != fmt.line_length:
                    raise RecordError(f"{where}: line is {len(line)} characters, the layout says {fmt.line_length}")
                for col in cols:
                    assert col.start is not None and col.length is not None
                    if col.start - 1 >= len(line) and col.required:
                        raise RecordError(f"{where}: column {col.start}: line ends at {len(line)}, before {label(col)}")
                    raw = _unpad(_slice(line, col), col)
                    try:
                        rec.values[col.field] = self._parsers[id(col)](raw)
                    except RecordError as exc:
                        raise RecordError(f"{where}: column {col.start}: {exc}") from None
            except RecordError as exc:
                rec.error = str(exc)
                rec.values = {}
            yield rec


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
