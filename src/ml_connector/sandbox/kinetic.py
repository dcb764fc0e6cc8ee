"""A Kinetic sandbox: an HTTP emulator of the Epicor Kinetic REST v2 surface ml-connector calls.

Served: ``TokenResource.svc`` and, under ``/{instance}/api/v2/odata/{Company}/``, the services in
``kinetic_schema.SERVICES`` (vendors; AP invoice groups, invoices and lines; AP payment groups,
CheckHed and APTran; cash groups, CashHead and CashDtl; AR invoices to apply cash to):

- authentication as Kinetic does it: ``x-api-key`` on every call, plus Basic or a Bearer token
  with a configurable lifetime (an expired token gets 401);
- OData on every entity set: ``$filter`` (parsed by the odata-query grammar; an unknown field is
  a 400 with an Epicor body), ``$select``, ``$orderby``, ``$top``, ``$skip``, ``$count`` and
  ``/$count``, a default row cap when ``$top`` is absent;
- methods: ``GetNew…``, ``CreateNewCheckHed``, ``GetByID``/``GetByVendID``, ``GetList``/``GetRows``
  (a minimal whereClause), ``Update``/``UpdateMaster`` (RowMod A/U/D), ``UpdateExt`` (BOUpdError
  rows), ``DeleteByID``, and the ``Change…``/``OnChange…`` methods the recipes need;
- sequences, ``SysRevID`` bumped on every write, ``ChangeDate``/``ChangedBy`` where the table has
  them (not Vendor), validation with Epicor-shaped error bodies, balances reduced by payments;
- fault knobs at ``/_sandbox/faults``: latency, 429/503 rates with ``Retry-After``, and
  commit-then-lose-the-response.

State lives in an in-memory SQLite database. Uncertain behaviours are ``SandboxOptions``.

Strict by default (issue 13): the sandbox refuses what public evidence says a real Kinetic refuses
(a missing method parameter, reads by POST, partial-row updates, writes to posted records, child-set
filters on child columns, display-field filters, zone-less DateTimeOffset literals, services outside
the key's scope) and applies the entry screens' rules (APTranNo 0, ManualPrint, InvoiceAmt from the
lines, vendor-derived terms). Each rule is one option; ``SandboxOptions.lenient()`` turns them all
off. docs/kinetic-sandbox.md has the table with the evidence; kinetic_methods.py the parameter table.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from odata_query.exceptions import ODataException
from odata_query.sqlalchemy.shorthand import apply_odata_core
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    Numeric,
    String,
    Table,
    and_,
    create_engine,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .kinetic_methods import READ_METHODS, declared, missing
from .kinetic_schema import SERVICES, SPECS, TABLES, GetNew, ServiceSpec, metadata

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
TERMS_CODES = {"N30": 30, "N45": 45, "N60": 60, "2/10N30": 30, "COD": 0}
# Display fields a row carries from a joined table, named as the published tablesets name them
# (S1 ``Erp_Tablesets_<Table>Row``): the vendor's ID and name on rows keyed by VendorNum, the
# customer's on AR invoices as ``CustomerCustID``/``CustomerName`` (InvcHeadRow has no
# ``CustNumCustID``; CashHead has a real ``CustID`` column instead).
VENDOR_DISPLAY = {"VendorNumVendorID": "VendorID", "VendorNumName": "Name"}
CUSTOMER_DISPLAY = {"CustomerCustID": "CustID", "CustomerName": "Name"}
CUSTOMER_DISPLAY_TABLES = {"InvcHead"}


def display_fields(table: Table) -> dict[str, str]:
    """The display fields ``table``'s rows carry: field -> column of the vendor or customer row."""
    out: dict[str, str] = {}
    if "VendorNum" in table.c and table.name != "Vendor":
        out.update(VENDOR_DISPLAY)
    if table.name in CUSTOMER_DISPLAY_TABLES:
        out.update(CUSTOMER_DISPLAY)
    return out


# Methods beyond GetNew… each service answers (GetNew… come from kinetic_schema.SERVICES).
COMMON_METHODS = ("GetByID", "GetList", "GetRows", "Update", "UpdateExt", "DeleteByID")
SERVICE_METHODS: dict[str, tuple[str, ...]] = {
    "Erp.BO.VendorSvc": (*COMMON_METHODS, "GetByVendID"),
    "Erp.BO.APInvoiceSvc": (*COMMON_METHODS, "UpdateMaster", "ChangeVendorID", "ChangeInvoiceDateEx",
                            "ChangeInvoiceVendorAmt"),
    "Erp.BO.PaymentEntrySvc": (*COMMON_METHODS, "OnChangeVendor", "OnChangeInvoiceNum", "OnChangeDocTranAmt",
                               "OnChangeManualPrint"),
    "Erp.BO.CashRecSvc": (*COMMON_METHODS, "UpdateMaster", "GetCustomerInfo", "GetDtlInvoiceInfo",
                          "GetDtlTranAmtInfo"),
    "Erp.BO.ARInvoiceSvc": ("GetByID", "GetList", "GetRows"),
}  # fmt: skip
VENDOR = TABLES["Vendor"]
CUSTOMER = TABLES["Customer"]
NATURAL_KEYS = {"VendorID", "CustID", "InvoiceNum"}
POSTED_HEADS = {"APInvHed": "AP invoice", "CheckHed": "Payment", "CashHead": "Cash receipt"}


# Option -> the values it takes (the rest are free-form); checked at start and at run time.
CHOICES: dict[str, tuple[Any, ...]] = {
    "child_set_filter": ("parent", "table"),
    "datetime_literal": ("zoned", "naive", "any"),
    "duplicate_status": (400, 409),
    "scope_denial_status": (401, 403),
    "post_reads": ("refuse", "allow"),
}


@dataclass
class SandboxOptions:
    """Behaviour switches: strict (as the public evidence says Kinetic behaves) by default.

    Each strict rule is one field; ``SandboxOptions.lenient()`` turns them all off (the sandbox's
    old, forgiving behaviour) for callers not yet fit for a real Kinetic. The table with the
    evidence for each is docs/kinetic-sandbox.md.
    """

    instance: str = "EpicorSandbox"
    company: str = "EPIC06"
    api_key: str = "sandbox-api-key"
    users: dict[str, str] = field(default_factory=lambda: {"manager": "manager-password"})
    token_lifetime_s: int = 3600  # the real default is unknown (1 h and 8 h are both reported)
    default_row_cap: int = 100  # rows when $top is absent
    bad_api_key_status: int = 401  # some instances answer 403
    duplicate_status: int = 409  # DuplicateRecordException; some instances answer 400
    decimals_as_strings: bool = False
    accept_v1_datetime: bool = False  # also take v1-style datetime'2026-01-31T00:00:00' in $filter
    max_page: int | None = None  # older name for row_cap: cap every page at this many rows
    next_link: bool = False  # with a cap, say where the rest is in @odata.nextLink
    # --- strict rules (issue 13) ---
    strict_parameters: bool = True  # every declared method parameter must be present
    posted_read_only: bool = True  # posted APInvHed/CashHead/CheckHed (and their lines) refuse writes
    row_cap: int = 100  # every list returns at most this many rows, whatever $top says (0: no cap)
    child_set_filter: str = "parent"  # $filter on a child entity set applies to the parent type
    query_plan_errors: bool = True  # $filter on a denormalized display field: generic 500
    datetime_literal: str = "zoned"  # the DateTimeOffset literal form $filter accepts
    case_insensitive_keys: bool = False  # VendorID/CustID/InvoiceNum compared upper-cased, right-trimmed
    denied_services: list[str] = field(default_factory=list)  # outside the API key's access scope
    scope_denial_status: int = 403
    post_reads: str = "refuse"  # GetByID/GetList/GetRows by POST
    full_row_updates: bool = True  # an Update's RowMod "U" rows must carry every field of the row
    entry_rules: bool = True  # the entry screens' rules: APTranNo 0, ManualPrint, InvoiceAmt from lines…

    def __post_init__(self) -> None:
        for name in CHOICES:
            check_choice(name, getattr(self, name))

    @classmethod
    def lenient(cls, **overrides: Any) -> SandboxOptions:
        """The sandbox's old, forgiving behaviour: every strict rule off (transitional use only)."""
        values: dict[str, Any] = dict(
            strict_parameters=False,
            posted_read_only=False,
            row_cap=0,
            child_set_filter="table",
            query_plan_errors=False,
            datetime_literal="any",
            duplicate_status=400,
            post_reads="allow",
            full_row_updates=False,
            entry_rules=False,
        )
        values.update(overrides)
        return cls(**values)


def check_choice(name: str, value: Any) -> None:
    """Refuse a value an enumerated option does not take."""
    allowed = CHOICES.get(name)
    if allowed is not None and value not in allowed:
        raise ValueError(f"sandbox option {name} must be one of {', '.join(map(str, allowed))}, not {value!r}")


@dataclass
class Faults:
    """Fault knobs, settable at start and at run time through ``POST /_sandbox/faults``."""

    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after_s: float = 1.0
    lose_response_rate: float = 0.0  # writes commit, then the client gets a 500 (or a cut, below)
    lose_response_by: str = "500"  # "500", or "cut": the connection is cut mid-response
    drop_rate: float = 0.0  # a rate of calls whose connection is cut before anything is done
    seed: int | None = None


