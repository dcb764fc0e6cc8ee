"""Vendors (Erp.BO.VendorSvc): GetNewVendor → fields → Update; existing: GetByID → RowMod U → Update.

Evidence: Snolandia ``Erp_BO_VendorSvc.py`` (GetNewVendor{ds}, GetByID{vendorNum}, Update{ds});
the field list and SysRevID semantics are reference/kinetic-evidence.md row 21.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import RecordError, UnknownOutcomeError
from ...formats.x12.remit820 import PaymentAdvice
from ..entities import ENTITIES
from ..port import KineticPort
from . import Payload, Poster, ds_of, first_row, is_duplicate, last_row, lookup, lookup_loose, plain, read_ds

ENTITY = ENTITIES["vendors"]

# The methods this recipe calls, with every parameter it sends (the fit check compares $metadata).
METHODS: dict[str, tuple[str, ...]] = {"GetNewVendor": ("ds",), "GetByID": ("vendorNum",), "Update": ("ds",)}


async def upsert(k: KineticPort, fields: Mapping[str, Any], existing: dict[str, Any] | None = None, *,
                 looked_up: bool = False, tries: int = 3) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Create or update one vendor by VendorID; returns (saved row, created)."""
    vendor_id = str(fields.get("VendorID") or "")
    if not vendor_id:
        raise RecordError("VendorID is required")
    if existing is None and not looked_up:
        existing = (await lookup(k, ENTITY, [{"VendorID": vendor_id}])).get((vendor_id,))
    what = f"{vendor_id!r}"
    if existing is not None:
        ds = await read_ds(k, ENTITY, existing)
        row = first_row(ds, "Vendor", f"vendor {what}")
        row.update({f: v for f, v in fields.items() if f not in ("VendorNum", "VendorID")})
        row["RowMod"] = "U"
    else:
        ds = ds_of(await k.call(ENTITY.service, "GetNewVendor", {"ds": {}}))
        row = last_row(ds, "Vendor", f"vendor {what}")
        row.update(fields)
    try:
        saved = ds_of(await k.call(ENTITY.service, "Update", {"ds": ds}, write=True))
    except RecordError as exc:
        other = await lookup_loose(k, ENTITY, "VendorID", vendor_id) if existing is None and is_duplicate(exc) else None
        if other is None:
            raise
        return await upsert(k, fields, other, looked_up=True, tries=tries)  # the same vendor, spelt differently
    except UnknownOutcomeError:
        settled = (await lookup(k, ENTITY, [{"VendorID": vendor_id}])).get((vendor_id,))
        if settled is not None and (existing is None or settled["SysRevID"] != existing["SysRevID"]):
            return settled, existing is None  # the write landed
        if tries <= 1:
            raise
        return await upsert(k, fields, settled, looked_up=True, tries=tries - 1)
    rows = saved.get("Vendor") or []
    match = next((r for r in rows if str(r.get("VendorID")) == vendor_id), rows[-1] if rows else None)
    if match is None:
        raise RecordError(f"vendor {what}: Kinetic's Update reply holds no Vendor row")
    return match, existing is None


class VendorRecipe:
    """Vendors from CSV / fixed-width files."""

    async def prepare(self, k: KineticPort, payloads: Sequence[Payload],
                      constants: Mapping[str, str]) -> Poster:  # fmt: skip
        """One batched lookup by VendorID; a repeated VendorID in the batch looks again."""
        rows = [p for p in payloads if not isinstance(p, PaymentAdvice)]
        found = await lookup(k, ENTITY, [p for p in rows if p.get("VendorID")])
        seen: set[str] = set()

        async def post(payload: Payload) -> dict[str, Any]:
            fields = plain(payload, "vendors")
            key = str(fields.get("VendorID") or "")
            if not key:
                raise RecordError("VendorID is required")
            looked_up = key not in seen
            seen.add(key)
            row, created = await upsert(k, fields, found.get((key,)) if looked_up else None, looked_up=looked_up)
            return {"VendorNum": row["VendorNum"], "VendorID": key, "created": created}

        return post


RECIPE = VendorRecipe()
