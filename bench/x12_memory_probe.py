"""Child process of bench/formats.py: read UNIT repeated to SIZE MB as one stream; print peak RSS (MB) and seconds."""

from __future__ import annotations

import io
import sys
import time

from ml_connector.formats.x12 import X12Reader


class Repeat(io.RawIOBase):
    """Serves the unit file again and again without holding the whole stream."""

    def __init__(self, unit: bytes, total: int) -> None:
        self.unit, self.left, self.buf = unit, total, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while len(self.buf) < len(b) and self.left > 0:
            self.buf += self.unit
            self.left -= len(self.unit)
        n = min(len(b), len(self.buf))
        b[:n], self.buf = self.buf[:n], self.buf[n:]
        return n


def main() -> None:
    unit = open(sys.argv[1], "rb").read()  # noqa: SIM115
    total = int(sys.argv[2]) * 1_000_000
    start = time.perf_counter()
    reader = X12Reader(io.BufferedReader(Repeat(unit, total), 1 << 20), keep_interchanges=False, keep_segments=False)
    for _ in reader:
        pass
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the parent's pages.
    with open("/proc/self/status") as fh:
        rss = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    print(f"{rss:.1f} {time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
