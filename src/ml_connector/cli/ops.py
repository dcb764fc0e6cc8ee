"""Operations commands: serve, status, replay, prune."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from ..alerts import Alerter
from ..config import FlowsFile, InboundFlow, load_flows
from ..flows import RunContext, RunResult
from ..flows.replay import replay_file, replay_run
from ..home import Home
from ..metrics import Metrics
from ..scheduler import Scheduler, next_fire
from ..store import Store
from ..store import models as m


def _context(home: Home, store: Store, **kw: Any) -> RunContext:
    return RunContext(store=store, keyring=home.keyring(), staging=home.staging, **kw)


# --- serve ---------------------------------------------------------------------------------------


def serve(
    home: Home, store: Store, console: Console, *, metrics_port: int | None = None, once_s: float | None = None
) -> int:
    flows = load_flows(home.flows_file)
    cfg = flows.serve
    port = cfg.metrics_port if metrics_port is None else metrics_port
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
        alerter = Alerter(load_flows_safe(home, flows).alerts, store)
        task = asyncio.get_running_loop().create_task(alerter.deliver(alerter.from_run(result)))
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

        server = None
        server_task = None
        if port:
            server = uvicorn.Server(
                uvicorn.Config(metrics.app(scheduler), host=cfg.metrics_host, port=port, log_level="warning",
                               lifespan="off")
            )  # fmt: skip
            server_task = asyncio.create_task(server.serve())
        keeper = asyncio.create_task(housekeeping())
        console.print(
            f"serving {len(flows.flows)} flows as {owner}"
            + (f"; metrics on http://{cfg.metrics_host}:{port}/metrics" if port else ""),
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


def status(home: Home, store: Store, *, remote: bool) -> list[dict[str, Any]]:
    flows = load_flows(home.flows_file)
    now = datetime.now(UTC)
    rows = []
    for name, flow in flows.flows.items():
        runs = store.ledger.runs(name, limit=1)
        last = runs[0] if runs else None
        with store.session() as s:
            failed = (
                s.scalar(
                    select(func.count())
                    .select_from(m.RecordEntry)
                    .join(m.FileEntry)
                    .where(m.FileEntry.flow == name, m.RecordEntry.state == "failed")
                )
                or 0
            )
            errors = (
                s.scalar(
                    select(func.count())
                    .select_from(m.FileEntry)
                    .where(m.FileEntry.flow == name, m.FileEntry.state == "error")
                )
                or 0
            )
            open_files = (
                s.scalar(
                    select(func.count())
                    .select_from(m.FileEntry)
                    .where(
                        m.FileEntry.flow == name,
                        m.FileEntry.state.in_(("seen", "downloaded", "parsed", "posting", "intent")),
                    )
                )
                or 0
            )
        refused = store.ledger.refused_in_run(name, last.id) if last else 0  # still on the server
        waiting: int | str | None = None
        if remote and isinstance(flow, InboundFlow):
            waiting = _waiting(home, store, flow)
        nxt = next_fire(flow, now) if flow.enabled else None
        if last is None:
            health = "never run"
        elif last.state in ("succeeded", "stopped") and not failed and not errors and not refused:
            health = "ok"
        elif last.state in ("failed", "crashed"):
            health = "failing"
        else:
            health = "attention"
        rows.append(
            {
                "flow": name,
                "direction": flow.direction,
                "health": health,
                "last_run": last.started_at.isoformat() if last else None,
                "last_state": last.state if last else None,
                "last_counts": last.counts if last else {},
                "last_error": last.error if last else None,
                "next_run": nxt.isoformat() if nxt else None,
                "files_waiting": waiting,
                "files_open": open_files,
                "files_error": errors,
                "records_failed": failed,
                "files_refused": refused,
            }
        )
    return rows


def _waiting(home: Home, store: Store, flow: InboundFlow) -> int | str:
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
        ):
            if r[key]:
                notes.append(f"{r[key]} {label}")
        nxt = (r["next_run"] or "")[:16].replace("T", " ")
        health = f"[{colour.get(r['health'], 'white')}]{r['health']}[/]"
        last = f"{r['last_state'] or ''} {_ago(r['last_run'])}".strip()
        table.add_row(r["flow"], health, last, nxt or "-", ", ".join(notes))
    console.print(table)
    for r in rows:
        if r["health"] in ("failing", "attention") and r["last_error"]:
            console.print(f"[red]{r['flow']}[/]: {r['last_error']}", highlight=False)


# --- replay and prune ----------------------------------------------------------------------------


def replay(home: Home, store: Store, *, file_id: int | None, run_id: str | None) -> list[RunResult]:
    flows = load_flows(home.flows_file)
    ctx = _context(home, store, trigger="replay")
    if file_id is not None:
        return [asyncio.run(replay_file(ctx, flows, file_id))]
    assert run_id is not None
    return asyncio.run(replay_run(ctx, flows, run_id))


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
        str(f.local_path)
        for f in store.ledger.files(states=["seen", "downloaded", "parsed", "posting", "intent"])
        if f.local_path
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
