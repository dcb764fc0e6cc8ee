"""Fuzz the readers for as long as asked, and measure that X12 reading stays linear in size.

    .venv/bin/python bench/fuzz.py --minutes 10          # mutated golden + corpus inputs, all readers
    .venv/bin/python bench/fuzz.py --linear              # segments/s of 820s with 20k, 40k, 80k sets

The fuzz loop uses the harness of ``tests/fuzz`` (same seeds, same mutations, same contract:
nothing but ``ml_connector.errors`` may escape, at most 1 s of CPU per 100 KB, at most 200 MB at
peak); CI runs a bounded slice of it through hypothesis. Failing inputs are written to
``--out`` so they can be replayed. ``--linear`` reads generated 820 files through the inbound
read path (read + 820 interpretation) and reports segments/s; the ratio of the largest to the
smallest file's rate shows whether time grows linearly with size (1.0 = perfectly linear).
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.harness import (
    CSV_SEEDS,
    FW_SEEDS,
    X12_SEEDS,
    FuzzFailure,
    check,
    mutate,
    random_mutations,
    read_csv_path,
    read_fw_path,
    read_x12_path,
)

from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.remit820 import Payment, RemittanceLine, interpret_820, payment_to_820
from ml_connector.formats.x12.writer import Envelope, X12Writer


def fuzz(minutes: float, seed: int, out: Path) -> int:
    rng = random.Random(seed)
    deadline = time.monotonic() + minutes * 60
    counts: Counter[str] = Counter()
    failures = 0
    tracemalloc.start()
    while time.monotonic() < deadline:
        which = rng.choice(("x12", "x12", "csv", "fixed-width"))
        edits = random_mutations(rng)
        try:
            if which == "x12":
                data = mutate(rng.choice(X12_SEEDS), edits)
                check(read_x12_path, data)
            elif which == "csv":
                fmt, base = rng.choice(CSV_SEEDS)
                data = mutate(base, edits)
                check(lambda d, f=fmt: read_csv_path(f, d), data)  # type: ignore[misc]
            else:
                fw, base = rng.choice(FW_SEEDS)
                data = mutate(base, edits)
                check(lambda d, f=fw: read_fw_path(f, d), data)  # type: ignore[misc]
        except FuzzFailure as exc:
            failures += 1
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{which}-{counts[which]}.bin"
            path.write_bytes(data)
            print(f"FAIL {which} -> {path}: {str(exc)[:300]}", flush=True)
        counts[which] += 1
    tracemalloc.stop()
    total = sum(counts.values())
    print(f"{total:,} inputs in {minutes:g} min ({dict(counts)}); {failures} failures")
    return 1 if failures else 0


def _820(n_sets: int) -> bytes:
    env = Envelope(sender_id="PAYER01", receiver_id="MLCONNECTOR")
    buf = io.StringIO()
    w = X12Writer(buf, env)
    when = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    w.begin_interchange(1, when)
    w.begin_group("RA", 1, when)
    for i in range(n_sets):
        lines = tuple(RemittanceLine(str(1000 + j), Decimal("10.00")) for j in range(3))
        p = Payment(trace_number=f"CHK{i:07d}", payment_date=date(2026, 11, 20), amount=Decimal("30.00"),
                    payer_name="Customer One", payee_name="Epicor Demo Co", lines=lines)  # fmt: skip
        w.write_set("820", i + 1, payment_to_820(p, "004010", when))
    w.end_group()
    w.end_interchange()
    return buf.getvalue().encode()


def _read_path_cpu(data: bytes, *, collect: bool) -> tuple[float, int]:
    """CPU seconds of the inbound read path (read + 820 interpretation), best of two."""
    best, segments = float("inf"), 0
    for _ in range(2):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            started = time.process_time()
            sets, reader = read_x12(data, name="big.820")
            for ts in sets:
                interpret_820(ts, "big.820")
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
        segments = reader.segment_count
        del sets, reader
    return best, segments


def linear(sizes: list[int]) -> int:
    """Segments/s at each size, with CPython's cyclic GC on (as in production) and off (the
    reader's own cost): a falling rate with GC on and a flat one with GC off points at the
    collector walking the segment lists the reader keeps, not at the parsing itself."""
    rows = []
    for n in sizes:
        data = _820(n)
        on, segments = _read_path_cpu(data, collect=True)
        off, _ = _read_path_cpu(data, collect=False)
        rows.append((n, segments, on, off))
        print(f"{n:>7,} sets  {len(data) / 1e6:5.1f} MB  {segments:>9,} segments  "
              f"GC on {on:5.2f} s CPU = {segments / on:>9,.0f} seg/s ({len(data) / 1e5 / on:4.0f} x 100 KB per s)  "
              f"GC off {off:5.2f} s = {segments / off:>9,.0f} seg/s", flush=True)  # fmt: skip
    first, last = rows[0], rows[-1]
    ratio_on = (last[1] / last[2]) / (first[1] / first[2])
    ratio_off = (last[1] / last[3]) / (first[1] / first[3])
    print(f"rate at {last[0]:,} sets / rate at {first[0]:,} sets: GC on {ratio_on:.2f}, GC off {ratio_off:.2f} "
          "(1.0 = linear; below 0.8 = time grows faster than size)")  # fmt: skip
    return 0 if ratio_on >= 0.8 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=None, help="fuzz for this long")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="failing inputs go here")
    parser.add_argument("--linear", action="store_true", help="measure X12 reading time against size")
    parser.add_argument("--sizes", default="20000,40000,80000", help="820 sets per file for --linear")
    args = parser.parse_args()
    code = 0
    if args.linear:
        code |= linear([int(s) for s in args.sizes.split(",")])
    if args.minutes is not None or not args.linear:
        seed = args.seed if args.seed is not None else random.randrange(2**32)
        print(f"fuzz seed {seed}")
        code |= fuzz(args.minutes or 1.0, seed, args.out)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
