"""AP invoices (Erp.BO.APInvoiceSvc): header through its change methods, lines by UpdateMaster.

New header: ``GetNewAPInvHedInvoice{ds, cGroupID}`` → InvoiceNum → ``ChangeVendorID{ProposedVendorID,
confirmCheck, ds}`` (derives terms, due date, currency) → ``ChangeInvoiceDateEx{ProposedInvoiceDate,
recalcAmts, ds}`` → ``ChangeInvoiceVendorAmt{ProposedInvoiceVendorAmt, ds}`` (the control amount the
user enters) → other fields → ``Update{ds}``. ``InvoiceAmt`` is never written: Kinetic sums it
from the lines. Existing header: ``GetByID{vendorNum, invoiceNum}`` by GET, refused if posted,
RowMod U, the same change methods for what changed, ``Update``. Lines (optional ``lines`` in the
payload, line n = InvoiceLine n): ``GetNewAPInvDtlMiscellaneous{ds, iVendorNum, cInvoiceNum}`` →
fields → ``UpdateMaster{ds, cGroupID, cTableName "APInvDtl", runChkCPay, runChkBankRef,
runChkRevChrg, suppressUserPrompts}``.

Evidence: Snolandia ``Erp_BO_APInvoiceSvc.py`` (the ``_input`` classes of each method named);
reference/kinetic-evidence.md rows 3, 17, 19.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ...errors import RecordError, UnknownOutcomeError
from ...formats.x12.remit820 import PaymentAdvice
from ..entities import ENTITIES
from ..port import KineticPort
from . import KeyIndex, Payload, Poster, ds_of, first_row, last_row, lookup, plain, read_ds, refuse_posted

ENTITY = ENTITIES["ap-invoices"]
VENDORS = ENTITIES["vendors"]
# What a file may call the amount the vendor billed: all of them go through ChangeInvoiceVendorAmt.
AMOUNT_FIELDS = ("InvoiceVendorAmt", "DocInvoiceVendorAmt", "ScrDocInvoiceVendorAmt", "InvoiceAmt", "DocInvoiceAmt")
# Kinetic derives these (balances, sums, keys): a file's value is never written.
DERIVED = {"InvoiceAmt", "DocInvoiceAmt", "InvoiceVendorAmt", "DocInvoiceVendorAmt", "ScrDocInvoiceVendorAmt",
           "InvoiceBal", "DocInvoiceBal", "UnpostedBal", "Posted", "OpenPayable", "VendorNum", "VendorNumVendorID",
           "VendorNumName", "InvoiceNum", "InvoiceDate", "GroupID", "lines"}  # fmt: skip
UPDATE_MASTER_FLAGS = {"runChkCPay": False, "runChkBankRef": False, "runChkRevChrg": False, "suppressUserPrompts": True}

# The methods this recipe calls, with every parameter it sends (the fit check compares $metadata).
METHODS: dict[str, tuple[str, ...]] = {
    "GetNewAPInvHedInvoice": ("ds", "cGroupID"),
    "ChangeVendorID": ("ProposedVendorID", "confirmCheck", "ds"),
    "ChangeInvoiceDateEx": ("ProposedInvoiceDate", "recalcAmts", "ds"),
    "ChangeInvoiceVendorAmt": ("ProposedInvoiceVendorAmt", "ds"),
    "GetByID": ("vendorNum", "invoiceNum"),
    "Update": ("ds",),
    "GetNewAPInvDtlMiscellaneous": ("ds", "iVendorNum", "cInvoiceNum"),
    "UpdateMaster": ("ds", "cGroupID", "cTableName", "runChkCPay", "runChkBankRef", "runChkRevChrg",
                     "suppressUserPrompts"),
}  # fmt: skip


def _amount(fields: Mapping[str, Any]) -> Any:
    return next((fields[f] for f in AMOUNT_FIELDS if fields.get(f) not in (None, "")), None)


def _day(value: Any) -> str:
    return str(value)[:10]


async def _header(k: KineticPort, fields: Mapping[str, Any], vendor: Mapping[str, Any],
                  existing: Mapping[str, Any] | None, group: str, what: str) -> dict[str, Any]:  # fmt: skip
    """The header tableset, changed as the fields ask, ready for Update."""
    svc = ENTITY.service
    amount = _amount(fields)
    if existing is not None:
        ds = await read_ds(k, ENTITY, existing)
        hed = first_row(ds, "APInvHed", what)
        refuse_posted(ENTITY, hed, what)
        hed["RowMod"] = "U"
        date_changed = fields.get("InvoiceDate") and _day(fields["InvoiceDate"]) != _day(hed.get("InvoiceDate"))
        amount_changed = amount is not None and Decimal(str(amount)) != Decimal(str(hed.get("InvoiceVendorAmt") or 0))
    else:
        ds = ds_of(await k.call(svc, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": group}))
        hed = last_row(ds, "APInvHed", what)
        hed["InvoiceNum"] = fields["InvoiceNum"]
        ds = ds_of(await k.call(svc, "ChangeVendorID", {"ProposedVendorID": vendor["VendorID"], "confirmCheck": True,
                                                        "ds": ds}))  # fmt: skip
        date_changed, amount_changed = bool(fields.get("InvoiceDate")), amount is not None
    if date_changed:
        ds = ds_of(await k.call(svc, "ChangeInvoiceDateEx", {"ProposedInvoiceDate": fields["InvoiceDate"],
                                                             "recalcAmts": "", "ds": ds}))  # fmt: skip
    if amount_changed:
        ds = ds_of(await k.call(svc, "ChangeInvoiceVendorAmt", {"ProposedInvoiceVendorAmt": amount, "ds": ds}))
    hed = first_row(ds, "APInvHed", what) if existing is not None else last_row(ds, "APInvHed", what)
    hed.update({f: v for f, v in fields.items() if f not in DERIVED})
    return ds


async def _lines(k: KineticPort, head: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], group: str,
                 what: str) -> None:  # fmt: skip
    """Line n of the record is InvoiceLine n: new ones added, existing ones updated (full row)."""
    svc = ENTITY.service
    ds = await read_ds(k, ENTITY, head)
    have = {int(r.get("InvoiceLine") or 0): r for r in ds.get("APInvDtl") or []}
    for r in have.values():
        r["RowMod"] = ""
    for n, line in enumerate(lines, start=1):
        values = {f: v for f, v in line.items() if f not in ("VendorNum", "InvoiceNum", "InvoiceLine")}
        if n in have:
            have[n].update(values)
            have[n]["RowMod"] = "U"
            continue
        ds = ds_of(await k.call(svc, "GetNewAPInvDtlMiscellaneous", {"ds": ds, "iVendorNum": head["VendorNum"],
                                                                     "cInvoiceNum": head["InvoiceNum"]}))  # fmt: skip
        last_row(ds, "APInvDtl", what).update(values)
    params = {"ds": ds, "cGroupID": group, "cTableName": "APInvDtl", **UPDATE_MASTER_FLAGS}
    try:
        await k.call(svc, "UpdateMaster", params, write=True)
    except UnknownOutcomeError:
        after = await read_ds(k, ENTITY, head)
        if len(after.get("APInvDtl") or []) < len(lines):
            raise  # the next run settles it: line n exists → updated, not added again


class APInvoiceRecipe:
    """AP invoices (invoice confirmations) from CSV / fixed-width files."""

    async def prepare(self, k: KineticPort, payloads: Sequence[Payload],
                      constants: Mapping[str, str]) -> Poster:  # fmt: skip
        """Vendors by VendorID, then invoices by (VendorNum, InvoiceNum): two batched lookups."""
        rows = [p for p in payloads if not isinstance(p, PaymentAdvice)]
        ids = sorted({str(p.get("VendorNumVendorID") or "") for p in rows} - {""})
        vendors = await lookup(k, VENDORS, [{"VendorID": i} for i in ids])
        keys = []
        for p in rows:
            v = vendors.get((str(p.get("VendorNumVendorID") or ""),))
            if v is not None and p.get("InvoiceNum"):
                keys.append({"VendorNum": v["VendorNum"], "InvoiceNum": p["InvoiceNum"]})
        found = await lookup(k, ENTITY, keys) if keys else KeyIndex(ENTITY.natural_key)
        seen: set[tuple[Any, ...]] = set()

        async def post(payload: Payload) -> dict[str, Any]:
            fields = plain(payload, "AP invoices")
            vid = str(fields.get("VendorNumVendorID") or "")
            vendor = vendors.get((vid,))
            if vendor is None:
                raise RecordError(f"vendor {vid!r} does not exist in Kinetic")
            invoice = fields.get("InvoiceNum")
            if not invoice:
                raise RecordError("InvoiceNum is required")
            group = str(fields.get("GroupID") or constants.get("GroupID") or "")
            if not group:
                raise RecordError("GroupID is required (set constants.GroupID on the flow)")
            key = (vendor["VendorNum"], invoice)
            if key in seen:  # a repeat in this batch: look again (the first one may have created it)
                existing = (await lookup(k, ENTITY, [{"VendorNum": key[0], "InvoiceNum": key[1]}])).get(key)
            else:
                existing = found.get(key)
            seen.add(key)
            row = await upsert(k, fields, vendor, existing, group)
            return {"VendorNum": row["VendorNum"], "InvoiceNum": row["InvoiceNum"], "created": existing is None}

        return post


async def upsert(k: KineticPort, fields: Mapping[str, Any], vendor: Mapping[str, Any],
                 existing: Mapping[str, Any] | None, group: str, tries: int = 3) -> dict[str, Any]:  # fmt: skip
    """Create or update one invoice (and its lines); returns the saved header row."""
    key = {"VendorNum": vendor["VendorNum"], "InvoiceNum": fields["InvoiceNum"]}
    what = f"{vendor['VendorID']}/{fields['InvoiceNum']}"
    ds = await _header(k, fields, vendor, existing, group, what)
    try:
        saved = ds_of(await k.call(ENTITY.service, "Update", {"ds": ds}, write=True))
        rows = saved.get("APInvHed") or []
        head: dict[str, Any] = next((r for r in rows if r.get("InvoiceNum") == key["InvoiceNum"]), key)
    except UnknownOutcomeError:
        settled = (await lookup(k, ENTITY, [key])).get((key["VendorNum"], key["InvoiceNum"]))
        landed = settled is not None and (existing is None or settled["SysRevID"] != existing.get("SysRevID"))
        if not landed:
            if tries <= 1:
                raise
            return await upsert(k, fields, vendor, settled, group, tries - 1)
        head = dict(settled or key)
    lines = fields.get("lines") or []
    if lines:
        await _lines(k, {**key, **head}, lines, group, what)
    return {**key, **head}


RECIPE = APInvoiceRecipe()
