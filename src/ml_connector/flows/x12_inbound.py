"""The X12 side of an inbound run: read an 820 file into records, acknowledge it, preview it.

``InboundRun`` (flows/inbound.py) keeps the per-file control flow and calls these:

- ``read_x12_file``: sets -> records; each 820 checked against its element tables (partner
  policy ``on_element_error``), mapped (``format.mapping``), and its BPR02 compared with the
  sum of RMR04 (``on_amount_mismatch``: ``reject`` fails the record, ``warn`` notes it).
- ``parse_x12``: the X12 branch of the parse step: duplicate ISA13 check (TA1 025, the file
  counted as rejected), the 997 / 999 / TA1 written, amount mismatches audited.
- ``preview``: what the dry run shows for one record (trace, payer, payee, amounts, lines).
- ``resolve_batch_lookups``: the mapping's Kinetic ``find`` steps for a batch about to post.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import InboundFlow, X12Format
from ..errors import FatalError, RecordError
from ..formats.x12 import read_x12
from ..formats.x12.ack999 import build_999, business_ids_820
from ..formats.x12.acks import build_997, build_ta1, read_acks
from ..formats.x12.map820 import apply_mapping
from ..formats.x12.model import InterchangeSummary, TransactionSet, X12ParseError
from ..formats.x12.remit820 import PaymentAdvice, format_amount, interpret_820
from ..mapping import json_safe
from ..store.ledger import FileRow
from .lookups import resolve_lookups
from .parsed import AckLine, FileRejected, Parsed, X12Parse
from .ports import KineticPort, PartnerFiles

if TYPE_CHECKING:
    from .inbound import InboundRun

PAYMENT_ENTITIES = ("cash-receipts", "ap-payments")


def amount_policy(flow: InboundFlow, fmt: X12Format) -> str:
    """``on_amount_mismatch``, defaulting to reject for payments (money must add up) and warn else."""
    if fmt.on_amount_mismatch is not None:
        return fmt.on_amount_mismatch
    return "reject" if flow.entity in PAYMENT_ENTITIES else "warn"


def ack_partner_key(ic: InterchangeSummary) -> str:
    """Our reply goes from their receiver to their sender: the same counter as outbound."""
    (sq, sid), (rq, rid) = ic.sender, ic.receiver
    return f"{rq}:{rid}>{sq}:{sid}"


def _set_where(ts: TransactionSet) -> str:
    return f"interchange {ts.interchange.control_number} group {ts.group.control_number} set {ts.id} {ts.summary.st02}"


def advice_record(run: InboundRun, idx: int, ts: TransactionSet, name: str) -> Parsed:
    """One 820 set as a record: mapped advice, or the reason it cannot be posted."""
    assert isinstance(run.fmt, X12Format)
    fmt = run.fmt
    where = _set_where(ts)
    advice, _findings = interpret_820(ts, name, on_element_error=fmt.on_element_error)
    errors = [x for x in [*ts.interchange.findings, *ts.group.findings, *ts.summary.findings] if x.severity == "error"]
    if advice is None or errors:
        message = "; ".join(str(x) for x in errors[:5]) or f"{where}: not a usable 820"
        return Parsed(idx, where, None, message)
    try:
        advice = apply_mapping(advice, fmt.mapping, f"{name}: {where}")
    except RecordError as exc:
        return Parsed(idx, where, None, str(exc))
    if advice.mismatch is not None and amount_policy(run.flow, fmt) == "reject":
        return Parsed(
            idx, where, None,
            f"{name}: {where}: BPR02 {format_amount(advice.amount)} differs from the sum of RMR04 "
            f"{format_amount(advice.paid_sum)} by {format_amount(advice.mismatch)} (on_amount_mismatch: reject)",
        )  # fmt: skip
    return Parsed(idx, where, advice, None, advice.trace_number)


def read_x12_file(run: InboundRun, name: str, local: str | Path) -> X12Parse:
    """A local file's records: acknowledgment statuses (entity acknowledgments) or 820 advices."""
    data = Path(local).read_bytes()
    try:
        sets, reader = read_x12(data, name=name)
    except X12ParseError as exc:
        message = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
        raise FileRejected(message, [{"where": name, "message": str(exc)}]) from None
    out = X12Parse(sets, reader.interchanges)
    if run.flow.entity == "acknowledgments":
        first = reader.interchanges[0] if reader.interchanges else None
        ours = ":".join(first.receiver) if first else ""
        theirs = ":".join(first.sender) if first else ""
        for idx, status in enumerate(read_acks(sets, reader.interchanges)):
            where = f"{status.kind} " + (
                f"interchange {status.interchange}"
                if status.interchange
                else f"group {status.group}" + (f" set {status.set_control}" if status.set_control else "")
            )
            out.records.append(Parsed(idx, where, AckLine(status, ours, theirs), None, where))
        return out
    for idx, ts in enumerate(sets):
        if ts.id != "820":
            where = _set_where(ts)
            out.records.append(Parsed(idx, where, None, f"{where}: transaction set {ts.id} is not an 820"))
            continue
        out.records.append(advice_record(run, idx, ts, name))
    return out


