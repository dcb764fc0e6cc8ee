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
import functools
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from types import CodeType, SimpleNamespace
from typing import Any, BinaryIO

from ..config import Column, CsvFormat
from ..errors import RecordError
from .coerce import (
    FormatError,
    Parser,
    Record,
    ShortLines,
    compile_formatter,
    compile_parser,
    decimal_quantum,
    decoded_lines,
    label,
)

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _ensure_field_limit(limit: int) -> None:
    # csv.field_size_limit is process-wide: only ever raise it; our own check enforces `limit`.
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> CodeType:
    """Compiling a row function costs ~0.1 ms; files of one layout share the code object."""
    return compile(source, "<ml_connector.formats.csvfile>", "exec")


def _values_builder(
    plain: list[tuple[str, int]], typed: list[tuple[str, int, Parser, Column]]
) -> Callable[[list[str]], dict[str, Any]]:
    """A function row -> {field: value} for one file's columns, compiled from source once per file.

    Plain text columns (no type, default or requirement) are ``row[i] or None``; typed columns call
    their ``compile_parser`` function, in column order, after the plain ones (so the dict's key
    order and the first error reported are those of filling it one column at a time). A decimal
    column tries ``Decimal(text)`` inline and keeps it when the parser would return it unchanged:
    it parsed, is finite, and has no ``_`` or exponent (``coerce.compile_parser`` refuses those);
    anything else, empty and blank text included, goes to the column's parser for its value,
    default or error. One call and one dict display a row (timeit, three text columns and a
    decimal, as in bench/formats.py: 0.37 us a row with a lambda for the text columns plus the
    decimal parser, 0.31 us compiled).

    The source holds only ``repr()`` literals of the field names, integer indexes and local names.
    """
    namespace: dict[str, Any] = {"Decimal": Decimal}
    body = []
    items = [f"{f!r}: row[{i}] or None" for f, i in plain]
    for k, (f, i, parse, col) in enumerate(typed):
        namespace[f"p{k}"] = parse
        text = f"row[{i}]" if i >= 0 else '""'
        if col.type == "decimal":
            body += [
                f"    t{k} = {text}",
                "    try:",
                f"        v{k} = Decimal(t{k})",
                "    except Exception:",
                f"        v{k} = p{k}(t{k})",
                "    else:",
                f'        if "_" in t{k} or "e" in t{k} or "E" in t{k} or not v{k}.is_finite():',
                f"            v{k} = p{k}(t{k})",
            ]
        else:
            body.append(f"    v{k} = p{k}({text})")
        items.append(f"{f!r}: v{k}")
    source = "\n".join(["def build(row):", *body, "    return {" + ", ".join(items) + "}"])
    exec(_compiled(source), namespace)  # noqa: S102 - source made of literals above, no input text
    build: Callable[[list[str]], dict[str, Any]] = namespace["build"]
    return build


def _plain_values(plain: list[tuple[str, int]]) -> Callable[[list[str]], dict[str, Any]]:
    """A function row -> {field: text or None} for plain text columns only."""
    return _values_builder(plain, [])


# "line N" for a record's position: the thousands prefix once per thousand lines, then a
# concatenation with a three-digit tail from this table (turning an int into text per row measured
# 70 ns, this 40 ns). Lines below 1000 have their whole text in the second table.
LINE_TAILS = tuple(f"{i:03d}" for i in range(1000))
FIRST_LINES = tuple(f"line {i}" for i in range(1000))

