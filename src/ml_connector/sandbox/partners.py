"""The demo's partners and bank: the files they drop, and the 997 the bank answers our 820 with.

Simulation, not product: ``ml-connector demo`` stages these in the embedded SFTP server's root.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from ..formats.x12 import read_x12
from ..formats.x12.acks import build_997
from ..formats.x12.remit820 import Payment, RemittanceLine, payment_to_820
from ..formats.x12.writer import Envelope, X12Writer


def partner_files(sftp_root: Path) -> None:
    """The partners' files of the demo, dropped in the SFTP root's ``inbound`` folder (one malformed)."""
    inbound = sftp_root / "inbound"
    (inbound / "vendors_2026-11-23.csv").write_text(
        "VendorID,Name,Address1,City,State,ZIP,Country,TermsCode\r\n"
        "V0002,Contoso Metals Inc.,500 Steel Way,Gary,IN,46402,USA,N30\r\n"
        "P10001,Harbor Freight Partners,12 Dock Rd,Long Beach,CA,90802,USA,N45\r\n"
        "P10002,Summit Packaging,9 Ridge Ave,Denver,CO,80202,USA,N30\r\n"
    )
    line = "P20001  " + "Prairie Tools LLC".ljust(50) + "Omaha".ljust(30) + "NE" + "68102".ljust(10) + "N30 "
    (inbound / "vendors_fixed.txt").write_text(line + "\r\n")
    (inbound / "invoices_confirmed.csv").write_text(
        "VendorID,InvoiceNum,InvoiceDate,DueDate,InvoiceAmt,Description\r\n"
        "V0001,NW-88001,2026-11-20,2026-12-20,1250.00,Freight November\r\n"
        "V0002,CM-5512,2026-11-21,2026-12-21,980.40,Steel coil\r\n"
    )
    # the malformed one: a date that is not a date, on line 3
    (inbound / "vendors_broken.csv").write_text(
        'VendorID,Name,City,TermsCode\r\nP30001,Fine Vendor,Reno,N30\r\nP30002,"Unclosed quote,Reno,N30\r\n'
    )
    payments = [
        Payment(
            trace_number="CHK-771001",
            payment_date=date(2026, 11, 22),
            amount=Decimal("775.00"),
            payer_name="Customer Two",
            payee_name="Epicor Demo Co",
            lines=(RemittanceLine("1001", Decimal("525.00")), RemittanceLine("1005", Decimal("250.00"))),
        ),
        Payment(
            trace_number="CHK-771002",
            payment_date=date(2026, 11, 22),
            amount=Decimal("300.00"),
            payer_name="Customer Two",
            payee_name="Epicor Demo Co",
            lines=(RemittanceLine("1009", Decimal("300.00")),),
        ),
    ]
    (inbound / "remit_customer2.820").write_text(x12_820(payments, 4401, "CUSTOMER2", "EPICDEMO"))


def x12_820(payments: list[Payment], isa13: int, sender: str, receiver: str) -> str:
    """A customer's 820 remittance interchange, dated now."""
    out = io.StringIO()
    w = X12Writer(out, Envelope(sender_id=sender, receiver_id=receiver))
    when = datetime.now(UTC)
    w.begin_interchange(isa13, when)
    w.begin_group("RA", isa13, when)
    for n, p in enumerate(payments, 1):
        w.write_set("820", n, payment_to_820(p, "004010", when))
    w.end_group()
    w.end_interchange()
    return out.getvalue()


def bank_997(sftp_root: Path) -> str | None:
    """What the bank answers to our 820: its 997, dropped where I4 picks it up."""
    sent = sorted((sftp_root / "outbound").glob("*.820"))
    if not sent:
        return None
    _, reader = read_x12(sent[-1].read_bytes())
    plan = build_997(reader.interchanges[0], isa13=9001, gs06=9001, st02_start=1, when=datetime.now(UTC))
    if plan.text is None:
        return None
    path = sftp_root / "inbound" / "bank_ack.997"
    path.write_text(plan.text)
    return path.name
