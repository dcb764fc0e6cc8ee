"""Fuzz harness shared by ``tests/fuzz`` (hypothesis, bounded for CI) and ``bench/fuzz.py`` (long).

Inputs are seed files (the golden files, the public X12 corpus read in place from
``../shared/corpus/x12``, and CSV / fixed-width files written here) put through byte-level
mutations aimed at what readers get wrong: delimiters, envelope segment ids, control numbers
turned into non-ASCII digits or thousands of digits, truncation, duplication, bad encodings.

Each input goes through the whole read path a flow uses: X12 read + 820 interpretation + ack
reading + 997/TA1 building; CSV and fixed-width reading + the inbound mapper. A run *fails* on
any exception outside ``ml_connector.errors.MLConnectorError``, on more than 1 s of CPU per
started 100 KB, or on more than 200 MB allocated at peak.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from ml_connector.config import CsvFormat, FixedWidthFormat, parse_flows
from ml_connector.errors import MLConnectorError
from ml_connector.formats.csvfile import CsvReader, CsvWriter
from ml_connector.formats.fixedwidth import FixedWidthReader
from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.acks import build_997, build_ta1, read_acks
from ml_connector.formats.x12.remit820 import interpret_820
from ml_connector.mapping import inbound_mapper, resolve_format

from ..formats.layouts import BATCH_FW as MULTI_FW

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "formats" / "golden"
CORPUS = ROOT.parent / "shared" / "corpus" / "x12"
CPU_S_PER_100KB = 1.0
MAX_PEAK_BYTES = 200 * 1024 * 1024
WHEN = datetime(2026, 11, 23, 9, 5)

# What mutations insert: delimiters, envelope ids, hostile control numbers, bad bytes.
PALETTE: tuple[bytes, ...] = (
    b"*", b"~", b":", b"^", b"|", b">", b"\n", b"\r\n", b"\\", b"`", b'"', b",", b"\t", b"\x00", b"\xff\xfe",
    b"\xef\xbb\xbf", "²".encode(), "٣".encode(), "Ⅻ".encode(), b"9" * 5000, b"0" * 10, b"-1", b"1e999",
    b"ST*820*", b"SE*", b"GS*RA*", b"GE*", b"IEA*", b"ISA*", b"TA1*", b"AK1*", b"AK2*", b"AK5*", b"AK9*",
    b"BPR*", b"RMR*IV*", b"ENT*", b"N1*", b"DTM*", b"REF*", b"~ST*997*0001~", b"~SE*2*0001~",
    b"NaN", b"Infinity", b"99999999999999999999999999999.99", b"20261345", b"=cmd|' /C calc'!A0",
)  # fmt: skip
DIGIT_SWAPS: tuple[bytes, ...] = ("²".encode(), "٣٣٣٣".encode(), b"9" * 4400, b"0" * 9, b"", b"00000000000001")


def _x12_seeds() -> list[bytes]:
    seeds = [p.read_bytes() for p in sorted(GOLDEN.glob("*.edi"))]
    if CORPUS.is_dir():  # read where it lives: the corpus is never copied into the repository
        seeds += [p.read_bytes() for p in sorted(CORPUS.glob("*.edi"))]
    return seeds


FLOWS = """
flows:
  vendors:
    {common}
    entity: vendors
    format: {{type: csv}}
  invoices:
    {common}
    entity: ap-invoices
    constants: {{GroupID: G1}}
    format: {{type: csv}}
  vendors-fw:
    {common}
    entity: vendors
    format: {{type: fixed-width}}