# Records are built by setting their slots (0.13 -> 0.08 us a row against calling the dataclass's
# __init__); tests/formats/test_csv_reader.py holds this list equal to Record's fields.
RECORD_SLOTS = ("index", "position", "values", "error", "record_type")


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
        short = ShortLines(fmt.max_field_size)
        reader = csv.reader(
            decoded_lines(self._stream, fmt.encoding, self.name, short),
            delimiter=fmt.delimiter,
            quotechar=fmt.quotechar,
            strict=True,
        )
        return self._records(reader, short)

    def _records(self, reader: Any, short: ShortLines) -> Iterator[Record]:
        # The per-row path, profiled (bench/formats.py, docs/benchmarks.md): rows come straight
        # from the C reader (no generator layer in between), lines from itertools.chain, the
        # line number from the reader, the values from one compiled function.
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
            typed = [(f, i, p, c) for (f, i, p, c) in plan if (f, i) not in plain]
            width = max(index_of, default=-1) + 1
            # A row shorter than this is blank (no field, or one empty field) or needs padding.
            short_row = max(width, 2)
            name = self.name
            build = _values_builder(plain, typed)
            new = Record.__new__
            safe_until = 0  # short.safe_until, read again when a row is past it
            block_start = block_end = 0  # the thousand lines `prefix` + `tails` name
            prefix, tails = "", FIRST_LINES
            line_after = reader.line_num  # the last physical line read so far
            for row in reader:
                line = line_after + 1  # a quoted field may span lines: the record starts after the last one
                line_after = reader.line_num
                n = len(row)
                if n < short_row:
                    if n <= 1 and (not row or row[0] == ""):
                        continue  # blank line
                    if n < width:
                        row = row + [""] * (width - n)
                try:
                    # No field of a one-line record is longer than its line: rows on lines that
                    # decoded_lines found short skip the check; others (a record over several
                    # lines, or a chunk with a long line) are checked field by field.
                    if line_after != line or line_after > safe_until:
                        safe_until = short.safe_until
                        if (line_after != line or line_after > safe_until) and len("".join(row)) > limit:
                            # The joined length bounds every field's; the exact check only when it could fail.
                            over = [c for _f, i, _p, c in plan if 0 <= i < n and len(row[i]) > limit]
                            if over:
                                raise RecordError(
                                    f"{label(over[0])}: field is {max(map(len, row))} characters, limit {limit}"
                                )
                    values = build(row)
                except RecordError as exc:
                    yield Record(count, f"line {line}", {}, f"{name}: line {line}: {exc}")
                else:
                    if line >= block_end:
                        block_start = line - line % 1000
                        block_end = block_start + 1000
                        prefix, tails = (f"line {line // 1000}", LINE_TAILS) if block_start else ("", FIRST_LINES)
                    record = new(Record)
                    record.index = count
                    record.position = prefix + tails[line - block_start]
                    record.values = values
                    record.error = None
                    record.record_type = None
                    yield record
                count += 1
        # Undecodable bytes never reach here: decoded_lines raises FormatError naming their line.
        except csv.Error as exc:
            raise FormatError(f"{self.name}: line {reader.line_num}: {exc}") from None


def _check_sizes(cols: list[Column], limit: int, cells: list[str]) -> None:
    if cells and max(map(len, cells)) > limit:
        col, text = next((c, t) for c, t in zip(cols, cells, strict=True) if len(t) > limit)
        raise RecordError(f"{label(col)}: {len(text)} characters, limit {limit}")


def _check_encodable(cols: list[Column], encoding: str, shown: str, cells: list[str]) -> None:
    for col, text in zip(cols, cells, strict=True):
        try:
            text.encode(encoding)
        except UnicodeEncodeError as exc:
            raise RecordError(f"{label(col)}: character {text[exc.start]!r} cannot be written in {shown}") from None


