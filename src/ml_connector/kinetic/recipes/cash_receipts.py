"""AR cash receipts (Erp.BO.CashRecSvc): a CashHead per 820, applied to its AR invoices.

Header: ``GetNewCashHead{ds, groupID}`` → ``GetCustomerInfo{custID, ds}`` (customer, currency) →
TranType "PayInv", CheckRef, TranDate, amounts → ``UpdateMaster{ds, ipGroupID, ipTableName
"CashHead", updGroupTotals, ipIgnoreValidation}``. Each invoice: ``GetNewCashDtl{ds (holding the
CashHead), groupID, headNum, invoiceNum}`` → ``GetDtlInvoiceInfo{invoiceNum, ds}`` →
``GetDtlTranAmtInfo{docTranAmt, docWriteOffAmount, ds}`` → ``UpdateMaster{…, ipTableName "CashDtl"}``.
The customer comes from the first remitted invoice (``ARInvoices``: CustNum and its CustID).

Idempotent: the header is found by (GroupID, CustNum, CheckRef) and an invoice already applied
to it is not applied again; a lost answer is settled by reading the receipt back first. A posted
receipt with invoices still to apply is refused as already posted.

Evidence: Snolandia ``Erp_BO_CashRecSvc.py`` (GetNewCashHead_input, GetCustomerInfo_input,
GetNewCashDtl_input, GetDtlInvoiceInfo_input, GetDtlTranAmtInfo_input, UpdateMaster_input);
reference/kinetic-evidence.md row 20.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...errors import RecordError, UnknownOutcomeError
from ...formats.x12.remit820 import PaymentAdvice
from ..entities import ENTITIES
from ..port import KineticPort
from . import KeyIndex, Payload, Poster, ds_of, first_row, last_row, lookup, read_ds, refuse_posted

ENTITY = ENTITIES["cash-receipts"]
AR_INVOICES = ENTITIES["ar-invoices"]

# The methods this recipe calls, with every parameter it sends (the fit check compares $metadata).
METHODS: dict[str, tuple[str, ...]] = {
    "GetNewCashHead": ("ds", "groupID"),
    "GetCustomerInfo": ("custID", "ds"),
    "GetByID": ("groupID", "headNum"),
    "GetNewCashDtl": ("ds", "groupID", "headNum", "invoiceNum"),
    "GetDtlInvoiceInfo": ("invoiceNum", "ds"),
    "GetDtlTranAmtInfo": ("docTranAmt", "docWriteOffAmount", "ds"),
    "UpdateMaster": ("ds", "ipGroupID", "ipTableName", "updGroupTotals", "ipIgnoreValidation"),
}


@dataclass(frozen=True)
class Receipt:
    """One cash receipt to post: who paid, how much, and which invoices it settles."""

    group_id: str
    check_ref: str
    amount: Decimal
    tran_date: str | None
    lines: tuple[tuple[int, Decimal], ...]  # (AR InvoiceNum, amount applied)
    extra: tuple[tuple[str, Any], ...] = ()


def receipt_from(payload: Payload, constants: Mapping[str, str]) -> Receipt:
    """A ``Receipt`` from an 820 payment advice."""
    if not isinstance(payload, PaymentAdvice):
        raise RecordError("a cash receipt is read from an 820 payment advice")
    advice = payload
    group = str(constants.get("GroupID") or "")
    if not group:
        raise RecordError("GroupID is required (set constants.GroupID on the flow)")
    lines = []
    for ln in advice.lines:
        if not str(ln.invoice_num).isdigit():
            raise RecordError(f"RMR02 invoice {ln.invoice_num!r} is not an AR invoice number")
        lines.append((int(ln.invoice_num), ln.paid))
    if not lines:
        raise RecordError("the 820 has no RMR invoice lines to apply")
    date = f"{advice.payment_date.isoformat()}T00:00:00" if advice.payment_date else None
    extra = tuple((k, v) for k, v in constants.items() if k != "GroupID")
    return Receipt(group, str(advice.trace_number)[:30], advice.amount, date, tuple(lines), extra)


class CashReceiptRecipe:
    """Cash receipts from X12 820 remittance (the flow's target is cash-receipts)."""

    async def prepare(self, k: KineticPort, payloads: Sequence[Payload],
                      constants: Mapping[str, str]) -> Poster:  # fmt: skip
        """The batch's AR invoices (customer of each) in lookups under the row cap."""
        numbers: set[int] = set()
        for p in payloads:
            for ln in p.lines if isinstance(p, PaymentAdvice) else ():
                if str(ln.invoice_num).isdigit():
                    numbers.add(int(ln.invoice_num))
        invoices = (
            await lookup(
                k,
                AR_INVOICES,
                [{"InvoiceNum": n} for n in sorted(numbers)],
                select=["InvoiceNum", "CustNum", "CustomerCustID"],
            )
            if numbers
            else KeyIndex(AR_INVOICES.natural_key)
        )

        async def post(payload: Payload) -> dict[str, Any]:
            receipt = receipt_from(payload, constants)
            for num, _ in receipt.lines:
                if invoices.get((num,)) is None:
                    raise RecordError(f"RMR02 invoice {num} is not an AR invoice in Kinetic")
            customer = invoices.get((receipt.lines[0][0],)) or {}
            for num, _ in receipt.lines[1:]:
                other = invoices.get((num,)) or {}
                if other.get("CustNum") != customer.get("CustNum"):
                    # One receipt pays one customer: Kinetic refuses a line for another customer's invoice.
                    theirs = other.get("CustomerCustID") or other.get("CustNum")
                    ours = customer.get("CustomerCustID") or customer.get("CustNum")
                    raise RecordError(
                        f"RMR02 invoice {num} belongs to customer {theirs}, not {ours} (invoice {receipt.lines[0][0]})"
                    )
            head, created = await post_receipt(k, receipt, customer)
            return {"GroupID": head["GroupID"], "HeadNum": head["HeadNum"], "created": created}

        return post


def _update_master(ds: Mapping[str, Any], group: str, table: str) -> dict[str, Any]:
    # Every parameter of UpdateMaster_input: ipIgnoreValidation is an int in the schema (0: validate).
    return {"ds": ds, "ipGroupID": group, "ipTableName": table, "updGroupTotals": True, "ipIgnoreValidation": 0}


async def _find(k: KineticPort, group: str, cust_num: int, check_ref: str) -> dict[str, Any] | None:
    key = {"GroupID": group, "CustNum": cust_num, "CheckRef": check_ref}
    return (await lookup(k, ENTITY, [key])).get((group, cust_num, check_ref))


async def post_receipt(k: KineticPort, receipt: Receipt, customer: Mapping[str, Any],
                       tries: int = 3) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Post one receipt and apply it; returns (CashHead row, created)."""
    svc = ENTITY.service
    cust_num = int(customer.get("CustNum") or 0)
    cust_id = str(customer.get("CustomerCustID") or customer.get("CustID") or "")
    what = f"cash receipt {receipt.check_ref!r}"
    head = await _find(k, receipt.group_id, cust_num, receipt.check_ref)
    created = head is None
    if head is None:
        if not cust_id:
            raise RecordError(f"{what}: Kinetic gave no customer ID for invoice {receipt.lines[0][0]}")
        ds = ds_of(await k.call(svc, "GetNewCashHead", {"ds": {}, "groupID": receipt.group_id}))
        ds = ds_of(await k.call(svc, "GetCustomerInfo", {"custID": cust_id, "ds": ds}))
        row = last_row(ds, "CashHead", what)
        row.update(TranType="PayInv", CheckRef=receipt.check_ref, TranAmt=receipt.amount, DocTranAmt=receipt.amount)
        if receipt.tran_date:
            row["TranDate"] = receipt.tran_date
        row.update(dict(receipt.extra))
        try:
            await k.call(svc, "UpdateMaster", _update_master(ds, receipt.group_id, "CashHead"), write=True)
        except UnknownOutcomeError:
            if await _find(k, receipt.group_id, cust_num, receipt.check_ref) is None:
                if tries <= 1:
                    raise
                return await post_receipt(k, receipt, customer, tries - 1)
        head = await _find(k, receipt.group_id, cust_num, receipt.check_ref)
        if head is None:
            raise RecordError(f"{what}: saved, but Kinetic does not find it by group, customer and reference")
    for invoice_num, amount in receipt.lines:
        await _apply(k, head, invoice_num, amount, what)
    return head, created


async def _apply(k: KineticPort, head: Mapping[str, Any], invoice_num: int, amount: Decimal, what: str) -> None:
    """Apply part of a saved receipt to one AR invoice, once."""
    svc = ENTITY.service

    async def applied() -> tuple[bool, dict[str, Any]]:
        ds = await read_ds(k, ENTITY, head)
        return any(int(d.get("InvoiceNum") or 0) == invoice_num for d in ds.get("CashDtl") or []), ds

    done, ds = await applied()
    if done:
        return
    refuse_posted(ENTITY, first_row(ds, "CashHead", what), what)
    ds = {"CashHead": ds.get("CashHead") or []}  # GetNewCashDtl reads the header from the ds
    for row in ds["CashHead"]:
        row["RowMod"] = ""
    ds = ds_of(await k.call(svc, "GetNewCashDtl", {"ds": ds, "groupID": head["GroupID"], "headNum": head["HeadNum"],
                                                   "invoiceNum": invoice_num}))  # fmt: skip
    ds = ds_of(await k.call(svc, "GetDtlInvoiceInfo", {"invoiceNum": invoice_num, "ds": ds}))
    ds = ds_of(await k.call(svc, "GetDtlTranAmtInfo", {"docTranAmt": amount, "docWriteOffAmount": 0, "ds": ds}))
    last_row(ds, "CashDtl", f"{what} invoice {invoice_num}")
    try:
        await k.call(svc, "UpdateMaster", _update_master(ds, str(head["GroupID"]), "CashDtl"), write=True)
    except UnknownOutcomeError:
        if not (await applied())[0]:
            raise


RECIPE = CashReceiptRecipe()
