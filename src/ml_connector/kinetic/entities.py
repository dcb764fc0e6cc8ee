"""One record per Kinetic entity: everything the product knows about it, in one place.

A record says where the entity lives (service, entity set, table, its child sets), how a record
is identified (natural key; the GetByID parameters), how it is extracted (default cursor and
keyset tie-breakers), what partners get by default (CSV and fixed-width columns), which fields
exist (``known_fields``, for validating mappings), and which recipe module creates or updates it
(``ml_connector.kinetic.recipes.<recipe>``). Adding an entity is one record here and one recipe
module: see docs/design/entities.md.

Field names and casing follow the published method schemas (Snolandia/EpicorRestAPI_MethodsSchemas,
``Erp.Tablesets.<Table>Row``); ``known_fields`` lists the ones mappings commonly name, not all of
the several hundred, and any user-defined ``*_c`` field is accepted.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Column
from ..errors import ConfigError

if TYPE_CHECKING:
    from .recipes import Recipe


def _c(name: str, header: str | None = None, **kw: Any) -> Column:
    return Column(field=name, header=header or name, **kw)


def _fw(name: str, start: int, length: int, **kw: Any) -> Column:
    return Column(field=name, start=start, length=length, **kw)


MONEY: dict[str, Any] = {"type": "decimal", "format": "0.00"}
DAY: dict[str, Any] = {"type": "date", "format": "%Y-%m-%d"}
_COMMON = ("Company", "SysRevID", "SysRowID", "RowMod")
_CHANGED = ("ChangeDate", "ChangedBy")


@dataclass(frozen=True)
class ChildSet:
    """A child entity set read through its parent (``$expand``), never filtered on its own columns."""

    name: str  # navigation / entity set name, e.g. APTrans
    table: str  # e.g. APTran
    key: tuple[str, ...]  # the child table's key after Company (a keyset over children uses all of it)


@dataclass(frozen=True)
class Entity:
    """What ml-connector knows about one Kinetic entity."""

    name: str
    service: str
    entity_set: str
    table: str
    natural_key: tuple[str, ...]  # fields of the entity set that identify one record
    order_key: tuple[str, ...]  # the table's primary key: a stable order for paging lookups
    by_id: tuple[tuple[str, str], ...]  # (GetByID parameter, field of a found row)
    cursor: str = "SysRevID"
    tiebreak: tuple[str, ...] = ("SysRevID",)  # keyset tie-breakers after the cursor
    cursors: tuple[str, ...] = ("SysRevID",)  # cursor fields the table has (Vendor has no ChangeDate)
    children: tuple[ChildSet, ...] = ()
    csv_columns: tuple[Column, ...] = ()
    fixed_columns: tuple[Column, ...] = ()
    x12_select: tuple[str, ...] = ()  # what an X12 writer reads from the parent set
    lookups: dict[str, tuple[str, str]] = field(default_factory=dict)  # display field -> (entity, its field)
    fields: frozenset[str] = frozenset()
    recipe_module: str | None = None  # kinetic/recipes/<module>.py; None: a lookup-only entity
    grouped: bool = False  # posts into a group (APInvGrp, APChkGrp, CashGrp): inbound flows name constants.GroupID
    label: str = ""  # how messages name one record

    def recipe(self) -> Recipe:
        """The entity's create-or-update recipe (imported on first use)."""
        if self.recipe_module is None:
            raise ConfigError(f"entity {self.name} is read-only in ml-connector (no recipe posts it)")
        module = importlib.import_module(f"{__package__}.recipes.{self.recipe_module}")
        recipe: Recipe = module.RECIPE
        return recipe

    def recipe_methods(self) -> dict[str, tuple[str, ...]]:
        """The methods the recipe calls, with every parameter it sends (empty for lookup-only entities)."""
        if self.recipe_module is None:
            return {}
        module = importlib.import_module(f"{__package__}.recipes.{self.recipe_module}")
        methods: dict[str, tuple[str, ...]] = module.METHODS
        return methods

    def child(self, name: str) -> ChildSet:
        """One of the entity's child sets by name."""
        for c in self.children:
            if c.name == name:
                return c
        raise ConfigError(f"entity {self.name} has no child set {name}")


