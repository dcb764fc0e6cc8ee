"""A Kinetic sandbox: an HTTP emulator of the Epicor Kinetic REST v2 surface ml-connector calls.

Implemented so far: authentication (``x-api-key`` plus Basic or a Bearer token from
``TokenResource.svc``), OData queries on ``Erp.BO.VendorSvc/Vendors`` (``$filter`` parsed by the
odata-query grammar, ``$select``, ``$orderby``, ``$top``, ``$skip``, ``$count``, a default row
cap), the VendorSvc methods (``GetNewVendor``, ``GetByID``, ``GetByVendID``, ``Update``,
``DeleteByID``), Epicor-shaped error bodies, ``SysRevID`` bumped on every write, and fault knobs
under ``/_sandbox/`` (latency, 429/503 with ``Retry-After``, commit-then-lose-the-response).
State lives in an in-memory SQLite database. Behaviours the reference marks uncertain are
options (``SandboxOptions``).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from odata_query.exceptions import ODataException
from odata_query.sqlalchemy.shorthand import apply_odata_core
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
TERMS_CODES = ("N30", "N45", "N60", "2/10N30", "COD")

metadata = MetaData()
VENDOR = Table(
    "Vendor",
    metadata,
    Column("Company", String(8), nullable=False),
    Column("VendorNum", Integer, primary_key=True),
    Column("VendorID", String(8), nullable=False),
    Column("Name", String(50), nullable=False, default=""),
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
    Column("SysRevID", Integer, nullable=False),
    Column("SysRowID", String(36), nullable=False),
)
VENDOR_FIELDS = [c.name for c in VENDOR.columns]


@dataclass
class SandboxOptions:
    """Behaviour switches, including everything the reference marks uncertain."""

    instance: str = "EpicorSandbox"
    company: str = "EPIC06"
    api_key: str = "sandbox-api-key"
    users: dict[str, str] = field(default_factory=lambda: {"manager": "manager-password"})
    token_lifetime_s: int = 3600
    default_row_cap: int = 100  # when $top is absent
    bad_api_key_status: int = 401  # some instances answer 403
    duplicate_status: int = 400  # some say 409
    decimals_as_strings: bool = False


@dataclass
class Faults:
    """Fault knobs, settable at start and at run time through ``POST /_sandbox/faults``."""

    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_503: float = 0.0
    retry_after_s: float = 1.0
    lose_response_rate: float = 0.0  # writes commit, then the client gets a 500
    seed: int | None = None


class EpicorError(Exception):
    def __init__(self, status: int, message: str, error_type: str = "Ice.Common.BusinessObjectException",
                 details: list[dict[str, str]] | None = None, reason: str = "REST API Exception") -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.error_type = status, message, error_type
        self.details, self.reason = details or [], reason

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
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (user, expires at, monotonic)
        self.calls: dict[str, int] = {}
        self.lost_responses = 0
        self.app = self._build_app()

    # --- state helpers --------------------------------------------------------------------------

    def next_sysrev(self) -> int:
        with self._lock:
            self._sysrev += 1
            return self._sysrev

    def seed(self, vendors: int = 12) -> None:
        """A small, realistic company: vendors with terms and addresses."""
        names = ["Northwind Supply", "Contoso Metals", "Fabrikam Plastics", "Adventure Freight",
                 "Litware Packaging", "Tailspin Components", "Wingtip Fasteners", "Proseware Tools",
                 "Lucerne Chemicals", "Margie's Logistics", "Coho Electric", "O'Brien & Sons"]  # fmt: skip
        rows = []
        for i in range(vendors):
            name = names[i % len(names)] + ("" if i < len(names) else f" {i}")
            rows.append({"VendorID": f"V{i + 1:04d}", "Name": name, "City": "Chicago", "State": "IL",
                         "Country": "USA", "TermsCode": TERMS_CODES[i % 3], "CreditLimit_c": Decimal(5000 + 250 * i)})  # fmt: skip
        self.insert_vendors(rows)

    def insert_vendors(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            start = conn.scalar(select(func.coalesce(func.max(VENDOR.c.VendorNum), 0))) or 0
            for n, row in enumerate(rows, start=1):
                full = {**_vendor_defaults(self.options.company), **row}
                full.update(VendorNum=start + n, SysRevID=self.next_sysrev(), SysRowID=str(uuid.uuid4()))
                conn.execute(insert(VENDOR).values(**full))

    def generate_vendors(self, count: int) -> None:
        """``count`` more vendors for benchmarks (V-prefixed ids continue the sequence)."""
        with self.engine.connect() as conn:
            have = conn.scalar(select(func.count()).select_from(VENDOR)) or 0
        self.insert_vendors(
            [{"VendorID": f"G{have + i:07d}"[:8], "Name": f"Generated Vendor {have + i}", "TermsCode": "N30"}
             for i in range(count)]
        )  # fmt: skip

    # --- HTTP plumbing --------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        base = "/{instance}/api/v2/odata/{company}"
        routes = [
            Route("/{instance}/TokenResource.svc/", self._guard(self.token, auth=False), methods=["POST"]),
            Route(base + "/Erp.BO.VendorSvc/Vendors", self._guard(self.vendors_query), methods=["GET"]),
            Route(base + "/Erp.BO.VendorSvc/Vendors/$count", self._guard(self.vendors_count), methods=["GET"]),
            Route(base + "/Erp.BO.VendorSvc/{method}", self._guard(self.vendor_method), methods=["GET", "POST"]),
            Route("/_sandbox/faults", self.faults_endpoint, methods=["GET", "POST"]),
            Route("/_sandbox/stats", self.stats_endpoint, methods=["GET"]),
        ]
        return Starlette(routes=routes)

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
                return await handler(request)
            except EpicorError as exc:
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

    def _query(self, request: Request, *, count_only: bool = False) -> Any:
        q = request.query_params
        stmt: Any = select(VENDOR)
        flt = q.get("$filter")
        if flt:
            try:
                stmt = apply_odata_core(stmt, flt)
            except ODataException as exc:
                raise EpicorError(400, f"Invalid $filter: {exc}", "Microsoft.OData.ODataException",
                                  reason="Bad Request") from None  # fmt: skip
        if count_only:
            return select(func.count()).select_from(stmt.subquery())
        for part in filter(None, (q.get("$orderby") or "").split(",")):
            name, _, direction = part.strip().partition(" ")
            col = _column(name)
            stmt = stmt.order_by(col.desc() if direction.strip().lower() == "desc" else col.asc())
        top = _int_param(q, "$top", self.options.default_row_cap)
        skip = _int_param(q, "$skip", 0)
        return stmt.limit(top).offset(skip)

    async def vendors_query(self, request: Request) -> Response:
        stmt = self._query(request)
        select_fields = [f.strip() for f in (request.query_params.get("$select") or "").split(",") if f.strip()]
        for name in select_fields:
            _column(name)
        with self.engine.connect() as conn:
            rows = [self._row(r._mapping, select_fields) for r in conn.execute(stmt)]
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}{request.path_params['instance']}/api/v2/odata/"
            f"{self.options.company}/Erp.BO.VendorSvc/$metadata#Vendors",
            "value": rows,
        }
        if request.query_params.get("$count") == "true":
            with self.engine.connect() as conn:
                body["@odata.count"] = conn.scalar(self._query(request, count_only=True))
        return _json(body)

    async def vendors_count(self, request: Request) -> Response:
        with self.engine.connect() as conn:
            return Response(str(conn.scalar(self._query(request, count_only=True))), media_type="text/plain")

    def _row(self, mapping: Any, fields: list[str] | None = None) -> dict[str, Any]:
        row = {k: mapping[k] for k in (fields or VENDOR_FIELDS)}
        if "CreditLimit_c" in row and row["CreditLimit_c"] is not None:
            value = Decimal(row["CreditLimit_c"]).quantize(Decimal("0.01"))
            row["CreditLimit_c"] = str(value) if self.options.decimals_as_strings else float(value)
        row.setdefault("RowMod", "")
        return row

    # --- methods --------------------------------------------------------------------------------

    async def vendor_method(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
        else:
            try:
                params = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                raise EpicorError(400, "Request body is not JSON", API_EXCEPTION) from None
        handler = {
            "GetNewVendor": self.get_new_vendor,
            "GetByID": self.get_by_id,
            "GetByVendID": self.get_by_vend_id,
            "Update": self.update_vendors,
            "DeleteByID": self.delete_by_id,
        }.get(method)
        if handler is None:
            raise EpicorError(404, f"Method {method} not found on Erp.BO.VendorSvc", API_EXCEPTION, reason="Not Found")
        return _json(handler(params))

    def get_new_vendor(self, params: dict[str, Any]) -> dict[str, Any]:
        ds = params.get("ds") or {}
        row = {**_vendor_defaults(self.options.company), "VendorNum": 0, "VendorID": "", "SysRevID": 0,
               "SysRowID": ZERO_GUID, "RowMod": "A"}  # fmt: skip
        row["CreditLimit_c"] = 0.0
        ds.setdefault("Vendor", []).append(row)
        return {"parameters": {"ds": ds}}

    def _tableset(self, conn: Connection, where: Any, what: str) -> dict[str, Any]:
        found = conn.execute(select(VENDOR).where(where)).first()
        if found is None:
            raise EpicorError(
                404, f"Record not found: {what}", "Ice.Common.RecordNotFoundException", reason="Not Found"
            )
        return {"returnObj": {"Vendor": [self._row(found._mapping)]}}

    def get_by_id(self, params: dict[str, Any]) -> dict[str, Any]:
        num = _int(params.get("vendorNum"), "vendorNum")
        with self.engine.connect() as conn:
            return self._tableset(conn, VENDOR.c.VendorNum == num, f"VendorNum {num}")

    def get_by_vend_id(self, params: dict[str, Any]) -> dict[str, Any]:
        vid = str(params.get("vendorID") or "")
        with self.engine.connect() as conn:
            return self._tableset(conn, VENDOR.c.VendorID == vid, f"VendorID {vid!r}")

    def delete_by_id(self, params: dict[str, Any]) -> dict[str, Any]:
        num = _int(params.get("vendorNum"), "vendorNum")
        with self.engine.begin() as conn:
            if conn.execute(delete(VENDOR).where(VENDOR.c.VendorNum == num)).rowcount != 1:
                raise EpicorError(
                    404, f"Record not found: VendorNum {num}", "Ice.Common.RecordNotFoundException", reason="Not Found"
                )
        return {}

    def update_vendors(self, params: dict[str, Any]) -> dict[str, Any]:
        ds = params.get("ds")
        if not isinstance(ds, dict) or not isinstance(ds.get("Vendor"), list):
            raise EpicorError(400, "Parameter ds is required and must hold a Vendor table", API_EXCEPTION)
        out = []
        with self.engine.begin() as conn:
            for row in ds["Vendor"]:
                out.append(self._apply(conn, row))
        # Commit happened; a "lost response" fault now hides the outcome from the client.
        if self.faults.lose_response_rate and self._rng.random() < self.faults.lose_response_rate:
            self.lost_responses += 1
            raise EpicorError(
                500, "The operation has timed out", "System.TimeoutException", reason="Internal Server Error"
            )
        return {"parameters": {"ds": {**ds, "Vendor": out}}}

    def _apply(self, conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
        mod = row.get("RowMod", "")
        unknown = sorted(set(row) - set(VENDOR_FIELDS) - {"RowMod"})
        if unknown:
            raise EpicorError(400, f"Unknown field {unknown[0]} on Vendor", API_EXCEPTION,
                              [{"Message": "Unknown field", "Type": "Error", "Table": "Vendor", "Field": unknown[0]}])  # fmt: skip
        values = {k: v for k, v in row.items() if k in VENDOR_FIELDS}
        if mod in ("A", "U"):
            self._validate(conn, values, mod)
        if mod == "A":
            values["VendorNum"] = (conn.scalar(select(func.coalesce(func.max(VENDOR.c.VendorNum), 0))) or 0) + 1
            values["SysRowID"] = str(uuid.uuid4())
            values["SysRevID"] = self.next_sysrev()
            values["Company"] = self.options.company
            conn.execute(insert(VENDOR).values(**values))
        elif mod == "U":
            num = _int(values.get("VendorNum"), "VendorNum")
            current = conn.execute(select(VENDOR).where(VENDOR.c.VendorNum == num)).first()
            if current is None:
                raise EpicorError(
                    404, f"Record not found: VendorNum {num}", "Ice.Common.RecordNotFoundException", reason="Not Found"
                )
            if "SysRevID" in values and values["SysRevID"] != current.SysRevID:
                raise EpicorError(400, "Row has been modified by another user and couldn't be updated.",
                                  "Ice.Common.BusinessObjectException",
                                  [{"Message": "Row modified", "Type": "Error", "Table": "Vendor", "Field": "SysRevID"}])  # fmt: skip
            values["SysRevID"] = self.next_sysrev()
            values.pop("SysRowID", None)
            conn.execute(update(VENDOR).where(VENDOR.c.VendorNum == num).values(**values))
        elif mod == "D":
            num = _int(values.get("VendorNum"), "VendorNum")
            conn.execute(delete(VENDOR).where(VENDOR.c.VendorNum == num))
            return {**row, "RowMod": ""}
        elif mod != "":
            raise EpicorError(400, f"Invalid RowMod {mod!r}", API_EXCEPTION)
        else:
            return row
        saved = conn.execute(select(VENDOR).where(VENDOR.c.VendorNum == values.get("VendorNum"))).first()
        assert saved is not None
        return self._row(saved._mapping)

    def _validate(self, conn: Connection, values: dict[str, Any], mod: str) -> None:
        def fail(message: str, field_name: str, status: int = 400) -> EpicorError:
            return EpicorError(status, message, "Ice.Common.BusinessObjectException",
                               [{"Message": message, "Type": "Error", "Table": "Vendor", "Field": field_name}])  # fmt: skip

        vid = values.get("VendorID")
        if mod == "A" and not vid:
            raise fail("Vendor ID is required.", "VendorID")
        if vid is not None:
            if len(str(vid)) > 8:
                raise fail(f"Vendor ID '{vid}' is longer than 8 characters.", "VendorID")
            clash = select(VENDOR.c.VendorNum).where(VENDOR.c.VendorID == vid)
            if mod == "U":
                clash = clash.where(VENDOR.c.VendorNum != values.get("VendorNum"))
            if conn.execute(clash).first() is not None:
                raise fail(f"Vendor ID '{vid}' already exists.", "VendorID", self.options.duplicate_status)
        terms = values.get("TermsCode")
        if terms and terms not in TERMS_CODES:
            raise fail(f"Terms code '{terms}' is not valid.", "TermsCode")
        if mod == "A" and not values.get("Name"):
            raise fail("Name is required.", "Name")
        if "CreditLimit_c" in values and values["CreditLimit_c"] is not None:
            try:
                values["CreditLimit_c"] = Decimal(str(values["CreditLimit_c"]))
            except ArithmeticError:
                raise fail("CreditLimit_c is not a number.", "CreditLimit_c") from None

    # --- admin ----------------------------------------------------------------------------------

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

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse({"calls": self.calls, "lost_responses": self.lost_responses})


def _with_retry_after(error: EpicorError, faults: Faults) -> Response:
    response = error.response()
    response.headers["Retry-After"] = (
        str(int(faults.retry_after_s)) if faults.retry_after_s >= 1 else f"{faults.retry_after_s}"
    )
    return response


def _vendor_defaults(company: str) -> dict[str, Any]:
    return {"Company": company, "Name": "", "Address1": "", "City": "", "State": "", "ZIP": "", "Country": "",
            "TermsCode": "", "PhoneNum": "", "EMailAddress": "", "CurrencyCode": "USD", "GroupCode": "",
            "TaxPayerID": "", "Inactive": False, "PayHold": False, "Approved": True}  # fmt: skip


def _column(name: str) -> Any:
    if name not in VENDOR.c:
        raise EpicorError(400, f"Could not find a property named '{name}' on type 'Erp.Tablesets.VendorRow'",
                          "Microsoft.OData.ODataException", reason="Bad Request")  # fmt: skip
    return VENDOR.c[name]


def _int_param(q: Any, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise EpicorError(
            400, f"Invalid value for {name}: {raw!r}", "Microsoft.OData.ODataException", reason="Bad Request"
        )
    return int(raw)


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise EpicorError(400, f"Parameter {name} must be an integer", API_EXCEPTION) from None


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, default=_default), media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
