"""Entity recipes against the strict sandbox over real HTTP: the evidence's call sequences,
crash and lost-answer safety, posted records, refused query plans, scope denial."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector.errors import ConfigError, FatalError, PostedRecordError, RecordError, ScopeDeniedError
from ml_connector.formats.x12.remit820 import PaymentAdvice, RemittanceLine
from ml_connector.kinetic import KineticClient, KineticOptions
from ml_connector.kinetic.entities import ENTITIES
from ml_connector.kinetic.recipes import ap_payments, lookup, vendors
from ml_connector.kinetic.recipes.ap_payments import Payment, post_payment

from .conftest import Running, no_sleep

AP = "Erp.BO.APInvoiceSvc"
PAY = "Erp.BO.PaymentEntrySvc"
CASH = "Erp.BO.CashRecSvc"


def go(run: Running, body: Callable[[KineticClient], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        async with KineticClient(
            run.settings(), sleep=no_sleep, options=KineticOptions(backoff_s=0.01, **options)
        ) as k:
            return await body(k)

    return asyncio.run(main())


async def post(k: KineticClient, entity: str, payloads: list[dict[str, Any]], **constants: str) -> list[Any]:
    """The flow's path: the registry's recipe prepares the batch, then posts each record."""
    poster = await ENTITIES[entity].recipe().prepare(k, payloads, constants)
    return [await poster(p) for p in payloads]


def spy_methods(run: Running) -> list[tuple[str, dict[str, Any]]]:
    """Record every business-object method the sandbox serves from now on: (name, parameters)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = run.sandbox._method

    def spy(service: str, spec: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, params))
        return original(service, spec, name, params)

    run.sandbox._method = spy  # type: ignore[method-assign]
    return seen


def Line(invoice_num: str, paid: Decimal) -> RemittanceLine:
    """One RMR loop: an invoice and the amount paid on it."""
    return RemittanceLine(invoice_num, paid)


def Advice(
    trace_number: str, amount: Decimal, lines: list[RemittanceLine], payee_id: str | None = None,
    payment_date: date | None = date(2026, 11, 20),
) -> PaymentAdvice:  # fmt: skip
    """An 820 payment advice as the reader makes it, with what the recipes read filled in."""
    return PaymentAdvice(
        trace_number=trace_number, payment_date=payment_date, amount=amount, handling="I", method="CHK",
        credit_debit="C", currency=None, payer_name="PAYER", payer_id=None, payee_name=None, payee_id=payee_id,
        set_control="0001", lines=list(lines),
    )  # fmt: skip


async def all_pages(k: KineticClient, service: str, entity_set: str, cursor: str, after: Any,
                    size: int) -> list[dict[str, Any]]:  # fmt: skip
    out: list[dict[str, Any]] = []
    async for page in k.extract(service, entity_set, cursor=cursor, after=after, page_size=size):
        out.extend(page)
    return out


@pytest.mark.parametrize("form", ["zoned", "naive"])
def test_change_date_cursor_in_the_connections_literal_form(sandbox: Running, form: str) -> None:
    sandbox.sandbox.options.datetime_literal = form
    for day in (date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)):
        sandbox.sandbox.today = lambda day=day: day
        sandbox.sandbox.generate_invoices(4)
    sandbox.sandbox.today = date.today
    rows = go(sandbox, lambda k: all_pages(k, AP, "APInvoices", "ChangeDate", "2026-11-20T00:00:00", 3),
              datetime_literal=form)  # fmt: skip
    # Cursor > 2026-11-20: the 8 invoices stamped on the 21st and 22nd (seed rows are 2026-10-01).
    assert len(rows) == 8 and {r["ChangeDate"][:10] for r in rows} == {"2026-11-21", "2026-11-22"}


def test_the_other_literal_form_is_refused_clearly(sandbox: Running) -> None:
    sandbox.sandbox.options.datetime_literal = "zoned"
    with pytest.raises(FatalError, match=r"query was rejected.*DateTimeOffset"):
        go(sandbox, lambda k: all_pages(k, AP, "APInvoices", "ChangeDate", "2026-11-20T00:00:00", 5),
           datetime_literal="naive")  # fmt: skip


@pytest.mark.parametrize("next_link", [True, False])
def test_server_page_cap_with_or_without_next_link(sandbox: Running, next_link: bool) -> None:
    sandbox.sandbox.generate_vendors(40)
    sandbox.sandbox.options.row_cap = 7
    sandbox.sandbox.options.next_link = next_link
    rows = go(sandbox, lambda k: all_pages(k, "Erp.BO.VendorSvc", "Vendors", "SysRevID", None, 25))
    assert len(rows) == 52 and len({r["VendorNum"] for r in rows}) == 52  # nothing lost to the cap


