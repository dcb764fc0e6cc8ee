"""The Kinetic client against the sandbox over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ml_connector.errors import (
    ConfigError,
    ConnectError,
    FatalError,
    NotFoundError,
    RecordError,
    TransientError,
    UnknownOutcomeError,
)
from ml_connector.kinetic import KineticClient, KineticOptions, map_error, odata
from ml_connector.kinetic.entities import ENTITIES
from ml_connector.kinetic.recipes import lookup, vendors
from ml_connector.secrets import Secret

from .conftest import Running, no_sleep

SVC = "Erp.BO.VendorSvc"


async def upsert_vendor(k: KineticClient, fields: dict[str, Any]) -> tuple[int, bool]:
    row, created = await vendors.upsert(k, fields)
    return int(row["VendorNum"]), created


async def find_vendors(k: KineticClient, ids: list[str]) -> dict[str, Any]:
    found = await lookup(k, ENTITIES["vendors"], [{"VendorID": i} for i in ids])
    return {key[0]: row for key, row in found.exact.items()}


def client(run: Running, audit: list[tuple[str, dict[str, Any]]] | None = None, sleeps: list[float] | None = None,
           **settings: Any) -> KineticClient:  # fmt: skip
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    def record(kind: str, **kw: Any) -> None:
        if audit is not None:
            audit.append((kind, kw))

    return KineticClient(run.settings(**settings), audit=record, sleep=sleep if sleeps is not None else no_sleep,
                         options=KineticOptions(attempts=6, backoff_s=0.01))  # fmt: skip


def test_query_count_select_and_audit(sandbox: Running) -> None:
    audit: list[tuple[str, dict[str, Any]]] = []

    async def body() -> tuple[list[dict[str, Any]], int]:
        async with client(sandbox, audit) as k:
            rows = await k.query(SVC, "Vendors", filter=odata.compare("TermsCode", "eq", "N30"),
                                 select=["VendorID", "Name"], orderby="VendorID asc", top=50)  # fmt: skip
            return rows, await k.count(SVC, "Vendors")

    rows, total = asyncio.run(body())
    assert total == 12 and len(rows) == 4 and set(rows[0]) == {"VendorID", "Name", "RowMod"}
    assert [r["VendorID"] for r in rows] == sorted(r["VendorID"] for r in rows)
    kinds = [(k, kw["subject"], kw["details"]["status"]) for k, kw in audit]
    assert kinds[0] == ("epicor.call", "GET /api/v2/odata/EPIC06/Erp.BO.VendorSvc/Vendors", 200)
    blob = repr(audit)
    assert "sandbox-key-Q7" not in blob and "mgr-pass-Z4" not in blob and "N30" not in blob  # no query values


@pytest.mark.parametrize(
    "value", ["O'Brien & Sons #1 +50%", "x' or 1 eq 1 or 'a' eq 'a", "a&$top=1", "100% 'quoted' \"both\""]
)
def test_injection_shaped_values_are_one_literal(sandbox: Running, value: str) -> None:
    async def body() -> list[dict[str, Any]]:
        async with client(sandbox) as k:
            await upsert_vendor(k, {"VendorID": "INJ1", "Name": value, "TermsCode": "N30"})
            return await k.query(SVC, "Vendors", filter=odata.compare("Name", "eq", value), top=100)

    rows = asyncio.run(body())
    assert [r["Name"] for r in rows] == [value]


def test_unknown_field_is_a_fatal_query_error(sandbox: Running) -> None:
    async def body() -> None:
        async with client(sandbox) as k:
            await k.query(SVC, "Vendors", filter="NoSuchField eq 1")

    with pytest.raises(FatalError, match="query was rejected"):
        asyncio.run(body())
    with pytest.raises(FatalError, match="not a valid OData field name"):
        odata.compare("Name eq 'x' or 1", "eq", 1)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"api_key": Secret("wrong-key")}, "authentication failed .*API key"),
        ({"password": Secret("wrong-password")}, "authentication failed .*username or password"),
        ({"company": "NOPE"}, "unknown company"),
    ],
)
@pytest.mark.parametrize("auth", ["basic", "token"])
def test_auth_failures_are_named(sandbox: Running, override: dict[str, Any], expected: str, auth: str) -> None:
    async def body() -> None:
        async with client(sandbox, auth=auth, **override) as k:
            await k.count(SVC, "Vendors")

    with pytest.raises(ConnectError, match=expected) as info:
        asyncio.run(body())
    assert "wrong-password" not in str(info.value) and "wrong-key" not in str(info.value)


def test_token_expiry_mid_extract_is_invisible(sandbox: Running) -> None:
    sandbox.sandbox.generate_vendors(40)

    async def body() -> tuple[list[dict[str, Any]], int]:
        got: list[dict[str, Any]] = []
        async with client(sandbox, auth="token") as k:
            async for page in k.extract(SVC, "Vendors", cursor="SysRevID", after=None, page_size=10):
                got.extend(page)
                sandbox.sandbox.expire_tokens()  # the server revokes every token between pages
            return got, k.token_refreshes

    rows, refreshes = asyncio.run(body())
    assert (
        len(rows) == 52 and refreshes == 7
    )  # first token + one per query after a revocation (6 pages + the empty one)


def test_token_refreshed_before_expiry_by_the_clock(sandbox: Running) -> None:
    now = [1000.0]
    k = KineticClient(sandbox.settings(auth="token", token_refresh_margin_s=300), clock=lambda: now[0], sleep=no_sleep)

    async def body() -> list[int]:
        seen = []
        async with k:
            await k.count(SVC, "Vendors")
            seen.append(k.token_refreshes)
            now[0] += 3600 - 300 - 1  # just before the refresh point
            await k.count(SVC, "Vendors")
            seen.append(k.token_refreshes)
            now[0] += 2  # inside the margin: refresh before the server would say 401
            await k.count(SVC, "Vendors")
            seen.append(k.token_refreshes)
        return seen

    assert asyncio.run(body()) == [1, 1, 2]


def test_429_and_503_honour_retry_after(sandbox: Running) -> None:
    sandbox.sandbox.faults.rate_429 = 0.3
    sandbox.sandbox.faults.rate_503 = 0.2
    sandbox.sandbox.faults.retry_after_s = 2
    sleeps: list[float] = []
    audit: list[tuple[str, dict[str, Any]]] = []

    async def body() -> int:
        total = 0
        async with client(sandbox, audit, sleeps) as k:
            for _ in range(20):
                total += await k.count(SVC, "Vendors")
        return total

    assert asyncio.run(body()) == 20 * 12
    statuses = [kw["details"]["status"] for _, kw in audit]
    assert statuses.count(429) + statuses.count(503) == len(sleeps) > 0
    assert all(s >= 2 for s in sleeps)


def test_retry_budget_exhausted(sandbox: Running) -> None:
    sandbox.sandbox.faults.rate_503 = 1.0

    async def body() -> None:
        async with client(sandbox) as k:
            await k.count(SVC, "Vendors")

    with pytest.raises(TransientError, match="HTTP 503"):
        asyncio.run(body())
    assert sandbox.sandbox.calls["GET $count"] == 6


def test_commit_then_lost_response_never_duplicates(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 0.5

    async def body() -> list[tuple[int, bool]]:
        async with client(sandbox) as k:
            return [
                await upsert_vendor(k, {"VendorID": f"L{i:03d}", "Name": f"Lost {i}", "TermsCode": "N45"})
                for i in range(30)
            ]

    results = asyncio.run(body())
    assert sandbox.sandbox.lost_responses >= 5  # the fault really fired
    assert all(created for _, created in results)

    async def check() -> dict[str, int]:
        async with client(sandbox) as k:
            rows = await k.query_all(SVC, "Vendors", filter="startswith(VendorID,'L')", orderby="VendorNum asc")
            counts: dict[str, int] = {}
            for r in rows:
                counts[r["VendorID"]] = counts.get(r["VendorID"], 0) + 1
            return counts

    counts = asyncio.run(check())
    assert len(counts) == 30 and set(counts.values()) == {1}  # every vendor once: no duplicate, none lost
    assert sorted(n for n, _ in results) == sorted(set(n for n, _ in results))


def test_lost_response_on_every_write_is_settled_by_lookup(sandbox: Running) -> None:
    sandbox.sandbox.faults.lose_response_rate = 1.0

    async def body() -> tuple[int, bool]:
        async with client(sandbox) as k:
            return await upsert_vendor(k, {"VendorID": "ALWAYS", "Name": "x", "TermsCode": "N30"})

    # The first Update commits (and loses its answer); the lookup settles it as created.
    assert asyncio.run(body())[1] is True

    async def update() -> tuple[int, bool]:
        async with client(sandbox) as k:
            return await upsert_vendor(k, {"VendorID": "ALWAYS", "Name": "changed", "TermsCode": "N30"})

    _num, created = asyncio.run(update())
    assert not created and sandbox.sandbox.lost_responses == 2


def test_paging_while_records_change_neither_skips_nor_repeats(sandbox: Running) -> None:
    sandbox.sandbox.generate_vendors(30)

    async def body() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with client(sandbox) as k:
            pages = 0
            async for page in k.extract(SVC, "Vendors", cursor="SysRevID", after=None, page_size=7,
                                        select=["VendorNum", "VendorID", "Name"]):  # fmt: skip
                seen.extend(page)
                pages += 1
                if pages == 2:  # a vendor already read changes, and a new one arrives
                    await upsert_vendor(k, {"VendorID": seen[0]["VendorID"], "Name": "Renamed mid-extract"})
                    await upsert_vendor(k, {"VendorID": "NEWMID", "Name": "Added mid-extract", "TermsCode": "N30"})
        return seen

    seen = asyncio.run(body())
    versions = [(r["VendorNum"], r["SysRevID"]) for r in seen]
    assert len(versions) == len(set(versions))  # no version read twice
    assert len({r["VendorNum"] for r in seen}) == 43  # 42 + the new one: nothing skipped
    latest = {r["VendorNum"]: r for r in seen}
    assert latest[seen[0]["VendorNum"]]["Name"] == "Renamed mid-extract"  # the change was picked up
    assert [r["SysRevID"] for r in seen] == sorted(r["SysRevID"] for r in seen)


def test_upsert_updates_existing_and_validation_errors_are_record_errors(sandbox: Running) -> None:
    async def body() -> Any:
        async with client(sandbox) as k:
            before = (await find_vendors(k, ["V0001"]))["V0001"]
            num, created = await upsert_vendor(k, {"VendorID": "V0001", "Name": "Northwind Renamed"})
            after = (await find_vendors(k, ["V0001"]))["V0001"]
            with pytest.raises(RecordError, match=r"Terms code .BAD. is not valid.*field TermsCode"):
                await upsert_vendor(k, {"VendorID": "NEW9", "Name": "x", "TermsCode": "BAD"})
            with pytest.raises(NotFoundError):
                await k.read(SVC, "GetByID", {"vendorNum": 99999})
            return before, after, num, created

    before, after, num, created = asyncio.run(body())
    assert not created and num == before["VendorNum"] and after["Name"] == "Northwind Renamed"
    assert after["SysRevID"] > before["SysRevID"]


def test_batched_lookup(sandbox: Running) -> None:
    sandbox.sandbox.generate_vendors(120)

    async def body() -> dict[str, Any]:
        async with client(sandbox) as k:
            ids = [f"G{i:07d}"[:8] for i in range(12, 132)] + ["MISSING"]
            return await find_vendors(k, ids)

    found = asyncio.run(body())
    assert len(found) == 120 and "MISSING" not in found
    # 121 ids in batches of 50; the batch with a missing id reads one more (empty) page to be sure
    # the server's cap did not hide it.
    assert sandbox.sandbox.calls["GET Vendors"] == 4


def test_lookups_page_under_a_server_cap_lower_than_the_batch(sandbox: Running) -> None:
    sandbox.sandbox.generate_vendors(60)
    sandbox.sandbox.options.row_cap = 7  # an admin-set limit well under the 50 keys per query

    async def body() -> dict[str, Any]:
        async with client(sandbox) as k:
            return await find_vendors(k, [f"G{i:07d}"[:8] for i in range(12, 72)])

    found = asyncio.run(body())
    assert len(found) == 60  # nothing lost to the cap: each batch paged until it had every key


@pytest.mark.parametrize(
    ("status", "body", "write", "kind"),
    [
        (
            400,
            {"ErrorType": "Ice.Common.BusinessObjectException", "ErrorMessage": "Vendor ID exists"},
            True,
            RecordError,
        ),
        (400, {"ErrorType": "Microsoft.OData.ODataException", "ErrorMessage": "bad field"}, False, FatalError),
        (
            400,
            {"ErrorType": "Ice.Common.LicenseAccessException", "ErrorMessage": "Maximum users exceeded"},
            False,
            TransientError,
        ),
        (401, {"ErrorMessage": "Invalid or missing API key"}, False, ConnectError),
        (403, {"ErrorMessage": "scope"}, False, ConnectError),
        (404, {"ErrorMessage": "Record not found"}, False, NotFoundError),
        (409, {"ErrorMessage": "duplicate"}, True, RecordError),
        (429, {}, False, TransientError),
        (500, {"ErrorMessage": "timeout"}, True, UnknownOutcomeError),
        (500, {"ErrorMessage": "timeout"}, False, TransientError),
        (502, "Bad gateway", True, TransientError),
        (503, {"error": {"code": "x", "message": "conversions pending"}}, False, TransientError),
    ],
)
def test_every_error_body_is_mapped(status: int, body: Any, write: bool, kind: type) -> None:
    err = map_error(status, body, what="POST /x", write=write)
    assert type(err) is kind
    assert f"HTTP {status}" in str(err)


def test_odata_literals() -> None:
    from datetime import date, datetime
    from decimal import Decimal

    assert odata.literal("O'Brien") == "'O''Brien'"
    assert odata.literal(None) == "null" and odata.literal(True) == "true" and odata.literal(5) == "5"
    assert odata.literal(Decimal("12.50")) == "12.50"
    assert odata.literal(datetime(2026, 1, 31, 8, 0)) == "2026-01-31T08:00:00Z"  # DateTimeOffset, zoned
    assert odata.literal(datetime(2026, 1, 31, 8, 0), "naive") == "2026-01-31T08:00:00"
    with pytest.raises(FatalError, match="not one of"):
        odata.literal(datetime(2026, 1, 31), "v1")
    assert odata.literal(date(2026, 1, 31)) == "2026-01-31"
    with pytest.raises(FatalError):
        odata.literal(1.5)
    assert odata.encode_query({"$filter": "Name eq 'a b&c+d#e%f'"}) == "$filter=Name%20eq%20%27a%20b%26c%2Bd%23e%25f%27"


def test_a_throttled_token_request_honours_retry_after(sandbox: Running) -> None:
    sandbox.sandbox.faults.rate_429 = 0.3  # the token endpoint is throttled like every other
    sandbox.sandbox.faults.retry_after_s = 3
    sleeps: list[float] = []
    audit: list[tuple[str, dict[str, Any]]] = []

    async def body() -> int:
        total = 0
        async with client(sandbox, audit, sleeps, auth="token") as k:
            for _ in range(6):
                sandbox.sandbox.expire_tokens()  # every call needs a fresh token
                total += await k.count(SVC, "Vendors")
        return total

    assert asyncio.run(body()) == 6 * 12
    token_calls = [kw["details"]["status"] for _, kw in audit if kw["subject"] == "POST /TokenResource.svc/"]
    assert 429 in token_calls  # the fault hit the token request itself
    assert sleeps and all(s >= 3 for s in sleeps)  # ...and its Retry-After was honoured, like any call's


def test_retry_policy_waits_at_least_retry_after() -> None:
    from ml_connector.errors import TransientError
    from ml_connector.retry import RetryPolicy

    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def body() -> int:
        tries = 0
        async for attempt in RetryPolicy(attempts=4, backoff_s=0.01, backoff_max_s=0.02).retrying(sleep):
            with attempt:
                tries += 1
                if tries < 3:
                    raise TransientError("busy", retry_after=7)
        return tries

    assert asyncio.run(body()) == 3 and waits == [7, 7]


def _scripted(replies: list[tuple[int, dict[str, Any]]]) -> tuple[Any, list[int]]:
    import itertools
    import uuid

    import httpx

    calls: list[int] = []
    script = itertools.chain(replies, itertools.repeat(replies[-1]))

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = next(script)
        calls.append(status)
        if status >= 400:
            body = {**body, "CorrelationId": str(uuid.uuid4())}  # differs on every reply, as Kinetic's does
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler), calls


def _mock_settings() -> Any:
    from ml_connector.connections import EpicorSettings

    return EpicorSettings(url="http://kinetic.invalid/inst", company="C1", username="u", api_key=Secret("k"),
                          password=Secret("p"))  # fmt: skip


def test_the_same_500_twice_is_a_refused_plan_whatever_its_correlation_id() -> None:
    plan = {"ErrorMessage": "An error occurred.", "ErrorType": "System.Exception"}
    transport, calls = _scripted([(500, plan)])

    async def body() -> None:
        async with KineticClient(_mock_settings(), transport=transport, sleep=no_sleep) as k:
            await k.query(SVC, "Vendors", filter="Name eq 'x'")

    with pytest.raises(ConfigError, match="refused the query twice"):
        asyncio.run(body())
    assert calls == [500, 500]


def test_different_500s_on_a_read_are_transient_and_retried() -> None:
    transport, calls = _scripted([(500, {"ErrorMessage": "deadlock victim"}), (500, {"ErrorMessage": "timeout"}),
                                  (200, {"value": [{"VendorID": "V1"}]})])  # fmt: skip

    async def body() -> list[dict[str, Any]]:
        async with KineticClient(_mock_settings(), transport=transport, sleep=no_sleep) as k:
            return await k.query(SVC, "Vendors")

    assert asyncio.run(body()) == [{"VendorID": "V1"}] and calls == [500, 500, 200]


def test_what_kinetic_says_in_a_methods_out_parameters_is_audited() -> None:
    """confirmMsg, cMessageText…: a non-empty message is an ``epicor.message`` event; an empty one is not."""
    asked = {"parameters": {"ds": {}, "confirmMsg": "Vendor V1 is on hold. Continue?", "cMessageText": " ",
                            "OutValue": "not a message"}}  # fmt: skip
    transport, _ = _scripted([(200, asked), (200, {"parameters": {"ds": {}, "confirmMsg": ""}})])
    events: list[tuple[str, dict[str, Any]]] = []

    async def body() -> None:
        async with KineticClient(_mock_settings(), transport=transport, sleep=no_sleep,
                                 audit=lambda kind, **kw: events.append((kind, kw))) as k:  # fmt: skip
            await k.call("Erp.BO.APInvoiceSvc", "ChangeVendorID", {"ProposedVendorID": "V1", "confirmCheck": True,
                                                                   "ds": {}})  # fmt: skip
            await k.call("Erp.BO.APInvoiceSvc", "ChangeVendorID", {"ProposedVendorID": "V2", "confirmCheck": True,
                                                                   "ds": {}})  # fmt: skip

    asyncio.run(body())
    said = [kw for kind, kw in events if kind == "epicor.message"]
    assert len(said) == 1 and said[0]["subject"] == "Erp.BO.APInvoiceSvc/ChangeVendorID"
    assert said[0]["details"] == {"messages": {"confirmMsg": "Vendor V1 is on hold. Continue?"}}
    assert said[0]["outcome"] == "warning"
