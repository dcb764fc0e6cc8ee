"""CSV with a header mapping both ways, strict decoding and typed coercion, streaming.

Reading decodes strictly: an undecodable byte is a ``FormatError`` naming the line, never a
silent replacement. Writing encodes each row for the partner's encoding, so a character the
encoding lacks is a ``RecordError`` for that row alone. Spreadsheet formula neutralisation is a
per-flow switch: on for partners who open files in Excel, off for machine partners (where a
leading quote would corrupt ``-12.50``).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from ..config import CsvFormat
from ..errors import RecordError
from .coerce import FormatError, Record, compile_formatter, compile_parser, decoded_lines, label

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _ensure_field_limit(limit: int) -> None:
    # csv.field_size_limit is process-wide: only ever raise it; our own check enforces `limit`.
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _plain_values(plain: list[tuple[str, int]]) -> Callable[[list[str]], dict[str, Any]]:
    """A function row -> {field: text or None} for plain text columns.

    Unrolled for up to six columns: on Python 3.11 a dict comprehension creates and calls a
    function and loops per row; one dict display does neither (measured 0.22 -> 0.11 us a row).
    """
    n = len(plain)
    if n == 0:
        return lambda row: {}
    if n > 6:
        return lambda row: {f: row[i] or None for f, i in plain}
    (f0, i0), *rest = plain
    if n == 1:
        return lambda row: {f0: row[i0] or None}
    (f1, i1), *rest = rest
    if n == 2:
        return lambda row: {f0: row[i0] or None, f1: row[i1] or None}
    (f2, i2), *rest = rest
    if n == 3:
        return lambda row: {f0: row[i0] or None, f1: row[i1] or None, f2: row[i2] or None}
    (f3, i3), *rest = rest
    if n == 4:
        return lambda row: {f0: row[i0] or None, f1: row[i1] or None, f2: row[i2] or None, f3: row[i3] or None}
    (f4, i4), *rest = rest
    if n == 5:
        return lambda row: {f0: row[i0] or None, f1: row[i1] or None, f2: row[i2] or None, f3: row[i3] or None,
                            f4: row[i4] or None}  # fmt: skip
    ((f5, i5),) = rest
    return lambda row: {f0: row[i0] or None, f1: row[i1] or None, f2: row[i2] or None, f3: row[i3] or None,
                        f4: row[i4] or None, f5: row[i5] or None}  # fmt: skip


class CsvReader:
    """Iterates ``Record``s from a binary stream; bad rows become records with ``error`` set."""

    def __init__(self, stream: BinaryIO, fmt: CsvFormat, name: str = "<csv>") -> None:
        self.fmt = fmt
        self.name = name
        self._stream = stream
        self.header: list[str] | None = None
        _ensure_field_limit(fmt.max_field_size + 1)

    def __iter__(self) -> Iterator[Record]:
        fmt = self.fmt
        reader = csv.reader(
            decoded_lines(self._stream, fmt.encoding, self.name),
            delimiter=fmt.delimiter,
            quotechar=fmt.quotechar,
            strict=True,
        )
        return self._records(reader)

    def _records(self, reader: Any) -> Iterator[Record]:
        # The per-row path, profiled (bench/formats.py, docs/benchmarks.md): rows come straight
        # from the C reader (no generator layer in between), lines from itertools.chain, the
        # line number from the reader, and a single typed column is parsed without a loop.
        try:
            fmt = self.fmt
            cols = fmt.columns
            index_of: list[int]
            if fmt.header:
                header = next(reader, None)
                if header is None:
                    return
                self.header = header
                positions = {h.strip(): i for i, h in enumerate(header)}
                index_of = []
                for i, col in enumerate(cols):
                    key = col.header or col.field
                    if key not in positions:
                        if col.required:
                            raise FormatError(
                                f"{self.name}: line 1: the header has no column {key!r} "
                                f"(format.columns[{i}] is required)"
                            )
                        index_of.append(-1)
                    else:
                        index_of.append(positions[key])
            else:
                index_of = list(range(len(cols)))
            count = 0
            limit = fmt.max_field_size
            plan = [(col.field, i, compile_parser(col), col) for col, i in zip(cols, index_of, strict=True)]
            # Plain text columns (no type, default or requirement) need no call per field.
            plain = [
                (f, i) for (f, i, _p, c) in plan if c.type == "str" and c.default is None and not c.required and i >= 0
            ]
            typed = [(f, i, p) for (f, i, p, c) in plan if (f, i) not in plain]
            width = max(index_of, default=-1) + 1
            name = self.name
            one_typed = typed[0] if len(typed) == 1 and typed[0][1] >= 0 else None
            typed_field, typed_index, typed_parse = one_typed or ("", 0, str)
            plain_values = _plain_values(plain)
            line_after = reader.line_num  # the last physical line read so far
            for row in reader:
                line = line_after + 1  # a quoted field may span lines: the record starts after the last one
                line_after = reader.line_num
                n = len(row)
                if n <= 1 and (not row or row[0] == ""):
                    continue  # blank line
                try:
                    # The joined length bounds every field's: one C call per row, the exact check only
                    # when it could fail (measured 3x cheaper than max(map(len, row)) on every row).
                    if len("".join(row)) > limit and max(map(len, row)) > limit:
                        over = [c for _f, i, _p, c in plan if 0 <= i < n and len(row[i]) > limit]
                        if over:
                            raise RecordError(
                                f"{label(over[0])}: field is {max(map(len, row))} characters, limit {limit}"
                            )
                    if n < width:
                        row = row + [""] * (width - n)
                    values = plain_values(row)
                    if one_typed is not None:
                        values[typed_field] = typed_parse(row[typed_index])
                    else:
                        for f, i, parse in typed:
                            values[f] = parse(row[i] if i >= 0 else "")
                except RecordError as exc:
                    yield Record(count, f"line {line}", {}, f"{name}: line {line}: {exc}")
                else:
                    yield Record(count, f"line {line}", values)
                count += 1
        # Undecodable bytes never reach here: decoded_lines raises FormatError naming their line.
        except csv.Error as exc:
            raise FormatError(f"{self.name}: line {reader.line_num}: {exc}") from None


class CsvWriter:
    """Writes mapped records to a binary stream, row by row."""

    def __init__(self, stream: BinaryIO, fmt: CsvFormat, name: str = "<csv>") -> None:
        self.fmt = fmt
        self.name = name
        self._out = stream
        self._buf = io.StringIO()
        self._csv = csv.writer(
            self._buf,
            delimiter=fmt.delimiter,
            quotechar=fmt.quotechar,
            lineterminator=fmt.line_ending,
            quoting=csv.QUOTE_MINIMAL,
        )
        self._cols = fmt.columns
        codec = codecs.lookup(fmt.encoding).name
        self._encoding = "utf-8" if codec == "utf-8-sig" else fmt.encoding
        self._bom = codec == "utf-8-sig"
        self._unicode_safe = codec in ("utf-8", "utf-8-sig", "utf-16", "utf-32")
        self.rows = 0
        self._plan = [(col.field, compile_formatter(col)) for col in self._cols]

    def _flush_line(self) -> None:
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        if self._bom:
            self._out.write(codecs.BOM_UTF8)
            self._bom = False
        self._out.write(text.encode(self._encoding))

    def write_header(self) -> None:
        if self.fmt.header:
            self._csv.writerow([c.header or c.field for c in self._cols])
            self._flush_line()

    def _cell(self, text: str) -> str:
        if self.fmt.neutralise_formulas and text.startswith(FORMULA_TRIGGERS):
            return "'" + text
        return text

    def render(self, record: Mapping[str, Any], where: str) -> list[str]:
        """The cells of one record (raises ``RecordError`` without writing anything)."""
        try:
            cells = [fmt(record.get(field)) for field, fmt in self._plan]
            limit = self.fmt.max_field_size
            if cells and max(map(len, cells)) > limit:
                col, text = next((c, t) for c, t in zip(self._cols, cells, strict=True) if len(t) > limit)
                raise RecordError(f"{label(col)}: {len(text)} characters, limit {limit}")
            if not self._unicode_safe:
                for col, text in zip(self._cols, cells, strict=True):
                    try:
                        text.encode(self._encoding)
                    except UnicodeEncodeError as exc:
                        raise RecordError(
                            f"{label(col)}: character {text[exc.start]!r} cannot be written in {self.fmt.encoding}"
                        ) from None
            if self.fmt.neutralise_formulas:
                cells = [self._cell(c) for c in cells]
        except RecordError as exc:
            raise RecordError(f"{where}: {exc}") from None
        return cells

    def write(self, record: Mapping[str, Any]) -> None:
        where = f"{self.name}: record {self.rows + 1}"
        self._csv.writerow(self.render(record, where))
        self._flush_line()
        self.rows += 1

    def write_many(self, records: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]) -> None:
        """Faster path for many records: one encode per batch."""
        batch = 0
        for record in records:
            where = f"{self.name}: record {self.rows + 1}"
            self._csv.writerow(self.render(record, where))
            self.rows += 1
            batch += 1
            if batch >= 2000:
                self._flush_line()
                batch = 0
        self._flush_line()