async def parse_x12(run: InboundRun, sftp: PartnerFiles, f: FileRow) -> tuple[X12Parse, list[str]] | None:
    """Read, check for a re-sent interchange, acknowledge; None when the file was a duplicate."""
    if f.local_path is None:
        raise FatalError(f"{f.remote_path}: no staged copy to read")
    parsed = read_x12_file(run, f.name, f.local_path)
    if await check_interchanges(run, sftp, f, parsed):
        return None
    acks = await acknowledge(run, sftp, f, parsed)
    for rec in parsed.records:
        advice = rec.fields
        if isinstance(advice, PaymentAdvice) and advice.mismatch is not None:
            run.audit(
                "x12.amount_mismatch", subject=f"{f.name}: {rec.position}", outcome="warning",
                details={"file_id": f.id, "bpr02": json_safe(advice.amount), "rmr04_sum": json_safe(advice.paid_sum),
                         "difference": json_safe(advice.mismatch), "policy": "warn"},
            )  # fmt: skip
        elif rec.error and "on_amount_mismatch" in rec.error:
            run.audit("x12.amount_mismatch", subject=f"{f.name}: {rec.position}", outcome="error",
                      details={"file_id": f.id, "error": rec.error, "policy": "reject"})  # fmt: skip
    return parsed, acks


async def check_interchanges(run: InboundRun, sftp: PartnerFiles, f: FileRow, parsed: X12Parse) -> bool:
    """A duplicate ISA13 from the same sender: TA1 025, no posting, file to the error folder.

    The file counts as rejected (``files_error``), so the run is partial and exits 1 like any
    other rejected file; its ledger state stays ``duplicate`` (what happened to it).
    """
    for ic in parsed.interchanges:
        sender, receiver = ":".join(ic.sender), ":".join(ic.receiver)
        known = run.ledger.interchange("inbound", sender, receiver, ic.control_number)
        if known is not None and known["file_id"] != f.id:
            isa13 = run.ctx.store.control_numbers.allocate(ack_partner_key(ic), "ISA")[0]
            ta1 = build_ta1(ic, isa13=isa13, when=run.ctx.clock(), note="025", ack="R")
            acks = [await run._write_ack(sftp, f, ta1, f"{f.name}.{f.id}.ta1")] if run.flow.ack_folder else []
            message = (
                f"{f.name}: interchange {ic.control_number} from {sender} was already received "
                f"(file {known['file_id']}); rejected with TA1 025"
            )
            f = run.ledger.update_file(f.id, state="duplicate", error=message, details={"acks": acks})
            run.audit(
                "alert.duplicate_interchange",
                subject=f.remote_path,
                outcome="error",
                details={"isa13": ic.control_number, "sender": sender, "first_file": known["file_id"]},
            )
            run.result.bump("files_duplicate")
            run.result.bump("files_error")
            moved = await run._move(
                sftp,
                f,
                run.flow.error_folder,
                sidecar={"reason": message, "problems": [{"where": f.name, "message": message}]},
            )
            run.result.files.append(
                {"id": f.id, "name": f.name, "state": "duplicate", "reason": message, "moved_to": moved}
            )
            run.ctx.progress.note(f"{f.name}: rejected ({message})")
            return True
    for ic in parsed.interchanges:
        run.ledger.add_interchange(
            direction="inbound",
            sender=":".join(ic.sender),
            receiver=":".join(ic.receiver),
            control_number=ic.control_number,
            file_id=f.id,
            groups={g.control_number: {"sets": len(g.sets)} for g in ic.groups},
            state="received",
        )
    return False