def test_ap_invoice_calls_follow_the_evidence_and_never_write_invoice_amt(sandbox: Running) -> None:
    seen = spy_methods(sandbox)
    fields = {"VendorNumVendorID": "V0002", "InvoiceNum": "CTL-1", "InvoiceDate": "2026-11-20T00:00:00",
              "InvoiceAmt": Decimal("250.75"), "Description": "control amount",
              "lines": [{"Description": "freight", "UnitCost": Decimal("250.75"), "VendorQty": 1}]}  # fmt: skip
    (keys,) = go(sandbox, lambda k: post(k, "ap-invoices", [fields], GroupID="SEED01"))
    order = [n for n, _ in seen if n not in ("GetByID",)]
    assert order == ["GetNewAPInvHedInvoice", "ChangeVendorID", "ChangeInvoiceDateEx", "ChangeInvoiceVendorAmt",
                     "Update", "GetNewAPInvDtlMiscellaneous", "UpdateMaster"]  # fmt: skip
    update = next(p for n, p in seen if n == "Update")
    hed = update["ds"]["APInvHed"][-1]
    assert Decimal(str(hed["InvoiceVendorAmt"])) == Decimal("250.75")  # through its change method
    assert keys["created"] and keys["InvoiceNum"] == "CTL-1"
    master = next(p for n, p in seen if n == "UpdateMaster")
    assert {"cGroupID", "cTableName", "runChkCPay", "runChkBankRef", "runChkRevChrg", "suppressUserPrompts"} <= set(
        master
    )
    rows = go(sandbox, lambda k: k.query(AP, "APInvoices", filter="InvoiceNum eq 'CTL-1'", expand=["APInvDtls"]))
    assert len(rows) == 1 and len(rows[0]["APInvDtls"]) == 1


