"""Operations commands: serve, status, replay, prune."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ..config import FlowsFile, InboundFlow, load_flows
from ..home import Home
from ..states import OPEN_FILES

# `status` must start fast: the flow engine, HTTP, SSH, metrics and uvicorn load in the commands
# that use them.
if TYPE_CHECKING:
    from ..flows import RunContext, RunResult
    from ..store import Store


def _context(home: Home, store: Store, **kw: Any) -> RunContext:
    from ..flows import RunContext

    return RunContext(store=store, keyring=home.keyring(), staging=home.staging, **kw)


# --- serve ---------------------------------------------------------------------------------------


def serve(
    home: Home, store: Store, console: Console, *, metrics_port: int | None = None, once_s: float | None = None
) -> int:
    import asyncio

    from ..alerts import Alerter, deliver_run_alerts
    from ..metrics import Metrics
    from ..scheduler import Scheduler

    flows = load_flows(home.flows_file)
    cfg = flows.serve
    port = cfg.metrics_port if metrics_port is None else metrics_port
    from ._ports import bind

    if cfg.console.enabled and port:
        from ..console.settings import check_bind
        from ..errors import UsageError

        problem = check_bind(cfg.metrics_host, cfg.console)
        if problem:  # refused before anything binds or runs
            raise UsageError(problem)
    # Bound before the scheduler starts (and handed to uvicorn): a port in use stops `serve` with
    # one line, before any flow runs, instead of a traceback from a half-started server.
    listener = (
        bind(cfg.metrics_host, port, "metrics", "--metrics-port N (or serve.metrics_port; 0 turns it off)")
        if port
        else None
    )
    metrics = Metrics()
    owner = f"{socket.gethostname()}:{os.getpid()}"
    pending: set[asyncio.Task[Any]] = set()

    def make_context(name: str) -> RunContext:
        return _context(home, store, observe=metrics.observe)

    def on_result(result: RunResult) -> None:
        metrics.record(result)
        console.print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {result.flow}: {result.state} "
            f"{ {k: v for k, v in result.counts.items() if k != 'exit_code'} }",
            highlight=False,
        )
        alerts = load_flows_safe(home, flows).alerts
        task = asyncio.get_running_loop().create_task(deliver_run_alerts(alerts, store, result))
        pending.add(task)
        task.add_done_callback(pending.discard)

    scheduler = Scheduler(home.flows_file, store, make_context, owner, tick_s=cfg.tick_seconds, on_result=on_result)

    async def housekeeping() -> None:
        last_prune = 0.0
        while True:
            current = load_flows_safe(home, flows)
            alerter = Alerter(current.alerts, store)
            await alerter.deliver(alerter.overdue_acks())
            if time.monotonic() - last_prune > 24 * 3600 or last_prune == 0.0:
                prune(home, store, current, console=None)
                last_prune = time.monotonic()
            await asyncio.sleep(60)

    async def main() -> None:
        import uvicorn

        from ..console.server import console_url, with_console

        server = None
        server_task = None
        if port:
            app, tls = with_console(metrics.app(scheduler), home, store, cfg.console, cfg.metrics_host, scheduler)
            server = uvicorn.Server(
                uvicorn.Config(app, host=cfg.metrics_host, port=port, log_level="warning", lifespan="off", **tls)
            )
            server_task = asyncio.create_task(server.serve(sockets=[listener] if listener else None))
        keeper = asyncio.create_task(housekeeping())
        console.print(
            f"serving {len(flows.flows)} flows as {owner}"
            + (f"; metrics on http://{cfg.metrics_host}:{port}/metrics" if port else "")
            + (
                f"; console on {console_url(cfg.metrics_host, port, cfg.console)}"
                if port and cfg.console.enabled
                else ""
            ),
            highlight=False,
        )
        if once_s is not None:
            asyncio.get_running_loop().call_later(once_s, scheduler.stop)
        try:
            await scheduler.run_forever()
        finally:
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            keeper.cancel()
            if server is not None:
                server.should_exit = True
            await asyncio.gather(keeper, *([server_task] if server_task else []), return_exceptions=True)
        console.print("stopped", highlight=False)

    asyncio.run(main())
    return 0


def load_flows_safe(home: Home, fallback: FlowsFile) -> FlowsFile:
    try:
        return load_flows(home.flows_file)
    except Exception:
        return fallback


# --- status --------------------------------------------------------------------------------------


def status(home: Home, database_url: str, *, remote: bool) -> list[dict[str, Any]]:
    """One row per flow: health, last and next run (in the flow's zone), backlog, errors, failed records.

    The ledger is read through ``store.health`` (on a SQLite home, with the standard library:
    no SQLAlchemy import); the Store opens only to count files waiting on an inbound flow's server.
    """
    from ..cron import next_fire
    from ..store.health import read_flows
    from ..store.readers import store_reader

    flows = load_flows(home.flows_file)
    now = datetime.now(UTC)
    with store_reader(database_url) as reader:
        ledgers = read_flows(reader, list(flows.flows), now=now, ack_timeout_minutes=flows.alerts.ack_timeout_minutes)
    inbound = {name: f for name, f in flows.flows.items() if isinstance(f, InboundFlow)}
    waiting: dict[str, int | str] = {}
    if remote and inbound:
        from ..store import Store

        with Store.open(database_url) as store:
            waiting = {name: _waiting(home, store, flow) for name, flow in inbound.items()}
    rows = []
    for ledger in ledgers:
        flow, last, counts = flows.flows[ledger.flow], ledger.last, ledger.health
        nxt = next_fire(flow, now) if flow.enabled else None
        rows.append(
            {
                "flow": ledger.flow,
                "direction": flow.direction,
                "health": ledger.word,
                "last_run": last.started_at.isoformat() if last else None,
                "last_state": last.state if last else None,
                "last_counts": last.counts if last else {},
                "last_error": last.error if last else None,
                "next_run": nxt.isoformat() if nxt else None,
                "timezone": flow.timezone,
                "files_waiting": waiting.get(ledger.flow),
                "files_open": counts.files_open,
                "files_error": counts.files_error,
                "records_failed": counts.records_failed,
                "files_refused": counts.files_refused,
                "acks_overdue": counts.acks_overdue,
            }
        )
    return rows


def _waiting(home: Home, store: Store, flow: InboundFlow) -> int | str:
    import asyncio

    ctx = _context(home, store)

    async def go() -> int:
        from ..flows.context import AuditBuffer

        async with ctx.sftp(flow.sftp, AuditBuffer(store, "status", None, limit=10**9)) as sftp:
            listing = await sftp.list_ready(
                flow.folder, pattern=flow.pattern, pattern_type=flow.pattern_type, settle_s=0, max_files=10_000
            )
            return len(listing.ready) + len(listing.waiting)

    try:
        return asyncio.run(asyncio.wait_for(go(), timeout=20))
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def _ago(iso: str | None) -> str:
    if not iso:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _local(iso: str | None, zone: str) -> str:
    """``2026-12-03 13:00 America/Chicago``: a time in the flow's zone, the zone named."""
    if not iso:
        return ""
    from zoneinfo import ZoneInfo

    return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


NEEDS_A_LOOK = ("failing", "attention")


def status_exit_code(rows: list[dict[str, Any]]) -> int:
    """0 when no flow needs a look (ok, running or never run), else 1."""
    return 1 if any(r["health"] in NEEDS_A_LOOK for r in rows) else 0


def print_status(rows: list[dict[str, Any]], console: Console) -> None:
    colour = {"ok": "green", "failing": "red", "attention": "yellow"}
    table = Table("flow", "health", "last run", "next run", "needs a look")
    table.columns[0].no_wrap = True
    for r in rows:
        notes = []
        if r["files_waiting"] not in (None, 0):
            notes.append(f"{r['files_waiting']} waiting")
        for key, label in (
            ("files_open", "unfinished"),
            ("files_error", "in error"),
            ("records_failed", "failed rec."),
            ("files_refused", "refused"),
            ("acks_overdue", "acks overdue"),
        ):
            if r[key]:
                notes.append(f"{r[key]} {label}")
        nxt = _local(r["next_run"], r["timezone"])
        health = f"[{colour.get(r['health'], 'white')}]{r['health']}[/]"
        last = f"{r['last_state'] or ''} {_ago(r['last_run'])}".strip()
        if r["last_run"]:
            last += f" ({_local(r['last_run'], r['timezone'])})"
        table.add_row(r["flow"], health, last, nxt or "-", ", ".join(notes))
    console.print(table)
    for r in rows:
        if r["health"] in ("failing", "attention") and r["last_error"]:
            console.print(f"[red]{r['flow']}[/]: {r['last_error']}", highlight=False)


# --- replay and prune ----------------------------------------------------------------------------


def replay(home: Home, store: Store, *, file_id: int | None, run_id: str | None) -> list[RunResult]:
    import asyncio

    from ..flows.replay import replay_file, replay_run

    flows = load_flows(home.flows_file)
    ctx = _context(home, store, trigger="replay")
    if file_id is not None:
        return [asyncio.run(replay_file(ctx, flows, file_id))]
    assert run_id is not None
    return asyncio.run(replay_run(ctx, flows, run_id))


def settle_intent(home: Home, store: Store, file_id: int, *, action: str, folder: str | None = None,
                  check_server: bool = True) -> RunResult:  # fmt: skip
    """``files abandon`` / ``files resend``: settle a pending outbound intent through the ledger."""
    import asyncio

    from ..config import OutboundFlow
    from ..errors import NotFoundError, UsageError
    from ..flows.outbound import OutboundRun

    f = store.ledger.file(file_id)
    if f is None:
        raise NotFoundError(f"no file {file_id} in the ledger (see 'ml-connector files --state intent')")
    flow = load_flows(home.flows_file).flows.get(f.flow)
    if not isinstance(flow, OutboundFlow):
        raise UsageError(f"file {file_id} belongs to {f.flow!r}, which is not an outbound flow in flows.yaml")
    if folder is not None and not folder.startswith("/"):
        raise UsageError(f"--folder {folder!r}: give an absolute remote path")
    ctx = _context(home, store, trigger=f"files {action}")
    store.audit.record(f"file.{action}_requested", flow=f.flow, subject=f.remote_path,
                       details={"file_id": file_id, "folder": folder})  # fmt: skip
    run = OutboundRun(ctx, f.flow, flow)
    if action == "abandon":
        return asyncio.run(run.abandon_intent(file_id, check_server=check_server))
    return asyncio.run(run.resend_intent(file_id, folder))


def prune(
    home: Home,
    store: Store,
    flows: FlowsFile,
    *,
    console: Console | None,
    audit_days: float | None = None,
    staging_days: float | None = None,
) -> dict[str, int]:
    """Audit events and staged copies of finished files older than the retention; ledgers stay."""
    audit_days = flows.retention.audit_days if audit_days is None else audit_days
    staging_days = flows.retention.staging_days if staging_days is None else staging_days
    events = store.audit.prune(datetime.now(UTC) - timedelta(days=audit_days))
    cutoff = time.time() - staging_days * 86400
    removed = 0
    keep: set[str] = {
        str(f.local_path) for f in store.ledger.files(states=[s.value for s in OPEN_FILES]) if f.local_path
    }
    for root in (home.staging / "inbound", home.staging / "outbound"):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.is_file() and str(path) not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    store.audit.record(
        "prune",
        subject=str(home.path),
        details={
            "audit_events": events,
            "staged_files": removed,
            "audit_days": audit_days,
            "staging_days": staging_days,
        },
    )
    if console is not None:
        console.print(
            f"pruned {events} audit events older than {audit_days:g} days and {removed} staged files "
            f"older than {staging_days:g} days (ledgers kept)",
            highlight=False,
        )
    return {"audit_events": events, "staged_files": removed}
