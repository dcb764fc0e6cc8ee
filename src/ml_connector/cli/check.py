"""``ml-connector connections check NAME``: the Kinetic fit check (logic in ``kinetic.check``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import ConnectError, MLConnectorError, UsageError
from ._app import _open_store, _state, connections_app, out

# The check's modules (config models, httpx, the registry) load when the command runs, not for --help.


def _flow_scope(ctx: typer.Context, name: str) -> tuple[list[str], dict[str, list[str]]]:
    """The entities the flows on this connection use, and the Epicor fields their mappings name."""
    from ..config import X12Format, load_flows
    from ..mapping import resolve_format, source_fields

    home = _state(ctx).home
    if not home.flows_file.exists():
        raise UsageError(f"--flows: no flows file at {home.flows_file}")
    entities: list[str] = []
    fields: dict[str, list[str]] = {}
    for flow in load_flows(home.flows_file).flows.values():
        if getattr(flow, "epicor", None) != name or flow.entity == "acknowledgments":
            continue
        entities.append(flow.entity)
        fmt = resolve_format(flow)
        if not isinstance(fmt, X12Format):
            fields.setdefault(flow.entity, []).extend(source_fields(fmt.columns))
    return list(dict.fromkeys(entities)), fields


@connections_app.command("check")
def check_connection(
    ctx: typer.Context,
    name: str,
    flows: Annotated[bool, typer.Option("--flows", help="Only the entities and fields the flows on it use")] = False,
    write_test: Annotated[
        str | None,
        typer.Option(
            metavar="[ENTITY:]GROUP",
            help="Also create and delete one draft in GROUP: an AP invoice (GROUP or ap-invoices:GROUP) "
            "or an empty AP payment header (ap-payments:GROUP)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Check that a Kinetic instance fits this connection: scope, row cap, literals, methods, fields."""
    from rich.table import Table

    from ..connections import EpicorSettings
    from ..kinetic import KineticClient, KineticOptions
    from ..kinetic.check import fit_check, write_test_target

    if write_test:
        write_test_target(write_test)  # a malformed value is refused before anything connects
    home = _state(ctx).home
    with _open_store(ctx) as store:
        settings = store.connections.settings(name, home.keyring())
        if not isinstance(settings, EpicorSettings):
            raise UsageError(f"connection {name!r} is not an Epicor connection")
        entities, fields = _flow_scope(ctx, name) if flows else (None, None)

        async def run() -> Any:
            audit = lambda kind, **kw: store.audit.record(kind, **kw)  # noqa: E731 - one-line hook
            async with KineticClient(settings, options=KineticOptions(attempts=2), audit=audit) as k:
                return await fit_check(k, entities=entities, fields=fields, write_test=write_test)

        try:
            import asyncio

            report = asyncio.run(run())
        except MLConnectorError as exc:
            store.audit.record("connection.checked", subject=name, outcome="error", details={"error": str(exc)})
            raise ConnectError(f"connection {name!r}: {exc}") from None
        problems = sum(not f.ok for f in report.findings)
        details = {"settings": report.settings, "problems": problems}
        store.audit.record("connection.checked", subject=name, outcome="warning" if problems else "ok", details=details)
    if as_json:
        out.print_json(data={"name": name, **report.as_dict()})
        return
    table = Table("check", "finding", "ok", "set")
    for f in report.findings:
        table.add_row(f.topic, f.result, "[green]yes[/]" if f.ok else "[red]no[/]", f.setting or "")
    out.print(table)
    if report.settings:
        out.print("settings to use: " + "; ".join(report.settings))
    else:
        out.print("[green]✓[/] this connection's settings fit the instance")
