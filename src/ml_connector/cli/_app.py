"""Commands. Each one resolves the home once, opens what it needs, and prints through Rich."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from .. import __version__
from ..errors import ConfigError, UsageError
from ..home import Home
from ..logs import configure_logging
from ..states import FileState, RunState
from ._secrets_input import check_single_stdin, read_secret, refuse_argv_secret

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    from ..config import FlowsFile
    from ..store import Store

app = typer.Typer(
    name="ml-connector",
    help="Epicor Kinetic <-> SFTP flat files (CSV, fixed-width, X12), with a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
connections_app = typer.Typer(help="Epicor and SFTP connections (stored encrypted).", no_args_is_help=True)
keys_app = typer.Typer(help="The master key.", no_args_is_help=True)
flows_app = typer.Typer(help="Flows defined in flows.yaml.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")
app.add_typer(keys_app, name="keys")
app.add_typer(flows_app, name="flows")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class _State:
    home: Home


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_root().obj
    assert isinstance(state, _State)
    return state


def _load_flows(path: Path) -> FlowsFile:
    from ..config import load_flows

    return load_flows(path)


def _open_store(ctx: typer.Context) -> Store:
    from ..store import Store

    home = _state(ctx).home
    default_sqlite = f"sqlite:///{home.sqlite_path}" == home.database_url
    if default_sqlite and not home.sqlite_path.exists():
        raise ConfigError(f"no database at {home.sqlite_path}; run 'ml-connector init' first")
    return Store.open(home.database_url)


def _version(value: bool) -> None:
    if value:
        out.print(f"ml-connector {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="ML_CONNECTOR_HOME", help="Home folder [default: ~/.ml-connector]"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="ML_CONNECTOR_DATABASE_URL",
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db [default: SQLite in home]",
            show_envvar=True,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            help="More log detail on stderr: -v info, -vv debug (repeat the letter)",
        ),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version")
    ] = False,
) -> None:
    """ml-connector: move vendors, invoices and payments between Kinetic and partners' SFTP."""
    state = _State(Home.resolve(home, database_url))
    if verbose:
        _verbose(verbose, state.home, ctx.invoked_subcommand)
    ctx.obj = state


def _verbose(level: int, home: Home, command: str | None) -> None:
    """-v: ml-connector's own log lines (each run's events); -vv: debug, plus HTTP and SSH libraries."""
    from ..store.db import describe_url

    handler = configure_logging(logging.INFO if level == 1 else logging.DEBUG)
    for name in ("httpx", "asyncssh"):
        lib = logging.getLogger(name)
        lib.handlers = [h for h in lib.handlers if not getattr(h, "_ml_connector", False)]
        lib.addHandler(handler)  # the same redacting handler: secrets are scrubbed here too
        lib.setLevel(logging.INFO if level >= 2 else logging.WARNING)
        lib.propagate = False
    logging.getLogger("ml_connector.cli").info(
        "%s: home %s, database %s", command or "-", home.path, describe_url(home.database_url)
    )


