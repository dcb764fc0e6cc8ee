"""Flows: list, validate, schema, reset, and ``run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..errors import ConfigError, UsageError

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    pass
from ._app import _database_url, _load_flows, _open_store, _state, app, err, flows_app, out

# --- flows -----------------------------------------------------------------------------------


def _flows_path(ctx: typer.Context, path: Path | None) -> Path:
    return path or _state(ctx).home.flows_file


FlowsOpt = Annotated[Path | None, typer.Option("--file", "-f", help="flows.yaml [default: in home]")]


@flows_app.command("list")
def flows_list(
    ctx: typer.Context,
    file: FlowsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """List the flows in flows.yaml."""
    flows = _load_flows(_flows_path(ctx, file)).flows
    rows = [
        {
            "name": name,
            "direction": f.direction,
            "entity": f.entity,
            "format": f.format.type,
            "schedule": f.schedule,
            "timezone": f.timezone,
            "epicor": f.epicor,
            "sftp": f.sftp,
            "folder": f.folder,
            "enabled": f.enabled,
        }
        for name, f in flows.items()
    ]
    if as_json:
        out.print_json(data=rows)
        return
    table = Table("flow", "direction", "entity", "format", "schedule", "connections", "folder")
    for r in rows:
        table.add_row(
            str(r["name"]) + ("" if r["enabled"] else " (disabled)"),
            str(r["direction"]),
            str(r["entity"]),
            str(r["format"]),
            f"{r['schedule'] or 'manual'} {r['timezone']}",
            f"{r['epicor']} / {r['sftp']}",
            str(r["folder"]),
        )
    out.print(table if rows else "no flows defined yet")


@flows_app.command("validate")
def flows_validate(ctx: typer.Context, file: FlowsOpt = None) -> None:
    """Validate flows.yaml: schema, connections it names (and their kind), and mapped field names."""
    from ..config import parse_flows
    from ..fieldnames import field_warnings

    path = _flows_path(ctx, file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run 'ml-connector init')") from None
    parsed = parse_flows(text, source=str(path))
    flows = parsed.flows
    problems: list[str] = []
    home = _state(ctx).home
    if flows and (not home.database_url.startswith("sqlite") or home.sqlite_path.exists()):
        known = _connection_kinds(ctx)
        listing = ", ".join(f"{n} ({k})" for n, k in sorted(known.items())) or "none yet"
        for name, flow in flows.items():
            for key, kind in (("epicor", "epicor"), ("sftp", "sftp")):
                conn = getattr(flow, key)
                if conn not in known:
                    problems.append(
                        f"{path}: flow {name!r}: {key}: no connection named {conn!r} (connections: {listing})"
                    )
                elif known[conn] != kind:
                    problems.append(f"{path}: flow {name!r}: {key}: {conn!r} is a {known[conn]} connection")
    if problems:
        raise ConfigError("\n".join(problems))
    warnings = field_warnings(parsed, text, str(path))
    for line in warnings:
        err.print(f"[yellow]warning:[/] {line}", highlight=False)
    note = f" ({len(warnings)} warning(s))" if warnings else ""
    out.print(f"[green]✓[/] {path}: {len(flows)} flow(s) valid{note}")


def _connection_kinds(ctx: typer.Context) -> dict[str, str]:
    """Connection name -> kind (read-only; sqlite3 on a current SQLite home, see store/readers.py)."""
    from ..store.readers import store_reader

    with store_reader(_database_url(ctx)) as reader:
        return {str(name): str(kind) for name, kind in reader.rows("SELECT name, kind FROM connections")}


@flows_app.command("schema")
def flows_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
) -> None:
    """Print (or write) the JSON Schema of flows.yaml for editors."""
    from ..config import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"[green]✓[/] wrote {output}")
    else:
        typer.echo(text)


# --- runs ------------------------------------------------------------------------------------


@app.command("run")
def run(
    ctx: typer.Context,
    flow: Annotated[str, typer.Argument(help="flow name in flows.yaml")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="extract or parse and show; change nothing")] = False,
    sample: Annotated[
        Path | None,
        typer.Option("--file", help="with --dry-run: parse this local file (inbound) instead of the SFTP folder"),
    ] = None,
    file: Annotated[Path | None, typer.Option("--flows", "-f", help="flows.yaml [default: in home]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary")] = False,
) -> None:
    """Run one flow now: exit 0 ok, 1 failed records/files, 2 config, 3 connection/auth, 4 locked,
    130 Ctrl-C, 143 stopped by SIGTERM after its current step."""
    from .run import run_command

    if sample is not None and not dry_run:
        raise UsageError("--file PATH previews a local file: use it with --dry-run")
    if sample is not None and not sample.is_file():
        raise UsageError(f"--file {sample}: no such file")
    flows_file = _load_flows(_flows_path(ctx, file))
    flows = flows_file.flows
    if flow not in flows:
        known = ", ".join(sorted(flows)) or "none"
        raise UsageError(f"no flow named {flow!r} in flows.yaml (flows: {known})")
    home = _state(ctx).home
    with _open_store(ctx) as store:
        if sample is not None and flows[flow].direction != "inbound":
            raise UsageError(f"--file previews inbound files; flow {flow!r} is outbound")
        code = run_command(home, store, flow, flows[flow], dry_run=dry_run, as_json=as_json, console=out,
                           alerts=flows_file.alerts, sample=sample)  # fmt: skip
    raise typer.Exit(code)


@flows_app.command("reset")
def flows_reset(
    ctx: typer.Context,
    flow: Annotated[str, typer.Argument(help="outbound flow whose watermark to forget")],
) -> None:
    """Forget an outbound flow's watermark: its next run sends every record again."""
    with _open_store(ctx) as store:
        gone = store.watermarks.reset(flow)
        store.audit.record("flow.reset", flow=flow, subject=flow, outcome="warning" if gone else "info")
    out.print(f"{flow}: watermark {'forgotten' if gone else 'was not set'}")
