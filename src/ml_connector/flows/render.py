"""Streaming renderers for outbound files: CSV, fixed-width, X12 820; hashing while writing."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from ..config import CsvFormat, FixedWidthFormat, X12Format
from ..errors import RecordError
from ..formats.csvfile import CsvWriter
from ..formats.fixedwidth import FixedWidthWriter
from ..formats.x12.remit820 import Payment, RemittanceLine, payment_to_820
from ..formats.x12.writer import Envelope, X12Writer
from ..mapping import to_python
from .ports import utc_clock


class HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through, then fsyncs on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO = path.open("wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self._fh.write(view)
        self._hash.update(view)
        self.size += len(view)
        return len(view)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        super().close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class Renderer:
    """One outbound file being written."""

    ext = "txt"

    def __init__(self, sink: HashingFile) -> None:
        self.sink = sink
        self.records = 0

    def write(self, row: Mapping[str, Any], where: str) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.sink.close()


class FlatRenderer(Renderer):
    """CSV or fixed-width rows through a 64 KiB buffer into the hashing sink."""

    def __init__(self, sink: HashingFile, fmt: CsvFormat | FixedWidthFormat, when: datetime | None = None) -> None:
        super().__init__(sink)
        self._when = when or utc_clock()
        self._buffer = io.BufferedWriter(sink, 1 << 16)
        self._w: CsvWriter | FixedWidthWriter
        if isinstance(fmt, CsvFormat):
            self.ext = "csv"
            self._w = CsvWriter(self._buffer, fmt, name=sink.path.name)
            if fmt.header:
                self._w.write_header()
        else:
            self._w = FixedWidthWriter(self._buffer, fmt, name=sink.path.name)
            # Header first; the trailer at finish() carries the count and total of what was written.
            self._w.write_header(self._when)

    def write(self, row: Mapping[str, Any], where: str) -> None:
        self._w.write(row)
        self.records += 1

    def finish(self) -> None:
        if isinstance(self._w, FixedWidthWriter):
            self._w.write_trailer(self._when)
        self._buffer.flush()
        self._buffer.detach()  # the sink closes itself; a dangling buffer would flush into it later
        super().finish()


class X12Renderer(Renderer):
    """One interchange, one RA group, one 820 set per payment; control numbers given."""

    ext = "x12"

    def __init__(
        self, sink: HashingFile, fmt: X12Format, *, isa13: int, gs06: int, when: datetime, constants: Mapping[str, str]
    ) -> None:
        super().__init__(sink)
        self.fmt = fmt
        self.envelope = Envelope.from_partner(fmt.partner, fmt.version)
        self._text = io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=True)  # type: ignore[type-var]
        self._w = X12Writer(self._text, self.envelope)
        self._when = when
        self.constants = constants
        self.isa13, self.gs06 = isa13, gs06
        self.sets: list[str] = []
        self._w.begin_interchange(isa13, when)
        self._w.begin_group("RA", gs06, when)

    def write(self, row: Mapping[str, Any], where: str) -> None:
        payment = payment_from_kinetic(row, self.constants, where)
        body = payment_to_820(payment, self.fmt.version, self._when)
        st02 = len(self.sets) + 1
        self._w.write_set("820", st02, body)
        self.sets.append(f"{st02:04d}")
        self.records += 1

    def finish(self) -> None:
        self._w.end_group()
        self._w.end_interchange()
        self._text.flush()
        self._text.detach()
        super().finish()


def payment_from_kinetic(row: Mapping[str, Any], constants: Mapping[str, str], where: str) -> Payment:
    """A CheckHed row (with ``APTran`` lines and ``Vendor`` attached) as a ``Payment``."""
    amount = to_python(row.get("CheckAmt"), "decimal", f"{where}: CheckAmt")
    when = to_python(row.get("CheckDate"), "date", f"{where}: CheckDate")
    if amount is None or when is None:
        raise RecordError(f"{where}: payment {row.get('HeadNum')} has no CheckAmt or CheckDate")
    vendor = row.get("Vendor") or {}
    lines = []
    for tran in row.get("APTran", []):
        paid = to_python(tran.get("DocTranAmt") or tran.get("TranAmt"), "decimal", f"{where}: APTran.TranAmt")
        disc = to_python(tran.get("DiscAmt"), "decimal", f"{where}: APTran.DiscAmt")
        lines.append(
            RemittanceLine(invoice_num=str(tran["InvoiceNum"]), paid=paid or Decimal(0), discount=disc or None)
        )
    check = str(row.get("CheckNum") or row.get("HeadNum"))
    return Payment(
        trace_number=check,
        payment_date=when if isinstance(when, date) else when.date(),
        amount=amount,
        payer_name=constants.get("payer_name", "ML CONNECTOR"),
        payer_id=constants.get("payer_id"),
        payee_name=str(vendor.get("Name") or row.get("Name") or row.get("VendorNumName") or ""),
        payee_id=str(vendor.get("VendorID") or row.get("VendorNumVendorID") or "") or None,
        method=constants.get("method", "CHK"),
        handling=constants.get("handling", "I"),
        currency=str(row.get("CurrencyCode") or constants.get("currency", "USD")),
        reference=check,
        lines=tuple(lines),
    )
