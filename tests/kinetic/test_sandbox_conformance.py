"""Sandbox conformance: each service's recipe, over real HTTP, through the client's plain calls.

The call shapes are the strict sandbox's (every declared parameter, the evidence's method order).
One lenient option remains: the current client's ``call`` POSTs every method, GetByID/GetList/
GetRows included, so these tests run with ``post_reads="allow"`` until the client reads by GET.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from typing import Any

import pytest

from ml_connector.errors import FatalError, NotFoundError, RecordError
from ml_connector.kinetic import KineticClient
from ml_connector.kinetic.entities import ENTITIES
from ml_connector.kinetic.recipes import lookup
from ml_connector.sandbox.kinetic import SandboxOptions

from .conftest import Running, no_sleep, serve


async def find_vendors(k: KineticClient, ids: list[str]) -> dict[str, Any]:
    found = await lookup(k, ENTITIES["vendors"], [{"VendorID": i} for i in ids])
    return {key[0]: row for key, row in found.exact.items()}


AP = "Erp.BO.APInvoiceSvc"
PAY = "Erp.BO.PaymentEntrySvc"
CASH = "Erp.BO.CashRecSvc"


@pytest.fixture
def sandbox() -> Iterator[Running]:
    """Strict, but for reads by POST (see the module docstring)."""
    yield from serve(SandboxOptions(api_key="sandbox-key-Q7", users={"manager": "mgr-pass-Z4"}, post_reads="allow"))


def go(run: Running, body: Callable[[KineticClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with KineticClient(run.settings(), sleep=no_sleep) as k:
            return await body(k)

    return asyncio.run(main())


def test_ap_invoice_recipe_with_lines(sandbox: Running) -> None:
    sandbox.sandbox.today = lambda: date(2026, 11, 23)

    async def body(k: KineticClient) -> Any:
        grp = (await k.call("Erp.BO.APInvGrpSvc", "GetNewAPInvGrp", {"ds": {}}))["parameters"]["ds"]
        grp["APInvGrp"][0]["GroupID"] = "NOV23"
        await k.call("Erp.BO.APInvGrpSvc", "Update", {"ds": grp}, write=True)
        ds = (await k.call(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "NOV23"}))["parameters"]["ds"]
        assert ds["APInvHed"][0]["GroupID"] == "NOV23" and ds["APInvHed"][0]["RowMod"] == "A"
        ds = (await k.call(AP, "ChangeVendorID", {"ProposedVendorID": "V0002", "confirmCheck": True, "ds": ds}))[
            "parameters"
        ]["ds"]
        ds = (
            await k.call(AP, "ChangeInvoiceDateEx", {"ProposedInvoiceDate": "2026-11-20", "recalcAmts": True, "ds": ds})
        )["parameters"]["ds"]
        ds = (await k.call(AP, "ChangeInvoiceVendorAmt", {"ProposedInvoiceVendorAmt": 250.75, "ds": ds}))["parameters"][
            "ds"
        ]
        ds["APInvHed"][0]["InvoiceNum"] = "INV-9001"
        saved = (await k.call(AP, "Update", {"ds": ds}, write=True))["parameters"]["ds"]["APInvHed"][0]
        lines = (
            await k.call(
                AP,
                "GetNewAPInvDtlMiscellaneous",
                {"ds": {}, "iVendorNum": saved["VendorNum"], "cInvoiceNum": "INV-9001"},
            )
        )["parameters"]["ds"]
        lines["APInvDtl"][0].update(Description="Freight", ExtCost=250.75, UnitCost=250.75, VendorQty=1)
        master = {"ds": lines, "cGroupID": "NOV23", "cTableName": "APInvDtl", "runChkCPay": False,
                  "runChkBankRef": False, "runChkRevChrg": False, "suppressUserPrompts": True}  # fmt: skip
        await k.call(AP, "UpdateMaster", master, write=True)
        full = (await k.call(AP, "GetByID", {"vendorNum": saved["VendorNum"], "invoiceNum": "INV-9001"}))["returnObj"]
        changed = await k.query(AP, "APInvoices", filter="ChangeDate ge 2026-11-23T00:00:00Z", top=50)
        return saved, full, changed

    saved, full, changed = go(sandbox, body)
    # The control amount is entered; InvoiceAmt accumulates the lines (none yet when the header is saved).
    assert saved["VendorNumVendorID"] == "V0002" and saved["InvoiceVendorAmt"] == 250.75 and saved["InvoiceAmt"] == 0
    assert saved["DueDate"] == "2027-01-04T00:00:00"  # V0002 has terms N45: 2026-11-20 + 45 days
    assert saved["ChangeDate"] == "2026-11-23T00:00:00" and saved["ChangedBy"] == "manager"
    assert [d["InvoiceLine"] for d in full["APInvDtl"]] == [1] and full["APInvDtl"][0]["Description"] == "Freight"
    assert full["APInvHed"][0]["InvoiceAmt"] == 250.75 and full["APInvHed"][0]["InvoiceBal"] == 250.75
    assert [r["InvoiceNum"] for r in changed] == ["INV-9001"]


def test_payment_recipe_reduces_the_invoice_balance(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        ds = (await k.call(PAY, "CreateNewCheckHed", {"pcGroupID": "CHK01", "ds": {}}, write=True))["parameters"]["ds"]
        head = ds["CheckHed"][0]
        assert head["HeadNum"] > 0 and head["RowMod"] == ""  # CreateNewCheckHed saves the header
        head["RowMod"] = "U"
        ds = (await k.call(PAY, "OnChangeVendor", {"pcVendorID": "V0001", "ds": ds}))["parameters"]["ds"]
        ds["CheckHed"][0].update(ManualPrint=True, CheckNum=10023, CheckAmt=500, DocCheckAmt=500)
        ds = (await k.call(PAY, "Update", {"ds": ds}, write=True))["parameters"]["ds"]
        new_line = {"ds": ds, "headNum": head["HeadNum"], "apTranNo": 0, "invoiceNum": "INV-001-1"}
        tran = (await k.call(PAY, "GetNewAPTran", new_line))["parameters"]["ds"]
        change = {"pcInvoiceNum": "INV-001-1", "pcChangeExchangeRateResponse": "Yes", "ds": tran}
        tran = (await k.call(PAY, "OnChangeInvoiceNum", change))["parameters"]["ds"]
        tran = (await k.call(PAY, "OnChangeDocTranAmt", {"pdDocTranAmt": 500, "ds": tran}))["parameters"]["ds"]
        await k.call(PAY, "Update", {"ds": tran}, write=True)
        inv = await k.query(AP, "APInvoices", filter="InvoiceNum eq 'INV-001-1'")
        full = (await k.call(PAY, "GetByID", {"headNum": head["HeadNum"]}))["returnObj"]
        bad = (
            await k.call(PAY, "GetNewAPTran", {**new_line, "ds": {"CheckHed": ds["CheckHed"]}, "invoiceNum": "NOPE"})
        )["parameters"]["ds"]
        with pytest.raises(RecordError, match="Invoice 'NOPE' is not valid"):
            await k.call(PAY, "Update", {"ds": bad}, write=True)
        return inv[0], full

    inv, full = go(sandbox, body)
    assert inv["InvoiceBal"] == pytest.approx(inv["InvoiceAmt"] - 500)
    assert full["CheckHed"][0]["VendorNum"] == 1 and full["CheckHed"][0]["CheckNum"] == 10023
    # An invoice payment line has APTranNo 0: the key is (HeadNum, APTranNo, InvoiceNum, Voided).
    assert [(t["APTranNo"], t["InvoiceNum"], t["TranAmt"]) for t in full["APTran"]] == [(0, "INV-001-1", 500.0)]


def test_cash_receipt_recipe(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        ds = (await k.call(CASH, "GetNewCashHeadType", {"ds": {}, "groupID": "CASH01", "tranType": "PayInv"}))[
            "parameters"
        ]["ds"]
        ds["CashHead"][0].update(CustNum=1, CheckRef="EFT-77", TranAmt=120, DocTranAmt=120)
        head = (await k.call(CASH, "UpdateMaster", {"ds": ds, "ipGroupID": "CASH01", "ipTableName": "CashHead",
                                                     "updGroupTotals": True, "ipIgnoreValidation": 0}, write=True))["parameters"]["ds"]["CashHead"][0]  # fmt: skip
        dtl = (
            await k.call(
                CASH, "GetNewCashDtl", {"ds": {}, "groupID": "CASH01", "headNum": head["HeadNum"], "invoiceNum": 1003}
            )
        )["parameters"]["ds"]
        dtl["CashDtl"][0].update(TranAmt=120, DocTranAmt=120)
        await k.call(CASH, "UpdateMaster", {"ds": dtl, "ipGroupID": "CASH01", "ipTableName": "CashDtl",
                                            "updGroupTotals": True, "ipIgnoreValidation": 0}, write=True)  # fmt: skip
        ar = await k.query("Erp.BO.ARInvoiceSvc", "ARInvoices", filter="InvoiceNum eq 1003")
        full = (await k.call(CASH, "GetByID", {"groupID": "CASH01", "headNum": head["HeadNum"]}))["returnObj"]
        return ar[0], full

    ar, full = go(sandbox, body)
    assert ar["InvoiceBal"] == pytest.approx(ar["InvoiceAmt"] - 120)
    assert full["CashHead"][0]["CheckRef"] == "EFT-77" and [d["InvoiceNum"] for d in full["CashDtl"]] == [1003]


def test_validation_failures_name_table_and_field(sandbox: Running) -> None:
    async def body(k: KineticClient) -> None:
        ds = (await k.call(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "NOGROUP"}))["parameters"]["ds"]
        ds["APInvHed"][0].update(InvoiceNum="X1", VendorNum=1)
        with pytest.raises(RecordError, match=r"Group 'NOGROUP' is not valid.*field GroupID"):
            await k.call(AP, "Update", {"ds": ds}, write=True)
        dup = (await k.call(AP, "GetNewAPInvHedInvoice", {"ds": {}, "cGroupID": "SEED01"}))["parameters"]["ds"]
        dup["APInvHed"][0].update(InvoiceNum="INV-001-1", VendorNum=1)
        with pytest.raises(RecordError, match="already exists"):
            await k.call(AP, "Update", {"ds": dup}, write=True)
        cash = (await k.call(CASH, "GetNewCashHeadType", {"ds": {}, "groupID": "NOPE", "tranType": "PayInv"}))[
            "parameters"
        ]["ds"]
        with pytest.raises(RecordError, match="Cash group 'NOPE' is not valid"):
            await k.call(CASH, "UpdateMaster", {"ds": cash, "ipGroupID": "NOPE", "ipTableName": "CashHead",
                                                "updGroupTotals": True, "ipIgnoreValidation": 0}, write=True)  # fmt: skip
        with pytest.raises(NotFoundError):
            await k.call(PAY, "GetByID", {"headNum": 424242})
        with pytest.raises(FatalError, match="query was rejected"):
            await k.query(AP, "APInvoices", filter="Nope eq 1")

    go(sandbox, body)


def test_get_rows_where_clause_and_paging(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        first = await k.call(
            "Erp.BO.VendorSvc",
            "GetRows",
            {"whereClauseVendor": "SysRevID > 3 BY SysRevID", "pageSize": 5, "absolutePage": 0},
        )
        second = await k.call(
            "Erp.BO.VendorSvc", "GetList", {"whereClause": "SysRevID > 3 BY SysRevID", "pageSize": 5, "absolutePage": 1}
        )
        named = await k.call(
            "Erp.BO.VendorSvc",
            "GetList",
            {"whereClause": "Name = 'O''Brien & Sons'", "pageSize": 10, "absolutePage": 0},
        )
        return first, second, named

    first, second, named = go(sandbox, body)
    assert len(first["returnObj"]["Vendor"]) == 5 and first["parameters"]["morePages"] is True
    assert [v["SysRevID"] for v in first["returnObj"]["Vendor"]] == [4, 5, 6, 7, 8]
    assert [v["SysRevID"] for v in second["returnObj"]["VendorList"]] == [9, 10, 11, 12] and second["parameters"][
        "morePages"
    ] is False
    assert [v["VendorID"] for v in named["returnObj"]["VendorList"]] == ["V0012"]


def test_update_ext_reports_errors_per_row_and_delete(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        rows = [{"VendorID": "EXT1", "Name": "Ext One", "TermsCode": "N30"},
                {"VendorID": "EXT2", "Name": "Bad Terms", "TermsCode": "ZZZ"}]  # fmt: skip
        result = await k.call(
            "Erp.BO.VendorSvc",
            "UpdateExt",
            {"ds": {"Vendor": rows}, "continueProcessingOnError": True, "rollbackParentOnChildError": False},
            write=True,
        )
        created = (await find_vendors(k, ["EXT1"]))["EXT1"]
        await k.call("Erp.BO.VendorSvc", "DeleteByID", {"vendorNum": created["VendorNum"]}, write=True)
        return result, await find_vendors(k, ["EXT1", "EXT2"])

    result, after = go(sandbox, body)
    errors = result["returnObj"]["BOUpdError"]
    assert result["parameters"]["errorsOccurred"] is True and len(errors) == 1
    assert errors[0]["TableName"] == "Vendor" and "Terms code 'ZZZ'" in errors[0]["ErrorText"]
    assert after == {}


def test_decimals_as_strings_option(sandbox: Running) -> None:
    sandbox.sandbox.options.decimals_as_strings = True
    rows = go(sandbox, lambda k: k.query(AP, "APInvoices", filter="InvoiceNum eq 'INV-001-1'", select=["InvoiceAmt"]))
    assert isinstance(rows[0]["InvoiceAmt"], str)
