"""Every public sample in ../shared/corpus/x12: parsed, or rejected with the finding SOURCES.md describes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector.formats.x12 import X12Reader, read_x12
from ml_connector.formats.x12 import reader as reader_module
from ml_connector.formats.x12.acks import build_997, read_acks
from ml_connector.formats.x12.remit820 import interpret_820

from ..conftest import X12_CORPUS as CORPUS

# Every test here needs the corpus: missing, it fails under CI=true and skips elsewhere
# (tests/conftest.py). Parameters come from EXPECTED, not from a glob, so a missing corpus can
# never shrink the parameter lists to nothing (an empty list would skip silently).
pytestmark = pytest.mark.usefixtures("x12_corpus")

# file: (sets, set ids, element sep, component sep, segment terminator, expected findings as
# (level, code, severity) — exactly these, no more)
EXPECTED: dict[str, tuple[int, set[str], str, str, str, set[tuple[str, str, str]]]] = {
    "214_edinet_1.edi": (1, {"214"}, "*", ">", "~", set()),  # ISA broken across two lines
    "810_edinet_1.edi": (1, {"810"}, "*", ">", "~", set()),  # unpadded ISA, tab indentation
    "810_moov_1.edi": (2, {"810"}, "*", "|", "~", set()),
    "810_oopfactory_1.edi": (1, {"810"}, "*", ":", "~", set()),
    "810_oopfactory_2.edi": (2, {"810"}, "*", ":", "~", set()),
    "810_stupidedi_1.edi": (1, {"810"}, "|", ">", "~", set()),  # pipe element separator
    "810_stupidedi_2.edi": (1, {"810"}, "*", ":", "~", set()),
    "820_edinet_1.edi": (1, {"820"}, "*", ">", "\n", set()),  # newline is the terminator
    "820_moov_1.edi": (1, {"820"}, "*", "~", "\\", set()),  # ISA16 '~', backslash terminator
    "820_oopfactory_1.edi": (
        1, {"820"}, "*", ">", "\n",
        {("interchange", "017", "warning"), ("interchange", "004", "warning")},  # ISA12 00040; no final terminator
    ),
    "820_oopfactory_2.edi": (
        1, {"820"}, "*", "@", "\n",
        {("interchange", "006", "warning"), ("interchange", "017", "warning"), ("interchange", "001", "warning"),
         ("interchange", "004", "warning")},
    ),  # ISA12 00410; IEA02 with a leading space
    "820_oopfactory_3.edi": (
        1, {"820"}, "*", ">", "~", {("group", "6", "error"), ("group", "4", "error")},
    ),  # GS06 "44 (Group Control Number)" != GE02
    "820_oopfactory_4.edi": (1, {"820"}, "*", ">", "~", set()),
    "820_oopfactory_5.edi": (1, {"820"}, "*", ":", "\\", set()),  # trailing spaces before terminators
    "820_oopfactory_6.edi": (
        1, {"820"}, "*", ":", "\\",
        {("interchange", "014", "warning"), ("interchange", "017", "warning"), ("set", "3", "warning")},
    ),  # month 15; ISA12 00101; ST02 0001203 vs SE02 000001203
    "820_oopfactory_7.edi": (1, {"820"}, "*", ":", "~", set()),
    "820_stupidedi_1.edi": (1, {"820"}, "*", "@", "\n", set()),
    "820_stupidedi_2.edi": (1, {"820"}, "*", ":", "~", set()),
    "820_stupidedi_3.edi": (1, {"820"}, "*", ":", "~", set()),
    "824_apimeister_1.edi": (1, {"824"}, "*", ">", "~", set()),
    "824_oopfactory_1.edi": (1, {"824"}, "*", "_", "\n", {("interchange", "004", "warning")}),
    "824_oopfactory_2.edi": (1, {"824"}, "*", "~", "\n", {("interchange", "004", "warning")}),  # ISA16 '~'
    "824_stupidedi_1.edi": (1, {"824"}, "*", ":", "~", set()),
    "837_vscode_1.edi": (
        1, {"837"}, "|", "!", "~",
        {("set", "2", "error"), ("group", "3", "error"), ("interchange", "023", "error")},
    ),  # odd delimiters; the sample stops before SE/GE/IEA
    "997_gtlogistics_1.edi": (1, {"997"}, "*", "`", "~", set()),
    "997_stupidedi_1.edi": (1, {"997"}, "*", "`", "\n", set()),
    "997_stupidedi_2.edi": (1, {"997"}, "*", ":", "~", set()),
    "999_imsweb_1.edi": (1, {"999"}, "*", ":", "~", {("interchange", "001", "error")}),  # ISA13 != IEA02
    "999_imsweb_2.edi": (1, {"999"}, "*", "|", "~", set()),
    "999_oopfactory_1.edi": (1, {"999"}, "*", ":", "~", set()),
    "999_stupidedi_1.edi": (1, {"999"}, "*", ":", "~", set()),
    "ta1_oopfactory_1.edi": (0, set(), "*", "^", "~", {("interchange", "024", "warning")}),  # TA1s lack TA105
    "ta1_oopfactory_2.edi": (
        0, set(), ">", "+", "\n", {("interchange", "024", "warning"), ("interchange", "004", "warning")},
    ),  # stray trailing '>+' on the TA1; no final terminator
}  # fmt: skip


def corpus_files() -> Iterator[Path]:
    return iter(sorted(CORPUS.glob("*.edi")))


def expected_files() -> list[Path]:
    return [CORPUS / name for name in sorted(EXPECTED)]


def test_every_corpus_file_has_an_expectation() -> None:
    names = {p.name for p in corpus_files()}
    assert names == set(EXPECTED), names ^ set(EXPECTED)


def _naive_st_count(text: str, sep: str, term: str) -> int:
    """Independent count of ST segments: a segment start followed by 'ST' and the separator."""
    return len(re.findall(r"(?:^|" + re.escape(term) + r")\s*ST" + re.escape(sep), text.lstrip("\ufeff")))


@pytest.mark.parametrize("path", expected_files(), ids=lambda p: p.name)
def test_corpus_file(path: Path) -> None:
    n_sets, ids, sep, comp, term, expected = EXPECTED[path.name]
    data = path.read_bytes()
    sets, reader = read_x12(data, name=path.name)
    ic = reader.interchanges[0]
    assert (ic.delimiters.element, ic.delimiters.component, ic.delimiters.segment) == (sep, comp, term)
    assert len(sets) == n_sets == _naive_st_count(data.decode("utf-8"), sep, term)
    assert {s.id for s in sets} == ids
    for ts in sets:
        assert ts.segments[0][0] == "ST"
        if ts.segments[-1][0] == "SE":  # SE01 agrees with the segments we counted
            assert ts.segments[-1][1].strip() == str(len(ts.segments))
            assert ts.summary.segment_count == len(ts.segments)
    got = {(f.level, f.code, f.severity) for f in reader.findings}
    assert got == expected, [str(f) for f in reader.findings]
    for f in reader.findings:
        assert f.where.startswith(path.name)  # every finding names the file


@pytest.mark.parametrize("path", expected_files(), ids=lambda p: p.name)
def test_chunk_boundaries_do_not_matter(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading in 7-byte chunks gives the same segments as reading whole."""
    import io

    data = path.read_bytes()
    whole, r1 = read_x12(data, name=path.name)
    monkeypatch.setattr(reader_module, "CHUNK_SIZE", 7)
    r2 = X12Reader(io.BytesIO(data), name=path.name)
    chunked = list(r2)
    assert [s.segments for s in chunked] == [s.segments for s in whole]
    assert [str(f) for f in r2.findings] == [str(f) for f in r1.findings]