# --- init ------------------------------------------------------------------------------------


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the home folder, master key, database, staging folder and a starter flows.yaml."""
    from ..store import Store
    from ..store.db import describe_url

    home = _state(ctx).home
    done = home.init()
    with Store.open(home.database_url) as store:
        store.audit.record("home.init", subject=str(home.path), details={"created": done})
    for line in done:
        out.print(f"[green]✓[/] {line}")
    out.print(f"[green]✓[/] database ready: {describe_url(home.database_url)}")
    if not done:
        out.print("(everything already existed; nothing was changed)")


# --- connections -----------------------------------------------------------------------------

SecretEnv = Annotated[str | None, typer.Option(metavar="NAME", help="read from this environment variable")]
SecretFile = Annotated[Path | None, typer.Option(metavar="PATH", help="read from this file")]
SecretStdin = Annotated[bool, typer.Option(help="read one line from standard input")]
Refused = Annotated[str | None, typer.Option(hidden=True)]


@connections_app.command("add-epicor")
def add_epicor(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Connection name, used by flows")],
    url: Annotated[str, typer.Option(help="Base URL: https://HOST/INSTANCE")],
    company: Annotated[str, typer.Option(help="Company ID (e.g. EPIC06)")],
    username: Annotated[str, typer.Option(help="Kinetic user")],
    plant: Annotated[str | None, typer.Option(help="Plant / site")] = None,
    auth: Annotated[str, typer.Option(help="basic, or token (TokenResource.svc Bearer)")] = "basic",
    api_key_env: SecretEnv = None,
    api_key_file: SecretFile = None,
    api_key_stdin: SecretStdin = False,
    password_env: SecretEnv = None,
    password_file: SecretFile = None,
    password_stdin: SecretStdin = False,
    timeout: Annotated[float, typer.Option(help="HTTP timeout, seconds")] = 30.0,
    ca_bundle: Annotated[Path | None, typer.Option(help="CA bundle (PEM) for an instance with a private CA")] = None,
    datetime_literal: Annotated[
        str, typer.Option(help="$filter datetimes: zoned (2026-01-31T00:00:00Z) or naive (no zone)")
    ] = "zoned",
    api_key: Refused = None,
    password: Refused = None,
) -> None:
    """Add an Epicor Kinetic connection (API key and password from env, file or stdin)."""
    from ..connections import EpicorSettings

    refuse_argv_secret("--api-key", api_key)
    refuse_argv_secret("--password", password)
    check_single_stdin(api_key_stdin, password_stdin)
    key = read_secret("api-key", env=api_key_env, file=api_key_file, stdin=api_key_stdin)
    pw = read_secret("password", env=password_env, file=password_file, stdin=password_stdin)
    if key is None:
        raise UsageError("an API key is required: --api-key-env NAME, --api-key-file PATH or --api-key-stdin")
    if pw is None:
        raise UsageError("a password is required: --password-env NAME, --password-file PATH or --password-stdin")
    if auth not in ("basic", "token"):
        raise UsageError("--auth must be 'basic' or 'token'")
    settings = EpicorSettings(
        url=url.rstrip("/"),
        company=company,
        plant=plant,
        auth=auth,  # type: ignore[arg-type]
        username=username,
        api_key=key,
        password=pw,
        timeout_s=timeout,
        ca_bundle=str(ca_bundle.resolve()) if ca_bundle else None,
        datetime_literal=datetime_literal,
    )
    if ca_bundle and not ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {ca_bundle}: not a file")
    home = _state(ctx).home
    keyring = home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.add(name, settings, keyring)
    out.print(f"[green]✓[/] added Epicor connection {stored.name!r} (encrypted with key {stored.key_id})")


@connections_app.command("add-sftp")
def add_sftp(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Connection name, used by flows")],
    host: Annotated[str, typer.Option(help="SFTP server host name or address")],
    username: Annotated[str, typer.Option(help="SFTP user")],
    port: Annotated[int, typer.Option(help="SSH port")] = 22,
    key_file: Annotated[Path | None, typer.Option(help="Private key file (OpenSSH or PEM)")] = None,
    passphrase_env: SecretEnv = None,
    passphrase_file: SecretFile = None,
    passphrase_stdin: SecretStdin = False,
    password_env: SecretEnv = None,
    password_file: SecretFile = None,
    password_stdin: SecretStdin = False,
    host_key: Annotated[
        list[str] | None,
        typer.Option(help="Pinned host public key line, e.g. 'ssh-ed25519 AAAA…' (repeatable)"),
    ] = None,
    fingerprint: Annotated[
        list[str] | None, typer.Option(help="Pinned host key fingerprint 'SHA256:…' (repeatable)")
    ] = None,
    known_hosts: Annotated[
        Path | None, typer.Option(help="Take pinned keys for --host from this known_hosts file")
    ] = None,
    password: Refused = None,
    passphrase: Refused = None,
    private_key: Refused = None,
) -> None:
    """Add an SFTP connection (key or password auth) with its host key pinned."""
    from ..connections import SftpSettings, check_fingerprint, check_private_key, host_key_line, known_hosts_keys

    refuse_argv_secret("--password", password)
    refuse_argv_secret("--passphrase", passphrase)
    if private_key is not None:
        raise UsageError("--private-key does not take key material on the command line; use --key-file PATH")
    check_single_stdin(passphrase_stdin, password_stdin)
    pw = read_secret("password", env=password_env, file=password_file, stdin=password_stdin)
    phrase = read_secret("passphrase", env=passphrase_env, file=passphrase_file, stdin=passphrase_stdin)
    pkey = read_secret("private-key", env=None, file=key_file, stdin=False) if key_file else None
    if pkey is not None:
        check_private_key(pkey.reveal(), phrase.reveal() if phrase else None, key_file)
    pins = [host_key_line(line) for line in host_key or []]
    fps = [check_fingerprint(fp) for fp in fingerprint or []]
    if known_hosts is not None:
        pins += known_hosts_keys(known_hosts, host, port)
    if not pins and not fps:
        raise UsageError(
            "no host key pinned: give --host-key 'TYPE BASE64', --fingerprint SHA256:… or "
            "--known-hosts PATH (ml-connector never accepts an unknown host key)"
        )
    settings = SftpSettings(
        host=host,
        port=port,
        username=username,
        password=pw,
        private_key=pkey,
        passphrase=phrase,
        host_keys=tuple(pins),
        host_fingerprints=tuple(fps),
    )
    keyring = _state(ctx).home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.add(name, settings, keyring)
    out.print(f"[green]✓[/] added SFTP connection {stored.name!r} (encrypted with key {stored.key_id})")
    for fp in settings.pinned_fingerprints():
        out.print(f"  pinned host key {fp}")


@connections_app.command("list")
def list_connections(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False
) -> None:
    """List connections (names and kinds; never secrets)."""
    with _open_store(ctx) as store:
        rows = store.connections.list()
    if as_json:
        out.print_json(
            data=[
                {
                    "name": r.name,
                    "kind": r.kind,
                    "key_id": r.key_id,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table("name", "kind", "key id", "created", "updated")
    for r in rows:
        table.add_row(r.name, r.kind, r.key_id, _ts(r.created_at), _ts(r.updated_at))
    out.print(table if rows else "no connections yet: ml-connector connections add-epicor|add-sftp")


@connections_app.command("show")
def show_connection(
    ctx: typer.Context,
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    reveal_identity: Annotated[
        bool,
        typer.Option(help="Show host, URL and user name in full (credentials are never shown)"),
    ] = False,
) -> None:
    """Show one connection's settings; credentials appear only as set / not set."""
    keyring = _state(ctx).home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.get(name)
        settings = store.connections.settings(name, keyring)
    view: dict[str, Any] = {"name": stored.name, "kind": stored.kind, "key_id": stored.key_id}
    view.update(settings.public_view(reveal_identity))
    if as_json:
        out.print_json(data=view)
        return
    table = Table("setting", "value", show_header=False)
    for key, value in view.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


