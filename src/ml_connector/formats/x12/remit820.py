"""820 Payment Order / Remittance Advice: payments to 820 segments, and 820 sets to advice.

Writing follows the generic 004010/005010 layout: BPR, TRN, CUR, REF, DTM, N1 PR and PE loops,
then ENT with one RMR (+ DTM) per invoice paid. Reading is tolerant: amounts are parsed as
``Decimal``, an unreadable amount becomes an AK4 finding (the set is rejected in the 997), and
BPR02 not matching the sum of RMR04 is a warning only (real partners' files often disagree).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .elements import DECLARED, check_segment
from .model import Finding, TransactionSet, element
from .writer import Element

_NUMERIC = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
MAX_ID_LENGTH = {"004010": 30, "005010": 50}


@dataclass(frozen=True)
class RemittanceLine:
    """One invoice paid (an RMR loop)."""

    invoice_num: str
    paid: Decimal
    invoice_amount: Decimal | None = None
    discount: Decimal | None = None
    invoice_date: date | None = None
    qualifier: str = "IV"
    adjustments: tuple[tuple[Decimal, str], ...] = ()  # (ADX01 amount, ADX02 reason)
    references: tuple[tuple[str, str], ...] = ()  # (REF01, REF02) in the RMR loop, e.g. ("PO", "4500012")
    position: int | None = None  # RMR's segment position in the set (reading)
    raw: tuple[str, ...] = ()  # the RMR elements as sent (RMR01 first), for mappings


@dataclass(frozen=True)
class Payment:
    """A payment to remit: Kinetic CheckHed + its APTran lines + the vendor."""

    trace_number: str  # TRN02: check or EFT trace number
    payment_date: date
    amount: Decimal
    payer_name: str
    payee_name: str
    payee_id: str | None = None  # vendor id at the payer (N1*PE*…*92*)
    payer_id: str | None = None
    method: str = "CHK"  # BPR04: CHK, ACH, FWT, …
    handling: str = "I"  # BPR01: I remittance only, C payment with remittance
    currency: str = "USD"
    reference: str | None = None  # REF*CK (the check number if it differs from the trace)
    lines: tuple[RemittanceLine, ...] = ()


@dataclass
class PaymentAdvice:
    """What an inbound 820 says, as plain data for posting."""

    trace_number: str
    payment_date: date | None
    amount: Decimal
    handling: str
    method: str
    credit_debit: str
    currency: str | None
    payer_name: str | None
    payer_id: str | None
    payee_name: str | None
    payee_id: str | None
    set_control: str
    lines: list[RemittanceLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    payer_id_qualifier: str | None = None  # N103 of N1*PR (e.g. 91 assigned by seller, FI tax id)
    payee_id_qualifier: str | None = None  # N103 of N1*PE
    references: dict[str, str] = field(default_factory=dict)  # heading REF by REF01; "PE.xx" in N1 loops
    dates: dict[str, str] = field(default_factory=dict)  # heading DTM by DTM01 (e.g. 097 created)
    paid_sum: Decimal = Decimal(0)  # sum of RMR04
    mismatch: Decimal | None = None  # BPR02 - sum of RMR04 when they differ
    skipped: list[str] = field(default_factory=list)  # segments left out for element errors
    elements: dict[str, str] = field(default_factory=dict)  # heading elements as sent: BPR01-16, TRN01-04, CUR02
    mapped: dict[str, str] = field(default_factory=dict)  # values the flow's mapping produced (audit, preview)
    lookups: list[tuple[str, str, int | None]] = field(default_factory=list)  # (target, value, line) to find
    lookup_errors: list[str] = field(default_factory=list)  # find steps that matched nothing or several rows


def format_amount(value: Decimal) -> str:
    """X12 R type: no exponent, no plus sign, no needless trailing zeros."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def payment_to_820(payment: Payment, version: str = "004010",
                   created: datetime | None = None) -> list[tuple[str, Sequence[Element | None]]]:  # fmt: skip
    """The body segments (between ST and SE) of an 820 for one payment."""
    limit = MAX_ID_LENGTH.get(version, 30)
    for label, value in (("TRN02 trace number", payment.trace_number),
                         *((f"RMR02 invoice {ln.invoice_num}", ln.invoice_num) for ln in payment.lines)):  # fmt: skip
        if len(value) > limit:
            from .writer import X12WriteError

            raise X12WriteError(f"{label}: {len(value)} characters, {version} allows {limit}")
    when = payment.payment_date.strftime("%Y%m%d")
    bpr: list[str | None] = [payment.handling, format_amount(payment.amount), "C", payment.method]
    bpr += [None] * 11 + [when]  # BPR05-BPR15 (bank details) left to the bank file; BPR16 date
    body: list[tuple[str, Sequence[Element | None]]] = [
        ("BPR", bpr),
        ("TRN", ["1", payment.trace_number]),
        ("CUR", ["PR", payment.currency]),
    ]
    if payment.reference:
        body.append(("REF", ["CK", payment.reference]))
    body.append(
        (
            "DTM",
            [
                "097",
                (created or datetime.combine(payment.payment_date, datetime.min.time())).strftime("%Y%m%d"),
            ],
        )
    )
    body.append(("N1", ["PR", payment.payer_name, "91" if payment.payer_id else None, payment.payer_id]))
    body.append(("N1", ["PE", payment.payee_name, "92" if payment.payee_id else None, payment.payee_id]))
    body.append(("ENT", ["1"]))
    for ln in payment.lines:
        body.append(
            ("RMR", [ln.qualifier, ln.invoice_num, "PI", format_amount(ln.paid),
                     format_amount(ln.invoice_amount) if ln.invoice_amount is not None else None,
                     format_amount(ln.discount) if ln.discount else None])
        )  # fmt: skip
        if ln.invoice_date:
            body.append(("DTM", ["003", ln.invoice_date.strftime("%Y%m%d")]))
    return body


