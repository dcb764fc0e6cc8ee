"""The Epicor Kinetic REST v2 client.

- ``x-api-key`` on every call; Basic auth, or a Bearer token from ``TokenResource.svc`` refreshed
  before it expires (and once on a 401).
- Transient failures (connect errors, timeouts on reads, 429, 502-504, licence exhaustion) retry
  with exponential backoff and full jitter, never sooner than ``Retry-After``, within a budget.
- A write that got no answer (timeout, 500, cut connection) raises ``UnknownOutcomeError``: the
  caller settles it by looking the record up before any retry (``upsert_vendor`` does).
- Epicor's status and error body map to the error tree in one place (``map_error``).
- Every call is audited: method, path (no query values), status, duration, correlation id.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..connections import EpicorSettings
from ..errors import (
    ConnectError,
    FatalError,
    MLConnectorError,
    NotFoundError,
    RecordError,
    TransientError,
    UnknownOutcomeError,
    UnreachableError,
)
from . import odata

Audit = Callable[..., None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class KineticOptions:
    """Retry budget and backoff, with explicit defaults."""

    attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    lookup_batch: int = 50
    datetime_literal: str = "iso"  # "iso" 2026-01-31T00:00:00, "iso-z" …Z, "v1" datetime'…'


def map_error(status: int, body: Any, *, what: str, write: bool) -> MLConnectorError:
    """Epicor's HTTP status and error body to the error tree (the only place this happens)."""
    info = body if isinstance(body, dict) else {}
    message = str(info.get("ErrorMessage") or (info.get("error") or {}).get("message") or body or "")[:500]
    etype = str(info.get("ErrorType") or "")
    fields = [d.get("Field") for d in info.get("ErrorDetails") or [] if isinstance(d, dict) and d.get("Field")]
    where = f"{what}: HTTP {status}: {message}" + (f" (field {fields[0]})" if fields else "")
    if status in (429, 502, 503, 504) or "LicenseAccessException" in etype or "Maximum users" in message:
        return TransientError(where)
    if status == 401:
        return ConnectError(f"{what}: authentication failed (HTTP 401: {message})")
    if status == 403:
        return ConnectError(f"{what}: not allowed by the API key's scope or security (HTTP 403: {message})")
    if status == 404:
        return NotFoundError(where)
    if status == 400 and "Company" in message and "not valid" in message:
        return ConnectError(f"{what}: unknown company (HTTP {status}: {message})")
    if status == 400 and "ODataException" in etype:
        return FatalError(f"{what}: the query was rejected (HTTP {status}: {message})")
    if status in (400, 409, 422):
        return RecordError(where)
    if status >= 500:
        return UnknownOutcomeError(where) if write else TransientError(where)
    return FatalError(where)


def describe_transport_error(exc: BaseException) -> str:
    """Name the precise cause of a transport failure: DNS, TLS, refused, timeout."""
    import socket
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "DNS: cannot resolve the host name"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or seen}"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused (nothing listening?)"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "DNS: cannot resolve the host name"
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS: {text[:200]}"
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused (nothing listening?)"
    return f"{type(exc).__name__}: {text[:200]}"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