def test_ap_invoice_upsert_survives_lost_responses(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body(k: KineticClient) -> list[bool]:
        made = [{"VendorNumVendorID": "V0002", "InvoiceNum": f"P-{i:03d}", "InvoiceDate": "2026-11-20T00:00:00",
                 "TermsCode": "N30", "InvoiceAmt": 100 + i} for i in range(20)]  # fmt: skip
        first = await post(k, "ap-invoices", made, GroupID="SEED01")
        again = await post(k, "ap-invoices", [{"VendorNumVendorID": "V0002", "InvoiceNum": f"P-{i:03d}",
                                               "Description": "again"} for i in range(20)], GroupID="SEED01")  # fmt: skip
        return [r["created"] for r in first + again]

    created = go(sandbox, body)
    assert created == [True] * 20 + [False] * 20
    assert sandbox.sandbox.lost_responses >= 5
    rows = go(sandbox, lambda k: k.query_all(AP, "APInvoices", filter="startswith(InvoiceNum,'P-')",
                                             orderby="InvoiceNum asc"))  # fmt: skip
    assert len(rows) == 20 and {r["Description"] for r in rows} == {"again"}


def test_posted_invoice_is_a_record_error_never_retried(sandbox: Running) -> None:
    before = dict(sandbox.sandbox.calls)

    async def body(k: KineticClient) -> Any:
        return await post(k, "ap-invoices", [{"VendorNumVendorID": "V0001", "InvoiceNum": "INV-001-1",
                                               "Description": "late change"}], GroupID="SEED01")  # fmt: skip

    with pytest.raises(PostedRecordError, match="already posted in Kinetic"):
        go(sandbox, body)
    writes = {k: v - before.get(k, 0) for k, v in sandbox.sandbox.calls.items() if k.startswith("POST Update")}
    assert not any(writes.values())  # refused before anything was sent, so nothing to retry


def test_cash_receipt_sequence_and_idempotent_application(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5
    advice = Advice("TRN-4529952", Decimal("150.00"), [Line("1005", Decimal("100.00")), Line("1009", Decimal("50.00"))])

    async def body(k: KineticClient) -> Any:
        first = await post(k, "cash-receipts", [advice], GroupID="CASH01")
        again = [await post(k, "cash-receipts", [advice], GroupID="CASH01") for _ in range(2)]
        heads = await k.query(CASH, "CashRecs", filter="CheckRef eq 'TRN-4529952'", expand=["CashDtls"])
        ar = await k.query("Erp.BO.ARInvoiceSvc", "ARInvoices", filter="InvoiceNum eq 1005 or InvoiceNum eq 1009",
                           orderby="InvoiceNum asc")  # fmt: skip
        return first, again, heads, ar

    first, again, heads, ar = go(sandbox, body)
    assert first[0]["created"] and not any(a[0]["created"] for a in again)
    assert len(heads) == 1 and sorted(d["InvoiceNum"] for d in heads[0]["CashDtls"]) == [1005, 1009]
    assert heads[0]["CustNum"] == 2  # from GetCustomerInfo, by the first invoice's customer
    assert ar[0]["InvoiceBal"] == pytest.approx(ar[0]["InvoiceAmt"] - 100)
    assert ar[1]["InvoiceBal"] == pytest.approx(ar[1]["InvoiceAmt"] - 50)


def test_cash_receipt_for_an_unknown_invoice_is_a_record_error(sandbox: Running) -> None:
    advice = Advice("TRN-X", Decimal("1.00"), [Line("999999", Decimal("1.00"))])
    with pytest.raises(RecordError, match="999999 is not an AR invoice"):
        go(sandbox, lambda k: post(k, "cash-receipts", [advice], GroupID="CASH01"))


def _payment(check: int, *lines: str, amount: str = "10.00") -> dict[str, Any]:
    return Advice(str(check), Decimal(amount), [Line(i, Decimal("5.00")) for i in lines], "V0003")


def test_ap_payment_sequence_follows_the_evidence(sandbox: Running) -> None:
    seen = spy_methods(sandbox)
    go(sandbox, lambda k: post(k, "ap-payments", [_payment(30001, "INV-003-1")], GroupID="CHK01"))
    order = [n for n, _ in seen if n != "GetByID"]
    assert order == ["CreateNewCheckHed", "OnChangeVendor", "OnChangeManualPrint", "Update", "GetNewAPTran",
                     "OnChangeInvoiceNum", "OnChangeDocTranAmt", "Update"]  # fmt: skip
    new_tran = next(p for n, p in seen if n == "GetNewAPTran")
    assert new_tran["apTranNo"] == 0 and new_tran["invoiceNum"] == "INV-003-1" and new_tran["ds"]["CheckHed"]
    change = next(p for n, p in seen if n == "OnChangeInvoiceNum")
    assert change["pcChangeExchangeRateResponse"] == "Yes"
    header = next(p for n, p in seen if n == "Update")["ds"]["CheckHed"][0]
    assert header["ManualPrint"] is True and header["CheckNum"] == 30001


def test_ap_payment_recipe_survives_lost_responses_and_replays(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body(k: KineticClient) -> Any:
        results = await post(k, "ap-payments", [_payment(20000 + n, "INV-003-1", "INV-003-2") for n in range(8)],
                             GroupID="CHK01")  # fmt: skip
        replay = await post(k, "ap-payments", [_payment(20000, "INV-003-1", "INV-003-2")], GroupID="CHK01")
        heads = await k.query(PAY, "PaymentEntries", filter="VendorNum eq 3", expand=["APTrans"], top=100)
        invoices = await k.query(AP, "APInvoices", filter="VendorNum eq 3", top=10)
        return results, replay[0], heads, invoices

    results, replay, heads, invoices = go(sandbox, body)
    assert all(r["created"] for r in results) and replay == {**results[0], "created": False}
    assert sorted(h["CheckNum"] for h in heads) == [20000 + n for n in range(8)]  # no orphan or duplicate header
    assert sum(len(h["APTrans"]) for h in heads) == 16  # two lines per payment, none doubled
    assert {t["APTranNo"] for h in heads for t in h["APTrans"]} == {0}  # invoice payments carry APTranNo 0
    for inv in invoices:
        assert inv["InvoiceBal"] == pytest.approx(inv["InvoiceAmt"] - 40)
    assert sandbox.sandbox.lost_responses >= 3


def test_crash_between_header_and_lines_reuses_the_header(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        vendor = (await lookup(k, ENTITIES["vendors"], [{"VendorID": "V0003"}])).get(("V0003",))
        # A run died right after CreateNewCheckHed saved an empty header in the group...
        await k.call(PAY, "CreateNewCheckHed", {"pcGroupID": "CHK01", "ds": {}}, write=True)
        empty = await k.query(PAY, "PaymentEntries", filter="VendorNum eq 0 and CheckNum eq 0")
        # ...and another died after the header was saved, before its lines.
        half, _ = await post_payment(k, Payment("CHK01", "V0003", 777, None, Decimal("5")), vendor or {})
        head, created = await post_payment(
            k, Payment("CHK01", "V0003", 777, None, Decimal("5"), (("INV-003-1", Decimal("5")),)), vendor or {}
        )
        heads = await k.query(PAY, "PaymentEntries", filter="GroupID eq 'CHK01'", expand=["APTrans"])
        return empty, half, head, created, heads

    empty, half, head, created, heads = go(sandbox, body)
    assert len(empty) == 1 and half == empty[0]["HeadNum"]  # the empty header was taken, not a new one
    assert head == half and not created  # the rerun found the header by VendorNum + CheckNum
    assert [h["HeadNum"] for h in heads if h["CheckNum"] == 777] == [half] and len(heads) == 1
    assert [t["InvoiceNum"] for t in heads[0]["APTrans"]] == ["INV-003-1"]


def test_dropped_check_number_fails_the_record_and_leaves_no_header(sandbox: Running,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # An instance whose payment method forbids manual checks: Kinetic keeps no CheckNum.
    def no_manual(spec: Any, params: dict[str, Any]) -> dict[str, Any]:
        ds = params["ds"]
        for r in ds["CheckHed"]:
            r["ManualPrint"] = False
        return {"parameters": {"ds": ds}}

    monkeypatch.setattr(sandbox.sandbox, "_on_change_manual_print", no_manual)

    async def body(k: KineticClient) -> Any:
        poster = await ENTITIES["ap-payments"].recipe().prepare(k, [_payment(4242, "INV-003-1")], {"GroupID": "CHK01"})
        outcomes = []
        for _ in range(2):  # the record fails the same way twice: no header is left to duplicate
            try:
                await poster(_payment(4242, "INV-003-1"))
            except RecordError as exc:
                outcomes.append(str(exc))
        return outcomes, await k.query(PAY, "PaymentEntries", filter="GroupID eq 'CHK01'")

    outcomes, heads = go(sandbox, body)
    assert len(outcomes) == 2 and all("did not keep CheckNum 4242" in o and "deleted" in o for o in outcomes)
    assert heads == []


def test_refused_query_plan_is_a_configuration_error_not_six_retries(sandbox: Running) -> None:
    before = sandbox.sandbox.calls.get("GET APInvoices", 0)
    with pytest.raises(ConfigError, match=r"Erp\.BO\.APInvoiceSvc.*VendorNumVendorID eq 'V0001'.*refused query plan"):
        go(sandbox, lambda k: k.query(AP, "APInvoices", filter="VendorNumVendorID eq 'V0001'"))
    assert sandbox.sandbox.calls["GET APInvoices"] - before == 2


def test_scope_denial_names_the_service_and_fails_only_its_calls(sandbox: Running) -> None:
    sandbox.sandbox.options.denied_services = [CASH]

    async def body(k: KineticClient) -> Any:
        ok = await k.count("Erp.BO.VendorSvc", "Vendors")
        with pytest.raises(ScopeDeniedError) as info:
            await k.query(CASH, "CashRecs")
        return ok, info.value

    for status in (403, 401):
        sandbox.sandbox.options.scope_denial_status = status
        count, error = go(sandbox, body)
        assert count == 12 and error.service == CASH
        assert "access scope" in str(error) and CASH in str(error) and "password" not in str(error)


def test_vendor_create_then_update_sends_the_whole_row(sandbox: Running) -> None:
    async def body(k: KineticClient) -> Any:
        first = await vendors.upsert(k, {"VendorID": "FULL1", "Name": "Full Row", "TermsCode": "N30"})
        second = await vendors.upsert(k, {"VendorID": "FULL1", "City": "Peoria"})
        return first, second

    (row1, created1), (row2, created2) = go(sandbox, body)
    assert created1 and not created2 and row2["City"] == "Peoria" and row2["Name"] == "Full Row"
    assert row2["VendorNum"] == row1["VendorNum"] and row2["SysRevID"] > row1["SysRevID"]


def test_registry_payment_input_validation() -> None:
    with pytest.raises(RecordError, match="TRN02 'ABC' is not a check number"):
        ap_payments.payment_from(Advice("ABC", Decimal("1"), [], "V1"), {"GroupID": "G"})
    with pytest.raises(RecordError, match="N104"):
        ap_payments.payment_from(Advice("1", Decimal("1"), []), {"GroupID": "G"})
    with pytest.raises(RecordError, match="GroupID is required"):
        ap_payments.payment_from(Advice("1", Decimal("1"), [], "V1"), {})