def ack_texts(fmt: X12Format, parsed: X12Parse, ic: InterchangeSummary, *, isa13: int, gs06: int,
              when: datetime) -> tuple[str, str | None, list[str], list[str]]:  # fmt: skip
    """(kind, text, groups acknowledged, AK9 codes) of the 997 or 999 for one interchange."""
    if fmt.ack == "999":
        ids = business_ids_820([ts for ts in parsed.sets if ts.interchange is ic])
        plan = build_999(ic, isa13=isa13, gs06=gs06, st02_start=1, when=when, business_ids=ids)
        return "999", plan.text, plan.groups_acknowledged, plan.ak9_codes
    plan = build_997(ic, isa13=isa13, gs06=gs06, st02_start=1, when=when)
    return "997", plan.text, plan.groups_acknowledged, plan.ak9_codes


async def acknowledge(run: InboundRun, sftp: PartnerFiles, f: FileRow, parsed: X12Parse) -> list[str]:
    """A 997 or 999 per interchange (never for 997/999/TA1 groups); a TA1 when asked or on envelope errors."""
    assert isinstance(run.fmt, X12Format)
    if run.fmt.ack == "none" or not run.flow.ack_folder or run.flow.entity == "acknowledgments":
        return []
    written = []
    when = run.ctx.clock()
    for n, ic in enumerate(parsed.interchanges):
        key = ack_partner_key(ic)
        if any(x.level == "interchange" for x in ic.findings) or ic.isa[14:15] == ["1"]:
            isa13 = run.ctx.store.control_numbers.allocate(key, "ISA")[0]
            written.append(
                await run._write_ack(sftp, f, build_ta1(ic, isa13=isa13, when=when), f"{f.name}.{f.id}.{n}.ta1")
            )
        if not ic.groups:
            continue
        isa13 = run.ctx.store.control_numbers.allocate(key, "ISA")[0]
        gs06 = run.ctx.store.control_numbers.allocate(key, "GS")[0]
        kind, text, groups, ak9 = ack_texts(run.fmt, parsed, ic, isa13=isa13, gs06=gs06, when=when)
        if text is not None:
            written.append(await run._write_ack(sftp, f, text, f"{f.name}.{f.id}.{n}.{kind}"))
            run.audit("x12.ack_sent", subject=f.remote_path, details={"kind": kind, "groups": groups, "ak9": ak9})
    return written


def preview(advice: PaymentAdvice) -> dict[str, Any]:
    """What the dry run shows for one 820: trace, parties, amounts, the check, every line."""
    return {
        "trace": advice.trace_number,
        "set": advice.set_control,
        "payer": {"name": advice.payer_name, "id": advice.payer_id, "qualifier": advice.payer_id_qualifier},
        "payee": {"name": advice.payee_name, "id": advice.payee_id, "qualifier": advice.payee_id_qualifier},
        "amount": format_amount(advice.amount),
        "sum_rmr04": format_amount(advice.paid_sum),
        **({"mismatch": format_amount(advice.mismatch)} if advice.mismatch is not None else {}),
        "date": advice.payment_date.isoformat() if advice.payment_date else None,
        "method": advice.method,
        "currency": advice.currency,
        **({"mapped": dict(advice.mapped)} if advice.mapped else {}),
        **({"lookups": [f"{t} {v!r}" for t, v, _ in advice.lookups]} if advice.lookups else {}),
        **({"skipped": list(advice.skipped)} if advice.skipped else {}),
        "lines": [
            {
                "qualifier": ln.qualifier,
                "invoice": ln.invoice_num,
                "paid": format_amount(ln.paid),
                **({"invoice_amount": format_amount(ln.invoice_amount)} if ln.invoice_amount is not None else {}),
                **({"discount": format_amount(ln.discount)} if ln.discount is not None else {}),
                **({"adjustments": [[format_amount(a), r] for a, r in ln.adjustments]} if ln.adjustments else {}),
            }
            for ln in advice.lines
        ],
    }


def dry_run_acks(fmt: X12Format, parsed: X12Parse, when: datetime) -> list[str]:
    """The 997/999 texts a real run would send (control numbers 1: nothing is allocated)."""
    if fmt.ack == "none":
        return []
    texts = []
    for ic in parsed.interchanges:
        if ic.groups:
            _kind, text, _g, _c = ack_texts(fmt, parsed, ic, isa13=1, gs06=1, when=when)
            if text:
                texts.append(text)
    return texts


async def resolve_batch_lookups(run: InboundRun, k: KineticPort, batch: list[Parsed]) -> None:
    """Run the mapping's ``find`` steps for a batch of 820 records about to be posted."""
    if not isinstance(run.fmt, X12Format) or not any(m.find for m in run.fmt.mapping.values()):
        return
    advices = [r.fields for r in batch if isinstance(r.fields, PaymentAdvice)]
    await resolve_lookups(k, advices, run.fmt.mapping)  # sets advice.lookup_errors: posting refuses those
