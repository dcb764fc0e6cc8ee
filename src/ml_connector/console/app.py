"""The operator console: server-rendered pages over the store's read API, and audited actions.

Pages read only through ``store.views.Views`` (no SQL here or in templates). Every response gets
a strict CSP (no inline script or style); Jinja2 autoescapes everything, and a final filter
blanks any connection's host, user or secret that reached a page through an error text.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import FlowsFile, load_flows
from ..errors import MLConnectorError, NotFoundError, UsageError
from ..home import Home
from ..store import Store
from ..store.flow_settings import FlowSettings
from ..store.views import RUN_OUTCOMES, Views
from ..users import User, Users
from . import actions as act
from .security import HostCheck, LoginLimiter, Nonces, SecurityHeaders, new_token, same_token, session_secret
from .settings import ConsoleSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SINCE = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SAFE_NEXT = re.compile(r"/[A-Za-z0-9/_.~%?=&+:,;@-]*")
SCRUB_MIN = 4  # shorter values (a port, "sa") would blank unrelated text


@dataclass
class Console:
    """Everything the pages need; built once per process (no module globals)."""

    home: Home
    store: Store
    settings: ConsoleSettings
    scheduler: Any = None
    users: Users = field(init=False)
    views: Views = field(init=False)
    limiter: LoginLimiter = field(init=False)
    nonces: Nonces = field(default_factory=Nonces)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _scrub: tuple[float, list[str]] = (0.0, [])
    _flows: tuple[tuple[int, int] | None, FlowsFile, str | None] = (None, FlowsFile(), None)

    def __post_init__(self) -> None:
        self.users = Users(self.store)
        self.views = Views(self.store)
        self.limiter = LoginLimiter(self.settings.login_attempts, self.settings.login_window_s)

    def flows(self) -> tuple[FlowsFile, str | None]:
        """flows.yaml, or an empty file and the reason it could not be read (re-read when it changes)."""
        try:
            st = self.home.flows_file.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is not None and self._flows[0] == stamp:
            return self._flows[1], self._flows[2]
        try:
            loaded: tuple[FlowsFile, str | None] = (load_flows(self.home.flows_file), None)
        except MLConnectorError as exc:
            loaded = (FlowsFile(), str(exc))
        self._flows = (stamp, *loaded)
        return loaded

    def sensitive(self) -> list[str]:
        """Hosts, URLs, user names and secrets of every connection (cached 30 s) to keep off pages."""
        at, values = self._scrub
        if time.monotonic() - at < 30 and at:
            return values
        found: set[str] = set()
        try:
            keyring = self.home.keyring()
            for c in self.store.connections.list():
                s = self.store.connections.settings(c.name, keyring)
                for key in ("host", "url", "username"):
                    v = getattr(s, key, None)
                    if isinstance(v, str):
                        found.add(v)
                for key in ("password", "api_key", "private_key", "passphrase"):
                    secret = getattr(s, key, None)
                    if secret is not None:
                        found.add(secret.reveal())
        except Exception:  # no key, a damaged row: pages still render, scrubbing what it could
            log.warning("console: could not read every connection to scrub pages", exc_info=True)
        values = sorted((v for v in found if len(v) >= SCRUB_MIN), key=len, reverse=True)
        self._scrub = (time.monotonic(), values)
        return values


def _templates(console: Console) -> Environment:
    env = Environment(
        loader=PackageLoader("ml_connector.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=lambda v: _scrub_value(console, v),
    )
    env.filters["ts"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if d else ""
    env.filters["dur"] = _duration
    env.filters["size"] = _size
    return env


def _scrub_value(console: Console, value: Any) -> Any:
    if isinstance(value, str) and value:
        for s in console.sensitive():
            if s in value:
                value = value.replace(s, "•••")
    return "" if value is None else value


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes} min {sec:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _size(n: int | None) -> str:
    if n is None or n < 0:
        return ""
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def sparkline(days: list[tuple[str, int, int]], width: int = 140, height: int = 28) -> dict[str, Any]:
    """Points of two polylines (runs, records) scaled into a small inline SVG."""
    step = width / max(1, len(days) - 1)

    def line(values: list[int]) -> str:
        top = max(values) or 1
        return " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))

    return {
        "width": width,
        "height": height,
        "runs": line([d[1] for d in days]),
        "records": line([d[2] for d in days]),
        "title": f"{days[0][0]} to {days[-1][0]}: {sum(d[1] for d in days)} runs, {sum(d[2] for d in days)} records"
        if days
        else "",
    }


def create_app(console: Console) -> Starlette:
    """The console as an ASGI app (mounted beside /metrics by ``serve``, or alone by ``console``)."""
    env = _templates(console)

    def user_of(request: Request) -> User | None:
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        # The cookie is re-signed on every response (an idle timeout); the login time caps it too.
        at = request.session.get("at")
        if not isinstance(at, int | float) or console.clock().timestamp() - at > console.settings.session_minutes * 60:
            return None
        user = console.users.find(uid)  # a removed user's session ends at once
        if user is None or request.session.get("role") != user.role:
            return None
        return user

    def csrf_of(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = new_token()
            request.session["csrf"] = token
        return token

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        user = ctx.pop("user", None) or user_of(request)
        html = env.get_template(name).render(
            user=user, csrf=csrf_of(request), path=request.url.path, actions_on=console.settings.actions, **ctx
        )
        return HTMLResponse(html, status_code=status)

    Page = Callable[[Request, User], Awaitable[Response]] | Callable[[Request, User], Response]

    def page(fn: Page, *, operator: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Login, CSRF and role checks around a page; read pages run in a worker thread so their
        queries never hold up the event loop that ``serve``'s scheduler shares."""

        async def endpoint(request: Request) -> Response:
            user = user_of(request)
            if user is None:
                nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": nxt}), status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not same_token(form.get("csrf"), request.session.get("csrf")):
                    return render(request, "error.html", 403, user=user, message="The form expired; reload the page.")
            if operator and not (user.can_act and console.settings.actions):
                why = "this console is read-only" if not console.settings.actions else "your role is viewer"
                return render(request, "error.html", 403, user=user, message=f"Not allowed: {why}.")
            try:
                if inspect.iscoroutinefunction(fn):
                    return await fn(request, user)  # type: ignore[no-any-return]
                return await run_in_threadpool(fn, request, user)  # type: ignore[arg-type]
            except MLConnectorError as exc:
                status = 404 if isinstance(exc, NotFoundError) else 400
                return render(request, "error.html", status, user=user, message=str(exc))

        return endpoint

    # --- login -----------------------------------------------------------------------------------

    def login_subject(name: str, address: str, reason: str) -> dict[str, Any]:
        """A failed login's audit fields. The typed name is kept only when it is a user's: people
        type their password into the name field, and the audit trail must never hold one."""
        known = name in {u.name for u in console.users.list()}
        details = {"address": address, "reason": reason, **({} if known else {"name": "(not a console user)"})}
        return {"subject": name if known else None, "details": details}

    async def login(request: Request) -> Response:
        nxt = request.query_params.get("next", "/")
        if not SAFE_NEXT.fullmatch(nxt) or nxt.startswith("//"):
            nxt = "/"  # never an open redirect (no scheme, host, backslash, space or control character)
        if request.method == "GET":
            return render(request, "login.html", user=None, next=nxt, error=None)
        form = await request.form()
        address = request.client.host if request.client else "?"
        name = str(form.get("name", ""))[:100]
        if not same_token(form.get("csrf"), request.session.get("csrf")):
            return render(request, "login.html", 403, user=None, next=nxt, error="The form expired; try again.")
        if console.limiter.blocked(name, address):
            console.store.audit.record("console.login", outcome="error",
                                       **login_subject(name, address, "rate limited"))  # fmt: skip
            return render(request, "login.html", 429, user=None, next=nxt,
                          error="Too many failed logins; wait a few minutes.")  # fmt: skip
        # argon2 is deliberately slow: off the event loop that serve's scheduler shares.
        user = await run_in_threadpool(console.users.verify, name, str(form.get("password", "")))
        if user is None:
            console.limiter.failed(name, address)
            console.store.audit.record("console.login", outcome="error",
                                       **login_subject(name, address, "bad name or password"))  # fmt: skip
            return render(request, "login.html", 401, user=None, next=nxt, error="Wrong name or password.")
        console.limiter.succeeded(name)
        request.session.clear()  # a fresh session (and CSRF token) at every login: no fixation
        request.session.update({"uid": user.id, "role": user.role, "csrf": new_token(),
                                "at": int(console.clock().timestamp())})  # fmt: skip
        console.store.audit.record("console.login", subject=user.name, details={"address": address,
                                                                                 "role": user.role})  # fmt: skip
        return RedirectResponse(nxt, status_code=303)

    async def logout(request: Request, user: User) -> Response:
        console.store.audit.record("console.logout", subject=user.name)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- pages -----------------------------------------------------------------------------------

    def overview(request: Request, user: User) -> Response:
        from ..cron import next_fire

        flows, problem = console.flows()
        now = console.clock()
        health = console.views.flow_health(
            list(flows.flows), now=now, ack_timeout_minutes=flows.alerts.ack_timeout_minutes
        )
        switched = FlowSettings(console.store).all()
        rows = []
        for h in health:
            cfg = flows.flows[h.flow]
            enabled = cfg.enabled and switched.get(h.flow, True)
            nxt = next_fire(cfg, now) if enabled else None
            rows.append({
                "h": h, "cfg": cfg, "enabled": enabled, "paused": not switched.get(h.flow, True),
                "next": nxt.astimezone(ZoneInfo(cfg.timezone)).strftime("%Y-%m-%d %H:%M %Z") if nxt else None,
                "spark": sparkline(h.days),
            })  # fmt: skip
        return render(request, "overview.html", user=user, rows=rows, problem=problem)

    def runs(request: Request, user: User) -> Response:
        q = request.query_params
        flow, outcome, since = q.get("flow") or None, q.get("outcome") or None, q.get("since") or None
        before, until = q.get("before") or None, None
        if before:
            try:  # a date from the form's date picker: runs started before that day (UTC)
                until = datetime.fromisoformat(before).replace(tzinfo=UTC)
            except ValueError:
                return render(request, "error.html", 400, user=user, message=f"before: {before!r} is not a date")
        page_ = console.views.runs(
            flow=flow,
            outcome=outcome,
            since=console.clock() - SINCE[since] if since in SINCE else None,
            until=until,
            after=q.get("after") or None,
            limit=50,
        )
        flows, _ = console.flows()
        keep = {k: v for k, v in (("flow", flow), ("outcome", outcome), ("since", since), ("before", before)) if v}
        nxt = "/runs?" + urlencode({**keep, "after": page_.next}) if page_.next else None
        return render(request, "runs.html", user=user, page=page_, flows=sorted(flows.flows), outcomes=RUN_OUTCOMES,
                      sinces=list(SINCE), f=keep, next=nxt)  # fmt: skip

    def run_page(request: Request, user: User) -> Response:
        after = request.query_params.get("after", "0")
        detail = console.views.run_detail(request.path_params["run_id"],
                                          events_after=int(after) if after.isdigit() else 0)  # fmt: skip
        return render(request, "run.html", user=user, d=detail)

    def files(request: Request, user: User) -> Response:
        q = request.query_params
        keep = {k: q[k] for k in ("flow", "direction", "state") if q.get(k)}
        page_ = console.views.files(**keep, after=q.get("after") or None, limit=50)
        flows, _ = console.flows()
        nxt = "/files?" + urlencode({**keep, "after": page_.next}) if page_.next else None
        return render(request, "files.html", user=user, page=page_, flows=sorted(flows.flows), f=keep, next=nxt)

    def file_page(request: Request, user: User) -> Response:
        after = request.query_params.get("after", "")
        fid = request.path_params["file_id"]
        detail = console.views.file_detail(fid, records_after=int(after) if after.lstrip("-").isdigit() else -1)
        return render(request, "file.html", user=user, d=detail, f=detail.file)

    def search(request: Request, user: User) -> Response:
        text = request.query_params.get("q", "")[:200]
        hits = console.views.search(text) if text.strip() else []
        return render(request, "search.html", user=user, q=text, hits=hits)

    def connections(request: Request, user: User) -> Response:
        rows = console.store.connections.list()
        tests = console.views.last_connection_tests([c.name for c in rows])
        return render(request, "connections.html", user=user, rows=rows, tests=tests)

    # --- actions ---------------------------------------------------------------------------------

    def target_of(request: Request, action: str, raw: str) -> tuple[str, Any]:
        kind = act.TARGET_KIND[action]
        if kind == "file":
            if not raw.isdigit():
                raise UsageError("a file id is a number")
            f = console.store.ledger.file(int(raw))
            if f is None:
                raise NotFoundError(f"no file {raw} in the ledger")
            return f"file {f.id} ({f.name}, {f.flow})", f
        if kind == "flow":
            flows, _ = console.flows()
            if raw not in flows.flows:
                raise NotFoundError(f"no flow named {raw!r} in flows.yaml")
            return f"flow {raw}", raw
        console.store.connections.get(raw)
        return f"connection {raw}", raw

    def confirm(request: Request, user: User) -> Response:
        action = request.path_params["action"]
        if action not in act.ACTIONS:
            return render(request, "error.html", 404, user=user, message=f"no action {action!r}")
        raw = request.query_params.get("target", "")
        label, _ = target_of(request, action, raw)
        nonce = console.nonces.issue(f"{user.id}:{action}:{raw}")
        return render(request, "confirm.html", user=user, action=action, what=act.ACTIONS[action], label=label,
                      target=raw, nonce=nonce)  # fmt: skip

    async def perform(request: Request, user: User) -> Response:
        action = request.path_params["action"]
        if action not in act.ACTIONS:
            return render(request, "error.html", 404, user=user, message=f"no action {action!r}")
        form = await request.form()
        raw = str(form.get("target", ""))
        label, target = target_of(request, action, raw)
        if not console.nonces.consume(str(form.get("nonce", "")), f"{user.id}:{action}:{raw}"):
            return render(request, "error.html", 409, user=user,
                          message="This confirmation was already used or has expired; nothing was done twice. "
                                  "Open the action again if you mean to repeat it.")  # fmt: skip
        flows, _ = console.flows()
        store = console.store
        try:
            if action == "run":
                result = await act.run_now(console.home, store, flows, target)
            elif action == "replay":
                result = await act.replay(console.home, store, flows, target.id)
            elif action == "resend":
                result = await act.resend_file(console.home, store, flows, target.id)
            elif action == "abandon":
                result = act.abandon_intent(store, target.id, user=user.name)
            elif action in ("enable", "disable"):
                result = act.set_enabled(store, target, action == "enable", user=user.name)
            else:
                result = await act.test_connection(console.home, store, target)
        except MLConnectorError as exc:
            result = act.ActionResult(False, str(exc))
        store.audit.record(
            "console.action",
            subject=label,
            outcome="ok" if result.ok else "error",
            run_id=result.run_id,
            details={"user": user.name, "role": user.role, "action": action, "target": raw, "result": result.message},
        )
        return render(request, "result.html", user=user, action=action, what=act.ACTIONS[action], label=label,
                      result=result)  # fmt: skip

    routes: list[BaseRoute] = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", page(logout), methods=["POST"]),
        Route("/", page(overview)),
        Route("/runs", page(runs)),
        Route("/runs/{run_id}", page(run_page)),
        Route("/files", page(files)),
        Route("/files/{file_id:int}", page(file_page)),
        Route("/search", page(search)),
        Route("/connections", page(connections)),
        Route("/actions/{action}", page(confirm, operator=True), methods=["GET"]),
        Route("/actions/{action}", page(perform, operator=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    secure = bool(console.settings.tls_cert or console.settings.behind_proxy)
    middleware = [
        Middleware(HostCheck, allowed=console.settings.allowed_hosts, loopback_only=not secure),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(console.home.keyring()),
            session_cookie="mlc_session",
            max_age=int(console.settings.session_minutes * 60),
            same_site="strict",
            https_only=secure,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)