def _amount(seg: list[str], index: int, pos: int, ref: str, findings: list[Finding],
            where: str, required: bool = False) -> Decimal | None:  # fmt: skip
    raw = element(seg, index).strip()
    if not raw:
        if required:
            findings.append(Finding("element", "1", f"{seg[0]}{index:02d} is required", where,
                                    segment_id=seg[0], segment_position=pos, element_position=index,
                                    element_ref=ref))  # fmt: skip
        return None
    if not _NUMERIC.match(raw):
        findings.append(Finding("element", "6", f"{seg[0]}{index:02d} {raw[:40]!r} is not a number", where,
                                segment_id=seg[0], segment_position=pos, element_position=index,
                                element_ref=ref, bad_value=raw))  # fmt: skip
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        return None


def _date(raw: str) -> date | None:
    raw = raw.strip()
    for fmt in ("%Y%m%d", "%y%m%d"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    return None


def interpret_820(ts: TransactionSet, name: str = "", *,
                  on_element_error: str = "reject") -> tuple[PaymentAdvice | None, list[Finding]]:  # fmt: skip
    """Payment advice from one 820 set; findings are also added to the set's summary.

    Every segment with an element table (``elements.py``) is checked before its values are
    used; a segment with element errors is never interpreted (its values could be shifted).
    ``on_element_error`` is the partner's policy: ``reject`` the set (AK5 R), or ``accept``
    it with the errors noted (AK5 E) and the faulty segments left out.
    """
    where = f"{name + ': ' if name else ''}set 820 {ts.summary.st02}"
    findings: list[Finding] = []
    version = ts.group.version[:6]
    bpr = next(((i, s) for i, s in enumerate(ts.segments, 1) if s[0] == "BPR"), None)
    if version and version < "004010" and bpr is None:
        findings.append(Finding("set", "1", f"820 version {version} (BPS/RMT layout) is not supported", where))
        ts.summary.findings.extend(findings)
        return None, findings
    if bpr is None:
        findings.append(Finding("segment", "3", "mandatory segment BPR is missing", where,
                                segment_id="BPR", segment_position=2))  # fmt: skip
        ts.summary.findings.extend(findings)
        return None, findings
    severity = "warning" if on_element_error == "accept" else "error"
    bad_positions: set[int] = set()
    for pos, seg in enumerate(ts.segments, 1):
        if seg[0] in DECLARED:
            found = check_segment(seg, pos, version or "004010", where, severity)
            if found:
                findings.extend(found)
                bad_positions.add(pos)
    bpr_pos, bpr_seg = bpr
    usable_bpr = bpr_pos not in bad_positions
    total = _amount(bpr_seg, 2, bpr_pos, "782", findings, where, required=True) if usable_bpr else None
    advice = PaymentAdvice(
        trace_number="",
        payment_date=_date(element(bpr_seg, 16)) if usable_bpr else None,
        amount=total if total is not None else Decimal(0),
        handling=element(bpr_seg, 1).strip() if usable_bpr else "",
        credit_debit=element(bpr_seg, 3).strip() if usable_bpr else "",
        method=element(bpr_seg, 4).strip() if usable_bpr else "",
        currency=None,
        payer_name=None,
        payer_id=None,
        payee_name=None,
        payee_id=None,
        set_control=ts.summary.st02,
    )
    if usable_bpr:
        advice.elements.update({f"BPR{i:02d}": v.strip() for i, v in enumerate(bpr_seg[1:17], 1) if v.strip()})
    current: dict[str, object] | None = None
    party: str | None = None  # N101 of the N1 loop we are in (its N2-N4 and REF belong to it)
    lines: list[dict[str, object]] = []
    for pos, seg in enumerate(ts.segments, 1):
        sid = seg[0]
        if pos in bad_positions:
            advice.skipped.append(f"{sid} at position {pos}")
            if sid == "RMR":
                current = None  # its REF/DTM/ADX must not attach to the previous invoice
            continue
        if sid == "TRN" and not advice.trace_number:
            advice.trace_number = element(seg, 2).strip()
            advice.elements.update({f"TRN{i:02d}": v.strip() for i, v in enumerate(seg[1:5], 1) if v.strip()})
        elif sid == "CUR":
            advice.currency = element(seg, 2).strip() or None
            advice.elements.setdefault("CUR02", element(seg, 2).strip())
        elif sid == "N1":
            # Meaning comes from the qualifiers: N101 says whose name this is, N103 what N104 is.
            party = element(seg, 1).strip()
            name_ = element(seg, 2).strip() or None
            qualifier = element(seg, 3).strip() or None
            ident = element(seg, 4).strip() or None if qualifier else None
            if party == "PR":
                advice.payer_name, advice.payer_id, advice.payer_id_qualifier = name_, ident, qualifier
            elif party == "PE":
                advice.payee_name, advice.payee_id, advice.payee_id_qualifier = name_, ident, qualifier
            current = None
        elif sid == "N2" and party in ("PR", "PE") and current is None:
            extra = " ".join(x.strip() for x in seg[1:3] if x.strip())
            if party == "PR":
                advice.payer_name = f"{advice.payer_name or ''} {extra}".strip()
            else:
                advice.payee_name = f"{advice.payee_name or ''} {extra}".strip()
        elif sid == "REF":
            qualifier, value = element(seg, 1).strip(), element(seg, 2).strip()
            if current is not None:
                current["references"].append((qualifier, value))  # type: ignore[attr-defined]
            elif party is None:
                advice.references.setdefault(qualifier, value)
            elif party in ("PR", "PE"):
                advice.references.setdefault(f"{party}.{qualifier}", value)
        elif sid == "RMR":
            paid = _amount(seg, 4, pos, "782", findings, where)
            current = {
                "qualifier": element(seg, 1).strip(),
                "invoice_num": element(seg, 2).strip(),
                "paid": paid if paid is not None else Decimal(0),
                "invoice_amount": _amount(seg, 5, pos, "782", findings, where),
                "discount": _amount(seg, 6, pos, "782", findings, where),
                "adjustments": [],
                "references": [],
                "position": pos,
                "raw": tuple(x.strip() for x in seg[1:9]),
            }
            lines.append(current)
        elif sid == "ADX" and current is not None:
            amt = _amount(seg, 1, pos, "782", findings, where)
            if amt is not None:
                current["adjustments"].append((amt, element(seg, 2).strip()))  # type: ignore[attr-defined]
        elif sid == "DTM":
            qualifier = element(seg, 1).strip()
            if current is not None and qualifier in ("003", "004"):
                current["invoice_date"] = _date(element(seg, 2))
            elif current is None and party is None:
                advice.dates.setdefault(qualifier, element(seg, 2).strip())
        elif sid == "ENT":
            current = None
            party = "ENT"
    for ln in lines:
        ln["adjustments"] = tuple(ln["adjustments"])  # type: ignore[arg-type]
        ln["references"] = tuple(ln["references"])  # type: ignore[arg-type]
        advice.lines.append(RemittanceLine(**ln))  # type: ignore[arg-type]
    if not advice.trace_number:
        advice.warnings.append(f"{where}: no TRN02 trace number; the check/reference number is unknown")
    paid_sum = sum((ln.paid for ln in advice.lines), Decimal(0))
    advice.paid_sum = paid_sum
    if total is not None and advice.lines and paid_sum != total:
        advice.mismatch = total - paid_sum
        advice.warnings.append(
            f"{where}: BPR02 {format_amount(total)} differs from the sum of RMR04 {format_amount(paid_sum)} "
            f"by {format_amount(total - paid_sum)}"
        )
    ts.summary.findings.extend(findings)
    return (advice if not any(f.severity == "error" for f in findings) else None), findings
