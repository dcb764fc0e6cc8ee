"""Operations: sandbox, demo, serve, status, prune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    pass
from ._app import _database_url, _load_flows, _open_store, _state, app, out

# --- sandbox ---------------------------------------------------------------------------------


@app.command()
def sandbox(
    ctx: typer.Context,
    kinetic_port: Annotated[int, typer.Option(help="Port of the Kinetic sandbox")] = 8470,
    sftp_port: Annotated[int, typer.Option(help="Port of the SFTP sandbox")] = 8471,
    vendors: Annotated[int, typer.Option(help="Seed vendors")] = 12,
    lenient: Annotated[bool, typer.Option(help="Kinetic sandbox without its strict rules")] = False,
) -> None:
    """Run a local Kinetic sandbox and SFTP server on loopback until Ctrl-C."""
    import asyncio

    from ..sandbox.run import run_sandbox
    from ._ports import check_free

    # Both ports checked before either server starts: a clash leaves nothing half-started.
    check_free("127.0.0.1", kinetic_port, "Kinetic sandbox", "--kinetic-port")
    check_free("127.0.0.1", sftp_port, "SFTP sandbox", "--sftp-port")
    folder = _state(ctx).home.path / "sandbox"
    try:
        asyncio.run(run_sandbox(folder, kinetic_port, sftp_port, out, vendors, lenient=lenient))
    except KeyboardInterrupt:
        out.print("sandbox stopped")


# --- demo ------------------------------------------------------------------------------------


@app.command()
def demo(
    home: Annotated[
        Path | None, typer.Option("--home", help="Keep everything in this folder [default: a temporary one, removed]")
    ] = None,
) -> None:
    """Run every kind of flow end to end on a local Kinetic sandbox and SFTP server (no real system touched)."""
    from .demo import run_demo

    raise typer.Exit(run_demo(home, out))


# --- operations ------------------------------------------------------------------------------


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", help="/metrics and /healthz port (0: off) [default: flows.yaml serve.metrics_port, 9464]"
        ),
    ] = None,
    stop_after: Annotated[
        float | None, typer.Option("--stop-after", help="stop after N seconds (tests, demos)")
    ] = None,
) -> None:
    """Run every enabled flow on its schedule until SIGTERM/Ctrl-C (health and metrics on a local port)."""
    from .ops import serve

    home = _state(ctx).home
    with _open_store(ctx) as store:
        code = serve(home, store, out, metrics_port=metrics_port, once_s=stop_after)
    raise typer.Exit(code)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    remote: Annotated[
        bool, typer.Option("--remote/--no-remote", help="count files waiting on the SFTP servers")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Each flow at a glance (times in the flow's zone). Exit 0: every flow fine; 1: a flow needs a look."""
    from .ops import print_status, status, status_exit_code

    home = _state(ctx).home
    rows = status(home, _database_url(ctx), remote=remote)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
    else:
        print_status(rows, out)
    raise typer.Exit(status_exit_code(rows))


@app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    audit_days: Annotated[
        float | None, typer.Option("--audit-days", help="[default: flows.yaml retention.audit_days, 90]")
    ] = None,
    staging_days: Annotated[
        float | None, typer.Option("--staging-days", help="[default: retention.staging_days, 30]")
    ] = None,
) -> None:
    """Delete audit events and staged copies older than the retention (the ledgers are kept)."""
    from .ops import prune

    home = _state(ctx).home
    with _open_store(ctx) as store:
        prune(home, store, _load_flows(home.flows_file), console=out, audit_days=audit_days, staging_days=staging_days)
