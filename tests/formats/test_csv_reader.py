"""CsvReader against a plain reference reader: same records, positions, values and errors.

The reader's per-row shortcuts (field sizes bounded by line lengths found per decoded chunk, a
compiled values function with an inline decimal parse, records built slot by slot) must give
exactly what checking and parsing every field one at a time gives. The reference below is that
straightforward reader, run over the same lines.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector.config import CsvFormat
from ml_connector.errors import RecordError
from ml_connector.formats import coerce, csvfile
from ml_connector.formats.coerce import FormatError, Record, compile_parser, decoded_lines, label
from ml_connector.formats.csvfile import CsvReader

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_read(data: bytes, fmt: CsvFormat, name: str) -> tuple[list[tuple[Any, ...]], str | None]:
    """Every field checked and parsed one at a time; (records, error of the whole file)."""
    out: list[tuple[Any, ...]] = []
    lines = list(decoded_lines(io.BytesIO(data), fmt.encoding, name))
    reader = csv.reader(iter(lines), delimiter=fmt.delimiter, quotechar=fmt.quotechar, strict=True)
    try:
        cols = fmt.columns
        if fmt.header:
            header = next(reader, None)
            if header is None:
                return out, None
            positions = {h.strip(): i for i, h in enumerate(header)}
            index_of = []
            for i, col in enumerate(cols):
                key = col.header or col.field
                if key not in positions:
                    if col.required:
                        return (
                            out,
                            f"{name}: line 1: the header has no column {key!r} (format.columns[{i}] is required)",
                        )
                    index_of.append(-1)
                else:
                    index_of.append(positions[key])
        else:
            index_of = list(range(len(cols)))
        limit = fmt.max_field_size
        plan = [(c.field, i, compile_parser(c), c) for c, i in zip(cols, index_of, strict=True)]
        plain = [(f, i) for f, i, _p, c in plan if c.type == "str" and c.default is None and not c.required and i >= 0]
        typed = [(f, i, p) for f, i, p, _c in plan if (f, i) not in plain]
        count = 0
        line_after = reader.line_num
        for row in reader:
            line, line_after = line_after + 1, reader.line_num
            if not row or row == [""]:
                continue
            try:
                over = [c for _f, i, _p, c in plan if 0 <= i < len(row) and len(row[i]) > limit]
                if over:
                    raise RecordError(f"{label(over[0])}: field is {max(map(len, row))} characters, limit {limit}")
                row = row + [""] * (max(index_of, default=-1) + 1 - len(row))
                values = {f: row[i] or None for f, i in plain}
                for f, i, parse in typed:
                    values[f] = parse(row[i] if i >= 0 else "")
            except RecordError as exc:
                out.append((count, f"line {line}", {}, f"{name}: line {line}: {exc}", None))
            else:
                out.append((count, f"line {line}", values, None, None))
            count += 1
    except csv.Error as exc:
        return out, f"{name}: line {reader.line_num}: {exc}"
    return out, None


def ours(data: bytes, fmt: CsvFormat, name: str) -> tuple[list[tuple[Any, ...]], str | None]:
    out: list[tuple[Any, ...]] = []
    try:
        for r in CsvReader(io.BytesIO(data), fmt, name):
            assert type(r) is Record
            out.append(dataclasses.astuple(r))
    except FormatError as exc:
        return out, str(exc)
    return out, None


def test_record_slots_are_the_dataclass_fields() -> None:
    # The reader sets these slots itself instead of calling Record(...): a new field needs adding there.
    assert tuple(f.name for f in dataclasses.fields(Record)) == csvfile.RECORD_SLOTS
    rec = next(
        iter(
            CsvReader(io.BytesIO(b"A\r\nx\r\n"), CsvFormat.model_validate({"type": "csv", "columns": [{"field": "A"}]}))
        )
    )
    assert rec == Record(0, "line 2", {"A": "x"})


@pytest.mark.parametrize("limit", [1, 5, 255, 511, 512, 1000, 131072])
def test_no_line_over_matches_the_longest_line(limit: int) -> None:
    for lengths in ([], [0], [limit], [limit + 1], [3, limit, 2], [limit - 1, limit + 1, 4], [2 * limit, 1], [7] * 400):
        text = "".join("x" * n + "\n" for n in lengths) + ("y" * (limit + 1) if lengths == [7] * 400 else "")
        longest = max((len(line) for line in text.split("\n")), default=0)
        if coerce.no_line_over(text, limit):  # may say False for a short file, never True for a long line
            assert longest <= limit, (limit, lengths)
        elif len(text) > limit and (limit + 1) // 2 >= 256 and longest <= limit // 2:
            pytest.fail(f"a file whose lines are all short was refused: {limit} {lengths}")


DECIMALS = ["1.50", "-2", "+3.", ".5", " 4 ", "\t5\t", "1e5", "1E5", "1_000", "NaN", "-Infinity", "inf", "sNaN", "٣.٥",
            "²", "1.2.3", "", " ", "\x1c", "0x10", "00012.3400", "-0", "9" * 60, "1,5"]  # fmt: skip
TEXTS = ["", "x", "a b", " ", '"quoted, with\nnewline"', '"say ""hi"""', "é€日", "=1+2"]


def _columns(draw: st.DrawFn) -> list[dict[str, Any]]:
    cols = []
    for k in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["str", "str", "decimal", "int", "bool", "date"]))
        col: dict[str, Any] = {"field": f"F{k % 4}", "header": f"H{k}", "type": kind}
        if draw(st.integers(0, 4)) == 0:
            col["required"] = True
        elif draw(st.integers(0, 3)) == 0:
            col["default"] = {"str": "dflt", "decimal": "0.00", "int": "0", "bool": "no", "date": "2026-01-01"}[kind]
        cols.append(col)
    return cols