@connections_app.command("test")
def test_connection(
    ctx: typer.Context,
    name: str,
    folder: Annotated[list[str] | None, typer.Option(help="Also check this remote folder (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Connect, check the host key pin, and probe the folders that flows use (SFTP)."""
    import asyncio

    from ..connections import SftpSettings
    from ..sftp import SftpClient

    home = _state(ctx).home
    keyring = home.keyring()
    with _open_store(ctx) as store:
        settings = store.connections.settings(name, keyring)
        if not isinstance(settings, SftpSettings):
            _test_epicor(store, name, settings, as_json)
            return
        folders = list(folder or [])
        if home.flows_file.exists():
            for flow in _load_flows(home.flows_file).flows.values():
                if flow.sftp == name:
                    folders.append(flow.folder)
                    for extra in ("archive_folder", "error_folder", "ack_folder"):
                        value = getattr(flow, extra, None)
                        if value:
                            folders.append(value)
        folders = list(dict.fromkeys(folders))

        async def probe() -> tuple[str | None, list[dict[str, Any]]]:
            async with SftpClient(settings, name=name, audit=lambda kind, **kw: store.audit.record(kind, **kw)) as c:
                return c.host_fingerprint, [await c.probe_folder(f) for f in folders]

        try:
            fingerprint, results = asyncio.run(probe())
        except Exception as exc:
            store.audit.record("connection.tested", subject=name, outcome="error", details={"error": str(exc)})
            raise
        store.audit.record("connection.tested", subject=name, details={"folders": results})
    if as_json:
        out.print_json(data={"name": name, "host_key": fingerprint, "host_key_matches": True, "folders": results})
        return
    out.print(f"[green]✓[/] connected; host key {fingerprint} matches the pin")
    table = Table("folder", "exists", "listable", "writable", "problem")
    for r in results:
        table.add_row(
            r["folder"], *("yes" if r[k] else "no" for k in ("exists", "listable", "writable")), r["error"] or ""
        )
    out.print(table if results else "no folders to check (add flows, or pass --folder)")
    if any(r["error"] for r in results):
        raise typer.Exit(3)


def _test_epicor(store: Store, name: str, settings: Any, as_json: bool) -> None:
    import asyncio

    from ..errors import ConnectError, MLConnectorError
    from ..kinetic import KineticClient, KineticOptions

    async def ping() -> dict[str, Any]:
        async with KineticClient(settings, options=KineticOptions(attempts=1),
                                 audit=lambda kind, **kw: store.audit.record(kind, **kw)) as k:  # fmt: skip
            return await k.ping()

    try:
        result = asyncio.run(ping())
    except MLConnectorError as exc:
        store.audit.record("connection.tested", subject=name, outcome="error", details={"error": str(exc)})
        raise ConnectError(f"connection {name!r}: {exc}") from None
    store.audit.record("connection.tested", subject=name, details=result)
    if as_json:
        out.print_json(data={"name": name, **result})
        return
    expiry = result["token_expires_in_s"]
    out.print(
        f"[green]✓[/] authenticated to company {result['company']}; round trip {result['round_trip_ms']} ms; "
        + (f"token expires in {expiry} s" if expiry is not None else "Basic auth (no token)")
    )


@connections_app.command("remove")
def remove_connection(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
) -> None:
    """Remove a connection."""
    with _open_store(ctx) as store:
        store.connections.get(name)
        if not yes and not typer.confirm(f"Remove connection {name!r}?"):
            raise typer.Exit(1)
        store.connections.remove(name)
    out.print(f"[green]✓[/] removed {name!r}")


# --- keys ------------------------------------------------------------------------------------


@keys_app.command("rotate")
def rotate_keys(
    ctx: typer.Context,
    new_key_out: Annotated[
        Path | None,
        typer.Option(
            help="When the key comes from ML_CONNECTOR_MASTER_KEY: write the new key to this new "
            "file (mode 0600), then put it in the variable"
        ),
    ] = None,
) -> None:
    """Re-encrypt every stored secret under a new master key and retire the old one."""
    from ..secrets import rotate_master_key

    home = _state(ctx).home
    old = home.keyring()
    with _open_store(ctx) as store:
        done = rotate_master_key(old, home.key_file, store.connections, new_key_out)
        store.audit.record(
            "keys.rotated",
            details={"old_key_ids": list(done.retired), "new_key_id": done.new_key_id, "rows": done.rows},
        )
    out.print(f"[green]✓[/] re-encrypted {done.rows} connection(s) under key {done.new_key_id}")
    out.print(f"  retired key(s): {', '.join(done.retired)}")
    if done.from_env:
        out.print(f"  set ML_CONNECTOR_MASTER_KEY from {new_key_out} now; the old value no longer works")


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
    """Connection name -> kind; read-only, with no migration check (a plain query on SQLite, fast)."""
    home = _state(ctx).home
    if home.database_url == f"sqlite:///{home.sqlite_path}":
        import sqlite3

        try:
            db = sqlite3.connect(f"file:{home.sqlite_path}?mode=ro", uri=True)
            try:
                return dict(db.execute("SELECT name, kind FROM connections").fetchall())
            finally:
                db.close()
        except sqlite3.Error:
            pass  # an old or odd database: the full store below says what is wrong with it
    with _open_store(ctx) as store:
        return {c.name: c.kind for c in store.connections.list()}


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


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


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
    with _open_store(ctx) as store:
        rows = status(home, store, remote=remote)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
    else:
        print_status(rows, out)
    raise typer.Exit(status_exit_code(rows))


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
