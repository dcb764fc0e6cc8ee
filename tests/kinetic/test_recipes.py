"""Entity recipes and the uncertain behaviours, against the sandbox over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector.errors import FatalError
from ml_connector.kinetic import KineticClient, KineticOptions

from .conftest import Running, no_sleep

AP = "Erp.BO.APInvoiceSvc"


def go(run: Running, body: Callable[[KineticClient], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        async with KineticClient(
            run.settings(), sleep=no_sleep, options=KineticOptions(backoff_s=0.01, **options)
        ) as k:
            return await body(k)

    return asyncio.run(main())


async def all_pages(
    k: KineticClient, service: str, entity_set: str, cursor: str, after: Any, size: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for page in k.extract(service, entity_set, cursor=cursor, after=after, page_size=size):
        out.extend(page)
    return out


@pytest.mark.parametrize(("style", "accept_v1"), [("iso", False), ("iso-z", False), ("v1", True)])
def test_change_date_cursor_in_each_literal_form(sandbox: Running, style: str, accept_v1: bool) -> None:
    sandbox.sandbox.options.accept_v1_datetime = accept_v1
    days = iter([date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)])
    for _ in range(3):
        day = next(days)
        sandbox.sandbox.today = lambda day=day: day
        sandbox.sandbox.generate_invoices(4)
    sandbox.sandbox.today = date.today
    rows = go(
        sandbox,
        lambda k: all_pages(k, AP, "APInvoices", "ChangeDate", "2026-11-20T00:00:00", 3),
        datetime_literal=style,
    )
    # Cursor > 2026-11-20: the 8 invoices stamped on the 21st and 22nd (seed rows are 2026-10-01).
    assert len(rows) == 8 and {r["ChangeDate"][:10] for r in rows} == {"2026-11-21", "2026-11-22"}


def test_v1_datetime_refused_unless_enabled(sandbox: Running) -> None:
    with pytest.raises(FatalError, match="v1 datetime"):
        go(
            sandbox,
            lambda k: all_pages(k, AP, "APInvoices", "ChangeDate", "2026-11-20T00:00:00", 5),
            datetime_literal="v1",
        )


@pytest.mark.parametrize("next_link", [True, False])
def test_server_page_cap_with_or_without_next_link(sandbox: Running, next_link: bool) -> None:
    sandbox.sandbox.generate_vendors(40)
    sandbox.sandbox.options.max_page = 7
    sandbox.sandbox.options.next_link = next_link
    rows = go(sandbox, lambda k: all_pages(k, "Erp.BO.VendorSvc", "Vendors", "SysRevID", None, 25))
    assert len(rows) == 52 and len({r["VendorNum"] for r in rows}) == 52  # nothing lost to the cap


def test_ap_invoice_upsert_survives_lost_responses(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body(k: KineticClient) -> list[bool]:
        created = []
        for i in range(20):
            fields = {"VendorNum": 2, "InvoiceNum": f"P-{i:03d}", "GroupID": "SEED01", "InvoiceDate": "2026-11-20T00:00:00",
                      "TermsCode": "N30", "InvoiceAmt": 100 + i, "InvoiceVendorAmt": 100 + i}  # fmt: skip
            created.append((await k.upsert("ap-invoices", fields))[1])
        # The same invoices again: all updates, none created.
        for i in range(20):
            created.append(
                (await k.upsert("ap-invoices", {"VendorNum": 2, "InvoiceNum": f"P-{i:03d}", "Description": "again"}))[1]
            )
        return created

    created = go(sandbox, body)
    assert created == [True] * 20 + [False] * 20
    assert sandbox.sandbox.lost_responses >= 5
    rows = go(sandbox, lambda k: k.query(AP, "APInvoices", filter="startswith(InvoiceNum,'P-')", top=500))
    assert len(rows) == 20 and {r["Description"] for r in rows} == {"again"}


def test_cash_receipt_upsert_and_idempotent_application(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body(k: KineticClient) -> Any:
        fields = {"GroupID": "CASH01", "CustNum": 2, "CheckRef": "TRN-4529952", "TranType": "PayInv",
                  "TranAmt": Decimal("150.00"), "DocTranAmt": Decimal("150.00")}  # fmt: skip
        receipt, created = await k.upsert("cash-receipts", fields)
        again, created_again = await k.upsert("cash-receipts", fields)
        for _ in range(3):  # replays of the same application never apply twice
            await k.apply_cash(receipt, 1005, Decimal("150.00"))
        full = (await k.call("Erp.BO.CashRecSvc", "GetByID", {"groupID": "CASH01", "headNum": receipt["HeadNum"]}))[
            "returnObj"
        ]
        ar = await k.query("Erp.BO.ARInvoiceSvc", "ARInvoices", filter="InvoiceNum eq 1005")
        heads = await k.query("Erp.BO.CashRecSvc", "CashRecs", filter="CheckRef eq 'TRN-4529952'")
        return created, created_again, receipt, again, full, ar[0], heads

    created, created_again, receipt, again, full, ar, heads = go(sandbox, body)
    assert created and not created_again and receipt["HeadNum"] == again["HeadNum"]
    assert len(heads) == 1 and len(full["CashDtl"]) == 1
    assert ar["InvoiceBal"] == pytest.approx(ar["InvoiceAmt"] - 150)


def test_ap_payment_recipe_survives_lost_responses_and_replays(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body(k: KineticClient) -> Any:
        results = []
        for n in range(8):
            results.append(await k.create_payment(group_id="CHK01", vendor_id="V0003", check_num=20000 + n,
                                                  check_date="2026-11-20T00:00:00", amount=Decimal("10.00"),
                                                  lines=[("INV-003-1", Decimal("5.00")), ("INV-003-2", Decimal("5.00"))]))  # fmt: skip
        replay = await k.create_payment(group_id="CHK01", vendor_id="V0003", check_num=20000, check_date="2026-11-20T00:00:00",
                                        amount=Decimal("10.00"), lines=[("INV-003-1", Decimal("5.00")), ("INV-003-2", Decimal("5.00"))])  # fmt: skip
        heads = await k.query("Erp.BO.PaymentEntrySvc", "PaymentEntries", filter="VendorNum eq 3", top=100)
        trans = await k.query("Erp.BO.PaymentEntrySvc", "APTrans", filter="VendorNum eq 3", top=100)
        invoices = await k.query(AP, "APInvoices", filter="VendorNum eq 3", top=10)
        return results, replay, heads, trans, invoices

    results, replay, heads, trans, invoices = go(sandbox, body)
    assert all(created for _, created in results) and replay == (results[0][0], False)
    assert sorted(h["CheckNum"] for h in heads) == [20000 + n for n in range(8)]  # no orphan or duplicate header
    assert len(trans) == 16  # two lines per payment, none doubled
    for inv in invoices:
        assert inv["InvoiceBal"] == pytest.approx(inv["InvoiceAmt"] - 40)
    assert sandbox.sandbox.lost_responses >= 3


def test_run_time_options_and_generators(sandbox: Running) -> None:
    import httpx

    sandbox.sandbox.generate_payments(5)
    with httpx.Client(base_url=sandbox.url) as http:
        assert http.post("/_sandbox/options", json={"token_lifetime_s": 5}).json()["token_lifetime_s"] == 5
        assert http.post("/_sandbox/options", json={"api_key": "x"}).status_code == 400
        assert "api_key" not in http.get("/_sandbox/options").json()
    rows = go(
        sandbox, lambda k: k.query("Erp.BO.PaymentEntrySvc", "APTrans", filter="startswith(InvoiceNum,'GEN')", top=50)
    )
    assert len(rows) == 5


def test_cut_connections_before_and_after_commit(sandbox: Running) -> None:
    sandbox.sandbox.faults.drop_rate = 0.2  # cut before anything happens (reads retried, writes settled)
    sandbox.sandbox.faults.lose_response_rate = 0.4
    sandbox.sandbox.faults.lose_response_by = "cut"  # the write commits, then the connection is cut

    async def body(k: KineticClient) -> list[bool]:
        return [
            (await k.upsert("vendors", {"VendorID": f"CUT{i:03d}", "Name": f"Cut {i}", "TermsCode": "N30"}))[1]
            for i in range(25)
        ]

    created = go(sandbox, body)
    assert created == [True] * 25
    assert sandbox.sandbox.dropped >= 3 and sandbox.sandbox.lost_responses >= 3  # both faults fired
    rows = go(sandbox, lambda k: k.query("Erp.BO.VendorSvc", "Vendors", filter="startswith(VendorID,'CUT')", top=100))
    assert sorted(r["VendorID"] for r in rows) == [f"CUT{i:03d}" for i in range(25)]  # each exactly once
