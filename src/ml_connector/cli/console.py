"""Commands ``runs`` (run history), ``console`` (the operator console alone) and ``users``.

Registered on the CLI app by importing this module; heavy modules (Starlette, uvicorn, argon2)
are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from ..errors import UsageError
from ..states import RunState
from ._app import _open_store, _state, _ts, app, out
from .ledger_cmds import parse_since

users_app = typer.Typer(help="People who may log in to the operator console.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="show this run (the short id is enough)")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="only this flow")] = None,
    since: Annotated[str | None, typer.Option("--since", help="since: 2h, 7d or an ISO time")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="succeeded, partial, failed, crashed…")] = None,
    limit: Annotated[int, typer.Option("--limit", help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Run history: start, duration, counts, outcome and the reason, newest first."""
    from ..store.views import Views

    with _open_store(ctx) as store:
        views = Views(store)
        if run_id is not None:
            detail = views.run_detail(run_id, events_limit=0 if not as_json else 500)
            rows = [detail.summary]
            files = detail.files
        else:
            rows = views.runs(flow=flow, outcome=outcome, since=parse_since(since) if since else None, limit=limit).rows
            files = []
    if as_json:
        data = [r.as_json() for r in rows]
        if run_id is not None:
            data[0]["files"] = [f.as_json() for f in files]
        typer.echo(json.dumps(data[0] if run_id is not None else data, default=str, indent=2))
        return
    if not rows:
        out.print("no runs match" if flow or since or outcome else "no runs yet: ml-connector run FLOW")
        return
    table = Table(
        Column("run", no_wrap=True),
        Column("flow", no_wrap=True),
        Column("started (UTC)", no_wrap=True),
        Column("took", justify="right", no_wrap=True),
        Column("outcome", no_wrap=True),
        Column("new", justify="right"),
        Column("upd", justify="right"),
        Column("failed", justify="right"),
        Column("files", justify="right"),
        Column("reason", overflow="fold", min_width=16),
    )
    colour: dict[str, str] = {RunState.SUCCEEDED: "green", RunState.PARTIAL: "yellow", RunState.RUNNING: "cyan"}
    for r in rows:
        state = r.run.state
        table.add_row(
            r.short_id,
            r.run.flow,
            _ts(r.run.started_at),
            _duration(r.duration_s),
            f"[{colour.get(state, 'red')}]{state}[/]",
            str(r.created or ""),
            str(r.updated or ""),
            str(r.failed or ""),
            str(r.files or ""),
            r.reason,
        )
    out.print(table)
    if run_id is not None:
        for f in files:
            note = (f.error or "").removeprefix(f.name + ": ")
            out.print(f"  file {f.id} {f.name}: {f.state}" + (f" ({note})" if note else ""), highlight=False)
        out.print(f"audit trail: ml-connector audit --run {rows[0].id}", highlight=False)


# --- users ---------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option("--role", help="viewer (read) or operator (read + actions)")] = "viewer",
) -> None:
    """Add a console user; the password is read from standard input (never the command line)."""
    from ..users import ROLES, Users

    if role not in ROLES:
        raise UsageError(f"--role {role!r}: use one of {', '.join(ROLES)}")
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with _open_store(ctx) as store:
        Users(store).add(name, role, password)
    out.print(f"[green]✓[/] added console user {name!r} ({role})")


@users_app.command("list")
def users_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False
) -> None:
    """List console users and their roles."""
    from ..users import Users

    with _open_store(ctx) as store:
        rows = Users(store).list()
    if as_json:
        typer.echo(json.dumps([{"name": u.name, "role": u.role, "created_at": u.created_at.isoformat()} for u in rows]))
        return
    table = Table("name", "role", "created (UTC)")
    for u in rows:
        table.add_row(u.name, u.role, _ts(u.created_at))
    out.print(table if rows else "no console users: ml-connector users add NAME --role viewer|operator")


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="login name")]) -> None:
    """Remove a console user (their open sessions end at their next request)."""
    from ..users import Users

    with _open_store(ctx) as store:
        Users(store).remove(name)
    out.print(f"[green]✓[/] removed console user {name!r}")


# --- console -------------------------------------------------------------------------------------


@app.command("console")
def console_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="address to bind (loopback unless TLS or a proxy)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port")] = 9464,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM)")] = None,
    behind_proxy: Annotated[
        bool, typer.Option("--behind-proxy", help="trust X-Forwarded-* from --trusted-proxy addresses")
    ] = False,
    trusted_proxy: Annotated[
        list[str] | None, typer.Option("--trusted-proxy", help="address of the reverse proxy (repeatable)")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="a host name the console answers to besides loopback (repeatable)"),
    ] = None,
    actions: Annotated[
        bool, typer.Option("--actions/--read-only", help="allow operators to run, replay, re-send…")
    ] = False,
    stop_after: Annotated[float | None, typer.Option("--stop-after", help="stop after N seconds (tests)")] = None,
) -> None:
    """Serve the operator console alone (read-only unless --actions), for a look at a home or database."""
    from ..console.server import serve_console
    from ..console.settings import ConsoleSettings

    settings = ConsoleSettings(
        enabled=True,
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind_proxy=behind_proxy,
        trusted_proxies=list(trusted_proxy or []),
        allowed_hosts=list(allowed_host or []),
        actions=actions,
    )
    home = _state(ctx).home
    with _open_store(ctx) as store:
        serve_console(home, store, settings, host=host, port=port, console=out, stop_after=stop_after)