class EpicorError(Exception):
    def __init__(self, status: int, message: str, error_type: str = "Ice.Common.BusinessObjectException",
                 details: list[dict[str, str]] | None = None, reason: str = "REST API Exception") -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.error_type = status, message, error_type
        self.details, self.reason = details or [], reason
        self.rule: str | None = None  # the strict option that refused the call, for /_sandbox/stats

    def by(self, rule: str) -> EpicorError:
        """Mark this error as a refusal by the strict option ``rule``."""
        self.rule = rule
        return self

    def response(self) -> JSONResponse:
        body = {
            "HttpStatus": self.status,
            "ReasonPhrase": self.reason,
            "ErrorMessage": self.message,
            "ErrorType": self.error_type,
            "ErrorDetails": self.details or [{"Message": self.message, "Type": "Error", "Table": "", "Field": ""}],
            "CorrelationId": str(uuid.uuid4()),
        }
        return JSONResponse(body, status_code=self.status)


API_EXCEPTION = "Epicor.RESTApi.ErrorHandling.ApiException"


class KineticSandbox:
    """The sandbox's state and its Starlette app (``.app``)."""

    def __init__(self, options: SandboxOptions | None = None, faults: Faults | None = None) -> None:
        self.options = options or SandboxOptions()
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self.engine: Engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        metadata.create_all(self.engine)
        self._lock = threading.Lock()
        self._sysrev = 0
        self.tokens: dict[str, tuple[str, float]] = {}
        self.calls: dict[str, int] = {}
        self.lost_responses = 0
        self.dropped = 0
        self.strict_refusals: dict[str, int] = {}  # option -> calls it refused or rows it changed
        self.today: Callable[[], date] = date.today
        self.app = self._build_app()

    # --- state helpers --------------------------------------------------------------------------

    def note(self, rule: str) -> None:
        """Count one refusal (or silent change) by a strict option."""
        self.strict_refusals[rule] = self.strict_refusals.get(rule, 0) + 1

    def next_sysrev(self) -> int:
        with self._lock:
            self._sysrev += 1
            return self._sysrev

    def _stamp(self, table: str, values: dict[str, Any], user: str) -> None:
        values["SysRevID"] = self.next_sysrev()
        values["Company"] = self.options.company
        if SPECS[table].change_date:
            values["ChangeDate"] = datetime.combine(self.today(), datetime.min.time())
            values["ChangedBy"] = user

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert fully specified rows (seed data, generators)."""
        with self.engine.begin() as conn:
            for row in rows:
                t = TABLES[table]
                values = {
                    **_defaults(t),
                    **{k: _coerce(t, k, v) for k, v in row.items()},
                    "SysRowID": str(uuid.uuid4()),
                }
                spec = SPECS[table]
                if spec.sequence and self._needs_sequence(table, {**values, **row}):
                    values[spec.sequence] = self._next_in_sequence(conn, table, values)
                given = values.get("ChangeDate")
                self._stamp(table, values, "seed")
                if given:  # seed and generated rows may carry a past ChangeDate
                    values["ChangeDate"] = given
                conn.execute(insert(TABLES[table]).values(**values))

    def insert_vendors(self, rows: list[dict[str, Any]]) -> None:
        self.insert_rows("Vendor", rows)

    def seed(self, vendors: int = 12) -> None:
        """A small, realistic company: vendors, open AP invoices, groups, AR invoices."""
        names = ["Northwind Supply", "Contoso Metals", "Fabrikam Plastics", "Adventure Freight",
                 "Litware Packaging", "Tailspin Components", "Wingtip Fasteners", "Proseware Tools",
                 "Lucerne Chemicals", "Margie's Logistics", "Coho Electric", "O'Brien & Sons"]  # fmt: skip
        terms = list(TERMS_CODES)[:3]
        self.insert_vendors(
            [{"VendorID": f"V{i + 1:04d}", "Name": names[i % len(names)] + ("" if i < len(names) else f" {i}"),
              "City": "Chicago", "State": "IL", "Country": "USA", "TermsCode": terms[i % 3],
              "CreditLimit_c": Decimal(5000 + 250 * i)} for i in range(vendors)]
        )  # fmt: skip
        self.insert_rows("APInvGrp", [{"GroupID": "SEED01", "CreatedBy": "seed"}])
        self.insert_rows("APChkGrp", [{"GroupID": "CHK01", "BankAcctID": "MAIN"}])
        self.insert_rows("CashGrp", [{"GroupID": "CASH01", "BankAcctID": "MAIN"}])
        invoices = []
        for v in range(1, min(vendors, 6) + 1):
            for n in range(2):
                amount = Decimal(1000 + 137 * v + 50 * n).quantize(Decimal("0.01"))
                invoices.append({"VendorNum": v, "InvoiceNum": f"INV-{v:03d}-{n + 1}", "GroupID": "SEED01",
                                 "InvoiceDate": "2026-10-01T00:00:00", "DueDate": "2026-10-31T00:00:00",
                                 "TermsCode": "N30", "InvoiceAmt": amount, "DocInvoiceAmt": amount,
                                 "InvoiceVendorAmt": amount, "InvoiceBal": amount, "Posted": True, "OpenPayable": True,
                                 "ChangeDate": "2026-10-01T00:00:00"})  # fmt: skip
        self.insert_rows("APInvHed", invoices)
        self.insert_rows("Customer", [{"CustNum": 1 + i, "CustID": f"C{i + 1:04d}", "Name": f"Customer {i + 1}"}
                                      for i in range(4)])  # fmt: skip
        self.insert_rows("InvcHead", [{"InvoiceNum": 1000 + i, "CustNum": 1 + i % 4, "InvoiceAmt": Decimal(500 + 25 * i),
                                       "InvoiceBal": Decimal(500 + 25 * i)} for i in range(1, 21)])  # fmt: skip

    def row_count(self, table: str) -> int:
        """Rows in one sandbox table (the demo's summary)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(TABLES[table])) or 0)

    def generate_vendors(self, count: int) -> None:
        """``count`` more vendors for benchmarks."""
        with self.engine.connect() as conn:
            have = conn.scalar(select(func.count()).select_from(VENDOR)) or 0
        self.insert_vendors(
            [{"VendorID": f"G{have + i:07d}"[:8], "Name": f"Generated Vendor {have + i}", "TermsCode": "N30"}
             for i in range(count)]
        )  # fmt: skip

    def generate_invoices(self, count: int, vendor_num: int = 1, *, posted: bool = True) -> None:
        """``count`` more posted, open AP invoices (benchmarks, outbound tests)."""
        with self.engine.connect() as conn:
            have = conn.scalar(select(func.count()).select_from(TABLES["APInvHed"])) or 0
        self.insert_rows(
            "APInvHed",
            [{"VendorNum": vendor_num, "InvoiceNum": f"GEN{have + i:08d}", "GroupID": "SEED01",
              "InvoiceDate": "2026-11-01T00:00:00", "TermsCode": "N30", "InvoiceAmt": Decimal("100.00"),
              "InvoiceBal": Decimal("100.00"), "Posted": posted, "OpenPayable": posted} for i in range(count)],
        )  # fmt: skip

    def generate_payments(self, count: int, vendor_num: int = 1, *, posted: bool = False) -> None:
        """``count`` payments (CheckHed with one APTran each) against generated invoices."""
        self.generate_invoices(count, vendor_num)
        with self.engine.connect() as conn:
            inv = TABLES["APInvHed"]
            invoices = [r.InvoiceNum for r in conn.execute(select(inv.c.InvoiceNum).where(inv.c.InvoiceNum.like("GEN%"))
                                                            .order_by(inv.c.InvoiceNum.desc()).limit(count))]  # fmt: skip
            start = int(conn.scalar(select(func.coalesce(func.max(TABLES["CheckHed"].c.HeadNum), 0))) or 0)
        self.insert_rows("CheckHed", [{"HeadNum": start + i + 1, "GroupID": "CHK01", "CheckNum": 50000 + start + i,
                                       "VendorNum": vendor_num, "CheckDate": "2026-11-20T00:00:00",
                                       "CheckAmt": Decimal("100.00"), "DocCheckAmt": Decimal("100.00"), "Posted": posted}
                                      for i in range(len(invoices))])  # fmt: skip
        self.insert_rows("APTran", [{"HeadNum": start + i + 1, "APTranNo": 0, "InvoiceNum": invoice, "VendorNum": vendor_num,
                                     "TranDate": "2026-11-20T00:00:00", "TranAmt": Decimal("100.00"),
                                     "DocTranAmt": Decimal("100.00"), "CheckNum": 50000 + start + i}
                                    for i, invoice in enumerate(invoices)])  # fmt: skip

    # --- HTTP plumbing --------------------------------------------------------------------------

    def _build_app(self) -> Any:
        base = "/{instance}/api/v2/odata/{company}/{service}"
        routes = [
            Route("/{instance}/TokenResource.svc/", self._guard(self.token, auth=False), methods=["POST"]),
            Route(base + "/{name}/$count", self._guard(self.count), methods=["GET"]),
            Route(base + "/", self._guard(self.service_document), methods=["GET"]),
            Route(base + "/{name}", self._guard(self.dispatch), methods=["GET", "POST"]),
            Route("/_sandbox/faults", self.faults_endpoint, methods=["GET", "POST"]),
            Route("/_sandbox/stats", self.stats_endpoint, methods=["GET"]),
            Route("/_sandbox/options", self.options_endpoint, methods=["GET", "POST"]),
            Route("/_sandbox/posted", self.posted_endpoint, methods=["POST"]),
        ]
        return _CuttingMiddleware(Starlette(routes=routes), self)

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]], *, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            key = f"{request.method} {request.url.path.rsplit('/', 1)[-1]}"
            self.calls[key] = self.calls.get(key, 0) + 1
            try:
                if request.path_params.get("instance") != self.options.instance:
                    raise EpicorError(404, "Unknown instance", API_EXCEPTION, reason="Not Found")
                f = self.faults
                if f.latency_ms:
                    await asyncio.sleep(f.latency_ms / 1000)
                roll = self._rng.random()
                if roll < f.rate_429:
                    return _with_retry_after(
                        EpicorError(429, "Too many requests", API_EXCEPTION, reason="Too Many Requests"), f
                    )
                if roll < f.rate_429 + f.rate_503:
                    return _with_retry_after(
                        EpicorError(503, "Service unavailable", API_EXCEPTION, reason="Service Unavailable"), f
                    )
                if auth:
                    self._authenticate(request)
                    company = request.path_params.get("company")
                    if company != self.options.company:
                        raise EpicorError(400, f"Company '{company}' is not valid for this user", API_EXCEPTION)
                    self._check_scope(request.path_params.get("service"))
                return await handler(request)
            except EpicorError as exc:
                if exc.rule:
                    self.note(exc.rule)
                return exc.response()

        return run

    def _authenticate(self, request: Request) -> None:
        o = self.options
        key = request.headers.get("x-api-key") or request.query_params.get("api-key")
        if not key or not hmac.compare_digest(key, o.api_key):
            raise EpicorError(o.bad_api_key_status, "Invalid or missing API key", API_EXCEPTION,
                              reason="Unauthorized" if o.bad_api_key_status == 401 else "Forbidden")  # fmt: skip
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise EpicorError(401, "Malformed Basic credentials", API_EXCEPTION, reason="Unauthorized") from None
            known = o.users.get(user)
            if known is None or not hmac.compare_digest(known, password):
                raise EpicorError(401, "Incorrect username or password", API_EXCEPTION, reason="Unauthorized")
            return
        if header.startswith("Bearer "):
            entry = self.tokens.get(header[7:])
            if entry is None:
                raise EpicorError(401, "Invalid token", API_EXCEPTION, reason="Unauthorized")
            if entry[1] <= time.monotonic():
                raise EpicorError(401, "Token has expired", API_EXCEPTION, reason="Unauthorized")
            return
        raise EpicorError(401, "Authorization required", API_EXCEPTION, reason="Unauthorized")

    def _check_scope(self, service: str | None) -> None:
        """A key whose access scope lacks the service: 401/403 for that service only."""
        o = self.options
        if service and service in o.denied_services:
            raise EpicorError(
                o.scope_denial_status,
                f"Service {service} is not in the access scope of the API key",
                "Ice.Common.UnauthorizedAccessException",
                reason="Forbidden" if o.scope_denial_status == 403 else "Unauthorized",
            ).by("denied_services")

    async def token(self, request: Request) -> Response:
        user = request.headers.get("username")
        password = request.headers.get("password")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        known = self.options.users.get(user or "")
        if known is None or password is None or not hmac.compare_digest(known, password):
            raise EpicorError(401, "Incorrect username or password", API_EXCEPTION, reason="Unauthorized")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (user or "", time.monotonic() + self.options.token_lifetime_s)
        return JSONResponse({"AccessToken": token, "ExpiresIn": self.options.token_lifetime_s, "TokenType": "Bearer"})

    def expire_tokens(self) -> None:
        """Test hook: every issued token expires now."""
        self.tokens = {t: (u, 0.0) for t, (u, _) in self.tokens.items()}

    # --- OData ----------------------------------------------------------------------------------

    def _service(self, request: Request) -> ServiceSpec:
        name = request.path_params["service"]
        spec = SERVICES.get(name)
        if spec is None:
            raise EpicorError(404, f"Service {name} not found", API_EXCEPTION, reason="Not Found")
        return spec

    def _query(self, table: Table, request: Request, *, count_only: bool = False) -> Any:
        q = request.query_params
        stmt: Any = select(table)
        flt = self._filter_text(table, q.get("$filter"))
        if flt:
            parent = SPECS[table.name].parent
            if parent and self.options.child_set_filter == "parent":
                # Kinetic applies a child set's $filter to the parent type: the rows returned are
                # the children of the parents it matches, and a child-only column is a failed plan.
                p = TABLES[parent]
                matches = self._filtered(select(p), flt, plan_error=True)
                link = [p.c[k] == table.c[k] for k in SPECS[parent].keys]
                stmt = stmt.where(matches.where(*link).exists())
            else:
                stmt = self._filtered(stmt, flt, plan_error=False)
        if count_only:
            return select(func.count()).select_from(stmt.subquery())
        for part in filter(None, (q.get("$orderby") or "").split(",")):
            name, _, direction = part.strip().partition(" ")
            col = _column(table, name)
            stmt = stmt.order_by(col.desc() if direction.strip().lower() == "desc" else col.asc())
        top = self._page_size(q)
        skip = _int_param(q, "$skip", 0)
        return stmt.limit(top).offset(skip)

    def _page_size(self, q: Any) -> int:
        """Rows a page may hold: ``$top`` (or the default), never more than the server's cap."""
        top = _int_param(q, "$top", self.options.default_row_cap)
        for cap in (self.options.row_cap, self.options.max_page):
            if cap:
                if top > cap:
                    self.note("row_cap")
                top = min(top, cap)
        return top

    def _filtered(self, stmt: Any, flt: str, *, plan_error: bool) -> Any:
        try:
            return apply_odata_core(stmt, flt)
        except ODataException as exc:
            if plan_error:
                raise _query_plan_error().by("child_set_filter") from None
            raise EpicorError(400, f"Invalid $filter: {exc}", "Microsoft.OData.ODataException",
                              reason="Bad Request") from None  # fmt: skip

    def _filter_text(self, table: Table, flt: str | None) -> str | None:
        """Check a $filter's literals and fields as Kinetic would; return the text to parse."""
        if not flt:
            return flt
        o = self.options
        if "datetime'" in flt:
            if not o.accept_v1_datetime:
                raise EpicorError(400, "v1 datetime'…' literals are not accepted; use 2026-01-31T00:00:00Z",
                                  "Microsoft.OData.ODataException", reason="Bad Request")  # fmt: skip
            flt = re.sub(r"datetime'([^']*)'", r"\1", flt)
        unquoted = re.sub(r"'(?:[^']|'')*'", "''", flt)
        if o.query_plan_errors:
            for name in re.findall(r"\b[A-Za-z_]\w*\b", unquoted):
                # Display fields joined from another table (VendorNumVendorID, CustomerCustID):
                # Kinetic can read them but not plan a query on them, and says nothing useful.
                if name not in table.c and name in display_fields(table):
                    raise _query_plan_error().by("query_plan_errors")
        return _DATETIME.sub(lambda m: self._datetime_literal(m.group(0)), flt)

    def _datetime_literal(self, literal: str) -> str:
        zoned = literal.endswith("Z") or bool(re.search(r"[+-]\d{2}:\d{2}$", literal))
        form = self.options.datetime_literal
        if (form == "zoned" and not zoned) or (form == "naive" and zoned):
            want = "with a zone, e.g. 2026-01-01T00:00:00Z" if form == "zoned" else "without a zone"
            raise EpicorError(400, f"The literal '{literal}' is not a valid Edm.DateTimeOffset here; write it {want}",
                              "Microsoft.OData.ODataException", reason="Bad Request").by("datetime_literal")  # fmt: skip
        if not zoned:
            return literal
        # Stored values are UTC without an offset: compare on that footing.
        moment = datetime.fromisoformat(literal.replace("Z", "+00:00")).astimezone(UTC)
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")

    async def count(self, request: Request) -> Response:
        spec = self._service(request)
        table = TABLES[_entity_table(spec, request.path_params["name"])]
        with self.engine.connect() as conn:
            return Response(str(conn.scalar(self._query(table, request, count_only=True))), media_type="text/plain")

    async def service_document(self, request: Request) -> Response:
        """``GET {Service}/``: the entity sets, as an OData v4 service document."""
        spec = self._service(request)
        sets = [{"name": name, "kind": "EntitySet", "url": name} for name in spec.entity_sets]
        return JSONResponse({"@odata.context": f"{request.url}$metadata", "value": sets})

    def metadata(self, service: str) -> str:
        """``GET {Service}/$metadata``: CSDL with the row types, entity sets and declared methods.

        What a fit check reads to see the fields and method signatures an instance has. Method
        parameters carry their names (from kinetic_methods); their types are not emulated.
        """
        spec = SERVICES[service]
        edmx = ET.Element("edmx:Edmx", {"Version": "4.0", "xmlns:edmx": "http://docs.oasis-open.org/odata/ns/edmx"})
        schema = ET.SubElement(ET.SubElement(edmx, "edmx:DataServices"), "Schema",
                               {"Namespace": service, "xmlns": "http://docs.oasis-open.org/odata/ns/edm"})  # fmt: skip
        for table_name in spec.tables:
            table = TABLES[table_name]
            row = ET.SubElement(schema, "EntityType", {"Name": f"{table_name}Row"})
            key = ET.SubElement(row, "Key")
            for k in ("Company", *SPECS[table_name].keys):
                ET.SubElement(key, "PropertyRef", {"Name": k})
            for column in table.columns:
                ET.SubElement(row, "Property", {"Name": column.name, "Type": _edm_type(column.type)})
            ET.SubElement(row, "Property", {"Name": "RowMod", "Type": "Edm.String"})
        for method in sorted(self.served(service)):
            action = ET.SubElement(schema, "Action", {"Name": method, "IsBound": "false"})
            for param in declared(service, method) or ():
                ET.SubElement(action, "Parameter", {"Name": param, "Type": "Edm.Untyped"})
        container = ET.SubElement(schema, "EntityContainer", {"Name": service.replace(".", "_")})
        for set_name, table_name in spec.entity_sets.items():
            ET.SubElement(container, "EntitySet", {"Name": set_name, "EntityType": f"{service}.{table_name}Row"})
        return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(edmx, encoding="unicode")

    async def dispatch(self, request: Request) -> Response:
        spec = self._service(request)
        name = request.path_params["name"]
        if name == "$metadata" and request.method == "GET":
            return Response(self.metadata(request.path_params["service"]), media_type="application/xml")
        if name in spec.entity_sets:
            if request.method != "GET":
                raise EpicorError(405, "Write through the service methods", API_EXCEPTION, reason="Method Not Allowed")
            return self._entity_set(request, spec, TABLES[spec.entity_sets[name]])
        if request.method == "POST" and name in READ_METHODS and self.options.post_reads == "refuse":
            raise EpicorError(405, f"{name} by POST is not supported: use GET {request.path_params['service']}/{name}"
                              " with the parameters in the query string", API_EXCEPTION, reason="Method Not Allowed").by("post_reads")  # fmt: skip
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
        else:
            try:
                params = json.loads(await request.body() or b"{}")
            except ClientDisconnect:  # the caller went away (killed) before sending its body
                return Response(status_code=499)
            except json.JSONDecodeError:
                raise EpicorError(400, "Request body is not JSON", API_EXCEPTION) from None
        result = self._method(request.path_params["service"], spec, name, params)
        if result.pop(CUT, False):
            request.scope[CUT] = True
        return _json(result)

    def _entity_set(self, request: Request, spec: ServiceSpec, table: Table) -> Response:
        stmt = self._query(table, request)
        fields = [f.strip() for f in (request.query_params.get("$select") or "").split(",") if f.strip()]
        for name in fields:
            if name not in display_fields(table):
                _column(table, name)
        expand = [e.strip() for e in (request.query_params.get("$expand") or "").split(",") if e.strip()]
        for nav in expand:
            child = spec.entity_sets.get(nav)
            if child is None or SPECS[child].parent != table.name:
                raise EpicorError(400, f"Could not find a property named '{nav}' on type 'Erp.Tablesets.{table.name}Row'",
                                  "Microsoft.OData.ODataException", reason="Bad Request")  # fmt: skip
        with self.engine.connect() as conn:
            results = list(conn.execute(stmt))
            rows = self._rows(conn, table, results, fields)
            for nav in expand:  # the documented way to read a parent's lines: the parent set, expanded
                child_table = TABLES[spec.entity_sets[nav]]
                keys = SPECS[table.name].keys
                for row, result in zip(rows, results, strict=True):
                    found = conn.execute(
                        select(child_table).where(*(child_table.c[k] == result._mapping[k] for k in keys))
                    )
                    row[nav] = self._rows(conn, child_table, list(found))
            body: dict[str, Any] = {
                "@odata.context": f"{request.base_url}{request.path_params['instance']}/api/v2/odata/"
                f"{self.options.company}/{request.path_params['service']}/$metadata#{request.path_params['name']}",
                "value": rows,
            }
            want_count = request.query_params.get("$count") == "true"
            requested = _int_param(request.query_params, "$top", self.options.default_row_cap)  # before the cap
            capped = self.options.next_link and len(rows) < requested
            # The total costs a second query: only when asked for, or to decide on a nextLink.
            total = conn.scalar(self._query(table, request, count_only=True)) if want_count or capped else None
            if want_count:
                body["@odata.count"] = total
            skip = _int_param(request.query_params, "$skip", 0)
            if capped and skip + len(rows) < min(total or 0, skip + requested):
                params = dict(request.query_params)
                params["$skip"] = str(skip + len(rows))
                params["$top"] = str(requested - len(rows))
                body["@odata.nextLink"] = str(request.url.replace_query_params(**params))
        return _json(body)

    def _rows(
        self, conn: Connection, table: Table, results: list[Any], fields: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Serialise rows; the display fields (``display_fields``) in one lookup per joined table."""
        shown = display_fields(table)
        wanted = set(shown) if not fields else set(shown) & set(fields)
        vendors: dict[int, Any] = {}
        if wanted & set(VENDOR_DISPLAY) and results:
            nums = {r._mapping["VendorNum"] for r in results}
            query = select(VENDOR.c.VendorNum, VENDOR.c.VendorID, VENDOR.c.Name).where(VENDOR.c.VendorNum.in_(nums))
            vendors = {v.VendorNum: v for v in conn.execute(query)}
        # The cash receipt recipe reads an AR invoice's customer ID for GetCustomerInfo.
        customers: dict[int, Any] = {}
        if wanted & set(CUSTOMER_DISPLAY) and results:
            custs = {r._mapping["CustNum"] for r in results}
            query = select(CUSTOMER.c.CustNum, CUSTOMER.c.CustID, CUSTOMER.c.Name).where(CUSTOMER.c.CustNum.in_(custs))
            customers = {c.CustNum: c for c in conn.execute(query)}
        out = []
        for result in results:
            mapping = result._mapping
            row: dict[str, Any] = {}
            for k in fields or [c.name for c in table.columns]:
                if k in shown:
                    continue
                value = mapping[k]
                if isinstance(value, datetime):
                    value = value.isoformat(timespec="seconds")  # Kinetic: 2026-01-31T00:00:00, no offset
                elif value is not None and isinstance(table.c[k].type, Numeric):
                    dec = Decimal(value)
                    value = str(dec) if self.options.decimals_as_strings else float(dec)
                row[k] = value
            for name in sorted(wanted):
                if name in VENDOR_DISPLAY:
                    joined = vendors.get(mapping["VendorNum"])
                    row[name] = getattr(joined, VENDOR_DISPLAY[name]) if joined else ""
                else:
                    joined = customers.get(mapping["CustNum"])
                    row[name] = getattr(joined, CUSTOMER_DISPLAY[name]) if joined else ""
            row["RowMod"] = ""
            out.append(row)
        return out

    def _row(self, conn: Connection, table: Table, mapping: Any, fields: list[str] | None = None) -> dict[str, Any]:
        return self._rows(conn, table, [_Result(mapping)], fields)[0]

    # --- methods --------------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[ServiceSpec, dict[str, Any]], dict[str, Any]]]:
        return {
            "GetByID": self._get_by_id,
            "GetByVendID": self._get_by_vend_id,
            "GetList": self._get_list,
            "GetRows": self._get_rows,
            "Update": self._update,
            "UpdateMaster": self._update_master,
            "UpdateExt": self._update_ext,
            "DeleteByID": self._delete_by_id,
            "OnChangeVendor": self._on_change_vendor,
            "OnChangeManualPrint": self._on_change_manual_print,
            "ChangeVendorID": self._change_vendor_id,
            "ChangeInvoiceVendorAmt": self._change_invoice_amt,
            "ChangeInvoiceDateEx": self._change_invoice_date,
            "OnChangeInvoiceNum": self._on_change_invoice_num,
            "OnChangeDocTranAmt": self._on_change_doc_tran_amt,
            "GetCustomerInfo": self._get_customer_info,
            "GetDtlInvoiceInfo": self._get_dtl_invoice_info,
            "GetDtlTranAmtInfo": self._get_dtl_tran_amt_info,
        }

    def served(self, service: str) -> set[str]:
        """The methods this sandbox answers on ``service``."""
        spec = SERVICES[service]
        return set(spec.get_new) | {m for m in SERVICE_METHODS.get(service, COMMON_METHODS) if m in self._handlers()}

    def _method(self, service: str, spec: ServiceSpec, name: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.options.strict_parameters:
            if name not in self.served(service):
                raise EpicorError(404, f"Method {name} not found on {service}", API_EXCEPTION, reason="Not Found").by(
                    "strict_parameters"
                )
            lacking = missing(service, name, params)
            if lacking:
                raise EpicorError(400, f"Parameter {lacking[0]} is not found in the input object.", API_EXCEPTION).by(
                    "strict_parameters"
                )
        if name in spec.get_new:
            return self._get_new(spec, spec.get_new[name], params)
        handler = self._handlers().get(name)
        if handler is None:
            raise EpicorError(404, f"Method {name} not found", API_EXCEPTION, reason="Not Found")
        return handler(spec, params)

    def _get_new(self, spec: ServiceSpec, how: GetNew, params: dict[str, Any]) -> dict[str, Any]:
        given = params.get("ds")
        ds: dict[str, Any] = given if isinstance(given, dict) else {}
        table = TABLES[how.table]
        row = {**_defaults(table), "Company": self.options.company, "SysRevID": 0, "SysRowID": ZERO_GUID, "RowMod": "A"}
        for param, fieldname in how.params.items():
            if param in params:
                row[fieldname] = _coerce(table, fieldname, params[param])
        if how.table == "APTran":
            self._new_ap_tran(ds, row, params)
        if how.saves:
            with self.engine.begin() as conn:
                saved = self._apply(conn, how.table, row, user="manager")
            ds.setdefault(how.table, []).append(saved)
        else:
            ds.setdefault(how.table, []).append(row)
        return {"parameters": {"ds": ds}}

    def _new_ap_tran(self, ds: dict[str, Any], row: dict[str, Any], params: dict[str, Any]) -> None:
        """GetNewAPTran works on the payment in the ds it is given (evidence S1/S4)."""
        if "apTranNo" not in params:
            row["APTranNo"] = None  # an old-style call: the row gets the next sequence on save
        if not self.options.entry_rules:
            return
        heads = [h for h in ds.get("CheckHed") or [] if str(h.get("HeadNum")) == str(row.get("HeadNum"))]
        if not heads:
            raise _fail("APTran", "HeadNum", f"Payment {row.get('HeadNum')} is not in the ds: GetNewAPTran needs the "
                        "CheckHed it adds the line to (GetByID or CreateNewCheckHed first).").by("entry_rules")  # fmt: skip
        head = heads[0]
        row.update(VendorNum=head.get("VendorNum") or 0, CheckNum=head.get("CheckNum") or 0,
                   TranDate=head.get("CheckDate"), TranType="Pay")  # fmt: skip

    def _tableset(self, conn: Connection, spec: ServiceSpec, keys: dict[str, Any]) -> dict[str, Any]:
        primary = TABLES[spec.tables[0]]
        found = conn.execute(select(primary).where(*(primary.c[k] == v for k, v in keys.items()))).first()
        if found is None:
            what = ", ".join(f"{k} {v!r}" for k, v in keys.items())
            raise EpicorError(
                404, f"Record not found: {what}", "Ice.Common.RecordNotFoundException", reason="Not Found"
            )
        ds: dict[str, Any] = {spec.tables[0]: [self._row(conn, primary, found._mapping)]}
        pk = {k: found._mapping[k] for k in SPECS[spec.tables[0]].keys}
        for child in spec.tables[1:]:
            t = TABLES[child]
            rows = conn.execute(select(t).where(*(t.c[k] == v for k, v in pk.items() if k in t.c)))
            ds[child] = [self._row(conn, t, r._mapping) for r in rows]
        return ds

    def _key_params(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        table = TABLES[spec.tables[0]]
        keys = {}
        for param, fieldname in spec.get_by_id.items():
            if param not in params:
                raise EpicorError(400, f"Parameter {param} is required", API_EXCEPTION)
            keys[fieldname] = _coerce(table, fieldname, params[param])
        return keys

    def _get_by_id(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return {"returnObj": self._tableset(conn, spec, self._key_params(spec, params))}

    def _get_by_vend_id(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        if spec.tables[0] != "Vendor":
            raise EpicorError(404, "Method GetByVendID not found", API_EXCEPTION, reason="Not Found")
        with self.engine.connect() as conn:
            vendor_id = str(params.get("vendorID") or "")
            num = conn.scalar(select(VENDOR.c.VendorNum).where(self._natural(VENDOR.c.VendorID, vendor_id)))
            if num is None:
                raise EpicorError(404, f"Record not found: VendorID {vendor_id!r}", "Ice.Common.RecordNotFoundException",
                                  reason="Not Found")  # fmt: skip
            return {"returnObj": self._tableset(conn, spec, {"VendorNum": num})}

    def _get_list(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        """GetList: one page of list rows, as ``returnObj.<Table>List`` (the schema's List tableset)."""
        primary, rows, more = self._page(spec, params, str(params.get("whereClause") or ""))
        return {"returnObj": {f"{primary}List": rows}, "parameters": {"morePages": more}}

    def _get_rows(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        """GetRows: one page of the primary table with its lines: the whole tableset."""
        primary = spec.tables[0]
        where = str(params.get(f"whereClause{primary}") or params.get("whereClause") or "")
        _, rows, more = self._page(spec, params, where)
        tableset: dict[str, Any] = {primary: rows}
        keys = SPECS[primary].keys
        with self.engine.connect() as conn:
            for child in spec.tables[1:]:
                t = TABLES[child]
                parents = [or_(*(and_(*(t.c[k] == r[k] for k in keys)) for r in rows))] if rows else [false()]
                found = conn.execute(
                    select(t).where(*parents, *_where_clause(t, str(params.get(f"whereClause{child}") or "")))
                )
                tableset[child] = self._rows(conn, t, list(found))
        return {"returnObj": tableset, "parameters": {"morePages": more}}

    def _page(self, spec: ServiceSpec, params: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]], bool]:
        table = TABLES[spec.tables[0]]
        size = _int_value("pageSize", params.get("pageSize") or 0)  # 0: "no maximum" (schema)
        if self.options.row_cap:
            if not size or size > self.options.row_cap:
                self.note("row_cap")
            size = min(size, self.options.row_cap) if size else self.options.row_cap
        size = size or 100
        page = _int_value("absolutePage", params.get("absolutePage") or 0)
        stmt = select(table).where(*_where_clause(table, where))
        order = re.search(r"\bBY\s+(\w+)", where, re.IGNORECASE)
        stmt = stmt.order_by(_column(table, order.group(1)) if order else table.c[SPECS[table.name].keys[0]])
        with self.engine.connect() as conn:
            rows = [self._row(conn, table, r._mapping) for r in conn.execute(stmt.limit(size + 1).offset(page * size))]
        return table.name, rows[:size], len(rows) > size

    def _delete_by_id(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        keys = self._key_params(spec, params)
        with self.engine.begin() as conn:
            primary = TABLES[spec.tables[0]]
            if self.options.posted_read_only:
                self._refuse_posted(conn, primary.name, dict(keys), "D")
            if conn.execute(delete(primary).where(*(primary.c[k] == v for k, v in keys.items()))).rowcount != 1:
                raise EpicorError(404, "Record not found", "Ice.Common.RecordNotFoundException", reason="Not Found")
            for child in spec.tables[1:]:
                t = TABLES[child]
                conn.execute(delete(t).where(*(t.c[k] == v for k, v in keys.items() if k in t.c)))
        return {}

    def _ds(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds = params.get("ds")
        if not isinstance(ds, dict) or not any(isinstance(ds.get(t), list) for t in spec.tables):
            raise EpicorError(400, f"Parameter ds is required and must hold a {spec.tables[0]} table", API_EXCEPTION)
        return ds

    def _update(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds = self._ds(spec, params)
        out: dict[str, Any] = dict(ds)
        with self.engine.begin() as conn:
            for table in spec.tables:  # primary first: children may need its new key
                out[table] = [self._apply(conn, table, row, user="manager", whole=True) for row in ds.get(table) or []]
        # Commit happened; a "lost response" fault now hides the outcome from the client.
        if self.faults.lose_response_rate and self._rng.random() < self.faults.lose_response_rate:
            self.lost_responses += 1
            raise EpicorError(
                500, "The operation has timed out", "System.TimeoutException", reason="Internal Server Error"
            )
        return {"parameters": {"ds": out}}

    def _update_master(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        """Update, plus the out-parameters the schema lists for UpdateMaster."""
        result = self._update(spec, params)
        if spec.tables[0] == "CashHead":
            totals = dict.fromkeys(("opTotalMisc", "opTotalDiscount", "opTotalDeposit", "opTotalARAmount",
                                    "opTotalWithhold", "opTotalWriteOff"), 0.0)  # fmt: skip
            head = TABLES["CashHead"]
            with self.engine.connect() as conn:
                got = conn.execute(
                    select(func.coalesce(func.sum(head.c.TranAmt), 0), func.coalesce(func.sum(head.c.AppliedAmt), 0))
                    .where(head.c.GroupID == str(params.get("ipGroupID") or ""))
                ).one()  # fmt: skip
            received, applied = float(got[0]), float(got[1])
            totals.update(opTotalCashReceived=received, opTotalApplied=applied, opUnappliedBalance=received - applied)
            result["parameters"].update(totals, opUpdateRan=True)
        else:
            result["parameters"].update(grpTotalInvAmt=0.0, requiresUserInput=False, opMessage="",
                                        opMsgChkBankRef="", opChkRevMsg="", lEnableGenLegalNum=False,
                                        lUpdateRan=True, opDUAMsg="")  # fmt: skip
        return result

    def _update_ext(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds = self._ds(spec, params)
        keep_going = bool(params.get("continueProcessingOnError", True))
        errors: list[dict[str, Any]] = []
        out: dict[str, Any] = dict(ds)
        for table in spec.tables:
            saved = []
            for row in ds.get(table) or []:
                try:
                    with self.engine.begin() as conn:
                        if row.get("RowMod", "") == "":
                            row = {**row, "RowMod": "U" if self._exists(conn, table, row) else "A"}
                        saved.append(self._apply(conn, table, row, user="manager"))
                except EpicorError as exc:
                    errors.append({"TableName": table, "ErrorLevel": 3, "ErrorType": exc.error_type,
                                   "ErrorText": exc.message, "ErrorSysRowID": row.get("SysRowID", ZERO_GUID)})  # fmt: skip
                    if not keep_going:
                        break
            out[table] = saved
        return {"returnObj": {"BOUpdError": errors}, "parameters": {"ds": out, "errorsOccurred": bool(errors)}}

    def _exists(self, conn: Connection, table: str, row: dict[str, Any]) -> bool:
        t = TABLES[table]
        keys = SPECS[table].keys
        if any(row.get(k) in (None, "") for k in keys if k != "InvoiceRef"):  # 0 and false are key values
            return False
        return conn.execute(select(t).where(*(t.c[k] == _coerce(t, k, row.get(k)) for k in keys))).first() is not None

    # --- one row ---------------------------------------------------------------------------------

    def _apply(
        self, conn: Connection, table: str, row: dict[str, Any], *, user: str, whole: bool = False
    ) -> dict[str, Any]:
        t, spec = TABLES[table], SPECS[table]
        mod = row.get("RowMod", "")
        unknown = sorted(set(row) - {c.name for c in t.columns} - {"RowMod"} - set(display_fields(t)))
        if unknown:
            raise _fail(table, unknown[0], f"Unknown field {unknown[0]} on {table}")
        values = {k: _coerce(t, k, v) for k, v in row.items() if k in t.c}
        if mod == "":
            return row
        if mod not in ("A", "U", "D"):
            raise EpicorError(400, f"Invalid RowMod {mod!r}", API_EXCEPTION)
        if mod == "U" and whole and self.options.full_row_updates:
            # Kinetic's Update takes the row as read, changed; "Epicor will throw an error if some
            # of the fields are missing" (evidence S4/S5).
            absent = [c.name for c in t.columns if c.name not in row]
            if absent:
                raise _fail(table, absent[0], f"{table} row: field {absent[0]} is missing; an update sends the "
                            "whole row as read, with RowMod U.").by("full_row_updates")  # fmt: skip
        if table in ("APInvHed", "CheckHed") and not values.get("VendorNum") and row.get("VendorNumVendorID"):
            values["VendorNum"] = self._vendor_num(conn, str(row["VendorNumVendorID"]), table)
        if self.options.posted_read_only:
            self._refuse_posted(conn, table, values, mod)
        if self.options.entry_rules:
            self._entry_rules(table, values)

        def key_where() -> list[Any]:
            return [t.c[k] == values.get(k) for k in spec.keys]

        if mod == "D":
            conn.execute(delete(t).where(*key_where()))
            self._after_write(conn, table, values)
            return {**row, "RowMod": ""}
        if mod == "A":
            if spec.sequence and self._needs_sequence(table, values):
                values[spec.sequence] = self._next_in_sequence(conn, table, values)
            self._validate(conn, table, values, adding=True)
            if conn.execute(select(t).where(*self._natural_key_where(table, values))).first() is not None:
                what = ", ".join(f"{k} {values.get(k)!r}" for k in spec.keys)
                raise _duplicate(table, spec.keys[-1], f"Duplicate {table}: {what} already exists.", self.options)
            values["SysRowID"] = str(uuid.uuid4())
            self._stamp(table, values, user)
            conn.execute(insert(t).values(**{**_defaults(t), **values}))
            self._after_add(conn, table, values)
        else:
            current = conn.execute(select(t).where(*key_where())).first()
            if current is None:
                what = ", ".join(f"{k} {values.get(k)!r}" for k in spec.keys)
                raise EpicorError(
                    404, f"Record not found: {what}", "Ice.Common.RecordNotFoundException", reason="Not Found"
                )
            if values.get("SysRevID") and values["SysRevID"] != current.SysRevID:
                raise _fail(table, "SysRevID", "Row has been modified by another user and couldn't be updated.")
            self._validate(conn, table, values, adding=False)
            values.pop("SysRowID", None)
            self._stamp(table, values, user)
            conn.execute(update(t).where(*key_where()).values(**values))
        self._after_write(conn, table, values)
        saved = conn.execute(select(t).where(*key_where())).first()
        if saved is None:  # cannot happen inside the transaction; a clear error rather than a crash
            raise EpicorError(500, f"{table} row vanished while saving", API_EXCEPTION)
        return self._row(conn, t, saved._mapping)

    def _needs_sequence(self, table: str, values: dict[str, Any]) -> bool:
        seq = SPECS[table].sequence
        if table == "APTran":  # 0 is the number of every invoice payment line; None asks for one
            return values.get("APTranNo") is None
        return not values.get(seq or "")

    def _natural_key_where(self, table: str, values: dict[str, Any]) -> list[Any]:
        """The key compare for a duplicate check; natural keys follow ``case_insensitive_keys``."""
        t = TABLES[table]
        return [self._natural(t.c[k], values.get(k)) if k in NATURAL_KEYS else t.c[k] == values.get(k)
                for k in SPECS[table].keys]  # fmt: skip

    def _natural(self, column: Any, value: Any) -> Any:
        """``column == value``, or upper-cased and right-trimmed on both sides when so configured."""
        if self.options.case_insensitive_keys and value is not None:
            return func.upper(func.rtrim(column)) == str(value).rstrip().upper()
        return column == value

    def _refuse_posted(self, conn: Connection, table: str, values: dict[str, Any], mod: str) -> None:
        """Posted AP invoices, payments and cash receipts "can't be maintained" (schema text)."""
        head = table if table in POSTED_HEADS else SPECS[table].parent
        if head not in POSTED_HEADS or (head == table and mod == "A"):
            return
        t = TABLES[head]
        where = [t.c[k] == values.get(k) for k in SPECS[head].keys]
        if conn.scalar(select(t.c.Posted).where(*where)):
            what = ", ".join(f"{k} {values.get(k)!r}" for k in SPECS[head].keys)
            message = f"{POSTED_HEADS[head]} {what} has been posted and can't be maintained."
            raise _fail(table, "Posted", message).by("posted_read_only")

    def _entry_rules(self, table: str, values: dict[str, Any]) -> None:
        """What the entry screens' business logic does to a row on save."""
        if table == "CheckHed" and "ManualPrint" in values and not values.get("ManualPrint"):
            if values.get("CheckNum") or values.get("CheckDate") or values.get("BankAcctID"):
                self.note("entry_rules")
            # Only a manual check carries its number, date and bank account; otherwise the check
            # run assigns them and whatever was written is dropped.
            values.update(CheckNum=0, CheckDate=None, BankAcctID="")
        if table == "CheckHed":
            # The check amount is what its payment lines add up to (no public caller writes it, and
            # the schema has no change method for it): a written one is not kept.
            if values.pop("CheckAmt", None) or values.pop("DocCheckAmt", None):
                self.note("entry_rules")
            values.pop("DocCheckAmt", None)
        if table == "APInvHed":
            # InvoiceAmt accumulates the lines: a written one is not kept (recomputed after the save).
            if values.pop("InvoiceAmt", None):
                self.note("entry_rules")
            values.pop("DocInvoiceAmt", None)

    def _after_write(self, conn: Connection, table: str, values: dict[str, Any]) -> None:
        if self.options.entry_rules and table in ("APInvHed", "APInvDtl"):
            head, dtl = TABLES["APInvHed"], TABLES["APInvDtl"]
            match = [head.c.VendorNum == values.get("VendorNum"), head.c.InvoiceNum == values.get("InvoiceNum")]
            total = (
                select(func.coalesce(func.sum(dtl.c.ExtCost), 0))
                .where(dtl.c.VendorNum == head.c.VendorNum, dtl.c.InvoiceNum == head.c.InvoiceNum)
                .scalar_subquery()
            )
            conn.execute(update(head).where(*match).values(InvoiceAmt=total, DocInvoiceAmt=total))
            # An unposted invoice owes what its lines add up to.
            conn.execute(update(head).where(*match, head.c.Posted.is_(False)).values(InvoiceBal=total))
        if self.options.entry_rules and table in ("CheckHed", "APTran"):
            head, tran = TABLES["CheckHed"], TABLES["APTran"]
            lines = (tran.c.HeadNum == head.c.HeadNum, tran.c.Voided.is_(False))
            amount = select(func.coalesce(func.sum(tran.c.TranAmt), 0)).where(*lines).scalar_subquery()
            doc = select(func.coalesce(func.sum(tran.c.DocTranAmt), 0)).where(*lines).scalar_subquery()
            conn.execute(update(head).where(head.c.HeadNum == values.get("HeadNum")).values(CheckAmt=amount,
                                                                                             DocCheckAmt=doc))  # fmt: skip
        if self.options.entry_rules and table in ("CashHead", "CashDtl"):
            # What a receipt applies is the sum of its lines; the rest of the check is unapplied.
            head, dtl = TABLES["CashHead"], TABLES["CashDtl"]
            match = [head.c.GroupID == values.get("GroupID"), head.c.HeadNum == values.get("HeadNum")]
            applied = (
                select(func.coalesce(func.sum(dtl.c.TranAmt), 0))
                .where(dtl.c.GroupID == head.c.GroupID, dtl.c.HeadNum == head.c.HeadNum)
                .scalar_subquery()
            )
            conn.execute(update(head).where(*match).values(AppliedAmt=applied, UnAppliedAmt=head.c.TranAmt - applied))

    def _next_in_sequence(self, conn: Connection, table: str, values: dict[str, Any]) -> int:
        t, spec = TABLES[table], SPECS[table]
        if spec.sequence is None:
            raise ValueError(f"{table} has no sequence")
        scope = [
            t.c[k] == values.get(k)
            for k in spec.keys
            if k != spec.sequence and spec.keys.index(k) < spec.keys.index(spec.sequence)
        ]
        return int(conn.scalar(select(func.coalesce(func.max(t.c[spec.sequence]), 0)).where(*scope)) or 0) + 1

    def _vendor_num(self, conn: Connection, vendor_id: str, table: str) -> int:
        num = conn.scalar(select(VENDOR.c.VendorNum).where(self._natural(VENDOR.c.VendorID, vendor_id)))
        if num is None:
            raise _fail(table, "VendorNumVendorID", f"Vendor '{vendor_id}' is not valid.")
        return int(num)

    def _require(
        self, conn: Connection, table: str, where: dict[str, Any], failing: str, field_name: str, message: str
    ) -> Any:
        t = TABLES[table]
        found = conn.execute(select(t).where(*(t.c[k] == v for k, v in where.items()))).first()
        if found is None:
            raise _fail(failing, field_name, message)
        return found

    def _validate(self, conn: Connection, table: str, v: dict[str, Any], *, adding: bool) -> None:
        terms = v.get("TermsCode")
        if terms and terms not in TERMS_CODES:
            raise _fail(table, "TermsCode", f"Terms code '{terms}' is not valid.")
        if table == "Vendor":
            vid = v.get("VendorID")
            if adding and not vid:
                raise _fail(table, "VendorID", "Vendor ID is required.")
            if vid is not None:
                if len(str(vid)) > 8:
                    raise _fail(table, "VendorID", f"Vendor ID '{vid}' is longer than 8 characters.")
                clash = select(VENDOR.c.VendorNum).where(
                    self._natural(VENDOR.c.VendorID, vid), VENDOR.c.VendorNum != v.get("VendorNum")
                )
                if conn.execute(clash).first() is not None:
                    raise _duplicate(table, "VendorID", f"Duplicate vendor: Vendor ID '{vid}' already exists.",
                                     self.options)  # fmt: skip
            if adding and not v.get("Name"):
                raise _fail(table, "Name", "Name is required.")
        elif table == "APInvHed" and adding and not v.get("InvoiceNum"):
            raise _fail(table, "InvoiceNum", "Invoice number is required.")
        elif table == "APTran" and adding:
            head = self._require(conn, "CheckHed", {"HeadNum": v.get("HeadNum")}, table, "HeadNum",
                                 f"Payment {v.get('HeadNum')} is not valid.")  # fmt: skip
            v["VendorNum"] = v.get("VendorNum") or head.VendorNum
        if adding:
            # Every row a new row points at must exist (group, vendor, header, invoice).
            for parent, keys, field_name, message in REFERENCES.get(table, ()):
                self._require(
                    conn, parent, {k: v.get(k) for k in keys}, table, field_name, message.format_map(_OrNone(v))
                )

    def _after_add(self, conn: Connection, table: str, v: dict[str, Any]) -> None:
        """Accounting the recipes can observe: payments and receipts reduce invoice balances."""
        if table == "APInvHed" and not v.get("InvoiceBal"):
            amount = v.get("InvoiceAmt") or v.get("InvoiceVendorAmt") or 0
            conn.execute(update(TABLES["APInvHed"]).where(TABLES["APInvHed"].c.VendorNum == v["VendorNum"],
                                                          TABLES["APInvHed"].c.InvoiceNum == v["InvoiceNum"]).values(InvoiceBal=amount))  # fmt: skip
        elif table == "APTran":
            inv = TABLES["APInvHed"]
            conn.execute(update(inv).where(inv.c.VendorNum == v["VendorNum"], inv.c.InvoiceNum == v["InvoiceNum"])
                         .values(InvoiceBal=inv.c.InvoiceBal - (v.get("TranAmt") or 0) - (v.get("DiscAmt") or 0)))  # fmt: skip
        elif table == "CashDtl":
            inv = TABLES["InvcHead"]
            conn.execute(
                update(inv)
                .where(inv.c.InvoiceNum == v["InvoiceNum"])
                .values(InvoiceBal=inv.c.InvoiceBal - (v.get("TranAmt") or 0))
            )

    # --- Change… methods: echo the ds with derived fields filled --------------------------------

    def _rows_of(self, params: dict[str, Any], table: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        ds = params.get("ds")
        if not isinstance(ds, dict) or not ds.get(table):
            raise EpicorError(400, f"Parameter ds must hold a {table} row", API_EXCEPTION)
        return ds, [r for r in ds[table] if r.get("RowMod") in ("A", "U")] or ds[table][-1:]

    def _on_change_vendor(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "CheckHed")
        with self.engine.connect() as conn:
            vendor = conn.execute(
                select(VENDOR).where(self._natural(VENDOR.c.VendorID, str(params.get("pcVendorID"))))
            ).first()
        if vendor is None:
            raise _fail("CheckHed", "VendorNum", f"Vendor '{params.get('pcVendorID')}' is not valid.")
        for r in rows:
            r.update(VendorNum=vendor.VendorNum, Name=vendor.Name, VendorNumVendorID=vendor.VendorID)
        return {"parameters": {"ds": ds}}

    def _change_vendor_id(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "APInvHed")
        with self.engine.connect() as conn:
            num = self._vendor_num(conn, str(params.get("ProposedVendorID")), "APInvHed")
            vendor = conn.execute(select(VENDOR).where(VENDOR.c.VendorNum == num)).one()
        for r in rows:
            if not self.options.entry_rules:
                r.update(VendorNum=num, VendorNumVendorID=params.get("ProposedVendorID"),
                         TermsCode=r.get("TermsCode") or vendor.TermsCode)  # fmt: skip
                continue
            # The vendor brings its terms and currency; the due date follows the terms.
            r.update(VendorNum=num, VendorNumVendorID=vendor.VendorID, VendorNumName=vendor.Name,
                     TermsCode=vendor.TermsCode, CurrencyCode=vendor.CurrencyCode)  # fmt: skip
            if r.get("InvoiceDate"):
                r["DueDate"] = _due(str(r["InvoiceDate"]), vendor.TermsCode)
        # S1 ChangeVendorID_output: the ds and confirmMsg (a question for the user; none here).
        return {"parameters": {"ds": ds, "confirmMsg": ""}}

    def _change_invoice_amt(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "APInvHed")
        amount = float(_decimal("ProposedInvoiceVendorAmt", params.get("ProposedInvoiceVendorAmt")))
        for r in rows:
            # The entered control amount; InvoiceAmt itself accumulates the lines.
            r.update(InvoiceVendorAmt=amount, DocInvoiceVendorAmt=amount, ScrDocInvoiceVendorAmt=amount)
            if not self.options.entry_rules:
                r.update(InvoiceAmt=amount, DocInvoiceAmt=amount)
        return {"parameters": {"ds": ds}}

    def _change_invoice_date(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "APInvHed")
        raw = str(params.get("ProposedInvoiceDate") or "")[:10]
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise _fail("APInvHed", "InvoiceDate", f"Invoice date '{raw}' is not valid.") from None
        for r in rows:
            r.update(InvoiceDate=f"{day.isoformat()}T00:00:00", ApplyDate=f"{day.isoformat()}T00:00:00",
                     DueDate=_due(day.isoformat(), str(r.get("TermsCode") or "N30")))  # fmt: skip
        # S1 ChangeInvoiceDateEx_output: the ds and cMessageText (nothing to say here).
        return {"parameters": {"ds": ds, "cMessageText": ""}}

    def _on_change_invoice_num(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "APTran")
        invoice = str(params.get("pcInvoiceNum") or "")
        with self.engine.connect() as conn:
            for r in rows:
                vendor = r.get("VendorNum") or conn.scalar(
                    select(TABLES["CheckHed"].c.VendorNum).where(TABLES["CheckHed"].c.HeadNum == r.get("HeadNum"))
                )
                inv = conn.execute(select(TABLES["APInvHed"]).where(TABLES["APInvHed"].c.VendorNum == vendor,
                                                                     self._natural(TABLES["APInvHed"].c.InvoiceNum, invoice))).first()  # fmt: skip
                if inv is None:
                    raise _fail("APTran", "InvoiceNum", f"Invoice '{invoice}' is not valid for vendor {vendor}.")
                r.update(
                    InvoiceNum=inv.InvoiceNum,
                    VendorNum=vendor,
                    TranAmt=float(inv.InvoiceBal),
                    DocTranAmt=float(inv.InvoiceBal),
                )
        return {"parameters": {"ds": ds}}

    def _on_change_doc_tran_amt(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "APTran")
        amount = _decimal("pdDocTranAmt", params.get("pdDocTranAmt"))
        for r in rows:
            r.update(TranAmt=float(amount), DocTranAmt=float(amount))
        return {"parameters": {"ds": ds}}

    def _on_change_manual_print(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "CheckHed")
        for r in rows:
            r["ManualPrint"] = bool(params.get("plManualPrint"))
        return {"parameters": {"ds": ds}}

    # --- cash receipts: the info methods fill the row as the screen would ------------------------

    def _get_customer_info(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "CashHead")
        cust_id = str(params.get("custID") or "")
        with self.engine.connect() as conn:
            customer = conn.execute(select(CUSTOMER).where(self._natural(CUSTOMER.c.CustID, cust_id))).first()
        if customer is None:
            raise _fail("CashHead", "CustID", f"Customer '{cust_id}' is not valid.")
        for r in rows:
            r.update(CustNum=customer.CustNum, CustID=customer.CustID, CurrencyCode=customer.CurrencyCode)
        return {"parameters": {"ds": ds}}

    def _get_dtl_invoice_info(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "CashDtl")
        number = _int_value("invoiceNum", params.get("invoiceNum"))
        heads = {(h.get("GroupID"), h.get("HeadNum")): h for h in ds.get("CashHead") or []}
        with self.engine.connect() as conn:
            inv = conn.execute(select(TABLES["InvcHead"]).where(TABLES["InvcHead"].c.InvoiceNum == number)).first()
        if inv is None:
            raise _fail("CashDtl", "InvoiceNum", f"Invoice {number} is not valid.")
        for r in rows:
            head = heads.get((r.get("GroupID"), r.get("HeadNum")))
            if head is not None and head.get("CustNum") and head["CustNum"] != inv.CustNum:
                raise _fail("CashDtl", "InvoiceNum", f"Invoice {number} is not for customer {head['CustNum']}.")
            balance = float(inv.InvoiceBal)
            r.update(InvoiceNum=number, CustNum=inv.CustNum, InvoiceBal=balance)
        return {"parameters": {"ds": ds}}

    def _get_dtl_tran_amt_info(self, spec: ServiceSpec, params: dict[str, Any]) -> dict[str, Any]:
        ds, rows = self._rows_of(params, "CashDtl")
        amount = float(_decimal("docTranAmt", params.get("docTranAmt")))
        for r in rows:
            r.update(DocTranAmt=amount, TranAmt=amount)
        return {"parameters": {"ds": ds}}

    # --- admin ----------------------------------------------------------------------------------

    def mark_posted(self, table: str, keys: dict[str, Any], posted: bool = True) -> int:
        """Set Posted on the APInvHed/CheckHed/CashHead rows matching ``keys``; the count changed."""
        if table not in POSTED_HEADS:
            raise ValueError(f"only {', '.join(POSTED_HEADS)} rows are posted, not {table}")
        t = TABLES[table]
        where = [_column(t, k) == _coerce(t, k, v) for k, v in keys.items()]
        with self.engine.begin() as conn:
            return int(conn.execute(update(t).where(*where).values(Posted=posted)).rowcount)

    async def posted_endpoint(self, request: Request) -> Response:
        """``POST /_sandbox/posted {"table": "CheckHed", "keys": {"HeadNum": 3}, "posted": true}``."""
        body = json.loads(await request.body() or b"{}")
        try:
            changed = self.mark_posted(
                str(body.get("table")), dict(body.get("keys") or {}), bool(body.get("posted", True))
            )
        except (ValueError, EpicorError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"changed": changed})

    async def faults_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            changes = json.loads(await request.body() or b"{}")
            for key, value in changes.items():
                if not hasattr(self.faults, key):
                    return JSONResponse({"error": f"unknown fault {key}"}, status_code=400)
                setattr(self.faults, key, value)
            if "seed" in changes:
                self._rng = random.Random(self.faults.seed)
        return JSONResponse(asdict(self.faults))

    async def options_endpoint(self, request: Request) -> Response:
        """Change behaviour at run time (token lifetime, row cap, 401/403, decimals…)."""
        if request.method == "POST":
            changes = json.loads(await request.body() or b"{}")
            for key, value in changes.items():
                if not hasattr(self.options, key) or key in ("api_key", "users", "database"):
                    return JSONResponse({"error": f"option {key} cannot be changed at run time"}, status_code=400)
                try:
                    check_choice(key, value)
                except ValueError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
                setattr(self.options, key, value)
        public = {k: v for k, v in asdict(self.options).items() if k not in ("api_key", "users")}
        return JSONResponse(public)

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse({"calls": self.calls, "lost_responses": self.lost_responses, "dropped": self.dropped,
                             "strict_refusals": self.strict_refusals})  # fmt: skip


def _with_retry_after(error: EpicorError, faults: Faults) -> Response:
    response = error.response()
    response.headers["Retry-After"] = (
        str(int(faults.retry_after_s)) if faults.retry_after_s >= 1 else f"{faults.retry_after_s}"
    )
    return response


CUT = "_sandbox_cut_connection"


class _CuttingMiddleware:
    """Cuts connections: before anything is done (``drop_rate``), or after a write committed
    (``lose_response_by: cut``): the response starts, then the connection closes mid-body, so
    the client sees a broken response rather than an HTTP error."""

    def __init__(self, app: Any, sandbox: KineticSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        faults = self.sandbox.faults
        if faults.drop_rate and self.sandbox._rng.random() < faults.drop_rate:
            self.sandbox.dropped += 1
            await _cut(send)

        async def watching_send(message: Any) -> None:
            if message["type"] == "http.response.start" and scope.get(CUT):
                await _cut(send)
            await send(message)

        await self.app(scope, receive, watching_send)


async def _cut(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
    await send({"type": "http.response.body", "body": b'{"parameters": {', "more_body": True})
    raise ConnectionAbortedError("sandbox fault: connection cut")


# table -> the rows a new row must point at: (parent table, key fields, field to blame, message)
REFERENCES: dict[str, list[tuple[str, tuple[str, ...], str, str]]] = {
    "APInvHed": [("APInvGrp", ("GroupID",), "GroupID", "Group '{GroupID}' is not valid."),
                 ("Vendor", ("VendorNum",), "VendorNum", "Vendor {VendorNum} is not valid.")],
    "APInvDtl": [("APInvHed", ("VendorNum", "InvoiceNum"), "InvoiceNum", "Invoice '{InvoiceNum}' is not valid.")],
    "CheckHed": [("APChkGrp", ("GroupID",), "GroupID", "Payment group '{GroupID}' is not valid.")],
    "APTran": [("APInvHed", ("VendorNum", "InvoiceNum"), "InvoiceNum",
                "Invoice '{InvoiceNum}' is not valid for vendor {VendorNum}.")],
    "CashHead": [("CashGrp", ("GroupID",), "GroupID", "Cash group '{GroupID}' is not valid.")],
    "CashDtl": [("CashHead", ("GroupID", "HeadNum"), "HeadNum", "Cash receipt {HeadNum} is not valid."),
                ("InvcHead", ("InvoiceNum",), "InvoiceNum", "Invoice {InvoiceNum} is not valid.")],
}  # fmt: skip


class _OrNone(dict[str, Any]):
    """For messages about rows that lack the field: it reads as None."""

    def __missing__(self, key: str) -> None:
        return None


class _Result:
    """Adapts a mapping to the ``._mapping`` shape of a SQLAlchemy row."""

    def __init__(self, mapping: Any) -> None:
        self._mapping = mapping


_DATETIME = re.compile(r"(?<![\w'])\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?(?![\w'])")


def _query_plan_error() -> EpicorError:
    """Kinetic's answer to a query plan it refuses: a generic 500 that names no field."""
    return EpicorError(500, "An error occurred while processing your request.", API_EXCEPTION,
                       reason="Internal Server Error")  # fmt: skip


def _duplicate(table: str, field_name: str, message: str, options: SandboxOptions) -> EpicorError:
    if options.duplicate_status == 409:
        return EpicorError(409, message, "Ice.Common.DuplicateRecordException",
                           [{"Message": message, "Type": "Error", "Table": table, "Field": field_name}],
                           reason="Conflict").by("duplicate_status")  # fmt: skip
    return _fail(table, field_name, message, 400)


def _fail(table: str, field_name: str, message: str, status: int = 400) -> EpicorError:
    return EpicorError(status, message, "Ice.Common.BusinessObjectException",
                       [{"Message": message, "Type": "Error", "Table": table, "Field": field_name}])  # fmt: skip


def _defaults(table: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in table.columns:
        if c.default is not None and getattr(c.default, "is_scalar", False):
            out[c.name] = c.default.arg  # type: ignore[attr-defined]
        elif isinstance(c.type, Boolean):
            out[c.name] = False
        elif isinstance(c.type, (Integer, Numeric)):
            out[c.name] = 0
        elif isinstance(c.type, String) and c.name not in ("ChangeDate",) and not c.name.endswith("Date"):
            out[c.name] = ""
        else:
            out[c.name] = None
    return out


def _coerce(table: Table, name: str, value: Any) -> Any:
    """JSON values to column types (decimals arrive as numbers or strings)."""
    if value is None or name not in table.c:
        return value
    kind = table.c[name].type
    try:
        if isinstance(kind, Boolean):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        if isinstance(kind, Integer):
            return int(value)
        if isinstance(kind, Numeric):
            return Decimal(str(value))
        if isinstance(kind, DateTime):
            if isinstance(value, datetime):
                return value.replace(tzinfo=None)
            if isinstance(value, date):
                return datetime.combine(value, datetime.min.time())
            return datetime.fromisoformat(str(value).removesuffix("Z")).replace(tzinfo=None) if value else None
    except (ValueError, ArithmeticError):
        raise _fail(table.name, name, f"{name} {value!r} is not a valid number.") from None
    return value


def _due(invoice_date: str, terms: str) -> str:
    """The due date the terms give an invoice dated ``invoice_date``."""
    day = date.fromisoformat(invoice_date[:10])
    return f"{(day + timedelta(days=TERMS_CODES.get(terms, 30))).isoformat()}T00:00:00"


def _int_value(name: str, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise EpicorError(400, f"Parameter {name} must be an integer", API_EXCEPTION) from None


def _edm_type(kind: Any) -> str:
    if isinstance(kind, Boolean):
        return "Edm.Boolean"
    if isinstance(kind, Integer):
        return "Edm.Int32"
    if isinstance(kind, Numeric):
        return "Edm.Decimal"
    if isinstance(kind, DateTime):
        return "Edm.DateTimeOffset"
    return "Edm.String"


def _decimal(name: str, value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise EpicorError(400, f"Parameter {name} must be a number", API_EXCEPTION) from None


def _entity_table(spec: ServiceSpec, name: str) -> str:
    if name not in spec.entity_sets:
        raise EpicorError(404, f"Entity set {name} not found", API_EXCEPTION, reason="Not Found")
    return spec.entity_sets[name]


def _column(table: Table, name: str) -> Any:
    if name not in table.c:
        raise EpicorError(400, f"Could not find a property named '{name}' on type 'Erp.Tablesets.{table.name}Row'",
                          "Microsoft.OData.ODataException", reason="Bad Request")  # fmt: skip
    return table.c[name]


_CONDITION = re.compile(r"^\s*(\w+)\s*(=|<>|>=|<=|>|<)\s*('(?:[^']|'')*'|-?[\d.]+|true|false)\s*$", re.IGNORECASE)


def _where_clause(table: Table, where: str) -> list[Any]:
    """The minimal Epicor whereClause: ``Field = 'x' and SysRevID > 5 BY SysRevID``."""
    text = re.split(r"\bBY\b", where, maxsplit=1, flags=re.IGNORECASE)[0].strip()
    if not text:
        return []
    out = []
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        m = _CONDITION.match(part)
        if not m:
            raise EpicorError(400, f"Invalid whereClause near {part.strip()!r}", API_EXCEPTION)
        col = _column(table, m.group(1))
        raw = m.group(3)
        value: Any = (
            raw[1:-1].replace("''", "'")
            if raw.startswith("'")
            else (raw.lower() == "true" if raw.lower() in ("true", "false") else Decimal(raw))
        )
        op = m.group(2)
        out.append(
            {
                "=": col == value,
                "<>": col != value,
                ">": col > value,
                ">=": col >= value,
                "<": col < value,
                "<=": col <= value,
            }[op]
        )
    return [and_(*out)]


def _int_param(q: Any, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise EpicorError(
            400, f"Invalid value for {name}: {raw!r}", "Microsoft.OData.ODataException", reason="Bad Request"
        )
    return int(raw)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, default=_default), media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
