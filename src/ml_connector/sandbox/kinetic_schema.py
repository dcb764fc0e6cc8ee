"""The tables and services the Kinetic sandbox emulates, declared as data.

Field names and casing follow reference/epicor-kinetic-api.md section 3. Each table says its key
(after Company), which field a sequence assigns, and whether Epicor stamps ChangeDate/ChangedBy
on it (every table here but Vendor and the groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, Numeric, String, Table

metadata = MetaData()


def _money(name: str) -> Column[Any]:
    return Column(name, Numeric(18, 3), default=0)


def _common() -> list[Column[Any]]:
    return [Column("SysRevID", Integer, nullable=False, default=0), Column("SysRowID", String(36), nullable=False)]


def _changed() -> list[Column[Any]]:
    return [Column("ChangeDate", DateTime), Column("ChangedBy", String(50), default="")]


TABLES: dict[str, Table] = {}


def _table(name: str, *cols: Column[Any]) -> Table:
    t = Table(name, metadata, Column("Company", String(8), nullable=False), *cols)
    TABLES[name] = t
    return t


_table(
    "Vendor",
    Column("VendorNum", Integer, primary_key=True),
    Column("VendorID", String(8), nullable=False),
    Column("Name", String(50), default=""),
    Column("Address1", String(50), default=""),
    Column("City", String(50), default=""),
    Column("State", String(50), default=""),
    Column("ZIP", String(10), default=""),
    Column("Country", String(50), default=""),
    Column("TermsCode", String(4), default=""),
    Column("PhoneNum", String(20), default=""),
    Column("EMailAddress", String(255), default=""),
    Column("CurrencyCode", String(4), default="USD"),
    Column("GroupCode", String(4), default=""),
    Column("TaxPayerID", String(20), default=""),
    Column("Inactive", Boolean, default=False),
    Column("PayHold", Boolean, default=False),
    Column("Approved", Boolean, default=True),
    Column("CreditLimit_c", Numeric(18, 2), default=0),
    *_common(),
)
_table(
    "APInvGrp",
    Column("GroupID", String(8), primary_key=True),
    Column("CreatedBy", String(50), default=""),
    Column("FiscalYear", Integer, default=0),
    Column("FiscalPeriod", Integer, default=0),
    Column("ApplyDate", DateTime),
    Column("ActiveUserID", String(50), default=""),
    *_common(),
)
_table(
    "APInvHed",
    Column("VendorNum", Integer, primary_key=True),
    Column("InvoiceNum", String(50), primary_key=True),
    Column("GroupID", String(8), default=""),
    Column("DebitMemo", Boolean, default=False),
    Column("InvoiceDate", DateTime),
    Column("DueDate", DateTime),
    Column("ApplyDate", DateTime),
    Column("TermsCode", String(4), default=""),
    Column("Description", String(255), default=""),
    Column("CurrencyCode", String(4), default="USD"),
    _money("InvoiceAmt"),
    _money("DocInvoiceAmt"),
    _money("InvoiceVendorAmt"),
    _money("DocInvoiceVendorAmt"),
    _money("ScrDocInvoiceVendorAmt"),
    _money("InvoiceBal"),
    _money("TaxAmt"),
    Column("REFPONum", Integer, default=0),
    Column("Posted", Boolean, default=False),
    Column("OpenPayable", Boolean, default=False),
    Column("InvoiceHeld", Boolean, default=False),
    *_changed(),
    *_common(),
)
_table(
    "APInvDtl",
    Column("VendorNum", Integer, primary_key=True),
    Column("InvoiceNum", String(50), primary_key=True),
    Column("InvoiceLine", Integer, primary_key=True),
    Column("LineType", String(4), default="MISC"),
    Column("PartNum", String(50), default=""),
    Column("Description", String(255), default=""),
    Column("VendorQty", Numeric(18, 3), default=0),
    _money("UnitCost"),
    _money("ExtCost"),
    *_changed(),
    *_common(),
)
_table(
    "APChkGrp",
    Column("GroupID", String(8), primary_key=True),
    Column("BankAcctID", String(10), default=""),
    Column("CheckDate", DateTime),
    Column("PMUID", Integer, default=0),
    Column("CurrencyCode", String(4), default="USD"),
    *_common(),
)
_table(
    "CheckHed",
    Column("HeadNum", Integer, primary_key=True),
    Column("GroupID", String(8), default=""),
    Column("CheckNum", Integer, default=0),
    Column("CheckDate", DateTime),
    Column("VendorNum", Integer, default=0),
    Column("Name", String(50), default=""),
    Column("BankAcctID", String(10), default=""),
    Column("CurrencyCode", String(4), default="USD"),
    _money("CheckAmt"),
    _money("DocCheckAmt"),
    Column("Posted", Boolean, default=False),
    Column("Voided", Boolean, default=False),
    Column("CheckSrc", Integer, default=1),
    # Kinetic keeps BankAcctID, CheckNum and CheckDate only on manual checks (schema field text).
    Column("ManualPrint", Boolean, default=False),
    *_changed(),
    *_common(),
)
_table(
    "APTran",
    Column("HeadNum", Integer, primary_key=True),
    Column("APTranNo", Integer, primary_key=True),
    Column("InvoiceNum", String(50), primary_key=True, default=""),
    Column("Voided", Boolean, primary_key=True, default=False),
    Column("VendorNum", Integer, default=0),
    Column("TranType", String(4), default="Pay"),
    Column("TranDate", DateTime),
    _money("TranAmt"),
    _money("DocTranAmt"),
    _money("DiscAmt"),
    Column("CheckNum", Integer, default=0),
    Column("Posted", Boolean, default=False),
    *_changed(),
    *_common(),
)
_table(
    "CashGrp",
    Column("GroupID", String(8), primary_key=True),
    Column("TranDate", DateTime),
    Column("BankAcctID", String(10), default=""),
    *_common(),
)
_table(
    "CashHead",
    Column("GroupID", String(8), primary_key=True),
    Column("HeadNum", Integer, primary_key=True),
    Column("TranType", String(8), default="PayInv"),
    Column("CustNum", Integer, default=0),
    Column("CustID", String(10), default=""),
    Column("CheckRef", String(30), default=""),
    Column("TranDate", DateTime),
    _money("TranAmt"),
    _money("DocTranAmt"),
    _money("UnAppliedAmt"),
    _money("AppliedAmt"),
    Column("CurrencyCode", String(4), default="USD"),
    Column("BankAcctID", String(10), default=""),
    Column("Reference", String(50), default=""),
    Column("Posted", Boolean, default=False),
    *_changed(),
    *_common(),
)
_table(
    "CashDtl",
    Column("GroupID", String(8), primary_key=True),
    Column("HeadNum", Integer, primary_key=True),
    Column("InvoiceNum", Integer, primary_key=True),
    Column("InvoiceRef", Integer, primary_key=True, default=0),
    Column("CustNum", Integer, default=0),
    _money("InvoiceBal"),
    _money("TranAmt"),
    _money("DocTranAmt"),
    *_changed(),
    *_common(),
)
# Customers that cash receipts name (seeded; looked up by GetCustomerInfo).
_table(
    "Customer",
    Column("CustNum", Integer, primary_key=True),
    Column("CustID", String(10), nullable=False),
    Column("Name", String(50), default=""),
    Column("CurrencyCode", String(4), default="USD"),
    *_common(),
)
# AR invoices that cash receipts apply to (seeded; read-only in the sandbox).
_table(
    "InvcHead",
    Column("InvoiceNum", Integer, primary_key=True),
    Column("CustNum", Integer, default=0),
    _money("InvoiceAmt"),
    _money("InvoiceBal"),
    *_common(),
)


@dataclass(frozen=True)
class TableSpec:
    keys: tuple[str, ...]  # after Company
    sequence: str | None = None  # assigned on add: max + 1 (scoped to the other keys)
    change_date: bool = False
    parent: str | None = None  # the table whose key prefix it shares (children of a tableset)


SPECS: dict[str, TableSpec] = {
    "Vendor": TableSpec(("VendorNum",), sequence="VendorNum"),
    "APInvGrp": TableSpec(("GroupID",)),
    "APInvHed": TableSpec(("VendorNum", "InvoiceNum"), change_date=True),
    "APInvDtl": TableSpec(
        ("VendorNum", "InvoiceNum", "InvoiceLine"), sequence="InvoiceLine", change_date=True, parent="APInvHed"
    ),
    "APChkGrp": TableSpec(("GroupID",)),
    "CheckHed": TableSpec(("HeadNum",), sequence="HeadNum", change_date=True),
    # Key per the schema: (Company, HeadNum, APTranNo, InvoiceNum, Voided). APTranNo is 0 on
    # invoice payment lines; only rows created without one (misc rows) get a sequence.
    "APTran": TableSpec(
        ("HeadNum", "APTranNo", "InvoiceNum", "Voided"), sequence="APTranNo", change_date=True, parent="CheckHed"
    ),
    "CashGrp": TableSpec(("GroupID",)),
    "CashHead": TableSpec(("GroupID", "HeadNum"), sequence="HeadNum", change_date=True),
    "CashDtl": TableSpec(("GroupID", "HeadNum", "InvoiceNum", "InvoiceRef"), change_date=True, parent="CashHead"),
    "InvcHead": TableSpec(("InvoiceNum",)),
    "Customer": TableSpec(("CustNum",), sequence="CustNum"),
}


@dataclass(frozen=True)
class GetNew:
    """A ``GetNew…`` method: which table gets a new row, and which parameters fill which fields."""

    table: str
    params: dict[str, str] = field(default_factory=dict)  # method parameter -> field
    saves: bool = False  # CreateNewCheckHed saves the header at once (reference: probable)


@dataclass(frozen=True)
class ServiceSpec:
    tables: tuple[str, ...]  # the tableset: primary first, then children
    entity_sets: dict[str, str]  # OData set -> table
    get_by_id: dict[str, str]  # GetByID parameter -> key field of the primary table
    get_new: dict[str, GetNew]


SERVICES: dict[str, ServiceSpec] = {
    "Erp.BO.VendorSvc": ServiceSpec(("Vendor",), {"Vendors": "Vendor"}, {"vendorNum": "VendorNum"},
                                    {"GetNewVendor": GetNew("Vendor")}),
    "Erp.BO.APInvGrpSvc": ServiceSpec(("APInvGrp",), {"APInvGrps": "APInvGrp"}, {"groupID": "GroupID"},
                                      {"GetNewAPInvGrp": GetNew("APInvGrp"), "GetNewAPInvGrpNoLock": GetNew("APInvGrp")}),
    "Erp.BO.APInvoiceSvc": ServiceSpec(
        ("APInvHed", "APInvDtl"), {"APInvoices": "APInvHed", "APInvDtls": "APInvDtl"},
        {"vendorNum": "VendorNum", "invoiceNum": "InvoiceNum"},
        {"GetNewAPInvHedInvoice": GetNew("APInvHed", {"cGroupID": "GroupID"}),
         "GetNewAPInvHed": GetNew("APInvHed", {"vendorNum": "VendorNum"}),
         "GetNewAPInvDtlMiscellaneous": GetNew("APInvDtl", {"iVendorNum": "VendorNum", "cInvoiceNum": "InvoiceNum"}),
         "GetNewAPInvDtl": GetNew("APInvDtl", {"vendorNum": "VendorNum", "invoiceNum": "InvoiceNum"})},
    ),
    "Erp.BO.APChkGrpSvc": ServiceSpec(("APChkGrp",), {"APChkGrps": "APChkGrp"}, {"groupID": "GroupID"},
                                      {"GetNewAPChkGrp": GetNew("APChkGrp")}),
    "Erp.BO.PaymentEntrySvc": ServiceSpec(
        ("CheckHed", "APTran"), {"PaymentEntries": "CheckHed", "APTrans": "APTran"}, {"headNum": "HeadNum"},
        {"GetNewCheckHed": GetNew("CheckHed"),
         "CreateNewCheckHed": GetNew("CheckHed", {"pcGroupID": "GroupID"}, saves=True),
         "GetNewAPTran": GetNew("APTran", {"headNum": "HeadNum", "apTranNo": "APTranNo", "invoiceNum": "InvoiceNum"})},
    ),
    "Erp.BO.CashGrpSvc": ServiceSpec(("CashGrp",), {"CashGrps": "CashGrp"}, {"groupID": "GroupID"},
                                     {"GetNewCashGrp": GetNew("CashGrp")}),
    "Erp.BO.CashRecSvc": ServiceSpec(
        ("CashHead", "CashDtl"), {"CashRecs": "CashHead", "CashDtls": "CashDtl"},
        {"groupID": "GroupID", "headNum": "HeadNum"},
        {"GetNewCashHead": GetNew("CashHead", {"groupID": "GroupID"}),
         "GetNewCashHeadType": GetNew("CashHead", {"groupID": "GroupID", "tranType": "TranType"}),
         "GetNewCashDtl": GetNew("CashDtl", {"groupID": "GroupID", "headNum": "HeadNum", "invoiceNum": "InvoiceNum"})},
    ),
    "Erp.BO.ARInvoiceSvc": ServiceSpec(("InvcHead",), {"ARInvoices": "InvcHead"}, {"invoiceNum": "InvoiceNum"}, {}),
}  # fmt: skip
