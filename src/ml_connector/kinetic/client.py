"""The Epicor Kinetic REST v2 client: transport only (auth, retries, OData, error mapping).

What each entity does with it (create-or-update recipes) lives in ``kinetic.recipes``; what each
entity is (service, entity set, keys, cursor) lives in ``kinetic.entities``.

- Auth is an ``httpx.Auth`` (``kinetic.auth``): ``x-api-key`` on every call, Basic or a Bearer
  token refreshed before expiry and once on a 401.
- One retry policy (``ml_connector.retry``): connect errors, timeouts on reads, 429, 502-504 and
  licence exhaustion retry with jittered backoff, never sooner than ``Retry-After``.
- A write that got no answer raises ``UnknownOutcomeError``: the recipe settles it by looking
  the record up before any retry.
- A read refused twice with the same 500 is a refused query plan (Kinetic names no field): a
  configuration error for the run naming the service and filter, not six retries.
- List calls never ask for more rows than the server's cap (100 by default in Kinetic); lookups
  page under it. Read methods (GetByID, GetRows, GetList) go by GET with query parameters.
- Epicor's status and error body map to the error tree in one place (``map_error``).
- Every call is audited: method, path (no query values), status, duration, correlation id.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..connections import EpicorSettings
from ..errors import (
    ConfigError,
    ConnectError,
    FatalError,
    MLConnectorError,
    NotFoundError,
    PostedRecordError,
    RecordError,
    ScopeDeniedError,
    TransientError,
    UnknownOutcomeError,
    UnreachableError,
)
from ..retry import RetryPolicy
from . import odata
from .auth import TOKEN_PATH, KineticAuth

Audit = Callable[..., None]
# Out-parameters in which a method says something to the user (confirmMsg, cMessageText, opMessage…).
MESSAGE_PARAM = re.compile(r"(?i)(msg|message|messagetext)$")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class KineticOptions:
    """Retry budget, backoff and page sizes, with explicit defaults."""

    attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    lookup_batch: int = 50  # natural keys per lookup query
    page_cap: int = 100  # rows asked for per page: Kinetic caps list calls at 100 by default
    datetime_literal: str | None = None  # overrides the connection's setting (tests, the fit check)

    @property
    def policy(self) -> RetryPolicy:
        """The shared retry policy these options describe."""
        return RetryPolicy(self.attempts, self.backoff_s, self.backoff_max_s)


def _service_of(what: str) -> str | None:
    for part in what.split("/"):
        if part.startswith(("Erp.", "Ice.")):
            return part
    return None


def map_error(
    status: int,
    body: Any,
    *,
    what: str,
    write: bool,
    retry_after: float | None = None,
    authenticated_elsewhere: bool = False,
) -> MLConnectorError:
    """Epicor's HTTP status and error body to the error tree (the only place this happens).

    ``authenticated_elsewhere``: this client has had a successful call to another service, so a
    401 here is the key's access scope (Kinetic answers scope denial with 401 or 403), not the
    password.
    """
    info = body if isinstance(body, dict) else {}
    message = str(info.get("ErrorMessage") or (info.get("error") or {}).get("message") or body or "")[:500]
    etype = str(info.get("ErrorType") or "")
    fields = [d.get("Field") for d in info.get("ErrorDetails") or [] if isinstance(d, dict) and d.get("Field")]
    where = f"{what}: HTTP {status}: {message}" + (f" (field {fields[0]})" if fields else "")
    service = _service_of(what)
    if status in (429, 502, 503, 504) or "LicenseAccessException" in etype or "Maximum users" in message:
        return TransientError(where, retry_after=retry_after)
    scope_words = "scope" in message.lower() or "UnauthorizedAccess" in etype
    if service and (status == 403 or (status == 401 and (scope_words or authenticated_elsewhere))):
        return ScopeDeniedError(
            f"{what}: the API key's access scope does not allow service {service} (HTTP {status}: {message}); "
            f"add {service} to the key's access scope in API Key Maintenance",
            service=service,
        )
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
    if status in (400, 405, 409, 422) and write and "posted" in message.lower():
        return PostedRecordError(f"{what}: already posted in Kinetic, it can no longer be changed ({message})")
    if status in (400, 409, 422):
        return RecordError(where)
    if status >= 500:
        return UnknownOutcomeError(where) if write else TransientError(where, retry_after=retry_after)
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
        self.datetime_literal: str = self.options.datetime_literal or settings.datetime_literal
        self._audit = audit
        self._sleep = sleep
        self._run_id, self._flow = run_id, flow
        self.auth = KineticAuth(settings, map_error=self._token_error, clock=clock, observe=self._token_seen)
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            verify=settings.ca_bundle or settings.verify_tls,
            transport=transport,
            auth=self.auth,
        )
        self._ok_services: set[str] = set()

    async def __aenter__(self) -> KineticClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    @property
    def odata_base(self) -> str:
        """The company's OData root, relative to the instance URL."""
        return f"/api/v2/odata/{self.settings.company}"

    @property
    def token_refreshes(self) -> int:
        """Tokens requested so far (0 with Basic auth)."""
        return self.auth.refreshes

    def token_expires_in(self) -> float | None:
        """Seconds until the current token expires (None with Basic auth or before the first call)."""
        return self.auth.expires_in()

    # --- auth callbacks ---------------------------------------------------------------------------

    def _token_error(self, resp: httpx.Response) -> Exception:
        return map_error(resp.status_code, _body(resp), what="token request", write=False,
                         retry_after=_retry_after(resp))  # fmt: skip

    def _token_seen(self, resp: httpx.Response, started: float) -> None:
        self._record("POST", TOKEN_PATH, resp, started, attempt=1)

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
        """One call with retries; returns the parsed JSON (or text for ``/$count`` and ``$metadata``)."""
        url = path + ("?" + odata.encode_query(params) if params else "")
        content = None if json is None else _dumps(json)
        failures: list[str] = []  # 500 messages of earlier attempts (a refused query plan repeats)
        result: Any = None
        async for attempt in self.options.policy.retrying(self._sleep):
            with attempt:
                result = await self._once(method, path, url, content, write=write, params=params, failures=failures,
                                          attempt=attempt.retry_state.attempt_number)  # fmt: skip
        return result

    async def _once(self, method: str, path: str, url: str, content: bytes | None, *, write: bool,
                    params: Mapping[str, str | int] | None, failures: list[str], attempt: int) -> Any:  # fmt: skip
        started = time.monotonic()
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            resp = await self._http.request(method, url, headers=headers, content=content)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the server: safe to retry, writes included.
            self._record(method, path, None, started, attempt=attempt, error=type(exc).__name__)
            raise UnreachableError(f"{method} {path}: {describe_transport_error(exc)}") from None
        except httpx.TransportError as exc:
            self._record(method, path, None, started, attempt=attempt, error=type(exc).__name__)
            if write and not self.auth.sending_token_request:
                raise UnknownOutcomeError(f"{method} {path}: no answer ({type(exc).__name__})") from None
            raise TransientError(f"{method} {path}: {describe_transport_error(exc)}") from None
        self._record(method, path, resp, started, attempt=attempt)
        service = _service_of(path)
        if resp.status_code < 400:
            if service:
                self._ok_services.add(service)
            if path.endswith(("/$count", "/$metadata")):
                return resp.text
            return _loads(resp.content) if resp.content else {}
        body = _body(resp)
        error = map_error(resp.status_code, body, what=f"{method} {path}", write=write,
                          retry_after=_retry_after(resp),
                          authenticated_elsewhere=bool(self._ok_services - {service}))  # fmt: skip
        if not write and resp.status_code == 500:
            # The same refusal twice: compare what it says, not its per-response CorrelationId.
            info = body if isinstance(body, dict) else {}
            text = f"{info.get('ErrorType')}: {info.get('ErrorMessage')}" if info else str(body)[:300]
            if text in failures:
                flt = (params or {}).get("$filter")
                raise ConfigError(
                    f"{method} {path}: Kinetic refused the query twice with the same server error (HTTP 500) "
                    f"on service {service}" + (f" with $filter {flt!r}" if flt else "") + ": a refused query plan "
                    "(a filter on a display field such as VendorNumVendorID, or on a child set's column); "
                    "fix the flow's filter or cursor"
                )
            failures.append(text)
        raise error

    # --- OData reads ----------------------------------------------------------------------------

    def _cap(self, top: int) -> int:
        return max(1, min(top, self.options.page_cap))

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: Sequence[str] | None = None, orderby: str | None = None, top: int = 100,
                    skip: int | None = None, expand: Sequence[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """One page of an entity set (``$top`` never above the page cap; a ``nextLink`` is followed)."""
        params: dict[str, str | int] = {"$top": self._cap(top)}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(odata.field(f) for f in select)
        if orderby:
            params["$orderby"] = orderby
        if skip:
            params["$skip"] = skip
        if expand:
            params["$expand"] = ",".join(odata.field(f) for f in expand)
        data = await self.request("GET", f"{self.odata_base}/{service}/{entity_set}", params=params)
        rows = list(data.get("value", []))
        # Kinetic v2 sends no nextLink that anyone has seen; an instance that does says where the
        # rest of a capped page is.
        while data.get("@odata.nextLink"):
            link = httpx.URL(str(data["@odata.nextLink"]))
            data = await self.request("GET", link.path.removeprefix(httpx.URL(self.settings.url).path),
                                      params=dict(link.params))  # fmt: skip
            rows.extend(data.get("value", []))
        return rows

    async def query_all(self, service: str, entity_set: str, *, filter: str | None, orderby: str,
                        select: Sequence[str] | None = None, expand: Sequence[str] | None = None,
                        expect: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Every row a (bounded) filter matches, in pages under the cap.

        Ends on an empty page, since a server capping below what we ask would make a short page
        look like the last; or once ``expect`` rows arrived (a lookup that found every key).
        """
        out: list[dict[str, Any]] = []
        page = self.options.page_cap
        while True:
            rows = await self.query(service, entity_set, filter=filter, select=select, orderby=orderby,
                                    top=page, skip=len(out) or None, expand=expand)  # fmt: skip
            out.extend(rows)
            if not rows or (expect is not None and len(out) >= expect):
                return out

    async def count(self, service: str, entity_set: str, filter: str | None = None) -> int:
        """``/$count`` of an entity set."""
        params = {"$filter": filter} if filter else None
        return int(await self.request("GET", f"{self.odata_base}/{service}/{entity_set}/$count", params=params))

    async def metadata(self, service: str) -> str:
        """The service's ``$metadata`` document (CSDL XML)."""
        return str(await self.request("GET", f"{self.odata_base}/{service}/$metadata"))

    async def extract(
        self,
        service: str,
        entity_set: str,
        *,
        cursor: str,
        after: Any,
        page_size: int = 100,
        select: list[str] | None = None,
        extra_filter: str | None = None,
        tiebreak: str | Sequence[str] | None = "SysRevID",
        after_tiebreak: Any = None,
        expand: Sequence[str] | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of rows changed since ``after``, by keyset on ``cursor`` (never ``$skip``).

        A cursor with ties (``ChangeDate`` is a date: many rows share one) pages on the tuple
        (``cursor``, tie-breakers): ``cursor gt c or (cursor eq c and tb1 gt t1) or ...``, so a
        page boundary inside a run of equal values neither skips nor repeats a row. Rows that
        change while we page move past the keyset and are read later. Paging ends on an empty
        page, not a short one: an instance that caps pages below ``page_size`` would otherwise
        end the extract early. ``after_tiebreak`` is one value or a list (one per tie-breaker).
        """
        breakers = [tiebreak] if isinstance(tiebreak, str) else list(tiebreak or [])
        breakers = [b for b in breakers if b != cursor]
        keys = [cursor, *breakers]
        fields = None if select is None else list(dict.fromkeys([*select, *keys]))
        style = self.datetime_literal
        last = odata.cursor_value(after)
        last_tb: list[Any] | None
        if after_tiebreak is None:
            last_tb = None
        else:
            last_tb = list(after_tiebreak) if isinstance(after_tiebreak, list | tuple) else [after_tiebreak]
        orderby = ",".join(f"{odata.field(k)} asc" for k in keys)
        while True:
            flt = odata.all_of(extra_filter, _keyset(keys, [last, *(last_tb or [])] if last is not None else None,
                                                     tied=last_tb is not None and len(last_tb) == len(breakers),
                                                     style=style))  # fmt: skip
            rows = await self.query(service, entity_set, filter=flt or None, select=fields, orderby=orderby,
                                    top=page_size, expand=expand)  # fmt: skip
            if not rows:
                return
            yield rows
            last = odata.cursor_value(rows[-1][cursor])
            last_tb = [rows[-1][b] for b in breakers]

    # --- methods --------------------------------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        """One cheap authenticated call (``connections test``): company, round trip, token expiry."""
        started = time.monotonic()
        vendors = await self.count("Erp.BO.VendorSvc", "Vendors")
        expires = self.token_expires_in()
        return {
            "company": self.settings.company,
            "round_trip_ms": round((time.monotonic() - started) * 1000, 1),
            "token_expires_in_s": None if expires is None else round(expires),
            "vendors": vendors,
        }

    async def call(self, service: str, method: str, body: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        """A business-object method by POST (GetNew…, Change…, Update…); every parameter is sent."""
        result = await self.request("POST", f"{self.odata_base}/{service}/{method}", json=body, write=write)
        self._note_messages(service, method, result)
        return dict(result)

    def _note_messages(self, service: str, method: str, result: Any) -> None:
        """Kinetic's words in a method's out-parameters (``confirmMsg``, ``cMessageText``, ``opMessage``…),
        when it said something: audited as ``epicor.message`` beside the call, for the operator."""
        params = result.get("parameters") if isinstance(result, dict) else None
        if self._audit is None or not isinstance(params, dict):
            return
        said = {k: v for k, v in params.items() if isinstance(v, str) and v.strip() and MESSAGE_PARAM.search(k)}
        if said:
            self._audit("epicor.message", subject=f"{service}/{method}", outcome="warning",
                        details={"messages": said}, flow=self._flow, run_id=self._run_id)  # fmt: skip

    async def read(self, service: str, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A read-only method (GetByID, GetRows, GetList) by GET with query parameters (POST is deprecated)."""
        query = {k: _param_text(v) for k, v in params.items()}
        result = await self.request("GET", f"{self.odata_base}/{service}/{method}", params=query)
        return dict(result)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _keyset(keys: list[str], values: list[Any] | None, *, tied: bool, style: str) -> str | None:
    """``k1 gt v1 or (k1 eq v1 and k2 gt v2) or ...`` for the keyset position ``values``."""
    if values is None:
        return None
    if not tied:
        return odata.compare(keys[0], "gt", values[0], style)
    terms = []
    for i, key in enumerate(keys):
        eqs = [odata.compare(keys[j], "eq", values[j], style) for j in range(i)]
        terms.append(" and ".join([*eqs, odata.compare(key, "gt", values[i], style)]))
    return "(" + " or ".join(f"({t})" if " and " in t else t for t in terms) + ")" if len(terms) > 1 else terms[0]


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


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]
