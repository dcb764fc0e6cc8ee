"""Conformance matrix: every recipe against the sandbox over real HTTP, in each option setting.

The strict default, then each ``SandboxOptions`` rule at its other value(s): the client must post
vendors, AP invoices with lines, AP payments with lines and cash receipts, and read changes by a
date cursor and payments with their lines, whichever way the instance behaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector.kinetic import KineticClient, KineticOptions
from ml_connector.sandbox.kinetic import SandboxOptions

from .conftest import Running, no_sleep, serve
from .test_recipes import Advice, Line, post

# (id, sandbox option overrides, client connection overrides)
SETTINGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("strict-default", {}, {}),
    ("strict_parameters-off", {"strict_parameters": False}, {}),
    ("posted_read_only-off", {"posted_read_only": False}, {}),
    ("row_cap-none", {"row_cap": 0}, {}),
    ("row_cap-7", {"row_cap": 7}, {}),
    ("row_cap-7-next_link", {"row_cap": 7, "next_link": True}, {}),
    ("child_set_filter-table", {"child_set_filter": "table"}, {}),
    ("query_plan_errors-off", {"query_plan_errors": False}, {}),
    ("datetime_literal-naive", {"datetime_literal": "naive"}, {"datetime_literal": "naive"}),
    ("datetime_literal-any", {"datetime_literal": "any"}, {}),
    ("duplicate_status-400", {"duplicate_status": 400}, {}),
    ("case_insensitive_keys", {"case_insensitive_keys": True}, {}),
    ("token_lifetime-short", {"token_lifetime_s": 2}, {"auth": "token"}),
    ("scope-denied-elsewhere-401", {"denied_services": ["Erp.BO.CashGrpSvc"], "scope_denial_status": 401}, {}),
    ("scope-denied-elsewhere-403", {"denied_services": ["Erp.BO.APChkGrpSvc"], "scope_denial_status": 403}, {}),
    ("post_reads-allow", {"post_reads": "allow"}, {}),
    ("full_row_updates-off", {"full_row_updates": False}, {}),
    ("entry_rules-off", {"entry_rules": False}, {}),
    ("decimals_as_strings", {"decimals_as_strings": True}, {}),
]


@pytest.fixture(params=SETTINGS, ids=[s[0] for s in SETTINGS])
def setting(request: pytest.FixtureRequest) -> Iterator[tuple[Running, dict[str, Any]]]:
    _, options, connection = request.param
    running = serve(SandboxOptions(api_key="matrix-key", users={"manager": "matrix-pass"}, **options))
    run = next(running)
    yield run, connection
    next(running, None)


async def scenario(k: KineticClient, run: Running) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Vendors: create, then update (the file's ID in another case where the instance ignores case).
    case_blind = run.sandbox.options.case_insensitive_keys
    out["vendor"] = await post(k, "vendors", [{"VendorID": "MX1", "Name": "Matrix Supply", "TermsCode": "N30"}])
    out["vendor2"] = await post(k, "vendors", [{"VendorID": "mx1" if case_blind else "MX1", "City": "Peoria"}])
    # AP invoice with two lines, then an update adding a third.
    lines = [{"Description": "parts", "UnitCost": Decimal("200.00"), "VendorQty": 1},
             {"Description": "freight", "UnitCost": Decimal("100.00"), "VendorQty": 1}]  # fmt: skip
    invoice = {"VendorNumVendorID": "MX1", "InvoiceNum": "MX-INV-1", "InvoiceDate": "2026-11-20T00:00:00",
               "InvoiceAmt": Decimal("300.00"), "Description": "matrix", "lines": lines}  # fmt: skip
    out["invoice"] = await post(k, "ap-invoices", [invoice], GroupID="SEED01")
    more = [*lines, {"Description": "handling", "UnitCost": Decimal("25.00"), "VendorQty": 1}]
    out["invoice2"] = await post(k, "ap-invoices", [{**invoice, "InvoiceAmt": Decimal("325.00"), "lines": more}],
                                  GroupID="SEED01")  # fmt: skip
    # AP payment with lines, posted twice (the replay creates nothing).
    pay = Advice("55001", Decimal("10.00"), [Line("INV-003-1", Decimal("6.00")),
                                                       Line("INV-003-2", Decimal("4.00"))], "V0003")  # fmt: skip
    out["payment"] = await post(k, "ap-payments", [pay, pay], GroupID="CHK01")
    # Cash receipt applied to two of customer 2's invoices, twice.
    cash = Advice("MX-TRN-1", Decimal("80.00"), [Line("1001", Decimal("30.00")),
                                                           Line("1005", Decimal("50.00"))])  # fmt: skip
    out["cash"] = await post(k, "cash-receipts", [cash, cash], GroupID="CASH01")
    # Reads as the outbound flows do them: a date cursor, and payments with their lines.
    changed: list[dict[str, Any]] = []
    async for page in k.extract("Erp.BO.APInvoiceSvc", "APInvoices", cursor="ChangeDate",
                                after="2026-10-02T00:00:00", page_size=50):  # fmt: skip
        changed.extend(page)
    out["changed"] = changed
    heads: list[dict[str, Any]] = []
    async for page in k.extract("Erp.BO.PaymentEntrySvc", "PaymentEntries", cursor="SysRevID", after=None,
                                page_size=50, expand=["APTrans"]):  # fmt: skip
        heads.extend(page)
    out["payments"] = heads
    out["invoice_row"] = await k.query("Erp.BO.APInvoiceSvc", "APInvoices", filter="InvoiceNum eq 'MX-INV-1'",
                                       expand=["APInvDtls"])  # fmt: skip
    out["receipts"] = await k.query("Erp.BO.CashRecSvc", "CashRecs", filter="CheckRef eq 'MX-TRN-1'",
                                    expand=["CashDtls"])  # fmt: skip
    return out


def test_every_recipe_in_each_option_setting(setting: tuple[Running, dict[str, Any]]) -> None:
    run, connection = setting
    run.sandbox.today = lambda: date(2026, 11, 21)

    async def main() -> dict[str, Any]:
        async with KineticClient(run.settings(**connection), sleep=no_sleep,
                                 options=KineticOptions(backoff_s=0.01)) as k:  # fmt: skip
            return await scenario(k, run)

    out = asyncio.run(main())
    assert out["vendor"][0]["created"] and not out["vendor2"][0]["created"]
    assert out["vendor2"][0]["VendorNum"] == out["vendor"][0]["VendorNum"]
    assert out["invoice"][0]["created"] and not out["invoice2"][0]["created"]
    (inv,) = out["invoice_row"]
    assert sorted(d["Description"] for d in inv["APInvDtls"]) == ["freight", "handling", "parts"]
    assert Decimal(str(inv["InvoiceVendorAmt"])) == Decimal("325")  # the control amount, via its change method
    first, replay = out["payment"]
    assert first["created"] and not replay["created"] and first["HeadNum"] == replay["HeadNum"]
    (head,) = [h for h in out["payments"] if h["CheckNum"] == 55001]
    assert sorted(t["InvoiceNum"] for t in head["APTrans"]) == ["INV-003-1", "INV-003-2"]
    assert out["cash"][0]["created"] and not out["cash"][1]["created"]
    (receipt,) = out["receipts"]
    assert sorted(d["InvoiceNum"] for d in receipt["CashDtls"]) == [1001, 1005]
    assert {r["InvoiceNum"] for r in out["changed"]} >= {"MX-INV-1"}  # ChangeDate 2026-11-21 > cursor
    assert all(r["ChangeDate"][:10] > "2026-10-02" for r in out["changed"])