@st.composite
def files(draw: st.DrawFn) -> tuple[CsvFormat, bytes, int]:
    cols = _columns(draw)
    limit = draw(st.sampled_from([1, 4, 300, 511, 600, 1000, 131072]))
    fmt = CsvFormat.model_validate(
        {"type": "csv", "columns": cols, "max_field_size": limit, "header": draw(st.booleans())}
    )
    bad_file = draw(st.integers(0, 9)) == 0  # now and then a file the csv module refuses
    field = st.one_of(
        st.sampled_from(DECIMALS + TEXTS + ["1", "0", "yes", "2026-02-03", "Infinity", "1e3"]),
        st.sampled_from(DECIMALS),
        st.integers(250, 1300).map(lambda n: "L" * n),
        st.integers(250, 700).map(lambda n: '"' + "M\r\n" * (n // 3) + '"'),
        st.text(alphabet='ab,"\r\n 1.' if bad_file else "ab 1.", max_size=8),
    )
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    header_names = [c["header"] for c in cols]
    if draw(st.booleans()):
        header_names = [*header_names[::-1], "extra"]
    if draw(st.integers(0, 5)) == 0 and header_names:
        header_names = header_names[1:]  # a missing column: the default, None or a required-column error
    lines = [",".join(header_names)] if fmt.header else []
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 7)) == 0:
            lines.append(draw(st.sampled_from(["", '""', " "])))
            continue
        lines.append(",".join(draw(st.lists(field, min_size=1, max_size=len(cols) + 2))))
    text = ending.join(lines) + (ending if draw(st.booleans()) else "")
    chunk = draw(st.sampled_from([16, 200, 1024, 4096, 1 << 20]))
    return fmt, text.encode(), chunk


@SETTINGS
@given(files())
def test_reader_matches_the_reference(case: tuple[CsvFormat, bytes, int]) -> None:
    fmt, data, chunk = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coerce, "DECODE_CHUNK", chunk)
        assert ours(data, fmt, "in.csv") == reference_read(data, fmt, "in.csv")


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_long_fields_on_short_and_long_lines(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coerce, "DECODE_CHUNK", chunk)
    fmt = CsvFormat.model_validate({"type": "csv", "max_field_size": 600, "columns": [{"field": "A"}, {"field": "B"}]})
    rows = [f"a{i},b{i}" for i in range(300)]
    rows[100] = "x," + "y" * 600  # at the limit
    rows[150] = "x," + "y" * 601
    rows[200] = 'x,"' + "z\r\n" * 201 + '"'  # 603 characters over 202 lines, every line short
    rows[250] = "x," + "w" * 1200
    data = ("A,B\r\n" + "\r\n".join(rows) + "\r\n").encode()
    recs = list(CsvReader(io.BytesIO(data), fmt, "in.csv"))
    errors = {r.index: r.error for r in recs if r.error}
    assert errors == {
        150: "in.csv: line 152: B: field is 601 characters, limit 600",
        200: "in.csv: line 202: B: field is 603 characters, limit 600",
        250: "in.csv: line 453: B: field is 1200 characters, limit 600",
    }
    assert recs[100].values["B"] == "y" * 600 and recs[251].position == "line 454"


def test_inline_decimal_parse_is_the_parser() -> None:
    for required, default in ((False, None), (True, None), (False, "1.00")):
        col = CsvFormat.model_validate(
            {"type": "csv", "columns": [{"field": "Amt", "type": "decimal", "required": required, "default": default}]}
        ).columns[0]
        build = csvfile._values_builder([("S", 1)], [("Amt", 0, compile_parser(col), col)])
        parse = compile_parser(col)
        for text in DECIMALS:
            try:
                expected: Any = {"S": "s", "Amt": parse(text)}
            except RecordError as exc:
                with pytest.raises(RecordError) as got:
                    build([text, "s"])
                assert str(got.value) == str(exc)
            else:
                value = build([text, "s"])
                assert value == expected and str(value["Amt"]) == str(expected["Amt"]), text
                assert type(value["Amt"]) is type(expected["Amt"])
    assert Decimal("1.50") == build(["1.50", ""])["Amt"]


@pytest.mark.parametrize("seed", range(3))
def test_positions_over_many_lines_match_the_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Positions come from a table per thousand lines: blank lines, records over several lines and
    # chunk ends must not shift them, across thousands of lines.
    import random

    rnd = random.Random(seed)
    monkeypatch.setattr(coerce, "DECODE_CHUNK", rnd.choice([100, 4096, 1 << 20]))
    fmt = CsvFormat.model_validate(
        {"type": "csv", "columns": [{"field": "A"}, {"field": "Amt", "type": "decimal"}], "max_field_size": 700}
    )
    lines = ["A,Amt"]
    for i in range(6000):
        kind = rnd.randrange(20)
        if kind == 0:
            lines.append("")
        elif kind == 1:
            lines.append(f'"multi\r\n{i}\r\nline",1.{i}')
        elif kind == 2:
            lines.append(f"x{i},{rnd.choice(DECIMALS)}")
        elif kind == 3:
            lines.append("L" * rnd.randrange(690, 710) + ",1")
        else:
            lines.append(f"x{i},{i}.50")
    data = ("\r\n".join(lines) + "\r\n").encode()
    got, expected = ours(data, fmt, "in.csv"), reference_read(data, fmt, "in.csv")
    assert got == expected
    assert int(got[0][-1][1].split()[1]) > 6000