def _read(name: str) -> tuple[list, X12Reader]:  # type: ignore[type-arg]
    return read_x12((CORPUS / name).read_bytes(), name=name)


def test_820_edinet_balances_exactly() -> None:
    (ts,), _ = _read("820_edinet_1.edi")
    advice, findings = interpret_820(ts)
    assert advice is not None and findings == []
    assert advice.amount == sum(ln.paid for ln in advice.lines) == Decimal("21298.97")
    assert advice.trace_number == "4529952" and advice.currency == "USD"
    assert advice.payer_name == "MART INC." and len(advice.lines) == 7
    line = next(ln for ln in advice.lines if ln.adjustments)
    # RMR05 - RMR06 + ADX01 = RMR04 for the line with an adjustment
    assert line.invoice_amount - (line.discount or 0) + sum(a for a, _ in line.adjustments) == line.paid
    assert advice.warnings == []


def test_820_safeway_imbalance_is_a_warning_not_a_rejection() -> None:
    (ts,), _ = _read("820_oopfactory_4.edi")
    advice, findings = interpret_820(ts)
    assert advice is not None and findings == []
    assert len(advice.warnings) == 1 and "differs from the sum of RMR04" in advice.warnings[0]


def test_820_placeholder_amounts_are_element_errors() -> None:
    (ts,), _reader = _read("820_oopfactory_3.edi")
    advice, findings = interpret_820(ts, "820_oopfactory_3.edi")
    assert advice is None
    bpr = [f for f in findings if f.segment_id == "BPR"]
    assert bpr and bpr[0].code == "6" and bpr[0].element_position == 2
    assert "TOTAL DOLLAR AMT OF CHECK" in bpr[0].message


def test_820_version_003010_is_not_supported() -> None:
    (ts,), _ = _read("820_stupidedi_1.edi")
    advice, findings = interpret_820(ts)
    assert advice is None and [(f.level, f.code) for f in findings] == [("set", "1")]