class KineticClient:
    """Async client for one Kinetic instance and company: ``async with KineticClient(s) as k:``."""

    def __init__(
        self,
        settings: EpicorSettings,
        *,
        options: KineticOptions | None = None,
        audit: Audit | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        run_id: str | None = None,
        flow: str | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or KineticOptions()
        self._audit = audit
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            verify=settings.ca_bundle or settings.verify_tls,
            transport=transport,
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._refresh_at = 0.0
        self._run_id, self._flow = run_id, flow
        self.token_refreshes = 0

    async def __aenter__(self) -> KineticClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def odata_base(self) -> str:
        return f"/api/v2/odata/{self.settings.company}"

    # --- auth -----------------------------------------------------------------------------------

    def token_expires_in(self) -> float | None:
        return None if self._token is None else self._token_expires - self._clock()

    async def _ensure_token(self, force: bool = False) -> None:
        if not force and self._token and self._clock() < self._refresh_at:
            return
        started = time.monotonic()
        try:
            resp = await self._http.post(
                "/TokenResource.svc/",
                headers={
                    "username": self.settings.username,
                    "password": self.settings.password.reveal(),
                    "x-api-key": self.settings.api_key.reveal(),
                    "Accept": "application/json",
                },
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise UnreachableError(f"token request: {describe_transport_error(exc)}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"token request: {describe_transport_error(exc)}") from None
        self._record("POST", "/TokenResource.svc/", resp, started, attempt=1)
        if resp.status_code != 200:
            raise map_error(resp.status_code, _body(resp), what="token request", write=False)
        data = resp.json()
        lifetime = float(data.get("ExpiresIn") or 3600)
        self._token = str(data["AccessToken"])
        now = self._clock()
        self._token_expires = now + lifetime
        # Refresh ahead of expiry: the configured margin, at most a tenth of a short lifetime.
        self._refresh_at = now + lifetime - min(self.settings.token_refresh_margin_s, lifetime / 10)
        self.token_refreshes += 1

    async def _headers(self) -> dict[str, str]:
        headers = {"x-api-key": self.settings.api_key.reveal(), "Accept": "application/json"}
        if self.settings.plant:
            headers["CallSettings"] = f'{{"Company":"{self.settings.company}","Plant":"{self.settings.plant}"}}'
        if self.settings.auth == "token":
            await self._ensure_token()
            headers["Authorization"] = f"Bearer {self._token}"
        else:
            headers["Authorization"] = "Basic " + _basic(self.settings.username, self.settings.password.reveal())
        return headers

    # --- the one request loop -------------------------------------------------------------------

    def _record(self, method: str, path: str, resp: httpx.Response | None, started: float, *, attempt: int,
                error: str | None = None) -> None:  # fmt: skip
        if self._audit is None:
            return
        status = resp.status_code if resp is not None else None
        details: dict[str, Any] = {"status": status, "attempt": attempt}
        if resp is not None and resp.status_code >= 400:
            body = _body(resp)
            if isinstance(body, dict) and body.get("CorrelationId"):
                details["correlation_id"] = body["CorrelationId"]
        if error:
            details["error"] = error
        self._audit(
            "epicor.call",
            subject=f"{method} {path}",
            outcome="ok" if status is not None and status < 400 else "error",
            duration_ms=(time.monotonic() - started) * 1000,
            details=details,
            flow=self._flow,
            run_id=self._run_id,
        )

    async def request(self, method: str, path: str, *, params: Mapping[str, str | int] | None = None,
                      json: Any = None, write: bool = False) -> Any:  # fmt: skip
        """One call with retries; returns the parsed JSON (or text for ``/$count``)."""
        url = path + ("?" + odata.encode_query(params) if params else "")
        content = None if json is None else _dumps(json)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                headers = await self._headers()
            except TransientError as exc:  # the token request itself was throttled or cut
                if attempt >= self.options.attempts:
                    raise
                cap = min(self.options.backoff_max_s, self.options.backoff_s * 2 ** (attempt - 1))
                await self._sleep(max(getattr(exc, "retry_after", None) or 0.0, self._rng.uniform(0, cap)))
                continue
            try:
                if content is not None:
                    headers["Content-Type"] = "application/json"
                resp = await self._http.request(method, url, headers=headers, content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the server: safe to retry, writes included.
                self._record(method, path, None, started, attempt=attempt, error=type(exc).__name__)
                error: MLConnectorError = UnreachableError(f"{method} {path}: {describe_transport_error(exc)}")
                retry_after = None
            except httpx.TransportError as exc:
                self._record(method, path, None, started, attempt=attempt, error=type(exc).__name__)
                if write:
                    raise UnknownOutcomeError(f"{method} {path}: no answer ({type(exc).__name__})") from None
                error, retry_after = TransientError(f"{method} {path}: {describe_transport_error(exc)}"), None
            else:
                self._record(method, path, resp, started, attempt=attempt)
                if resp.status_code < 400:
                    if path.endswith("/$count"):
                        return resp.text
                    return _loads(resp.content) if resp.content else {}
                if resp.status_code == 401 and self.settings.auth == "token" and not refreshed:
                    refreshed = True  # an expired or revoked token: one fresh token, one more try
                    await self._ensure_token(force=True)
                    continue
                error = map_error(resp.status_code, _body(resp), what=f"{method} {path}", write=write)
                retry_after = _retry_after(resp)
            if not isinstance(error, TransientError) or attempt >= self.options.attempts:
                raise error
            cap = min(self.options.backoff_max_s, self.options.backoff_s * 2 ** (attempt - 1))
            await self._sleep(max(retry_after or 0.0, self._rng.uniform(0, cap)))

    # --- OData reads ----------------------------------------------------------------------------

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: list[str] | None = None, orderby: str | None = None, top: int = 100,
                    skip: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        params: dict[str, str | int] = {"$top": top}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(odata.field(f) for f in select)
        if orderby:
            params["$orderby"] = orderby
        if skip:
            params["$skip"] = skip
        data = await self.request("GET", f"{self.odata_base}/{service}/{entity_set}", params=params)
        rows = list(data.get("value", []))
        # Instances that cap pages may say where the rest is; follow it (never seen from Kinetic so
        # far, but harmless where absent).
        while data.get("@odata.nextLink"):
            link = httpx.URL(str(data["@odata.nextLink"]))
            data = await self.request("GET", link.path.removeprefix(httpx.URL(self.settings.url).path),
                                      params=dict(link.params))  # fmt: skip
            rows.extend(data.get("value", []))
        return rows

    async def count(self, service: str, entity_set: str, filter: str | None = None) -> int:
        params = {"$filter": filter} if filter else None
        return int(await self.request("GET", f"{self.odata_base}/{service}/{entity_set}/$count", params=params))

    async def extract(
        self,
        service: str,
        entity_set: str,
        *,
        cursor: str,
        after: Any,
        page_size: int = 500,
        select: list[str] | None = None,
        extra_filter: str | None = None,
        tiebreak: str | None = "SysRevID",
        after_tiebreak: Any = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of rows changed since ``after``, by keyset on ``cursor`` (never ``$skip``).

        A cursor with ties (``ChangeDate`` is a date: many rows share one) pages on the pair
        (``cursor``, ``tiebreak``): ``cursor gt last or (cursor eq last and tiebreak gt t)``, so
        a page boundary inside a run of equal dates neither skips nor repeats a row. Rows that
        change while we page move past the keyset and are read later. Paging ends on an empty
        page, not a short one: an instance that caps pages below ``page_size`` would otherwise
        end the extract early.
        """
        if tiebreak == cursor:
            tiebreak = None
        keys = [cursor] + ([tiebreak] if tiebreak else [])
        fields = None if select is None else list(dict.fromkeys([*select, *keys]))
        style = self.options.datetime_literal
        last, last_tb = odata.cursor_value(after), after_tiebreak
        orderby = ",".join(f"{odata.field(k)} asc" for k in keys)
        while True:
            if last is None:
                keyset = None
            elif tiebreak and last_tb is not None:
                keyset = (f"{odata.compare(cursor, 'gt', last, style)} or ({odata.compare(cursor, 'eq', last, style)}"
                          f" and {odata.compare(tiebreak, 'gt', last_tb)})")  # fmt: skip
            else:
                keyset = odata.compare(cursor, "gt", last, style)
            flt = odata.all_of(extra_filter, f"({keyset})" if keyset and " or " in keyset else keyset)
            rows = await self.query(
                service, entity_set, filter=flt or None, select=fields, orderby=orderby, top=page_size
            )
            if not rows:
                return
            yield rows
            last = odata.cursor_value(rows[-1][cursor])
            last_tb = rows[-1][tiebreak] if tiebreak else None

    # --- methods --------------------------------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        """One cheap authenticated call (``connections test``): company, round trip, token expiry."""
        started = time.monotonic()
        vendors = await self.count("Erp.BO.VendorSvc", "Vendors")
        return {
            "company": self.settings.company,
            "round_trip_ms": round((time.monotonic() - started) * 1000, 1),
            "token_expires_in_s": None if self._token is None else round(self._token_expires - self._clock()),
            "vendors": vendors,
        }

    async def call(self, service: str, method: str, body: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        result = await self.request("POST", f"{self.odata_base}/{service}/{method}", json=body, write=write)
        return dict(result)

    # --- create-or-update recipes --------------------------------------------------------------

    async def find(self, entity: str, keys: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Existing rows by natural key, looked up in batches (one query per batch)."""
        recipe = RECIPES[entity]
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        unique = list({tuple(k[f] for f in recipe.natural_key): k for k in keys}.values())
        step = self.options.lookup_batch if len(recipe.natural_key) == 1 else max(1, self.options.lookup_batch // 5)
        for i in range(0, len(unique), step):
            chunk = unique[i : i + step]
            if len(recipe.natural_key) == 1:
                flt = odata.any_of(recipe.natural_key[0], [k[recipe.natural_key[0]] for k in chunk])
            else:
                flt = " or ".join(
                    "(" + " and ".join(odata.compare(f, "eq", k[f]) for f in recipe.natural_key) + ")" for k in chunk
                )
            for row in await self.query(recipe.service, recipe.entity_set, filter=flt, top=len(chunk) * 5 + 1):
                found[tuple(row[f] for f in recipe.natural_key)] = row
        return found

    async def upsert(
        self,
        entity: str,
        fields: dict[str, Any],
        existing: dict[str, Any] | None = None,
        *,
        settle_tries: int = 3,
        looked_up: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Create or update one record by its natural key; returns (saved row, created).

        New: ``GetNew…`` then set fields then ``Update``/``UpdateMaster``. Existing: ``GetByID``,
        set fields, ``RowMod`` U, save. A save with no answer is settled by looking the record up
        (did it land?) before any retry, so a record is never created twice.
        """
        recipe = RECIPES[entity]
        key = tuple(fields[f] for f in recipe.natural_key)
        if existing is None and not looked_up:  # ``looked_up``: the caller's batched find said absent
            existing = (await self.find(entity, [fields])).get(key)
        if existing is not None:
            current = await self.call(recipe.service, "GetByID", {p: existing[f] for p, f in recipe.by_id})
            ds = current["returnObj"]
            row = ds[recipe.table][0]
            row.update({k: v for k, v in fields.items() if k not in recipe.by_id_fields})
            row["RowMod"] = "U"
            created = False
        else:
            params: dict[str, Any] = {"ds": {}}
            params.update({p: fields[f] for p, f in recipe.get_new_params if f in fields})
            ds = (await self.call(recipe.service, recipe.get_new, params))["parameters"]["ds"]
            row = ds[recipe.table][-1]
            row.update(fields)
            created = True
        try:
            saved = await self.call(recipe.service, recipe.save, {"ds": ds, **recipe.save_params(fields)}, write=True)
        except UnknownOutcomeError:
            settled = (await self.find(entity, [fields])).get(key)
            if settled is not None and (existing is None or settled["SysRevID"] != existing["SysRevID"]):
                return settled, created  # the write landed
            if settle_tries <= 1:
                raise
            return await self.upsert(entity, fields, settled, settle_tries=settle_tries - 1)
        rows = saved["parameters"]["ds"][recipe.table]
        match = next((r for r in rows if all(r.get(f) == fields[f] for f in recipe.natural_key)), rows[-1])
        return match, created

    async def find_vendors(self, vendor_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Existing vendors by VendorID, looked up in batches."""
        found = await self.find("vendors", [{"VendorID": v} for v in vendor_ids])
        return {k[0]: row for k, row in found.items()}

    async def upsert_vendor(self, fields: dict[str, Any], existing: dict[str, Any] | None = None) -> tuple[int, bool]:
        """Create or update one vendor by VendorID; returns (VendorNum, created)."""
        row, created = await self.upsert("vendors", fields, existing)
        return int(row["VendorNum"]), created

    async def apply_cash(self, receipt: dict[str, Any], invoice_num: int, amount: Any) -> dict[str, Any]:
        """Apply part of a saved cash receipt to an AR invoice (``GetNewCashDtl`` + ``UpdateMaster``).

        Idempotent by (GroupID, HeadNum, InvoiceNum): an unknown outcome is settled by reading the
        receipt back before any retry.
        """
        key = {"groupID": receipt["GroupID"], "headNum": receipt["HeadNum"]}

        async def applied() -> bool:
            ds = (await self.call("Erp.BO.CashRecSvc", "GetByID", key))["returnObj"]
            return any(d["InvoiceNum"] == invoice_num for d in ds.get("CashDtl", []))

        if await applied():
            return receipt
        ds = (await self.call("Erp.BO.CashRecSvc", "GetNewCashDtl", {"ds": {}, **key, "invoiceNum": invoice_num}))[
            "parameters"
        ]["ds"]
        ds["CashDtl"][-1].update(TranAmt=amount, DocTranAmt=amount)
        try:
            params = {"ds": ds, "ipGroupID": receipt["GroupID"], "ipTableName": "CashDtl"}
            await self.call("Erp.BO.CashRecSvc", "UpdateMaster", params, write=True)
        except UnknownOutcomeError:
            if not await applied():
                raise
        return receipt

    async def find_payment(self, vendor_num: int, check_num: int) -> dict[str, Any] | None:
        flt = odata.all_of(odata.compare("VendorNum", "eq", vendor_num), odata.compare("CheckNum", "eq", check_num))
        rows = await self.query(PAYMENT_SVC, "PaymentEntries", filter=flt, top=2)
        return rows[0] if rows else None

    async def create_payment(
        self, *, group_id: str, vendor_id: str, check_num: int, check_date: Any, amount: Any,
        lines: list[tuple[str, Any]], tries: int = 3,
    ) -> tuple[int, bool]:  # fmt: skip
        """An AP payment (CheckHed + one APTran per invoice); returns (HeadNum, created).

        Natural key: CheckNum + VendorNum. ``CreateNewCheckHed`` saves an empty header at once,
        so a header whose answer was lost is found again (VendorNum 0, CheckNum 0 in this group)
        and reused rather than leaving an orphan. Each save with no answer is settled by reading
        the payment back before any retry; a replay of a finished payment creates nothing.
        """
        vendor = (await self.find_vendors([vendor_id])).get(vendor_id)
        if vendor is None:
            raise RecordError(f"payment {check_num}: vendor {vendor_id!r} does not exist in Kinetic")
        existing = await self.find_payment(int(vendor["VendorNum"]), check_num)
        created = existing is None
        if existing is None:
            orphans = await self.query(PAYMENT_SVC, "PaymentEntries", filter=odata.all_of(
                odata.compare("GroupID", "eq", group_id), odata.compare("VendorNum", "eq", 0),
                odata.compare("CheckNum", "eq", 0)), top=1)  # fmt: skip
            if orphans:
                ds = (await self.call(PAYMENT_SVC, "GetByID", {"headNum": orphans[0]["HeadNum"]}))["returnObj"]
            else:
                try:
                    ds = (
                        await self.call(PAYMENT_SVC, "CreateNewCheckHed", {"pcGroupID": group_id, "ds": {}}, write=True)
                    )["parameters"]["ds"]
                except UnknownOutcomeError:
                    if tries <= 1:
                        raise
                    return await self.create_payment(group_id=group_id, vendor_id=vendor_id, check_num=check_num,
                                                     check_date=check_date, amount=amount, lines=lines,
                                                     tries=tries - 1)  # fmt: skip
            ds["CheckHed"][0]["RowMod"] = "U"
            ds = (await self.call(PAYMENT_SVC, "OnChangeVendor", {"pcVendorID": vendor_id, "ds": ds}))["parameters"][
                "ds"
            ]
            ds["CheckHed"][0].update(CheckNum=check_num, CheckDate=check_date, CheckAmt=amount, DocCheckAmt=amount)
            ds.pop("APTran", None)
            try:
                await self.call(PAYMENT_SVC, "Update", {"ds": ds}, write=True)
            except UnknownOutcomeError:
                if await self.find_payment(int(vendor["VendorNum"]), check_num) is None:
                    raise
            existing = await self.find_payment(int(vendor["VendorNum"]), check_num)
            assert existing is not None
        head_num = int(existing["HeadNum"])
        for invoice_num, paid in lines:
            await self._pay_line(head_num, invoice_num, paid)
        return head_num, created

    async def _pay_line(self, head_num: int, invoice_num: str, paid: Any) -> None:
        async def present() -> bool:
            ds = (await self.call(PAYMENT_SVC, "GetByID", {"headNum": head_num}))["returnObj"]
            return any(t["InvoiceNum"] == invoice_num for t in ds.get("APTran", []))

        if await present():
            return
        tran = (await self.call(PAYMENT_SVC, "GetNewAPTran", {"ds": {}, "headNum": head_num, "invoiceNum": ""}))[
            "parameters"
        ]["ds"]
        tran = (await self.call(PAYMENT_SVC, "OnChangeInvoiceNum", {"pcInvoiceNum": invoice_num, "ds": tran}))[
            "parameters"
        ]["ds"]
        tran = (await self.call(PAYMENT_SVC, "OnChangeDocTranAmt", {"pdDocTranAmt": paid, "ds": tran}))["parameters"][
            "ds"
        ]
        try:
            await self.call(PAYMENT_SVC, "Update", {"ds": tran}, write=True)
        except UnknownOutcomeError:
            if not await present():
                raise


PAYMENT_SVC = "Erp.BO.PaymentEntrySvc"


@dataclass(frozen=True)
class Recipe:
    """How one entity is looked up, created and saved (reference/epicor-kinetic-api.md section 3)."""

    service: str
    entity_set: str
    table: str
    natural_key: tuple[str, ...]
    get_new: str
    get_new_params: tuple[tuple[str, str], ...]  # (method parameter, field)
    by_id: tuple[tuple[str, str], ...]  # (GetByID parameter, field of the found row)
    save: str = "Update"
    save_extra: tuple[tuple[str, str], ...] = ()  # (save parameter, field)

    @property
    def by_id_fields(self) -> set[str]:
        return {f for _, f in self.by_id}

    def save_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {p: fields[f] for p, f in self.save_extra if f in fields}


RECIPES: dict[str, Recipe] = {
    "vendors": Recipe("Erp.BO.VendorSvc", "Vendors", "Vendor", ("VendorID",), "GetNewVendor", (),
                      (("vendorNum", "VendorNum"),)),
    "ap-invoices": Recipe("Erp.BO.APInvoiceSvc", "APInvoices", "APInvHed", ("VendorNum", "InvoiceNum"),
                          "GetNewAPInvHedInvoice", (("cGroupID", "GroupID"),),
                          (("vendorNum", "VendorNum"), ("invoiceNum", "InvoiceNum"))),
    "cash-receipts": Recipe("Erp.BO.CashRecSvc", "CashRecs", "CashHead", ("GroupID", "CustNum", "CheckRef"),
                            "GetNewCashHeadType", (("groupID", "GroupID"), ("tranType", "TranType")),
                            (("groupID", "GroupID"), ("headNum", "HeadNum")), save="UpdateMaster",
                            save_extra=(("ipGroupID", "GroupID"),)),
}  # fmt: skip


def _json_default(value: Any) -> Any:
    """Decimals as JSON numbers when a float holds them exactly, else as strings (never rounded)."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(body: Any) -> bytes:
    import json

    return json.dumps(body, default=_json_default).encode()


def _loads(content: bytes) -> Any:
    """JSON with numbers that have a fraction as ``Decimal`` (money is never a float)."""
    import json
    from decimal import Decimal

    return json.loads(content, parse_float=Decimal)


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]