VENDOR_FIELDS = frozenset({
    *_COMMON, "VendorNum", "VendorID", "Name", "Address1", "Address2", "Address3", "City", "State", "ZIP",
    "Country", "CountryNum", "TermsCode", "PhoneNum", "FaxNum", "EMailAddress", "CurrencyCode", "GroupCode",
    "TaxPayerID", "Inactive", "PayHold", "Approved", "DefaultFOB", "PurPoint", "VendURL", "Comment",
    "TaxRegionCode", "PMUID", "BankAcctNumber", "BankName", "CreditLimit_c",
})  # fmt: skip
APINVHED_FIELDS = frozenset({
    *_COMMON, *_CHANGED, "VendorNum", "InvoiceNum", "VendorNumVendorID", "VendorNumName", "DebitMemo",
    "InvoiceDate", "DueDate", "ApplyDate", "TermsCode", "GroupID", "Posted", "OpenPayable", "InvoiceHeld",
    "Description", "CurrencyCode", "InvoiceAmt", "DocInvoiceAmt", "InvoiceVendorAmt", "DocInvoiceVendorAmt",
    "InvoiceBal", "DocInvoiceBal", "UnpostedBal", "TaxAmt", "FiscalYear", "FiscalPeriod", "EntryPerson",
    "REFPONum",
})  # fmt: skip
CHECKHED_FIELDS = frozenset({
    *_COMMON, *_CHANGED, "GroupID", "HeadNum", "CheckNum", "CheckDate", "VendorNum", "VendorNumVendorID",
    "VendorNumName", "Name", "BankAcctID", "PMUID", "CurrencyCode", "CheckAmt", "DocCheckAmt", "PaymentTotal",
    "Posted", "Voided", "VoidDate", "ManualPrint", "CheckSrc", "ClearedCheck",
})  # fmt: skip
CASHHEAD_FIELDS = frozenset({
    *_COMMON, *_CHANGED, "GroupID", "HeadNum", "TranType", "CustNum", "CustID", "CheckRef", "TranDate",
    "TranAmt", "DocTranAmt", "UnAppliedAmt", "AppliedAmt", "CurrencyCode", "BankAcctID", "PMUID", "Reference",
    "Posted",
})  # fmt: skip
INVCHEAD_FIELDS = frozenset({*_COMMON, "InvoiceNum", "CustNum", "CustomerCustID", "InvoiceAmt", "InvoiceBal",
                             "InvoiceDate", "DueDate", "Posted", "OpenInvoice"})  # fmt: skip