@pytest.mark.parametrize(
    ("name", "ak9", "ak5"),
    [
        ("820_edinet_1.edi", "A", ["A"]),
        ("820_oopfactory_3.edi", "R", ["R"]),  # GS06/GE02 mismatch and non-numeric amounts
        ("820_oopfactory_6.edi", "E", ["E"]),  # SE02 zero padding: accepted, noted
        ("820_stupidedi_1.edi", "R", ["R"]),  # unsupported version
        ("820_oopfactory_4.edi", "A", ["A"]),  # imbalance is only a warning
        ("810_moov_1.edi", "A", ["A", "A"]),
        ("824_oopfactory_2.edi", "A", ["A"]),
        ("837_vscode_1.edi", "R", ["R"]),  # truncated: no SE, no GE
    ],
)
def test_997_for_corpus_files(name: str, ak9: str, ak5: list[str]) -> None:
    sets, reader = _read(name)
    for ts in sets:
        if ts.id == "820":
            interpret_820(ts)
    ic = reader.interchanges[0]
    plan = build_997(ic, isa13=42, gs06=7, st02_start=1, when=datetime(2026, 11, 23, 9, 5))
    assert plan.text is not None and plan.ak9_codes == [ak9]
    # The 997 is itself clean X12 that our reader accepts, addressed back to the sender.
    ack_sets, ack_reader = read_x12(plan.text, name="997")
    assert ack_reader.findings == []
    ack_ic = ack_reader.interchanges[0]
    assert ack_ic.sender == ic.receiver and ack_ic.receiver == ic.sender
    assert ack_ic.delimiters.element == ic.delimiters.element
    assert ack_reader.interchanges[0].groups[0].version == ic.groups[0].version[:6]
    statuses = read_acks(ack_sets, ack_reader.interchanges)
    assert [s.code for s in statuses if s.set_control] == ak5
    group_line = [s for s in statuses if s.set_control is None]
    assert [s.code for s in group_line] == [ak9]
    assert group_line[0].group == ic.groups[0].control_number.strip()


@pytest.mark.parametrize("name", ["997_stupidedi_1.edi", "999_stupidedi_1.edi", "ta1_oopfactory_1.edi"])
def test_acknowledgments_are_never_acknowledged(name: str) -> None:
    _, reader = _read(name)
    assert build_997(reader.interchanges[0], isa13=1, gs06=1, st02_start=1, when=datetime(2026, 1, 1)).text is None


def test_reading_partner_acks() -> None:
    sets, reader = _read("997_stupidedi_2.edi")
    statuses = read_acks(sets, reader.interchanges)
    per_set = {s.set_control: s for s in statuses if s.set_control}
    assert sorted(s.code for s in per_set.values()) == ["A", "R"]
    rejected = next(s for s in per_set.values() if s.code == "R")
    assert any("CLM" in e for e in rejected.errors) and "5" in rejected.errors
    assert [s.code for s in statuses if s.set_control is None] == ["P"]
    sets, reader = _read("999_imsweb_2.edi")
    assert [s.code for s in read_acks(sets, reader.interchanges)] == ["R", "R"]
    sets, reader = _read("ta1_oopfactory_2.edi")
    (ta1,) = read_acks(sets, reader.interchanges)
    assert (ta1.kind, ta1.code, ta1.errors, ta1.accepted) == ("TA1", "R", ("006",), False)
    sets, reader = _read("ta1_oopfactory_1.edi")
    assert [(s.kind, s.code) for s in read_acks(sets, reader.interchanges)] == [("TA1", "A"), ("TA1", "A")]


def _expected_ak9(name: str) -> str:
    """What the 997 must say, derived from the findings SOURCES.md describes for each file."""
    rejected = {"820_oopfactory_3.edi", "820_stupidedi_1.edi"}  # GS06/GE02 + text amounts; version 003010
    noted = {"820_oopfactory_6.edi"}  # SE02 zero padding
    return "R" if name in rejected else "E" if name in noted else "A"


@pytest.mark.parametrize(
    "path", [p for p in expected_files() if p.name.split("_")[0] in ("820", "810", "824")], ids=lambda p: p.name
)
def test_a_997_for_every_820_810_824_file(path: Path) -> None:
    sets, reader = read_x12(path.read_bytes(), name=path.name)
    for ts in sets:
        if ts.id == "820":
            interpret_820(ts)
    ic = reader.interchanges[0]
    plan = build_997(ic, isa13=5, gs06=5, st02_start=1, when=datetime(2026, 11, 23))
    assert plan.text is not None
    assert plan.ak9_codes == [_expected_ak9(path.name)]
    assert plan.groups_acknowledged == [g.control_number.strip() for g in ic.groups]
    ack_sets, ack_reader = read_x12(plan.text, name="997")
    # A blank inbound sender id (ISA06, finding 006) comes back as our blank receiver (ISA08, 008).
    blank_sender = any(f.code == "006" for f in ic.findings)
    assert {f.code for f in ack_reader.findings} == ({"008"} if blank_sender else set())
    (ack,) = ack_sets
    assert [s[1] for s in ack.find("AK2")] == [st.st01 for g in ic.groups for st in g.sets]
