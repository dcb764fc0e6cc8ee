"""Ledger views: the audit trail, files (abandon, resend) and replay."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table

from ..errors import UsageError
from ..states import FileState, RunState

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    pass
from ._app import _open_store, _state, _ts, app, out

# --- audit -----------------------------------------------------------------------------------

_SINCE = re.compile(r"^(\d+)([smhd])$")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d`` or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    m = _SINCE.match(value.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value!r}: use e.g. 2h, 30m, 7d or 2026-11-23T08:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def audit(
    ctx: typer.Context,
    flow: Annotated[str | None, typer.Option(help="Only this flow")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run (its id, or the first 8 characters shown)")] = None,
    file: Annotated[str | None, typer.Option(help="Only events about this file / subject")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind, or kind prefix (e.g. connection)")] = None,
    since: Annotated[str | None, typer.Option(help="Since: 2h, 7d or an ISO time")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest)")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """The audit trail: runs, API calls, transfers, records, errors."""
    from ._lookup import resolve_run_id

    with _open_store(ctx) as store:
        events = store.audit.query(
            flow=flow,
            run_id=resolve_run_id(store, run) if run else None,
            subject=file,
            kind=kind,
            since=parse_since(since) if since else None,
            limit=limit,
        )
    if as_json:
        for e in events:
            typer.echo(json.dumps(e.as_json(), sort_keys=True))
        return
    # Columns that say nothing for these events (no flow, no run) are left out on narrow screens.
    show_flow = len({e.flow for e in events if e.flow}) > 1 or (any(e.flow for e in events) and flow is None)
    show_run = any(e.run_id for e in events)
    columns = [Column("time (UTC)", no_wrap=True, min_width=19)]
    columns += [Column("flow", min_width=8)] if show_flow else []
    columns += [Column("run", no_wrap=True, min_width=8)] if show_run else []
    wide = out.width >= 140  # details only where they fit; `--json` always has them
    columns += [Column("kind", no_wrap=True), Column("subject", overflow="fold", min_width=22),
                Column("outcome", no_wrap=True), Column("ms", justify="right", no_wrap=True)]  # fmt: skip
    columns += [Column("details", overflow="ellipsis", no_wrap=True, max_width=70)] if wide else []
    table = Table(*columns)
    for e in events:
        cells = [_ts(e.at)] + ([e.flow or ""] if show_flow else []) + ([(e.run_id or "")[:8]] if show_run else [])
        table.add_row(
            *cells,
            e.kind,
            _short_subject(e.subject or ""),
            e.outcome,
            f"{e.duration_ms:.0f}" if e.duration_ms is not None else "",
            *([json.dumps(e.details, sort_keys=True) if e.details else ""] if wide else []),
        )
    out.print(table if events else "no audit events match")


_ODATA_PREFIX = re.compile(r"/api/v2/odata/[^/]+/(?:Erp\.BO\.)?")


def _short_subject(subject: str) -> str:
    """``POST /api/v2/odata/EPIC06/Erp.BO.VendorSvc/Update`` reads ``POST VendorSvc/Update`` in tables."""
    return _ODATA_PREFIX.sub("", subject)


files_app = typer.Typer(
    help="The file ledger (every inbound file seen, every outbound file sent, with its state and why); "
    "abandon or resend a pending outbound file.",
)
app.add_typer(files_app, name="files")


@files_app.callback(invoke_without_command=True)
def files(
    ctx: typer.Context,
    flow: Annotated[str | None, typer.Option("--flow", help="only this flow")] = None,
    state: Annotated[str | None, typer.Option("--state", help="only this state (e.g. error, intent)")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="inbound or outbound")] = None,
    limit: Annotated[int, typer.Option("--limit", help="newest N")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """The file ledger: every inbound file seen and outbound file sent, its state, and why it failed."""
    if ctx.invoked_subcommand is not None:
        return
    from ._lookup import file_reason

    with _open_store(ctx) as store:
        rows = store.ledger.files(flow=flow, direction=direction, states=[state] if state else None, limit=limit)
        explained = (FileState.ERROR, FileState.INTENT, FileState.ABANDONED)
        reasons = {r.id: file_reason(store, r) for r in rows if r.state in explained}
    if as_json:
        out.print_json(json.dumps([{**r.as_json(), "reason": reasons.get(r.id)} for r in rows], default=str))
        return
    table = Table("id", Column("flow", no_wrap=True), Column("state", no_wrap=True),
                  Column("file", overflow="fold", min_width=18), Column("updated", no_wrap=True),
                  Column("note", overflow="fold", min_width=12))  # fmt: skip
    for r in rows:
        note = reasons.get(r.id) or (f"ack {r.details['ack']}" if r.details.get("ack") else "")
        if r.state == FileState.INTENT and not note:
            note = "pending: the next run completes it (or: files resend / files abandon)"
        table.add_row(str(r.id), r.flow, r.state, r.name, r.updated_at.strftime("%m-%d %H:%M"), note)
    out.print(table if rows else "no files match")


@files_app.command("abandon")
def files_abandon(
    ctx: typer.Context,
    file_id: Annotated[int, typer.Argument(help="id of a pending (intent) outbound file, from 'ml-connector files'")],
    no_check: Annotated[
        bool, typer.Option("--no-check", help="do not look for the file on the SFTP server first (it is unreachable)")
    ] = False,
) -> None:
    """Drop a pending outbound file that cannot be delivered; its records go out in the flow's next file."""
    from .ops import settle_intent

    home = _state(ctx).home
    with _open_store(ctx) as store:
        result = settle_intent(home, store, file_id, action="abandon", check_server=not no_check)
    if result.state != RunState.SUCCEEDED:
        out.print(f"[red]not abandoned:[/] {result.error}", highlight=False)
        raise typer.Exit(result.exit_code)
    out.print(f"[green]✓[/] file {file_id} abandoned; the next run of {result.flow} sends its records in a new file",
              highlight=False)  # fmt: skip


