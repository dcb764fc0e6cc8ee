"""AP payments (Erp.BO.PaymentEntrySvc): a CheckHed per 820, one APTran per remitted invoice.

Header: ``CreateNewCheckHed{pcGroupID, ds}`` (saves the header at once) → ``OnChangeVendor{pcVendorID,
ds}`` → ``OnChangeManualPrint{plManualPrint: true, ds}`` when a check number, date or bank account is
given (Kinetic keeps CheckNum/CheckDate/BankAcctID only on manually printed checks) → those fields →
``Update{ds}``; the header is then read back by HeadNum and must hold the CheckNum.
Lines: ``GetNewAPTran{ds (holding the CheckHed), headNum, apTranNo 0, invoiceNum}`` →
``OnChangeInvoiceNum{pcInvoiceNum, pcChangeExchangeRateResponse "Yes", ds}`` →
``OnChangeDocTranAmt{pdDocTranAmt, ds}`` → ``Update{ds}``.

Crash safety: the natural key is (VendorNum, CheckNum). CreateNewCheckHed saves an empty header,
so before creating one the recipe reuses an empty header left in the group (VendorNum 0,
CheckNum 0) by a run that died between the two saves; creating headers in one group is serialised
so two records never take the same empty header. A header whose CheckNum Kinetic did not keep is
deleted (DeleteByID) and the record fails: the next run cannot find it and would create another.

Evidence: Snolandia ``Erp_BO_PaymentEntrySvc.py`` (CreateNewCheckHed_input, OnChangeVendor_input,
OnChangeManualPrint_input, GetNewAPTran_input, OnChangeInvoiceNum_input, OnChangeDocTranAmt_input,
Update_input, DeleteByID_input; CheckHed.ManualPrint and APTran.APTranNo descriptions);
reference/kinetic-evidence.md rows 5-8.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...errors import RecordError, UnknownOutcomeError
from ...formats.x12.remit820 import PaymentAdvice
from .. import odata
from ..entities import ENTITIES
from ..port import KineticPort
from . import Payload, Poster, ds_of, first_row, last_row, lookup, read_ds, refuse_posted

ENTITY = ENTITIES["ap-payments"]
VENDORS = ENTITIES["vendors"]

# The methods this recipe calls, with every parameter it sends (the fit check compares $metadata).
METHODS: dict[str, tuple[str, ...]] = {
    "CreateNewCheckHed": ("pcGroupID", "ds"),
    "OnChangeVendor": ("pcVendorID", "ds"),
    "OnChangeManualPrint": ("plManualPrint", "ds"),
    "GetByID": ("headNum",),
    "Update": ("ds",),
    "DeleteByID": ("headNum",),
    "GetNewAPTran": ("ds", "headNum", "apTranNo", "invoiceNum"),
    "OnChangeInvoiceNum": ("pcInvoiceNum", "pcChangeExchangeRateResponse", "ds"),
    "OnChangeDocTranAmt": ("pdDocTranAmt", "ds"),
}


@dataclass(frozen=True)
class Payment:
    """One AP payment to post: what an 820 (or a flat file) says was paid."""

    group_id: str
    vendor_id: str
    check_num: int
    check_date: str | None
    amount: Decimal
    lines: tuple[tuple[str, Decimal], ...] = ()  # (InvoiceNum, amount paid)
    bank_acct_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def payment_from(payload: Payload, constants: Mapping[str, str]) -> Payment:
    """A ``Payment`` from an 820 payment advice or from plain fields."""
    advice = payload if isinstance(payload, PaymentAdvice) else None
    fields: Mapping[str, Any] = {} if isinstance(payload, PaymentAdvice) else payload
    group = str(constants.get("GroupID") or fields.get("GroupID") or "")
    if not group:
        raise RecordError("GroupID is required (set constants.GroupID on the flow)")
    if advice is not None:
        if not advice.payee_id:
            raise RecordError("N1*PE has no vendor id (N104): the payee cannot be matched")
        try:
            check = int(advice.trace_number)
        except ValueError:
            raise RecordError(f"TRN02 {advice.trace_number!r} is not a check number") from None
        date = f"{advice.payment_date.isoformat()}T00:00:00" if advice.payment_date else None
        lines = tuple((str(ln.invoice_num), ln.paid) for ln in advice.lines)
        return Payment(group, str(advice.payee_id), check, date, advice.amount, lines,
                       constants.get("BankAcctID"))  # fmt: skip
    try:
        check = int(fields.get("CheckNum") or 0)
    except (TypeError, ValueError):
        raise RecordError(f"CheckNum {fields.get('CheckNum')!r} is not a number") from None
    vendor = str(fields.get("VendorNumVendorID") or "")
    if not vendor or not check:
        raise RecordError("VendorNumVendorID and CheckNum are required")
    amount = Decimal(str(fields.get("CheckAmt") or 0))
    bank = fields.get("BankAcctID") or constants.get("BankAcctID")
    return Payment(group, vendor, check, fields.get("CheckDate"), amount, tuple(fields.get("lines") or ()), bank)


class APPaymentRecipe:
    """AP payments from X12 820 remittance (the flow's target is ap-payments)."""

    async def prepare(self, k: KineticPort, payloads: Sequence[Payload],
                      constants: Mapping[str, str]) -> Poster:  # fmt: skip
        """Vendors of the batch's payees in one lookup; each record then posts one payment."""
        ids = set()
        for p in payloads:
            ids.add(str(p.payee_id if isinstance(p, PaymentAdvice) else p.get("VendorNumVendorID") or ""))
        vendors = await lookup(k, VENDORS, [{"VendorID": i} for i in sorted(ids - {""})])
        locks: dict[str, asyncio.Lock] = {}

        async def post(payload: Payload) -> dict[str, Any]:
            pay = payment_from(payload, constants)
            vendor = vendors.get((pay.vendor_id,))
            if vendor is None:
                raise RecordError(f"payment {pay.check_num}: vendor {pay.vendor_id!r} does not exist in Kinetic")
            lock = locks.setdefault(pay.group_id, asyncio.Lock())
            head, created = await post_payment(k, pay, vendor, lock)
            return {"HeadNum": head, "CheckNum": pay.check_num, "created": created}

        return post


async def find_payment(k: KineticPort, vendor_num: int, check_num: int) -> dict[str, Any] | None:
    """The header with this (VendorNum, CheckNum), or None."""
    flt = odata.all_of(odata.compare("VendorNum", "eq", vendor_num), odata.compare("CheckNum", "eq", check_num))
    rows = await k.query(ENTITY.service, ENTITY.entity_set, filter=flt, orderby="HeadNum asc", top=2)
    return rows[0] if rows else None


async def _empty_header(k: KineticPort, group: str) -> dict[str, Any] | None:
    flt = odata.all_of(odata.compare("GroupID", "eq", group), odata.compare("VendorNum", "eq", 0),
                       odata.compare("CheckNum", "eq", 0))  # fmt: skip
    rows = await k.query(ENTITY.service, ENTITY.entity_set, filter=flt, orderby="HeadNum asc", top=1)
    return rows[0] if rows else None


async def _new_header(k: KineticPort, pay: Payment, vendor: Mapping[str, Any], tries: int = 3) -> int:
    """A saved header carrying the vendor and check: an empty one reused, or CreateNewCheckHed."""
    svc = ENTITY.service
    what = f"payment {pay.check_num}"
    empty = await _empty_header(k, pay.group_id)
    if empty is not None:
        ds = await read_ds(k, ENTITY, empty)
    else:
        try:
            ds = ds_of(await k.call(svc, "CreateNewCheckHed", {"pcGroupID": pay.group_id, "ds": {}}, write=True))
        except UnknownOutcomeError:
            if tries <= 1:
                raise
            return await _new_header(k, pay, vendor, tries - 1)  # finds the header if it was saved
    hed = first_row(ds, "CheckHed", what)
    head_num = int(hed.get("HeadNum") or 0)
    if not head_num:
        raise RecordError(f"{what}: CreateNewCheckHed returned no HeadNum")
    hed["RowMod"] = "U"
    ds = ds_of(await k.call(svc, "OnChangeVendor", {"pcVendorID": pay.vendor_id, "ds": ds}))
    ds = ds_of(await k.call(svc, "OnChangeManualPrint", {"plManualPrint": True, "ds": ds}))
    hed = first_row(ds, "CheckHed", what)
    # The check amount is not written: Kinetic adds up the payment lines (no public caller writes
    # CheckAmt/DocCheckAmt; docs/kinetic.md). The file's own total is checked against its lines.
    hed["CheckNum"] = pay.check_num
    if pay.check_date:
        hed["CheckDate"] = pay.check_date
    if pay.bank_acct_id:
        hed["BankAcctID"] = pay.bank_acct_id
    ds.pop("APTran", None)
    with contextlib.suppress(UnknownOutcomeError):  # read back below: it holds the check or it does not
        await k.call(svc, "Update", {"ds": ds}, write=True)
    saved = first_row(await read_ds(k, ENTITY, {"HeadNum": head_num}), "CheckHed", what)
    if int(saved.get("CheckNum") or 0) != pay.check_num or int(saved.get("VendorNum") or 0) != int(vendor["VendorNum"]):
        if not saved.get("VendorNum") and not saved.get("CheckNum"):
            raise UnknownOutcomeError(f"{what}: the header update got no answer and did not land (HeadNum {head_num})")
        # Kinetic dropped the check number (a check not printed manually does not keep it): the
        # header could never be found by its natural key again, so it must not stay behind.
        await k.call(svc, "DeleteByID", {"headNum": head_num}, write=True)
        raise RecordError(f"{what}: Kinetic did not keep CheckNum {pay.check_num} on HeadNum {head_num} "
                          "(is ManualPrint allowed for this payment method?); the header was deleted")  # fmt: skip
    return head_num


async def post_payment(k: KineticPort, pay: Payment, vendor: Mapping[str, Any],
                       lock: asyncio.Lock | None = None) -> tuple[int, bool]:  # fmt: skip
    """Post one payment (idempotent by VendorNum + CheckNum); returns (HeadNum, created)."""
    vendor_num = int(vendor["VendorNum"])
    existing = await find_payment(k, vendor_num, pay.check_num)
    created = existing is None
    if existing is None:
        async with lock or asyncio.Lock():  # one group's empty headers are taken one at a time
            existing = await find_payment(k, vendor_num, pay.check_num)
            head_num = int(existing["HeadNum"]) if existing is not None else await _new_header(k, pay, vendor)
    else:
        head_num = int(existing["HeadNum"])
    for invoice_num, paid in pay.lines:
        await _pay_line(k, head_num, invoice_num, paid, f"payment {pay.check_num}")
    return head_num, created


async def _pay_line(k: KineticPort, head_num: int, invoice_num: str, paid: Any, what: str) -> None:
    svc = ENTITY.service

    async def current() -> dict[str, Any]:
        return await read_ds(k, ENTITY, {"HeadNum": head_num})

    ds = await current()
    if any(str(t.get("InvoiceNum")) == invoice_num for t in ds.get("APTran") or []):
        return  # paid before (a replay, or a run that died after this line)
    refuse_posted(ENTITY, first_row(ds, "CheckHed", what), what)
    ds = {"CheckHed": ds.get("CheckHed") or []}  # GetNewAPTran reads the header from the ds
    for row in ds["CheckHed"]:
        row["RowMod"] = ""
    # APTranNo 0: invoice payments are keyed by InvoiceNum; only misc rows take a sequence.
    ds = ds_of(await k.call(svc, "GetNewAPTran", {"ds": ds, "headNum": head_num, "apTranNo": 0,
                                                  "invoiceNum": invoice_num}))  # fmt: skip
    ds = ds_of(await k.call(svc, "OnChangeInvoiceNum", {"pcInvoiceNum": invoice_num,
                                                        "pcChangeExchangeRateResponse": "Yes", "ds": ds}))  # fmt: skip
    ds = ds_of(await k.call(svc, "OnChangeDocTranAmt", {"pdDocTranAmt": paid, "ds": ds}))
    last_row(ds, "APTran", f"{what} invoice {invoice_num}")
    try:
        await k.call(svc, "Update", {"ds": ds}, write=True)
    except UnknownOutcomeError:
        after = await current()
        if not any(str(t.get("InvoiceNum")) == invoice_num for t in after.get("APTran") or []):
            raise


RECIPE = APPaymentRecipe()