def _cells_builder(fmt: CsvFormat, encoding: str, unicode_safe: bool) -> Callable[[Mapping[str, Any]], list[str]]:
    """A function record -> cells for one writer, compiled from source once.

    Each column's value is fetched and rendered in column order, with the two commonest cases of
    ``compile_formatter`` inline (a non-empty ``str`` as it is; a ``Decimal`` quantized to the
    column's number pattern) and its formatter for everything else. Then, as ``CsvWriter.render``
    documents: the field-size check (the joined length bounds every cell's; the exact one only
    when it could fail), the encodability check for encodings that lack characters, formula
    neutralisation. One call a row instead of one per cell (bench/formats.py).
    """
    cols = fmt.columns
    namespace: dict[str, Any] = {
        "Decimal": Decimal,
        "TRIGGERS": FORMULA_TRIGGERS,
        "cols": cols,
        "check_sizes": _check_sizes,
        "check_encodable": _check_encodable,
        "encoding": encoding,
        "shown": fmt.encoding,
    }
    items = []
    for k, col in enumerate(cols):
        namespace[f"f{k}"] = compile_formatter(col)
        fetch = f"(v{k} := get({col.field!r}))"
        general = f"v{k} if type(v{k}) is str and v{k} else f{k}(v{k})"
        quantum = decimal_quantum(col)
        if quantum is None:
            items.append(general.replace(f"type(v{k})", f"type({fetch})", 1))  # fetched in the first test
        else:
            namespace[f"q{k}"] = quantum
            items.append(f'f"{{v{k}.quantize(q{k}):f}}" if type({fetch}) is Decimal else {general}')
    limit = fmt.max_field_size
    body = [
        "def cells(record):",
        "    get = record.get",
        "    cells = [" + ", ".join(f"({item})" for item in items) + "]",
        f"    if len(''.join(cells)) > {limit}:",
        f"        check_sizes(cols, {limit}, cells)",
    ]
    if not unicode_safe:
        body.append("    check_encodable(cols, encoding, shown, cells)")
    if fmt.neutralise_formulas:
        body.append('    cells = ["\'" + c if c.startswith(TRIGGERS) else c for c in cells]')
    source = "\n".join([*body, "    return cells"])
    exec(_compiled(source), namespace)  # noqa: S102 - source made of literals above, no record data
    cells: Callable[[Mapping[str, Any]], list[str]] = namespace["cells"]
    return cells


class CsvWriter:
    """Writes mapped records to a binary stream, row by row."""

    def __init__(self, stream: BinaryIO, fmt: CsvFormat, name: str = "<csv>") -> None:
        self.fmt = fmt
        self.name = name
        self._out = stream
        # csv.writer hands each row's text to `write`: collected in a list, joined at a flush
        # (a StringIO's getvalue + seek + truncate per written row measured 0.1 us more).
        self._lines: list[str] = []
        self._csv = csv.writer(
            SimpleNamespace(write=self._lines.append),
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
        self._cells = _cells_builder(fmt, self._encoding, self._unicode_safe)

    def _flush_line(self) -> None:
        text = "".join(self._lines)
        self._lines.clear()
        if self._bom:
            self._out.write(codecs.BOM_UTF8)
            self._bom = False
        self._out.write(text.encode(self._encoding))

    def write_header(self) -> None:
        if self.fmt.header:
            self._csv.writerow([c.header or c.field for c in self._cols])
            self._flush_line()

    def render(self, record: Mapping[str, Any], where: str) -> list[str]:
        """The cells of one record (raises ``RecordError`` without writing anything).

        Each column's value through its formatter; a cell over the field-size limit, or (for an
        encoding that lacks characters) one that cannot be encoded, is a ``RecordError``; formula
        triggers get a leading quote when the format neutralises formulas.
        """
        try:
            return self._cells(record)
        except RecordError as exc:
            raise RecordError(f"{where}: {exc}") from None

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            cells = self._cells(record)
        except RecordError as exc:
            raise RecordError(f"{self.name}: record {self.rows + 1}: {exc}") from None
        self._csv.writerow(cells)
        self._flush_line()
        self.rows += 1

    def write_many(self, records: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]) -> None:
        """Faster path for many records: one encode per batch."""
        cells_of, writerow = self._cells, self._csv.writerow
        batch = 0
        for record in records:
            try:
                cells = cells_of(record)
            except RecordError as exc:
                raise RecordError(f"{self.name}: record {self.rows + 1}: {exc}") from None
            writerow(cells)
            self.rows += 1
            batch += 1
            if batch >= 2000:
                self._flush_line()
                batch = 0
        self._flush_line()