@files_app.command("resend")
def files_resend(
    ctx: typer.Context,
    file_id: Annotated[int, typer.Argument(help="id of a pending (intent) outbound file, from 'ml-connector files'")],
    folder: Annotated[
        str | None, typer.Option("--folder", help="remote folder to send it to [default: the flow's current folder]")
    ] = None,
) -> None:
    """Send a pending outbound file now, byte-identical, to the flow's current folder (or --folder)."""
    from .ops import settle_intent

    home = _state(ctx).home
    with _open_store(ctx) as store:
        result = settle_intent(home, store, file_id, action="resend", folder=folder)
    if result.state != RunState.SUCCEEDED:
        out.print(f"[red]not sent:[/] {result.error}", highlight=False)
        raise typer.Exit(result.exit_code)
    for f in result.files:
        out.print(f"[green]✓[/] file {file_id} delivered as {f['remote_path']} ({f.get('how')})", highlight=False)


@app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    file_id: Annotated[int | None, typer.Argument(help="file id from 'ml-connector files'")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="replay every file of this run (id or its first 8 characters)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary")] = False,
) -> None:
    """Re-process an inbound file after a mapping fix (posted records are not posted again), or
    re-send an outbound file byte-identical."""
    from .ops import replay
    from .run import attach_reasons, print_summary, summary_json

    if (file_id is None) == (run_id is None):
        raise UsageError("give a FILE_ID or --run RUN_ID (one of them)")
    home = _state(ctx).home
    with _open_store(ctx) as store:
        if run_id is not None:
            from ._lookup import resolve_run_id

            run_id = resolve_run_id(store, run_id)
        results = replay(home, store, file_id=file_id, run_id=run_id)
        for r in results:
            attach_reasons(store, r)
    if as_json:
        out.print_json(json.dumps([summary_json(r) for r in results], default=str))
    else:
        for r in results:
            print_summary(r, out)
    raise typer.Exit(max((r.exit_code for r in results), default=0))
