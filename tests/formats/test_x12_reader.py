"""Reader cases the corpus lacks: lowercase ids, several interchanges, envelope faults, big files."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from ml_connector.formats.x12 import Delimiters, X12ParseError, read_x12
from ml_connector.formats.x12.acks import build_997, build_ta1
from ml_connector.formats.x12.writer import Envelope, X12Writer

WHEN = datetime(2026, 5, 6, 7, 8)


def interchange(isa13: int, sets: int = 1, env: Envelope | None = None, segs_per_set: int = 2) -> str:
    out = io.StringIO()
    w = X12Writer(out, env or Envelope())
    w.begin_interchange(isa13, WHEN)
    w.begin_group("RA", isa13, WHEN)
    for n in range(sets):
        w.write_set("820", n + 1, [("REF", ["ZZ", f"R{n}-{i}"]) for i in range(segs_per_set)])
    w.end_group()
    w.end_interchange()
    return out.getvalue()


def test_lowercase_segment_ids_are_read() -> None:
    segments = interchange(1).split("~\n")
    text = "~\n".join(seg[:3].lower() + seg[3:] for seg in segments)
    assert text.startswith("isa*") and "\nst*820" in text
    sets, reader = read_x12(text)
    assert reader.findings == []
    assert [s[0] for s in sets[0].segments] == ["ST", "REF", "REF", "SE"]


def test_several_interchanges_with_different_delimiters_in_one_file() -> None:
    a = interchange(1, sets=2)
    b = interchange(2, env=Envelope(delimiters=Delimiters("|", ">", "!", None)))
    c = interchange(3).replace("~\n", "~\r\n")
    sets, reader = read_x12(a + "\n\n" + b + "  \r\n" + c)
    assert [ic.control_number for ic in reader.interchanges] == ["000000001", "000000002", "000000003"]
    assert [ic.delimiters.element for ic in reader.interchanges] == ["*", "|", "*"]
    assert len(sets) == 4 and reader.findings == []


def test_envelope_faults_map_to_ack_codes() -> None:
    text = interchange(7, sets=2)
    broken = (
        text.replace("SE*4*0002", "SE*9*0002")  # SE01 count wrong -> AK5 4
        .replace("ST*820*0002", "ST*820*0001")  # duplicate ST02 -> AK5 23 (and SE02 mismatch)
        .replace("GE*2*7", "GE*3*7")  # GE01 wrong -> AK9 5
        .replace("IEA*1*000000007", "IEA*1*000000008")  # IEA02 mismatch -> TA1 001
    )
    _sets, reader = read_x12(broken, name="bad.edi")
    got = {(f.level, f.code) for f in reader.findings}
    assert {("set", "4"), ("set", "23"), ("set", "3"), ("group", "5"), ("interchange", "001")} <= got
    ic = reader.interchanges[0]
    ta1 = build_ta1(ic, isa13=1, when=WHEN)
    assert "TA1*000000007*260506*0708*R*001~" in ta1
    plan = build_997(ic, isa13=2, gs06=2, st02_start=1, when=WHEN)
    assert plan.text is not None
    assert "AK5*A~" in plan.text and "AK5*R*23*4*3~" in plan.text
    assert "AK9*R*3*2*1*5~" in plan.text
    assert all(f.where.startswith("bad.edi: interchange 000000007") for f in reader.findings)


def test_truncated_file_and_missing_trailers() -> None:
    text = interchange(5)
    cut = text[: text.index("SE*")]
    sets, reader = read_x12(cut)
    assert len(sets) == 1  # the partial set is still reported, not silently dropped
    got = {(f.level, f.code) for f in reader.findings}
    assert {("set", "2"), ("group", "3"), ("interchange", "023")} <= got


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "022"),
        (b"   \r\n", "022"),
        (b"GS*RA*X~", "022"),
        (b"ISA*00*          *00", "023"),
        (b"ISA100*          *00*", "026"),
        (
            b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *260101*0101*U*00401*000000001*0*P*A~",
            "027",
        ),
        (b"ISA*00*\xff\xfe", "022"),
    ],
)
def test_unreadable_envelopes_raise_with_ta1_code(data: bytes, code: str) -> None:
    with pytest.raises(X12ParseError) as info:
        read_x12(data, name="x.edi")
    assert info.value.ta1_code == code


def test_unrecognised_segment_id_is_an_ak3() -> None:
    text = interchange(3).replace("REF*ZZ*R0-1", "R$F*ZZ*R0-1")
    (_ts,), reader = read_x12(text)
    (f,) = reader.findings
    assert (f.level, f.code, f.segment_position) == ("segment", "1", 3)
    plan = build_997(reader.interchanges[0], isa13=1, gs06=1, st02_start=1, when=WHEN)
    assert plan.text is not None and "AK3*R$F*3**1~" in plan.text and "AK5*R*5~" in plan.text


MEMORY_PROBE = """
import io, sys
from ml_connector.formats.x12 import X12Reader

one = open(sys.argv[1], "rb").read()
repeats = int(sys.argv[2])

class Repeat(io.RawIOBase):
    # Serves `one` `repeats` times without holding the whole file in memory.
    def __init__(self):
        self.left, self.buf = repeats, b""
    def readable(self):
        return True
    def readinto(self, b):
        while len(self.buf) < len(b) and self.left:
            self.buf += one
            self.left -= 1
        n = min(len(b), len(self.buf))
        b[:n], self.buf = self.buf[:n], self.buf[n:]
        return n

reader = X12Reader(io.BufferedReader(Repeat(), 1 << 16), keep_interchanges=False, keep_segments=False)
sets = sum(1 for _ in reader)
# VmHWM: ru_maxrss would carry the parent's peak across exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(sets, reader.segment_count, len(reader.findings), hwm)
"""


def test_large_file_streams_with_flat_memory(tmp_path: Path) -> None:
    """Peak RSS reading 8x more data grows by less than the data itself (streaming)."""
    one = tmp_path / "one.edi"
    one.write_text(interchange(1, sets=200, segs_per_set=20))
    size = one.stat().st_size
    results = []
    for repeats in (20, 160):
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(one), str(repeats)], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        sets, segments, findings, rss_kb = map(int, done.stdout.split())
        assert (sets, segments, findings) == (200 * repeats, repeats * (4 + 200 * 22), 0)
        results.append(rss_kb)
    grown_mb = (results[1] - results[0]) / 1024
    data_mb = size * 140 / 1e6
    assert grown_mb < 0.25 * data_mb, f"RSS grew {grown_mb:.1f} MB while reading {data_mb:.1f} MB more"