""".format(common="direction: inbound\n    epicor: k\n    sftp: s\n    folder: /in")
_FLOWS = parse_flows(FLOWS).flows
VENDOR_CSV = resolve_format(_FLOWS["vendors"])
INVOICE_CSV = resolve_format(_FLOWS["invoices"])
VENDOR_FW = resolve_format(_FLOWS["vendors-fw"])


def _csv_seed(fmt: CsvFormat, rows: list[dict[str, object]]) -> bytes:
    out = io.BytesIO()
    w = CsvWriter(out, fmt, name="seed.csv")
    w.write_header()
    for row in rows:
        w.write(row)
    return out.getvalue()


def _csv_seeds() -> list[tuple[CsvFormat, bytes]]:
    vendors = [
        {"VendorID": f"V{i:03d}", "Name": name, "City": "Zürich", "State": "ZH", "TermsCode": "N30"}
        for i, name in enumerate(["Northwind", 'Smith, "Bob" & Sons', "line\nbreak", "=HYPERLINK(1)"])
    ]
    invoices = [{"VendorNumVendorID": "V001", "InvoiceNum": f"INV-{i}", "InvoiceDate": "2026-11-01",
                 "DueDate": "2026-12-01", "InvoiceAmt": Decimal("1250.50"), "InvoiceBal": Decimal("-12.34"),
                 "CurrencyCode": "USD", "Description": "desc, with comma"} for i in range(4)]  # fmt: skip
    assert isinstance(VENDOR_CSV, CsvFormat) and isinstance(INVOICE_CSV, CsvFormat)
    seeds = [(VENDOR_CSV, _csv_seed(VENDOR_CSV, vendors)), (INVOICE_CSV, _csv_seed(INVOICE_CSV, invoices))]
    seeds.append((VENDOR_CSV, (GOLDEN / "vendors.csv").read_bytes()))  # another layout: header errors
    return seeds


def _fw_seeds() -> list[tuple[FixedWidthFormat, bytes]]:
    line = "FW0001  " + "Fixed Width Vendor".ljust(50) + "Boise".ljust(30) + "ID" + "83702".ljust(10) + "N30 "
    assert isinstance(VENDOR_FW, FixedWidthFormat)
    return [(VENDOR_FW, (line + "\r\n") * 3), (MULTI_FW, (GOLDEN / "vendors.txt").read_bytes())]  # type: ignore[list-item]


X12_SEEDS = _x12_seeds()
CSV_SEEDS = _csv_seeds()
FW_SEEDS = [(f, s.encode() if isinstance(s, str) else s) for f, s in _fw_seeds()]


# --- mutations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One edit: ``kind`` at fraction ``at`` of the data, ``span`` bytes, ``pick`` into a palette."""

    kind: str  # flip | insert | delete | duplicate | truncate | digits | swap-delims
    at: float
    span: int
    pick: int

    def apply(self, data: bytes) -> bytes:
        n = len(data)
        i = min(n, int(self.at * n))
        if self.kind == "flip" and n:
            i = min(i, n - 1)
            return data[:i] + bytes([(data[i] + 1 + self.pick) % 256]) + data[i + 1 :]
        if self.kind == "insert":
            return data[:i] + PALETTE[self.pick % len(PALETTE)] + data[i:]
        if self.kind == "delete":
            return data[:i] + data[i + self.span :]
        if self.kind == "duplicate":
            return data[:i] + data[i : i + self.span] * (2 + self.pick % 3) + data[i:]
        if self.kind == "truncate":
            return data[:i]
        if self.kind == "digits":  # a run of digits (a control number, an amount) made hostile
            j = i
            while j < n and not data[j : j + 1].isdigit():
                j += 1
            k = j
            while k < n and data[k : k + 1].isdigit():
                k += 1
            return data[:j] + DIGIT_SWAPS[self.pick % len(DIGIT_SWAPS)] + data[k:]
        if self.kind == "control":  # an envelope control number (ST02, SE02, GS06, GE02, IEA02)
            return _swap_control_number(data, self.pick, self.span)
        if self.kind == "swap-delims" and n > 106:
            a, b = PALETTE[self.pick % 8], PALETTE[(self.pick // 8) % 8]
            return data.replace(a, b) if a != b else data
        return data


KINDS = ("flip", "insert", "delete", "duplicate", "truncate", "digits", "swap-delims", "control")
_ENVELOPE = re.compile(rb"(?:^|[\r\n~\\'|!^])\s*(ST|SE|GE|IEA|GS)([*|^!>:])")


def _swap_control_number(data: bytes, pick: int, which: int) -> bytes:
    """Replace one envelope control number with a hostile one (found by position, not parsed)."""
    found = list(_ENVELOPE.finditer(data))
    if not found:
        return data
    m = found[pick % len(found)]
    sep = m.group(2)
    pos = m.end()
    for _ in range((6 if m.group(1) == b"GS" else 2) - 1):
        nxt = data.find(sep, pos)
        if nxt < 0:
            return data
        pos = nxt + 1
    end = pos
    while end < len(data) and data[end : end + 1] not in (sep, b"~", b"\n", b"\r", b"\\"):
        end += 1
    return data[:pos] + DIGIT_SWAPS[which % len(DIGIT_SWAPS)] + data[end:]


def random_mutations(rng: random.Random, max_ops: int = 6) -> list[Mutation]:
    """The same distribution as the hypothesis strategy, for the long local runs."""
    return [Mutation(rng.choice(KINDS), rng.random(), rng.randint(1, 400), rng.randint(0, 255))
            for _ in range(rng.randint(1, max_ops))]  # fmt: skip


def mutate(seed: bytes, mutations: list[Mutation]) -> bytes:
    for m in mutations:
        seed = m.apply(seed)
    return seed


# --- the read paths ----------------------------------------------------------------------------


def read_x12_path(data: bytes) -> int:
    """What an inbound X12 flow does with a file before posting; returns the sets read."""
    sets, reader = read_x12(data, name="fuzz.edi")
    for ts in sets:
        if ts.id == "820":
            interpret_820(ts, "fuzz.edi")
    read_acks(sets, reader.interchanges)
    for ic in reader.interchanges:
        build_997(ic, isa13=1, gs06=1, st02_start=1, when=WHEN)
        build_ta1(ic, isa13=2, when=WHEN)
    return len(sets)


def read_csv_path(fmt: CsvFormat, data: bytes) -> int:
    mapper = inbound_mapper(fmt.columns, {})
    n = 0
    for rec in CsvReader(io.BytesIO(data), fmt, name="fuzz.csv"):
        n += 1
        if rec.error is None:
            with contextlib.suppress(MLConnectorError):
                mapper(rec.values, f"fuzz.csv: {rec.position}")
    return n


def read_fw_path(fmt: FixedWidthFormat, data: bytes) -> int:
    mapper = inbound_mapper(fmt.columns, {}) if fmt.columns else None
    n = 0
    for rec in FixedWidthReader(io.BytesIO(data), fmt, name="fuzz.txt"):
        n += 1
        if rec.error is None and mapper is not None:
            with contextlib.suppress(MLConnectorError):
                mapper(rec.values, f"fuzz.txt: {rec.position}")
    return n


class FuzzFailure(AssertionError):
    """An input that broke a reader's contract (kept small: hypothesis shrinks it)."""


def check(read: Callable[[bytes], object], data: bytes, *, measure_memory: bool = True) -> None:
    """Run one read path; raise ``FuzzFailure`` on a foreign exception, too much CPU or memory."""
    tracing = measure_memory and tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    started = time.process_time()  # CPU, not wall: other processes on the machine do not count
    try:
        read(data)
    except MLConnectorError:
        pass
    except Exception as exc:  # the contract under test: nothing else may escape a reader
        raise FuzzFailure(f"{type(exc).__name__}: {exc!s:.300} on {len(data)} bytes: {data[:300]!r}") from exc
    spent = time.process_time() - started
    budget = CPU_S_PER_100KB * max(1, -(-len(data) // 100_000))
    if spent > budget:
        raise FuzzFailure(f"{spent:.2f} s of CPU for {len(data)} bytes (budget {budget:.0f} s): {data[:200]!r}")
    if tracing:
        peak = tracemalloc.get_traced_memory()[1]
        if peak > MAX_PEAK_BYTES:
            raise FuzzFailure(f"{peak / 2**20:.0f} MB at peak for {len(data)} bytes: {data[:200]!r}")