ENTITIES: dict[str, Entity] = {
    "vendors": Entity(
        name="vendors",
        service="Erp.BO.VendorSvc",
        entity_set="Vendors",
        table="Vendor",
        natural_key=("VendorID",),
        order_key=("VendorNum",),
        by_id=(("vendorNum", "VendorNum"),),
        # Vendor has no ChangeDate: SysRevID ("incremented upon each write") is the only cursor.
        cursors=("SysRevID",),
        csv_columns=(
            _c("VendorID", required=True), _c("Name"), _c("Address1"), _c("City"), _c("State"), _c("ZIP"),
            _c("Country"), _c("TermsCode"), _c("PhoneNum"), _c("EMailAddress"), _c("CurrencyCode"),
        ),
        fixed_columns=(
            _fw("VendorID", 1, 8, required=True), _fw("Name", 9, 50), _fw("City", 59, 30), _fw("State", 89, 2),
            _fw("ZIP", 91, 10), _fw("TermsCode", 101, 4),
        ),
        fields=VENDOR_FIELDS,
        recipe_module="vendors",
        label="vendor",
    ),
    "ap-invoices": Entity(
        name="ap-invoices",
        service="Erp.BO.APInvoiceSvc",
        entity_set="APInvoices",
        table="APInvHed",
        natural_key=("VendorNum", "InvoiceNum"),
        order_key=("VendorNum", "InvoiceNum"),
        by_id=(("vendorNum", "VendorNum"), ("invoiceNum", "InvoiceNum")),
        cursors=("SysRevID", "ChangeDate"),
        children=(ChildSet("APInvDtls", "APInvDtl", ("VendorNum", "InvoiceNum", "InvoiceLine")),),
        csv_columns=(
            _c("VendorNumVendorID", "VendorID", required=True), _c("InvoiceNum", required=True),
            _c("InvoiceDate", **DAY), _c("DueDate", **DAY), _c("InvoiceAmt", **MONEY), _c("InvoiceBal", **MONEY),
            _c("CurrencyCode"), _c("Description"),
        ),
        fixed_columns=(
            _fw("VendorNumVendorID", 1, 8, required=True), _fw("InvoiceNum", 9, 20, required=True),
            _fw("InvoiceDate", 29, 8, type="date", format="%Y%m%d"),
            _fw("InvoiceAmt", 37, 12, type="decimal", align="right", pad="0", implied_decimals=2),
        ),
        lookups={"VendorNumVendorID": ("vendors", "VendorID")},
        fields=APINVHED_FIELDS,
        recipe_module="ap_invoices",
        grouped=True,
        label="AP invoice",
    ),
    "ap-payments": Entity(
        name="ap-payments",
        service="Erp.BO.PaymentEntrySvc",
        entity_set="PaymentEntries",
        table="CheckHed",
        natural_key=("VendorNum", "CheckNum"),
        order_key=("HeadNum",),
        by_id=(("headNum", "HeadNum"),),
        cursors=("SysRevID", "ChangeDate"),
        # APTranNo is 0 for every invoice payment (a sequence only for misc/adjustment rows), so a
        # keyset over APTran needs the whole key; the flows read lines through the parent instead.
        children=(ChildSet("APTrans", "APTran", ("HeadNum", "APTranNo", "InvoiceNum", "Voided")),),
        csv_columns=(
            _c("HeadNum", type="int"), _c("CheckNum", type="int"), _c("VendorNumVendorID", "VendorID"),
            _c("CheckDate", **DAY), _c("CheckAmt", **MONEY), _c("CurrencyCode"),
        ),
        fixed_columns=(
            _fw("CheckNum", 1, 10, type="int", align="right", pad="0"), _fw("VendorNumVendorID", 11, 8),
            _fw("CheckDate", 19, 8, type="date", format="%Y%m%d"),
            _fw("CheckAmt", 27, 12, type="decimal", align="right", pad="0", implied_decimals=2),
        ),
        x12_select=("HeadNum", "CheckNum", "CheckDate", "CheckAmt", "DocCheckAmt", "VendorNum", "CurrencyCode", "Name"),
        lookups={"VendorNumVendorID": ("vendors", "VendorID")},
        fields=CHECKHED_FIELDS,
        recipe_module="ap_payments",
        grouped=True,
        label="AP payment",
    ),
    "cash-receipts": Entity(
        name="cash-receipts",
        service="Erp.BO.CashRecSvc",
        entity_set="CashRecs",
        table="CashHead",
        natural_key=("GroupID", "CustNum", "CheckRef"),
        order_key=("GroupID", "HeadNum"),
        by_id=(("groupID", "GroupID"), ("headNum", "HeadNum")),
        cursors=("SysRevID", "ChangeDate"),
        children=(ChildSet("CashDtls", "CashDtl", ("GroupID", "HeadNum", "InvoiceNum", "InvoiceRef")),),
        csv_columns=(
            _c("GroupID"), _c("HeadNum", type="int"), _c("CheckRef"), _c("CustID"), _c("TranDate", **DAY),
            _c("TranAmt", **MONEY), _c("CurrencyCode"),
        ),
        fixed_columns=(
            _fw("CheckRef", 1, 30), _fw("TranDate", 31, 8, type="date", format="%Y%m%d"),
            _fw("TranAmt", 39, 12, type="decimal", align="right", pad="0", implied_decimals=2),
        ),
        fields=CASHHEAD_FIELDS,
        recipe_module="cash_receipts",
        grouped=True,
        label="cash receipt",
    ),
    # AR invoices are only looked up (the invoices a cash receipt applies to).
    "ar-invoices": Entity(
        name="ar-invoices",
        service="Erp.BO.ARInvoiceSvc",
        entity_set="ARInvoices",
        table="InvcHead",
        natural_key=("InvoiceNum",),
        order_key=("InvoiceNum",),
        by_id=(("invoiceNum", "InvoiceNum"),),
        fields=INVCHEAD_FIELDS,
        label="AR invoice",
    ),
}  # fmt: skip


def flow_entities() -> tuple[str, ...]:
    """Entities a flow may name (those with a recipe; lookup-only entities are not)."""
    return tuple(name for name, e in ENTITIES.items() if e.recipe_module is not None)


def entity(name: str) -> Entity:
    """The registry record for ``name``; a clear error for an unknown entity."""
    found = ENTITIES.get(name)
    if found is None:
        raise ConfigError(f"unknown Kinetic entity {name!r} (known: {', '.join(sorted(ENTITIES))})")
    return found


def known_fields(name: str) -> set[str]:
    """Fields the entity's entity set is known to have (a mapping naming others is suspect)."""
    return set(entity(name).fields)
